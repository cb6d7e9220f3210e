"""SciPy's special functions and scikit-learn's log_loss, where they compute our losses."""

from __future__ import annotations

import numpy as np

from harness.backends.convert import rows
from harness.registry import implementation

F64 = ("float64",)  # these libraries compute in float64 (or float32 at most)


@implementation(
    "scipy:log_expit",
    loss="log_sigmoid",
    dtypes=("float32", "float64"),
    requires=("scipy",),
    doc="scipy.special.log_expit(logits)",
)
def log_expit(inputs, dtype):
    from scipy.special import log_expit

    return np.asarray(log_expit(inputs["logits"]))


@implementation(
    "scipy:expit",
    loss="sigmoid",
    dtypes=("float32", "float64"),
    requires=("scipy",),
    doc="scipy.special.expit(logits)",
)
def expit(inputs, dtype):
    from scipy.special import expit

    return np.asarray(expit(inputs["logits"]))


@implementation(
    "scipy:logsumexp",
    loss="logsumexp",
    dtypes=("float32", "float64"),
    requires=("scipy",),
    doc="scipy.special.logsumexp(logits, axis=axis)",
)
def logsumexp(inputs, dtype):
    from scipy.special import logsumexp

    return np.asarray(logsumexp(inputs["logits"], axis=inputs["axis"]))


@implementation(
    "scipy:xlogy_categorical",
    loss="categorical_crossentropy",
    dtypes=("float32", "float64"),
    requires=("scipy",),
    doc="-scipy.special.xlogy(labels, probs).sum(axis)",
)
def xlogy_categorical(inputs, dtype):
    from scipy.special import xlogy

    return np.asarray(-xlogy(inputs["labels"], inputs["probs"]).sum(axis=inputs["axis"]))


@implementation(
    "sklearn:log_loss",
    loss="sparse_categorical_crossentropy_renormalized",
    dtypes=F64,
    requires=("sklearn",),
    doc="sklearn.metrics.log_loss([k], [probs], labels=range(K)) per row",
)
def sklearn_log_loss(inputs, dtype):
    from sklearn.metrics import log_loss

    p, batch = rows(inputs, "probs")
    ks = np.asarray(inputs["labels"]).reshape(-1)
    labels = list(range(p.shape[1]))
    out = [log_loss([k], [row], labels=labels) for k, row in zip(ks, p)]
    return np.asarray(out, dtype=np.float64).reshape(batch)
