"""Exact gradients of the losses, with the same contract as the losses themselves.

Each gradient is a rational part plus signed rational multiples of positive
transcendental terms (sigmoid(+-x), softmax entries). Unlike the losses, the
signs genuinely mix (sigmoid(x) - z cancels where the label matches the
prediction), so Ziv's loop raises the precision until the rounding is decided.
It could only fail on an exact zero or an exact rational, so those cases are
found analytically first: sigmoid(x) is rational only at x = 0 (1/2), a
softmax entry only when all finite logits of the row are equal (1/n), and
exp of a nonzero rational is never rational (Lindemann-Weierstrass).

    sigmoid CE, d/dx           (1 - z) sigmoid(x) - z sigmoid(-x)     = sigmoid(x) - z
    weighted,   d/dx           (1 - z) sigmoid(x) - q z sigmoid(-x)
    softplus / log_sigmoid     sigmoid(x) / sigmoid(-x)
    sigmoid                    sigmoid(x) sigmoid(-x)
    softmax CE, d/dx_i         mass softmax_i - z_i        (mass = sum_k z_k)
    logsumexp,  d/dx_i         softmax_i
    binary CE,  d/dp           -z / p + (1 - z) / (1 - p)  (exactly rational)
    categorical CE, d/dp_i     -z_i / p_i;  renormalised: -z_i / p_i + mass / sum_j p_j
    sigmoid CE, d/dz           -x (times 1 - eps under label smoothing: the labels' chain rule)
    softmax CE, d/dz_i         lse(x) - x_i (times 1 - eps)

Infinite inputs take the limits, as the losses do; NaN gives NaN.
"""

from __future__ import annotations

import math
from fractions import Fraction

from mpmath.libmp import finf, fnan, fninf, fone, fzero, mpf_neg, mpf_sub
from mpmath.libmp import from_int as libmp_from_int

from lossfuzz.oracles import interval as I

GRADIENTS: dict = {}  # (loss id, wrt) -> function of the loss's exact inputs


def gradient_of(*losses: str, wrt: str):
    def register(fn):
        for loss in losses:
            GRADIENTS[(loss, wrt)] = fn
        return fn

    return register


def sigmoid_interval(x, w: int) -> I.Interval:
    one = I.point(fone)
    return I.div_nonneg(one, I.add(one, I.exp(I.point(mpf_neg(x)), w), w), w)


def _combination(rational: Fraction, terms):
    """rational + sum c * t(w) over (signed Fraction c, interval function t >= 0)."""
    live = [(c, t) for c, t in terms if c != 0]
    if not live:
        return _rational(rational)

    def expr(w: int) -> I.Interval:
        acc = I.from_fraction(rational, w)
        for c, t in live:
            term = I.mul_nonneg(I.from_fraction(abs(c), w), t(w), w)
            acc = I.add(acc, I.neg(term) if c < 0 else term, w)
        return acc

    return expr


def _rational(q: Fraction):
    """An exact rational result: a float if it is 0, else an exact (point or strict) enclosure."""
    if q == 0:
        return 0.0
    return lambda w: I.from_fraction(q, w)


def _sig(x, sign: int):
    return lambda w: sigmoid_interval(x if sign > 0 else mpf_neg(x), w)


def _weighted_sigmoid_grad(x, a: Fraction, b: Fraction):
    """a sigmoid(x) - b sigmoid(-x), with a, b >= 0 (a = 1 - z, b = q z)."""
    if x == fnan:
        return math.nan
    if x == finf:
        return _rational(a)
    if x == fninf:
        return _rational(-b)
    if x == fzero:  # sigmoid(0) = 1/2 exactly
        return _rational((a - b) / 2)
    return _combination(Fraction(0), [(a, _sig(x, +1)), (-b, _sig(x, -1))])


@gradient_of("sigmoid_cross_entropy_with_logits", wrt="logits")
def sigmoid_ce_dx(x, z: Fraction):
    return _weighted_sigmoid_grad(x, 1 - z, z)


@gradient_of("weighted_sigmoid_cross_entropy_with_logits", wrt="logits")
def weighted_sigmoid_ce_dx(x, z: Fraction, q: Fraction):
    return _weighted_sigmoid_grad(x, 1 - z, q * z)


@gradient_of("softplus", wrt="logits")
def softplus_dx(x):
    return _weighted_sigmoid_grad(x, Fraction(1), Fraction(0))


@gradient_of("log_sigmoid", wrt="logits")
def log_sigmoid_dx(x):
    # d/dx -softplus(-x) = sigmoid(-x)
    return _weighted_sigmoid_grad(mpf_neg(x) if x != fnan else x, Fraction(1), Fraction(0))


@gradient_of("sigmoid", wrt="logits")
def sigmoid_dx(x):
    if x == fnan:
        return math.nan
    if x in (finf, fninf):
        return 0.0
    if x == fzero:
        return _rational(Fraction(1, 4))
    return lambda w: I.mul_nonneg(sigmoid_interval(x, w), sigmoid_interval(mpf_neg(x), w), w)


@gradient_of("sigmoid_cross_entropy_with_logits", wrt="labels")
def sigmoid_ce_dz(x, z: Fraction, eps: Fraction = Fraction(0)):
    # softplus(-x) - softplus(x) = -x, exactly; smoothing scales the labels by 1 - eps
    if x == fnan:
        return math.nan
    if x in (finf, fninf):
        return -math.inf if x == finf else math.inf
    return _rational(-(1 - eps) * I.raw_fraction(x))


# ------------------------------------------------------------------ class axis


def _softmax_parts(xs):
    """Per entry, softmax_i as ('nan', None), ('rational', q), ('expr', enclosure function),
    or ('rational_minus', (q, f)) meaning q - f(w) with f >= 0.

    With n entries tied at the maximum x* and R = sum exp(x_j - x*) over the other
    finite entries, a tied entry's softmax is 1/n - R / (n (n + R)): its rational part
    1/n stands apart, so a label that matches it cancels exactly and e**-30528 stays
    decidable. Every other entry is exp(x_i - x*) / (n + R), transcendental.
    """
    from lossfuzz.oracles.softmax import _Row

    row = _Row(xs)
    n = len(xs)
    if row.has_nan or (row.top is None and not row.pos_inf):
        return [("nan", None)] * n
    if row.pos_inf:
        unique = len(row.pos_inf) == 1
        return [
            ("rational", Fraction(1))
            if x == finf and unique
            else ("nan", None)
            if x == finf
            else ("rational", Fraction(0))
            for x in xs
        ]
    top = xs[row.top]
    tied = [i for i in row.finite if xs[i] == top]
    others = [mpf_sub(xs[i], top) for i in row.finite if xs[i] != top]  # all < 0
    share = Fraction(1, len(tied))
    if not others:
        return [("rational", share) if i in tied else ("rational", Fraction(0)) for i in range(n)]
    ties = I.point(libmp_from_int(len(tied)))
    cache: dict = {}

    def rest(w: int) -> I.Interval:  # R
        if w not in cache:
            r = I.point(fzero)
            for d in others:
                r = I.add(r, I.exp(I.point(d), w), w)
            cache[w] = r
        return cache[w]

    def below_share(w: int) -> I.Interval:  # R / (n (n + R))
        r = rest(w)
        return I.div_nonneg(r, I.mul_nonneg(ties, I.add(ties, r, w), w), w)

    out = []
    for i, x in enumerate(xs):
        if x == fninf:
            out.append(("rational", Fraction(0)))
        elif i in tied:
            out.append(("rational_minus", (share, below_share)))
        else:
            g = mpf_sub(x, top)
            out.append(
                (
                    "expr",
                    lambda w, g=g: I.div_nonneg(I.exp(I.point(g), w), I.add(ties, rest(w), w), w),
                )
            )
    return out


def _softmax_term(kind, value, scale: Fraction, rational: Fraction):
    """rational + scale * softmax_i, for one entry of _softmax_parts."""
    if kind == "nan":
        return math.nan
    if kind == "rational":
        return _rational(rational + scale * value)
    if kind == "rational_minus":
        share, below = value
        return _combination(rational + scale * share, [(-scale, below)])
    return _combination(rational, [(scale, value)])


@gradient_of(
    "softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits", wrt="logits"
)
def softmax_ce_dx(xs, zs: list[Fraction]) -> list:
    mass = sum(zs, Fraction(0))
    return [_softmax_term(k, v, mass, -z) for (k, v), z in zip(_softmax_parts(xs), zs)]


@gradient_of("logsumexp", wrt="logits")
def logsumexp_dx(xs) -> list:
    return [_softmax_term(k, v, Fraction(1), Fraction(0)) for k, v in _softmax_parts(xs)]


@gradient_of("softmax_cross_entropy_with_logits", wrt="labels")
def softmax_ce_dz(xs, zs: list[Fraction], eps: Fraction = Fraction(0)) -> list:
    """-(1 - eps) log_softmax(x)_i: lse(x) - x_i, scaled by the smoothing's chain rule."""
    from lossfuzz.oracles.softmax import log_softmax

    c = -(1 - eps)
    out = []
    for value in log_softmax(xs):
        if callable(value):
            out.append(0.0 if c == 0 else (lambda w, v=value: _times_nonpositive(v(w), c, w)))
        elif value != value:
            out.append(math.nan)
        else:
            out.append(0.0 if value == 0 or c == 0 else float(c) * value)
    return out


def _times_nonpositive(a: I.Interval, c: Fraction, w: int) -> I.Interval:
    """c * a for an enclosure a of a value <= 0 (a log_softmax entry) and a rational c."""
    prod = I.mul_nonneg(I.from_fraction(abs(c), w), I.neg(a), w)  # |c| * (-a) >= 0
    return prod if c < 0 else I.neg(prod)


# ------------------------------------------------------------------ probabilities


@gradient_of("binary_crossentropy", wrt="probs")
def binary_ce_dp(p, z: Fraction):
    if p == fnan:
        return math.nan
    pf = I.raw_fraction(p)
    total = Fraction(0)
    if z != 0:
        if pf == 0:
            return -math.inf
        total -= z / pf
    if z != 1:
        if pf == 1:
            return math.inf
        total += (1 - z) / (1 - pf)
    return _rational(total)


@gradient_of("categorical_crossentropy", "sparse_categorical_crossentropy", wrt="probs")
def categorical_ce_dp(ps, zs: list[Fraction]) -> list:
    if any(p == fnan for p in ps):
        return [math.nan] * len(ps)
    out = []
    for p, z in zip(ps, zs):
        if z == 0:
            out.append(0.0)
        elif p == fzero:
            out.append(-math.inf)
        else:
            out.append(_rational(-z / I.raw_fraction(p)))
    return out


@gradient_of(
    "categorical_crossentropy_renormalized",
    "sparse_categorical_crossentropy_renormalized",
    wrt="probs",
)
def categorical_ce_renormalized_dp(ps, zs: list[Fraction]) -> list:
    if any(p == fnan for p in ps):
        return [math.nan] * len(ps)
    fr = [I.raw_fraction(p) for p in ps]
    total = sum(fr, Fraction(0))
    if total == 0:
        return [math.nan] * len(ps)
    mass = sum(zs, Fraction(0))
    out = []
    for p, z in zip(fr, zs):
        if z != 0 and p == 0:
            out.append(-math.inf)
        else:
            out.append(_rational((-z / p if z else Fraction(0)) + mass / total))
    return out
