"""Keras 3: its backend (on TensorFlow), GradientTape, the XLA mode, and its impls.

The impls are Keras' cross-entropies (keras.losses.*); ``twins.py`` gives each a
``keras-xla:`` twin.

Keras averages its losses over the last axis, so an elementwise loss is called
with a trailing axis of size 1. On probabilities Keras clips to [eps, 1 - eps]
(eps = keras.config.epsilon() = 1e-7) and renormalises categorical outputs to
sum to 1 (keras/src/backend/tensorflow/nn.py); the renormalisation is part of
the loss it is scored against. The clip is not in Keras' documentation: findings it
explains are labelled with it, and stay findings.
"""

from __future__ import annotations

import os

import numpy as np

from lossfuzz.harness.backends import Autodiff, Backend, register_backend
from lossfuzz.harness.backends.tf import (
    LABELS_SUM_TO_ONE,
    SHOW,
    TILE,
    from_tf,
    gradient_body,
    literal,
    to_tf,
    xla_mode,
)
from lossfuzz.harness.deviations import Case, Deviation, probability_clip
from lossfuzz.harness.registry import document, implementation


def _not_on_tensorflow() -> str | None:
    name = os.environ.get("KERAS_BACKEND", "tensorflow")
    if name != "tensorflow":
        return (
            f"Keras is set to its {name} backend (KERAS_BACKEND={name}); "
            "lossfuzz's keras: impls run on TensorFlow"
        )
    return None


KERAS = Backend(
    "keras",
    ("keras", "tensorflow"),
    'import os\nos.environ.setdefault("KERAS_BACKEND", "tensorflow")\n'
    "import keras\nimport tensorflow as tf",
    to_tf,
    from_tf,
    literal,
    SHOW,
    TILE,
    framework="keras",
    unavailable=_not_on_tensorflow,
)
register_backend(
    KERAS, Autodiff.of(KERAS, "tf.GradientTape (Keras on TensorFlow)", "", gradient_body())
)
KERAS_XLA = xla_mode("keras-xla", "keras", KERAS)
document(
    "keras",
    {
        ("bce", "probs"): (
            "either",
            "y_pred holds probabilities (the range is not checked)",
            "https://keras.io/api/losses/probabilistic_losses/",
        ),
    },
)

SOURCE = "keras/src/backend/tensorflow/nn.py (binary_/categorical_crossentropy)"
EPSILON = 1e-7  # keras.config.epsilon()
CLIP = (
    "probabilities are clipped to [1e-7, 1 - 1e-7] (keras.config.epsilon(), in the dtype) "
    "before the log; the Keras documentation does not say so"
)


def _clip(loss: str):
    return probability_clip(
        EPSILON, 1 - EPSILON, loss=loss, what=CLIP, source=SOURCE, documented=False
    )


def _clip_gradient(case: Case):
    """A clipped probability gets no gradient: where every probability carrying label mass
    is clipped, the whole gradient is 0."""
    return 0 if _clip_everywhere(case) else None


def _clip_everywhere(case: Case) -> bool:
    lo, hi = float(case.fmt.cast(EPSILON)), float(case.fmt.cast(1 - EPSILON))
    p = case.row("probs")
    if case.spec.shape != "elementwise":
        with np.errstate(all="ignore"):
            p = p / p.sum()
        if case.spec.labels == "sparse":
            p = p[[int(np.asarray(case.inputs["labels"]).ravel()[0])]]
        else:
            p = p[case.row("labels") != 0]
    return bool(p.size) and bool(((p < lo) | (p > hi)).all())


CLIP_GRADIENT = Deviation(
    "probabilities are clipped to [1e-7, 1 - 1e-7] (keras.config.epsilon()); a clipped "
    "probability gets no gradient (not in the Keras documentation)",
    SOURCE,
    False,
    _clip_everywhere,
    _clip_gradient,
    quantity="grad",
)
FLOATX = Deviation(
    "a Keras loss object computes in its dtype, keras.config.floatx() (float32) unless "
    "given one, so float64 inputs are rounded to float32 first",
    "https://keras.io/api/losses/ (Loss: dtype defaults to keras.backend.floatx())",
    True,
    lambda case: case.dtype == "float64",
    bound=2.0**-20,  # a float32 computation's error, a few ULP of float32
    quantity="reduction",
)
LOSSES = "keras.losses."


def classes(cls: str, args: str, call_args: str, **options: str) -> dict:
    """The batch reduced by a Keras loss object (how a model's loss is computed):
    reduction 'sum_over_batch_size' (Keras' default, the mean) and 'sum'."""
    kw = "".join(f"{k}={v}, " for k, v in options.items())
    return {
        r: f"{LOSSES}{cls}({args}{kw}reduction={name!r})({call_args})"
        for r, name in (("mean", "sum_over_batch_size"), ("sum", "sum"))
    }


implementation(
    "keras:binary_crossentropy_from_logits",
    doc=(
        "the binary cross-entropy of the labels and the sigmoid of the logits (from_logits=True)",
        "https://keras.io/api/losses/probabilistic_losses/#binary_crossentropy-function",
    ),
    loss="sigmoid_cross_entropy_with_logits",
    call=LOSSES + "binary_crossentropy(labels[..., None], logits[..., None], from_logits=True,"
    " label_smoothing=label_smoothing)",
    params=("label_smoothing",),
    deviations=(FLOATX,),
    reduced=classes(
        "BinaryCrossentropy",
        "from_logits=True, ",
        "labels[..., None], logits[..., None]",
        label_smoothing="label_smoothing",
    ),
)
implementation(
    "keras:binary_crossentropy",
    doc=(
        "the binary cross-entropy of labels and probabilities",
        "https://keras.io/api/losses/probabilistic_losses/#binary_crossentropy-function",
    ),
    loss="binary_crossentropy",
    call=LOSSES + "binary_crossentropy(labels[..., None], probs[..., None],"
    " label_smoothing=label_smoothing)",
    params=("label_smoothing",),
    deviations=(_clip("binary_crossentropy"), CLIP_GRADIENT, FLOATX),
    reduced=classes(
        "BinaryCrossentropy",
        "",
        "labels[..., None], probs[..., None]",
        label_smoothing="label_smoothing",
    ),
)
implementation(
    "keras:categorical_crossentropy_from_logits",
    doc=(
        "the categorical cross-entropy of one-hot or soft labels and softmax(logits)",
        "https://keras.io/api/losses/probabilistic_losses/#categorical_crossentropy-function",
    ),
    loss="softmax_cross_entropy_with_logits",
    call=LOSSES + "categorical_crossentropy(labels, logits, from_logits=True,"
    " label_smoothing=label_smoothing)",
    params=("label_smoothing",),
    deviations=(LABELS_SUM_TO_ONE, FLOATX),  # it calls tf.nn.softmax_cross_entropy_with_logits
    reduced=classes(
        "CategoricalCrossentropy",
        "from_logits=True, ",
        "labels, logits",
        label_smoothing="label_smoothing",
    ),
)
implementation(
    "keras:categorical_crossentropy",
    doc=(
        "the categorical cross-entropy of labels and probabilities",
        "https://keras.io/api/losses/probabilistic_losses/#categorical_crossentropy-function",
    ),
    loss="categorical_crossentropy_renormalized",
    call=LOSSES + "categorical_crossentropy(labels, probs, label_smoothing=label_smoothing)",
    params=("label_smoothing",),
    deviations=(_clip("categorical_crossentropy"), CLIP_GRADIENT, FLOATX),
    reduced=classes(
        "CategoricalCrossentropy", "", "labels, probs", label_smoothing="label_smoothing"
    ),
)
implementation(
    "keras:sparse_categorical_crossentropy_from_logits",
    doc=(
        "the sparse categorical cross-entropy of class indices and softmax(logits)",
        "https://keras.io/api/losses/probabilistic_losses/#sparse_categorical_crossentropy-"
        "function",
    ),
    loss="sparse_softmax_cross_entropy_with_logits",
    call=LOSSES + "sparse_categorical_crossentropy(labels, logits, from_logits=True)",
    deviations=(FLOATX,),
    reduced=classes("SparseCategoricalCrossentropy", "from_logits=True, ", "labels, logits"),
)
implementation(
    "keras:sparse_categorical_crossentropy",
    doc=(
        "the sparse categorical cross-entropy of class indices and probabilities",
        "https://keras.io/api/losses/probabilistic_losses/#sparse_categorical_crossentropy-"
        "function",
    ),
    loss="sparse_categorical_crossentropy_renormalized",
    call=LOSSES + "sparse_categorical_crossentropy(labels, probs)",
    deviations=(_clip("sparse_categorical_crossentropy"), CLIP_GRADIENT, FLOATX),
    reduced=classes("SparseCategoricalCrossentropy", "", "labels, probs"),
)
# what users write: Keras' sigmoid, then BCE on the probabilities
implementation(
    "keras:bce_of_sigmoid",
    loss="sigmoid_cross_entropy_with_logits",
    call=LOSSES
    + "binary_crossentropy(labels[..., None], keras.activations.sigmoid(logits)[..., None])",
    reduced=classes(
        "BinaryCrossentropy", "", "labels[..., None], keras.activations.sigmoid(logits)[..., None]"
    ),
)
