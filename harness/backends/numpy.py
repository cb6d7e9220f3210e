"""NumPy: the backend of hand-written formulas and user code, its autodiff, and the seeds'
naive formulas.

The backend hands the arrays over as they are. NumPy has no autodiff: the naive
formulas run unchanged on ``torch._numpy``, PyTorch's NumPy-compatible layer (the
one torch.compile traces NumPy code with), under autograd.

The naive impls are the seeds' hand-written NumPy formulas, computed in the case's dtype.

These are what people write: "sigmoid, then log", "softmax, then log",
-sum(p * log(q)), and each line of the derivation in the TF documentation of
sigmoid_cross_entropy_with_logits (seed 004). They overflow, underflow and turn
into NaN at each dtype's thresholds (exp overflows past 88.72 in float32, 11.09
in float16). ``naive:stable_sigmoid_ce`` is the documented stable formula,
max(x, 0) - x z + log1p(exp(-|x|)), which still cancels in x - x z for z near 1;
``naive:control_sigmoid_ce`` writes the loss as non-negative terms, z softplus(-x) +
(1 - z) softplus(x), and is the control that must stay within tolerance.

NumPy keeps the arrays' dtype when a Python scalar joins them (NEP 50), so
``1 - labels`` is computed in float16 for float16 inputs, as a user's code would.
"""

from __future__ import annotations

import numpy as np

from lossfuzz.harness.backends import (
    Autodiff,
    Backend,
    float_name,
    register_backend,
    values_literal,
)
from lossfuzz.harness.registry import implementation


def _literal(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return f"np.array({values_literal(arr)}, dtype=np.int64)"
    name = float_name(arr)
    dtype = "ml_dtypes.bfloat16" if name == "bfloat16" else f"np.{name}"
    # float64 holds every value of the four formats, so the cast is exact
    return (
        f"np.array({values_literal(arr)}, dtype=np.float64).astype({dtype})"
        f".reshape({tuple(arr.shape)!r})"
    )


def _to_torch_numpy(arr: np.ndarray):
    import torch._numpy as tnp

    from lossfuzz.harness.backends.torch import to_torch

    return tnp.asarray(to_torch(arr))


def _from_torch(t) -> np.ndarray:
    from lossfuzz.harness.backends.torch import from_torch

    return from_torch(t)


def _torch_literal(arr: np.ndarray) -> str:
    from lossfuzz.harness.backends.torch import literal

    return f"np.asarray({literal(arr)})"


NUMPY = Backend(
    "numpy",
    (),
    "import numpy as np\nimport ml_dtypes",
    lambda a: a,
    lambda r: np.asarray(r),
    _literal,
    "float(np.asarray({v}).astype(np.float64).reshape(-1)[{i}])",
)
TORCH_NUMPY = Autodiff(
    "torch.autograd through torch._numpy",
    "import torch\nimport torch._numpy as np",
    ("torch",),
    _to_torch_numpy,
    _from_torch,
    _torch_literal,
    "{v}.double().reshape(-1)[{i}].item()",
    "{wrt}.tensor.requires_grad_()",
    "out = {call}\n"
    "grad, = torch.autograd.grad(out.tensor, {wrt}.tensor, torch.ones_like(out.tensor))",
    ("float16", "float32", "float64"),  # torch._numpy has no bfloat16
)
register_backend(NUMPY, TORCH_NUMPY)


SIGMOID_CE = "sigmoid_cross_entropy_with_logits"
SOFTMAX_CE = "softmax_cross_entropy_with_logits"

for name, call in {
    "sigmoid_then_log": (
        "labels * -np.log(1 / (1 + np.exp(-logits)))"
        " + (1 - labels) * -np.log(1 - 1 / (1 + np.exp(-logits)))"
    ),
    # the TF documentation's derivation, line by line
    "tf_doc_step1": (
        "labels * -np.log(1 / (1 + np.exp(-logits)))"
        " + (1 - labels) * -np.log(np.exp(-logits) / (1 + np.exp(-logits)))"
    ),
    "tf_doc_step2": (
        "labels * np.log(1 + np.exp(-logits))"
        " + (1 - labels) * (logits + np.log(1 + np.exp(-logits)))"
    ),
    "tf_doc_step3": "logits - logits * labels + np.log(1 + np.exp(-logits))",
    "tf_doc_negative_branch": "-logits * labels + np.log(1 + np.exp(logits))",
    "stable_sigmoid_ce": (
        "np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))"
    ),
    # the control: z softplus(-x) + (1 - z) softplus(x), each softplus as max(t, 0) +
    # log1p(exp(-|t|)) and a zero label weight giving 0: non-negative terms, no cancellation
    "control_sigmoid_ce": (
        "np.where(labels == 0, 0, labels * (np.maximum(-logits, 0)"
        " + np.log1p(np.exp(-np.abs(logits)))))"
        " + np.where(labels == 1, 0, (1 - labels) * (np.maximum(logits, 0)"
        " + np.log1p(np.exp(-np.abs(logits)))))"
    ),
}.items():
    implementation(f"naive:{name}", loss=SIGMOID_CE, call=call)

implementation(
    "naive:softmax_then_log",
    loss=SOFTMAX_CE,
    call="-np.sum(labels * np.log(np.exp(logits) / np.sum(np.exp(logits), axis=-1, keepdims=True)), axis=-1)",  # noqa: E501
)
implementation(
    "naive:shifted_softmax_then_log",
    loss=SOFTMAX_CE,
    call=(
        "-np.sum(labels * np.log("
        "np.exp(logits - np.max(logits, axis=-1, keepdims=True))"
        " / np.sum(np.exp(logits - np.max(logits, axis=-1, keepdims=True)), axis=-1, keepdims=True)"
        "), axis=-1)"
    ),
)
implementation(
    "naive:log_softmax_ce",
    loss=SOFTMAX_CE,
    call=(
        "-np.sum(labels * (logits - np.max(logits, axis=-1, keepdims=True)"
        " - np.log(np.sum(np.exp(logits - np.max(logits, axis=-1, keepdims=True)),"
        " axis=-1, keepdims=True))), axis=-1)"
    ),
)
implementation(
    "naive:sparse_softmax_then_log",
    loss="sparse_softmax_cross_entropy_with_logits",
    call=(
        "-np.log(np.take_along_axis("
        "np.exp(logits) / np.sum(np.exp(logits), axis=-1, keepdims=True),"
        " labels[..., None], axis=-1)[..., 0])"
    ),
)
implementation(
    "naive:binary_crossentropy",
    loss="binary_crossentropy",
    call="-(labels * np.log(probs) + (1 - labels) * np.log(1 - probs))",
)
implementation(
    "naive:categorical_crossentropy",
    loss="categorical_crossentropy",
    call="-np.sum(labels * np.log(probs), axis=-1)",
)
implementation("naive:softplus", loss="softplus", call="np.log(1 + np.exp(logits))")
implementation("naive:log_sigmoid", loss="log_sigmoid", call="np.log(1 / (1 + np.exp(-logits)))")
implementation("naive:logsumexp", loss="logsumexp", call="np.log(np.sum(np.exp(logits), axis=-1))")
