"""Exact losses along a class axis: the softmax family on logits, categorical CE on probabilities.

For a row x with maximum x* at index j*, every quantity is built from

    L   = log1p(T),  T = sum_{j != j*} exp(x_j - x*)     (all exponents <= 0)
    lse(x) - x_k = (x* - x_k) + L                          (two non-negative terms)

with the differences x_j - x_k formed exactly. So softmax CE is a sum of
non-negative terms, log_softmax a negated one, softmax_k = exp(x_k - x*) / (1 + T)
a quotient of positives; only logsumexp itself, x* + L, can cancel (near 0), and
Ziv's loop raises the precision until the interval no longer straddles a rounding
boundary. Nothing is O(n^2): T is computed once per row.

Infinities follow the limits (DESIGN.md): -inf logits drop out of the sum and
contribute 0 where their label is 0; a single +inf logit takes all the mass; two
or more +inf logits leave lse - x_k undefined for them (NaN where their label is
non-zero); a row of nothing but -inf (fully masked) has no defined softmax.
"""

from __future__ import annotations

import math
from fractions import Fraction

from mpmath.libmp import finf, fnan, fninf, fone, fzero, mpf_add, mpf_cmp, mpf_sub

from lossfuzz.oracles import interval as I
from lossfuzz.oracles.elementwise import negate, neglog_sum
from lossfuzz.oracles.registry import definition


class _Row:
    """The shared pieces of one logit row: which entries are special, x*, and T's terms."""

    def __init__(self, xs):
        self.xs = xs
        self.has_nan = any(x == fnan for x in xs)
        self.pos_inf = [i for i, x in enumerate(xs) if x == finf]
        self.finite = [i for i, x in enumerate(xs) if x not in (finf, fninf, fnan)]
        self.top = None
        self.diffs = []
        self._t = {}  # precision -> enclosure of T
        self._log1p_t = {}  # precision -> enclosure of L
        if self.finite:
            top = self.finite[0]
            for i in self.finite[1:]:
                if mpf_cmp(xs[i], xs[top]) > 0:
                    top = i
            self.top = top
            self.diffs = [mpf_sub(xs[j], xs[top]) for j in self.finite if j != top]

    def gap(self, k):
        """x* - x_k, exactly (>= 0)."""
        return mpf_sub(self.xs[self.top], self.xs[k])

    def t(self, w: int) -> I.Interval:
        """T = sum exp(x_j - x*) over the finite j other than j*, once per precision."""
        if w not in self._t:
            t = I.point(fzero)
            for d in self.diffs:
                t = I.add(t, I.exp(I.point(d), w), w)
            self._t[w] = t
        return self._t[w]

    def log1p_t(self, w: int) -> I.Interval:
        """L = log1p(T), once per precision (log_softmax needs it for every entry)."""
        if w not in self._log1p_t:
            self._log1p_t[w] = I.log1p(self.t(w), w)
        return self._log1p_t[w]


@definition(
    "sparse_softmax_cross_entropy_with_logits",
    shape="reduce",
    primary="logits",
    labels="sparse",
    params=("label_smoothing",),
    formula="logsumexp(x) - x_k",
)
@definition(
    "softmax_cross_entropy_with_logits",
    shape="reduce",
    primary="logits",
    labels="dense",
    params=("label_smoothing",),
    formula="sum_i z_i (logsumexp(x) - x_i)",
)
def softmax_cross_entropy_with_logits(xs, zs: list[Fraction]):
    """sum_k z_k (lse(x) - x_k)."""
    row = _Row(xs)
    if row.has_nan:
        return math.nan
    labelled = [k for k, z in enumerate(zs) if z != 0]
    if row.pos_inf:
        unique = len(row.pos_inf) == 1
        if any(xs[k] == finf and not unique for k in labelled):
            return math.nan
        return math.inf if any(xs[k] != finf for k in labelled) else 0.0
    if not labelled:
        return 0.0
    if row.top is None:  # every logit -inf: lse - x_k is -inf - -inf
        return math.nan
    if any(xs[k] == fninf for k in labelled):
        return math.inf
    # sum z_k (x* - x_k) is rational: add it up exactly before enclosing it
    rational = sum((zs[k] * I.raw_fraction(row.gap(k)) for k in labelled), Fraction(0))
    mass = sum(zs[k] for k in labelled)

    def expr(w: int) -> I.Interval:
        spread = I.mul_nonneg(I.from_fraction(mass, w), row.log1p_t(w), w)
        return I.add(I.from_fraction(rational, w), spread, w)

    return expr


@definition(
    "logsumexp", shape="reduce", primary="logits", is_loss=False, formula="log(sum_i exp(x_i))"
)
def logsumexp(xs):
    row = _Row(xs)
    if row.has_nan:
        return math.nan
    if row.pos_inf:
        return math.inf
    if row.top is None:
        return -math.inf
    top = I.point(xs[row.top])
    return lambda w: I.add(top, row.log1p_t(w), w)


@definition(
    "log_softmax", shape="rowwise", primary="logits", is_loss=False, formula="x_k - logsumexp(x)"
)
def log_softmax(xs) -> list:
    """x_k - lse(x) for every k of the row."""
    row = _Row(xs)
    n = len(xs)
    if row.has_nan or (row.top is None and not row.pos_inf):
        return [math.nan] * n
    if row.pos_inf:
        at_inf = 0.0 if len(row.pos_inf) == 1 else math.nan
        return [at_inf if x == finf else -math.inf for x in xs]
    out = []
    for k, x in enumerate(xs):
        if x == fninf:
            out.append(-math.inf)
            continue
        g = I.point(row.gap(k))
        out.append(negate(lambda w, g=g: I.add(g, row.log1p_t(w), w)))
    return out


@definition(
    "softmax", shape="rowwise", primary="logits", is_loss=False, formula="exp(x_k) / sum_i exp(x_i)"
)
def softmax(xs) -> list:
    """exp(x_k - x*) / (1 + T) for every k of the row."""
    row = _Row(xs)
    n = len(xs)
    if row.has_nan or (row.top is None and not row.pos_inf):
        return [math.nan] * n
    if row.pos_inf:
        at_inf = 1.0 if len(row.pos_inf) == 1 else math.nan
        return [at_inf if x == finf else 0.0 for x in xs]
    one = I.point(fone)

    def denominator(w: int) -> I.Interval:
        return I.add(one, row.t(w), w)

    out = []
    for x in xs:
        if x == fninf:
            out.append(0.0)
            continue
        g = mpf_sub(x, xs[row.top])  # <= 0
        out.append(lambda w, g=g: I.div_nonneg(I.exp(I.point(g), w), denominator(w), w))
    return out


@definition(
    "sparse_categorical_crossentropy",
    shape="reduce",
    primary="probs",
    labels="sparse",
    params=("label_smoothing",),
    formula="-log p_k",
)
@definition(
    "categorical_crossentropy",
    shape="reduce",
    primary="probs",
    labels="dense",
    params=("label_smoothing",),
    formula="-sum_i z_i log p_i",
)
def categorical_crossentropy(ps, zs: list[Fraction]):
    """-sum_k z_k log p_k."""
    return neglog_sum([(z, p, fone, mpf_sub(fone, p)) for p, z in zip(ps, zs)])


@definition(
    "sparse_categorical_crossentropy_renormalized",
    shape="reduce",
    primary="probs",
    labels="sparse",
    params=("label_smoothing",),
    formula="-log(p_k / sum_j p_j)",
    variant_of="sparse_categorical_crossentropy",
)
@definition(
    "categorical_crossentropy_renormalized",
    shape="reduce",
    primary="probs",
    labels="dense",
    params=("label_smoothing",),
    formula="-sum_i z_i log(p_i / sum_j p_j)",
    variant_of="categorical_crossentropy",
)
def categorical_crossentropy_renormalized(ps, zs: list[Fraction]):
    """-sum_k z_k log(p_k / sum_j p_j): Keras divides the probabilities by their sum."""
    if any(p == fnan for p in ps):
        return math.nan
    total = fzero
    for p in ps:
        total = mpf_add(total, p)  # exact
    if total == fzero:
        return math.nan  # 0 / 0
    return neglog_sum([(z, p, total, mpf_sub(total, p)) for p, z in zip(ps, zs)])
