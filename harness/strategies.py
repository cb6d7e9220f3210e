"""Hypothesis strategies for loss inputs, in the Hypothesis style.

``from_loss(loss, dtype=...)`` draws one batch of inputs for a loss: elementwise
losses get 1-D arrays, class-axis losses (N, K) arrays with the classes last.
Values are floats of the dtype, drawn from a mix of regimes:

- any float of the dtype, both signs, subnormals, +-0 (and +-inf, NaN when allowed);
- dense clusters within a few ULPs of each dtype's danger points: where exp
  overflows (11.09 float16, 88.72 float32/bfloat16, 709.78 float64), where exp
  underflows to subnormals and to 0, and their negatives;
- moderate values, where a loss should simply be accurate;
- labels hard (0, 1), soft, and one ULP from 0 and from 1; probabilities at and
  next to 0 and 1;
- class counts from 1 (the seeds' NLABELS = 1) up to ``max_classes``; rows with
  huge spreads, ties, and -inf masked entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lossfuzz.harness.ulp import step
from lossfuzz.oracles import get_format, get_loss
from lossfuzz.oracles.formats import Format


def danger_points(fmt: Format) -> list[float]:
    """Where exp and log of this format change behaviour, both signs."""
    base = [
        fmt.overflow_threshold,  # exp overflows past it
        fmt.underflow_threshold,  # exp rounds to 0 below it
        math.log(fmt.min_normal),  # exp turns subnormal below it
        math.log(2.0) * fmt.precision,  # exp(-x) falls below an ulp of 1
        1.0,
        0.0,
    ]
    return sorted({float(fmt.cast(s * b)) for b in base for s in (1.0, -1.0)})


def floats_of(dtype: str, *, allow_nan: bool = False, allow_infinity: bool = False):
    """Any float of ``dtype``: all exponents, both signs, subnormals and +-0."""
    fmt = get_format(dtype)
    if dtype == "bfloat16":
        raw = st.integers(0, 0xFFFF).map(
            lambda b: float(np.array(b, np.uint16).view(fmt.numpy_dtype))
        )
    else:
        raw = st.floats(width=fmt.bits, allow_nan=allow_nan, allow_infinity=allow_infinity)
    return raw.filter(
        lambda v: (allow_nan or not math.isnan(v)) and (allow_infinity or not math.isinf(v))
    )


def logits(dtype: str, *, allow_nan: bool = False, allow_infinity: bool = True):
    """Logits from every regime, weighted towards the danger points."""
    fmt = get_format(dtype)
    near = st.tuples(st.sampled_from(danger_points(fmt)), st.integers(-64, 64)).map(
        lambda p: step(p[0], fmt, p[1])
    )
    moderate = st.floats(-40.0, 40.0).map(lambda v: float(fmt.cast(v)))
    specials = [0.0, -0.0, fmt.min_subnormal, -fmt.min_subnormal, fmt.max_finite, -fmt.max_finite]
    if allow_infinity:
        specials += [math.inf, -math.inf]
    if allow_nan:
        specials.append(math.nan)
    drawn = st.one_of(
        near,
        floats_of(dtype, allow_nan=allow_nan, allow_infinity=allow_infinity),
        moderate,
        st.sampled_from(specials),
    )
    if allow_infinity:
        return drawn
    return drawn.filter(math.isfinite)  # a step past the largest float is inf


def unit_interval(dtype: str):
    """Values in [0, 1]: the ends, one ULP from each end, tiny and soft values."""
    fmt = get_format(dtype)
    one_below = step(1.0, fmt, -1)
    return st.one_of(
        st.sampled_from([0.0, 1.0, 0.5, fmt.min_subnormal, one_below]),
        st.tuples(st.sampled_from([0.0, 1.0]), st.integers(1, 64)).map(
            lambda p: step(p[0], fmt, p[1] if p[0] == 0 else -p[1])
        ),
        st.floats(0.0, 1.0).map(lambda v: float(fmt.cast(v))),
    )


def _rows(dtype: str, k: int, n: int, *, allow_infinity: bool):
    """n rows of k logits: arbitrary, one dominant entry, ties, or -inf masks."""
    fmt = get_format(dtype)
    entry = logits(dtype, allow_infinity=allow_infinity)
    arbitrary = st.lists(entry, min_size=k, max_size=k)
    spread = st.tuples(
        entry, st.integers(0, k - 1), st.sampled_from([0.0, -1e4, -fmt.max_finite])
    ).map(lambda t: [t[0] if i == t[1] else float(fmt.cast(t[2])) for i in range(k)])
    ties = entry.map(lambda v: [v] * k)
    masked = st.tuples(arbitrary, st.lists(st.booleans(), min_size=k, max_size=k)).map(
        lambda t: [-math.inf if m else v for v, m in zip(*t)]
    )
    kinds = [arbitrary, spread, ties] + ([masked] if allow_infinity else [])
    return st.lists(st.one_of(kinds), min_size=n, max_size=n)


def _soft_label_rows(dtype: str, k: int, n: int, labels: str = "any"):
    fmt = get_format(dtype)

    def normalise(ws):
        total = sum(ws)
        return [float(fmt.cast(w / total)) for w in ws] if total > 0 else [1.0] + [0.0] * (k - 1)

    one_hot = st.integers(0, k - 1).map(lambda i: [1.0 if j == i else 0.0 for j in range(k)])
    soft = st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k).map(normalise)
    if labels == "soft" and k > 1:
        soft = soft.filter(lambda row: max(row) < 1.0)
    row = {"any": st.one_of(one_hot, soft), "hard": one_hot, "soft": soft}[labels]
    return st.lists(row, min_size=n, max_size=n)


def _prob_rows(dtype: str, k: int, n: int):
    fmt = get_format(dtype)

    def normalise(ws):
        total = sum(ws)
        return [float(fmt.cast(w / total)) if total > 0 else 1.0 / k for w in ws]

    raw = st.lists(st.one_of(unit_interval(dtype), st.floats(0.0, 1.0)), min_size=k, max_size=k)
    return st.lists(st.one_of(raw.map(normalise), raw), min_size=n, max_size=n)


LABELS = ("any", "hard", "soft")  # labels 0 and 1 (one-hot rows), strictly between, or both


@dataclass(frozen=True)
class Scope:
    """The inputs a loss's contract covers: special values or finite ones only, hard or
    soft labels or both, and the fewest classes a row may have."""

    allow_infinity: bool = True  # False: finite inputs only (no infinity, NaN or mask)
    labels: str = "any"
    min_classes: int = 1

    def __post_init__(self):
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {', '.join(LABELS)}, not {self.labels!r}")
        if not isinstance(self.min_classes, int) or self.min_classes < 1:
            raise ValueError(f"min_classes must be an integer >= 1, not {self.min_classes!r}")


EVERYTHING = Scope()


def _labels(dtype: str, labels: str):
    hard = st.sampled_from([0.0, 1.0])
    soft = unit_interval(dtype)
    if labels == "hard":
        return hard
    if labels == "soft":
        return soft.filter(lambda v: 0.0 < v < 1.0)
    return st.one_of(hard, soft)


@st.composite
def _batch(
    draw, loss, dtype, max_batch, max_classes, label_smoothing, allow_infinity, min_classes, labels
):
    spec = get_loss(loss)
    fmt = get_format(dtype)
    arr = lambda values: np.asarray(values, dtype=np.float64).astype(fmt.numpy_dtype)  # noqa: E731
    out: dict = {}
    if spec.shape == "elementwise":
        n = draw(st.integers(1, max_batch))
        if spec.primary == "logits":
            out["logits"] = arr(
                draw(st.lists(logits(dtype, allow_infinity=allow_infinity), min_size=n, max_size=n))
            )
        else:
            out["probs"] = arr(draw(st.lists(unit_interval(dtype), min_size=n, max_size=n)))
        if spec.labels:
            out["labels"] = arr(draw(st.lists(_labels(dtype, labels), min_size=n, max_size=n)))
        if "pos_weight" in spec.params:
            weight = st.one_of(st.sampled_from([0.0, 1.0, 2.0]), st.floats(0.0, 1e4))
            out["pos_weight"] = arr(draw(st.lists(weight, min_size=n, max_size=n)))
    else:
        k = draw(st.one_of(st.sampled_from([1, 2, 3, 10]), st.integers(1, max_classes)))
        k = max(k, min_classes)
        n = draw(st.integers(1, max(1, max_batch // max(1, k // 8))))
        if spec.primary == "logits":
            out["logits"] = arr(draw(_rows(dtype, k, n, allow_infinity=allow_infinity)))
        else:
            out["probs"] = arr(draw(_prob_rows(dtype, k, n)))
        if spec.labels == "dense":
            out["labels"] = arr(draw(_soft_label_rows(dtype, k, n, labels)))
        elif spec.labels == "sparse":
            out["labels"] = np.asarray(
                draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64
            )
    if label_smoothing and "label_smoothing" in spec.params:
        out["label_smoothing"] = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
    return out


def from_loss(
    loss: str,
    *,
    dtype: str,
    max_batch: int = 16,
    max_classes: int = 64,
    label_smoothing: bool = False,
    allow_infinity: bool = True,
    min_classes: int = 1,
    labels: str = "any",
):
    """A strategy for one batch of valid inputs to ``loss`` in ``dtype``.

    ``label_smoothing`` also draws a smoothing factor, for impls that take one;
    class-axis rows have ``min_classes`` to ``max_classes`` classes; ``allow_infinity``
    False draws finite logits only (no infinity, no NaN, no masked entries);
    ``labels`` "hard" draws labels 0 and 1 (one-hot rows), "soft" strictly between.
    """
    get_loss(loss)
    get_format(dtype)
    if labels not in LABELS:
        raise InvalidArgument(f"labels={labels!r} must be one of {', '.join(LABELS)}")
    if max_batch < 1 or max_classes < 1 or not 1 <= min_classes <= max_classes:
        raise InvalidArgument(
            f"max_batch={max_batch}, min_classes={min_classes} and max_classes={max_classes} "
            "must be >= 1, with min_classes <= max_classes"
        )
    return _batch(
        loss, dtype, max_batch, max_classes, label_smoothing, allow_infinity, min_classes, labels
    )
