"""Exact gradients: against the derivatives written out at 5000 bits, against mpmath's own
numerical differentiation, at the limits, and exact where they are tiny."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from independent import round_brute, same
from strategies_for_tests import finite, unit

from lossfuzz import oracles

DTYPES = ["float16", "bfloat16", "float32", "float64"]
P = 5000


def sig(x):
    return 1 / (1 + mpmath.exp(-x))


def check(got, want, dtype, tie: int = 0):
    """``tie``: the sign of a term too small for 5000 bits (e.g. e**-3472), for exact ties."""
    assert same(got, round_brute(want, dtype, tie)), (float(got), want)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sigmoid_ce_gradient_is_sigmoid_minus_label_even_when_they_cancel(dtype, data):
    x = data.draw(finite(dtype), label="logits")
    z = data.draw(unit(dtype), label="labels")
    got = oracles.gradient("sigmoid_cross_entropy_with_logits", "logits", dtype, logits=x, labels=z)
    with mpmath.workprec(P):
        xm, zm = mpmath.mpf(x), mpmath.mpf(z)
        want = (1 - zm) * sig(xm) - zm * sig(-xm)
    # (1 - z) - (tiny) for x > 0, -z + (tiny) for x < 0, exactly 1/2 - z at 0
    check(got, want, dtype, 0 if x == 0 else -1 if x > 0 else 1)  # sigmoid(0) = 1/2 exactly


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_weighted_sigmoid_ce_gradient(dtype, data):
    x = data.draw(finite(dtype), label="logits")
    z = data.draw(unit(dtype), label="labels")
    q = data.draw(finite(dtype, min_value=0.0, max_value=100.0), label="pos_weight")
    got = oracles.gradient(
        "weighted_sigmoid_cross_entropy_with_logits",
        "logits",
        dtype,
        logits=x,
        labels=z,
        pos_weight=q,
    )
    with mpmath.workprec(P):
        xm, zm, qm = mpmath.mpf(x), mpmath.mpf(z), mpmath.mpf(q)
        want = (1 - zm) * sig(xm) - qm * zm * sig(-xm)
    exact = x == 0 or (z == 1 and q * z == 0)  # sigmoid(0) = 1/2; or both coefficients 0
    check(got, want, dtype, 0 if exact else -1 if x > 0 else 1)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_ce_gradient_is_mass_times_softmax_minus_labels(dtype, data):
    xs = data.draw(st.lists(finite(dtype), min_size=1, max_size=5), label="logits")
    zs = data.draw(st.lists(unit(dtype), min_size=len(xs), max_size=len(xs)), label="labels")
    got = oracles.gradient(
        "softmax_cross_entropy_with_logits", "logits", dtype, logits=[xs], labels=[zs]
    )[0]
    with mpmath.workprec(P):
        mass = mpmath.fsum(mpmath.mpf(z) for z in zs)
        for i, (x, z) in enumerate(zip(xs, zs)):
            soft = 1 / mpmath.fsum(mpmath.exp(mpmath.mpf(y) - mpmath.mpf(x)) for y in xs)
            want = mass * soft - mpmath.mpf(z)
            tie = -1 if x == max(xs) else 1  # the maximum's softmax is 1 - (tiny), others (tiny)
            tie = 0 if mass == 0 else tie  # no softmax term at all: exactly -z_i
            if all(y == xs[0] for y in xs):  # softmax is exactly 1/n here: nothing neglected
                want, tie = mass / len(xs) - mpmath.mpf(z), 0
            check(got[i], want, dtype, tie)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_binary_ce_gradient_wrt_probs_is_exactly_rational(dtype, data):
    p = data.draw(unit(dtype), label="probs")
    z = data.draw(unit(dtype), label="labels")
    got = oracles.gradient("binary_crossentropy", "probs", dtype, probs=p, labels=z)
    with mpmath.workprec(P):
        pm, zm = mpmath.mpf(p), mpmath.mpf(z)
        terms = []
        if z != 0:
            terms.append(-zm / pm if p != 0 else -mpmath.inf)
        if z != 1:
            terms.append((1 - zm) / (1 - pm) if p != 1 else mpmath.inf)
        want = mpmath.fsum(terms) if terms else mpmath.mpf(0)
    check(got, want, dtype)


@pytest.mark.parametrize(
    "loss,inputs",
    [
        ("sigmoid_cross_entropy_with_logits", dict(logits=0.75, labels=0.25)),
        (
            "weighted_sigmoid_cross_entropy_with_logits",
            dict(logits=-1.5, labels=0.75, pos_weight=3.0),
        ),
        ("softplus", dict(logits=-2.0)),
        ("log_sigmoid", dict(logits=1.25)),
        ("sigmoid", dict(logits=0.5)),
        ("binary_crossentropy", dict(probs=0.125, labels=0.75)),
    ],
)
def test_elementwise_gradients_match_mpmath_numerical_differentiation(loss, inputs):
    primary = "probs" if "probs" in inputs else "logits"
    got = oracles.evaluate_gradient(loss, primary, "float64", **inputs).exact.item()

    def f(t):
        with mpmath.workprec(300):
            return oracles.exact(loss, "float64", **dict(inputs, **{primary: float(t)})).item()

    with mpmath.workprec(200):
        # the loss is evaluated at float64 points only, so differentiate the formula instead
        x = mpmath.mpf(inputs[primary])
        formula = {
            "sigmoid_cross_entropy_with_logits": lambda t: (
                mpmath.log1p(mpmath.exp(-t)) * 0.25 + mpmath.log1p(mpmath.exp(t)) * 0.75
            ),
            "weighted_sigmoid_cross_entropy_with_logits": lambda t: (
                3 * 0.75 * mpmath.log1p(mpmath.exp(-t)) + 0.25 * mpmath.log1p(mpmath.exp(t))
            ),
            "softplus": lambda t: mpmath.log1p(mpmath.exp(t)),
            "log_sigmoid": lambda t: -mpmath.log1p(mpmath.exp(-t)),
            "sigmoid": lambda t: 1 / (1 + mpmath.exp(-t)),
            "binary_crossentropy": lambda t: -(0.75 * mpmath.log(t) + 0.25 * mpmath.log(1 - t)),
        }[loss]
        assert abs(formula(x) - f(x)) < mpmath.mpf(2) ** -100  # the formula is the oracle's loss
        want = mpmath.diff(formula, x)
        assert abs(got - want) <= abs(want) * mpmath.mpf(2) ** -80


def test_softmax_ce_gradient_matches_numerical_differentiation():
    xs, zs = [0.5, -1.25, 2.0], [0.25, 0.25, 0.5]
    got = oracles.evaluate_gradient(
        "softmax_cross_entropy_with_logits", "logits", "float64", logits=[xs], labels=[zs]
    ).exact[0]
    with mpmath.workprec(200):

        def loss(i, t):
            row = [mpmath.mpf(v) for v in xs]
            row[i] = t
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
            return mpmath.fsum(mpmath.mpf(z) * (lse - v) for z, v in zip(zs, row))

        for i in range(3):
            want = mpmath.diff(lambda t, i=i: loss(i, t), mpmath.mpf(xs[i]))
            assert abs(got[i] - want) <= abs(want) * mpmath.mpf(2) ** -80


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_gradients_are_exact_not_flushed(dtype):
    # d/dx sigmoid CE at x = -40, z = 0 is sigmoid(-40) = 4.25e-18: exact in every dtype
    got = oracles.gradient(
        "sigmoid_cross_entropy_with_logits", "logits", dtype, logits=-40.0, labels=0.0
    )
    with mpmath.workprec(200):
        check(got, sig(mpmath.mpf(-40)), dtype)
    # at x = 40, z = 1 it is -sigmoid(-40): no cancellation in 1 - z or sigmoid(x) - 1
    got = oracles.gradient(
        "sigmoid_cross_entropy_with_logits", "logits", dtype, logits=40.0, labels=1.0
    )
    with mpmath.workprec(200):
        check(got, -sig(mpmath.mpf(-40)), dtype)


def test_gradient_of_a_cancelling_difference_near_zero_is_decided():
    # sigmoid(1e-300) - 1/2 = 2.5e-301: a thousand bits of cancellation
    got = oracles.gradient(
        "sigmoid_cross_entropy_with_logits", "logits", "float64", logits=1e-300, labels=0.5
    )
    assert got == 0.25e-300


@pytest.mark.parametrize(
    "loss,wrt,inputs,expected",
    [
        ("sigmoid_cross_entropy_with_logits", "logits", dict(logits=0.0, labels=0.5), 0.0),
        ("sigmoid_cross_entropy_with_logits", "logits", dict(logits=math.inf, labels=0.25), 0.75),
        ("sigmoid_cross_entropy_with_logits", "logits", dict(logits=-math.inf, labels=0.25), -0.25),
        (
            "sigmoid_cross_entropy_with_logits",
            "logits",
            dict(logits=math.nan, labels=0.25),
            math.nan,
        ),
        ("sigmoid_cross_entropy_with_logits", "labels", dict(logits=3.0, labels=0.5), -3.0),
        (
            "sigmoid_cross_entropy_with_logits",
            "labels",
            dict(logits=3.0, labels=0.5, label_smoothing=0.5),
            -1.5,
        ),
        ("sigmoid", "logits", dict(logits=0.0), 0.25),
        ("binary_crossentropy", "probs", dict(probs=0.0, labels=1.0), -math.inf),
        ("binary_crossentropy", "probs", dict(probs=0.0, labels=0.0), 1.0),
        ("binary_crossentropy", "probs", dict(probs=0.5, labels=0.5), 0.0),
    ],
)
def test_gradient_limits_and_exact_values(loss, wrt, inputs, expected):
    for dtype in DTYPES:
        got = oracles.gradient(loss, wrt, dtype, **inputs)
        assert same(got, expected) or same(got, np.float64(expected)), (dtype, float(got))


def test_softmax_gradients_at_infinities_and_ties():
    g = oracles.gradient(
        "softmax_cross_entropy_with_logits",
        "logits",
        "float32",
        logits=[[math.inf, 0.0, 1.0], [2.0, 2.0, -math.inf]],
        labels=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    )
    assert g[0].tolist() == [0.0, 0.0, 0.0]
    assert g[1].tolist() == [0.5, -0.5, 0.0]  # ties: softmax is exactly 1/2


def test_unknown_gradient_names_what_exists():
    with pytest.raises(
        ValueError, match="no gradient of softplus with respect to 'labels'; it has logits"
    ):
        oracles.gradient("softplus", "labels", "float32", logits=1.0)


def test_softmax_gradient_of_a_label_matching_the_maximum_is_decided():
    # mass softmax - z = 1/(1 + e**-39748) - 1: the rational parts cancel exactly
    g = oracles.gradient(
        "softmax_cross_entropy_with_logits",
        "logits",
        "float64",
        logits=[[39748.0, 0.0]],
        labels=[[1.0, 0.0]],
    )
    assert g[0, 0] == 0 and math.copysign(1, g[0, 0]) == -1 and g[0, 1] == 0


def test_softmax_gradient_with_ties_at_the_maximum_and_a_far_entry_is_decided():
    # four entries tied at 0: softmax 1/4 - (about e**-30528), a float16 tie point for the last
    g = oracles.gradient(
        "softmax_cross_entropy_with_logits",
        "logits",
        "float16",
        logits=[[0.0, 0.0, -30528.0, 0.0, 0.0]],
        labels=[[0.0, 0.0, 0.0, 1.0, 0.5283203125]],
    )
    assert g[0].tolist() == [
        np.float16(0.382),
        np.float16(0.382),
        0.0,
        np.float16(-0.618),
        np.float16(-0.1462),
    ]
