"""lossfuzz: numerical-stability fuzzing of cross-entropy losses against an exact oracle.

The public API (see docs/api.md)::

    import lossfuzz

    lossfuzz.reference("sigmoid_cross_entropy_with_logits", "float32", logits=-50.0, labels=0.0)
    lossfuzz.check(my_loss, loss="sigmoid_cross_entropy_with_logits", dtype="float32")
    results = lossfuzz.load_results("out/results.json")

The engine, the oracle and the reports are the subpackages ``lossfuzz.harness``,
``lossfuzz.oracles`` and ``lossfuzz.reports``. Importing lossfuzz imports no
machine-learning framework.
"""

from __future__ import annotations

import os as _os

__version__ = "0.2.0"

# In a source checkout the subpackages are the repository's top-level folders
# (harness/, oracles/, reports/), which the wheel installs under lossfuzz/ (setuptools'
# package-dir). Searching the checkout's root as well makes ``lossfuzz.harness`` resolve
# there too, with or without an editable install.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "harness")) and _os.path.isfile(
    _os.path.join(_root, "harness", "__init__.py")
):
    __path__.append(_root)  # noqa: F821  (a package's __path__)


from lossfuzz.harness.results import (  # noqa: E402
    Cell,
    CellKey,
    Finding,
    Quantity,
    Results,
    load_results,
)
from lossfuzz.oracles import (  # noqa: E402
    DomainError,
    OracleUndecided,
    exact,
    gradient,
    losses,
    reference,
)


def check(fn, *, loss: str, **options):
    """Fuzz ``fn`` against the oracle as an implementation of ``loss``; raise
    ``LossCheckFailed`` (an AssertionError) with every distinct failure and its
    reproducer. Options: dtype, max_ulp, budget, seed, allow_infinity, labels
    ("any", "hard", "soft"), quantity ("value", "grad"), framework ("numpy", "torch",
    "jax", "tf"), args ({input: parameter}), reduction ("none", "mean", "sum"),
    min_classes. See ``lossfuzz.harness.check.check``."""
    from lossfuzz.harness.check import check as _check

    return _check(fn, loss=loss, **options)


def __getattr__(name: str):
    if name == "LossCheckFailed":  # imports Hypothesis: only when asked for
        from lossfuzz.harness.check import LossCheckFailed

        return LossCheckFailed
    raise AttributeError(f"module 'lossfuzz' has no attribute {name!r}")


__all__ = [
    "Cell",
    "CellKey",
    "DomainError",
    "Finding",
    "LossCheckFailed",
    "OracleUndecided",
    "Quantity",
    "Results",
    "check",
    "exact",
    "gradient",
    "load_results",
    "losses",
    "reference",
]
