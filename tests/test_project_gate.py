"""The project's own CI gate: today's framework behaviour, recorded in .ci/lossfuzz-baseline.json,
must hold. `make test` (and so .ci/run) runs this short campaign and gates it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_short_campaign_passes_the_committed_baseline(tmp_path):
    def lossfuzz(*args):
        return subprocess.run(
            [sys.executable, "-m", "harness", *args],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
            env=dict(os.environ),
        )

    results = tmp_path / "ci.json"
    r = lossfuzz("run", "--config", ".ci/lossfuzz.toml", "--out", str(results))
    assert r.returncode == 0, r.stderr
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    g = lossfuzz(
        "gate",
        str(results),
        "--baseline",
        ".ci/lossfuzz-baseline.json",
        "--config",
        ".ci/lossfuzz.toml",
        "--junit",
        str(out / "junit.xml"),
    )
    assert g.returncode == 0, g.stdout + g.stderr
    assert "OK: 0 regressions" in g.stdout
    assert "matches no cell" not in g.stderr  # the known-failure entries are all still true
