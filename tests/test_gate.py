"""The regression gate: passes on an identical run, fails on each kind of regression, exits 2
when it cannot judge; baselines, policy files, JUnit XML and Markdown."""

import json
import xml.etree.ElementTree as ET

import pytest
from cli import lossfuzz

from lossfuzz.harness import campaign

IMPLS = ("naive:sigmoid_then_log", "torch:binary_cross_entropy_with_logits", "tf:softplus")


@pytest.fixture(scope="module")
def results():
    return campaign.run(
        campaign.select(impls=IMPLS, dtypes=("float32",)), budget=3, seed=0
    ).to_json()


@pytest.fixture()
def files(results, tmp_path):
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results))
    base = tmp_path / "baseline.json"
    r = lossfuzz("baseline", str(res), "-o", str(base))
    assert r.returncode == 0, r.stderr
    return res, base


def rewrite(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def cell(data, impl):
    return next(c for c in data["cells"] if c["impl"] == impl)


def test_baseline_records_max_ulp_and_classes_per_cell_with_versions_and_seed(files, results):
    _, base = files
    b = json.loads(base.read_text())
    assert b["schema"] == "lossfuzz/baseline/1" and b["seed"] == 0 and b["versions"]["torch"]
    c = b["cells"]["naive:sigmoid_then_log [float32]"]
    assert "nan" in c["classes"] and c["max_ulp"] == "inf"
    assert len(b["cells"]) == len(results["cells"])


def test_gate_passes_on_the_identical_run(files):
    res, base = files
    r = lossfuzz("gate", str(res), "--baseline", str(base))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: 0 regressions" in r.stdout


def test_gate_passes_on_a_rerun_with_the_same_seed(files, tmp_path):
    _, base = files
    again = tmp_path / "again.json"
    r = lossfuzz(
        "run",
        *sum((["--impl", i] for i in IMPLS), []),
        "--dtype",
        "float32",
        "--budget",
        "3",
        "--seed",
        "0",
        "--out",
        str(again),
    )
    assert r.returncode == 0, r.stderr
    assert lossfuzz("gate", str(again), "--baseline", str(base)).returncode == 0


@pytest.mark.parametrize(
    "change,mark,text",
    [
        (lambda d: cell(d, "tf:softplus")["finite"]["counts"].update(nan=1), "!", "new nan"),
        (
            lambda d: cell(d, "tf:softplus")["finite"]["counts"].update(overflow=2),
            "!",
            "new overflow",
        ),
        (
            lambda d: cell(d, "tf:softplus")["special"]["counts"].update(nan=3),
            "!",
            "new nan at special values",
        ),
        (lambda d: cell(d, "tf:softplus")["finite"].update(max_finite_ulp=1e9), "+", "max ULP"),
        (lambda d: d["cells"].remove(cell(d, "tf:softplus")), "x", "cell disappeared"),
    ],
    ids=["new-nan", "new-overflow", "new-special-nan", "worse-ulp", "cell-disappeared"],
)
def test_gate_fails_on_each_kind_of_regression(files, change, mark, text):
    res, base = files
    rewrite(res, change)
    r = lossfuzz("gate", str(res), "--baseline", str(base))
    assert r.returncode == 1, r.stdout
    assert f"{mark} tf:softplus [float32]: {text}" in r.stdout and "REGRESSED" in r.stdout


def test_improvements_are_listed_but_pass(files):
    res, base = files
    rewrite(base, lambda b: b["cells"]["tf:softplus [float32]"].update(max_finite_ulp=1e9))
    r = lossfuzz("gate", str(res), "--baseline", str(base))
    assert r.returncode == 0 and "- tf:softplus [float32]: max ULP 1e+09" in r.stdout


def test_absolute_limit_in_the_policy(files, tmp_path):
    res, base = files
    (tmp_path / "lossfuzz.toml").write_text('[limits]\n"naive:* [float32]" = 4\n')
    r = lossfuzz("gate", str(res), "--baseline", str(base), cwd=tmp_path)
    assert (
        r.returncode == 1
        and "L naive:sigmoid_then_log [float32]: max ULP inf above the limit 4" in r.stdout
    )


def test_known_failures_pass_while_failing_and_fail_once_fixed(files, tmp_path):
    res, base = files
    policy = tmp_path / "policy.toml"
    policy.write_text(
        "[[known_failures]]\nimpl = 'naive:sigmoid_then_log'\nclass = 'nan'\n"
        "reason = 'exp overflows'\nissue = 'seed 000'\n"
        "[[known_failures]]\nimpl = 'nothing:*'\nreason = 'stale entry'\n"
    )
    rewrite(res, lambda d: cell(d, "naive:sigmoid_then_log")["finite"]["counts"].update(overflow=5))
    r = lossfuzz("gate", str(res), "--baseline", str(base), "--config", str(policy))
    assert r.returncode == 0, r.stdout  # a known failure may change how it fails
    assert "known failure nothing:* [*] matches no cell" in r.stderr

    def fixed(d):
        for tally in ("finite", "special"):
            cell(d, "naive:sigmoid_then_log")[tally]["counts"].pop("nan", None)

    rewrite(res, fixed)
    r = lossfuzz("gate", str(res), "--baseline", str(base), "--config", str(policy))
    assert (
        r.returncode == 1 and "* naive:sigmoid_then_log [float32]: known failure fixed" in r.stdout
    )


def test_accuracy_and_special_values_are_limited_apart(files, tmp_path):
    res, base = files
    # torch's BCE with logits is NaN at infinite logits: special values only
    name = "torch:binary_cross_entropy_with_logits [float32]"
    (tmp_path / "lossfuzz.toml").write_text(
        f'[special_limits]\n"{name.split()[0]} [float32]" = 0\n'
    )
    r = lossfuzz("gate", str(res), "--baseline", str(base), cwd=tmp_path)
    assert r.returncode == 1
    (line,) = [x for x in r.stdout.splitlines() if x.strip().startswith(f"L {name}")]
    assert "wrong answers at special values, above the limit 0" in line
    # a limit on finite-input accuracy does not count special values
    (tmp_path / "lossfuzz.toml").write_text(f'[limits]\n"{name.split()[0]} [float32]" = 1e9\n')
    assert lossfuzz("gate", str(res), "--baseline", str(base), cwd=tmp_path).returncode == 0


def test_policy_in_pyproject_selects_the_run(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lossfuzz]\nimpls = ["naive:softplus"]\ndtypes = ["float16"]\nbudget = 2\nseed = 5\n'
        'quantities = ["value"]\n'
    )
    r = lossfuzz("run", "--out", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert [(c["impl"], c["dtype"]) for c in data["cells"]] == [("naive:softplus", "float16")]
    assert data["seed"] == 5 and data["budget"] == 2


def test_junit_has_a_case_per_cell_and_the_reproducer_in_failures(files, tmp_path, results):
    res, base = files
    rewrite(
        res,
        lambda d: cell(d, "torch:binary_cross_entropy_with_logits")["finite"]["counts"].update(
            sign=1
        ),
    )
    xml_path = tmp_path / "junit.xml"
    r = lossfuzz("gate", str(res), "--baseline", str(base), "--junit", str(xml_path))
    assert r.returncode == 1
    suite = ET.parse(xml_path).getroot()
    cases = suite.findall("testcase")
    assert len(cases) == len(results["cells"]) and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert failed[0].get("name") == "torch:binary_cross_entropy_with_logits [float32]"
    assert "# lossfuzz reproducer" in failed[0].find("failure").text


def test_markdown_format_for_job_summaries(files):
    res, base = files
    rewrite(res, lambda d: cell(d, "tf:softplus")["finite"]["counts"].update(nan=1))
    r = lossfuzz("gate", str(res), "--baseline", str(base), "--format", "markdown")
    assert r.returncode == 1 and r.stdout.startswith("## lossfuzz gate")
    assert "| ! | `tf:softplus [float32]` | new nan |" in r.stdout


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda res, base, tmp: base.unlink(), "no such file"),
        (lambda res, base, tmp: (base.unlink(), base.mkdir()), "is a directory"),
        (lambda res, base, tmp: base.write_text("{"), "not valid JSON"),
        (
            lambda res, base, tmp: base.write_text(
                '{"schema": "lossfuzz/baseline/0", "cells": {}}'
            ),
            "schema",
        ),
        (lambda res, base, tmp: res.write_text('{"schema": "lossfuzz/results/9"}'), "schema"),
        (lambda res, base, tmp: res.write_text("not json"), "not valid JSON"),
        (lambda res, base, tmp: rewrite(res, lambda d: d["cells"].clear()), "no common cells"),
        (lambda res, base, tmp: (tmp / "lossfuzz.toml").write_text("[limits"), "not valid TOML"),
        (lambda res, base, tmp: (tmp / "lossfuzz.toml").write_text("budgett = 3"), "unknown keys"),
    ],
    ids=[
        "missing-baseline",
        "baseline-is-a-directory",
        "truncated-baseline",
        "baseline-schema",
        "results-schema",
        "results-not-json",
        "no-common-cells",
        "bad-toml",
        "unknown-policy-key",
    ],
)
def test_gate_exits_2_with_one_line_when_it_cannot_judge(files, tmp_path, setup, message):
    res, base = files
    setup(res, base, tmp_path)
    r = lossfuzz("gate", str(res), "--baseline", str(base), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
