"""The fast reference path: vectorised float64 with an error bound, mpmath where it cannot decide.

For float16, bfloat16 and float32 targets the elementwise losses are computed in
float64 with NumPy, each written (like the exact oracle) as a sum of
non-negative terms, so no step cancels:

    softplus(t)     = max(t, 0) + log1p(exp(-|t|))
    sigmoid CE      = z softplus(-x) + (1 - z) softplus(x)     (q z softplus(-x) weighted)
    sigmoid(x)      = 1 / (1 + exp(-x)), or e / (1 + e) with e = exp(x) for x < 0
    binary CE       = z (-log p) + (1 - z) (-log1p(-p)), -log p as -log1p(p - 1) above 1/2

The inputs are exact in float64 (every float16, bfloat16 and float32 is). Error
bound: we assume NumPy's float64 exp, log and log1p are each within 2**-48
relative (32 ULP). That is an assumption, not a proof: it is several times the
few ULP that NumPy's own accuracy tests (numpy/_core/tests/test_umath_accuracy.py)
hold its SIMD kernels to, and that glibc's table of known errors lists for the
scalar ones; tests/test_fast.py checks the bound against mpmath. A value then carries a
relative error of at most (number of calls) * 2**-48 plus one rounding per
arithmetic step, below ``RELATIVE`` = 2**-44, plus ``ABSOLUTE`` = 2**-1000 for
results that underflow float64 (exp(-800) is 0 there but 1e-348 in truth; no
target has a float within 2**-1000 of 0 other than 0).

An element is decided when both ends of [v - err, v + err] round to the same
float of the target; that float is then the correctly rounded exact value. The
rest (none of 1,992,204 random finite float32 logits with labels 0 and 1 in one
measurement, and every input the fast path does not cover: infinities, NaN, a
probability of 0 with a label that needs its log)
goes to the mpmath oracle. ``tests/test_fast.py`` checks the result is the
mpmath oracle's, bit for bit, on large random and extreme samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossfuzz.oracles.formats import Format, get_format

RELATIVE = 2.0**-44
ABSOLUTE = 2.0**-1000
TARGETS = ("float16", "bfloat16", "float32")


def round_to(v: np.ndarray, fmt: Format) -> np.ndarray:
    """Each float64 of ``v`` correctly rounded (nearest, ties to even) to ``fmt``, as float64.

    Scaling by a power of two is exact, ``np.rint`` rounds half to even, so
    rint(v / ulp) * ulp is the IEEE rounding, subnormals and overflow included.
    """
    v = np.asarray(v, dtype=np.float64)
    out = v.copy()
    live = np.isfinite(v) & (v != 0)
    a = np.abs(v[live])
    _, e = np.frexp(a)  # a = m 2**e, m in [1/2, 1): the leading bit is 2**(e - 1)
    k = fmt.ulp_exponent(e - 1)  # ulp(a) = 2**k in the target
    q = np.ldexp(np.rint(np.ldexp(a, -k)), k)
    q[q > fmt.max_finite] = np.inf
    out[live] = np.copysign(q, v[live])
    return out


def round_fast(v: np.ndarray, fmt: Format) -> np.ndarray:
    """``round_to``, by NumPy's cast where that is one IEEE rounding (float64 to float16 and
    to float32 are; float64 to bfloat16 in ml_dtypes is not, it goes through float32)."""
    if fmt.name in ("float16", "float32"):
        with np.errstate(over="ignore"):
            return np.asarray(v, dtype=np.float64).astype(fmt.numpy_dtype).astype(np.float64)
    return round_to(v, fmt)


def _softplus(t: np.ndarray) -> np.ndarray:
    return np.maximum(t, 0.0) + np.log1p(np.exp(-np.abs(t)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _neglog(p: np.ndarray) -> np.ndarray:
    """-log p for p in (0, 1], without the cancellation of log near 1."""
    return np.where(p > 0.5, -np.log1p(p - 1.0), -np.log(np.maximum(p, np.finfo(float).tiny)))


def _term(c: np.ndarray, f) -> np.ndarray:
    """c * f() where c > 0, exactly 0 where c == 0 (even if f is infinite there)."""
    if not c.any():  # a sweep over label 0 never needs softplus(-x)
        return np.zeros_like(c)
    with np.errstate(all="ignore"):
        value = c * f()
    zero = c == 0
    if zero.any():
        value[zero] = 0.0
    return value


def _smooth(z: np.ndarray, eps: float) -> np.ndarray:
    return z * (1.0 - eps) + eps / 2.0 if eps else z


def _sigmoid_ce(x, z, eps=0.0, q=None):
    """softplus(-x) and softplus(x) share log1p(exp(-|x|)): one exp and one log1p."""
    z0, z = z, _smooth(z, eps)
    pos = z if q is None else q * z
    with np.errstate(all="ignore"):
        shared = np.log1p(np.exp(-np.abs(x)))
    # 1 - z' as (1 - z)(1 - e) + e/2, not 1 - (z (1 - e) + e/2): with a subnormal e the
    # latter rounds to 0 where it is not, and that weight can multiply a large softplus
    return _term(pos, lambda: np.maximum(-x, 0.0) + shared) + _term(
        _smooth(1.0 - z0, eps), lambda: np.maximum(x, 0.0) + shared
    )


def _binary_ce(p, z, eps=0.0):
    return _term(_smooth(z, eps), lambda: _neglog(p)) + _term(
        _smooth(1.0 - z, eps), lambda: -np.log1p(-p)
    )


@dataclass(frozen=True)
class _Fast:
    inputs: tuple[str, ...]
    fn: object
    covered: object  # inputs -> mask of the elements the formula covers


def _finite(*arrays, eps=0.0):
    mask = np.ones(np.broadcast(*arrays).shape, dtype=bool)
    for a in arrays:
        mask &= np.isfinite(a)
    return mask


def _bce_covered(p, z, eps=0.0):
    # -log 0 is infinite: a probability at 0 or 1 with a label that needs its log is mpmath's.
    # The smoothed label z (1-e) + e/2 is 0 only for z = e = 0 and 1 only for z = 1, e = 0
    # (tested exactly: in floats a subnormal e is lost next to 1)
    smoothed = eps != 0
    return _finite(p, z) & ~((p == 0) & ((z != 0) | smoothed)) & ~((p == 1) & ((z != 1) | smoothed))


FAST = {
    "sigmoid_cross_entropy_with_logits": _Fast(
        ("logits", "labels"), lambda x, z, eps: _sigmoid_ce(x, z, eps), _finite
    ),
    "weighted_sigmoid_cross_entropy_with_logits": _Fast(
        ("logits", "labels", "pos_weight"),
        lambda x, z, q, eps: _sigmoid_ce(x, z, eps, q),
        _finite,
    ),
    "softplus": _Fast(("logits",), lambda x, eps: _softplus(x), _finite),
    "log_sigmoid": _Fast(("logits",), lambda x, eps: -_softplus(-x), _finite),
    "sigmoid": _Fast(("logits",), lambda x, eps: _sigmoid(x), _finite),
    "binary_crossentropy": _Fast(
        ("probs", "labels"), lambda p, z, eps: _binary_ce(p, z, eps), _bce_covered
    ),
}


def covers(loss: str, dtype: str) -> bool:
    from lossfuzz.oracles import fast_rows  # the softmax family, by rows

    if loss in fast_rows.ROWS:
        return fast_rows.covers(loss, dtype)
    return loss in FAST and (dtype in TARGETS or dtype == "float64")


@dataclass(frozen=True)
class FastValues:
    """A float64 approximation ``value`` with |value - exact| <= ``bound``, and, where
    ``decided``, the correctly rounded ``reference`` (float64 holding the target's float)."""

    value: np.ndarray
    bound: np.ndarray
    reference: np.ndarray
    decided: np.ndarray


def fast_values(loss: str, dtype: str, cast: dict) -> FastValues:
    """The fast path on inputs already cast to ``dtype`` (``oracles.cast_inputs``)."""
    from lossfuzz.oracles import fast_rows

    if loss in fast_rows.ROWS:  # a value per row (or per entry): its own bounds
        return fast_rows.row_values(loss, dtype, cast)
    spec = FAST[loss]
    fmt = get_format(dtype)
    with np.errstate(all="ignore"):  # NaN inputs cast with a warning; they are mpmath's
        arrays = np.broadcast_arrays(*(np.asarray(cast[n]).astype(np.float64) for n in spec.inputs))
        eps = float(cast.get("label_smoothing", 0.0) or 0.0)
        covered = spec.covered(*arrays, eps=eps)
        if dtype == "float64":  # no bits to spare in float64: double-double (oracles/fast64.py)
            return _fast64(loss, cast, arrays, eps, covered)
        from lossfuzz.oracles import kernels

        if kernels.wanted(covered.size):  # one fused loop, the same floats (oracles/kernels.py)
            out = kernels.fast_values(loss, fmt, arrays, eps, covered, RELATIVE, ABSOLUTE)
            return FastValues(*out)
        value = spec.fn(*arrays, eps)
        if not covered.all():
            value = np.where(covered, value, np.nan)
        bound = np.abs(value) * RELATIVE + ABSOLUTE
        lo = round_fast(value - bound, fmt)
        hi = round_fast(value + bound, fmt)
        reference = round_fast(value, fmt)
    decided = covered & (lo == hi) & np.isfinite(value)
    return FastValues(value, bound, reference, decided)


def _fast64(loss, cast, arrays, eps, covered):
    from lossfuzz.oracles import fast64, kernels

    if kernels.wanted(arrays[0].size):
        return kernels.fast_values64(loss, arrays, eps, covered)
    return fast64.fast_values(loss, cast, arrays, eps, covered)
