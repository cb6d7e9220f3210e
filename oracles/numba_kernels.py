"""The Numba kernels themselves (``oracles/kernels.py`` says what they are and when they run).

Importing this module imports Numba (an ImportError if absent) and gives ``dd.py``'s
NumPy helpers scalar overloads, so that the double-double functions compile as they
are. The kernels are module-level functions, so ``cache=True`` keeps them in
``__pycache__`` across processes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic, overload, register_jitable

from lossfuzz.oracles import dd, fast64


@overload(dd.select)
def _select(c, a, b):
    return lambda c, a, b: a if c else b


@overload(dd.ldexp)
def _ldexp(x, k):
    return lambda x, k: math.ldexp(x, k)


@overload(dd.frexp)
def _frexp(x):
    return lambda x: math.frexp(x)


@overload(dd.rint)
def _rint(x):
    return lambda x: np.rint(x)


@overload(dd.maximum)
def _maximum(a, b):
    return lambda a, b: a if a > b else b  # never NaN here: inputs are sanitised


@overload(dd.minimum)
def _minimum(a, b):
    return lambda a, b: a if a < b else b


@overload(dd.to_int)
def _to_int(x):
    return lambda x: np.int64(x)


for _module in (dd, fast64):
    for _name in _module.JITTED:
        register_jitable(getattr(_module, _name))

softplus64, sigmoid64 = fast64.softplus, fast64.sigmoid
sigmoid_ce64, binary_ce64 = fast64.sigmoid_ce, fast64.binary_ce
OPTS = {"cache": True, "fastmath": False, "nogil": True}


# ------------------------------------------------------------------ float64 targets


@njit(parallel=True, **OPTS)
def sce64(x, z, q, eps, h, l, kk):
    for i in prange(x.size):
        h[i], l[i], kk[i] = sigmoid_ce64(x[i], z[i], q[i], eps)


@njit(parallel=True, **OPTS)
def bce64(p, z, eps, h, l, kk):
    for i in prange(p.size):
        h[i], l[i], kk[i] = binary_ce64(p[i], z[i], eps)


@njit(parallel=True, **OPTS)
def unary64(x, which, h, l, kk):
    for i in prange(x.size):
        if which == 0:
            h[i], l[i], kk[i] = softplus64(x[i])
        elif which == 1:
            h[i], l[i], kk[i] = softplus64(-x[i])
        else:
            h[i], l[i], kk[i] = sigmoid64(x[i])


# ------------------------------------------------------------------ float16/bfloat16/float32
# frexp and ldexp are libm calls, ten times the cost of the arithmetic around them; the
# narrow kernels read the exponent from the bits and scale by exact powers of two


@intrinsic
def _bits(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


with np.errstate(under="ignore"):
    POW2 = np.ldexp(1.0, np.arange(-1100, 1024))  # 2**i at i + 1100 (0 below 2**-1074)


@njit(**OPTS)
def exponent(v):
    """floor(log2 |v|) for a finite nonzero normal float64 v; -1023 for subnormals."""
    return ((_bits(v) >> 52) & 0x7FF) - 1023


@njit(**OPTS)
def round_to(v, p, emin, max_finite):
    """``fast.round_to`` of one float (float32's by the hardware conversion: one IEEE
    rounding, as ``fast.round_fast`` does). The scalings are exact: 2**-k is at least
    2**-1023 and a 2**-k lies in [2**(p-1), 2**p) or is smaller but normal."""
    if p == 24:
        return np.float64(np.float32(v))
    if not (v == v) or v == 0.0 or math.isinf(v):
        return v
    a = abs(v)
    k = max(exponent(a), emin) - p + 1
    q = np.rint(a * POW2[1100 - k]) * POW2[1100 + k]
    if q > max_finite:
        q = np.inf
    return math.copysign(q, v)


@njit(**OPTS)
def smooth(z, eps):
    return z * (1.0 - eps) + eps / 2.0 if eps else z


@njit(**OPTS)
def term(c, f):
    return 0.0 if c == 0 else c * f


@njit(**OPTS)
def finish(i, value, covered, rel, absolute, p, emin, max_finite, out_v, out_b, out_r, out_d):
    if not covered:
        value = np.nan
    bound = abs(value) * rel + absolute
    lo = round_to(value - bound, p, emin, max_finite)
    hi = round_to(value + bound, p, emin, max_finite)
    out_v[i] = value
    out_b[i] = bound
    out_r[i] = round_to(value, p, emin, max_finite)
    out_d[i] = covered and lo == hi and math.isfinite(value)


@njit(parallel=True, **OPTS)
def sce(x, z, q, weighted, shared, eps, cov, rel, absolute, p, emin, mx, v, b, r, d):
    for i in prange(x.size):
        zs = smooth(z[i], eps)
        pos = q[i] * zs if weighted else zs
        xi, s = x[i], shared[i]
        value = term(pos, max(-xi, 0.0) + s) + term(smooth(1.0 - z[i], eps), max(xi, 0.0) + s)
        finish(i, value, cov[i], rel, absolute, p, emin, mx, v, b, r, d)


@njit(parallel=True, **OPTS)
def unary(x, which, e, shared, cov, rel, absolute, p, emin, mx, v, b, r, d):
    for i in prange(x.size):
        xi = x[i]
        if which == 0:  # softplus
            value = max(xi, 0.0) + shared[i]
        elif which == 1:  # log_sigmoid = -softplus(-x)
            value = -(max(-xi, 0.0) + shared[i])
        else:  # sigmoid
            value = 1.0 / (1.0 + e[i]) if xi >= 0 else e[i] / (1.0 + e[i])
        finish(i, value, cov[i], rel, absolute, p, emin, mx, v, b, r, d)


@njit(parallel=True, **OPTS)
def bce(pr, z, neglog, log1m, eps, cov, rel, absolute, p, emin, mx, v, b, r, d):
    for i in prange(pr.size):
        value = term(smooth(z[i], eps), neglog[i]) + term(smooth(1.0 - z[i], eps), log1m[i])
        finish(i, value, cov[i], rel, absolute, p, emin, mx, v, b, r, d)


@njit(**OPTS)
def ulp_exponent(v, p, emin):
    """``harness.ulp.ulp_exponents`` of one float (of |v|; every target's emin is far
    above float64's subnormals; NaN and inf have no exponent that matters)."""
    e = emin if v == 0 or not math.isfinite(v) else exponent(v)
    return max(e, emin) - p + 1


@njit(parallel=True, **OPTS)
def classify(y, v, bound, ref, decided, p, emin, tol, is_loss, codes, ulp, diff, need):
    """``scoring.classify_fast``: codes are metrics.CLASSES' (0 exact, 1 ok, 2 inaccurate,
    3 underflow, 4 sign, 5 overflow, 8 nan), in ``class_codes``' rule order."""
    for i in prange(y.size):
        yi, vi, bi = y[i], v[i], bound[i]
        nan = not (yi == yi)
        k = ulp_exponent(vi, p, emin)
        dif = np.inf if nan else abs(yi - vi)
        u = dif * POW2[1100 - k]  # as ldexp: exact, or one IEEE rounding
        ub = bi * POW2[1100 - k] + u * 2.0**-50
        positive = vi - bi > 0
        negative = vi + bi < 0
        wrong = (yi < 0 and positive) or (yi > 0 and negative) or (yi < 0 and is_loss)
        if nan:
            c = 8
        elif yi == ref[i]:
            c = 0
        elif wrong:
            c = 4
        elif math.isinf(yi):
            c = 5
        elif u <= tol:
            c = 1
        elif yi == 0 and ref[i] != 0:
            c = 3
        else:
            c = 2
        n = not decided[i]
        if c != 0:
            a = abs(vi)
            n = n or (not nan and yi != 0 and not positive and not negative)
            n = n or ulp_exponent(a - bi, p, emin) != ulp_exponent(a + bi, p, emin)
            n = n or (c != 4 and math.isfinite(yi) and abs(u - tol) <= ub)
        codes[i], ulp[i], diff[i], need[i] = c, u, dif, n


KERNELS = {
    "sce64": sce64,
    "bce64": bce64,
    "unary64": unary64,
    "sce": sce,
    "unary": unary,
    "bce": bce,
    "classify": classify,
}
