"""Independent references for testing the oracle: nothing here shares code with oracles/.

- ``round_brute``: correct rounding by comparing exact distances to the two
  neighbouring floats found with numpy's nextafter (ties to even by the last bit).
- ``naive``: the textbook formulas evaluated with plain mpmath at 5000 bits,
  enough to absorb any cancellation between float64 inputs (their spread is
  below 2**2100), so they are exact for rounding purposes.
"""

from __future__ import annotations

import math

import ml_dtypes
import mpmath
import numpy as np

NP = {
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "float32": np.float32,
    "float64": np.float64,
}
PREC = 5000


def _mp(x) -> mpmath.mpf:
    return mpmath.mpf(float(x))


def same(a, b) -> bool:
    """Equal floats with the same sign of zero, or both NaN."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _step(x, t, up: bool):
    """The neighbouring float of x in type t, by sign-magnitude bits (an ordinal walk)."""
    u = UINT[np.dtype(t).itemsize]
    nbits = np.dtype(t).itemsize * 8
    bits = int(np.array(x, dtype=t).view(u))
    sign, mag = bits >> (nbits - 1), bits & ((1 << (nbits - 1)) - 1)
    ordinal = -mag if sign else mag
    ordinal += 1 if up else -1
    new = ordinal if ordinal >= 0 else (1 << (nbits - 1)) | -ordinal
    return np.array(new, dtype=u).view(t)[()]


def round_brute(v: mpmath.mpf, dtype: str, tie: int = 0) -> float:
    """v rounded to nearest-even in ``dtype``: the closest of three candidate floats.

    ``tie`` = +1 (-1) says the true value is v plus (minus) a term too small for
    5000 bits: an exact tie then goes up (down) instead of to even.
    """
    t = NP[dtype]
    if mpmath.isnan(v):
        return float("nan")
    if v == 0:  # a neglected term of sign ``tie`` decides the sign of the zero
        return -0.0 if tie < 0 else 0.0
    if mpmath.isinf(v):
        return float(v)
    big = t(ml_dtypes.finfo(t).max)
    f = float(v)  # mpmath converts with one correct rounding (inf past float64's range)
    c = t(f) if abs(f) < float(big) else (big if f > 0 else -big)
    cands = [x for x in (_step(c, t, False), c, _step(c, t, True)) if np.isfinite(float(x))]
    with mpmath.workprec(PREC):
        dist = [
            (abs(_mp(x) - v), int(np.array(x, dtype=t).view(UINT[np.dtype(t).itemsize])) & 1, x)
            for x in cands
        ]
        if tie:  # among equally close candidates prefer the one on the tie's side
            dist.sort(key=lambda d: (d[0], -float(d[2]) * tie))
        else:
            dist.sort(key=lambda d: (d[0], d[1]))
        best = dist[0][2]
        if abs(float(best)) == float(big):
            half_ulp = (_mp(big) - _mp(_step(big, t, False))) / 2
            edge = _mp(big) + half_ulp
            if abs(v) > edge or (abs(v) == edge and tie * (1 if v > 0 else -1) >= 0):
                return float("inf") if v > 0 else float("-inf")
    out = float(best)
    return (-0.0 if v < 0 else 0.0) if out == 0 else out


def softplus(x):
    return mpmath.log1p(mpmath.exp(x))


def naive(loss: str, **kw) -> list:
    """The textbook definition at 5000 bits, on float inputs (already cast)."""
    with mpmath.workprec(PREC):
        if loss == "sigmoid_cross_entropy_with_logits":
            x, z = _mp(kw["logits"]), _mp(kw["labels"])
            return max(x, 0) - x * z + mpmath.log1p(mpmath.exp(-abs(x)))
        if loss == "weighted_sigmoid_cross_entropy_with_logits":
            x, z, q = _mp(kw["logits"]), _mp(kw["labels"]), _mp(kw["pos_weight"])
            return q * z * softplus(-x) + (1 - z) * softplus(x)
        if loss == "binary_crossentropy":
            p, z = _mp(kw["probs"]), _mp(kw["labels"])
            a = -z * mpmath.log(p) if z else 0
            b = -(1 - z) * mpmath.log(1 - p) if z != 1 else 0
            return a + b
        if loss in (
            "softmax_cross_entropy_with_logits",
            "sparse_softmax_cross_entropy_with_logits",
        ):
            xs = [_mp(v) for v in kw["logits"]]
            zs = kw["labels"]
            if loss.startswith("sparse"):
                zs = [1 if i == zs else 0 for i in range(len(xs))]
            # lse(x) - x_k = log(sum_j exp(x_j - x_k)): exactly log 1 = 0 for one class
            return mpmath.fsum(
                _mp(z) * mpmath.log(mpmath.fsum(mpmath.exp(y - x) for y in xs))
                for z, x in zip(zs, xs)
                if z
            )
        if loss == "logsumexp":
            return mpmath.log(mpmath.fsum(mpmath.exp(_mp(v)) for v in kw["logits"]))
        if loss == "categorical_crossentropy":
            return -mpmath.fsum(
                _mp(z) * mpmath.log(_mp(p)) for z, p in zip(kw["labels"], kw["probs"]) if z
            )
        if loss == "categorical_crossentropy_renormalized":
            s = mpmath.fsum(_mp(p) for p in kw["probs"])
            return -mpmath.fsum(
                _mp(z) * mpmath.log(_mp(p) / s) for z, p in zip(kw["labels"], kw["probs"]) if z
            )
        if loss == "softplus":
            return softplus(_mp(kw["logits"]))
        if loss == "log_sigmoid":
            return -softplus(-_mp(kw["logits"]))
        if loss == "sigmoid":
            return 1 / (1 + mpmath.exp(-_mp(kw["logits"])))
    raise KeyError(loss)
