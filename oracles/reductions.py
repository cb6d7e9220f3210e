"""The exact sum and mean of a batch of losses, correctly rounded: the reference for
``reduction="sum"`` and ``"mean"``.

A batch may be given as distinct rows with their multiplicities (``counts``): the
harness tiles a few fuzzed rows to a million, and the exact sum of a million copies
is the exact value times a million, with no rounding in between.

The sum of the exact losses of the batch (the very floats given, cast to the
dtype), not of their roundings. The losses are non-negative, so the sum never
cancels: any NaN makes it NaN, any +inf makes it +inf, and otherwise each
element's enclosure adds up to an enclosure of the sum with the same relative
width.

- Fast path (elementwise losses in float16, bfloat16, float32, every element
  covered): ``math.fsum`` of the float64 values is their exact sum correctly
  rounded, so the error is the sum of the elements' bounds plus one rounding
  (one more for the mean's division). That decides the rounding of batches of a
  million in about a second.
- Exact path: each element's exact value (narrowed by the oracle to 2**-(2p+40)
  relative), summed in mpmath at a precision that keeps every bit; the sum is
  then known to 2**-(2p+40) relative, and its rounding is decided unless the sum
  lies that close to a rounding boundary (``OracleUndecided``, never a guess).
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
from mpmath.libmp import from_man_exp

from lossfuzz.oracles import fast
from lossfuzz.oracles.api import check_elementwise_domain, evaluate
from lossfuzz.oracles.formats import get_format, round_mpf
from lossfuzz.oracles.interval import OracleUndecided
from lossfuzz.oracles.registry import get_loss

REDUCTIONS = ("sum", "mean")


def tile_counts(rows: int, batch: int) -> list[int]:
    """How often each of ``rows`` rows occurs when they are repeated, in order, to
    ``batch`` rows (NumPy's ``resize``, ``torch.Tensor.repeat`` then a slice)."""
    q, r = divmod(batch, rows)
    return [q + (i < r) for i in range(rows)]


def reduce(
    loss: str, reduction: str, dtype: str, counts=None, **inputs
) -> tuple[mpmath.mpf, float]:
    """(an enclosure's midpoint of the exact sum or mean, its correct rounding to ``dtype``).

    ``counts`` (one non-negative integer per row of the inputs) weights each row's
    loss: the batch is that many copies of each row. The first value is exact to
    2**-40 relative on the fast path and to 2**-(2p+40) on the exact path: for ULP
    errors, not for display to the last digit.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
    spec = get_loss(loss)
    fmt = get_format(dtype)
    if fast.covers(spec.id, dtype):
        from lossfuzz.oracles.api import cast_inputs

        cast = cast_inputs(spec, dtype, **inputs)
        check_elementwise_domain(spec, cast)
        fv = fast.fast_values(spec.id, dtype, cast)
        weights = _weights(counts, fv.value.size)
        rows = [
            (v, b, w)
            for v, b, w in zip(fv.value.ravel().tolist(), fv.bound.ravel().tolist(), weights)
            if w > 0
        ]
        if rows and all(math.isfinite(v) for v, _, _ in rows):
            n = sum(weights)
            try:
                if counts is None:
                    total = math.fsum(v for v, _, _ in rows)  # the exact sum, rounded once
                else:  # the exact weighted sum (as a fraction), rounded once
                    total = float(sum(Fraction(v) * w for v, _, w in rows))
                err = math.fsum(b * w for _, b, w in rows) * (1 + 2.0**-40)
                err += abs(total) * 2.0**-52
            except OverflowError:  # float64 losses near 1.8e308 whose sum is beyond floats
                decided = _beyond_floats(rows, n, reduction, fmt)
                if decided is not None:
                    return decided
                total, err = math.nan, math.nan  # undecided: the exact path below
            if reduction == "mean":
                total, err = total / n, err / n + abs(total / n) * 2.0**-52
            lo, hi = fast.round_to(np.array([total - err, total + err]), fmt)
            if lo == hi and math.isfinite(total):
                return mpmath.mpf(total), float(fast.round_to(np.array([total]), fmt)[0])
    ev = evaluate(spec, dtype, **inputs)
    weights = _weights(counts, ev.exact.size)
    pairs = [(v, w) for v, w in zip(ev.exact.ravel(), weights) if w > 0]
    values = [v for v, _ in pairs]
    n = sum(weights)
    if n == 0:
        return (mpmath.mpf(0), 0.0) if reduction == "sum" else (mpmath.mpf("nan"), math.nan)
    if any(mpmath.isnan(v) for v in values):
        return mpmath.mpf("nan"), math.nan
    if any(mpmath.isinf(v) for v in values):
        return mpmath.mpf("inf"), math.inf
    width = 2 * fmt.precision + 40
    total, slack = _sum(pairs, width)
    with mpmath.workprec(width + 64):
        if reduction == "mean":
            total = total / n  # rounded at 2**-(width + 63): inside the enclosure below
        eps = mpmath.mpf(2) ** (-width + 1) + slack
        lo, hi = total * (1 - eps), total * (1 + eps)
    a, b = round_mpf(lo, fmt), round_mpf(hi, fmt)
    if a != b:
        raise OracleUndecided(f"the {reduction} of {n} losses lies within 2**-{width} of a tie")
    return total, a


def _beyond_floats(rows, n: int, reduction: str, fmt):
    """The fast path's sum when it exceeds the float range (float64 losses near 1.8e308):
    the same enclosure, as an exact fraction and mpmath numbers. None if undecided."""
    total = sum(Fraction(v) * w for v, _, w in rows)
    err = sum(Fraction(b) * w for _, b, w in rows) * (1 + Fraction(1, 2**40))
    if reduction == "mean":
        total, err = total / n, err / n
    with mpmath.workprec(2 * fmt.precision + 64):
        t = mpmath.mpf(total.numerator) / total.denominator
        e = mpmath.mpf(err.numerator) / err.denominator * (1 + mpmath.mpf(2) ** -60)
        lo, hi = round_mpf(t - e, fmt), round_mpf(t + e, fmt)
    return (t, lo) if lo == hi else None


def _sum(pairs, width: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    """The weighted sum of the values as one integer times a power of two, and a bound
    on its relative error. Exact, except that when every value has the same sign (a
    loss is never negative) the bits below 2**-(width + 80) of the largest term are
    dropped: a loss of exp(-1e30) would otherwise need an integer of 1e30 bits."""
    raws = [(v._mpf_, w) for v, w in pairs if v]
    if not raws:
        return mpmath.mpf(0), mpmath.mpf(0)
    low = min(raw[2] for raw, _ in raws)
    slack = mpmath.mpf(0)
    if len({raw[0] for raw, _ in raws}) == 1:
        top = max(exp + bc for (_, _, exp, bc), _ in raws)
        count_bits = sum(w for _, w in raws).bit_length()
        cut = top - width - 80 - count_bits
        if cut > low:
            # each dropped term or tail is below 2**cut, and there are at most 2**count_bits
            # of them, while the sum is at least the largest term, 2**(top - 1)
            low, slack = cut, mpmath.mpf(2) ** (-width - 79)
    scaled = 0
    for (sign, man, exp, _), w in raws:
        shift = exp - low
        part = man << shift if shift >= 0 else man >> -shift
        scaled += (-1 if sign else 1) * w * part
    return mpmath.mp.make_mpf(from_man_exp(scaled, low)), slack  # exact: no precision given


def _weights(counts, rows: int) -> list[int]:
    if counts is None:
        return [1] * rows
    weights = [int(c) for c in counts]
    if len(weights) != rows or any(w < 0 for w in weights):
        raise ValueError(f"counts must be {rows} non-negative integers, one per row")
    return weights
