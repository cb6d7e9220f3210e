"""How long a report with thousands of findings takes to render and to open in Chromium.

    .venv/bin/lossfuzz run --out out/results.json     # a real campaign first
    .venv/bin/python bench/report_scale.py out/results.json --copies 1 5 10

Each copy repeats every cell and finding of the campaign under new impl names
(``impl#k``), so the report grows in cells, findings and plots alike. Prints one
row per size: findings, cells, render seconds (with plots), HTML size, and the
seconds Chromium takes from navigation to the load event.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

from lossfuzz.harness.results import Results
from lossfuzz.reports import browser as chromium
from lossfuzz.reports.render import html


def grow(data: dict, copies: int) -> dict:
    out = copy.deepcopy(data)
    out["cells"], out["findings"] = [], []
    for k in range(copies):
        suffix = f"#{k}" if k else ""
        for c in data["cells"]:
            c2 = dict(c, impl=c["impl"] + suffix)
            out["cells"].append(c2)
        for f in data["findings"]:
            out["findings"].append(dict(f, impl=f["impl"] + suffix))
    return out


def open_seconds(path: Path) -> float | None:
    """Seconds from navigation to the load event in headless Chromium (None without one)."""
    if not chromium.available():
        return None
    b = chromium.start()
    try:
        b.get(path.as_uri())  # returns after the load event
        timing = b.execute_script(
            "const t = performance.getEntriesByType('navigation')[0];"
            "return [t.startTime, t.loadEventEnd];"
        )
        return (timing[1] - timing[0]) / 1000
    finally:
        b.quit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 5, 10])
    args = ap.parse_args()
    base = json.loads(Path(args.results).read_text())
    print(f"{'findings':>8} {'cells':>6} {'render s':>9} {'HTML MB':>8} {'open s':>7}")
    for k in args.copies:
        data = grow(base, k)
        t = time.perf_counter()
        page = html(Results.from_json(data))
        render = time.perf_counter() - t
        path = Path(tempfile.mkdtemp(prefix="lossfuzz-report-")) / "report.html"
        path.write_text(page)
        opened = open_seconds(path)
        shown = f"{opened:7.2f}" if opened is not None else "    n/a"
        print(
            f"{len(data['findings']):8} {len(data['cells']):6} {render:9.1f}"
            f" {len(page) / 1e6:8.1f} {shown}"
        )


if __name__ == "__main__":
    main()
