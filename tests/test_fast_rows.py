"""The row fast path (oracles/fast_rows.py) equals the mpmath oracle, bit for bit."""

import math
import os

import ml_dtypes
import mpmath
import numpy as np
import pytest

from lossfuzz import oracles
from lossfuzz.oracles import fast, fast_rows
from lossfuzz.oracles.api import evaluate_where

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGETS = fast_rows.TARGETS
ROW_LOSSES = sorted(fast_rows.ROWS)
NP = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}
UINT = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.uint32}
WIDTHS = (1, 2, 3, 10, 1000)


def bit_patterns(dtype: str, shape, rng) -> np.ndarray:
    """Uniform over bit patterns: every binade, subnormals, +-inf and NaN included."""
    n = int(np.prod(shape))
    bits = rng.integers(0, 2 ** (8 * np.dtype(UINT[dtype]).itemsize), n, dtype=np.uint64)
    with np.errstate(invalid="ignore"):  # NaN patterns cast with a warning
        return bits.astype(UINT[dtype]).view(NP[dtype]).astype(np.float64).reshape(shape)


def regimes(dtype: str, n: int, k: int, rng) -> dict:
    """Rows of float64 values (cast to ``dtype`` later) in the regimes that stress a bound."""
    fmt = oracles.get_format(dtype)
    normal = rng.standard_normal((n, k))
    bits = bit_patterns(dtype, (n, k), rng)
    finite_bits = np.where(np.isfinite(bits), bits, 0.0)
    base = rng.uniform(-30, 30, (n, 1))
    steps = rng.integers(-3, 4, (n, k)) * 2.0 ** (1 - fmt.precision)
    dominant = normal.copy()
    dominant[np.arange(n), rng.integers(0, k, n)] += rng.uniform(0, 100, n)
    far = rng.choice([-1e4, 1e4], (n, 1)) + normal * rng.uniform(0, 20, (n, 1))
    # logsumexp near 0: k equal logits -log k, nudged by a few ulps (cancellation)
    near_zero = -math.log(k) * (1 + steps) + (k == 1) * rng.choice([0.0, 1e-3, -1e-6], (n, 1))
    spread = rng.choice([0.0, -800.0, -2000.0, 800.0], (n, k)) + normal  # T underflows float64
    masked = normal * 10
    masked[rng.random((n, k)) < 0.3] = -np.inf
    masked[rng.random(n) < 0.1] = -np.inf  # fully masked rows
    specials = normal * 10
    hot = rng.random((n, k)) < 0.1
    specials[hot] = rng.choice([np.inf, -np.inf, np.nan, np.inf], hot.sum())
    return {
        "bit patterns": bits,
        "finite bit patterns": finite_bits,
        "normal": normal * rng.uniform(0.1, 30, (n, 1)),
        "near equal": base * (1 + steps),
        "one dominant": dominant,
        "far from 0": far,
        "logsumexp near 0": near_zero,
        "spread past exp's range": spread,
        "masked": masked,
        "infinities and NaN": specials,
    }


def labels_for(loss: str, dtype: str, logits: np.ndarray, rng) -> dict:
    spec = oracles.get_loss(loss)
    n, k = logits.shape
    if spec.labels == "sparse":
        return {"labels": rng.integers(0, k, n)}
    if spec.labels != "dense":
        return {}
    one_hot = np.zeros((n, k))
    one_hot[np.arange(n), rng.integers(0, k, n)] = 1.0
    soft = rng.dirichlet(np.ones(k), n)
    anything = rng.random((n, k)) * (rng.random((n, k)) < 0.5)  # not summing to 1
    kind = rng.integers(0, 4, n)[:, None]
    z = np.where(kind == 0, one_hot, np.where(kind == 1, soft, anything))
    z[kind[:, 0] == 3] = 0.0  # rows without a label
    z[rng.random(n) < 0.02, 0] = np.nan
    return {"labels": z.astype(NP[dtype])}


def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit-for-bit equal as floats: value, sign of zero, NaN with NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    return both_nan | ((a == b) & (np.signbit(a) == np.signbit(b)))


def check_against_mpmath(loss: str, dtype: str, inputs: dict, what: str = "") -> tuple[int, int]:
    """Every decided element is mpmath's reference and its value within the bound of the
    exact one; ``oracles.reference`` (undecided ones settled by mpmath) is mpmath's
    everywhere. Returns (decided, elements)."""
    cast = oracles.cast_inputs(loss, dtype, **inputs)
    fv = fast.fast_values(loss, dtype, cast)
    ev = oracles.evaluate(loss, dtype, **cast)
    want = ev.reference.astype(np.float64)
    assert fv.value.shape == want.shape
    wrong = fv.decided & ~same(fv.reference, want)
    assert not wrong.any(), (
        f"{loss} [{dtype}] {what}: decided {fv.reference[wrong][:3]} but mpmath says "
        f"{want[wrong][:3]} at {np.argwhere(wrong)[:3].tolist()}"
    )
    exact = ev.exact.ravel()
    value, bound = fv.value.ravel(), fv.bound.ravel()
    for i in np.flatnonzero(np.isfinite(value)):
        if mpmath.isfinite(exact[i]):
            assert abs(mpmath.mpf(float(value[i])) - exact[i]) <= bound[i], (loss, dtype, what, i)
    got = oracles.reference(loss, dtype, **inputs)
    assert same(got, want).all(), (loss, dtype, what)
    return int(fv.decided.sum()), fv.decided.size


@pytest.mark.parametrize("dtype", TARGETS)
@pytest.mark.parametrize("loss", ROW_LOSSES)
def test_row_fast_path_equals_mpmath_bit_for_bit(loss, dtype):
    rng = np.random.default_rng(abs(hash((loss, dtype))) % 2**32)
    decided = total = 0
    for k in WIDTHS:
        n = 2 if k == 1000 else 24
        for name, rows in regimes(dtype, n, k, rng).items():
            x = rows.astype(NP[dtype])
            inputs = {"logits": x, **labels_for(loss, dtype, rows, rng)}
            d, t = check_against_mpmath(loss, dtype, inputs, f"{name}, {k} classes")
            decided, total = decided + d, total + t
    assert decided >= 0.9 * total  # the rest: ties, cancellation, mpmath's


@pytest.mark.parametrize("dtype", TARGETS)
@pytest.mark.parametrize(
    "loss", ["softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits"]
)
@pytest.mark.parametrize("smoothing", [0.1, 1 / 3, 1.0])
def test_row_fast_path_with_label_smoothing_equals_mpmath(loss, dtype, smoothing):
    # smoothing labels every class: a -inf logit then makes the loss infinite
    rng = np.random.default_rng(5)
    for k in (2, 3, 10, 1000):
        n = 2 if k == 1000 else 16
        for name, rows in regimes(dtype, n, k, rng).items():
            inputs = {"logits": rows.astype(NP[dtype]), **labels_for(loss, dtype, rows, rng)}
            inputs["label_smoothing"] = smoothing
            check_against_mpmath(loss, dtype, inputs, f"{name}, {k} classes, e={smoothing}")


@pytest.mark.parametrize("loss", ROW_LOSSES)
def test_a_row_of_65536_logits_equals_mpmath_bit_for_bit(loss):
    # issue 25: vocabulary-wide rows; T sums 65535 terms here
    rng = np.random.default_rng(25)
    k = 65536
    x = rng.standard_normal((1, k)) * 4
    x[0, rng.integers(0, k, 50)] = -np.inf
    x[0, 7] = 12.0
    inputs = {"logits": x.astype(np.float32), **labels_for(loss, "float32", x, rng)}
    decided, total = check_against_mpmath(loss, "float32", inputs, "65536 classes")
    assert decided >= total - 2


@pytest.mark.slow
@pytest.mark.parametrize("dtype", TARGETS)
@pytest.mark.parametrize("loss", ROW_LOSSES)
def test_rows_of_131072_logits_equal_mpmath_bit_for_bit(loss, dtype):
    rng = np.random.default_rng(131072)
    x = np.concatenate([regimes(dtype, 1, 131072, rng)[r] for r in ("normal", "one dominant")])
    inputs = {"logits": x.astype(NP[dtype]), **labels_for(loss, dtype, x, rng)}
    check_against_mpmath(loss, dtype, inputs, "131072 classes")


def test_wide_rows_stream_in_chunks_with_the_same_values():
    # a batch larger than CHUNK entries is cut into batches of rows: no seam in the result
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((40, 20000)) * 3).astype(np.float32)
    z = rng.integers(0, 20000, 40)
    cast = oracles.cast_inputs(
        "sparse_softmax_cross_entropy_with_logits", "float32", logits=x, labels=z
    )
    whole = fast.fast_values("sparse_softmax_cross_entropy_with_logits", "float32", cast)
    for i in (0, 13, 39):
        one = dict(cast, logits=x[i : i + 1], labels=z[i : i + 1])
        row = fast.fast_values("sparse_softmax_cross_entropy_with_logits", "float32", one)
        assert row.value[0] == whole.value[i] and row.reference[0] == whole.reference[i]


def test_logsumexp_near_zero_is_left_to_mpmath_not_guessed():
    # x* + L cancels: float32's -log 2 twice gives lse = 2.2e-8 - ... the bound is absolute
    # on L, so the relative error of the result is far larger and some rows stay undecided
    x = np.full((1, 2), -math.log(2), dtype=np.float32)
    cast = oracles.cast_inputs("logsumexp", "float32", logits=x)
    fv = fast.fast_values("logsumexp", "float32", cast)
    want = oracles.evaluate("logsumexp", "float32", logits=x).reference
    assert abs(fv.value[0]) < 1e-7
    assert fv.bound[0] > 2.0**-60 and fv.bound[0] > abs(fv.value[0]) * 2.0**-44
    assert not fv.decided[0] or same(fv.reference, want).all()
    assert same(oracles.reference("logsumexp", "float32", logits=x), want).all()


def test_log_softmax_of_a_lone_finite_logit_is_plus_zero_and_of_an_underflow_minus_zero():
    # T = 0 exactly: log_softmax is 0 (mpmath has no signed zero); T = e^-2000 > 0 rounds
    # to -0 in every target although float64 computes T = 0
    x = np.array([[3.0, -np.inf], [3.0, -1997.0]], dtype=np.float32)
    got = oracles.reference("log_softmax", "float32", logits=x)
    fv = fast.fast_values(
        "log_softmax", "float32", oracles.cast_inputs("log_softmax", "float32", logits=x)
    )
    assert fv.decided.all()
    assert got[0, 0] == 0 and not np.signbit(got[0, 0])
    assert got[1, 0] == 0 and np.signbit(got[1, 0])
    assert same(got, oracles.evaluate("log_softmax", "float32", logits=x).reference).all()


@pytest.mark.parametrize(
    "loss,logits,labels,want",
    [
        ("softmax_cross_entropy_with_logits", [np.inf, 0.0], [1.0, 0.0], 0.0),
        ("softmax_cross_entropy_with_logits", [np.inf, 0.0], [0.5, 0.5], np.inf),
        ("softmax_cross_entropy_with_logits", [np.inf, np.inf], [1.0, 0.0], np.nan),
        ("softmax_cross_entropy_with_logits", [np.inf, np.inf], [0.0, 0.0], 0.0),
        ("softmax_cross_entropy_with_logits", [-np.inf, -np.inf], [0.0, 1.0], np.nan),
        ("softmax_cross_entropy_with_logits", [-np.inf, -np.inf], [0.0, 0.0], 0.0),
        ("softmax_cross_entropy_with_logits", [1.0, -np.inf], [0.0, 1.0], np.inf),
        ("softmax_cross_entropy_with_logits", [1.0, -np.inf], [1.0, 0.0], 0.0),
        ("softmax_cross_entropy_with_logits", [1.0, 2.0], [np.nan, 0.0], np.nan),
        ("logsumexp", [-np.inf, -np.inf], None, -np.inf),
        ("logsumexp", [np.inf, np.nan], None, np.nan),
        ("logsumexp", [np.inf, -np.inf], None, np.inf),
    ],
)
def test_special_rows_follow_the_limits_exactly(loss, logits, labels, want):
    inputs = {"logits": np.array([logits], dtype=np.float32)}
    if labels is not None:
        inputs["labels"] = np.array([labels], dtype=np.float32)
    cast = oracles.cast_inputs(loss, "float32", **inputs)
    fv = fast.fast_values(loss, "float32", cast)
    assert fv.decided.all() and same(fv.reference, [want]).all()
    assert same(oracles.evaluate(loss, "float32", **inputs).reference, [want]).all()


@pytest.mark.parametrize(
    "loss", ["softmax", "log_softmax", "logsumexp", "softmax_cross_entropy_with_logits"]
)
def test_evaluate_where_on_rows_gives_mpmaths_values_in_flat_order(loss):
    # a class axis in the middle: the selected entries come back in the output's C order
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((3, 4, 5)) * 5).astype(np.float32)
    inputs = {"logits": x, "axis": 1}
    if loss.startswith("softmax_cross"):
        inputs["labels"] = rng.dirichlet(np.ones(4), (3, 5)).transpose(0, 2, 1).astype(np.float32)
    full = oracles.evaluate(loss, "float32", **inputs)
    mask = rng.random(full.reference.shape) < 0.4
    cast = oracles.cast_inputs(loss, "float32", **inputs)
    ev = evaluate_where(oracles.get_loss(loss), "float32", cast, mask)
    assert same(ev.reference, full.reference[mask]).all()
    assert list(ev.exact) == list(full.exact[mask])


def test_domain_errors_on_rows_are_the_exact_paths():
    ce = oracles.get_loss("sparse_softmax_cross_entropy_with_logits")
    x = np.zeros((2, 3), dtype=np.float32)
    for labels, error in (([0, 3], oracles.DomainError), ([0, 1, 2], ValueError)):
        cast = oracles.cast_inputs(ce, "float32", logits=x, labels=np.array(labels))
        with pytest.raises(error):
            fast.fast_values(ce.id, "float32", cast)
        with pytest.raises(error):
            oracles.evaluate(ce, "float32", **cast)
    cast = oracles.cast_inputs(ce, "float32", logits=x, labels=np.array([2, 0]))
    oracles.api.check_elementwise_domain(ce, cast)  # class indices are not labels in [0, 1]
    dense = oracles.get_loss("softmax_cross_entropy_with_logits")
    cast = oracles.cast_inputs(dense, "float32", logits=x, labels=np.full((2, 3), 1.5))
    with pytest.raises(oracles.DomainError):
        oracles.api.check_elementwise_domain(dense, cast)


def test_covers_the_softmax_family_in_the_three_targets_only():
    for loss in ROW_LOSSES:
        assert all(fast.covers(loss, d) for d in TARGETS)
        assert not fast.covers(loss, "float64")
    assert not fast.covers("categorical_crossentropy", "float32")


SCORED = [
    ("torch:cross_entropy", "float32"),
    ("torch:cross_entropy_probs", "bfloat16"),
    ("torch:logsumexp", "float32"),
    ("torch:log_softmax", "float16"),
    ("torch:softmax", "float32"),
    ("tf:sparse_softmax_cross_entropy_with_logits", "float16"),
]


def scoring_inputs(loss: str, dtype: str) -> dict:
    rng = np.random.default_rng(20)
    parts = []
    for k in (1, 3, 10):
        rows = regimes(dtype, 6, k, rng)
        parts += [
            (rows[r], k)
            for r in ("normal", "logsumexp near 0", "masked", "infinities and NaN", "one dominant")
        ]
    k = 10  # one width, so that the batch is one array
    x = np.concatenate([np.pad(r, ((0, 0), (0, k - w)), constant_values=-np.inf) for r, w in parts])
    return {"logits": x.astype(NP[dtype]), **labels_for(loss, dtype, x, rng)}


@pytest.mark.parametrize("impl_id,dtype", SCORED)
def test_scoring_on_the_fast_path_gives_the_exact_paths_classes(impl_id, dtype):
    from lossfuzz.harness.registry import get_impl
    from lossfuzz.harness.scoring import Engine, score

    impl = get_impl(impl_id)
    inputs = scoring_inputs(impl.loss, dtype)
    fast_obs = score(Engine(), impl, dtype, inputs, 4.0)
    exact_obs = score(Engine(), impl, dtype, inputs, 4.0, exact=True)
    assert (
        len(fast_obs)
        == len(exact_obs)
        == oracles.evaluate(impl.loss, dtype, **inputs).reference.size
    )
    for a, b in zip(fast_obs, exact_obs):
        where = (impl_id, dtype, a.inputs["logits"].tolist(), a.index)
        assert (a.cls, a.index) == (b.cls, b.index), where
        assert same(a.reference, b.reference) and same(a.got, b.got), where
        # the fast path's ULP error is from a value within its bound of the exact one:
        # 2**-44 relative is under 2**-20 ULP in these targets
        finite = math.isfinite(b.score.ulp)
        assert abs(a.score.ulp - b.score.ulp) <= 2.0**-16 if finite else a.score.ulp == b.score.ulp
        for name, value in a.inputs.items():
            assert np.array_equal(value, b.inputs[name], equal_nan=True), where


def test_scoring_settles_undecided_row_elements_with_mpmath():
    # answers one ULP off at the tolerance's edge, and logsumexp under cancellation: the
    # bound cannot class them, mpmath does, and the classes are the exact path's
    from lossfuzz.harness.registry import get_impl
    from lossfuzz.harness.scoring import Engine, classify_fast, score

    impl = get_impl("torch:logsumexp")
    rng = np.random.default_rng(4)
    x = regimes("float32", 40, 2, rng)["logsumexp near 0"].astype(np.float32)
    cast = oracles.cast_inputs(impl.loss, "float32", logits=x)
    fv = fast.fast_values(impl.loss, "float32", cast)
    got = np.asarray(impl.answer(cast)).astype(np.float64).ravel()
    *_, need = classify_fast(got, fv, oracles.get_format("float32"), 4.0, False)
    assert need.any()
    fast_obs = score(Engine(), impl, "float32", {"logits": x}, 4.0)
    exact_obs = score(Engine(), impl, "float32", {"logits": x}, 4.0, exact=True)
    for i in np.flatnonzero(need):
        a, b = fast_obs[i], exact_obs[i]
        assert (a.cls, a.exact, a.reference) == (b.cls, b.exact, b.reference)
