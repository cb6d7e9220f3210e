"""TensorFlow: its backend, GradientTape, XLA and GPU modes, and its impls.

The impls are tf.nn's and tf.math's losses and building blocks, eager on the CPU;
``twins.py`` gives each a ``tf-xla:`` twin (``tf.function(jit_compile=True)``) and a
``tf-gpu:`` twin (skipped with one line where TensorFlow sees no GPU). Keras on its
TensorFlow backend shares the conversions and literals (``keras.py``).
"""

from __future__ import annotations

import os

import numpy as np

from lossfuzz.harness.backends import (
    Autodiff,
    Backend,
    is_bfloat16,
    register_backend,
    tensor_literal,
)
from lossfuzz.harness.backends.modes import FN, Mode, register_mode
from lossfuzz.harness.deviations import softmax_minus_labels
from lossfuzz.harness.registry import document, implementation

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def to_tf(arr: np.ndarray):
    import tensorflow as tf

    arr = np.asarray(arr)
    if is_bfloat16(arr):
        return tf.cast(tf.constant(arr.astype(np.float32)), tf.bfloat16)
    return tf.constant(arr)


def from_tf(t) -> np.ndarray:
    import ml_dtypes
    import tensorflow as tf

    if t.dtype == tf.bfloat16:
        return tf.cast(t, tf.float32).numpy().astype(ml_dtypes.bfloat16)
    return np.asarray(t.numpy())


def literal(arr: np.ndarray) -> str:
    return tensor_literal(
        arr,
        ints="tf.constant({values}, dtype=tf.int64)",
        floats="tf.reshape(tf.cast(tf.constant({values}, dtype=tf.float64), tf.{dtype}), {dims})",
    )


SHOW = "float(tf.reshape(tf.cast({v}, tf.float64), [-1])[{i}])"
TILE = "{v} = tf.tile({v}, [{reps}{ones}])[:{n}]"


def gradient_body(indent: str = "    ") -> str:
    """tf.GradientTape around the call, for eager code and inside tf.function alike."""
    return (
        "with tf.GradientTape() as tape:\n"
        f"{indent}tape.watch({{wrt}})\n"
        f"{indent}out = {{call}}\n"
        "grad = tape.gradient(out, {wrt})\n"
        "if grad is None:\n"
        f"{indent}raise ValueError('the output does not depend on {{wrt}}: no gradient')"
    )


TF = Backend(
    "tf",
    ("tensorflow",),
    "import tensorflow as tf",
    to_tf,
    from_tf,
    literal,
    SHOW,
    TILE,
    framework="tf",
)
register_backend(TF, Autodiff.of(TF, "tf.GradientTape", "", gradient_body()))

_XLA = "loss_fn = tf.function(loss_fn, jit_compile=True)"
_XLA_GRAD = (
    "def grad_fn({params}):\n"
    "    with tf.GradientTape() as tape:\n"
    "        tape.watch({wrt})\n"
    "        out = {call}\n"
    "    return out, tape.gradient(out, {wrt})\n"
    "grad_fn = tf.function(grad_fn, jit_compile=True)"
)
_XLA_GRAD_BODY = (
    "out, grad = grad_fn({params})\n"
    "if grad is None:\n"
    "    raise ValueError('the output does not depend on {wrt}: no gradient')"
)


def xla_mode(name: str, base: str, runner: Backend) -> Mode:
    """``tf.function(jit_compile=True)`` around a TensorFlow or Keras call."""
    return register_mode(
        Mode(
            name,
            base,
            "tf.function(jit_compile=True)",
            runner,
            "",
            FN + _XLA,
            _XLA_GRAD,
            "",
            _XLA_GRAD_BODY,
            pad=True,
            # retracing warnings (a new shape or smoothing factor) are the expected cost
            quiet='tf.get_logger().setLevel("ERROR")',
            grad_how="tf.GradientTape",
        )
    )


TF_XLA = xla_mode("tf-xla", "tf", TF)


def _gpu_to(arr):
    import tensorflow as tf

    with tf.device("/GPU:0"):
        return tf.identity(to_tf(arr))


def _no_gpu() -> str | None:
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return "no GPU visible to TensorFlow: tf.config.list_physical_devices('GPU') is []"
    return None


_ON_GPU = "with tf.device('/GPU:0'):\n"
TF_GPU = register_mode(
    Mode(
        "tf-gpu",
        "tf",
        "TensorFlow on the GPU",
        # literals are placed by the tf.device block around the call
        Backend("tf-gpu", TF.requires, TF.imports, _gpu_to, from_tf, literal, SHOW, TILE),
        "",
        "",
        "",
        "",
        _ON_GPU + "\n".join("    " + line for line in gradient_body().splitlines()),
        pad=False,
        quiet="",
        grad_how="tf.GradientTape",
        invoke=_ON_GPU + "    got = {call}",
        compiles=False,
        unavailable=_no_gpu,
    )
)

TF_SIGMOID = "https://www.tensorflow.org/api_docs/python/tf/nn/sigmoid_cross_entropy_with_logits"
TF_SPARSE = (
    "https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits"
)
TF_SOFTMAX = "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits"
DOCS = {
    ("sigmoid", "shape"): (
        "raise",
        "logits and labels must have the same type and shape (ValueError otherwise)",
        TF_SIGMOID,
    ),
    ("sigmoid", "labels"): ("raise", "labels lie between 0 and 1, inclusive", TF_SIGMOID),
    ("sigmoid", "dtype"): ("raise", "logits and labels must have the same type", TF_SIGMOID),
    ("sparse", "index"): (
        "raise",
        "each label is an index in [0, num_classes); other values raise on CPU",
        TF_SPARSE,
    ),
    ("sparse", "dtype"): ("raise", "labels are int32 or int64 class indices", TF_SPARSE),
    ("softmax", "shape"): ("raise", "labels have the same shape as logits", TF_SOFTMAX),
}
document("tf", DOCS)

LABELS_SUM_TO_ONE = softmax_minus_labels(
    what="the gradient with respect to the logits is softmax(logits) - labels, which is the "
    "derivative only where each label row sums to 1 ('each vector along the class "
    "dimension should hold a valid probability distribution')",
    source=TF_SOFTMAX,
    documented=True,
)


def reducible(impl_id: str, *, call: str, **kwargs):
    """A loss impl, with its batch reduced by tf.reduce_mean and tf.reduce_sum."""
    reduced = {"mean": f"tf.reduce_mean({call})", "sum": f"tf.reduce_sum({call})"}
    return implementation(impl_id, call=call, reduced=reduced, **kwargs)


reducible(
    "tf:sigmoid_cross_entropy_with_logits",
    doc=(
        "max(x, 0) - x * z + log(1 + exp(-abs(x))), 'to ensure stability and avoid overflow'",
        "https://www.tensorflow.org/api_docs/python/tf/nn/sigmoid_cross_entropy_with_logits",
    ),
    loss="sigmoid_cross_entropy_with_logits",
    call="tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)",
)
reducible(
    "tf:weighted_cross_entropy_with_logits",
    doc=(
        "(1 - z) * x + l * (log(1 + exp(-abs(x))) + max(-x, 0)), l = 1 + (pos_weight - 1) * z, "
        "'to ensure stability and avoid overflow'",
        "https://www.tensorflow.org/api_docs/python/tf/nn/weighted_cross_entropy_with_logits",
    ),
    loss="weighted_sigmoid_cross_entropy_with_logits",
    call="tf.nn.weighted_cross_entropy_with_logits(labels=labels, logits=logits, pos_weight=pos_weight)",  # noqa: E501
)
reducible(
    "tf:softmax_cross_entropy_with_logits",
    doc=(
        "softmax cross entropy between logits and labels; each label row should be a valid "
        "probability distribution",
        "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits",
    ),
    loss="softmax_cross_entropy_with_logits",
    call="tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=axis)",
    deviations=(LABELS_SUM_TO_ONE,),
)
reducible(
    "tf:sparse_softmax_cross_entropy_with_logits",
    doc=(
        "sparse softmax cross entropy between logits and class indices",
        "https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits",
    ),
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
