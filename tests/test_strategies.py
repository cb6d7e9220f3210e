"""The input strategies: valid for the oracle, and reaching every regime they promise."""

import math

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lossfuzz import oracles
from lossfuzz.harness.strategies import danger_points, from_loss, logits, unit_interval
from lossfuzz.oracles.formats import FORMATS

LOSSES = sorted(oracles.losses())
# find() takes the loaded profile's max_examples (60 under CI) unless told otherwise
SEARCH = settings(max_examples=5000, database=None, derandomize=True)


def reach(strategy, condition):
    return find(strategy, condition, settings=SEARCH)


def ulp_at(fmt, x):
    return 2.0 ** (math.floor(math.log2(abs(x))) - fmt.precision + 1)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@settings(max_examples=15)
@given(data=st.data())
def test_every_drawn_batch_is_in_the_loss_domain(loss, dtype, data):
    inputs = data.draw(from_loss(loss, dtype=dtype, label_smoothing=True))
    ev = oracles.evaluate(loss, dtype, **inputs)  # raises DomainError if not
    assert ev.reference.size >= 1


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_danger_points_include_the_exp_overflow_thresholds(dtype):
    fmt = FORMATS[dtype]
    points = danger_points(fmt)
    one_ulp = ulp_at(fmt, fmt.overflow_threshold)
    assert any(abs(p - fmt.overflow_threshold) <= one_ulp for p in points)
    assert any(abs(p + fmt.overflow_threshold) <= one_ulp for p in points)


@pytest.mark.parametrize(
    "dtype,threshold",
    [("float16", 11.09), ("float32", 88.72), ("bfloat16", 88.72), ("float64", 709.78)],
)
def test_logits_reach_the_first_ulps_past_the_overflow_threshold(dtype, threshold):
    fmt = FORMATS[dtype]
    assert round(fmt.overflow_threshold, 2) == threshold
    one = ulp_at(fmt, threshold)
    above = reach(logits(dtype), lambda v: 0 < v - fmt.overflow_threshold <= 2 * one)
    below = reach(logits(dtype), lambda v: 0 < -fmt.overflow_threshold - v <= 2 * one)
    assert above > 0 > below


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_logits_reach_subnormals_infinities_and_both_zeros(dtype):
    fmt = FORMATS[dtype]
    reach(logits(dtype), lambda v: 0 < abs(v) < fmt.min_normal)
    reach(logits(dtype), lambda v: v == -math.inf)
    reach(logits(dtype), lambda v: v == 0 and math.copysign(1, v) < 0)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_labels_reach_one_ulp_from_each_end(dtype):
    t = np.dtype(dtype).type
    reach(unit_interval(dtype), lambda v: v == float(np.nextafter(t(1), t(0))))
    reach(unit_interval(dtype), lambda v: v == FORMATS[dtype].min_subnormal)


def test_class_counts_reach_one_and_rows_reach_masked_entries():
    s = from_loss("softmax_cross_entropy_with_logits", dtype="float32")
    reach(s, lambda b: b["logits"].shape[-1] == 1)
    reach(s, lambda b: np.isneginf(b["logits"]).any() and np.isfinite(b["logits"]).any())
    reach(s, lambda b: b["logits"].shape[-1] > 20)


def test_bad_arguments_raise_invalid_argument_or_name_the_problem():
    with pytest.raises(InvalidArgument):
        from_loss("softplus", dtype="float32", max_batch=0)
    with pytest.raises(oracles.UnknownName):
        from_loss("softpluss", dtype="float32")
    with pytest.raises(ValueError, match="unknown dtype"):
        from_loss("softplus", dtype="float8")
