"""Hand-written NumPy formulas from the seeds, computed in the case's dtype.

These are what people write: "sigmoid, then log", "softmax, then log",
-sum(p * log(q)), and each line of the derivation in the TF documentation of
sigmoid_cross_entropy_with_logits (seed 004). They overflow, underflow and turn
into NaN at each dtype's thresholds (exp overflows past 88.72 in float32, 11.09
in float16). ``naive:stable_sigmoid_ce`` is the documented stable formula,
max(x, 0) - x z + log1p(exp(-|x|)), the control that should stay accurate.
"""

from __future__ import annotations

import numpy as np

from harness.registry import implementation


def _quiet(fn):
    def wrapped(inputs, dtype):
        with np.errstate(all="ignore"):
            return fn(inputs, dtype)

    wrapped.__doc__ = fn.__doc__
    return wrapped


def _xz(inputs):
    return inputs["logits"], inputs["labels"]


def _one(x):
    return np.ones((), dtype=x.dtype)


def _sigmoid(x):
    one = _one(x)
    return one / (one + np.exp(-x))


@implementation(
    "naive:sigmoid_then_log",
    loss="sigmoid_cross_entropy_with_logits",
    doc="q = 1 / (1 + exp(-x)); z * -log(q) + (1 - z) * -log(1 - q)",
)
@_quiet
def sigmoid_then_log(inputs, dtype):
    x, z = _xz(inputs)
    one = _one(x)
    q = _sigmoid(x)
    return z * -np.log(q) + (one - z) * -np.log(one - q)


@implementation(
    "naive:tf_doc_step1",
    loss="sigmoid_cross_entropy_with_logits",
    doc="z * -log(1 / (1 + exp(-x))) + (1 - z) * -log(exp(-x) / (1 + exp(-x)))",
)
@_quiet
def tf_doc_step1(inputs, dtype):
    x, z = _xz(inputs)
    one = _one(x)
    e = np.exp(-x)
    return z * -np.log(one / (one + e)) + (one - z) * -np.log(e / (one + e))


@implementation(
    "naive:tf_doc_step2",
    loss="sigmoid_cross_entropy_with_logits",
    doc="z * log(1 + exp(-x)) + (1 - z) * (x + log(1 + exp(-x)))",
)
@_quiet
def tf_doc_step2(inputs, dtype):
    x, z = _xz(inputs)
    one = _one(x)
    s = np.log(one + np.exp(-x))
    return z * s + (one - z) * (x + s)


@implementation(
    "naive:tf_doc_step3",
    loss="sigmoid_cross_entropy_with_logits",
    doc="x - x * z + log(1 + exp(-x))",
)
@_quiet
def tf_doc_step3(inputs, dtype):
    x, z = _xz(inputs)
    return x - x * z + np.log(_one(x) + np.exp(-x))


@implementation(
    "naive:tf_doc_negative_branch",
    loss="sigmoid_cross_entropy_with_logits",
    doc="-x * z + log(1 + exp(x))  (the x < 0 reformulation, used for every x)",
)
@_quiet
def tf_doc_negative_branch(inputs, dtype):
    x, z = _xz(inputs)
    return -x * z + np.log(_one(x) + np.exp(x))


@implementation(
    "naive:stable_sigmoid_ce",
    loss="sigmoid_cross_entropy_with_logits",
    doc="max(x, 0) - x * z + log1p(exp(-abs(x)))  (the control)",
)
@_quiet
def stable_sigmoid_ce(inputs, dtype):
    x, z = _xz(inputs)
    zero = np.zeros((), dtype=x.dtype)
    return np.maximum(x, zero) - x * z + np.log1p(np.exp(-np.abs(x)))


@implementation(
    "naive:softmax_then_log",
    loss="softmax_cross_entropy_with_logits",
    doc="q = exp(x) / sum(exp(x)); -sum(z * log(q))",
)
@_quiet
def softmax_then_log(inputs, dtype):
    x, z = _rows(inputs)
    e = np.exp(x)
    q = e / np.sum(e, axis=-1, keepdims=True)
    return -np.sum(z * np.log(q), axis=-1)


@implementation(
    "naive:shifted_softmax_then_log",
    loss="softmax_cross_entropy_with_logits",
    doc="q = softmax(x - max(x)); -sum(z * log(q))",
)
@_quiet
def shifted_softmax_then_log(inputs, dtype):
    x, z = _rows(inputs)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    q = e / np.sum(e, axis=-1, keepdims=True)
    return -np.sum(z * np.log(q), axis=-1)


@implementation(
    "naive:log_softmax_ce",
    loss="softmax_cross_entropy_with_logits",
    doc="m = max(x); -sum(z * (x - m - log(sum(exp(x - m)))))  (the control)",
)
@_quiet
def log_softmax_ce(inputs, dtype):
    x, z = _rows(inputs)
    m = np.max(x, axis=-1, keepdims=True)
    log_q = x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))
    return -np.sum(z * log_q, axis=-1)


@implementation(
    "naive:sparse_softmax_then_log",
    loss="sparse_softmax_cross_entropy_with_logits",
    doc="q = exp(x) / sum(exp(x)); -log(q[k])",
)
@_quiet
def sparse_softmax_then_log(inputs, dtype):
    (x,) = _rows(inputs, ("logits",))
    e = np.exp(x)
    q = e / np.sum(e, axis=-1, keepdims=True)
    k = np.asarray(inputs["labels"])[..., None]
    return -np.log(np.take_along_axis(q, k, axis=-1)[..., 0])


@implementation(
    "naive:binary_crossentropy",
    loss="binary_crossentropy",
    doc="-(z * log(p) + (1 - z) * log(1 - p))",
)
@_quiet
def binary_crossentropy(inputs, dtype):
    p, z = inputs["probs"], inputs["labels"]
    one = _one(p)
    return -(z * np.log(p) + (one - z) * np.log(one - p))


@implementation(
    "naive:categorical_crossentropy",
    loss="categorical_crossentropy",
    doc="-sum(p * log(q))  (seed 000's multi-class formula)",
)
@_quiet
def categorical_crossentropy(inputs, dtype):
    q, p = _rows(inputs, ("probs", "labels"))
    return -np.sum(p * np.log(q), axis=-1)


@implementation("naive:softplus", loss="softplus", doc="log(1 + exp(x))")
@_quiet
def softplus(inputs, dtype):
    x = inputs["logits"]
    return np.log(_one(x) + np.exp(x))


@implementation("naive:log_sigmoid", loss="log_sigmoid", doc="log(1 / (1 + exp(-x)))")
@_quiet
def log_sigmoid(inputs, dtype):
    return np.log(_sigmoid(inputs["logits"]))


@implementation("naive:logsumexp", loss="logsumexp", doc="log(sum(exp(x)))")
@_quiet
def logsumexp(inputs, dtype):
    (x,) = _rows(inputs, ("logits",))
    return np.log(np.sum(np.exp(x), axis=-1))


def _rows(inputs, names=("logits", "labels")):
    """The named inputs with the class axis moved last."""
    return [np.moveaxis(inputs[n], inputs["axis"], -1) for n in names]
