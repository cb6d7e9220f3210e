"""Run the lossfuzz command line as a user would: a subprocess, its exit code and output."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lossfuzz(*args, env=None, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossfuzz", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})),
        cwd=cwd,
    )


def run_reproducer(code: str, tmp_path: Path) -> str:
    """Run a reproducer script as a user pastes it: a fresh interpreter with nothing of
    lossfuzz's environment but PATH; its stdout (the script must succeed)."""
    script = tmp_path / "repro.py"
    script.write_text(code)
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout
