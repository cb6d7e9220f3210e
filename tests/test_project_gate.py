"""The project's own CI gate: today's framework behaviour, recorded in .ci/lossfuzz-baseline.json,
must hold. `make test` (and so .ci/run) runs this short campaign and gates it."""

from pathlib import Path

from cli import lossfuzz

ROOT = Path(__file__).resolve().parent.parent


def test_short_campaign_passes_the_committed_baseline(tmp_path):
    results = tmp_path / "ci.json"
    r = lossfuzz("run", "--config", ".ci/lossfuzz.toml", "--out", str(results), cwd=ROOT)
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
        cwd=ROOT,
    )
    assert g.returncode == 0, g.stdout + g.stderr
    assert "OK: 0 regressions" in g.stdout
    assert "matches no cell" not in g.stderr  # the known-failure entries are all still true
