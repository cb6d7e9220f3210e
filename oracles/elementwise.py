"""Exact elementwise losses: the sigmoid family on logits and binary CE on probabilities.

Every loss here is written as a sum of non-negative terms, so the oracle never
subtracts nearly equal numbers:

    sigmoid CE(x, z)           = z softplus(-x) + (1 - z) softplus(x)
    weighted sigmoid CE        = q z softplus(-x) + (1 - z) softplus(x)
    softplus(t), t > 0         = t + log1p(exp(-t))
    binary CE(p, z)            = z (-log p) + (1 - z) (-log(1 - p))
    -log p, p > 1/2            = -log1p(-(1 - p)), with 1 - p exact

Compare TF's documented max(x, 0) - x z + log1p(exp(-|x|)): at x = 1e30,
z = 1 - 2**-24 it subtracts two numbers of size 1e30 to leave one of size 6e22.

A term whose coefficient is exactly zero contributes zero even where its factor
is infinite: the limit in x at fixed z (x = +inf, z = 1 gives 0; DESIGN.md).

Each function takes exact inputs (raw mpf tuples for floats, Fractions for
coefficients) and returns either a float (an exact special value) or an
interval expression for ``interval.decide``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from mpmath.libmp import finf, fnan, fninf, fone, fzero, mpf_cmp, mpf_neg, mpf_shift, mpf_sub

from lossfuzz.oracles import interval as I
from lossfuzz.oracles.registry import definition

ONE = Fraction(1)


def log1p_exp_neg_abs(t, w: int) -> I.Interval:
    """log1p(exp(-|t|)) for finite raw t: the transcendental part of softplus."""
    return I.log1p(I.exp(I.point(mpf_neg(t) if t[0] == 0 else t), w), w)


def softplus_sum(terms):
    """sum of c * softplus(t) over (c >= 0 Fraction, raw t) pairs.

    softplus(t) = max(t, 0) + log1p(exp(-|t|)): the rational part, the sum of
    c * max(t, 0), is added up exactly before it is enclosed (see interval.py).
    """
    live = []
    for c, t in terms:
        if t == fnan:
            return math.nan
        if c == 0 or t == fninf:
            continue
        if t == finf:
            return math.inf
        live.append((c, t))
    if not live:
        return 0.0
    rational = sum((c * I.raw_fraction(t) for c, t in live if t[0] == 0), Fraction(0))

    def expr(w: int) -> I.Interval:
        acc = I.from_fraction(rational, w)
        for c, t in live:
            term = log1p_exp_neg_abs(t, w)
            if c != 1:
                term = I.mul_nonneg(I.from_fraction(c, w), term, w)
            acc = I.add(acc, term, w)
        return acc

    return expr


def neglog_interval(num, den, comp, w: int) -> I.Interval:
    """-log(num / den) for 0 < num <= den, given comp = den - num exactly."""
    if mpf_cmp(mpf_shift(num, 1), den) <= 0:  # num / den <= 1/2: log is far from 0
        return I.log(I.div_nonneg(I.point(den), I.point(num), w), w)
    return I.neg(I.log1p(I.neg(I.div_nonneg(I.point(comp), I.point(den), w)), w))


def neglog_sum(terms):
    """sum of c * -log(num / den) over (c >= 0, num, den, comp = den - num) tuples."""
    live = []
    for c, num, den, comp in terms:
        if num == fnan or den == fnan:
            return math.nan
        if c == 0 or comp == fzero:  # 0 * anything, or -log 1
            continue
        if num == fzero:
            return math.inf
        live.append((c, num, den, comp))
    if not live:
        return 0.0

    def expr(w: int) -> I.Interval:
        acc = I.point(fzero)
        for c, num, den, comp in live:
            term = neglog_interval(num, den, comp, w)
            if c != 1:
                term = I.mul_nonneg(I.from_fraction(c, w), term, w)
            acc = I.add(acc, term, w)
        return acc

    return expr


def negate(result):
    if callable(result):
        return lambda w: I.neg(result(w))
    return -result if result else 0.0


# ---------------------------------------------------------------- the losses


@definition(
    "sigmoid_cross_entropy_with_logits",
    shape="elementwise",
    primary="logits",
    labels="dense",
    params=("label_smoothing",),
    formula="max(x,0) - x z + log1p(exp(-|x|))",
)
def sigmoid_cross_entropy_with_logits(x, z: Fraction):
    return softplus_sum([(z, mpf_neg(x)), (ONE - z, x)])


@definition(
    "weighted_sigmoid_cross_entropy_with_logits",
    shape="elementwise",
    primary="logits",
    labels="dense",
    params=("pos_weight",),
    formula="q z softplus(-x) + (1-z) softplus(x), q = pos_weight",
)
def weighted_sigmoid_cross_entropy_with_logits(x, z: Fraction, pos_weight: Fraction):
    return softplus_sum([(pos_weight * z, mpf_neg(x)), (ONE - z, x)])


@definition(
    "softplus", shape="elementwise", primary="logits", is_loss=False, formula="log1p(exp(x))"
)
def softplus(x):
    return softplus_sum([(ONE, x)])


@definition(
    "log_sigmoid", shape="elementwise", primary="logits", is_loss=False, formula="-softplus(-x)"
)
def log_sigmoid(x):
    return negate(softplus_sum([(ONE, mpf_neg(x))]))


@definition(
    "sigmoid", shape="elementwise", primary="logits", is_loss=False, formula="1 / (1 + exp(-x))"
)
def sigmoid(x):
    if x == fnan:
        return math.nan
    if x == finf:
        return 1.0
    if x == fninf:
        return 0.0
    one = I.point(fone)
    return lambda w: I.div_nonneg(one, I.add(one, I.exp(I.point(mpf_neg(x)), w), w), w)


@definition(
    "binary_crossentropy",
    shape="elementwise",
    primary="probs",
    labels="dense",
    params=("label_smoothing",),
    formula="-(z log p + (1-z) log(1-p)), 0 log 0 = 0",
)
def binary_crossentropy(p, z: Fraction):
    q = mpf_sub(fone, p)  # exact
    return neglog_sum([(z, p, fone, q), (ONE - z, q, fone, p)])
