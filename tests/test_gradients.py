"""Gradient cells: framework autodiff scored against the exact gradient.

The exact gradients at extreme points are pinned per dtype (values computed
independently: mpmath at 5000 bits and brute-force rounding, tests/independent.py).
The framework side is checked on real PyTorch, TensorFlow and Keras: every
impl's gradient is wired right at benign inputs, and the harness classes the
gradient failures it exists to find, at inputs where they are known.
"""

import json
import math

import numpy as np
import pytest
from cli import run_reproducer
from independent import same
from test_impls import benign_inputs

from lossfuzz import oracles
from lossfuzz.harness import campaign, gate
from lossfuzz.harness.cell import documented_by
from lossfuzz.harness.policy import Policy
from lossfuzz.harness.registry import get_impl, load_all, skipped_reason
from lossfuzz.harness.reproducer import reproducer
from lossfuzz.harness.results import CellKey, Quantity, Results
from lossfuzz.harness.scoring import Engine, score

DTYPES = ("float16", "bfloat16", "float32", "float64")
SIGMOID_CE = "sigmoid_cross_entropy_with_logits"

# (loss, wrt, inputs, index) -> the exact gradient rounded to float16, bfloat16, float32, float64
PINNED = [
    (
        SIGMOID_CE,
        "logits",
        dict(logits=20.0, labels=1.0),
        0,  # -sigmoid(-20) = -2.06e-9: no cancellation in sigmoid(x) - 1
        ["-0x0.0p+0", "-0x1.1cp-29", "-0x1.1b4866p-29", "-0x1.1b4865556b5d5p-29"],
    ),
    (
        SIGMOID_CE,
        "logits",
        dict(logits=10.0, labels=1.0),
        0,
        ["-0x1.7dp-15", "-0x1.7cp-15", "-0x1.7cd32ep-15", "-0x1.7cd32e41dd960p-15"],
    ),
    (
        SIGMOID_CE,
        "logits",
        dict(logits=-100.0, labels=0.0),
        0,  # sigmoid(-100) = 3.7e-44: a float32 subnormal
        ["0x0.0p+0", "0x0.0p+0", "0x1.bp-145", "0x1.a8c1f14e2af5dp-145"],
    ),
    (
        "softplus",
        "logits",
        dict(logits=-100.0),
        0,
        ["0x0.0p+0", "0x0.0p+0", "0x1.bp-145", "0x1.a8c1f14e2af5dp-145"],
    ),
    (
        "sigmoid",
        "logits",
        dict(logits=-17.0),
        0,  # sigmoid(-17) sigmoid(17) = 4.14e-8: a float16 subnormal that rounds up
        ["0x1.0p-24", "0x1.64p-25", "0x1.639e3p-25", "0x1.639e2f87a66cep-25"],
    ),
    (
        "softmax_cross_entropy_with_logits",
        "logits",
        dict(logits=[[0.0, -20.0]], labels=[[1.0, 0.0]]),
        0,  # softmax_0 - 1 = -e^-20 / (1 + e^-20)
        ["-0x0.0p+0", "-0x1.1cp-29", "-0x1.1b4866p-29", "-0x1.1b4865556b5d5p-29"],
    ),
    (
        "softmax_cross_entropy_with_logits",
        "logits",
        dict(logits=[[0.0, -20.0]], labels=[[1.0, 0.0]]),
        1,
        ["0x0.0p+0", "0x1.1cp-29", "0x1.1b4866p-29", "0x1.1b4865556b5d5p-29"],
    ),
]


@pytest.mark.parametrize("loss,wrt,inputs,index,expected", PINNED)
@pytest.mark.parametrize("d", range(4), ids=DTYPES)
def test_exact_gradients_at_extreme_points_are_pinned(loss, wrt, inputs, index, expected, d):
    got = np.asarray(oracles.gradient(loss, wrt, DTYPES[d], **inputs)).ravel()[index]
    assert same(got, float.fromhex(expected[d])), (float(got).hex(), expected[d])


# ------------------------------------------------------------------ framework gradients

GRAD_CELLS = [
    (i.id, w, d)
    for i in load_all().values()
    for w in i.gradients
    for d in i.dtypes
    if d in i.autodiff.dtypes
]


@pytest.mark.parametrize("impl_id,wrt,dtype", GRAD_CELLS, ids=["-".join(c) for c in GRAD_CELLS])
def test_every_impl_gradient_is_wired_right_at_benign_inputs(impl_id, wrt, dtype):
    impl = get_impl(impl_id)
    reason = skipped_reason(impl, Quantity.grad(wrt))
    if reason:
        pytest.skip(reason)
    ev = oracles.evaluate_gradient(impl.loss, wrt, dtype, **benign_inputs(impl.loss))
    got = np.asarray(impl.answer(dict(ev.inputs), Quantity.grad(wrt)))
    assert got.shape == ev.reference.shape
    # gradients cancel (sigmoid(x) - z), so measure against the scale of the terms, ~1: a
    # miswired gradient (the wrong input, a lost sign or smoothing) is off by O(1)
    eps = 2.0 ** (1 - ev.fmt.precision)
    err = np.abs(got.astype(np.float64) - ev.exact.astype(np.float64))
    assert float(err.max()) <= 32 * eps, (impl_id, wrt, dtype, got, ev.reference)


def test_gradient_cells_cover_every_impl_with_autodiff_and_skip_what_has_none():
    sel = campaign.select(quantities=("grad",))
    covered = {(c.impl.id, c.quantity.wrt) for c in sel.cells}
    for impl in load_all().values():
        if impl.backend in ("torch", "tf", "keras", "naive") and impl.loss not in (
            "softmax",
            "log_softmax",  # vector outputs: no loss gradient (see README)
        ):
            assert (impl.id, impl.gradients[0]) in covered, impl.id
        if impl.backend in ("scipy", "sklearn"):
            assert not impl.gradients
    assert ("tf:softmax_cross_entropy_with_logits", "labels") in covered
    assert ("torch:cross_entropy", "labels") not in covered  # class indices have no gradient
    skipped = [s for s in sel.skipped if s.what.startswith("naive:")]
    assert skipped and all("bfloat16" in s.reason for s in skipped)


def _observe(impl_id, dtype, wrt, **inputs):
    """The first scored element (of a row, for a class-axis gradient)."""
    return score(Engine(), get_impl(impl_id), dtype, inputs, 4.0, Quantity.grad(wrt))[0]


def test_torch_loses_the_tiny_gradient_that_tensorflow_keeps():
    # d/dx at x = 20, z = 1 is -sigmoid(-20) = -2.06e-9; sigmoid(20) - 1 rounds to 0 in float32
    torch_o = _observe(
        "torch:binary_cross_entropy_with_logits", "float32", "logits", logits=20.0, labels=1.0
    )
    assert torch_o.cls == "underflow" and torch_o.got == 0
    tf_o = _observe(
        "tf:sigmoid_cross_entropy_with_logits", "float32", "logits", logits=20.0, labels=1.0
    )
    assert tf_o.cls == "exact" and tf_o.got == float.fromhex("-0x1.1b4866p-29")


def test_tensorflow_weighted_cross_entropy_gradient_at_zero_is_a_subgradient():
    # its formula uses |x| and max(-x, 0), whose derivatives at 0 do not add up to the
    # derivative of the smooth loss: (1 - z) sigmoid(0) - q z sigmoid(0)
    o = _observe(
        "tf:weighted_cross_entropy_with_logits",
        "float32",
        "logits",
        logits=0.0,
        labels=1.0,
        pos_weight=1.0,
    )
    assert float(o.reference) == -0.5 and o.got == 0.0 and o.cls == "underflow"
    o = _observe(
        "tf:weighted_cross_entropy_with_logits",
        "float32",
        "logits",
        logits=0.0,
        labels=0.5,
        pos_weight=1.0,
    )
    assert float(o.reference) == 0.0 and o.got == 0.5 and o.cls == "inaccurate"


def test_naive_formulas_are_differentiated_through_torch_numpy():
    # d/dx of "sigmoid, then log" at x = 20, z = 0: 1 - sigmoid(20) rounds to 0, log'(0) = inf
    o = _observe("naive:sigmoid_then_log", "float32", "logits", logits=20.0, labels=0.0)
    assert o.cls == "overflow" and math.isinf(o.got)
    o = _observe("naive:stable_sigmoid_ce", "float32", "logits", logits=-5.0, labels=0.25)
    assert o.cls in ("exact", "ok")


def test_documented_gradient_deviations_are_labelled_and_others_are_not():
    keras_bce = get_impl("keras:binary_crossentropy")
    o = _observe("keras:binary_crossentropy", "float32", "probs", probs=0.0, labels=0.5)
    assert (
        o.cls == "missed_inf"
        and documented_by(keras_bce, o, Quantity.grad("probs")).quantity == "grad"
    )
    tf_ce = get_impl("tf:softmax_cross_entropy_with_logits")
    o = _observe(
        "tf:softmax_cross_entropy_with_logits",
        "float32",
        "logits",
        logits=[[0.0, 0.0, 0.0]],
        labels=[[0.0, 0.0, 0.0]],
    )
    # TF's gradient is softmax - labels: right only for label rows that sum to 1
    assert (
        o.got == np.float32(1 / 3) and documented_by(tf_ce, o, Quantity.grad("logits")) is not None
    )
    o = _observe(
        "tf:softmax_cross_entropy_with_logits",
        "float32",
        "logits",
        logits=[[0.0, -20.0]],
        labels=[[1.0, 0.0]],
    )
    assert documented_by(tf_ce, o, Quantity.grad("logits")) is None


@pytest.mark.parametrize(
    "impl_id,inputs",
    [
        ("torch:binary_cross_entropy_with_logits", dict(logits=[10.0], labels=[1.0])),
        ("tf:softmax_cross_entropy_with_logits", dict(logits=[[0.0, -20.0]], labels=[[0.0, 1.0]])),
        ("keras:binary_crossentropy_from_logits", dict(logits=[-9.0], labels=[0.5])),
        ("naive:sigmoid_then_log", dict(logits=[12.0], labels=[0.0])),
    ],
)
def test_gradient_reproducer_prints_what_the_harness_measured(impl_id, inputs, tmp_path):
    impl = get_impl(impl_id)
    wrt = "logits"
    observations = score(Engine(), impl, "float16", inputs, 4.0, Quantity.grad(wrt))
    o = observations[-1]
    code = reproducer(
        impl, "float16", o.inputs, "x", float(o.reference), o.index, Quantity.grad(wrt)
    )
    assert f"d/d{wrt}" in code.splitlines()[0]
    stdout = run_reproducer(code, tmp_path)
    got = float(stdout.split("got:")[1].split()[0])
    assert same(got, o.got), (got, o.got)


def test_gate_names_gradient_cells_and_limits_them_apart():
    key = CellKey("torch:softplus", "float32", Quantity.grad("logits"))
    assert key.name == "torch:softplus d/dlogits [float32]"
    policy = Policy(limits={"torch:* [float32]": 4, "torch:* d/dlog* [float32]": 1e9})
    assert policy.limit(CellKey("torch:softplus", "float32")) == 4
    assert policy.limit(key) == 1e9
    assert policy.limit(CellKey("torch:softplus", "float32", Quantity.grad("labels"))) is None


def test_results_cells_carry_quantity_and_autodiff(tmp_path):
    sel = campaign.select(impls=("tf:softplus",), dtypes=("float32",))
    data = Results.from_json(json.loads(json.dumps(campaign.run(sel, budget=2).to_json())))
    by = {c.quantity.kind: c for c in data.cells}
    assert by["value"].quantity.wrt is None and by["value"].autodiff is None
    assert by["grad"].quantity.wrt == "logits" and by["grad"].autodiff == "tf.GradientTape"
    base = gate.baseline(data).to_json()
    assert set(base["cells"]) == {"tf:softplus [float32]", "tf:softplus d/dlogits [float32]"}


def test_torch_bce_backward_clamp_vanishes_in_float16():
    # the backward divides by max(p (1 - p), 1e-12); 1e-12 is 0 in float16, so p = 0, z = 0
    # gives 0 / 0 where the exact gradient is 1/(1 - p) = 1: NaN, and not explained by the clamp
    o = _observe("torch:binary_cross_entropy", "float16", "probs", probs=0.0, labels=0.0)
    assert o.cls == "nan" and float(o.reference) == 1.0
    assert documented_by(get_impl("torch:binary_cross_entropy"), o, Quantity.grad("probs")) is None
    o = _observe("torch:binary_cross_entropy", "float32", "probs", probs=0.0, labels=0.0)
    assert o.got == 0.0 and documented_by(
        get_impl("torch:binary_cross_entropy"), o, Quantity.grad("probs")
    )
