"""The exact sum and mean of a batch of losses (oracles/reductions.py), against an
independent 5000-bit sum of the textbook formula, and at the float16 overflow edge."""

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest
from independent import naive, round_brute

from oracles.interval import OracleUndecided
from oracles.reductions import reduce

SIGMOID_CE = "sigmoid_cross_entropy_with_logits"
NP = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_sum_and_mean_equal_an_independent_5000_bit_sum(dtype, reduction):
    rng = np.random.default_rng(3)
    t = NP.get(dtype, np.float64)
    x = (rng.standard_normal(300) * 30).astype(t)
    z = rng.choice([0.0, 1.0, 0.25, 0.999], 300).astype(t)
    with mpmath.workprec(5000):
        terms = [naive(SIGMOID_CE, logits=float(a), labels=float(b)) for a, b in zip(x, z)]
        want = mpmath.fsum(terms)
        if reduction == "mean":
            want = want / len(terms)
    try:
        exact, got = reduce(SIGMOID_CE, reduction, dtype, logits=x, labels=z)
    except OracleUndecided:
        pytest.skip("undecided (an honest answer, astronomically rare)")
    assert got == round_brute(want, dtype)
    assert abs(exact - want) <= abs(want) * mpmath.mpf(2) ** -40


def test_a_float16_mean_of_a_million_losses_of_20_is_20_but_their_sum_overflows():
    # softplus(20) = 20.000000002: the mean is 20; 3276 of them sum past 65504 + 16
    x = np.full(10**6, 20.0, dtype=np.float16)
    z = np.zeros(10**6, dtype=np.float16)
    assert reduce(SIGMOID_CE, "mean", "float16", logits=x, labels=z)[1] == 20.0
    assert reduce(SIGMOID_CE, "sum", "float16", logits=x[:3276], labels=z[:3276])[1] == math.inf
    assert reduce(SIGMOID_CE, "sum", "float16", logits=x[:3275], labels=z[:3275])[1] == 65504.0


def test_special_batches():
    nan = reduce(SIGMOID_CE, "sum", "float32", logits=[1.0, math.nan], labels=[0.0, 0.0])
    assert math.isnan(nan[1])
    inf = reduce(SIGMOID_CE, "mean", "float32", logits=[1.0, math.inf], labels=[0.0, 0.0])
    assert inf[1] == math.inf
    assert reduce(SIGMOID_CE, "sum", "float32", logits=np.zeros(0), labels=np.zeros(0))[1] == 0.0
    assert math.isnan(reduce(SIGMOID_CE, "mean", "float32", logits=[], labels=[])[1])
    rows = reduce(
        "softmax_cross_entropy_with_logits",
        "mean",
        "float32",
        logits=[[0.0, 1.0], [2.0, 3.0]],
        labels=[[1.0, 0.0], [0.0, 1.0]],
    )
    assert rows[1] == np.float32(0.5 + math.log1p(math.exp(-1.0)))
    with pytest.raises(ValueError, match="reduction must be"):
        reduce(SIGMOID_CE, "max", "float32", logits=[1.0], labels=[0.0])
