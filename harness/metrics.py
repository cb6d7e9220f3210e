"""Score an implementation's answer against the oracle: ULP error and finding class.

The classes are the design's. One rule order decides them, so that one answer gets
one class: NaN before infinities before signs before size. ``class_codes`` applies
it to whole arrays; the exact path (mpmath values), the fast path (bounded float64
values) and ``classify`` (one answer) all go through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import numpy as np

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
CODE = SEVERITY  # a class's code in the arrays of class_codes
FINDING_CLASSES = CLASSES[2:]  # everything but exact and ok
FAILURES = ("error", "timeout", "crash")  # the impl gave no answer
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


def same_answer(a: float, b: float) -> bool:
    """Equal, or both NaN: +0 and -0 agree (the exact class sets signed zero aside)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def class_codes(
    y: np.ndarray,
    reference: np.ndarray,
    ulp: np.ndarray,
    *,
    positive: np.ndarray,
    negative: np.ndarray,
    exact_nan: np.ndarray | bool = False,
    exact_inf: np.ndarray | float = 0.0,
    tolerance: float,
    is_loss: bool,
) -> np.ndarray:
    """The class code (an index into CLASSES) of each answer ``y``, by the one rule order:

    1. the exact value is NaN: exact if y is NaN, else missed_nan;
    2. y is NaN: nan;
    3. the exact value is an infinity (``exact_inf`` +-inf, else 0): exact if y is the
       same infinity, sign if the other, else missed_inf;
    4. y is the correctly rounded ``reference`` (signed zero aside): exact;
    5. y has the wrong sign (``positive``/``negative``: the exact value's sign where
       known), or a loss is negative: sign;
    6. y is infinite: overflow;
    7. within ``tolerance`` ULP: ok (a zero one subnormal from the exact value is accurate);
    8. y is 0 where the reference is not: underflow;
    9. else inaccurate.
    """
    y = np.asarray(y, dtype=np.float64)
    shape = y.shape
    exact_nan = np.broadcast_to(exact_nan, shape)
    exact_inf = np.broadcast_to(np.asarray(exact_inf, dtype=np.float64), shape)
    nan = np.isnan(y)
    inf_exact = exact_inf != 0
    wrong_sign = (y < 0) & positive | (y > 0) & negative | (y < 0) & is_loss
    # np.select takes the first rule that holds: the order above
    rules = [
        (exact_nan & nan, "exact"),
        (exact_nan, "missed_nan"),
        (nan, "nan"),
        (inf_exact & (y == exact_inf), "exact"),
        (inf_exact & np.isinf(y), "sign"),
        (inf_exact, "missed_inf"),
        (y == reference, "exact"),
        (wrong_sign, "sign"),
        (np.isinf(y), "overflow"),
        (ulp <= tolerance, "ok"),
        ((y == 0) & (reference != 0), "underflow"),
    ]
    return np.select(
        [m for m, _ in rules], [CODE[c] for _, c in rules], default=CODE["inaccurate"]
    ).astype(np.int8)


def exact_facts(exact: list[mpmath.mpf]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(NaN, infinity as +-inf else 0, positive, negative) of exact values."""
    nan = np.array([bool(mpmath.isnan(e)) for e in exact], dtype=bool)
    inf = np.array(
        [float(e) if not n and mpmath.isinf(e) else 0.0 for e, n in zip(exact, nan)],
        dtype=np.float64,
    )
    positive = np.array([not n and e > 0 for e, n in zip(exact, nan)], dtype=bool)
    negative = np.array([not n and e < 0 for e, n in zip(exact, nan)], dtype=bool)
    return nan, inf, positive, negative


def classify_exact(
    y, exact: list[mpmath.mpf], reference, fmt: Format, *, tolerance: float, is_loss: bool
) -> list[Score]:
    """The Score of each answer against exact (mpmath) values: ULP and absolute errors
    computed exactly, the class by ``class_codes``."""
    y = np.asarray(y, dtype=np.float64).ravel()
    ulp = [ulp_error(g, e, fmt) for g, e in zip(y.tolist(), exact)]
    err = [abs_error(g, e) for g, e in zip(y.tolist(), exact)]
    nan, inf, positive, negative = exact_facts(exact)
    codes = class_codes(
        y,
        np.asarray(reference, dtype=np.float64).ravel(),
        np.asarray(ulp, dtype=np.float64),
        positive=positive,
        negative=negative,
        exact_nan=nan,
        exact_inf=inf,
        tolerance=tolerance,
        is_loss=is_loss,
    )
    return [Score(CLASSES[c], u, a) for c, u, a in zip(codes.tolist(), ulp, err)]


def classify(
    y: float,
    exact: mpmath.mpf,
    reference: float,
    fmt: Format,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    is_loss: bool = False,
) -> Score:
    """Class, ULP error and absolute error of one answer ``y`` (already a float of ``fmt``)."""
    return classify_exact([y], [exact], [reference], fmt, tolerance=tolerance, is_loss=is_loss)[0]
