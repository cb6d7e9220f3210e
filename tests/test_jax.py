"""JAX and optax, the optional backend (``pip install lossfuzz[jax]``), jitted."""

from __future__ import annotations

import numpy as np
import pytest
from cli import run_reproducer

from lossfuzz.harness import registry
from lossfuzz.harness.registry import get_impl, load_all, skipped_reason
from lossfuzz.harness.reproducer import reproducer
from lossfuzz.harness.results import Quantity
from lossfuzz.harness.scoring import Engine, score

pytest.importorskip("jax")
pytest.importorskip("optax")

NAMED = {  # the functions the backend promises, by the impl that calls each
    "jax:sigmoid_binary_cross_entropy": "optax.sigmoid_binary_cross_entropy",
    "jax:softmax_cross_entropy": "optax.softmax_cross_entropy",
    "jax:softmax_cross_entropy_with_integer_labels": (
        "optax.softmax_cross_entropy_with_integer_labels"
    ),
    "jax:log_softmax": "jax.nn.log_softmax",
    "jax:logsumexp": "jax.nn.logsumexp",
    "jax:softplus": "jax.nn.softplus",
}


def test_the_promised_functions_are_impls_run_under_jit():
    impls = load_all()
    for impl_id, fn in NAMED.items():
        impl = impls[impl_id]
        assert impl.call.startswith(fn + "(") and impl.mode == "jax-jit"
        assert skipped_reason(impl) is None
    code = reproducer(
        impls["jax:softplus"], "float32", {"logits": np.array([1.0], np.float32)}, "x", 1.0
    )
    assert "jax.jit(loss_fn" in code and "jax_enable_x64" in code


def test_float64_stays_float64_and_jit_flushes_float32_subnormal_losses():
    impl = get_impl("jax:sigmoid_binary_cross_entropy")
    inputs = {"logits": np.array([100.0]), "labels": np.array([0.0])}
    (wide,) = score(Engine(), impl, "float64", inputs, 4.0, exact=True)
    assert wide.cls in ("exact", "ok") and wide.got == pytest.approx(100.0)
    inputs = {"logits": np.array([-100.0]), "labels": np.array([0.0])}
    (f64,) = score(Engine(), impl, "float64", inputs, 4.0, exact=True)
    assert f64.got == pytest.approx(3.7200759760208356e-44, rel=1e-12)  # x64 is on
    (f32,) = score(Engine(), impl, "float32", inputs, 4.0, exact=True)
    assert f32.cls == "underflow" and f32.got == 0.0  # exact 3.7e-44, a float32 subnormal


def test_gradients_and_reductions_run_through_jit():
    impl = get_impl("jax:softmax_cross_entropy_with_integer_labels")
    assert impl.gradients == ("logits",)
    inputs = {"logits": np.array([[0.0, 1.0, 2.0]], np.float32), "labels": np.array([2])}
    grads = score(Engine(), impl, "float32", inputs, 4.0, Quantity.grad("logits"), exact=True)
    assert all(o.cls in ("exact", "ok") for o in grads)
    (mean,) = score(Engine(), impl, "float32", inputs, 4.0 + 20, Quantity.reduce("mean", 10**6))
    assert mean.cls in ("exact", "ok")


def test_a_jax_reproducer_prints_what_the_harness_measured(tmp_path):
    impl = get_impl("jax:sigmoid_binary_cross_entropy")
    inputs = {"logits": np.array([-100.0], np.float32), "labels": np.array([0.0], np.float32)}
    (o,) = score(Engine(), impl, "float32", inputs, 4.0, exact=True)
    code = reproducer(impl, "float32", o.inputs, "3.7e-44", float(o.reference))
    assert float(run_reproducer(code, tmp_path).split("got:")[1].split()[0]) == o.got == 0.0


def test_without_jax_the_backend_is_skipped_with_one_line(monkeypatch):
    reason = (
        "optax is not installed or failed to import (ModuleNotFoundError: No module named 'optax')"
    )
    monkeypatch.setattr(registry, "availability", lambda m: reason if m == "optax" else None)
    assert skipped_reason(get_impl("jax:softplus")) == reason
    assert skipped_reason(get_impl("torch:softplus")) is None
