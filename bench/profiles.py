"""Wall time of each campaign profile, run plus render, on this machine.

    .venv/bin/python bench/profiles.py [--profile quick --profile default] [--jobs N]
                                       [--out DIR]

For each profile runs ``lossfuzz run --profile P -o DIR/P.json`` and then
``lossfuzz report DIR/P.json -o DIR/P.html`` as a user would (new processes, the
frameworks imported anew), and prints a table: cells, cases, findings (documented),
the run's wall time, cells per second, the render's wall time and their sum (issue
20's target for ``default``: at most five minutes on two cores). ``deep`` runs every
cell with 300 batches each and takes far longer; name it to time it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(args: list[str]) -> float:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "lossfuzz", *args, "-q"],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"lossfuzz {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="append", choices=("quick", "default", "deep"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench-profiles")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, --jobs {a.jobs}")
    head = ("profile", "cells", "cases", "findings", "run s", "cells/s", "render s", "total")
    print("  ".join(f"{h:>10}" for h in head))
    for p in a.profile or ["quick", "default"]:
        results, page = a.out / f"{p}.json", a.out / f"{p}.html"
        run = _timed(["run", "--profile", p, "-j", str(a.jobs), "-o", str(results)])
        render = _timed(["report", str(results), "-o", str(page)])
        r = json.loads(results.read_text())
        documented = sum(bool(f.get("documented")) for f in r["findings"])
        total = run + render
        row = (p, len(r["cells"]), sum(c["cases"] for c in r["cells"]),
               f"{len(r['findings'])} ({documented})", f"{run:.0f}",
               f"{len(r['cells']) / run:.2f}", f"{render:.1f}",
               f"{int(total // 60)}m{total % 60:02.0f}s")  # fmt: skip
        print("  ".join(f"{str(v):>10}" for v in row), flush=True)


if __name__ == "__main__":
    main()
