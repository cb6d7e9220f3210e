"""The fast reference path for float64 targets: double-double values with a bound.

float64 inputs are already float64, so ``oracles/fast.py``'s float64 evaluation has
no bits to spare. Here each elementwise loss is evaluated in scaled double-double
(``oracles/dd.py``: about 106 bits, with the exponent kept aside so nothing
underflows or overflows), written as in ``fast.py`` as a sum of non-negative terms:

    softplus(t)   = max(t, 0) + log1p(exp(-|t|))
    sigmoid CE    = w+ softplus(-x) + w- softplus(x),  w+ = q (z (1-e) + e/2),
                    w- = (1-z)(1-e) + e/2, 1 - z and 1 - e exact as double-doubles
    sigmoid(x)    = 1 / (1 + exp(-x)), or e / (1 + e) with e = exp(x) for x < 0
    binary CE     = w+ (-log p) + w- (-log(1-p)), -log u = -log m + (-k) ln2, u = m 2**k

exp and log are computed by table and polynomial in double-double arithmetic
alone, no libm (``dd.exp_neg``, ``dd.log1p_dd``), so NumPy and the compiled kernels
give the same bits.

Error bound: a value is within ``RELATIVE`` = 2**-90 of the exact loss, relative,
everywhere (subnormal and overflowing results included: the exponent is exact).
The steps' own bounds add up to below 2**-93 (dd.py lists them: sixty-odd
operations of at most 15 u**2 = 2**-102 each, two series truncated below 2**-110,
table entries rounded to 2**-106); 2**-90 leaves a factor of 8, and
tests/test_fast64.py measures the error against mpmath. The rounding decision adds
``MARGIN`` = 2**-50 ulp for its own arithmetic. With 2**-90 an element is undecided
only when the exact value lies within about 2**-37 ulp of a rounding midpoint: none
in 1e6 random inputs; exact midpoints (sigmoid(0) = 1/2 is not one, but a tie in a
subnormal label times an exact loss would be) go to mpmath, as do infinities, NaN,
and the corners ``fast.FAST`` does not cover.

Rounding to float64 is done on the scaled value in units of its ulp 2**q: n = the
nearest integer (ties to even by ``rint``), the residual rho, decided when
[rho - err, rho + err] lies strictly inside the rounding interval of n (a quarter
below a power of two, where the ulp halves). Subnormals (q = -1074), underflow to 0
and overflow to inf follow from the same integer n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossfuzz.oracles import dd
from lossfuzz.oracles.dd import (
    KZERO,
    from_float,
    log1p_s,
    maximum,
    minimum,
    neglog,
    norm,
    sadd,
    sdiv,
    select,
    smul,
    two_sum,
)

RELATIVE = 2.0**-90
MARGIN = 2.0**-50  # ulp: the rounding of rho and err themselves
P, EMIN, EMAX = 53, -1022, 1023
QMIN = EMIN - P + 1  # -1074
HALF_BINADE = 2.0 ** (P - 1)


# ------------------------------------------------------------------ the losses, scaled


def _weights(z, eps):
    """(z (1-e) + e/2, (1-z)(1-e) + e/2), each scaled, exact but for two roundings."""
    ph, pl, pk = from_float(z)
    nh, nl = two_sum(1.0, -z)
    nh, nl, nk = norm(nh, nl, pk * 0)
    if eps != 0.0:
        oh, ol = two_sum(1.0, -eps)
        oh, ol, ok = norm(oh, ol, pk * 0)
        eh, el, ek = from_float(eps + z * 0.0)
        ek = select(eh == 0, ek, ek - 1)
        ph, pl, pk = smul(ph, pl, pk, oh, ol, ok)
        ph, pl, pk = sadd(ph, pl, pk, eh, el, ek)
        nh, nl, nk = smul(nh, nl, nk, oh, ol, ok)
        nh, nl, nk = sadd(nh, nl, nk, eh, el, ek)
    return ph, pl, pk, nh, nl, nk


def _softplus_pair(x):
    """(softplus(-x), softplus(x)), sharing log1p(exp(-|x|))."""
    ah = select(x < 0, -x, x)
    eh, el, ek = dd.exp_neg(ah)
    sh, sl, sk = log1p_s(eh, el, ek)
    mh, ml, mk = from_float(maximum(-x, 0.0))
    mh, ml, mk = sadd(mh, ml, mk, sh, sl, sk)
    xh, xl, xk = from_float(maximum(x, 0.0))
    xh, xl, xk = sadd(xh, xl, xk, sh, sl, sk)
    return mh, ml, mk, xh, xl, xk


def softplus(x):
    ah = select(x < 0, -x, x)
    eh, el, ek = dd.exp_neg(ah)
    sh, sl, sk = log1p_s(eh, el, ek)
    th, tl, tk = from_float(maximum(x, 0.0))
    return sadd(th, tl, tk, sh, sl, sk)


def sigmoid(x):
    ah = select(x < 0, -x, x)
    eh, el, ek = dd.exp_neg(ah)
    dh, dl, dk = sadd(0.5, 0.0, ek * 0 + 1, eh, el, ek)
    nh = select(x < 0, eh, 0.5)
    nl = select(x < 0, el, 0.0)
    nk = select(x < 0, ek, ek * 0 + 1)
    return sdiv(nh, nl, nk, dh, dl, dk)


def sigmoid_ce(x, z, q, eps):
    """q = 1.0 for the unweighted loss."""
    ph, pl, pk, nh, nl, nk = _weights(z, eps)
    qh, ql, qk = from_float(q)
    ph, pl, pk = smul(qh, ql, qk, ph, pl, pk)
    mh, ml, mk, xh, xl, xk = _softplus_pair(x)
    ah, al, ak = smul(ph, pl, pk, mh, ml, mk)
    bh, bl, bk = smul(nh, nl, nk, xh, xl, xk)
    return sadd(ah, al, ak, bh, bl, bk)


def binary_ce(p, z, eps):
    ph, pl, pk, nh, nl, nk = _weights(z, eps)
    ah, al, ak = neglog(p, p * 0.0)
    bh, bl, bk = dd.neglog1m(p)
    ah, al, ak = smul(ph, pl, pk, ah, al, ak)
    bh, bl, bk = smul(nh, nl, nk, bh, bl, bk)
    return sadd(ah, al, ak, bh, bl, bk)


# ------------------------------------------------------------------ rounding to float64


def round_scaled(h, l, k):
    """(reference magnitude, decided, q, uh, ul, err): (h + l) 2**k >= 0 rounded to float64.

    uh + ul is the value in units of 2**q, its ulp (q >= -1074); err the bound in those
    units. Below 2**-1200 the value rounds to 0, at or above 2**1024 to inf: decided."""
    e = k - 1
    q = maximum(e, EMIN) - P + 1
    tiny = k < -1200
    big = e > EMAX
    s = minimum(maximum(k - q, -200), P)
    uh = dd.ldexp(h, s)
    ul = dd.ldexp(l, s)
    n = dd.rint(uh)
    rho = (uh - n) + ul
    up = rho > 0.5
    down = rho < -0.5
    n = select(up, n + 1.0, select(down, n - 1.0, n))
    rho = select(up, rho - 1.0, select(down, rho + 1.0, rho))
    err = RELATIVE * uh + MARGIN
    lower = select((n == HALF_BINADE) & (q > QMIN), -0.25, -0.5)
    decided = ((rho - err > lower) & (rho + err < 0.5)) | tiny | big
    ref = dd.ldexp(n, minimum(q, EMAX))
    ref = select(big, np.inf, select(tiny, 0.0, ref))
    return ref, decided, q, uh, ul, err


# ------------------------------------------------------------------ the NumPy path


@dataclass(frozen=True)
class FastValues64:
    """``fast.FastValues`` for a float64 target, with the scaled double-double kept.

    ``value`` is the float64 nearest (to within an ulp) and ``bound`` bounds its
    distance to the exact value (an ulp and a subnormal step wider than the 2**-90
    of the double-double: what a sum of these values, in ``oracles/reductions.py``,
    may rely on). ``errors`` measures answers against the double-double itself."""

    value: np.ndarray
    bound: np.ndarray
    reference: np.ndarray
    decided: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    k: np.ndarray
    negative: bool  # the loss is -(the scaled value): log_sigmoid

    def errors(self, y: np.ndarray):
        """(ULP errors, absolute errors, their bound in ULPs, exact > 0, exact < 0, unsure)
        of float64 answers ``y``, as ``harness.ulp.ulp_errors`` against the exact values:
        within the returned bound of them, except where ``unsure`` (the exact value may
        lie on either side of a power of two, whose ulps differ)."""
        h, l, k = self.hi.ravel(), self.lo.ravel(), self.k.ravel()
        with np.errstate(all="ignore"):
            _, _, q, uh, ul, err = round_scaled(h, l, k)
            sign = -1.0 if self.negative else 1.0
            yu = np.ldexp(sign * y, -q)
            diff_u = np.abs((yu - uh) - ul)
            below = (h == 0.5) & (q > QMIN)  # the value may sit under 2**(e+1)... or on it
            unsure = below & (np.abs(ul) <= err + MARGIN)
            scale = np.where(below & (ul < 0), 2.0, 1.0)
            ulp = np.where(np.isnan(y), np.inf, diff_u * scale)
            diff = np.where(np.isnan(y), np.inf, np.ldexp(diff_u, q))
            ulp_bound = (err + MARGIN) * scale + ulp * 2.0**-50
        live = h > 0
        positive = live & (not self.negative)
        negative = live & self.negative
        return ulp, diff, ulp_bound, positive, negative, unsure


FNS = {
    "sigmoid_cross_entropy_with_logits": lambda x, z, eps: sigmoid_ce(x, z, 1.0, eps),
    "weighted_sigmoid_cross_entropy_with_logits": lambda x, z, q, eps: sigmoid_ce(x, z, q, eps),
    "softplus": lambda x, eps: softplus(x),
    "log_sigmoid": lambda x, eps: softplus(-x),
    "sigmoid": lambda x, eps: sigmoid(x),
    "binary_crossentropy": lambda p, z, eps: binary_ce(p, z, eps),
}
NEGATIVE = {"log_sigmoid"}


def finish(h, l, k, covered, negative: bool) -> FastValues64:
    """The FastValues64 of scaled values (NumPy or a kernel's), covered elements only."""
    with np.errstate(all="ignore"):
        ref, decided, _, _, _, _ = round_scaled(h, l, k)
        # uncovered elements are mpmath's: NaN there, as in fast.py (the kernels leave
        # whatever their sanitised inputs gave)
        value = np.where(covered, np.ldexp(h, np.clip(k, -2000, 2000)), np.nan)
        bound = np.abs(value) * 2.0**-52 + 2.0**-1074
        decided = decided & covered
        ref = np.where(covered, ref, np.nan)
        if negative:
            ref, value = -ref, -value
    return FastValues64(value, bound, ref, decided, h, l, k, negative)


def fast_values(loss: str, cast: dict, arrays: list, eps: float, covered) -> FastValues64:
    """The NumPy path on inputs already float64 and broadcast (``fast.fast_values``)."""
    del cast
    with np.errstate(all="ignore"):
        h, l, k = FNS[loss](*arrays, eps)
    return finish(h, l, k, covered, loss in NEGATIVE)


JITTED = ("_weights", "_softplus_pair", "softplus", "sigmoid", "sigmoid_ce", "binary_ce")
__all__ = ["KZERO", "FastValues64", "RELATIVE", "fast_values", "round_scaled"]
