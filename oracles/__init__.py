"""lossfuzz's oracle: exact cross-entropy losses, correctly rounded to a float format.

    >>> from lossfuzz import oracles
    >>> oracles.reference("sigmoid_cross_entropy_with_logits", "float32", logits=-50.0, labels=0.0)
    array(1.9287499e-22, dtype=float32)

See DESIGN.md (oracle contract) and ``interval.py`` for how rounding is decided.
"""

from lossfuzz.oracles.api import (
    DomainError,
    Evaluation,
    cast_inputs,
    evaluate,
    evaluate_gradient,
    exact,
    gradient,
    reference,
)
from lossfuzz.oracles.formats import DTYPES, FORMATS, Format, get_format, round_mpf
from lossfuzz.oracles.interval import OracleInconsistent, OracleUndecided
from lossfuzz.oracles.registry import LOSSES, Loss, UnknownName, get_loss

__all__ = [
    "DTYPES",
    "FORMATS",
    "LOSSES",
    "DomainError",
    "Evaluation",
    "Format",
    "Loss",
    "OracleInconsistent",
    "OracleUndecided",
    "UnknownName",
    "cast_inputs",
    "evaluate",
    "evaluate_gradient",
    "exact",
    "gradient",
    "get_format",
    "get_loss",
    "losses",
    "reference",
    "round_mpf",
]


def losses() -> dict:
    """Every defined loss, variant and building block, by id."""
    from lossfuzz.oracles import elementwise, softmax  # noqa: F401  (fill the table)

    return dict(LOSSES)
