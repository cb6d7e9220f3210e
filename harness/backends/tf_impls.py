"""TensorFlow's losses and building blocks (tf.nn, tf.math), eager mode on the CPU."""

from __future__ import annotations

import math

from lossfuzz.harness.registry import Deviation, implementation, labels_not_a_distribution

LABELS_SUM_TO_ONE = Deviation(
    "the gradient with respect to the logits is softmax(logits) - labels, which is the "
    "derivative only where each label row sums to 1 ('each vector along the class "
    "dimension should hold a valid probability distribution')",
    "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits",
    lambda inputs, got, exact: math.isfinite(got) and labels_not_a_distribution(inputs),
    quantity="d/dlogits",
)


def reducible(impl_id: str, *, call: str, **kwargs):
    """A loss impl, with its batch reduced by tf.reduce_mean and tf.reduce_sum."""
    reduced = {"mean": f"tf.reduce_mean({call})", "sum": f"tf.reduce_sum({call})"}
    return implementation(impl_id, call=call, reduced=reduced, **kwargs)


reducible(
    "tf:sigmoid_cross_entropy_with_logits",
    loss="sigmoid_cross_entropy_with_logits",
    call="tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)",
)
reducible(
    "tf:weighted_cross_entropy_with_logits",
    loss="weighted_sigmoid_cross_entropy_with_logits",
    call="tf.nn.weighted_cross_entropy_with_logits(labels=labels, logits=logits, pos_weight=pos_weight)",  # noqa: E501
)
reducible(
    "tf:softmax_cross_entropy_with_logits",
    loss="softmax_cross_entropy_with_logits",
    call="tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=axis)",
    deviations=(LABELS_SUM_TO_ONE,),
)
reducible(
    "tf:sparse_softmax_cross_entropy_with_logits",
    loss="sparse_softmax_cross_entropy_with_logits",
    call="tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)",
)
implementation("tf:softplus", loss="softplus", call="tf.math.softplus(logits)")
implementation("tf:log_sigmoid", loss="log_sigmoid", call="tf.math.log_sigmoid(logits)")
implementation("tf:sigmoid", loss="sigmoid", call="tf.math.sigmoid(logits)")
implementation(
    "tf:reduce_logsumexp", loss="logsumexp", call="tf.math.reduce_logsumexp(logits, axis=axis)"
)
implementation("tf:log_softmax", loss="log_softmax", call="tf.nn.log_softmax(logits, axis=axis)")
implementation("tf:softmax", loss="softmax", call="tf.nn.softmax(logits, axis=axis)")
