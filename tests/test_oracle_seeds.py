"""Every table of numbers printed in the seeds (shared/seeds), copied here.

The printed values are TensorFlow float32 results on float32 inputs, so each
must lie within a couple of float32 ULPs of the exact value (plus half a unit of
the last printed digit); where TF answered the correctly rounded float32, the
oracle's reference must print the same.
"""

import mpmath
import numpy as np
import pytest

from lossfuzz import oracles

F32_ULP_SLACK = 2.0


def assert_near_printed(loss, printed, **inputs):
    ev = oracles.evaluate(loss, "float32", **inputs)
    printed = np.asarray(printed, dtype=np.float64)
    assert ev.exact.shape == printed.shape
    for exact, shown in zip(ev.exact.ravel(), printed.ravel()):
        digits = len(repr(float(shown)).split("e")[0].replace("-", "").replace(".", "").lstrip("0"))
        half_digit = (
            0.5 * 10.0 ** (int(np.floor(np.log10(abs(shown)))) - digits + 1) if shown else 0
        )
        ulp = float(np.spacing(np.float32(abs(shown))))
        assert abs(float(exact) - shown) <= F32_ULP_SLACK * ulp + half_digit, (exact, shown)


# seed 004 (the tf.nn.sigmoid_cross_entropy_with_logits documentation)
def test_tf_doc_sigmoid_ce_table():
    assert_near_printed(
        "sigmoid_cross_entropy_with_logits",
        [1.3132617, 0.3132617, 0.6931472, 0.3132617, 1.3132617, 0.6931472, 0.6931472],
        logits=[1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 0.0],
        labels=[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5],
    )


def test_tf_doc_three_formulations_agree():
    printed = [0.31326166, 1.3132616, 0.6931472]
    x = np.array([1.0, -1.0, 0.0])
    soft = np.array([1.0, 1.0, 0.0])
    two_class = np.stack([x, np.zeros_like(x)], axis=-1)
    assert_near_printed(
        "sparse_softmax_cross_entropy_with_logits", printed, logits=two_class, labels=[0, 0, 1]
    )
    assert_near_printed(
        "softmax_cross_entropy_with_logits",
        printed,
        logits=two_class,
        labels=np.stack([soft, 1 - soft], axis=-1),
    )
    assert_near_printed("sigmoid_cross_entropy_with_logits", printed, logits=x, labels=soft)
    # the three are one function, so the oracle rounds them identically
    refs = [
        oracles.reference(
            "sparse_softmax_cross_entropy_with_logits",
            "float32",
            logits=two_class,
            labels=[0, 0, 1],
        ),
        oracles.reference(
            "softmax_cross_entropy_with_logits",
            "float32",
            logits=two_class,
            labels=np.stack([soft, 1 - soft], -1),
        ),
        oracles.reference("sigmoid_cross_entropy_with_logits", "float32", logits=x, labels=soft),
    ]
    assert all(np.array_equal(refs[0], r) for r in refs)
    # TF's 0.31326166 is one float32 ULP below the correctly rounded softplus(-1)
    assert refs[0].tolist() == [np.float32(0.3132617), np.float32(1.3132616), np.float32(0.6931472)]


# seed 000 (sigmoid followed by cross entropy vs sigmoid_cross_entropy_with_logits)
P = np.array([[0, 0, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=np.float64)
LOGIT_Q = np.array([[0.2, 0.2, 0.2, 0.2, 0.2], [0.3, 0.3, 0.2, 0.1, 0.1]])


def test_seed_softmax_ce_n_equals_2():
    printed = [0.43748799, 0.51301527, 0.69314718]
    assert_near_printed(
        "softmax_cross_entropy_with_logits",
        printed,
        logits=[[0.2, 0.8], [0.7, 0.3], [0.5, 0.5]],
        labels=[[0, 1], [1, 0], [1, 0]],
    )


def test_seed_sigmoid_ce_prob4_table():
    printed = [
        [0.7981388, 0.7981388, 0.7981388, 0.59813893, 0.7981388],
        [0.55435514, 0.85435534, 0.7981388, 0.74439663, 0.74439663],
    ]
    assert_near_printed("sigmoid_cross_entropy_with_logits", printed, logits=LOGIT_Q, labels=P)


def test_seed_naive_formula_prob2_table_is_within_a_few_ulps_too():
    printed = [
        [0.79813886, 0.79813886, 0.79813886, 0.59813887, 0.79813886],
        [0.5543552, 0.85435522, 0.79813886, 0.74439669, 0.74439669],
    ]
    assert_near_printed("sigmoid_cross_entropy_with_logits", printed, logits=LOGIT_Q, labels=P)


def test_seed_partial_formula_prob1_is_the_loss_only_where_p_is_one():
    printed = [[0.0, 0.0, 0.0, 0.59813893, 0.0], [0.55435514, 0.0, 0.0, 0.0, 0.0]]
    full = oracles.exact("sigmoid_cross_entropy_with_logits", "float32", logits=LOGIT_Q, labels=P)
    for exact, shown, p in zip(full.ravel(), np.ravel(printed), P.ravel()):
        if p == 1:
            assert abs(float(exact) - shown) < 1e-7
        else:  # -p*log(q) drops the (1-p) term: the real loss is not 0
            assert shown == 0.0 and float(exact) > 0.5


# seed 001 (a beginner's guide to tf.nn.sigmoid_cross_entropy_with_logits)
def test_seed_guide_first_table():
    assert_near_printed(
        "sigmoid_cross_entropy_with_logits",
        [[0.31326172, 2.126928, 3.0485873], [4.01815, 0.00671535, 6.0024757]],
        logits=[[1, 2, 3], [4, 5, 6]],
        labels=[[1, 0, 0], [0, 1, 0]],
    )


def test_seed_guide_soft_labels_from_a_sigmoid():
    labels = oracles.reference("sigmoid", "float32", logits=[[-1, 2, 0], [3, 1, -4]])
    # tf.sigmoid(2.0) gave 0.880797, one ULP below the correctly rounded 0.8807971;
    # with TF's label the printed 0.36533394 is the correctly rounded loss.
    tf_label = np.nextafter(labels[0, 1], np.float32(0))
    assert oracles.reference(
        "sigmoid_cross_entropy_with_logits", "float32", logits=2.0, labels=tf_label
    ) == np.float32(0.36533394)
    labels[0, 1] = tf_label
    assert_near_printed(
        "sigmoid_cross_entropy_with_logits",
        [[1.0443203, 0.36533394, 1.5485873], [0.20785339, 1.3514223, 5.8945584]],
        logits=[[1, 2, 3], [4, 5, 6]],
        labels=labels,
    )


# Keras' own categorical_crossentropy docstring (renormalised probabilities)
def test_keras_docstring_categorical_table():
    probs = [[0.9, 0.05, 0.05], [0.05, 0.89, 0.06], [0.05, 0.01, 0.94]]
    got = oracles.exact(
        "categorical_crossentropy_renormalized", "float32", probs=probs, labels=np.eye(3)
    )
    assert [round(float(v), 5) for v in got] == [0.10536, 0.11653, 0.06188]


@pytest.mark.parametrize("n", [2, 5])
def test_seed_nlabels_one_softmax_is_always_zero(n):
    # NLABELS = 1: softmax over a single output is 1, so the loss is exactly 0
    logits = np.linspace(-30, 30, n).reshape(n, 1)
    got = oracles.exact(
        "softmax_cross_entropy_with_logits", "float32", logits=logits, labels=np.ones((n, 1))
    )
    assert all(v == 0 for v in got)


def test_seed_binary_ce_on_one_hot_pair_is_twice_categorical():
    # seed 002: elementwise BCE on an N=2 one-hot output gives twice the cross-entropy
    probs = np.array([0.25, 0.75])  # exactly complementary
    labels = np.array([0.0, 1.0])
    bce = oracles.exact("binary_crossentropy", "float64", probs=probs, labels=labels)
    cce = oracles.exact("categorical_crossentropy", "float64", probs=[probs], labels=[labels])[0]
    with mpmath.workprec(200):
        assert abs(sum(bce) - 2 * cce) < mpmath.mpf(2) ** -100
