"""PyTorch: its backend, autograd, torch.compile and CUDA modes, and its impls.

The impls are torch.nn.functional's losses and building blocks, eager on the CPU;
``twins.py`` gives each a ``torch-compile:`` twin (Inductor) and a ``torch-cuda:``
twin (skipped with one line where there is no GPU). Class-axis losses receive (N, K)
logits with the classes last. bfloat16 goes through float32, which holds every
bfloat16 exactly, so no value changes on the way in or out.
"""

from __future__ import annotations

import shutil

import mpmath
import numpy as np

from lossfuzz.harness.backends import (
    Autodiff,
    Backend,
    is_bfloat16,
    register_backend,
    tensor_literal,
)
from lossfuzz.harness.backends.modes import FN, Mode, register_mode
from lossfuzz.harness.deviations import Case, Deviation, identity_above, log_clamp
from lossfuzz.harness.registry import document, implementation


def to_torch(arr: np.ndarray):
    import torch

    arr = np.asarray(arr)
    if is_bfloat16(arr):
        return torch.from_numpy(np.asarray(arr.astype(np.float32))).to(torch.bfloat16)
    # np.ascontiguousarray makes a 0-d array 1-d; the reshape keeps a scalar a scalar
    return torch.from_numpy(np.ascontiguousarray(arr).reshape(arr.shape))


def from_torch(t) -> np.ndarray:
    """A tensor (on any device) as a NumPy array of the same dtype."""
    import ml_dtypes
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.to(torch.float32).numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def literal(arr: np.ndarray) -> str:
    return tensor_literal(
        arr,
        ints="torch.tensor({values}, dtype=torch.int64)",
        floats="torch.tensor({values}, dtype=torch.float64).to(torch.{dtype}).reshape({shape})",
    )


TORCH = Backend(
    "torch",
    ("torch",),
    "import torch\nimport torch.nn.functional as F",
    to_torch,
    from_torch,
    literal,
    "{v}.double().reshape(-1)[{i}].item()",
    "{v} = {v}.repeat({reps}{ones})[:{n}]",
    framework="torch",
)
TORCH_AUTOGRAD = Autodiff.of(
    TORCH,
    "torch.autograd",
    "{wrt} = {wrt}.requires_grad_()",
    "out = {call}\ngrad, = torch.autograd.grad(out, {wrt}, torch.ones_like(out))",
)
register_backend(TORCH, TORCH_AUTOGRAD)

# torch.compile falls back to eager without a word when a function recompiles too
# often; a compiled twin must never be eager in disguise, so that is an error here
TORCH_COMPILE_CONFIG = (
    "import torch._dynamo\n"
    "torch._dynamo.config.fail_on_recompile_limit_hit = True  # never fall back to eager\n"
    "torch._dynamo.config.recompile_limit = 64\n"
    "torch._dynamo.config.accumulated_recompile_limit = 100000"
)
_COMPILE = "loss_fn = torch.compile(loss_fn, dynamic=True, fullgraph=True)"


def _no_compiler() -> str | None:
    if shutil.which("g++") or shutil.which("c++"):
        return None
    return "torch.compile's Inductor backend needs a C++ compiler (g++): none on PATH"


TORCH_COMPILE = register_mode(
    Mode(
        "torch-compile",
        "torch",
        "torch.compile (Inductor, dynamic shapes)",
        TORCH,
        TORCH_COMPILE_CONFIG,
        FN + _COMPILE,
        FN + _COMPILE,
        TORCH_AUTOGRAD.prepare,
        TORCH_AUTOGRAD.body.replace("{call}", "loss_fn({params})"),  # on the compiled forward
        pad=False,  # dynamic shapes: one compilation serves every batch size above 1
        # Dynamo logs the exceptions it turns into errors (an index out of range) in full
        quiet="import logging, torch._logging\ntorch._logging.set_logs(all=logging.CRITICAL)",
        grad_how="torch.autograd",
        unavailable=_no_compiler,
    )
)


def _no_cuda() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device: torch.cuda.is_available() is False"
    return None


def _cuda_to(arr):
    return to_torch(arr).to("cuda")


TORCH_CUDA = register_mode(
    Mode(
        "torch-cuda",
        "torch",
        "PyTorch on CUDA",
        Backend(
            "torch-cuda",
            TORCH.requires,
            TORCH.imports,
            _cuda_to,
            from_torch,  # it moves the answer to the CPU
            lambda a: literal(a) + '.to("cuda")',
            TORCH.show,
            TORCH.tile,
        ),
        "",
        "",
        "",
        TORCH_AUTOGRAD.prepare,
        TORCH_AUTOGRAD.body,
        pad=False,
        quiet="",
        grad_how="torch.autograd",
        invoke="got = {call}",
        compiles=False,
        unavailable=_no_cuda,
    )
)

document(
    "torch",
    {
        ("sigmoid", "shape"): (
            "raise",
            "target has the same shape as the input",
            "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
        ),
        ("sigmoid", "labels"): (
            "raise",
            "target values are probabilities, between 0 and 1",
            "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
        ),
        ("sparse", "index"): (
            "raise",
            "each target is a class index in [0, C) (or ignore_index, -100)",
            "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html",
        ),
        ("sparse", "dtype"): (
            "raise",
            "class-index targets are integers (Long)",
            "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html",
        ),
        ("bce", "probs"): (
            "raise",
            "the input probabilities lie in [0, 1]",
            "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
        ),
    },
)

TORCH_BCE = "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html"
LOG_CLAMP = log_clamp(
    -100.0,
    what="BCELoss clamps its log outputs to >= -100, so a loss term never exceeds 100",
    source=TORCH_BCE,
    documented=True,
)
SOFTPLUS_THRESHOLD = identity_above(
    20.0,
    what="softplus reverts to the identity for beta * x > threshold (20), and its gradient to 1",
    source="https://pytorch.org/docs/stable/generated/torch.nn.Softplus.html",
    documented=True,
)
BACKWARD_EPSILON = 1e-12  # aten/src/ATen/native/Loss.cpp, binary_cross_entropy_backward


def _backward_denominator(case: Case) -> float:
    """max(p (1 - p), 1e-12) as the kernel computes it: in the dtype."""
    cast = case.fmt.cast
    p = float(cast(case.scalar("probs")))
    product = float(cast(float(cast(1.0 - p)) * p))
    return max(product, float(cast(BACKWARD_EPSILON)))


def _backward_acts(case: Case) -> bool:
    p = case.scalar("probs")
    return float(case.fmt.cast(float(case.fmt.cast(1.0 - p)) * p)) < float(
        case.fmt.cast(BACKWARD_EPSILON)
    )


def _backward_formula(case: Case):
    p, z = case.scalar("probs"), case.scalar("labels")
    denominator = _backward_denominator(case)
    if denominator == 0:
        return mpmath.nan if p == z else mpmath.inf * (1 if p > z else -1)
    with mpmath.workprec(200):
        return (mpmath.mpf(p) - mpmath.mpf(z)) / mpmath.mpf(denominator)


BACKWARD_CLAMP = Deviation(
    "the backward of binary_cross_entropy divides by max(p (1 - p), 1e-12), so it is finite "
    "at p = 0 and p = 1 (the 'linear backward' the log clamp buys; the 1e-12 is in the "
    "source, not the documentation)",
    "aten/src/ATen/native/Loss.cpp (binary_cross_entropy_backward, EPSILON)",
    False,
    _backward_acts,
    _backward_formula,
    quantity="grad",
)


def reductions(call: str) -> dict:
    """The call with reduction='mean' and 'sum' in place of 'none'."""
    return {r: call.replace("reduction='none'", f"reduction='{r}'") for r in ("mean", "sum")}


def reducible(impl_id: str, *, call: str, **kwargs):
    """A loss impl, with its reduced calls."""
    return implementation(impl_id, call=call, reduced=reductions(call), **kwargs)


reducible(
    "torch:binary_cross_entropy_with_logits",
    doc=(
        "'This loss combines a Sigmoid layer and the BCELoss in one single class. This version is"
        " more numerically stable than using a plain Sigmoid followed by a BCELoss'",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
    ),
    loss="sigmoid_cross_entropy_with_logits",
    call="F.binary_cross_entropy_with_logits(logits, labels, reduction='none')",
)
reducible(
    "torch:binary_cross_entropy_with_logits_pos_weight",
    doc=(
        "pos_weight weighs the positive term of BCEWithLogitsLoss; the same stability is promised",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
    ),
    loss="weighted_sigmoid_cross_entropy_with_logits",
    call="F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction='none')",  # noqa: E501
)
reducible(
    "torch:binary_cross_entropy",
    doc=(
        "-[y log x + (1 - y) log(1 - x)], with each log clamped to >= -100",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
    ),
    loss="binary_crossentropy",
    call="F.binary_cross_entropy(probs, labels, reduction='none')",
    deviations=(LOG_CLAMP, BACKWARD_CLAMP),
)
reducible(
    "torch:cross_entropy",
    doc=(
        "the cross entropy loss between input logits and target class indices (log_softmax "
        "followed by nll_loss)",
        "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html",
    ),
    loss="sparse_softmax_cross_entropy_with_logits",
    call="F.cross_entropy(logits, labels, reduction='none', label_smoothing=label_smoothing)",
    params=("label_smoothing",),
)
reducible(
    "torch:cross_entropy_probs",
    doc=(
        "the cross entropy loss between input logits and target class probabilities",
        "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html",
    ),
    loss="softmax_cross_entropy_with_logits",
    call="F.cross_entropy(logits, labels, reduction='none', label_smoothing=label_smoothing)",
    params=("label_smoothing",),
)
reducible(
    "torch:nll_loss_log_softmax",
    doc=(
        "nll_loss of log_softmax: 'log_softmax ... is mathematically equivalent to "
        "log(softmax(x)), but doing these two operations separately is slower and numerically "
        "unstable'",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.log_softmax.html",
    ),
    loss="sparse_softmax_cross_entropy_with_logits",
    call="F.nll_loss(F.log_softmax(logits, dim=-1), labels, reduction='none')",
)
# what users write on top of the library: probabilities from sigmoid, then BCE on them
# (no deviation is excused here: the log clamp acts on a rounded probability)
reducible(
    "torch:bce_of_sigmoid",
    loss="sigmoid_cross_entropy_with_logits",
    call="F.binary_cross_entropy(torch.sigmoid(logits), labels, reduction='none')",
)
implementation(
    "torch:softplus", loss="softplus", call="F.softplus(logits)", deviations=(SOFTPLUS_THRESHOLD,)
)
implementation("torch:logsigmoid", loss="log_sigmoid", call="F.logsigmoid(logits)")
implementation("torch:sigmoid", loss="sigmoid", call="torch.sigmoid(logits)")
implementation("torch:logsumexp", loss="logsumexp", call="torch.logsumexp(logits, dim=axis)")
implementation("torch:log_softmax", loss="log_softmax", call="F.log_softmax(logits, dim=axis)")
implementation("torch:softmax", loss="softmax", call="F.softmax(logits, dim=axis)")
