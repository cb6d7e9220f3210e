"""Headless Chromium for looking at reports (the browser tests and bench/report_scale.py).

The flags keep Chromium off the network (this machine has none) and out of any
existing profile. Selenium is imported only when a browser is started.
"""

from __future__ import annotations

import shutil
import tempfile

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def start(window: str = "1300,1600"):
    """A Selenium Chrome driver on Debian's chromium, with a fresh profile and console logs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in FLAGS + (
        f"--window-size={window}",
        f"--user-data-dir={tempfile.mkdtemp(prefix='lossfuzz-chrome-')}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
