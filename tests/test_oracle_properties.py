"""The oracle against independent references: naive formulas at 5000 bits rounded by
brute force, and identities between losses that must hold exactly."""

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from independent import NP, naive, round_brute, same
from strategies_for_tests import finite, floats, unit

from lossfuzz import oracles

DTYPES = ["float16", "bfloat16", "float32", "float64"]


def check_scalar(loss, dtype, **inputs):
    ev = oracles.evaluate(loss, dtype, **inputs)
    cast = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ev.inputs.items()}
    if cast.pop("axis", None) is not None:  # one row: hand the naive formula that row
        cast = {k: v[0] if isinstance(v, list) else v for k, v in cast.items()}
    want = naive(loss, **cast)
    got = ev.reference.item() if ev.reference.ndim == 0 else ev.reference.ravel()[0]
    # Each loss is a dyadic part plus a transcendental part that never vanishes
    # (exp and log of nonzero rationals are irrational); at x = 1e16 the latter is
    # below any fixed precision, so an exact tie of the naive value breaks its way.
    tie = -1 if loss in ("log_sigmoid", "sigmoid") else +1
    assert same(got, round_brute(want, dtype, tie)), (inputs, float(got), want)
    if mpmath.isfinite(want) and want != 0:
        with mpmath.workprec(300):
            exact = ev.exact.item() if ev.exact.ndim == 0 else ev.exact.ravel()[0]
            # the exact value is the midpoint of an enclosure narrowed to 2**-(2p + 40)
            bits = 2 * oracles.get_format(dtype).precision + 40
            # the naive formula itself carries an absolute error of ~2**-5000 * scale
            scale = max([1.0] + [abs(float(v)) for v in np.ravel(inputs.get("logits", 0.0))])
            slack = abs(want) * mpmath.mpf(2) ** -bits + mpmath.mpf(2) ** -4900 * scale
            assert abs(exact - want) <= slack


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sigmoid_ce_matches_naive_formula_at_5000_bits(dtype, data):
    x = data.draw(finite(dtype), label="logits")
    z = data.draw(unit(dtype), label="labels")
    check_scalar("sigmoid_cross_entropy_with_logits", dtype, logits=x, labels=z)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_weighted_sigmoid_ce_matches_naive_formula(dtype, data):
    x = data.draw(finite(dtype), label="logits")
    z = data.draw(unit(dtype), label="labels")
    q = data.draw(finite(dtype, min_value=0.0, max_value=1e4), label="pos_weight")
    check_scalar(
        "weighted_sigmoid_cross_entropy_with_logits", dtype, logits=x, labels=z, pos_weight=q
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["softplus", "log_sigmoid", "sigmoid"])
@given(data=st.data())
def test_building_blocks_match_naive_formula(dtype, loss, data):
    check_scalar(loss, dtype, logits=data.draw(finite(dtype), label="logits"))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_binary_ce_matches_naive_formula(dtype, data):
    p = data.draw(unit(dtype), label="probs")
    z = data.draw(unit(dtype), label="labels")
    assume(not (p == 0 and z > 0) and not (p == 1 and z < 1))  # infinite: tested apart
    check_scalar("binary_crossentropy", dtype, probs=p, labels=z)


def rows(dtype, min_size=1, max_size=6, elements=None):
    return st.lists(
        finite(dtype) if elements is None else elements, min_size=min_size, max_size=max_size
    )


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sparse_softmax_ce_matches_naive_formula(dtype, data):
    xs = data.draw(rows(dtype), label="logits")
    k = data.draw(st.integers(0, len(xs) - 1), label="class")
    check_scalar("sparse_softmax_cross_entropy_with_logits", dtype, logits=[xs], labels=[k])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_ce_with_soft_labels_matches_naive_formula(dtype, data):
    xs = data.draw(rows(dtype), label="logits")
    zs = data.draw(st.lists(unit(dtype), min_size=len(xs), max_size=len(xs)), label="labels")
    check_scalar("softmax_cross_entropy_with_logits", dtype, logits=[xs], labels=[zs])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_logsumexp_matches_naive_formula_even_when_it_cancels_to_near_zero(dtype, data):
    xs = data.draw(rows(dtype), label="logits")
    check_scalar("logsumexp", dtype, logits=[xs])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "loss", ["categorical_crossentropy", "categorical_crossentropy_renormalized"]
)
@given(data=st.data())
def test_categorical_ce_matches_naive_formula(dtype, loss, data):
    ps = data.draw(rows(dtype, elements=unit(dtype)), label="probs")
    zs = data.draw(st.lists(unit(dtype), min_size=len(ps), max_size=len(ps)), label="labels")
    if loss.endswith("renormalized"):
        assume(any(ps))
        assume(all(p > 0 for p, z in zip(ps, zs) if z))
    else:
        assume(all(p > 0 for p, z in zip(ps, zs) if z))
    check_scalar(loss, dtype, probs=[ps], labels=[zs])


def complement(dtype, z):
    """1 - z if it is exactly representable in dtype, else None."""
    c = float(np.asarray(1.0 - z).astype(NP[dtype]))
    return c if Fraction(c) == 1 - Fraction(z) else None


def logit_label_complement(data, dtype):
    """A logit, a label z, and 1 - z, where 1 - z is exact in dtype."""
    x = data.draw(floats(dtype, allow_nan=False), label="logits")
    z = data.draw(unit(dtype), label="labels")
    c = complement(dtype, z)
    assume(c is not None)
    return x, z, c


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sigmoid_ce_equals_two_class_softmax_ce(dtype, data):
    x, z, c = logit_label_complement(data, dtype)
    a = oracles.reference("sigmoid_cross_entropy_with_logits", dtype, logits=x, labels=z)
    b = oracles.reference(
        "softmax_cross_entropy_with_logits", dtype, logits=[[x, 0.0]], labels=[[z, c]]
    )[0]
    assert same(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sigmoid_ce_is_symmetric_under_negating_logit_and_label(dtype, data):
    x, z, c = logit_label_complement(data, dtype)
    a = oracles.reference("sigmoid_cross_entropy_with_logits", dtype, logits=x, labels=z)
    b = oracles.reference("sigmoid_cross_entropy_with_logits", dtype, logits=-x, labels=c)
    assert same(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sparse_equals_softmax_with_a_one_hot_row(dtype, data):
    xs = data.draw(rows(dtype, max_size=8, elements=floats(dtype, allow_nan=False)), label="logits")
    k = data.draw(st.integers(0, len(xs) - 1), label="class")
    eps = data.draw(st.sampled_from([0.0, 0.1, 0.5]), label="label_smoothing")
    a = oracles.reference(
        "sparse_softmax_cross_entropy_with_logits",
        dtype,
        logits=[xs],
        labels=[k],
        label_smoothing=eps,
    )
    b = oracles.reference(
        "softmax_cross_entropy_with_logits",
        dtype,
        logits=[xs],
        labels=[np.eye(len(xs))[k]],
        label_smoothing=eps,
    )
    assert same(a[0], b[0])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_binary_ce_of_the_exact_sigmoid_is_sigmoid_ce(dtype, data):
    # BCE(sigmoid(x), z) = sigmoid CE(x, z) holds for the exact sigmoid; check the
    # oracle's sigmoid CE against that composition evaluated at 5000 bits.
    # |x| <= 1000 keeps 1 - sigmoid(x) >= 2**-1443 representable at 5000 bits
    x = data.draw(finite(dtype, min_value=-1e3, max_value=1e3), label="logits")
    z = data.draw(unit(dtype), label="labels")
    with mpmath.workprec(5000):
        p = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
        zz = mpmath.mpf(z)
        want = -(zz * mpmath.log(p) + (1 - zz) * mpmath.log(1 - p))
    got = oracles.reference("sigmoid_cross_entropy_with_logits", dtype, logits=x, labels=z)
    assert same(got, round_brute(want, dtype))


@settings(max_examples=30)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_log_softmax_and_softmax_match_naive_entry_by_entry(dtype, data):
    xs = data.draw(rows(dtype), label="logits")
    with mpmath.workprec(5000):
        gaps = [
            mpmath.log1p(
                mpmath.fsum(
                    mpmath.exp(mpmath.mpf(u) - mpmath.mpf(v)) for j, u in enumerate(xs) if j != k
                )
            )
            for k, v in enumerate(xs)
        ]
        tie = -1 if len(xs) > 1 else 0  # one entry: log_softmax is exactly 0, softmax 1
        want_log = [round_brute(-g, dtype, tie) for g in gaps]
        want_soft = [round_brute(mpmath.exp(-g), dtype, tie) for g in gaps]
    got_log = oracles.reference("log_softmax", dtype, logits=[xs])[0]
    got_soft = oracles.reference("softmax", dtype, logits=[xs])[0]
    assert all(same(a, b) for a, b in zip(got_log, want_log)), (got_log, want_log)
    assert all(same(a, b) for a, b in zip(got_soft, want_soft)), (got_soft, want_soft)
