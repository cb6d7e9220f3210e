"""PyTorch's losses and building blocks (torch.nn.functional), eager mode on the CPU."""

from __future__ import annotations

import math

import numpy as np

from harness.backends.convert import from_torch, rows, to_torch
from harness.registry import Deviation, implementation

REQ = ("torch",)

LOG_CLAMP = Deviation(
    "BCELoss clamps its log outputs to >= -100, so a loss term never exceeds 100",
    "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
    lambda inputs, got, ref: math.isfinite(got) and got <= 100.5 and ref >= 99.0,
)
SOFTPLUS_THRESHOLD = Deviation(
    "softplus reverts to the identity for beta * x > threshold (20)",
    "https://pytorch.org/docs/stable/generated/torch.nn.Softplus.html",
    lambda inputs, got, ref: float(np.max(np.asarray(inputs["logits"], dtype=np.float64))) > 20,
)


def _indices(inputs):
    """Class indices flattened to match ``rows``' (N, K) logits."""
    return to_torch(np.asarray(inputs["labels"]).reshape(-1))


def _f():
    import torch.nn.functional as F

    return F


@implementation(
    "torch:binary_cross_entropy_with_logits",
    loss="sigmoid_cross_entropy_with_logits",
    requires=REQ,
    doc="F.binary_cross_entropy_with_logits(logits, labels, reduction='none')",
)
def bce_with_logits(inputs, dtype):
    x, z = to_torch(inputs["logits"]), to_torch(inputs["labels"])
    return from_torch(_f().binary_cross_entropy_with_logits(x, z, reduction="none"))


@implementation(
    "torch:binary_cross_entropy_with_logits_pos_weight",
    loss="weighted_sigmoid_cross_entropy_with_logits",
    requires=REQ,
    doc="F.binary_cross_entropy_with_logits(logits, labels, pos_weight=q, reduction='none')",
)
def bce_with_logits_pos_weight(inputs, dtype):
    x, z = to_torch(inputs["logits"]), to_torch(inputs["labels"])
    q = to_torch(inputs["pos_weight"])
    return from_torch(_f().binary_cross_entropy_with_logits(x, z, pos_weight=q, reduction="none"))


@implementation(
    "torch:binary_cross_entropy",
    loss="binary_crossentropy",
    requires=REQ,
    deviations=(LOG_CLAMP,),
    doc="F.binary_cross_entropy(probs, labels, reduction='none')",
)
def binary_cross_entropy(inputs, dtype):
    p, z = to_torch(inputs["probs"]), to_torch(inputs["labels"])
    return from_torch(_f().binary_cross_entropy(p, z, reduction="none"))


@implementation(
    "torch:cross_entropy",
    loss="sparse_softmax_cross_entropy_with_logits",
    requires=REQ,
    params=("label_smoothing",),
    doc="F.cross_entropy(logits, class_indices, reduction='none', label_smoothing=e)",
)
def cross_entropy_indices(inputs, dtype):
    x, batch = rows(inputs, "logits")
    k = _indices(inputs)
    out = _f().cross_entropy(
        to_torch(x), k, reduction="none", label_smoothing=inputs.get("label_smoothing", 0.0)
    )
    return from_torch(out).reshape(batch)


@implementation(
    "torch:cross_entropy_probs",
    loss="softmax_cross_entropy_with_logits",
    requires=REQ,
    params=("label_smoothing",),
    doc="F.cross_entropy(logits, target_probabilities, reduction='none', label_smoothing=e)",
)
def cross_entropy_probs(inputs, dtype):
    x, batch = rows(inputs, "logits")
    z, _ = rows(inputs, "labels")
    out = _f().cross_entropy(
        to_torch(x),
        to_torch(z),
        reduction="none",
        label_smoothing=inputs.get("label_smoothing", 0.0),
    )
    return from_torch(out).reshape(batch)


@implementation(
    "torch:nll_loss_log_softmax",
    loss="sparse_softmax_cross_entropy_with_logits",
    requires=REQ,
    doc="F.nll_loss(F.log_softmax(logits, dim=-1), class_indices, reduction='none')",
)
def nll_log_softmax(inputs, dtype):
    F = _f()
    x, batch = rows(inputs, "logits")
    k = _indices(inputs)
    out = F.nll_loss(F.log_softmax(to_torch(x), dim=-1), k, reduction="none")
    return from_torch(out).reshape(batch)


@implementation(
    "torch:softplus",
    loss="softplus",
    requires=REQ,
    deviations=(SOFTPLUS_THRESHOLD,),
    doc="F.softplus(logits)",
)
def softplus(inputs, dtype):
    return from_torch(_f().softplus(to_torch(inputs["logits"])))


@implementation("torch:logsigmoid", loss="log_sigmoid", requires=REQ, doc="F.logsigmoid(logits)")
def logsigmoid(inputs, dtype):
    return from_torch(_f().logsigmoid(to_torch(inputs["logits"])))


@implementation("torch:sigmoid", loss="sigmoid", requires=REQ, doc="torch.sigmoid(logits)")
def sigmoid(inputs, dtype):
    import torch

    return from_torch(torch.sigmoid(to_torch(inputs["logits"])))


@implementation(
    "torch:logsumexp", loss="logsumexp", requires=REQ, doc="torch.logsumexp(logits, dim=-1)"
)
def logsumexp(inputs, dtype):
    import torch

    x, batch = rows(inputs, "logits")
    return from_torch(torch.logsumexp(to_torch(x), dim=-1)).reshape(batch)


def _rowwise(fn):
    def call(inputs, dtype):
        x = np.moveaxis(inputs["logits"], inputs["axis"], -1)
        out = from_torch(fn(to_torch(np.ascontiguousarray(x)), dim=-1))
        return np.moveaxis(out, -1, inputs["axis"])

    return call


implementation(
    "torch:log_softmax", loss="log_softmax", requires=REQ, doc="F.log_softmax(logits, dim=-1)"
)(_rowwise(lambda t, dim: _f().log_softmax(t, dim=dim)))
implementation("torch:softmax", loss="softmax", requires=REQ, doc="F.softmax(logits, dim=-1)")(
    _rowwise(lambda t, dim: _f().softmax(t, dim=dim))
)
