"""Score an implementation's answer against the oracle: ULP error and finding class.

The classes are DESIGN.md's. ``classify`` decides them in a fixed order so that
one answer gets one class: NaN before infinities before signs before size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
from lossfuzz.harness.ulp import abs_error, ulp_error
from lossfuzz.oracles.formats import Format

# Worst last: a cell is coloured by the worst class among its cases.
CLASSES = (
    "exact",
    "ok",
    "inaccurate",
    "underflow",
    "sign",
    "overflow",
    "missed_inf",
    "missed_nan",
    "nan",
    "error",
    "timeout",
    "crash",
)
SEVERITY = {c: i for i, c in enumerate(CLASSES)}
FINDING_CLASSES = CLASSES[2:]  # everything but exact and ok
DEFAULT_TOLERANCE = 4.0  # ULPs; a cell's policy may set its own

EXPLANATIONS = {
    "exact": "the answer is the correctly rounded value, bit for bit",
    "ok": "within the cell's ULP tolerance of the exact value",
    "inaccurate": "finite, but further from the exact value than the tolerance allows",
    "underflow": "the answer is 0 although the exact value rounds to a nonzero number "
    "further away than the tolerance",
    "sign": "the answer has the wrong sign, or a loss came out negative",
    "overflow": "the answer is infinite although the exact value is finite in this dtype",
    "missed_inf": "the exact value is infinite (e.g. -log 0) but the answer is finite",
    "missed_nan": "the exact value is undefined (NaN) but the answer is a number",
    "nan": "the answer is NaN although the exact value is defined",
    "error": "the implementation raised an exception on valid input",
    "timeout": "the implementation did not answer within the time limit",
    "crash": "the implementation killed its process (abort, segfault, out of memory)",
}


def worst(classes) -> str:
    return max(classes, key=SEVERITY.__getitem__, default="exact")


@dataclass(frozen=True)
class Score:
    cls: str
    ulp: float
    abs_error: float


def _same_bits(y: float, ref: float) -> bool:
    """Equal as values (signed zero aside), or both NaN."""
    return y == ref or (math.isnan(y) and math.isnan(ref))


def classify(
    y: float,
    exact: mpmath.mpf,
    reference: float,
    fmt: Format,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    is_loss: bool = False,
) -> Score:
    """Class, ULP error and absolute error of answer ``y`` (already a float of ``fmt``)."""
    y = float(y)
    reference = float(reference)
    ulp = ulp_error(y, exact, fmt)
    err = abs_error(y, exact)

    def score(cls: str) -> Score:
        return Score(cls, ulp, err)

    if mpmath.isnan(exact):
        return score("exact" if math.isnan(y) else "missed_nan")
    if math.isnan(y):
        return score("nan")
    if mpmath.isinf(exact):
        if y == float(exact):
            return score("exact")
        return score("sign" if math.isinf(y) else "missed_inf")
    if _same_bits(y, reference):
        return score("exact")
    if (y < 0 < exact) or (y > 0 > exact) or (is_loss and y < 0):
        return score("sign")
    if math.isinf(y):
        return score("overflow")
    if ulp <= tolerance:  # a zero one subnormal away from the exact value is accurate
        return score("ok")
    return score("underflow" if y == 0 and reference != 0 else "inaccurate")
