"""Rigorous interval arithmetic on mpmath's raw numbers, and Ziv's rounding loop.

An interval is a pair ``(lo, hi)`` of mpmath raw ``_mpf_`` tuples with
``lo <= exact <= hi``. Addition, multiplication and division round outward
(mpmath rounds these correctly in the requested direction). The transcendental
functions are evaluated 24 bits beyond the working precision and then widened
by 2**-(w + 14) relative: 1024 ulps of the evaluation precision, far more than
mpmath's elementary functions ever err (they are accurate to within an ulp).

Every enclosure is either a point (the exact value, when every step was
exact) or strict: lo < exact < hi. Transcendental values of nonzero arguments
are irrational, so they never sit on a dyadic end; directed rounding and the
widening keep the inequalities strict through sums, products and quotients.
``decide`` uses this: the rounding of a value strictly inside (lo, hi) is that
of lo nudged up and of hi nudged down, which settles values such as
37/128 * x + exp(-x) at x = 1e16, a dyadic tie plus a term too small for any
finite precision to resolve. For that to work the rational part of a loss must
be enclosed exactly: the callers sum it as a Fraction first (with label
smoothing, 5/6 * 3391488 is a bfloat16 tie that two inexact products of 2/3 and
1/6 would straddle forever) and ``from_fraction`` gives a point when it is
representable at the working precision.

``decide`` runs an interval expression at rising precision until both ends of
the interval round to the same value of the target format, then evaluates it
again at twice that precision and insists on the same answer (DESIGN.md:
"confirmed at a higher precision").

The expressions in this package are written so that they never subtract nearly
equal quantities (see ``softmax.py`` and ``elementwise.py``), so the precision a
typical input needs stays within a few bits of the format's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

from mpmath import libmp
from mpmath.libmp import (
    fnan,
    fone,
    fzero,
    mpf_add,
    mpf_div,
    mpf_exp,
    mpf_log,
    mpf_mul,
    mpf_neg,
    mpf_shift,
    mpf_sub,
)

from lossfuzz.oracles.formats import Format, round_mpf

Raw = tuple  # mpmath's raw (sign, man, exp, bc)
Interval = tuple[Raw, Raw]
Expression = Callable[[int], Interval]

FLOOR, CEIL, NEAREST = libmp.round_floor, libmp.round_ceiling, libmp.round_nearest
GUARD = 24  # extra bits for transcendental evaluations
SLACK = 14  # their enclosure is widened by 2**-(w + SLACK) relative
START_GUARD = 32  # the first attempt works at precision p + START_GUARD
MAX_PRECISION = 1 << 16


class OracleUndecided(ArithmeticError):
    """The oracle could not decide the rounding within MAX_PRECISION bits."""


class OracleInconsistent(AssertionError):
    """A confirmation at higher precision disagreed: a bug in the oracle itself."""


def point(x: Raw) -> Interval:
    return (x, x)


def from_fraction(q: Fraction, w: int) -> Interval:
    if q.denominator == 1:
        x = libmp.from_int(q.numerator)
        return (x, x)
    return (
        libmp.from_rational(q.numerator, q.denominator, w, FLOOR),
        libmp.from_rational(q.numerator, q.denominator, w, CEIL),
    )


def raw_fraction(x: Raw) -> Fraction:
    """The exact value of a finite raw mpf as a Fraction."""
    sign, man, exp, _ = x
    q = Fraction(int(man) << exp) if exp >= 0 else Fraction(int(man), 1 << -exp)
    return -q if sign else q


def add(a: Interval, b: Interval, w: int) -> Interval:
    return (mpf_add(a[0], b[0], w, FLOOR), mpf_add(a[1], b[1], w, CEIL))


def neg(a: Interval) -> Interval:
    return (mpf_neg(a[1]), mpf_neg(a[0]))


def mul_nonneg(a: Interval, b: Interval, w: int) -> Interval:
    """Product of two intervals with non-negative ends."""
    return (mpf_mul(a[0], b[0], w, FLOOR), mpf_mul(a[1], b[1], w, CEIL))


def div_nonneg(a: Interval, b: Interval, w: int) -> Interval:
    """Quotient of non-negative ``a`` by positive ``b``."""
    return (mpf_div(a[0], b[1], w, FLOOR), mpf_div(a[1], b[0], w, CEIL))


def mag(x: Raw) -> int:
    """2**(mag-1) <= |x| < 2**mag for nonzero x."""
    return x[2] + x[3]


def _widen(y: Raw, w: int, rnd) -> Raw:
    """Push a nearest-rounded transcendental value out by 2**-(w+SLACK) relative."""
    if y == fzero:
        return y
    delta = mpf_shift((0, y[1], y[2], y[3]), -(w + SLACK))
    if rnd is FLOOR:
        return mpf_sub(y, delta, w + GUARD, FLOOR)
    return mpf_add(y, delta, w + GUARD, CEIL)


def exp(a: Interval, w: int) -> Interval:
    wp = w + GUARD
    return (
        _widen(mpf_exp(a[0], wp, NEAREST), w, FLOOR),
        _widen(mpf_exp(a[1], wp, NEAREST), w, CEIL),
    )


def _log1p_raw(t: Raw, w: int, rnd) -> Raw:
    """log1p(t) for t > -1, widened in direction rnd; exact at t = 0."""
    if t == fzero:
        return fzero
    m = mag(t)
    if m < -(w + GUARD):
        # |t| < 2**-(w+24): log1p(t) lies in [t - t**2, t] (|t| <= 1/2)
        if rnd is CEIL:
            return t
        return mpf_sub(t, mpf_mul(t, t), w + GUARD, FLOOR)
    u = mpf_add(fone, t)  # exact: t has a bounded exponent here
    extra = max(0, -m)  # bits lost to cancellation when log(u) is near 0
    return _widen(mpf_log(u, w + GUARD + extra, NEAREST), w, rnd)


def log1p(a: Interval, w: int) -> Interval:
    """log1p on an interval inside (-1, inf]."""
    return (_log1p_raw(a[0], w, FLOOR), _log1p_raw(a[1], w, CEIL))


def _log_raw(x: Raw, w: int, rnd) -> Raw:
    if x == fzero:
        return libmp.fninf
    if -1 <= mag(x) - 1 <= 0:  # 1/2 <= x < 2: go through log1p(x - 1), exact
        return _log1p_raw(mpf_sub(x, fone), w, rnd)
    return _widen(mpf_log(x, w + GUARD, NEAREST), w, rnd)


def log(a: Interval, w: int) -> Interval:
    """log on an interval inside [0, inf)."""
    return (_log_raw(a[0], w, FLOOR), _log_raw(a[1], w, CEIL))


def _same(u: float, v: float) -> bool:
    """Equal as floats of the target, sign of zero included; NaN never equal."""
    return u == v and math.copysign(1.0, u) == math.copysign(1.0, v)


def _narrow(a: Interval, fmt: Format) -> bool:
    """The enclosure is a point, or its width is at most 2**-(2p + 40) of its magnitude."""
    lo, hi = a
    if lo == hi:
        return True
    if lo[0] != hi[0] or fzero in (lo, hi):  # straddles or touches zero: no relative bound
        return False
    nearer_zero = lo if lo[0] == 0 else mpf_neg(hi)
    width = mpf_sub(hi, lo, 64, CEIL)
    return libmp.mpf_cmp(width, mpf_shift(nearer_zero, -(2 * fmt.precision + 40))) <= 0


def midpoint(a: Interval, w: int) -> Raw:
    return mpf_shift(mpf_add(a[0], a[1], w + 2, NEAREST), -1)


def _round_enclosure(a: Interval, fmt: Format) -> tuple[float, float]:
    """The roundings of the least and greatest values the enclosure allows."""
    lo, hi = a
    if lo == hi:
        r = round_mpf(lo, fmt)
        return r, r
    return round_mpf(lo, fmt, bias=+1), round_mpf(hi, fmt, bias=-1)


def decide(expr: Expression, fmt: Format) -> tuple[Raw, float]:
    """Evaluate ``expr`` until its rounding to ``fmt`` is decided; confirm it.

    Returns the exact value (the midpoint of the confirming enclosure, narrowed
    until its relative width is at most 2**-(2p + 40)) and the correctly rounded
    float. Raises OracleUndecided past MAX_PRECISION bits.
    """
    w = fmt.precision + START_GUARD
    while w <= MAX_PRECISION:
        enclosure = expr(w)
        if fnan in enclosure:
            raise OracleInconsistent("NaN inside an interval expression")
        r, r_hi = _round_enclosure(enclosure, fmt)
        if _same(r, r_hi):
            w2 = 2 * w
            confirm = expr(w2)
            if not all(_same(c, r) for c in _round_enclosure(confirm, fmt)):
                raise OracleInconsistent(f"rounding {r!r} at {w} bits not confirmed at {w2} bits")
            while not _narrow(confirm, fmt) and w2 < MAX_PRECISION:
                w2 *= 2  # under cancellation the rounding is decided before the value is
                confirm = expr(w2)  # known to 2p + 40 bits: narrow it for ULP scoring
            return midpoint(confirm, w2), r
        w *= 2
    raise OracleUndecided(f"rounding to {fmt.name} not decided within {MAX_PRECISION} bits")
