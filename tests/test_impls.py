"""Every registered impl computes the loss it claims, in every dtype it declares.

At benign inputs (|logits| <= 3, probabilities in [0.05, 0.95]) every impl, the
naive formulas included, is within a few ULPs; a wrongly wired impl (swapped
labels and logits, a wrong axis, a missing smoothing) is off by millions.
"""

import subprocess
import sys

import numpy as np
import pytest

from lossfuzz import oracles
from lossfuzz.harness.registry import (
    IMPLS,
    UnknownName,
    availability,
    get_impl,
    implementation,
    load_all,
    skipped_reason,
)
from lossfuzz.harness.ulp import ulp_error

WIRING_TOLERANCE = 32.0  # ULPs; measured worst at these inputs is 14.7 (naive:softplus)


def benign_inputs(loss: str) -> dict:
    spec = oracles.get_loss(loss)
    rng = np.random.default_rng(0)
    if spec.shape == "elementwise":
        if spec.primary == "logits":
            inputs = {"logits": rng.uniform(-3, 3, 6)}
        else:
            inputs = {"probs": rng.uniform(0.05, 0.95, 6)}
        if spec.labels:
            inputs["labels"] = rng.uniform(0, 1, 6)
        if "pos_weight" in spec.params:
            inputs["pos_weight"] = np.full(6, 1.5)
        return inputs
    x = rng.uniform(-3, 3, (3, 4))
    if spec.primary == "logits":
        inputs = {"logits": x}
    else:
        inputs = {"probs": np.abs(x) / np.abs(x).sum(-1, keepdims=True)}
    if spec.labels == "dense":
        inputs["labels"] = np.eye(4)[[0, 2, 3]] * 0.75 + 0.0625
    elif spec.labels == "sparse":
        inputs["labels"] = np.array([0, 2, 3])
    return inputs


CELLS = [(i.id, d) for i in load_all().values() for d in i.dtypes]


@pytest.mark.parametrize("impl_id,dtype", CELLS, ids=[f"{i}-{d}" for i, d in CELLS])
def test_impl_computes_its_loss_at_benign_inputs(impl_id, dtype):
    impl = get_impl(impl_id)
    reason = skipped_reason(impl)
    if reason:
        pytest.skip(reason)
    ev = oracles.evaluate(impl.loss, dtype, **benign_inputs(impl.loss))
    got = np.asarray(impl.answer(dict(ev.inputs)))
    assert got.shape == ev.reference.shape
    errors = [ulp_error(float(g), e, ev.fmt) for g, e in zip(got.ravel(), ev.exact.ravel())]
    assert max(errors) <= WIRING_TOLERANCE, (impl_id, dtype, errors)


@pytest.mark.parametrize(
    "impl_id",
    ["torch:cross_entropy", "torch:cross_entropy_probs", "keras:binary_crossentropy_from_logits"],
)
def test_label_smoothing_reaches_the_framework(impl_id):
    impl = get_impl(impl_id)
    if skipped_reason(impl):
        pytest.skip(skipped_reason(impl))
    inputs = dict(benign_inputs(impl.loss), label_smoothing=0.25)
    ev = oracles.evaluate(impl.loss, "float64", **inputs)
    got = np.asarray(impl.answer(dict(ev.inputs)))
    errors = [ulp_error(float(g), e, ev.fmt) for g, e in zip(got.ravel(), ev.exact.ravel())]
    assert max(errors) <= WIRING_TOLERANCE


def test_importing_the_harness_and_listing_impls_imports_no_framework():
    code = (
        "import sys, lossfuzz, lossfuzz.harness.registry as r; r.load_all(); "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_loss_of_the_design_has_impls_in_tf_keras_torch_and_naive():
    by_loss = {}
    for impl in load_all().values():
        by_loss.setdefault(impl.loss, set()).add(impl.backend)
    for loss in (
        "sigmoid_cross_entropy_with_logits",
        "softmax_cross_entropy_with_logits",
        "sparse_softmax_cross_entropy_with_logits",
    ):
        assert {"tf", "keras", "torch", "naive"} <= by_loss[loss], loss
    assert {"tf", "torch"} <= by_loss["weighted_sigmoid_cross_entropy_with_logits"]
    assert {"keras", "torch", "naive"} <= by_loss["binary_crossentropy"]


def test_unknown_impl_suggests_close_names():
    with pytest.raises(UnknownName, match="did you mean 'torch:binary_cross_entropy_with_logits'"):
        get_impl("torch:binary_cross_entropy_with_logit")


def test_registration_checks_its_id_loss_and_dtypes():
    with pytest.raises(ValueError, match="not backend:name"):
        implementation("nocolon", loss="softplus")
    with pytest.raises(UnknownName):
        implementation("user:x", loss="no_such_loss")
    with pytest.raises(ValueError, match="unknown dtypes"):
        implementation("user:x", loss="softplus", dtypes=("float8",))
    with pytest.raises(ValueError, match="registered twice"):
        implementation("naive:softplus", loss="softplus")(lambda inputs, dtype: None)
    assert "user:x" not in IMPLS


def test_a_missing_framework_is_one_line_of_reason():
    reason = availability("lossfuzz_no_such_framework")
    assert reason.startswith("lossfuzz_no_such_framework is not installed")
    assert "\n" not in reason
