"""PyTorch's losses and building blocks (torch.nn.functional), eager mode on the CPU.

Class-axis losses receive (N, K) logits with the classes last.
"""

from __future__ import annotations

import math

from lossfuzz.harness.registry import Deviation, implementation

LOG_CLAMP = Deviation(
    "BCELoss clamps its log outputs to >= -100, so a loss term never exceeds 100",
    "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
    lambda inputs, got, exact: math.isfinite(got) and got <= 100.5 and exact >= 99.0,
)
SOFTPLUS_THRESHOLD = Deviation(
    "softplus reverts to the identity for beta * x > threshold (20), and its gradient to 1",
    "https://pytorch.org/docs/stable/generated/torch.nn.Softplus.html",
    lambda inputs, got, exact: float(inputs["logits"].astype("float64").max()) > 20,
    quantity="*",
)
BACKWARD_CLAMP = Deviation(
    "the backward of binary_cross_entropy divides by max(p (1 - p), 1e-12), the 'linear "
    "backward' that the log clamp buys, so it is finite at p = 0 and p = 1",
    "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html; EPSILON in "
    "aten/src/ATen/native/Loss.cpp (binary_cross_entropy_backward)",
    lambda inputs, got, exact: (
        math.isfinite(got)
        and bool((lambda p: (p * (1 - p) < 1e-12).any())(inputs["probs"].astype("float64")))
    ),
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
    loss="sigmoid_cross_entropy_with_logits",
    call="F.binary_cross_entropy_with_logits(logits, labels, reduction='none')",
)
reducible(
    "torch:binary_cross_entropy_with_logits_pos_weight",
    loss="weighted_sigmoid_cross_entropy_with_logits",
    call="F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight, reduction='none')",  # noqa: E501
)
reducible(
    "torch:binary_cross_entropy",
    loss="binary_crossentropy",
    call="F.binary_cross_entropy(probs, labels, reduction='none')",
    deviations=(LOG_CLAMP, BACKWARD_CLAMP),
)
reducible(
    "torch:cross_entropy",
    loss="sparse_softmax_cross_entropy_with_logits",
    call="F.cross_entropy(logits, labels, reduction='none', label_smoothing=label_smoothing)",
    params=("label_smoothing",),
)
reducible(
    "torch:cross_entropy_probs",
    loss="softmax_cross_entropy_with_logits",
    call="F.cross_entropy(logits, labels, reduction='none', label_smoothing=label_smoothing)",
    params=("label_smoothing",),
)
reducible(
    "torch:nll_loss_log_softmax",
    loss="sparse_softmax_cross_entropy_with_logits",
    call="F.nll_loss(F.log_softmax(logits, dim=-1), labels, reduction='none')",
)
implementation(
    "torch:softplus", loss="softplus", call="F.softplus(logits)", deviations=(SOFTPLUS_THRESHOLD,)
)
implementation("torch:logsigmoid", loss="log_sigmoid", call="F.logsigmoid(logits)")
implementation("torch:sigmoid", loss="sigmoid", call="torch.sigmoid(logits)")
implementation("torch:logsumexp", loss="logsumexp", call="torch.logsumexp(logits, dim=axis)")
implementation("torch:log_softmax", loss="log_softmax", call="F.log_softmax(logits, dim=axis)")
implementation("torch:softmax", loss="softmax", call="F.softmax(logits, dim=axis)")
