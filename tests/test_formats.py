"""Exact rounding into the four formats, checked against independent roundings."""

import math
from decimal import Decimal

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from independent import round_brute

from lossfuzz.oracles.formats import FORMATS, as_mpf, get_format, round_mpf

DTYPES = list(FORMATS)


def mp_from_decimal(s: str) -> mpmath.mpf:
    with mpmath.workprec(4000):
        return mpmath.mpf(s)


@pytest.mark.parametrize(
    "text",
    [
        "0.1",
        "2.2250738585072011e-308",  # the famous slow-to-parse near-subnormal boundary
        "2.2250738585072012e-308",
        "4.9406564584124654e-324",  # the smallest subnormal
        "2.4703282292062327e-324",  # just below half of it: rounds to 0
        "2.4703282292062328e-324",  # just above half: rounds up
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "1.797693134862315807937289714053e308",  # below max + ulp/2: stays finite
        "1.797693134862315807937289714054e308",  # at/above max + ulp/2: overflows
        "9007199254740993",  # 2**53 + 1: a tie, to even
        "9007199254740995",
        "0.30000000000000001665334536937734810635447502136230468750000001",
    ],
)
def test_float64_rounding_matches_pythons_correctly_rounded_parser(text):
    assert round_mpf(mp_from_decimal(text), FORMATS["float64"]) == float(text)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str))
def test_float64_rounding_of_any_decimal_matches_float(text):
    expected = float(Decimal(text))
    got = round_mpf(mp_from_decimal(text), FORMATS["float64"])
    assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@given(
    mantissa=st.integers(min_value=-(2**70), max_value=2**70),
    exponent=st.integers(min_value=-1200, max_value=1100),
)
def test_rounding_matches_brute_force_neighbour_search(dtype, mantissa, exponent):
    v = mpmath.mpf(mantissa) * mpmath.mpf(2) ** exponent
    want = round_brute(v, dtype)
    got = round_mpf(v, FORMATS[dtype])
    assert got == want and math.copysign(1, got) == math.copysign(1, want), (v, got, want)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@given(st.floats(allow_nan=False, width=64))
def test_rounding_a_double_matches_numpy_cast(dtype, x):
    # numpy's float64 -> float32/float16 casts round once, nearest-even; ml_dtypes'
    # bfloat16 cast is only checked from float32 values (one rounding too).
    if dtype == "bfloat16":
        x = float(np.float32(x)) if abs(x) < 3.4e38 else x
        want = float(np.float32(x).astype(ml_dtypes.bfloat16)) if abs(x) < 3.4e38 else None
        if want is None:
            return
    else:
        with np.errstate(over="ignore"):
            want = float(np.float64(x).astype(dtype))
    got = round_mpf(as_mpf(x), FORMATS[dtype])
    if x == 0:  # mpmath has no signed zero: the real value of -0.0 is 0
        assert got == 0
        return
    assert got == want and math.copysign(1, got) == math.copysign(1, want)


@pytest.mark.parametrize(
    "dtype,value,expected",
    [
        ("float16", 65504.0, 65504.0),
        ("float16", 65519.99, 65504.0),
        ("float16", 65520.0, math.inf),  # max + ulp/2 is a tie that overflows
        ("float16", 2.0**-24, 2.0**-24),  # smallest subnormal
        ("float16", 2.0**-25, 0.0),  # half of it: tie to even (0)
        ("float16", 2.0**-25 * 1.000001, 2.0**-24),
        ("bfloat16", 2.0**-133, 2.0**-133),
        ("bfloat16", 2.0**-134, 0.0),
        ("float32", 2.0**-149, 2.0**-149),
        ("float32", "2**128 - 2**103 - 2**80", 3.4028234663852886e38),
        ("float32", "2**128 - 2**103", math.inf),  # max + ulp/2
        ("float64", "-(2**-1075)", -0.0),  # minus half the smallest subnormal
        ("float64", "-(2**-1075) * 1.0001", -(2.0**-1074)),
    ],
)
def test_rounding_at_the_ends_of_each_format(dtype, value, expected):
    with mpmath.workprec(200):
        if isinstance(value, str):  # an exact expression in powers of two
            v = eval(value.replace("2**", "mpf(2)**"), {"mpf": mpmath.mpf})
        else:
            v = mpmath.mpf(value)
    got = round_mpf(v, FORMATS[dtype])
    assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


def test_format_thresholds_are_the_ones_the_seeds_quote():
    assert round(FORMATS["float16"].overflow_threshold, 2) == 11.09
    assert round(FORMATS["float32"].overflow_threshold, 2) == 88.72
    assert round(FORMATS["bfloat16"].overflow_threshold, 2) == 88.72
    assert round(FORMATS["float64"].overflow_threshold, 2) == 709.78


def test_unknown_dtype_names_the_valid_ones():
    with pytest.raises(ValueError, match="float16, bfloat16, float32, float64"):
        get_format("float8")
