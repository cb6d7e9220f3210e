"""ULP error and the finding classes of DESIGN.md, in all four dtypes."""

import math

import mpmath
import numpy as np
import pytest
from independent import NP

from lossfuzz import oracles
from lossfuzz.harness.metrics import CLASSES, classify, worst
from lossfuzz.harness.ulp import ordinals, ulp_error
from lossfuzz.oracles.formats import FORMATS

DTYPES = list(FORMATS)


def score(loss, dtype, y, **inputs):
    ev = oracles.evaluate(loss, dtype, **inputs)
    return classify(
        float(np.asarray(y, dtype=NP[dtype])),
        ev.exact.item(),
        float(ev.reference),
        ev.fmt,
        is_loss=ev.loss.is_loss,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_correctly_rounded_answer_is_exact_and_within_half_an_ulp(dtype):
    ref = oracles.reference("softplus", dtype, logits=1.0)
    s = score("softplus", dtype, ref, logits=1.0)
    assert s.cls == "exact" and s.ulp <= 0.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_neighbour_of_the_reference_is_ok_and_between_half_and_one_and_a_half_ulps(dtype):
    ref = oracles.reference("softplus", dtype, logits=1.0)
    up = np.nextafter(ref, NP[dtype](np.inf))
    s = score("softplus", dtype, up, logits=1.0)
    assert s.cls == "ok" and 0.5 <= s.ulp <= 1.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_far_answer_is_inaccurate(dtype):
    s = score("softplus", dtype, 1.5, logits=1.0)
    assert (
        s.cls == "inaccurate"
        and s.ulp > 4
        and s.abs_error == pytest.approx(1.5 - math.log1p(math.e), rel=1e-2)
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_infinite_answer_for_finite_reference_is_overflow(dtype):
    s = score("sigmoid_cross_entropy_with_logits", dtype, math.inf, logits=10.0, labels=0.0)
    assert s.cls == "overflow" and s.ulp == math.inf and s.abs_error == math.inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_for_a_nonzero_reference_is_underflow(dtype):
    s = score("sigmoid_cross_entropy_with_logits", dtype, 0.0, logits=-8.0, labels=0.0)
    assert s.cls == "underflow" and s.abs_error == pytest.approx(
        math.log1p(math.exp(-8.0)), rel=1e-2
    )


def test_underflow_finding_of_the_style_guide():
    # torch:...(logits=-50.0, labels=0.0) [float32] = 0.0, exact 1.9287499e-22: underflow
    s = score("sigmoid_cross_entropy_with_logits", "float32", 0.0, logits=-50.0, labels=0.0)
    assert s.cls == "underflow" and s.abs_error == pytest.approx(1.9287498e-22, rel=1e-6)
    assert s.ulp > 1e6


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_answer_is_nan_and_nan_reference_missed_is_missed_nan(dtype):
    assert score("softplus", dtype, math.nan, logits=1.0).cls == "nan"
    assert score("softplus", dtype, 1.0, logits=math.nan).cls == "missed_nan"
    assert score("softplus", dtype, math.nan, logits=math.nan).cls == "exact"


@pytest.mark.parametrize("dtype", DTYPES)
def test_finite_answer_for_infinite_reference_is_missed_inf(dtype):
    s = score("binary_crossentropy", dtype, 15.9, probs=0.0, labels=1.0)
    assert s.cls == "missed_inf" and s.ulp == math.inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_negative_loss_is_a_sign_error(dtype):
    # a loss cannot be negative, even when the exact value is 0
    assert (
        score("sigmoid_cross_entropy_with_logits", dtype, -1.0, logits=1.0, labels=0.0).cls
        == "sign"
    )
    assert (
        score("sigmoid_cross_entropy_with_logits", dtype, -0.5, logits=math.inf, labels=1.0).cls
        == "sign"
    )
    assert score("log_sigmoid", dtype, 0.25, logits=1.0).cls == "sign"


def test_signed_zero_aside_an_exact_zero_is_exact():
    assert (
        score("sigmoid_cross_entropy_with_logits", "float32", -0.0, logits=math.inf, labels=1.0).cls
        == "exact"
    )


def test_ulp_error_is_measured_from_the_exact_value_not_the_rounded_one():
    fmt = FORMATS["float32"]
    r = mpmath.mpf(1) + mpmath.mpf(2) ** -25  # a quarter ULP above 1
    assert ulp_error(1.0, r, fmt) == 0.25
    assert ulp_error(1.0 + 2.0**-23, r, fmt) == 0.75


def test_ulp_of_zero_is_the_smallest_subnormal():
    for fmt in FORMATS.values():
        assert ulp_error(fmt.min_subnormal, mpmath.mpf(0), fmt) == 1.0


def test_ulp_below_the_normal_range_is_constant():
    fmt = FORMATS["float16"]
    tiny = mpmath.mpf(2) ** -20  # subnormal in float16: ulp is 2**-24
    assert ulp_error(0.0, tiny, fmt) == 16.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_ordinals_are_monotone_and_adjacent_floats_differ_by_one(dtype):
    t = NP[dtype]
    xs = np.array(
        [
            -np.inf,
            -1.0,
            -FORMATS[dtype].min_subnormal,
            -0.0,
            0.0,
            FORMATS[dtype].min_subnormal,
            1.0,
            np.inf,
        ]
    )
    o = ordinals(xs.astype(t), FORMATS[dtype])
    assert list(o) == sorted(o)
    assert o[3] == o[4] == 0 and o[5] == 1 and o[2] == -1
    one = t(1.0)
    assert (
        ordinals(np.array([np.nextafter(one, t(2))], dtype=t), FORMATS[dtype])[0]
        == ordinals(np.array([one]), FORMATS[dtype])[0] + 1
    )


def test_worst_class_orders_by_severity():
    assert worst(["exact", "ok", "inaccurate"]) == "inaccurate"
    assert worst(["underflow", "nan", "overflow"]) == "nan"
    assert worst([]) == "exact"
    assert set(CLASSES) >= {
        "exact",
        "ok",
        "inaccurate",
        "overflow",
        "underflow",
        "nan",
        "sign",
        "missed_inf",
        "missed_nan",
    }


def test_a_zero_within_tolerance_of_a_subnormal_reference_is_ok_not_underflow():
    # log_sigmoid(103) = -1.85e-45 in float32: 0 is 1.32 ULPs away
    s = score("log_sigmoid", "float32", 0.0, logits=103.0)
    assert s.cls == "ok" and 1 < s.ulp < 2


def test_errors_against_astronomically_small_exact_values_need_no_giant_integer():
    # exp(-1e30): an exact 1 - exp(-1e30) would need an integer of 1e30 bits (GMP aborts)
    import mpmath

    from lossfuzz.harness.ulp import abs_error, ulp_error
    from lossfuzz.oracles.formats import FORMATS

    tiny = mpmath.exp(mpmath.mpf(-(10**30)))
    assert abs_error(1.0, tiny) == 1.0
    assert ulp_error(1.0, tiny, FORMATS["float32"]) == 2.0**149
    assert ulp_error(0.0, tiny, FORMATS["float32"]) == 0.0  # far below the smallest subnormal
    huge = mpmath.exp(mpmath.mpf(10**30))
    assert abs_error(3.0e38, huge) == math.inf
