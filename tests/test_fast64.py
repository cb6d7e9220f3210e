"""The float64 fast path (double-double, oracles/fast64.py) equals the mpmath oracle, bit for
bit, wherever it decides; its compiled kernels equal its NumPy code."""

import math
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest

from lossfuzz import oracles
from lossfuzz.harness.metrics import classify_exact
from lossfuzz.harness.scoring import classify_fast
from lossfuzz.oracles import dd, fast, fast64, kernels

LOSSES = sorted(fast.FAST)
F64 = oracles.get_format("float64")
EXTREMES = [
    0.0,
    5e-324,
    1e-320,
    2.2250738585072014e-308,
    1e-300,
    1.0,
    0.5,
    20.0,
    36.7,
    37.5,
    40.0,
    708.39,
    709.78,
    709.79,
    744.44,
    745.0,
    745.13,
    745.2,
    746.0,
    1e5,
    65536.0,
    1e300,
    1.7976931348623157e308,
]


def random_float64(n: int, rng) -> np.ndarray:
    """Uniform over bit patterns: every binade equally, subnormals, NaN and inf included."""
    return rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)


def logits_for(n: int, rng) -> np.ndarray:
    near = [np.nextafter(v, np.inf) for v in EXTREMES] + [np.nextafter(v, 0) for v in EXTREMES]
    points = np.array(EXTREMES + near)
    return np.concatenate(
        [
            random_float64(n, rng),
            rng.uniform(-60, 60, n // 4),
            rng.uniform(-760, 760, n // 4),
            points,
            -points,
        ]
    )


def labels_for(n: int, rng) -> np.ndarray:
    choices = np.array([0.0, 1.0, 0.5, 1 - 2.0**-53, 5e-324, 2.0**-1074 * 3, 0.1])
    return np.where(rng.random(n) < 0.5, rng.choice(choices, n), rng.random(n))


def inputs_for(loss: str, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    spec = oracles.get_loss(loss)
    if spec.primary == "logits":
        out = {"logits": logits_for(n, rng)}
    else:
        m = n + n // 2
        p = rng.random(m)
        p[: m // 4] = rng.choice([0.0, 1.0, 5e-324, 1e-310, 0.5, 1 - 2.0**-53, 2.0**-53], m // 4)
        p[m // 4 : m // 2] = np.exp(-rng.uniform(0, 745, m // 2 - m // 4))
        out = {"probs": p}
    size = out[spec.primary].size
    if spec.labels:
        out["labels"] = labels_for(size, rng)
    if "pos_weight" in spec.params:
        out["pos_weight"] = rng.choice([0.0, 1.0, 2.5, 1e4, 1e300, 5e-324], size)
    return out


def exact_of(fv, i) -> mpmath.mpf:
    with mpmath.workprec(400):
        v = (mpmath.mpf(float(fv.hi.ravel()[i])) + float(fv.lo.ravel()[i])) * mpmath.mpf(2) ** int(
            fv.k.ravel()[i]
        )
        return -v if fv.negative else v


def check_against_mpmath(loss: str, inputs: dict, measure: int = 300) -> tuple[int, int, float]:
    """(decided, covered elements, the largest relative error measured); asserts that every
    decided reference is the mpmath oracle's, sign of zero included."""
    cast = oracles.cast_inputs(loss, "float64", **inputs)
    fv = fast.fast_values(loss, "float64", cast)
    ev = oracles.evaluate(loss, "float64", **cast)
    want = ev.reference.astype(np.float64).ravel()
    got, decided = fv.reference.ravel(), fv.decided.ravel()
    for i in np.flatnonzero(decided):
        a, b = float(got[i]), float(want[i])
        assert a == b and math.copysign(1, a) == math.copysign(1, b), (loss, i, a, b)
    worst = 0.0
    first = np.asarray(cast[fast.FAST[loss].inputs[0]], dtype=np.float64).ravel()
    measured = [i for i in np.flatnonzero(decided) if abs(first[i]) <= dd.A_MAX][:measure]
    for i in measured:  # beyond A_MAX exp(-a) is taken at A_MAX, knowingly
        e = ev.exact.ravel()[i]
        if e != 0:
            with mpmath.workprec(400):
                worst = max(worst, float(abs(exact_of(fv, i) - e) / abs(e)))
    finite = sum(mpmath.isfinite(e) for e in ev.exact.ravel())
    return int(decided.sum()), finite, worst


@pytest.mark.parametrize("loss", LOSSES)
def test_float64_fast_path_equals_mpmath_bit_for_bit(loss):
    inputs = inputs_for(loss, 2000, seed=sum(map(ord, loss)))
    decided, finite, worst = check_against_mpmath(loss, inputs)
    assert decided >= 0.995 * finite  # what is left: exact ties, infinities, mpmath's corners
    assert worst <= fast64.RELATIVE / 8, worst  # measured ~2**-104; the bound is 2**-90


@pytest.mark.parametrize("loss", ["sigmoid_cross_entropy_with_logits", "binary_crossentropy"])
def test_float64_fast_path_with_label_smoothing_equals_mpmath(loss):
    inputs = inputs_for(loss, 800, seed=5)
    for eps in (0.1, 5e-324):  # a subnormal smoothing: 1 - z' is tiny, not 0
        decided, _, worst = check_against_mpmath(loss, dict(inputs, label_smoothing=eps), 100)
        assert decided > 0
        assert worst <= fast64.RELATIVE / 8


def test_float64_rounding_at_the_subnormal_and_overflow_edges():
    # softplus(-744.44) is 2**-1074 times about 1.0, sigmoid(-745.2) rounds to 0, and
    # softplus(1e308) * pos_weight 1e300 overflows: each decided and equal to mpmath
    x = np.array([-744.44, -744.0, -745.13, -745.2, -740.0, -709.78, 1e308])
    fv = fast.fast_values("softplus", "float64", {"logits": x})
    ev = oracles.evaluate("softplus", "float64", logits=x)
    assert fv.decided[:6].all()
    assert np.array_equal(fv.reference[fv.decided], ev.reference[fv.decided])
    assert fv.reference[0] == 5e-324 and fv.reference[3] == 0.0
    w = {"logits": np.array([-1e308]), "labels": np.array([1.0]), "pos_weight": np.array([1e300])}
    fw = fast.fast_values("weighted_sigmoid_cross_entropy_with_logits", "float64", w)
    assert fw.decided[0] and fw.reference[0] == math.inf
    assert (
        oracles.reference("weighted_sigmoid_cross_entropy_with_logits", "float64", **w)[0]
        == math.inf
    )


def test_float64_sigmoid_just_under_one_is_classed_against_the_lower_binade():
    # sigmoid(40) = 1 - 4.2e-18 rounds to 1, but 1 - 2**-53 is one of its ulps (2**-53) away
    x = np.array([40.0, 40.0])
    y = np.array([1.0, 1 - 2.0**-53])
    fv = fast.fast_values("sigmoid", "float64", {"logits": x})
    codes, ulp, _, need = classify_fast(y, fv, F64, 4.0, False)
    exact = oracles.evaluate("sigmoid", "float64", logits=x).exact.ravel().tolist()
    want = classify_exact(y, exact, fv.reference, F64, tolerance=4.0, is_loss=False)
    for i in range(2):
        assert not need[i]
        assert abs(ulp[i] - want[i].ulp) <= 2.0**-30 * max(want[i].ulp, 1e-9) + 2.0**-37
    # the error is 2**-53 - (1 - sigmoid(40)) in ulps of 2**-53: 1 - e**-40 2**53 (+ e**-80 ...)
    assert abs(ulp[1] - (1 - math.exp(-40) * 2.0**53)) < 1e-9


def test_float64_classes_and_ulp_errors_match_the_exact_path():
    rng = np.random.default_rng(3)
    inputs = inputs_for("sigmoid_cross_entropy_with_logits", 1500, seed=3)
    cast = oracles.cast_inputs("sigmoid_cross_entropy_with_logits", "float64", **inputs)
    fv = fast.fast_values("sigmoid_cross_entropy_with_logits", "float64", cast)
    ref = fv.reference.ravel()
    wrong = ref * (1 + rng.choice([0, 2.0**-52, 2.0**-50, 1e-9, -0.5], ref.size))
    y = np.where(rng.random(ref.size) < 0.1, np.nan, wrong)
    codes, ulp, diff, need = classify_fast(y, fv, F64, 4.0, True)
    ev = oracles.evaluate("sigmoid_cross_entropy_with_logits", "float64", **cast)
    want = classify_exact(
        y, ev.exact.ravel().tolist(), ev.reference, F64, tolerance=4.0, is_loss=True
    )
    from lossfuzz.harness.metrics import CLASSES

    checked = 0
    for i in np.flatnonzero(~need):
        assert CLASSES[codes[i]] == want[i].cls, (i, y[i], want[i])
        u, w = ulp[i], want[i].ulp
        assert u == w or abs(u - w) <= 2.0**-36 + 2.0**-45 * abs(w), (i, u, w)
        checked += 1
    assert checked >= 0.9 * ref.size


@pytest.mark.skipif(not kernels.available(), reason="Numba is not installed")
@pytest.mark.parametrize("loss", LOSSES)
def test_float64_kernels_equal_the_numpy_path_bit_for_bit(loss):
    inputs = inputs_for(loss, 30000, seed=11)
    spec = fast.FAST[loss]
    cast = oracles.cast_inputs(loss, "float64", **inputs)
    arrays = np.broadcast_arrays(*(np.asarray(cast[n], dtype=np.float64) for n in spec.inputs))
    for eps in (0.0, 0.1):
        covered = spec.covered(*arrays, eps=eps)
        a = fast64.fast_values(loss, cast, arrays, eps, covered)
        b = kernels.fast_values64(loss, arrays, eps, covered)
        for name in ("reference", "decided", "value"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
        for name in ("hi", "lo", "k"):
            assert np.array_equal(getattr(a, name)[covered], getattr(b, name)[covered]), name
        assert np.array_equal(np.signbit(a.reference), np.signbit(b.reference))


def test_the_float64_path_is_the_fast_path_that_reference_uses():
    x = logits_for(3000, np.random.default_rng(9))
    got = oracles.reference("log_sigmoid", "float64", logits=x)
    want = oracles.evaluate("log_sigmoid", "float64", logits=x).reference
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert fast.covers("log_sigmoid", "float64")


def test_float64_sweeps_need_a_range(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lossfuzz",
            "sweep",
            "--loss",
            "softplus",
            "--dtype",
            "float64",
            "--impl",
            "torch:softplus",
            "--out",
            str(tmp_path / "s.json"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 2
    assert "float64 has 2**64 values" in out.stderr
