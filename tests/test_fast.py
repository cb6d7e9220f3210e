"""The fast reference path equals the mpmath oracle, bit for bit, wherever it decides."""

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossfuzz import oracles
from lossfuzz.oracles import evaluate as evaluate_exact
from lossfuzz.oracles import fast

TARGETS = fast.TARGETS
NP = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}
UINT = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.uint32}


def random_floats(dtype: str, n: int, rng) -> np.ndarray:
    """Uniform over bit patterns (every binade equally), NaN and inf included."""
    bits = rng.integers(0, 2 ** (8 * np.dtype(UINT[dtype]).itemsize), n, dtype=np.uint64)
    return bits.astype(UINT[dtype]).view(NP[dtype])


def extreme_logits(dtype: str) -> np.ndarray:
    fmt = oracles.get_format(dtype)
    points = [0.0, fmt.min_subnormal, fmt.min_normal, 1.0, 20.0, 88.72, 103.97, 745.1, 11.09]
    points += [fmt.overflow_threshold, fmt.underflow_threshold, fmt.max_finite, 16.635532]
    out = []
    for p in points:
        for s in (1.0, -1.0):
            v = NP[dtype](s * p)
            for _ in range(4):
                out.append(v)
                v = np.nextafter(v, NP[dtype](np.inf)) if dtype != "bfloat16" else v
    return np.array(out, dtype=NP[dtype])


def labels_for(dtype: str, n: int, rng) -> np.ndarray:
    one_below = (
        float(np.nextafter(NP[dtype](1), NP[dtype](0))) if dtype != "bfloat16" else 0.99609375
    )
    choices = np.array([0.0, 1.0, 0.5, one_below, float(oracles.get_format(dtype).min_subnormal)])
    mixed = np.where(rng.random(n) < 0.5, rng.choice(choices, n), rng.random(n))
    return mixed.astype(NP[dtype])


def inputs_for(loss: str, dtype: str, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    spec = oracles.get_loss(loss)
    out = {}
    if spec.primary == "logits":
        x = random_floats(dtype, n, rng)
        x = np.concatenate([x, extreme_logits(dtype)])
        out["logits"] = x
    else:
        p = rng.random(n)
        p[: n // 4] = rng.choice([0.0, 1.0, 1e-8, 1 - 1e-8, 0.5], n // 4)
        p[n // 4 : n // 2] = np.exp(-rng.uniform(0, 120, n // 2 - n // 4))
        out["probs"] = p.astype(NP[dtype])
    m = len(out[spec.primary])
    if spec.labels:
        out["labels"] = labels_for(dtype, m, rng)
    if "pos_weight" in spec.params:
        out["pos_weight"] = rng.choice([0.0, 1.0, 2.5, 1e4], m).astype(NP[dtype])
    return out


def check_against_mpmath(loss: str, dtype: str, inputs: dict) -> int:
    cast = oracles.cast_inputs(loss, dtype, **inputs)
    fv = fast.fast_values(loss, dtype, cast)
    ev = evaluate_exact(loss, dtype, **cast)
    want = ev.reference.astype(np.float64).ravel()
    got = fv.reference.ravel()
    decided = fv.decided.ravel()
    exact = ev.exact.ravel()
    for i in np.flatnonzero(decided):
        a, b = float(got[i]), float(want[i])
        assert a == b and math.copysign(1, a) == math.copysign(1, b), (loss, dtype, i, a, b)
        # the bound holds: the exact value lies within value +- bound
        assert abs(mpmath.mpf(float(fv.value.ravel()[i])) - exact[i]) <= fv.bound.ravel()[i]
    return int(decided.sum())


@pytest.mark.parametrize("dtype", TARGETS)
@pytest.mark.parametrize("loss", sorted(fast.FAST))
def test_fast_path_equals_mpmath_bit_for_bit(loss, dtype):
    inputs = inputs_for(loss, dtype, 3000, seed=hash((loss, dtype)) % 2**32)
    n = len(next(iter(inputs.values())))
    decided = check_against_mpmath(loss, dtype, inputs)
    assert decided >= 0.6 * n  # NaN, inf and the mpmath-only corners are the rest


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(TARGETS),
    st.lists(st.floats(allow_nan=False, width=32), min_size=1, max_size=40),
    st.floats(0, 1, width=32),
)
def test_fast_sigmoid_ce_equals_mpmath_on_fuzzed_inputs(dtype, xs, z):
    x = np.array(xs, dtype=np.float32).astype(NP[dtype])
    check_against_mpmath(
        "sigmoid_cross_entropy_with_logits",
        dtype,
        {"logits": x, "labels": np.full(x.shape, z, dtype=np.float32).astype(NP[dtype])},
    )


def test_round_to_matches_numpy_casts_and_ties_go_to_even():
    rng = np.random.default_rng(1)
    v = np.concatenate(
        [rng.standard_normal(20000) * 10.0 ** rng.integers(-50, 40, 20000), [65520.0, 65519.99]]
    )
    for dtype, np_type in (("float16", np.float16), ("float32", np.float32)):
        with np.errstate(over="ignore"):
            want = v.astype(np_type).astype(np.float64)
        assert np.array_equal(fast.round_to(v, oracles.get_format(dtype)), want)
    f16 = oracles.get_format("float16")
    assert fast.round_to(np.array([65520.0]), f16)[0] == np.inf  # max + ulp/2 ties up
    assert fast.round_to(np.array([2.0**-25]), f16)[0] == 0.0  # half the smallest: even is 0
    assert fast.round_to(np.array([3 * 2.0**-25]), f16)[0] == 2.0**-23


def test_round_to_bfloat16_rounds_once_not_through_float32():
    bf = oracles.get_format("bfloat16")
    # 1 + 2**-8 + 2**-30: above the bfloat16 midpoint 1 + 2**-8, so it rounds up to 1 + 2**-7;
    # through float32 first it would become the midpoint and round to even (1.0)
    v = np.array([1 + 2.0**-8 + 2.0**-30])
    assert fast.round_to(v, bf)[0] == 1 + 2.0**-7


def test_reference_uses_the_fast_path_and_still_equals_mpmath():
    x = random_floats("float32", 5000, np.random.default_rng(7))
    z = np.full(x.shape, 0.25, dtype=np.float32)
    got = oracles.reference("sigmoid_cross_entropy_with_logits", "float32", logits=x, labels=z)
    want = evaluate_exact("sigmoid_cross_entropy_with_logits", "float32", logits=x, labels=z)
    assert np.array_equal(got, want.reference, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want.reference))


def test_a_campaign_on_the_fast_path_gives_the_exact_paths_results():
    from lossfuzz.harness import campaign
    from lossfuzz.harness.scoring import Engine

    impls = (
        "naive:sigmoid_then_log",
        "naive:stable_sigmoid_ce",
        "torch:binary_cross_entropy_with_logits",
        "tf:sigmoid_cross_entropy_with_logits",
        "torch:binary_cross_entropy",
        "keras:binary_crossentropy",
        "tf:log_sigmoid",
        "torch:sigmoid",
    )
    sel = campaign.select(impls=impls, dtypes=TARGETS, quantities=("value",))
    fast_run = campaign.run(sel, budget=15, seed=3).to_json()
    exact_run = campaign.run(sel, engine=Engine(fast_path=False), budget=15, seed=3).to_json()
    assert len(fast_run["cells"]) == len(exact_run["cells"]) == len(sel.cells)
    for a, b in zip(fast_run["cells"], exact_run["cells"]):
        assert (a["impl"], a["dtype"], a["cases"], a["counts"]) == (
            b["impl"],
            b["dtype"],
            b["cases"],
            b["counts"],
        )
        for key in ("max_ulp", "max_finite_ulp"):
            x, y = _num(a[key]), _num(b[key])
            assert x == y or abs(x - y) <= 2.0**-30 * abs(y), (a["impl"], key, x, y)
    strip = lambda f: {k: v for k, v in f.items()}  # noqa: E731
    assert [strip(f) for f in fast_run["findings"]] == [strip(f) for f in exact_run["findings"]]


def _num(v):
    from lossfuzz.harness.jsonio import to_float

    return to_float(v)


@pytest.mark.parametrize("dtype", TARGETS)
@pytest.mark.parametrize("loss", ["sigmoid_cross_entropy_with_logits", "binary_crossentropy"])
def test_fast_path_with_label_smoothing_equals_mpmath(loss, dtype):
    # smoothing makes a label of 0 need log p: p = 0 is then infinite, and mpmath's
    inputs = inputs_for(loss, dtype, 1500, seed=11)
    decided = check_against_mpmath(loss, dtype, dict(inputs, label_smoothing=0.1))
    assert decided > 0
