"""Public cross-entropy bugs still present in the pinned frameworks, each listed as a
finding of its own, with its reproducer (TensorFlow 2.21, Keras 3.15, PyTorch 2.13, JAX
0.10 with optax 0.2.8; every input and value below was measured on them).

A cell keeps one finding per root-cause group (class and regime of inputs), so a bug
that shares its class with another one is still listed: the NaN of
torch:binary_cross_entropy_with_logits at (logit +inf, label 1) beside the one at
(-inf, 0)."""

import numpy as np
import pytest

from lossfuzz.harness.cell import documented_by
from lossfuzz.harness.findings import finding
from lossfuzz.harness.registry import get_impl, skipped_reason
from lossfuzz.harness.results import VALUE, Quantity
from lossfuzz.harness.scoring import Engine, score
from lossfuzz.harness.search import run_cell
from lossfuzz.harness.shrink import finalise

E = Engine()


def _listed(impl_id, dtype, quantity=VALUE, budget=0):
    impl = get_impl(impl_id)
    if skipped_reason(impl):
        pytest.skip(skipped_reason(impl))
    cell = run_cell(E, impl, dtype, quantity, budget=budget, campaign_seed=0)
    return [finding(cell, o, g) for o, g in finalise(E, cell)]


def _has(findings, cls, *parts):
    """A finding of class ``cls`` whose group holds every one of ``parts``, with a reproducer."""
    for f in findings:
        if f.cls == cls and all(p in f.group for p in parts):
            assert f.reproducer.startswith("# lossfuzz reproducer")
            return f
    groups = [(f.cls, f.group) for f in findings]
    raise AssertionError(f"no {cls} finding at {parts}; found {groups}")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_pytorch_49844_102894_135359_bce_with_logits_is_nan_at_infinite_logits(dtype):
    found = _listed("torch:binary_cross_entropy_with_logits", dtype)
    # three inputs, three findings: (-inf, 0) and (+inf, 1) are exact 0, (-inf, 1/2) is inf
    a = _has(found, "nan", "logits=-inf", "labels=0")
    b = _has(found, "nan", "logits=+inf", "labels=1")
    _has(found, "nan", "logits=-inf", "labels=between")
    assert a.special and b.special and a.exact == "0.0" == b.exact


def test_pytorch_39435_bce_with_logits_loses_small_losses_at_negative_logits():
    # the log1p(exp(x)) of x < 0 is computed as log(1 + exp(x)): 1 + 4e-8 rounds to 1
    found = _listed("torch:binary_cross_entropy_with_logits", "float32")
    _has(found, "underflow", "logits=-large", "labels=0")
    f = _has(found, "inaccurate", "logits=-moderate", "labels=0")
    assert not f.special


def test_tensorflow_75256_sigmoid_cross_entropy_is_nan_at_infinite_logits():
    for impl in ("tf:sigmoid_cross_entropy_with_logits", "keras:binary_crossentropy_from_logits"):
        found = _listed(impl, "float32")
        _has(found, "nan", "logits=-inf", "labels=0")
        _has(found, "nan", "logits=+inf", "labels=between")


def test_tensorflow_sigmoid_cross_entropy_cancels_for_labels_just_below_1():
    # x - x z at x = 20, z = 1 - 2**-24: 1.9094098e-06 for an exact 1.194154e-06, eager only
    found = _listed("tf:sigmoid_cross_entropy_with_logits", "float32")
    f = _has(found, "inaccurate", "logits=+large", "labels=between")
    assert not f.special
    assert not [
        f
        for f in _listed("tf-xla:sigmoid_cross_entropy_with_logits", "float32")
        if f.cls == "inaccurate" and "logits=+large" in f.group and "labels=between" in f.group
    ]


def test_tensorflow_weighted_cross_entropy_nan_cancellation_and_gradient_at_zero():
    found = _listed("tf:weighted_cross_entropy_with_logits", "float32")
    _has(found, "nan", "logits=+inf", "labels=1")
    _has(found, "inaccurate", "logits=-moderate", "labels=0")
    grads = _listed("tf:weighted_cross_entropy_with_logits", "float32", Quantity.grad("logits"))
    _has(grads, "underflow", "logits=0", "labels=1")  # d/dx = 0 where the exact value is -1/2


def test_optax_431_sigmoid_binary_cross_entropy_is_nan_at_infinite_logits():
    found = _listed("jax:sigmoid_binary_cross_entropy", "float32")
    _has(found, "nan", "logits=-inf", "labels=0")
    _has(found, "nan", "logits=+inf", "labels=1")


@pytest.mark.parametrize(
    "impl",
    [
        "jax:softmax_cross_entropy",  # optax#896
        "tf:softmax_cross_entropy_with_logits",
        "keras:categorical_crossentropy_from_logits",
        "torch:cross_entropy_probs",
    ],
)
def test_optax_896_softmax_cross_entropy_is_nan_at_a_masked_logit_with_label_0(impl):
    # logits [0, -inf], labels [1, 0]: the masked class contributes 0 * -inf
    found = _listed(impl, "float32")
    f = _has(found, "nan", "-inf entries")
    assert "-inf entries with label mass" not in f.group and f.special


@pytest.mark.parametrize("impl", ["torch:log_softmax", "tf:log_softmax", "jax:log_softmax"])
def test_pytorch_6864_a_plus_inf_logit_makes_log_softmax_nan(impl):
    _has(_listed(impl, "float32"), "nan", "+inf entries")


@pytest.mark.parametrize("impl", ["torch:logsumexp", "tf:reduce_logsumexp", "jax:logsumexp"])
def test_scipy_18295_logsumexp_without_log1p_flushes_small_results_to_zero(impl):
    # logsumexp([0, -20]) = log1p(exp(-20)) = 2.06e-9; log(1 + 2e-9) is 0 in float32
    (o,) = score(E, get_impl(impl), "float32", {"logits": np.array([[0.0, -20.0]])}, 4.0)
    assert o.cls == "underflow" and float(o.exact) == pytest.approx(2.0611536e-09)


def test_tensorflow_flushes_subnormal_results_and_jax_documents_that_it_does():
    inputs = {"logits": np.array([-87.34], np.float32)}  # softplus is 1.17e-38, subnormal
    tf = get_impl("tf:softplus")
    (o,) = score(E, tf, "float32", inputs, 4.0)
    assert o.cls == "underflow" and documented_by(tf, o, dtype="float32") is None
    jax = get_impl("jax:softplus")
    (o,) = score(E, jax, "float32", inputs, 4.0)
    dev = documented_by(jax, o, dtype="float32")
    assert o.cls == "underflow" and dev is not None and dev.documented


def test_keras_binary_crossentropy_is_wrong_inside_its_clip_range_and_that_is_no_clip():
    # p = 1e-6, z = 0: -log(1 - p) computed as log(1 - p) in float32 is 1.3% off; the clip
    # to [1e-7, 1 - 1e-7] does not act on this input, so nothing explains the error
    impl = get_impl("keras:binary_crossentropy")
    inputs = {"probs": np.array([1e-6], np.float32), "labels": np.zeros(1, np.float32)}
    (o,) = score(E, impl, "float32", inputs, 4.0)
    assert o.cls == "inaccurate" and o.got == pytest.approx(1.0132795e-06)
    assert documented_by(impl, o, dtype="float32") is None
    # where the clip does act, the finding names it, but as the source's, not the docs'
    inputs = {"probs": np.zeros(1, np.float32), "labels": np.ones(1, np.float32)}
    (o,) = score(E, impl, "float32", inputs, 4.0)
    dev = documented_by(impl, o, dtype="float32")
    assert o.cls == "missed_inf" and dev is not None and not dev.documented


def test_pytorch_label_smoothing_overflows_the_smoothing_sum():
    impl = get_impl("torch:cross_entropy")
    inputs = {
        "logits": np.array([[0.0, -40000.0, -40000.0]], np.float16),
        "labels": np.array([0]),
        "label_smoothing": 0.1,
    }
    (o,) = score(E, impl, "float16", inputs, 4.0)
    assert o.cls == "overflow" and float(o.exact) == pytest.approx(2666.67, rel=1e-3)


def test_documented_mechanisms_explain_only_where_they_acted():
    bce = get_impl("torch:binary_cross_entropy")
    # log p = -103.3 < -100: the clamp acted, the answer is 100
    acted = {"probs": np.array([1e-45], np.float32), "labels": np.ones(1, np.float32)}
    (o,) = score(E, bce, "float32", acted, 4.0)
    assert o.got == 100.0 and documented_by(bce, o, dtype="float32").documented
    # softplus' threshold acts on its own element only, not on a row where another is > 20
    softplus = get_impl("torch:softplus")
    obs = score(E, softplus, "float64", {"logits": np.array([25.0, -50.0])}, 0.25)
    assert documented_by(softplus, obs[0], dtype="float64") is not None
    assert obs[1].cls in ("exact", "ok") or documented_by(softplus, obs[1], dtype="float64") is None


def test_composite_losses_users_write_are_checked_with_their_gradients():
    # sigmoid, then BCE: the clamp at -100 caps the loss of confident wrong logits, and
    # 1 - sigmoid(x) rounds to 0 (missed_inf at an infinite logit, underflow beyond 16.6)
    found = _listed("torch:bce_of_sigmoid", "float32")
    assert {"inaccurate", "underflow", "missed_inf"} <= {f.cls for f in found}
    _has(found, "inaccurate", "logits=-huge", "labels=1")
    grads = _listed("torch:bce_of_sigmoid", "float32", Quantity.grad("logits"))
    assert grads and all("torch.autograd.grad" in f.reproducer for f in grads)
    assert _listed("keras:bce_of_sigmoid", "float32")


def test_scikit_learn_log_loss_in_float32_clips_as_documented():
    impl = get_impl("sklearn:log_loss")
    assert "float32" in impl.dtypes and impl.min_classes == 2
    inputs = {"probs": np.array([[0.0, 1.0]], np.float32), "labels": np.array([0])}
    (o,) = score(E, impl, "float32", inputs, 4.0)
    dev = documented_by(impl, o, dtype="float32")
    assert o.cls == "missed_inf" and dev is not None and dev.documented
