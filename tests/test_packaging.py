"""The wheel installs one package, lossfuzz, beside its pytest plugin, and works inside a
user's project that has packages of its own named harness, reports and oracles."""

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "BuildBackendWarning" not in r.stderr and "is absent from the `packages`" not in r.stderr
    (path,) = out.glob("lossfuzz-*.whl")
    return path


def test_the_wheel_holds_lossfuzz_and_its_plugin_and_nothing_else_at_top_level(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"lossfuzz", "lossfuzz_pytest.py"}
    for needed in (
        "lossfuzz/__init__.py",
        "lossfuzz/harness/cli.py",
        "lossfuzz/harness/backends/torch.py",
        "lossfuzz/oracles/api.py",
        "lossfuzz/reports/templates/report.html.j2",
        "lossfuzz/reports/static/report.js",
    ):
        assert needed in names, needed
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(meta).decode()


USER_LOSS = textwrap.dedent(
    """
    import numpy as np

    def naive_bce(logits, labels):
        q = 1 / (1 + np.exp(-logits))
        return -(labels * np.log(q) + (1 - labels) * np.log(1 - q))
    """
)
USER_TEST = textwrap.dedent(
    """
    import pytest
    import harness, reports, oracles  # the project's own packages
    from mylosses import naive_bce

    def test_own_packages_are_the_projects():
        assert harness.MINE and reports.MINE and oracles.MINE

    def test_loss(lossfuzz):
        with pytest.raises(pytest.fail.Exception, match="not within 4 ULP"):
            lossfuzz.check(naive_bce, loss="sigmoid_cross_entropy_with_logits", dtype="float16")
    """
)


@pytest.fixture(scope="module")
def project(wheel, tmp_path_factory):
    """A user's project (with harness/, reports/, oracles/ and a conftest) and a directory
    holding the installed wheel."""
    site = tmp_path_factory.mktemp("site")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    proj = tmp_path_factory.mktemp("project")
    for pkg in ("harness", "reports", "oracles"):
        (proj / pkg).mkdir()
        (proj / pkg / "__init__.py").write_text("MINE = True\n")
        (proj / pkg / "campaign.py").write_text("raise ImportError('the project, not lossfuzz')\n")
    (proj / "conftest.py").write_text("import harness, reports\n")
    (proj / "mylosses.py").write_text(USER_LOSS)
    (proj / "test_user.py").write_text(USER_TEST)
    return proj, site


def _run(project, *args):
    proj, site = project
    env = {"PYTHONPATH": f"{site}:{proj}", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, *args], cwd=proj, capture_output=True, text=True, timeout=900, env=env
    )


def test_the_plugin_runs_in_a_project_with_its_own_harness_and_reports(project):
    r = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lossfuzz-budget=3")
    assert "2 passed" in r.stdout, r.stdout + r.stderr
    proj, site = project
    where = _run(
        project,
        "-c",
        "import lossfuzz.harness, harness; print(lossfuzz.harness.__file__, harness.__file__)",
    )
    ours, theirs = where.stdout.split()
    assert ours.startswith(str(site)) and theirs.startswith(str(proj))


def test_run_report_and_gate_junit_work_in_that_project(project):
    proj, _ = project
    r = _run(project, "-m", "lossfuzz", "run", "--impl", "naive:softplus", "--dtype", "float16",
             "--quantity", "value", "--budget", "3", "--out", "out/r.json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (
        _run(project, "-m", "lossfuzz", "report", "out/r.json", "-o", "out/r.html").returncode == 0
    )
    assert (proj / "out" / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert _run(project, "-m", "lossfuzz", "baseline", "out/r.json", "-o", "b.json").returncode == 0
    g = _run(project, "-m", "lossfuzz", "gate", "out/r.json", "--baseline", "b.json",
             "--junit", "out/j.xml")  # fmt: skip
    assert g.returncode == 0, g.stdout + g.stderr
    assert "<testsuite" in (proj / "out" / "j.xml").read_text()
