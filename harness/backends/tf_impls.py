"""TensorFlow's losses and building blocks (tf.nn, tf.math), eager mode on the CPU."""

from __future__ import annotations

import os

import numpy as np

from harness.backends.convert import from_tf, to_tf
from harness.registry import implementation

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REQ = ("tensorflow",)


def _tf():
    import tensorflow as tf

    return tf


@implementation(
    "tf:sigmoid_cross_entropy_with_logits",
    loss="sigmoid_cross_entropy_with_logits",
    requires=REQ,
    doc="tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)",
)
def sigmoid_ce(inputs, dtype):
    out = _tf().nn.sigmoid_cross_entropy_with_logits(
        labels=to_tf(inputs["labels"]), logits=to_tf(inputs["logits"])
    )
    return from_tf(out)


@implementation(
    "tf:weighted_cross_entropy_with_logits",
    loss="weighted_sigmoid_cross_entropy_with_logits",
    requires=REQ,
    doc="tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight)",
)
def weighted_ce(inputs, dtype):
    out = _tf().nn.weighted_cross_entropy_with_logits(
        labels=to_tf(inputs["labels"]),
        logits=to_tf(inputs["logits"]),
        pos_weight=to_tf(inputs["pos_weight"]),
    )
    return from_tf(out)


@implementation(
    "tf:softmax_cross_entropy_with_logits",
    loss="softmax_cross_entropy_with_logits",
    requires=REQ,
    doc="tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=axis)",
)
def softmax_ce(inputs, dtype):
    out = _tf().nn.softmax_cross_entropy_with_logits(
        labels=to_tf(inputs["labels"]), logits=to_tf(inputs["logits"]), axis=inputs["axis"]
    )
    return from_tf(out)


@implementation(
    "tf:sparse_softmax_cross_entropy_with_logits",
    loss="sparse_softmax_cross_entropy_with_logits",
    requires=REQ,
    doc="tf.nn.sparse_softmax_cross_entropy_with_logits(labels=class_indices, logits=logits)",
)
def sparse_softmax_ce(inputs, dtype):
    x = np.moveaxis(inputs["logits"], inputs["axis"], -1)
    out = _tf().nn.sparse_softmax_cross_entropy_with_logits(
        labels=_tf().constant(inputs["labels"]), logits=to_tf(np.ascontiguousarray(x))
    )
    return from_tf(out)


@implementation("tf:softplus", loss="softplus", requires=REQ, doc="tf.math.softplus(logits)")
def softplus(inputs, dtype):
    return from_tf(_tf().math.softplus(to_tf(inputs["logits"])))


@implementation(
    "tf:log_sigmoid", loss="log_sigmoid", requires=REQ, doc="tf.math.log_sigmoid(logits)"
)
def log_sigmoid(inputs, dtype):
    return from_tf(_tf().math.log_sigmoid(to_tf(inputs["logits"])))


@implementation("tf:sigmoid", loss="sigmoid", requires=REQ, doc="tf.math.sigmoid(logits)")
def sigmoid(inputs, dtype):
    return from_tf(_tf().math.sigmoid(to_tf(inputs["logits"])))


@implementation(
    "tf:reduce_logsumexp",
    loss="logsumexp",
    requires=REQ,
    doc="tf.math.reduce_logsumexp(logits, axis=axis)",
)
def reduce_logsumexp(inputs, dtype):
    return from_tf(_tf().math.reduce_logsumexp(to_tf(inputs["logits"]), axis=inputs["axis"]))


@implementation(
    "tf:log_softmax", loss="log_softmax", requires=REQ, doc="tf.nn.log_softmax(logits, axis=axis)"
)
def log_softmax(inputs, dtype):
    return from_tf(_tf().nn.log_softmax(to_tf(inputs["logits"]), axis=inputs["axis"]))


@implementation("tf:softmax", loss="softmax", requires=REQ, doc="tf.nn.softmax(logits, axis=axis)")
def softmax(inputs, dtype):
    return from_tf(_tf().nn.softmax(to_tf(inputs["logits"]), axis=inputs["axis"]))
