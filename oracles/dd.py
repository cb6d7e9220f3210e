"""Double-double arithmetic, with an exponent kept aside, for the float64 fast path.

A double-double (hi, lo) is the unevaluated sum hi + lo of two float64 with
|lo| <= ulp(hi)/2: about 106 bits. Values of the float64 fast path
(``oracles/fast64.py``) are *scaled* double-doubles (hi, lo, k) = (hi + lo) 2**k
with hi in [1/2, 1), or hi = 0 and k = ``KZERO``: the exponent is an int64 beside
the significand, so exp(-744) or a subnormal label times a loss keeps its 106
bits where a plain double-double would underflow.

Every function takes NumPy arrays or scalars, and uses only IEEE arithmetic and
the few helpers below (``select``, ``ldexp``, ``frexp``, ``rint``, ``maximum``,
``minimum``, ``to_int``): ``oracles/kernels.py`` gives those a scalar overload in
Numba and compiles these same functions, so the compiled kernels compute the same
floats as NumPy, operation for operation (no fused multiply-add, no fastmath).

Error of each step, with u = 2**-53 (Joldes, Muller and Popescu, "Tight and
rigorous error bounds for basic building blocks of double-word arithmetic", ACM
TOMS 44, 2017): ``add`` of operands of one sign, or with the second at most about
half the first, <= 6 u**2 relative; ``mul`` <= 6 u**2; ``mul_f`` <= 3 u**2;
``div`` <= 15 u**2. ``exp_neg`` and ``log1p_dd`` add their reduction and series
truncation (below 2**-110) to a dozen such steps: each is within 2**-98 relative.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

KZERO = -(1 << 40)  # the exponent of a scaled zero: below every other, so sums align on the other
A_MAX = 65536.0  # exp(-a) for a > A_MAX is taken at A_MAX: < 2**-94000, see exp_neg
SPLIT = 134217729.0  # 2**27 + 1, Dekker's splitter


# ------------------------------------------------------------------ helpers Numba overloads


def select(c, a, b):
    return np.where(c, a, b)


def ldexp(x, k):
    return np.ldexp(x, k)


def frexp(x):
    m, e = np.frexp(x)
    return m, e.astype(np.int64)


def rint(x):
    return np.rint(x)


def maximum(a, b):
    return np.maximum(a, b)


def minimum(a, b):
    return np.minimum(a, b)


def to_int(x):
    return np.asarray(x).astype(np.int64)


# ------------------------------------------------------------------ error-free transformations


def two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def fast_two_sum(a, b):
    """Exact when |a| >= |b| (or a == 0)."""
    s = a + b
    return s, b - (s - a)


def two_prod(a, b):
    """a b = p + e exactly (Dekker; |a|, |b| < 2**996, no underflow)."""
    p = a * b
    c = SPLIT * a
    ah = c - (c - a)
    al = a - ah
    c = SPLIT * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


# ------------------------------------------------------------------ double-double


def add(ah, al, bh, bl):
    s, e = two_sum(ah, bh)
    return fast_two_sum(s, e + (al + bl))


def mul(ah, al, bh, bl):
    p, e = two_prod(ah, bh)
    return fast_two_sum(p, e + (ah * bl + al * bh))


def mul_f(ah, al, b):
    p, e = two_prod(ah, b)
    return fast_two_sum(p, e + al * b)


def div(ah, al, bh, bl):
    q1 = ah / bh
    p, e = mul_f(bh, bl, q1)
    rh, rl = two_sum(ah, -p)
    q2 = (rh + (rl - e + al)) / bh
    return fast_two_sum(q1, q2)


# ------------------------------------------------------------------ scaled double-double


def norm(h, l, k):
    """(h + l) 2**k with the significand moved to [1/2, 1); zero gets KZERO."""
    m, e = frexp(h)
    return m, ldexp(l, -e), select(h == 0, KZERO, k + e)


def from_float(x):
    """A float64 x >= 0 as a scaled double-double, exactly."""
    m, e = frexp(x)
    return m, m * 0.0, select(x == 0, KZERO, e)


def _align(h, l, d):
    d = maximum(d, -2000)  # further down it is 0: below 2**-1000 of the other operand
    return ldexp(h, d), ldexp(l, d)


def sadd(ah, al, ak, bh, bl, bk):
    """a + b for a, b >= 0."""
    k = maximum(ak, bk)
    xh, xl = _align(ah, al, ak - k)
    yh, yl = _align(bh, bl, bk - k)
    h, l = add(xh, xl, yh, yl)
    return norm(h, l, k)


def smul(ah, al, ak, bh, bl, bk):
    h, l = mul(ah, al, bh, bl)
    return norm(h, l, ak + bk)


def sdiv(ah, al, ak, bh, bl, bk):
    """a / b for b != 0."""
    h, l = div(ah, al, bh, bl)
    return norm(h, l, ak - bk)


# ------------------------------------------------------------------ constants (mpmath, once)


def _dd(x) -> tuple[float, float]:
    hi = float(x)
    return hi, float(x - hi)


with mpmath.workprec(400):
    _L = mpmath.ln2 / 64
    _m, _e = math.frexp(float(_L))
    L1 = math.ldexp(math.floor(math.ldexp(_m, 30)), _e - 30)  # 30 bits: n L1 exact, n < 2**23
    L2 = float(_L - L1)
    L3 = float(_L - L1 - L2)
    LN2_HI, LN2_LO = _dd(mpmath.ln2)
    INV_L = float(64 / mpmath.ln2)
    TH = np.array([_dd(mpmath.mpf(2) ** (mpmath.mpf(j) / 64))[0] for j in range(64)])
    TL = np.array([_dd(mpmath.mpf(2) ** (mpmath.mpf(j) / 64))[1] for j in range(64)])
    # log(1 + j/128) for j in -64..128, index j + 64
    GH = np.array([_dd(mpmath.log(1 + mpmath.mpf(j) / 128))[0] for j in range(-64, 129)])
    GL = np.array([_dd(mpmath.log(1 + mpmath.mpf(j) / 128))[1] for j in range(-64, 129)])
    EXP_C = [_dd(1 / mpmath.factorial(i)) for i in range(7)]  # 1/i!, i <= 6
    EXP_TAIL = [float(1 / mpmath.factorial(i)) for i in range(7, 12)]
    ATANH_C = [_dd(mpmath.mpf(1) / i) for i in (3, 5, 7)]
    ATANH_TAIL = [float(mpmath.mpf(1) / i) for i in (9, 11, 13)]
C3H, C3L = EXP_C[3]
C4H, C4L = EXP_C[4]
C5H, C5L = EXP_C[5]
C6H, C6L = EXP_C[6]
C7, C8, C9, C10, C11 = EXP_TAIL
A3H, A3L = ATANH_C[0]
A5H, A5L = ATANH_C[1]
A7H, A7L = ATANH_C[2]
A9, A11, A13 = ATANH_TAIL


# ------------------------------------------------------------------ exp and log


def _exp_small(sh, sl):
    """exp(s) for |s| <= ln2/128 (+ 2**-60): Taylor to s**11, the terms from s**7 in float64
    (|s**7/7!| < 2**-64, so their rounding is below 2**-117); truncation < 2**-118."""
    t = C7 + sh * (C8 + sh * (C9 + sh * (C10 + sh * C11)))
    ph, pl = mul(sh, sl, t, t * 0.0)
    ph, pl = add(C6H, C6L, ph, pl)
    for ch, cl in ((C5H, C5L), (C4H, C4L), (C3H, C3L), (0.5, 0.0), (1.0, 0.0), (1.0, 0.0)):
        ph, pl = mul(sh, sl, ph, pl)
        ph, pl = add(ch, cl, ph, pl)  # |s p| <= 0.0055 c: no cancellation
    return ph, pl


def exp_neg(a):
    """exp(-a) for a >= 0 as a scaled double-double; a > A_MAX (and NaN) is taken at A_MAX.

    -a = n ln2/64 + s with ln2/64 = L1 + L2 + L3 (n L1 exact), so exp(-a) =
    2**m 2**(j/64) exp(s) with -n = 64 m + j and |s| <= ln2/128. Replacing a > A_MAX
    by A_MAX makes exp(-a) larger but below 2**-94000: every loss here weights it by
    at most 2**1024, so its effect is below 2**-90000 of an ulp, inside fast64.MARGIN."""
    a = select(a <= A_MAX, a, A_MAX)
    n = rint(a * INV_L)
    rh = a - n * L1
    p, pe = two_prod(n, L2)
    rh, rl = two_sum(rh, -p)
    rl = rl - (pe + n * L3)
    ph, pl = _exp_small(-rh, -rl)
    m = -to_int(n)
    j = m % 64
    h, l = mul(TH[j], TL[j], ph, pl)
    return norm(h, l, (m - j) // 64)


def log1p_dd(th, tl):
    """log(1 + t) for t = th + tl in [-1/2, 1], as a double-double (NaN or out of range:
    log 1). Taking t rather than 1 + t keeps a small t's 106 bits.

    1 + t = c (1 + t'/c) with c = 1 + j/128 the nearest table point, |t'| <= 1/256;
    then log(1 + t) = log c + 2 atanh(s), s = t' / (2c + t'), |s| < 2**-7.99, by the
    series to s**13 (truncation < 2**-115). Near 0 (j = 0) log c = 0 and the result is
    relative to log(1 + t) itself; elsewhere |2 atanh(s)| <= |log c|/1.98."""
    ok = (th >= -0.5) & (th <= 1.0)
    th = select(ok, th, 0.0)
    tl = select(ok, tl, 0.0)
    jf = rint(th * 128.0)
    c = 1.0 + jf * 0.0078125
    th, tl = two_sum(th - jf * 0.0078125, tl)  # th - j/128 exact (Sterbenz)
    dh, dl = add(2.0 * c, 0.0, th, tl)
    sh, sl = div(th, tl, dh, dl)
    wh, wl = mul(sh, sl, sh, sl)
    f = A9 + wh * (A11 + wh * A13)
    ph, pl = mul_f(wh, wl, f)
    ph, pl = add(A7H, A7L, ph, pl)
    for ch, cl in ((A5H, A5L), (A3H, A3L), (1.0, 0.0)):
        ph, pl = mul(wh, wl, ph, pl)
        ph, pl = add(ch, cl, ph, pl)
    ph, pl = mul(2.0 * sh, 2.0 * sl, ph, pl)
    j = to_int(jf) + 64
    return add(GH[j], GL[j], ph, pl)


def log1p_s(eh, el, ek):
    """log1p(e) for a scaled double-double 0 <= e <= 1, scaled.

    Below 2**-61, e (1 - e/2) (the next term is e**3/3: below 2**-120 relative);
    above, log1p_dd(e)."""
    small = ek < -60
    ef = ldexp(eh, maximum(ek, -2000))
    fh, fl = two_sum(1.0, -0.5 * ef)
    fh, fl, fk = norm(fh, fl, ek * 0)
    sh, sl, sk = smul(eh, el, ek, fh, fl, fk)
    d = maximum(ek, -100)
    lh, ll = log1p_dd(ldexp(eh, d), ldexp(el, d))
    lh, ll, lk = norm(lh, ll, ek * 0)
    return select(small, sh, lh), select(small, sl, ll), select(small, sk, lk)


def neglog(uh, ul):
    """-log(u) for u = uh + ul in (0, 1] (ul = 0 where uh <= 1/2), scaled.

    Above 1/2 from log1p_dd(u - 1) (u - 1 exact); at or below, u = m 2**e with m in [1/2, 1) and
    -log u = -log m + (-e) ln2, two terms >= 0. u = 0 (or NaN) gives a finite
    value, for a weight of 0 to multiply."""
    upper = uh > 0.5
    m, e = frexp(uh)
    m = select(m >= 0.5, m, 0.5)
    e = select(upper, e * 0, e)
    ah = select(upper, uh, m)
    al = select(upper, ul, ul * 0.0)
    lh, ll = log1p_dd(ah - 1.0, al)
    lh, ll, lk = norm(-lh, -ll, e * 0)
    nh, nl = mul_f(LN2_HI, LN2_LO, -1.0 * e)
    nh, nl, nk = norm(nh, nl, e * 0)
    return sadd(lh, ll, lk, nh, nl, nk)


def neglog1m(p):
    """-log(1 - p) for p in [0, 1), scaled. Below 2**-60, p (1 + p/2) (the next term is
    p**3/3: below 2**-120 relative; log1p_dd of -p would underflow for a subnormal p);
    above, neglog(1 - p), with 1 - p exact as a double-double."""
    small = p < 2.0**-60
    ph, pl, pk = from_float(p)
    fh, fl = two_sum(1.0, 0.5 * p)
    fh, fl, fk = norm(fh, fl, pk * 0)
    sh, sl, sk = smul(ph, pl, pk, fh, fl, fk)
    uh, ul = two_sum(1.0, -p)
    lh, ll, lk = neglog(uh, ul)
    return select(small, sh, lh), select(small, sl, ll), select(small, sk, lk)


JITTED = (  # compiled by oracles/numba_kernels.py
    "two_sum",
    "fast_two_sum",
    "two_prod",
    "add",
    "mul",
    "mul_f",
    "div",
    "norm",
    "from_float",
    "_align",
    "sadd",
    "smul",
    "sdiv",
    "_exp_small",
    "exp_neg",
    "log1p_dd",
    "log1p_s",
    "neglog",
    "neglog1m",
)
