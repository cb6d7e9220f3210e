"""ULP error of an answer against an exact real, float ordinals, and how ULPs are shown.

The design's definition: ulp(r) = 2**(max(floor(log2 |r|), emin) - p + 1), ulp(0) =
the smallest subnormal; the error of y is |y - r| / ulp(r), computed exactly from
the exact r (not from its rounding), so a correctly rounded answer scores at most 0.5.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from mpmath.libmp import fzero, mpf_abs, mpf_sub, round_nearest, to_float

from lossfuzz.oracles.formats import FORMATS, Format, exact_raw  # noqa: F401 (doctests)

EXACT_GAP = 4096  # bits: closer operands are subtracted exactly


def _difference(y: float, r: mpmath.mpf):
    """|y - r|: exact when the two are within 2**EXACT_GAP of each other in magnitude,
    else to 256 bits (an exact difference of 1 and exp(-1e30) would need an integer of
    1e30 bits, and GMP aborts the process); either way exact to far below the final
    rounding to a Python float."""
    a, b = exact_raw(y), r._mpf_
    if a == fzero or b == fzero:
        return mpf_abs(mpf_sub(a, b))
    gap = abs((a[2] + a[3]) - (b[2] + b[3]))
    if gap <= EXACT_GAP:
        return mpf_abs(mpf_sub(a, b))
    return mpf_abs(mpf_sub(a, b, 256, round_nearest))


def ulp_exponent(r: mpmath.mpf, fmt: Format) -> int:
    """k such that ulp(r) = 2**k, for finite r.

    >>> ulp_exponent(mpmath.mpf(1), FORMATS["float32"])
    -23
    """
    raw = r._mpf_
    if raw == fzero:
        return fmt.ulp_exponent(fmt.emin)
    return fmt.ulp_exponent(raw[2] + raw[3] - 1)


def ulp_error(y: float, r: mpmath.mpf, fmt: Format) -> float:
    """|y - r| / ulp(r), exact up to the final rounding to a Python float.

    Infinities and NaN score inf unless y and r are the same infinity (0) or
    both NaN (0): a NaN or a wrong infinity is total error, as in Herbie.

    >>> ulp_error(1.0, mpmath.mpf(1) + mpmath.mpf(2) ** -24, FORMATS["float32"])
    0.5
    """
    y = float(y)
    if not mpmath.isfinite(r) or not math.isfinite(y):
        if math.isnan(y) and mpmath.isnan(r):
            return 0.0
        if not mpmath.isnan(r) and mpmath.isinf(r) and y == float(r):
            return 0.0
        return math.inf
    diff = _difference(y, r)
    if diff == fzero:
        return 0.0
    k = ulp_exponent(r, fmt)
    return to_float((diff[0], diff[1], diff[2] - k, diff[3]))


def ulp_exponents(v: np.ndarray, fmt: Format) -> np.ndarray:
    """``ulp_exponent`` of each float64 of ``v`` (finite)."""
    with np.errstate(all="ignore"):
        _, e = np.frexp(v)
    return fmt.ulp_exponent(np.where(v == 0, fmt.emin, e - 1))


def ulp_errors(y: np.ndarray, v: np.ndarray, fmt: Format) -> tuple[np.ndarray, np.ndarray]:
    """(|y - v| / ulp(v), |y - v|) for float64 arrays, the vectorised ``ulp_error`` against
    approximations ``v`` of the exact values (the fast path's); NaN answers score inf."""
    with np.errstate(all="ignore"):
        diff = np.where(np.isnan(y), np.inf, np.abs(y - v))
        return np.ldexp(diff, -ulp_exponents(v, fmt)), diff


def abs_error(y: float, r: mpmath.mpf) -> float:
    """|y - r| as a float (inf where either is infinite and they differ, NaN-safe)."""
    y = float(y)
    if math.isnan(y) or mpmath.isnan(r):
        return 0.0 if math.isnan(y) and mpmath.isnan(r) else math.inf
    if mpmath.isinf(r) or math.isinf(y):
        return 0.0 if y == float(r) else math.inf
    return to_float(_difference(y, r))


def format_ulp(v: float) -> str:
    """A ULP error for people: '0.5', '12.3', '3.2e+06', 'inf', 'nan'.

    >>> format_ulp(0.25), format_ulp(3.2e6), format_ulp(math.inf)
    ('0.25', '3.2e+06', 'inf')
    """
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return "nan" if math.isnan(v) else "inf"
    return f"{v:.3g}" if v < 1e5 else f"{v:.2g}"


# ------------------------------------------------------------------ ordinals


def _unsigned(fmt: Format):
    return {2: np.uint16, 4: np.uint32, 8: np.uint64}[fmt.numpy_dtype.itemsize]


def ordinals(values, fmt: Format) -> np.ndarray:
    """Map floats of ``fmt`` to int64 so that order and adjacency are kept.

    +0 and -0 both map to 0; the next float up is +1. As numpy's ``_integer_repr``,
    for all four formats (bfloat16 through a uint16 view).

    >>> ordinals([-0.0, 0.0, 1e-45], FORMATS["float32"]).tolist()
    [0, 0, 1]
    """
    arr = np.asarray(values, dtype=fmt.numpy_dtype)
    bits = arr.view(_unsigned(fmt)).astype(np.uint64)
    sign_bit = np.uint64(1) << np.uint64(fmt.bits - 1)
    magnitude = (bits & (sign_bit - np.uint64(1))).astype(np.int64)
    return np.where(bits & sign_bit, -magnitude, magnitude)


def from_ordinals(o, fmt: Format) -> np.ndarray:
    """The floats of ``fmt`` with ordinals ``o`` (the inverse of ``ordinals``, +0 for 0),
    clamped to the format's ordinals (past the largest finite float come inf, then NaN)."""
    o = np.asarray(o, dtype=np.int64)
    sign = np.uint64(1) << np.uint64(fmt.bits - 1)
    top = int(sign) - 1
    mag = np.minimum(np.abs(o), top).astype(np.uint64)
    bits = np.where(o < 0, sign | mag, mag)
    return bits.astype(_unsigned(fmt)).view(fmt.numpy_dtype)


def step(x: float, fmt: Format, k: int) -> float:
    """The float ``k`` steps from ``x`` in ``fmt``, walking ordinals (so across zero).

    >>> step(1.0, FORMATS["float16"], -1), step(0.0, FORMATS["float16"], -1)
    (0.99951171875, -5.960464477539063e-08)
    """
    o = int(ordinals([x], fmt)[0]) + k
    return float(from_ordinals([o], fmt)[0])
