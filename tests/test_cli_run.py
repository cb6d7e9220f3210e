"""`lossfuzz run` and `lossfuzz repro` from the command line: results, exit codes, errors."""

import json

import pytest
from cli import lossfuzz

from lossfuzz.harness.results import SCHEMA


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "results.json"
    r = lossfuzz(
        "run",
        "--impl",
        "naive:sigmoid_then_log",
        "--impl",
        "torch:binary_cross_entropy_with_logits",
        "--dtype",
        "float16",
        "--budget",
        "5",
        "--out",
        str(out),
    )
    return r, out


def test_run_writes_a_schema_v1_results_file_and_a_summary(small_run):
    r, out = small_run
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["schema"] == SCHEMA and data["complete"] is True
    assert {c["impl"] for c in data["cells"]} == {
        "naive:sigmoid_then_log",
        "torch:binary_cross_entropy_with_logits",
    }
    for key in ("created", "seed", "budget", "versions", "cells", "findings"):
        assert key in data
    assert data["versions"]["torch"] and data["versions"]["mpmath"]
    assert "naive:sigmoid_then_log" in r.stdout and "findings" in r.stdout
    assert "Traceback" not in r.stderr and "oneDNN" not in r.stderr


def test_run_rediscovers_the_naive_formulas_overflow_and_nan(small_run):
    _, out = small_run
    data = json.loads(out.read_text())
    naive = [f for f in data["findings"] if f["impl"] == "naive:sigmoid_then_log"]
    values = [f for f in naive if f["quantity"] == "value"]
    assert {"nan", "overflow"} <= {f["class"] for f in values}
    for f in naive:
        assert f["confirmed"] and f["reproducer"].startswith("# lossfuzz reproducer")
        prefix = "" if f["wrt"] is None else f"d/d{f['wrt']} "
        assert f["message"].startswith(prefix + "naive:sigmoid_then_log(")


def test_run_has_gradient_cells_beside_the_values(small_run):
    _, out = small_run
    data = json.loads(out.read_text())
    kinds = {(c["impl"], c["quantity"], c["wrt"]) for c in data["cells"]}
    for impl in ("naive:sigmoid_then_log", "torch:binary_cross_entropy_with_logits"):
        assert {(impl, "value", None), (impl, "grad", "logits"), (impl, "grad", "labels")} <= kinds
    grads = [f for f in data["findings"] if f["quantity"] == "grad"]
    assert grads and all("torch.autograd.grad" in f["reproducer"] for f in grads)


def test_repro_says_every_finding_still_reproduces(small_run):
    _, out = small_run
    r = lossfuzz("repro", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(json.loads(out.read_text())["findings"])
    assert f"{n} of {n} findings reproduce" in r.stdout


def test_repro_of_one_finding_and_of_a_finding_that_is_not_there(small_run):
    _, out = small_run
    assert lossfuzz("repro", str(out), "--finding", "0").returncode == 0
    r = lossfuzz("repro", str(out), "--finding", "999")
    assert r.returncode == 2 and "the file has" in r.stderr


def test_user_code_is_fuzzed_with_module_colon_function(tmp_path):
    (tmp_path / "mylosses.py").write_text(
        "import numpy as np\n"
        "def my_bce(logits, labels):\n"
        "    q = 1 / (1 + np.exp(-logits))\n"
        "    return -(labels * np.log(q) + (1 - labels) * np.log(1 - q))\n"
    )
    out = tmp_path / "r.json"
    r = lossfuzz(
        "run",
        "--impl",
        "mylosses:my_bce",
        "--loss",
        "sigmoid_cross_entropy_with_logits",
        "--dtype",
        "float32",
        "--budget",
        "3",
        "--out",
        str(out),
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["cells"][0]["impl"] == "user:mylosses:my_bce"
    f = next(f for f in data["findings"] if f["class"] == "nan")
    assert "from mylosses import my_bce" in f["reproducer"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--impl", "torch:binary_cross_entropy_with_logit"], "did you mean"),
        (["run", "--loss", "sigmoid_crossentropy"], "unknown loss"),
        (["run", "--dtype", "float8"], "unknown dtype"),
        (["run", "--budget", "-1"], "must be >= 0"),
        (["run", "--budget", "ten"], "is not an integer"),
        (["run", "--seed", "x"], "is not an integer"),
        (["run", "--seconds", "0"], "must be a number of seconds"),
        (["run", "--budget", "3", "--seconds", "3"], "not allowed with"),
        (["run", "--impl", "nosuchmodule_xyz:f", "--loss", "softplus"], "cannot load"),
        (["run", "--impl", "json:dumps"], "name the loss"),
        (["run", "--impl", "naive:softplus", "--out", "/proc/lossfuzz/r.json"], "cannot write"),
        (["run", "--impl", "naive:softplus", "--out", "/dev/null"], "not a regular file"),
        (["repro", "/nonexistent/results.json"], "no such file"),
    ],
)
def test_bad_input_to_run_and_repro_is_one_line_and_exit_2(args, message, tmp_path):
    r = lossfuzz(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()  # no half-written output


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"schema": "lossfuzz/results/1", "cells": [', "not valid JSON"),
        (
            '{"schema": "lossfuzz/results/9", "cells": [], "findings": []}',
            "schema 'lossfuzz/results/9'",
        ),
        ("[1, 2]", "not a lossfuzz results file"),
        ('{"schema": "lossfuzz/results/1", "cells": {}}', "cells: expected a list"),
    ],
)
def test_repro_of_a_broken_results_file_is_one_line_and_exit_2(content, message, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(content)
    r = lossfuzz("repro", str(path))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def make_plugin(root):
    """A package shipping impls through the lossfuzz.impls entry point, laid out as pip would."""
    (root / "fakeimpls.py").write_text(
        "from lossfuzz.harness.registry import implementation\n"
        "implementation('fake:log1p_softplus', loss='softplus', call='np.log1p(np.exp(logits))')\n"
        "implementation('fake:needs_missing', loss='softplus', call='np.log1p(np.exp(logits))',\n"
        "               requires=('lossfuzz_missing_framework',))\n"
    )
    info = root / "fakeimpls-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeimpls\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lossfuzz.impls]\nfake = fakeimpls\n")


def test_a_package_adds_impls_through_the_entry_point_group(tmp_path):
    make_plugin(tmp_path)
    out = tmp_path / "r.json"
    r = lossfuzz(
        "run",
        "--impl",
        "fake:log1p_softplus",
        "--dtype",
        "float32",
        "--budget",
        "2",
        "--out",
        str(out),
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["cells"][0]["impl"] == "fake:log1p_softplus"


def test_a_framework_that_is_not_installed_is_skipped_with_one_line(tmp_path):
    make_plugin(tmp_path)
    out = tmp_path / "r.json"
    r = lossfuzz(
        "run",
        "--impl",
        "fake:needs_missing",
        "--impl",
        "fake:log1p_softplus",
        "--dtype",
        "float64",
        "--budget",
        "2",
        "--out",
        str(out),
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and "lossfuzz_missing_framework is not installed" in skipped[0]
    data = json.loads(out.read_text())
    assert data["skipped"][0]["impl"] == "fake:needs_missing"
    assert {c["impl"] for c in data["cells"]} == {"fake:log1p_softplus"}


def test_only_skipped_impls_is_an_error_not_an_empty_run(tmp_path):
    make_plugin(tmp_path)
    r = lossfuzz(
        "run", "--impl", "fake:needs_missing", env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path
    )
    assert r.returncode == 2 and "no cells to run" in r.stderr
    assert not (tmp_path / "out").exists()


def _without_timing(data):
    data = {k: v for k, v in data.items() if k not in ("created", "elapsed_seconds")}
    data["cells"] = [{k: v for k, v in c.items() if k != "seconds"} for c in data["cells"]]
    return data


def test_the_same_seed_and_budget_give_the_same_results_file(tmp_path):
    args = [
        "run",
        "--impl",
        "torch:cross_entropy",
        "--impl",
        "naive:softplus",
        "--dtype",
        "bfloat16",
        "--budget",
        "8",
        "--seed",
        "3",
    ]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert lossfuzz(*args, "--out", str(a)).returncode == 0
    assert lossfuzz(*args, "--out", str(b)).returncode == 0
    assert _without_timing(json.loads(a.read_text())) == _without_timing(json.loads(b.read_text()))


def test_framework_warnings_stay_out_of_the_campaign_output(tmp_path):
    # Keras warns on a single class, scikit-learn on probabilities that do not sum to 1
    r = lossfuzz(
        "run",
        "--impl",
        "keras:categorical_crossentropy",
        "--impl",
        "sklearn:log_loss",
        "--dtype",
        "float64",
        "--budget",
        "3",
        "--out",
        str(tmp_path / "r.json"),
    )
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "Warning" not in r.stdout
