"""Special values, API contracts and pitfalls: the oracle's rules and what frameworks do."""

import json
import math

import numpy as np
import pytest
from cli import lossfuzz

from lossfuzz import oracles
from lossfuzz.harness import contracts


@pytest.mark.parametrize(
    "loss,inputs,value",
    contracts.SPECIAL,
    ids=[contracts.rule(*row) for row in contracts.SPECIAL],
)
def test_special_value(loss, inputs, value):
    got = float(np.asarray(oracles.exact(loss, "float32", **inputs), dtype=object).ravel()[0])
    if math.isnan(value):
        assert math.isnan(got)
    elif math.isinf(value) or value == 0:
        assert got == value
    else:
        assert got == pytest.approx(value, rel=1e-15)


@pytest.fixture(scope="module")
def table():
    return contracts.run().to_json()


def _row(table, impl, check):
    return next(r for r in table["contracts"] if r["impl"] == impl and r["check"] == check)


def test_contracts_cover_tensorflow_keras_and_pytorch(table):
    backends = {r["impl"].partition(":")[0] for r in table["contracts"]}
    # every framework impl the registry has, eager and compiled (JAX's are jitted)
    assert backends == {"tf", "keras", "torch", "tf-xla", "keras-xla", "torch-compile", "jax"}
    checks = {r["check"] for r in table["contracts"]}
    for check in (
        "shape mismatch",
        "class index -1",
        "class index == classes",
        "empty batch",
        "one class",
        "probability above 1",
        "label above 1",
        "strided input",
        "broadcast labels",
        "integer labels",
        "mixed float dtypes",
    ):
        assert check in checks, check


def test_silent_wrong_answers_and_documented_errors_are_told_apart(table):
    # labels of 1.5 are outside what TF documents ("between 0 and 1, inclusive"); it returns
    # a negative loss without a word
    r = _row(table, "tf:sigmoid_cross_entropy_with_logits", "label above 1")
    assert r["verdict"].startswith("SILENT") and "-1.45141" in r["observed"]
    r = _row(table, "torch:binary_cross_entropy", "probability above 1")
    assert r["verdict"] == "ok: raises" and "between 0 and 1" in r["observed"]
    for impl in ("tf:sparse_softmax_cross_entropy_with_logits", "torch:cross_entropy"):
        assert _row(table, impl, "class index == classes")["verdict"].startswith("ok: raises")
    r = _row(table, "torch:cross_entropy", "one class")
    assert r["verdict"] == "ok: the loss's value"  # always 0, the NLABELS = 1 pitfall


def test_special_values_table_has_each_framework_beside_the_rule(table):
    row = next(
        v
        for v in table["special_values"]
        if v["rule"] == "sigmoid_cross_entropy_with_logits(logits=+inf, labels=1) -> 0"
    )
    by = {a["impl"]: a for a in row["answers"]}
    assert by["tf:sigmoid_cross_entropy_with_logits"]["verdict"] == "differs"  # NaN
    assert "nan" in by["tf:sigmoid_cross_entropy_with_logits"]["observed"]


def test_pitfalls_measure_the_seeds_claims(table):
    p = {x["pitfall"]: x for x in table["pitfalls"]}
    assert "0, 0, 0" in p["softmax over a single output (NLABELS = 1)"]["measured"]
    two = p["binary CE summed over a one-hot 2-way output, as categorical CE"]
    assert two["error"].startswith("ratio 2 ")


def test_lossfuzz_contracts_writes_a_file_the_report_renders(tmp_path):
    out = tmp_path / "c.json"
    r = lossfuzz("contracts", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "silent" in r.stdout
    data = json.loads(out.read_text())
    assert data["contracts"]["schema"] == "lossfuzz/contracts/1"
    r = lossfuzz("report", str(out), "-o", str(tmp_path / "c.html"))
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "c.html").read_text()
    assert "Contracts and pitfalls" in html and "SILENT" in html
