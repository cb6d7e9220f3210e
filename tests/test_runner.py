"""The engine: scoring, targeted search, shrinking, confirmation, determinism, reproducers."""

import math
import subprocess
import sys

import numpy as np
import pytest

from lossfuzz import oracles
from lossfuzz.harness.registry import IMPLS, get_impl, implementation, skipped_reason
from lossfuzz.harness.scoring import Engine, score
from lossfuzz.harness.search import run_cell
from lossfuzz.harness.shrink import finalise

E = Engine()  # impls called in this process

PEAK = 37.25  # the broken impl's known worst case


def _broken_sigmoid_ce(logits, labels):
    """Accurate except for a smooth bump of relative error that peaks at logits = 37.25."""
    x = logits.astype(np.float64)
    z = labels.astype(np.float64)
    exact = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    bump = 1 + 1e-3 * np.exp(-((x - PEAK) ** 2))
    return (exact * bump).astype(logits.dtype)


def _register(name, fn, loss="sigmoid_cross_entropy_with_logits"):
    impl_id = f"test:{name}"
    if impl_id not in IMPLS:
        implementation(impl_id, loss=loss)(fn)
    return IMPLS[impl_id]


def test_targeted_search_finds_the_known_worst_case_of_a_broken_impl():
    impl = _register("bump", _broken_sigmoid_ce)
    cell = run_cell(E, impl, "float64", budget=60, campaign_seed=0)
    worst = max(
        (g.worst for g in cell.groups.values() if g.cls == "inaccurate"), key=lambda o: o.score.ulp
    )
    x = float(worst.inputs["logits"][0])
    assert abs(x - PEAK) < 1.5, x
    # at the peak the relative error is 1e-3: about 2**42 ULPs of float64
    assert cell.max_ulp > 1e12


def test_same_seed_gives_the_same_cell_and_another_seed_explores_elsewhere():
    impl = get_impl("naive:sigmoid_then_log")
    a = run_cell(E, impl, "float16", budget=25, campaign_seed=7)
    b = run_cell(E, impl, "float16", budget=25, campaign_seed=7)
    assert (a.cases, dict(a.counts), a.max_ulp) == (b.cases, dict(b.counts), b.max_ulp)
    c = run_cell(E, impl, "float16", budget=25, campaign_seed=8)
    assert (a.cases, dict(a.counts)) != (c.cases, dict(c.counts))


def test_naive_sigmoid_then_log_overflows_and_turns_into_nan_in_float16():
    # the seeds' point: exp(-x) overflows past 11.09 in float16
    cell = run_cell(E, get_impl("naive:sigmoid_then_log"), "float16", budget=0, campaign_seed=0)
    assert {"nan", "underflow", "overflow"} <= set(cell.counts)
    found = {o.cls for o, _ in finalise(E, cell)}
    assert "nan" in found


def test_an_impl_that_raises_on_valid_input_is_an_error_finding():
    def raises(logits, labels):
        if np.any(np.abs(logits.astype(np.float64)) > 100):
            raise ValueError("logits too large")
        return np.zeros_like(logits)

    impl = _register("raises", raises)
    obs = score(
        E, impl, "float32", {"logits": np.array([1.0, 1e3]), "labels": np.array([0.0, 1.0])}, 4.0
    )
    classes = [o.cls for o in obs]
    assert (
        "error" in classes and obs[classes.index("error")].error == "ValueError: logits too large"
    )
    assert classes[0] in ("inaccurate", "underflow")  # the first case still scored


def test_a_wrong_shape_is_an_error_not_a_crash():
    impl = _register("shape", lambda logits, labels: np.zeros(3, dtype=logits.dtype))
    (o,) = score(E, impl, "float32", {"logits": np.array([1.0]), "labels": np.array([0.0])}, 4.0)
    assert o.cls == "error" and "shape" in o.error


def test_findings_are_shrunk_to_simple_inputs():
    impl = _register("bump2", _broken_sigmoid_ce)
    cell = run_cell(E, impl, "float32", budget=0, campaign_seed=0)
    cell.add(
        score(
            E, impl, "float32", {"logits": np.array([37.3141]), "labels": np.array([0.123456])}, 4.0
        )
    )
    kept = {o.cls: o for o, _ in finalise(E, cell)}
    o = kept["inaccurate"]
    # simpler label and logit, still a finding of the same size
    assert float(o.inputs["labels"][0]) in (0.0, 1.0, 0.5)
    assert len(repr(float(o.inputs["logits"][0]))) <= 5


def test_batch_dependent_answers_are_confirmed_on_the_single_case():
    # right in a batch of one, wrong only when batched: no finding survives
    def batch_dependent(logits, labels):
        out = (
            np.log1p(np.exp(-np.abs(logits.astype(np.float64))))
            + np.maximum(logits, 0)
            - logits * labels
        )
        return (out * (2.0 if logits.size > 1 else 1.0)).astype(logits.dtype)

    impl = _register("batchy", batch_dependent)
    cell = run_cell(E, impl, "float64", budget=0, campaign_seed=0)
    assert cell.counts["inaccurate"] > 0
    assert not [o for o, _ in finalise(E, cell) if o.cls == "inaccurate"]


def run_script(source: str) -> str:
    r = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize(
    "impl_id,dtype,inputs",
    [
        ("naive:sigmoid_then_log", "float16", {"logits": [-12.0], "labels": [0.0]}),
        (
            "torch:binary_cross_entropy_with_logits",
            "bfloat16",
            {"logits": [-12.0], "labels": [0.0]},
        ),
        (
            "tf:softmax_cross_entropy_with_logits",
            "float32",
            {"logits": [[88.75, 0.0]], "labels": [[0.0, 1.0]]},
        ),
        (
            "keras:sparse_categorical_crossentropy",
            "float64",
            {"probs": [[0.0, 1.0]], "labels": [0]},
        ),
    ],
)
def test_reproducer_runs_alone_and_prints_the_answer_the_harness_saw(impl_id, dtype, inputs):
    from lossfuzz.harness.cell import CellRun
    from lossfuzz.harness.findings import finding

    impl = get_impl(impl_id)
    if skipped_reason(impl):
        pytest.skip(skipped_reason(impl))
    spec = oracles.get_loss(impl.loss)
    inputs = {
        k: np.asarray(
            v, dtype=np.int64 if k == "labels" and spec.labels == "sparse" else np.float64
        )
        for k, v in inputs.items()
    }
    (o,) = score(E, impl, dtype, inputs, 4.0)[:1]
    f = finding(CellRun(impl, dtype), o)
    out = run_script(f.reproducer)
    got_line, exact_line = out.strip().splitlines()
    shown = float(got_line.split()[-1])
    assert shown == o.got or (math.isnan(shown) and math.isnan(o.got))
    assert f.exact in exact_line
