"""The exact sum and mean of a batch of losses (oracles/reductions.py), against an
independent 5000-bit sum of the textbook formula, and at the float16 overflow edge."""

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest
from independent import naive, round_brute

from lossfuzz.oracles.interval import OracleUndecided
from lossfuzz.oracles.reductions import reduce

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


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_weighted_rows_equal_the_tiled_batch_and_an_independent_sum(reduction, fast_path):
    from lossfuzz.oracles import fast
    from lossfuzz.oracles.reductions import tile_counts

    x = np.array([20.0, -3.0, 0.5], dtype=np.float16)
    z = np.array([0.0, 1.0, 0.25], dtype=np.float16)
    counts = tile_counts(3, 1000)
    assert counts == [334, 333, 333]
    with mpmath.workprec(5000):
        want = sum(
            c * naive(SIGMOID_CE, logits=float(a), labels=float(b)) for a, b, c in zip(x, z, counts)
        )
        if reduction == "mean":
            want = want / 1000
    saved = fast.covers
    if not fast_path:
        fast.covers = lambda *a: False
    try:
        _, weighted = reduce(SIGMOID_CE, reduction, "float16", counts=counts, logits=x, labels=z)
        _, tiled = reduce(
            SIGMOID_CE, reduction, "float16", logits=np.resize(x, 1000), labels=np.resize(z, 1000)
        )
    finally:
        fast.covers = saved
    assert weighted == tiled == round_brute(want, "float16")


def test_losses_of_astronomically_different_sizes_sum_without_a_giant_integer():
    # softplus(-1e30) = exp(-1e30): summed exactly it would need an integer of 1e30 bits
    # (gmp aborts the process); it is far below any bit that can matter
    x = np.array([-1e30, 1.0], dtype=np.float32)
    z = np.zeros(2, dtype=np.float32)
    _, got = reduce(SIGMOID_CE, "sum", "float32", counts=[10**6, 1], logits=x, labels=z)
    assert got == float(np.float32(math.log1p(math.exp(1.0))))
    _, tiny = reduce(
        SIGMOID_CE,
        "mean",
        "float64",
        counts=[5],
        logits=x[:1].astype(np.float64),
        labels=z[:1].astype(np.float64),
    )
    assert tiny == 0.0  # exp(-1e30) rounds to 0 in every format


@pytest.mark.parametrize("counts", [None, [1, 3]])
def test_float64_losses_whose_sum_is_beyond_the_float_range(counts):
    # softplus(a) is a + log1p(e**-a), a for a near 1.7e308 but for e**-1e308: the sum of two
    # overflows float64 on the way, the mean does not. b = a - 4 ulps keeps the means off ties
    a = 1.7e308
    b = a - 4 * 2.0**971
    x = np.array([-a, -b])
    z = np.array([1.0, 1.0])
    w = [1, 1] if counts is None else counts
    with mpmath.workprec(200):
        exact = mpmath.mpf(a) * w[0] + mpmath.mpf(b) * w[1]
    total, rounded = reduce(
        "sigmoid_cross_entropy_with_logits", "sum", "float64", counts=counts, logits=x, labels=z
    )
    assert rounded == math.inf and abs(total / exact - 1) < 1e-30
    total, rounded = reduce(
        "sigmoid_cross_entropy_with_logits", "mean", "float64", counts=counts, logits=x, labels=z
    )
    with mpmath.workprec(200):
        want = float(exact / sum(w))  # mpmath rounds to nearest: the correct float64
    assert rounded == want and math.isfinite(rounded)
