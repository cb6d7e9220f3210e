"""The exact sum and mean of a batch of losses, correctly rounded: the reference for
``reduction="sum"`` and ``"mean"`` (issue 10; no impls or cells use it yet).

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

import mpmath
import numpy as np
from mpmath.libmp import from_man_exp

from oracles import fast
from oracles.api import check_elementwise_domain, evaluate
from oracles.formats import get_format, round_mpf
from oracles.interval import OracleUndecided
from oracles.registry import get_loss

REDUCTIONS = ("sum", "mean")


def reduce(loss: str, reduction: str, dtype: str, **inputs) -> tuple[mpmath.mpf, float]:
    """(an enclosure's midpoint of the exact sum or mean, its correct rounding to ``dtype``).

    The first is exact to 2**-40 relative on the fast path and to 2**-(2p+40) on the
    exact path: for ULP errors, not for display to the last digit.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
    spec = get_loss(loss)
    fmt = get_format(dtype)
    if fast.covers(spec.id, dtype):
        from oracles.api import cast_inputs

        cast = cast_inputs(spec, dtype, **inputs)
        check_elementwise_domain(spec, cast)
        fv = fast.fast_values(spec.id, dtype, cast)
        if fv.value.size and np.isfinite(fv.value).all():
            n = fv.value.size
            total = math.fsum(fv.value.ravel().tolist())
            err = math.fsum(fv.bound.ravel().tolist()) * (1 + 2.0**-40) + abs(total) * 2.0**-52
            if reduction == "mean":
                total, err = total / n, err / n + abs(total / n) * 2.0**-52
            lo, hi = fast.round_to(np.array([total - err, total + err]), fmt)
            if lo == hi and math.isfinite(total):
                return mpmath.mpf(total), float(fast.round_to(np.array([total]), fmt)[0])
    ev = evaluate(spec, dtype, **inputs)
    values = list(ev.exact.ravel())
    n = len(values)
    if n == 0:
        return (mpmath.mpf(0), 0.0) if reduction == "sum" else (mpmath.mpf("nan"), math.nan)
    if any(mpmath.isnan(v) for v in values):
        return mpmath.mpf("nan"), math.nan
    if any(mpmath.isinf(v) for v in values):
        return mpmath.mpf("inf"), math.inf
    width = 2 * fmt.precision + 40
    # the exact sum of the values as one integer times a power of two: no rounding at all
    raws = [v._mpf_ for v in values if v]
    total = mpmath.mpf(0)
    if raws:
        low = min(exp for _, _, exp, _ in raws)
        scaled = sum((-1 if sign else 1) * (man << (exp - low)) for sign, man, exp, _ in raws)
        total = mpmath.mp.make_mpf(from_man_exp(scaled, low))  # exact: no precision given
    with mpmath.workprec(width + 64):
        if reduction == "mean":
            total = total / n  # rounded at 2**-(width + 63): inside the enclosure below
        eps = mpmath.mpf(2) ** (-width + 1)
        lo, hi = total * (1 - eps), total * (1 + eps)
    a, b = round_mpf(lo, fmt), round_mpf(hi, fmt)
    if a != b:
        raise OracleUndecided(f"the {reduction} of {n} losses lies within 2**-{width} of a tie")
    return total, a
