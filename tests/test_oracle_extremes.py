"""The oracle at the extreme points of every dtype, at infinities, and in its contract."""

import math

import mpmath
import numpy as np
import pytest
from independent import NP, naive, round_brute, same

from lossfuzz import oracles
from lossfuzz.oracles.formats import FORMATS

DTYPES = list(FORMATS)


def edge_points(dtype):
    """Thresholds of exp and log in ``dtype`` and their neighbours, both signs."""
    fmt = FORMATS[dtype]
    t = NP[dtype]
    base = [
        fmt.overflow_threshold,  # 11.09, 88.72, 709.78
        fmt.underflow_threshold,
        -fmt.overflow_threshold,
        math.log(fmt.min_normal),
        fmt.min_subnormal,
        fmt.min_normal,
        fmt.max_finite,
        1.0,
        0.0,
    ]
    pts = set()
    with np.errstate(over="ignore"):
        steps = [
            (t(b), np.nextafter(t(b), t(np.inf)), np.nextafter(t(b), t(-np.inf))) for b in base
        ]
    for b, up, down in steps:
        for v in (b, up, down):
            if np.isfinite(float(v)):
                pts.add(float(v))
                pts.add(-float(v))
    return sorted(pts)


def label_points(dtype):
    t = NP[dtype]
    one_below = float(np.nextafter(t(1), t(0))) if dtype != "bfloat16" else 1 - 2.0**-8
    return [0.0, 1.0, 0.5, one_below, FORMATS[dtype].min_subnormal]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_ce_at_every_threshold_and_label_edge(dtype):
    for x in edge_points(dtype):
        for z in label_points(dtype):
            got = oracles.reference("sigmoid_cross_entropy_with_logits", dtype, logits=x, labels=z)
            want = round_brute(
                naive("sigmoid_cross_entropy_with_logits", logits=x, labels=z), dtype, +1
            )
            assert same(got, want), (x, z, float(got), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,tie", [("softplus", 1), ("log_sigmoid", -1), ("sigmoid", -1)])
def test_building_blocks_at_every_threshold(dtype, loss, tie):
    for x in edge_points(dtype):
        got = oracles.reference(loss, dtype, logits=x)
        assert same(got, round_brute(naive(loss, logits=x), dtype, tie)), (x, float(got))


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_ce_at_probabilities_one_ulp_from_the_ends(dtype):
    t = NP[dtype]
    ps = [FORMATS[dtype].min_subnormal, FORMATS[dtype].min_normal, 0.5, label_points(dtype)[3]]
    for p in ps:
        for z in label_points(dtype):
            got = oracles.reference("binary_crossentropy", dtype, probs=p, labels=z)
            want = round_brute(naive("binary_crossentropy", probs=float(t(p)), labels=z), dtype, +1)
            assert same(got, want), (p, z)


def test_no_cancellation_at_huge_logit_with_label_just_below_one():
    # TF's max(x,0) - x z cancels here: 1e30 - 1e30 * (1 - 2**-24)
    x, z = np.float32(1e30), np.float32(1 - 2.0**-24)
    got = oracles.reference("sigmoid_cross_entropy_with_logits", "float32", logits=x, labels=z)
    assert got == np.float32(float(x) * 2.0**-24)


def test_no_cancellation_in_log1p_exp_200_minus_200():
    # softplus(-200) = log1p(exp(200)) - 200 = e**-200 (1 - e**-200 / 2 + ...)
    got = oracles.reference(
        "sigmoid_cross_entropy_with_logits", "float64", logits=200.0, labels=1.0
    )
    assert got == float(mpmath.exp(-200))
    assert (
        oracles.reference("sigmoid_cross_entropy_with_logits", "float32", logits=200.0, labels=1.0)
        == 0
    )


def test_subnormal_results_are_rounded_not_flushed():
    # softplus(-745) = e**-745 is the smallest float64 subnormal, 4.9e-324
    assert oracles.reference("softplus", "float64", logits=-745.0) == 5e-324
    assert oracles.reference("softplus", "float32", logits=-103.0) == np.float32(math.exp(-103.0))
    assert oracles.reference("softplus", "float16", logits=-16.0) == np.float16(math.exp(-16.0))


def test_overflow_to_inf_in_the_rounding():
    # 2e308 is finite but rounds past float64's max
    got = oracles.reference(
        "sparse_softmax_cross_entropy_with_logits", "float64", logits=[[1e308, -1e308]], labels=[1]
    )
    assert got[0] == math.inf
    exact = oracles.exact(
        "sparse_softmax_cross_entropy_with_logits", "float64", logits=[[1e308, -1e308]], labels=[1]
    )[0]
    assert abs(exact / (2 * mpmath.mpf(1e308)) - 1) < mpmath.mpf(2) ** -150


def test_negative_tiny_results_round_to_negative_zero():
    got = oracles.reference("log_sigmoid", "float32", logits=200.0)
    assert got == 0 and math.copysign(1, got) == -1


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    "loss,inputs,expected",
    [
        ("sigmoid_cross_entropy_with_logits", dict(logits=INF, labels=1.0), 0.0),
        ("sigmoid_cross_entropy_with_logits", dict(logits=INF, labels=0.0), INF),
        ("sigmoid_cross_entropy_with_logits", dict(logits=INF, labels=0.5), INF),
        ("sigmoid_cross_entropy_with_logits", dict(logits=-INF, labels=0.0), 0.0),
        ("sigmoid_cross_entropy_with_logits", dict(logits=-INF, labels=1.0), INF),
        ("sigmoid_cross_entropy_with_logits", dict(logits=NAN, labels=1.0), NAN),
        ("sigmoid_cross_entropy_with_logits", dict(logits=1.0, labels=NAN), NAN),
        (
            "weighted_sigmoid_cross_entropy_with_logits",
            dict(logits=-INF, labels=1.0, pos_weight=0.0),
            0.0,
        ),
        (
            "weighted_sigmoid_cross_entropy_with_logits",
            dict(logits=-INF, labels=1.0, pos_weight=2.0),
            INF,
        ),
        ("binary_crossentropy", dict(probs=0.0, labels=0.0), 0.0),
        ("binary_crossentropy", dict(probs=0.0, labels=1.0), INF),
        ("binary_crossentropy", dict(probs=1.0, labels=1.0), 0.0),
        ("binary_crossentropy", dict(probs=1.0, labels=0.0), INF),
        ("binary_crossentropy", dict(probs=NAN, labels=0.0), NAN),
        ("softplus", dict(logits=INF), INF),
        ("softplus", dict(logits=-INF), 0.0),
        ("log_sigmoid", dict(logits=-INF), -INF),
        ("log_sigmoid", dict(logits=INF), 0.0),
        ("sigmoid", dict(logits=INF), 1.0),
        ("sigmoid", dict(logits=-INF), 0.0),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[-INF, 0.0]], labels=[[0.0, 1.0]]),
            [0.0],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[-INF, 0.0]], labels=[[1.0, 0.0]]),
            [INF],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[-INF, -INF]], labels=[[0.5, 0.5]]),
            [NAN],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[-INF, -INF]], labels=[[0.0, 0.0]]),
            [0.0],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[INF, 0.0]], labels=[[1.0, 0.0]]),
            [0.0],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[INF, 0.0]], labels=[[0.5, 0.5]]),
            [INF],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[INF, INF]], labels=[[1.0, 0.0]]),
            [NAN],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[INF, INF, 0.0]], labels=[[0.0, 0.0, 1.0]]),
            [INF],
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[NAN, 0.0]], labels=[[0.0, 1.0]]),
            [NAN],
        ),
        (
            "sparse_softmax_cross_entropy_with_logits",
            dict(logits=[[5.0, -INF, 1.0]], labels=[1]),
            [INF],
        ),
        ("logsumexp", dict(logits=[[-INF, -INF]]), [-INF]),
        ("logsumexp", dict(logits=[[INF, -INF]]), [INF]),
        ("logsumexp", dict(logits=[[0.0]]), [0.0]),
        ("log_softmax", dict(logits=[[INF, 0.0, -INF]]), [[0.0, -INF, -INF]]),
        ("log_softmax", dict(logits=[[-INF, -INF]]), [[NAN, NAN]]),
        ("softmax", dict(logits=[[INF, 0.0, -INF]]), [[1.0, 0.0, 0.0]]),
        ("softmax", dict(logits=[[INF, INF, 0.0]]), [[NAN, NAN, 0.0]]),
        ("categorical_crossentropy", dict(probs=[[0.0, 1.0]], labels=[[0.0, 1.0]]), [0.0]),
        ("categorical_crossentropy", dict(probs=[[0.0, 1.0]], labels=[[1.0, 0.0]]), [INF]),
        (
            "categorical_crossentropy_renormalized",
            dict(probs=[[0.0, 0.0]], labels=[[1.0, 0.0]]),
            [NAN],
        ),
        (
            "categorical_crossentropy_renormalized",
            dict(probs=[[0.25, 0.25]], labels=[[1.0, 0.0]]),
            [math.log(2)],
        ),
    ],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extended_real_limits(loss, inputs, expected, dtype):
    got = oracles.reference(loss, dtype, **inputs)
    want = np.asarray(expected, dtype=np.float64).astype(NP[dtype])
    assert got.shape == want.shape
    assert all(same(a, b) for a, b in zip(got.ravel(), want.ravel())), (got, want)


@pytest.mark.parametrize(
    "loss,inputs,message",
    [
        (
            "sigmoid_cross_entropy_with_logits",
            dict(logits=0.0, labels=1.3),
            r"labels must lie in \[0, 1\]",
        ),
        (
            "sigmoid_cross_entropy_with_logits",
            dict(logits=0.0, labels=-0.1),
            r"labels must lie in \[0, 1\]",
        ),
        ("binary_crossentropy", dict(probs=-0.1, labels=1.0), r"probs must lie in \[0, 1\]"),
        ("binary_crossentropy", dict(probs=1.5, labels=1.0), r"probs must lie in \[0, 1\]"),
        (
            "sparse_softmax_cross_entropy_with_logits",
            dict(logits=[[0.0, 1.0]], labels=[2]),
            "class index 2 is out of range for 2 classes",
        ),
        (
            "sparse_softmax_cross_entropy_with_logits",
            dict(logits=[[0.0, 1.0]], labels=[-1]),
            "class index -1",
        ),
        (
            "sparse_categorical_crossentropy",
            dict(probs=[[0.5, 0.5]], labels=[0.5]),
            "class indices must be integers",
        ),
        (
            "weighted_sigmoid_cross_entropy_with_logits",
            dict(logits=0.0, labels=1.0, pos_weight=-1.0),
            "pos_weight must be finite and >= 0",
        ),
        (
            "softmax_cross_entropy_with_logits",
            dict(logits=[[0.0]], labels=[[1.0]], label_smoothing=2.0),
            "label_smoothing",
        ),
    ],
)
def test_inputs_outside_the_domain_raise_domain_error(loss, inputs, message):
    with pytest.raises(oracles.DomainError, match=message):
        oracles.reference(loss, "float32", **inputs)


def test_unknown_loss_suggests_the_closest_names():
    with pytest.raises(
        oracles.UnknownName, match="did you mean 'sigmoid_cross_entropy_with_logits'"
    ):
        oracles.reference("sigmoid_crossentropy_with_logits", "float32", logits=0.0, labels=0.0)


def test_wrong_input_names_say_what_the_loss_takes():
    with pytest.raises(TypeError, match="takes logits, labels.*unexpected probs.*missing logits"):
        oracles.reference("sigmoid_cross_entropy_with_logits", "float32", probs=0.0, labels=0.0)


def test_mismatched_shapes_are_a_clear_value_error():
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        oracles.reference(
            "sigmoid_cross_entropy_with_logits",
            "float32",
            logits=[0.0, 1.0, 2.0],
            labels=[0.0, 1.0],
        )


def test_axis_selects_the_class_axis():
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    z = np.eye(3)[[2, 0]]
    along_last = oracles.reference(
        "softmax_cross_entropy_with_logits", "float64", logits=x, labels=z
    )
    along_first = oracles.reference(
        "softmax_cross_entropy_with_logits", "float64", logits=x.T, labels=z.T, axis=0
    )
    assert np.array_equal(along_last, along_first)
    soft = oracles.reference("softmax", "float32", logits=x.T, axis=0)
    assert soft.shape == (3, 2) and np.array_equal(
        soft, oracles.reference("softmax", "float32", logits=x).T
    )


def test_inputs_are_cast_to_the_dtype_first():
    # 0.1 is not a float16; the loss is of float16(0.1) = 0.0999755859375
    a = oracles.exact("softplus", "float16", logits=0.1)
    b = oracles.exact("softplus", "float64", logits=float(np.float16(0.1)))
    with mpmath.workprec(60):
        assert abs(a - b) < mpmath.mpf(2) ** -50


def test_label_smoothing_is_its_own_definition():
    # K = 2 for binary losses: z' = z (1 - eps) + eps / 2
    smoothed = oracles.exact(
        "sigmoid_cross_entropy_with_logits", "float64", logits=3.0, labels=1.0, label_smoothing=0.5
    )
    direct = oracles.exact("sigmoid_cross_entropy_with_logits", "float64", logits=3.0, labels=0.75)
    assert smoothed == direct
    # K classes for softmax: z' = z (1 - eps) + eps / K, eps / K not a dyadic number
    x = [[1.0, 2.0, 3.0]]
    got = oracles.exact(
        "sparse_softmax_cross_entropy_with_logits",
        "float64",
        logits=x,
        labels=[0],
        label_smoothing=0.3,
    )[0]
    with mpmath.workprec(300):
        lse = mpmath.log(sum(mpmath.exp(v) for v in (1, 2, 3)))
        eps = mpmath.mpf(0.3)  # the float64 nearest 0.3, as the oracle received it
        want = sum(
            ((1 - eps if i == 0 else 0) + eps / 3) * (lse - v) for i, v in enumerate((1, 2, 3))
        )
        assert abs(got - want) < mpmath.mpf(2) ** -100


def test_renormalised_variant_differs_from_the_canonical_loss_when_probs_do_not_sum_to_one():
    probs, labels = [[0.2, 0.2]], [[1.0, 0.0]]
    plain = oracles.reference("categorical_crossentropy", "float64", probs=probs, labels=labels)[0]
    renorm = oracles.reference(
        "categorical_crossentropy_renormalized", "float64", probs=probs, labels=labels
    )[0]
    assert plain == np.float64(-math.log(0.2)) and renorm == np.float64(math.log(2))
    assert (
        oracles.get_loss("categorical_crossentropy_renormalized").variant_of
        == "categorical_crossentropy"
    )


def test_empty_batches_give_empty_results():
    got = oracles.reference(
        "sigmoid_cross_entropy_with_logits", "float32", logits=np.zeros((0,)), labels=np.zeros((0,))
    )
    assert got.shape == (0,) and got.dtype == np.float32


def test_a_dyadic_tie_plus_an_unresolvably_small_term_rounds_up():
    # 37/128 * x is exactly a bfloat16 tie; the rest, ~e**-1e16, decides it upwards
    got = oracles.reference(
        "sigmoid_cross_entropy_with_logits",
        "bfloat16",
        logits=1.0133099161583616e16,
        labels=0.7109375,
    )
    assert float(got) == 2937895069417472.0


def test_a_tie_built_from_non_dyadic_smoothed_labels_is_still_decided():
    # z' = (2/3, 1/6, 1/6): the rational part 5/6 * 3391488 = 2826240 = 172.5 bfloat16 ulps
    got = oracles.reference(
        "sparse_softmax_cross_entropy_with_logits",
        "bfloat16",
        logits=[[-3391488.0, 0.0, -3391488.0]],
        labels=[0],
        label_smoothing=0.5,
    )
    assert float(got[0]) == 173 * 16384.0


def test_class_axis_labels_must_match_the_logits_shape_exactly():
    with pytest.raises(
        ValueError, match=r"labels of shape \(1, 1\) do not match logits of shape \(1, 2\)"
    ):
        oracles.reference(
            "softmax_cross_entropy_with_logits", "float32", logits=[[1.0, 2.0]], labels=[[1.0]]
        )


def test_exact_values_are_narrowed_to_2p_plus_40_bits_even_under_cancellation():
    # logsumexp here is -0.0051 from terms near 1: its rounding is decided before its value
    # is known to 2p + 40 bits; the returned exact value must still be that accurate
    xs = [-1.125, -1.125, -1.0625]
    got = oracles.exact("logsumexp", "float16", logits=[xs])[0]
    with mpmath.workprec(400):
        want = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in xs))
        assert abs(got - want) <= abs(want) * mpmath.mpf(2) ** -(2 * 11 + 40)
