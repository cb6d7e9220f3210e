"""SciPy's special functions and scikit-learn's log_loss, where they compute our losses."""

from __future__ import annotations

from lossfuzz.harness.deviations import probability_clip
from lossfuzz.harness.registry import implementation

FLOAT32_64 = ("float32", "float64")  # SciPy computes in float32 or float64 only

implementation(
    "scipy:log_expit",
    loss="log_sigmoid",
    call="log_expit(logits)",
    imports="from scipy.special import log_expit",
    requires=("scipy",),
    dtypes=FLOAT32_64,
)
implementation(
    "scipy:expit",
    loss="sigmoid",
    call="expit(logits)",
    imports="from scipy.special import expit",
    requires=("scipy",),
    dtypes=FLOAT32_64,
)
implementation(
    "scipy:logsumexp",
    loss="logsumexp",
    call="logsumexp(logits, axis=axis)",
    imports="from scipy.special import logsumexp",
    requires=("scipy",),
    dtypes=FLOAT32_64,
)
implementation(
    "scipy:xlogy_categorical",
    loss="categorical_crossentropy",
    call="-xlogy(labels, probs).sum(axis=axis)",
    imports="from scipy.special import xlogy",
    requires=("scipy",),
    dtypes=FLOAT32_64,
)
SKLEARN_CLIP = probability_clip(
    lambda fmt: 2.0 ** (1 - fmt.precision),
    lambda fmt: 1 - 2.0 ** (1 - fmt.precision),
    loss="sparse_categorical_crossentropy",
    what="y_proba is clipped to [eps, 1 - eps], eps the machine epsilon of its dtype",
    source="https://scikit-learn.org/stable/modules/generated/sklearn.metrics.log_loss.html",
    documented=True,
)
# scikit-learn 1.9 neither renormalises probabilities (it warns) nor takes one class
implementation(
    "sklearn:log_loss",
    loss="sparse_categorical_crossentropy",
    call=(
        "np.array([log_loss([k], row[None], labels=list(range(probs.shape[-1])))"
        " for k, row in zip(labels.tolist(), probs.reshape(-1, probs.shape[-1]))])"
    ),
    imports="from sklearn.metrics import log_loss",
    requires=("sklearn",),
    dtypes=FLOAT32_64,
    deviations=(SKLEARN_CLIP,),
    min_classes=2,
)
