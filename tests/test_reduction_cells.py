"""Reduction cells: frameworks' mean and sum over batches of up to a million rows,
scored against the exact sum of the exact losses. The failures pinned here are real
framework behaviour measured on TensorFlow 2.21 and PyTorch 2.13 (CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cli import lossfuzz, run_reproducer

from lossfuzz.harness import campaign
from lossfuzz.harness.policy import Policy
from lossfuzz.harness.registry import get_impl, load_all
from lossfuzz.harness.reproducer import reproducer
from lossfuzz.harness.results import CellKey, Quantity
from lossfuzz.harness.scoring import Engine, score
from lossfuzz.harness.search import reduction_tolerance, rows_sound
from lossfuzz.oracles import get_loss

SIGMOID_CE = "sigmoid_cross_entropy_with_logits"


def _one(impl_id, dtype, reduction, batch, **rows):
    inputs = {k: np.asarray(v, dtype=np.float64).astype(dtype) for k, v in rows.items()}
    (o,) = score(
        Engine(),
        get_impl(impl_id),
        dtype,
        inputs,
        4.0 + math.log2(batch),
        Quantity.reduce(reduction, batch),
    )
    return o


def test_tf_reduce_mean_of_a_million_float16_losses_is_nan_where_pytorch_is_exact():
    rows = {"logits": [0.0], "labels": [0.0]}  # every loss is log 2
    tf = _one("tf:sigmoid_cross_entropy_with_logits", "float16", "mean", 10**6, **rows)
    assert tf.cls == "nan" and float(tf.reference) == float(np.float16(math.log(2)))
    torch = _one("torch:binary_cross_entropy_with_logits", "float16", "mean", 10**6, **rows)
    assert torch.cls == "exact"


def test_tf_reduce_mean_overflows_where_the_mean_is_finite():
    # a thousand losses of 2e37 sum past float32's 3.4e38 before the division
    o = _one(
        "tf:sigmoid_cross_entropy_with_logits", "float32", "mean", 1000, logits=[2e37], labels=[0.0]
    )
    assert o.cls == "overflow" and math.isinf(o.got) and 1.9e37 < float(o.exact) < 2.1e37


def test_xla_sums_a_million_float32_losses_with_thousands_of_ulp_error():
    o = _one(
        "tf-xla:sigmoid_cross_entropy_with_logits",
        "float32",
        "mean",
        10**6,
        logits=[0.0],
        labels=[0.0],
    )
    eager = _one(
        "tf:sigmoid_cross_entropy_with_logits", "float32", "mean", 10**6, logits=[0.0], labels=[0.0]
    )
    assert o.cls == "inaccurate" and o.score.ulp > 1000
    assert eager.score.ulp < o.score.ulp


def test_tf_flushes_a_sum_of_subnormal_losses_to_zero():
    # softplus(-102) = 5e-45 is a float32 subnormal, computed right alone; TensorFlow's
    # reduction flushes subnormals, so a thousand of them sum to 0 (exact 5e-42)
    impl = get_impl("tf:sigmoid_cross_entropy_with_logits")
    rows = {"logits": np.array([-102.0], np.float32), "labels": np.zeros(1, np.float32)}
    assert rows_sound(Engine(), impl, "float32", rows)
    o = _one("tf:sigmoid_cross_entropy_with_logits", "float32", "sum", 1000, **rows)
    assert o.cls == "underflow" and o.got == 0.0


def test_an_error_from_rounding_each_loss_to_the_dtype_is_forgiven():
    # softplus(-17) = 4.1e-8 is 6e-8 in float16: 1000 of them sum to 6e-5 at best, not 4.1e-5
    rows = {"logits": np.array([-17.0], np.float16), "labels": np.zeros(1, np.float16)}
    assert rows_sound(Engine(), get_impl("tf:sigmoid_cross_entropy_with_logits"), "float16", rows)
    o = _one("tf:sigmoid_cross_entropy_with_logits", "float16", "sum", 1000, **rows)
    assert o.cls == "ok" and o.got == float(np.float16(1000 * 2.0**-24))
    assert o.score.ulp > 100  # its error from the exact sum, forgiven, not hidden


def test_every_framework_loss_has_mean_and_sum_and_its_twins_inherit_them():
    impls = load_all()
    losses = [
        i
        for i in impls.values()
        if i.backend in ("tf", "keras", "torch") and i.call and get_loss(i.loss).is_loss
    ]
    assert len(losses) == 18  # 16 framework losses and the two sigmoid-then-BCE compositions
    for impl in losses:
        assert set(impl.reduced) == {"mean", "sum"}, impl.id
        for twin in (t for t in impls.values() if t.eager == impl.id):
            assert twin.reduced == impl.reduced


def test_reduction_cells_are_named_by_reduction_and_batch_and_gated_apart():
    sel = campaign.select(
        impls=("torch:binary_cross_entropy_with_logits",),
        dtypes=("float16",),
        quantities=("reduction",),
        batches=(10, 1000),
    )
    assert [(c.quantity.reduction, c.quantity.batch) for c in sel.cells] == [
        ("mean", 10),
        ("mean", 1000),
        ("sum", 10),
        ("sum", 1000),
    ]
    data = campaign.run(sel, budget=3, seed=0)
    names = [c.key.name for c in data.cells]
    assert "torch:binary_cross_entropy_with_logits mean of 1000 [float16]" in names
    for c in data.to_json()["cells"]:
        assert c["quantity"] == "reduction" and c["reduction"] in ("mean", "sum")
        assert c["tolerance"] == reduction_tolerance(4.0, c["batch"])
    assert CellKey("t:x", "float16", Quantity.reduce("sum", 10)).name == "t:x sum of 10 [float16]"
    policy = Policy(limits={"torch:* mean [float16]": 7, "torch:* [float16]": 1})
    assert policy.limit(CellKey("torch:x", "float16", Quantity.reduce("mean", 10))) == 7
    assert policy.limit(CellKey("torch:x", "float16", Quantity.reduce("sum", 10))) is None
    assert policy.limit(CellKey("torch:x", "float16")) == 1


def test_a_reduction_reproducer_builds_the_batch_in_the_framework_and_prints_what_was_measured(
    tmp_path,
):
    o = _one(
        "tf:sigmoid_cross_entropy_with_logits", "float16", "mean", 10**6, logits=[0.0], labels=[0.0]
    )
    impl = get_impl("tf:sigmoid_cross_entropy_with_logits")
    code = reproducer(
        impl,
        "float16",
        o.inputs,
        "0.693",
        float(o.reference),
        quantity=Quantity.reduce("mean", 10**6),
    )
    assert "tf.tile" in code and "reduce_mean" in code and len(code) < 2000
    assert run_reproducer(code, tmp_path).split("got:")[1].split()[0] == "nan"


@pytest.mark.parametrize("bad", ["0", "-3", "x"])
def test_a_bad_batch_size_is_one_line_and_exit_2(bad):
    r = lossfuzz("run", "--quantity", "reduction", "--batch", bad, "--out", "/tmp/never.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
