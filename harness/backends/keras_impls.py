"""Keras 3's cross-entropies (keras.losses.*), on the TensorFlow backend.

Keras averages its losses over the last axis, so an elementwise loss is called
with a trailing axis of size 1. On probabilities Keras clips to [eps, 1 - eps]
(eps = keras.config.epsilon() = 1e-7) and renormalises categorical outputs to
sum to 1 (keras/src/backend/tensorflow/nn.py); the renormalisation is part of
the loss it is scored against, the clip is a documented deviation.
"""

from __future__ import annotations

import math
import os

import numpy as np

from harness.backends.convert import from_tf, to_tf
from harness.registry import Deviation, implementation

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REQ = ("keras", "tensorflow")
SOURCE = "keras/src/backend/tensorflow/nn.py (binary_/categorical_crossentropy)"

EPSILON_CLIP = Deviation(
    "probabilities are clipped to [1e-7, 1 - 1e-7] (keras.config.epsilon()), so each "
    "log term is at least log(1e-7) = -16.1",
    SOURCE,
    lambda inputs, got, ref: math.isfinite(got) and got <= 16.2 and (ref > got or ref < got),
)


def _losses():
    import keras

    return keras.losses


def _elementwise(fn_name: str, from_logits: bool):
    def call(inputs, dtype):
        primary = inputs["logits"] if from_logits else inputs["probs"]
        y_pred = to_tf(np.asarray(primary)[..., None])
        y_true = to_tf(np.asarray(inputs["labels"])[..., None])
        kw = {"from_logits": from_logits}
        if "label_smoothing" in inputs:
            kw["label_smoothing"] = inputs["label_smoothing"]
        return from_tf(getattr(_losses(), fn_name)(y_true, y_pred, **kw))

    return call


def _categorical(fn_name: str, from_logits: bool, sparse: bool):
    def call(inputs, dtype):
        primary = inputs["logits"] if from_logits else inputs["probs"]
        y_pred = np.ascontiguousarray(np.moveaxis(primary, inputs["axis"], -1))
        if sparse:
            y_true = inputs["labels"]
        else:
            y_true = to_tf(np.ascontiguousarray(np.moveaxis(inputs["labels"], inputs["axis"], -1)))
        kw = {"from_logits": from_logits}
        if "label_smoothing" in inputs and not sparse:
            kw["label_smoothing"] = inputs["label_smoothing"]
        return from_tf(getattr(_losses(), fn_name)(y_true, to_tf(y_pred), **kw))

    return call


implementation(
    "keras:binary_crossentropy_from_logits",
    loss="sigmoid_cross_entropy_with_logits",
    requires=REQ,
    params=("label_smoothing",),
    doc="keras.losses.binary_crossentropy(labels[..., None], logits[..., None], from_logits=True)",
)(_elementwise("binary_crossentropy", True))

implementation(
    "keras:binary_crossentropy",
    loss="binary_crossentropy",
    requires=REQ,
    params=("label_smoothing",),
    deviations=(EPSILON_CLIP,),
    doc="keras.losses.binary_crossentropy(labels[..., None], probs[..., None])",
)(_elementwise("binary_crossentropy", False))

implementation(
    "keras:categorical_crossentropy_from_logits",
    loss="softmax_cross_entropy_with_logits",
    requires=REQ,
    params=("label_smoothing",),
    doc="keras.losses.categorical_crossentropy(labels, logits, from_logits=True)",
)(_categorical("categorical_crossentropy", True, sparse=False))

implementation(
    "keras:categorical_crossentropy",
    loss="categorical_crossentropy_renormalized",
    requires=REQ,
    params=("label_smoothing",),
    deviations=(EPSILON_CLIP,),
    doc="keras.losses.categorical_crossentropy(labels, probs)",
)(_categorical("categorical_crossentropy", False, sparse=False))

implementation(
    "keras:sparse_categorical_crossentropy_from_logits",
    loss="sparse_softmax_cross_entropy_with_logits",
    requires=REQ,
    doc="keras.losses.sparse_categorical_crossentropy(class_indices, logits, from_logits=True)",
)(_categorical("sparse_categorical_crossentropy", True, sparse=True))

implementation(
    "keras:sparse_categorical_crossentropy",
    loss="sparse_categorical_crossentropy_renormalized",
    requires=REQ,
    deviations=(EPSILON_CLIP,),
    doc="keras.losses.sparse_categorical_crossentropy(class_indices, probs)",
)(_categorical("sparse_categorical_crossentropy", False, sparse=True))
