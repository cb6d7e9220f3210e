"""Keras 3: its backend (on TensorFlow), GradientTape, the XLA mode, and its impls.

The impls are Keras' cross-entropies (keras.losses.*); ``twins.py`` gives each a
``keras-xla:`` twin.

Keras averages its losses over the last axis, so an elementwise loss is called
with a trailing axis of size 1. On probabilities Keras clips to [eps, 1 - eps]
(eps = keras.config.epsilon() = 1e-7) and renormalises categorical outputs to
sum to 1 (keras/src/backend/tensorflow/nn.py); the renormalisation is part of
the loss it is scored against, the clip is a documented deviation.
"""

from __future__ import annotations

import math
import os

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
from lossfuzz.harness.registry import Deviation, document, implementation


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
            "y_pred holds probabilities (the range is not checked; they are clipped to "
            "[eps, 1 - eps])",
            "https://keras.io/api/losses/probabilistic_losses/",
        ),
    },
)

SOURCE = "keras/src/backend/tensorflow/nn.py (binary_/categorical_crossentropy)"
EPSILON_CLIP = Deviation(
    "probabilities are clipped to [1e-7, 1 - 1e-7] (keras.config.epsilon()), so each "
    "log term lies within [log(1e-7), log(1 - 1e-7)]",
    SOURCE,
    lambda inputs, got, exact: math.isfinite(got) and got <= 16.2 * 1.01,
)
EPSILON_CLIP_GRAD = Deviation(
    "probabilities are clipped to [1e-7, 1 - 1e-7] (keras.config.epsilon()); a clipped "
    "probability gets no gradient, and the others see the clipped values",
    SOURCE,
    lambda inputs, got, exact: (
        math.isfinite(got)
        and bool((lambda p: ((p < 1e-7) | (p > 1 - 1e-7)).any())(inputs["probs"].astype("float64")))
    ),
    quantity="grad",
)
FLOATX = Deviation(
    "a Keras loss object computes in its dtype, keras.config.floatx() (float32) unless "
    "given one, so float64 inputs are rounded to float32 first",
    "https://keras.io/api/losses/ (Loss: dtype defaults to keras.backend.floatx())",
    lambda inputs, got, exact: (
        any(getattr(v, "dtype", None) == "float64" for v in inputs.values())
        and math.isfinite(got)
        and abs(got - exact) <= 2.0**-21 * abs(exact) + 2.0**-126
    ),
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
    loss="binary_crossentropy",
    call=LOSSES + "binary_crossentropy(labels[..., None], probs[..., None],"
    " label_smoothing=label_smoothing)",
    params=("label_smoothing",),
    deviations=(EPSILON_CLIP, EPSILON_CLIP_GRAD, FLOATX),
    reduced=classes(
        "BinaryCrossentropy",
        "",
        "labels[..., None], probs[..., None]",
        label_smoothing="label_smoothing",
    ),
)
implementation(
    "keras:categorical_crossentropy_from_logits",
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
    loss="categorical_crossentropy_renormalized",
    call=LOSSES + "categorical_crossentropy(labels, probs, label_smoothing=label_smoothing)",
    params=("label_smoothing",),
    deviations=(EPSILON_CLIP, EPSILON_CLIP_GRAD, FLOATX),
    reduced=classes(
        "CategoricalCrossentropy", "", "labels, probs", label_smoothing="label_smoothing"
    ),
)
implementation(
    "keras:sparse_categorical_crossentropy_from_logits",
    loss="sparse_softmax_cross_entropy_with_logits",
    call=LOSSES + "sparse_categorical_crossentropy(labels, logits, from_logits=True)",
    deviations=(FLOATX,),
    reduced=classes("SparseCategoricalCrossentropy", "from_logits=True, ", "labels, logits"),
)
implementation(
    "keras:sparse_categorical_crossentropy",
    loss="sparse_categorical_crossentropy_renormalized",
    call=LOSSES + "sparse_categorical_crossentropy(labels, probs)",
    deviations=(EPSILON_CLIP, EPSILON_CLIP_GRAD, FLOATX),
    reduced=classes("SparseCategoricalCrossentropy", "", "labels, probs"),
)
