"""Binary floating-point formats the oracle rounds to, and exact rounding into them.

A format is fixed by its precision ``p`` (significand bits, hidden bit included)
and its exponent range ``[emin, emax]`` of normal numbers. Rounding is IEEE 754
round-to-nearest-even with gradual underflow (subnormals) and overflow to
infinity, done in integer arithmetic on the mpmath value, so it is exact for any
input however many bits it carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import ml_dtypes
import mpmath
import numpy as np
from mpmath import libmp


@dataclass(frozen=True)
class Format:
    """An IEEE-754-style binary format (``bfloat16`` follows the same rules)."""

    name: str
    precision: int  # p: significand bits including the hidden bit
    emin: int  # exponent of the smallest normal number
    emax: int  # exponent of the largest finite number

    @cached_property
    def numpy_dtype(self) -> np.dtype:
        if self.name == "bfloat16":
            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)

    @property
    def bits(self) -> int:
        return self.numpy_dtype.itemsize * 8

    @property
    def min_subnormal(self) -> float:
        """The smallest positive subnormal, 2**(emin - p + 1): also ulp(0)."""
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def max_finite(self) -> float:
        return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.precision), self.emax)

    @property
    def overflow_threshold(self) -> float:
        """log(max_finite): exp(x) overflows to inf above it (88.72 for float32)."""
        return math.log(self.max_finite)

    @property
    def underflow_threshold(self) -> float:
        """log(min_subnormal / 2): exp(x) rounds to 0 below it (-103.97 for float32)."""
        return math.log(self.min_subnormal) - math.log(2.0)

    def ulp_exponent(self, e):
        """k with ulp = 2**k for numbers whose leading bit is 2**e (2**e <= |x| < 2**(e+1)),
        subnormals included: DESIGN's ulp(r) = 2**(max(floor(log2 |r|), emin) - p + 1).
        ``e`` may be an int or a NumPy array of them.

        >>> FORMATS["float32"].ulp_exponent(0), FORMATS["float32"].ulp_exponent(-200)
        (-23, -149)
        """
        return (
            np.maximum(e, self.emin) - self.precision + 1
            if isinstance(e, np.ndarray)
            else (max(e, self.emin) - self.precision + 1)
        )

    def cast(self, values) -> np.ndarray:
        """Cast to this format with numpy's round-to-nearest-even conversion (inf past max)."""
        with np.errstate(over="ignore"):
            return np.asarray(values, dtype=np.float64).astype(self.numpy_dtype)

    def short(self, value: float) -> str:
        """The shortest decimal that reads back as this float of the format ('-3e+38')."""
        return repr(float(value)) if self.name == "float64" else str(self.numpy_dtype.type(value))


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("float16", 11, -14, 15),
        Format("bfloat16", 8, -126, 127),
        Format("float32", 24, -126, 127),
        Format("float64", 53, -1022, 1023),
    )
}
DTYPES: tuple[str, ...] = tuple(FORMATS)


def get_format(dtype) -> Format:
    """The Format of a dtype name (or numpy dtype); ValueError naming the valid ones."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}") from None


def round_mpf(value, fmt: Format, bias: int = 0) -> float:
    """Round an mpmath real (an mpf or its raw ``_mpf_`` tuple) to ``fmt``, exactly.

    Round-to-nearest-even; the result comes back as a Python float. ``bias`` +1
    (or -1) rounds a value infinitesimally above (below) ``value`` instead: it only
    changes the result at an exact tie, where it picks the side of the bias.

    The result is exactly representable in ``fmt`` (and so in float64): subnormals
    and signed zeros included, and values at or past the overflow boundary become
    infinities. NaN and infinities pass through.

    >>> round_mpf(mpmath.mpf(1) + mpmath.mpf(2) ** -11, FORMATS["float16"])  # a tie
    1.0
    >>> round_mpf(mpmath.mpf(65520), FORMATS["float16"])  # max 65504 + ulp/2
    inf
    """
    raw = getattr(value, "_mpf_", value)
    sign, man, exp, bc = raw
    if not man:
        if raw == libmp.fzero:  # mpmath keeps no signed zero
            return 0.0
        if raw == libmp.fnan:
            return math.nan
        return -math.inf if sign else math.inf
    e = exp + bc - 1  # 2**e <= |value| < 2**(e+1)
    if e > fmt.emax:
        return -math.inf if sign else math.inf
    if e < fmt.emin - fmt.precision:  # below half the smallest subnormal
        return -0.0 if sign else 0.0
    quantum = fmt.ulp_exponent(e)
    if exp >= quantum:
        n = man << (exp - quantum)
    else:
        shift = quantum - exp
        n = man >> shift
        rem = man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and (n & 1 if not bias else (bias > 0) != bool(sign))):
            n += 1
    if n.bit_length() + quantum > fmt.emax + 1:  # n * 2**quantum >= 2**(emax+1)
        result = math.inf
    else:
        result = math.ldexp(n, quantum) if n else 0.0
    return -result if sign else result


def exact_raw(x: float) -> tuple:
    """The exact value of a float of any of our formats as a raw mpf tuple."""
    return libmp.from_float(float(x), 53, libmp.round_nearest)  # exact: <= 53 bits


def as_mpf(x: float) -> mpmath.mpf:
    """The exact value of a float of any of our formats as an mpf; no rounding."""
    return mpmath.mp.make_mpf(exact_raw(x))
