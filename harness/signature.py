"""Root-cause signatures: which regime of inputs a wrong answer came from.

Two wrong answers of one class are taken to share a cause when their inputs sit in
the same regime: the same kind of each input element (an infinity, NaN, zero, a
subnormal, or a band of magnitudes bounded by where the dtype's exp and log change
behaviour), the same kind of label, and for a row which entries are extreme or
masked and what their labels are. A cell keeps the worst case of each (class,
signature) group, so the NaN at (logit -inf, label 0) and the NaN at (+inf, 1) are
two findings, as they are two bugs.

Signatures are tuples of short strings ("logits=-large", "labels=0"); ``text``
joins them for people. The bands for a logit x of a dtype with precision p:

    tiny      |x| < 2**-p              1 + x rounds to 1
    small     |x| < 1
    moderate  |x| < p ln 2             exp(-|x|) is still above an ulp of 1
    large     |x| < log(max finite)    exp(|x|) is still finite
    huge      beyond                   exp(|x|) overflows
"""

from __future__ import annotations

import math

import numpy as np

from lossfuzz.oracles.formats import Format


def magnitude(x: float, fmt: Format) -> str:
    """The band of |x| (see the module), or a special value's name."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else "+"
    a = abs(x)
    if a < fmt.min_normal:
        band = "subnormal"
    elif a < 2.0**-fmt.precision:
        band = "tiny"
    elif a < 1:
        band = "small"
    elif a < fmt.precision * math.log(2):
        band = "moderate"
    elif a < fmt.overflow_threshold:
        band = "large"
    else:
        band = "huge"
    return sign + band


def probability(p: float, fmt: Format) -> str:
    """0, 1, nan, or how close p is to either end (below 1/2: its own size; above: 1 - p's)."""
    if math.isnan(p):
        return "nan"
    if p in (0.0, 1.0):
        return str(int(p))
    if p <= 0.5:
        if p < fmt.min_normal:
            return "subnormal"
        return "tiny" if p < 2.0**-fmt.precision else "below 1/2"
    # 1 - p is exact for p in [1/2, 1] (Sterbenz)
    return "one ulp below 1" if 1 - p <= 2.0**-fmt.precision else "above 1/2"


def label(z: float, smoothed: bool) -> str:
    if math.isnan(z):
        return "nan"
    kind = "0" if z == 0 else "1" if z == 1 else "between"
    return kind + (", smoothed" if smoothed else "")


def _scalar(v) -> float:
    return float(np.asarray(v, dtype=np.float64).ravel()[0])


def signature(spec, fmt: Format, inputs: dict, index: int = 0, kind: str = "value") -> tuple:
    """The regime of a single case (a batch of one) at element ``index`` of its answer."""
    smoothed = bool(inputs.get("label_smoothing"))
    primary = np.asarray(inputs[spec.primary], dtype=np.float64)
    if kind == "reduction":
        describe = magnitude if spec.primary == "logits" else probability
        rows = sorted({describe(float(v), fmt) for v in primary.ravel().tolist()})
        return (f"{spec.primary}={'|'.join(rows)}",)
    if spec.shape == "elementwise":
        parts = []
        if spec.primary == "logits":
            parts.append(f"logits={magnitude(_scalar(primary), fmt)}")
        else:
            parts.append(f"probs={probability(_scalar(primary), fmt)}")
        if spec.labels:
            parts.append(f"labels={label(_scalar(inputs['labels']), smoothed)}")
        if "pos_weight" in spec.params:
            q = _scalar(inputs["pos_weight"])
            parts.append("pos_weight=" + ("0" if q == 0 else "nan" if math.isnan(q) else ">0"))
        return tuple(parts)
    return _row_signature(spec, fmt, inputs, index, kind, smoothed)


def _row_signature(spec, fmt, inputs, index, kind, smoothed) -> tuple:
    axis = inputs.get("axis", -1)
    row = np.moveaxis(np.asarray(inputs[spec.primary], dtype=np.float64), axis, -1).reshape(-1)
    k = row.size
    parts = [f"classes={k if k <= 2 else 'few' if k <= 16 else 'many'}"]
    labels = None
    if spec.labels == "sparse":
        target = int(np.asarray(inputs["labels"]).ravel()[0])
        labels = np.zeros(k)
        labels[target] = 1.0
    elif spec.labels == "dense":
        labels = np.moveaxis(np.asarray(inputs["labels"], dtype=np.float64), axis, -1).reshape(-1)
    if spec.primary == "logits":
        finite = row[np.isfinite(row)]
        for name, mask in (
            ("+inf", row == np.inf),
            ("-inf", row == -np.inf),
            ("nan", np.isnan(row)),
        ):
            if mask.any():
                carries = labels is not None and bool((labels[mask] != 0).any())
                parts.append(f"{name} entries" + (" with label mass" if carries else ""))
        if finite.size > 1:
            spread = float(finite.max()) - float(finite.min())  # inf beyond 1.8e308, silently
            parts.append(f"spread={magnitude(spread, fmt)[1:]}")
        if labels is not None and finite.size:
            hot = np.flatnonzero(labels != 0)
            top = float(finite.max())
            gaps = [top - float(row[i]) for i in hot if math.isfinite(row[i])]
            if gaps:
                parts.append(
                    f"target below max={magnitude(max(gaps), fmt)[1:] if max(gaps) else '0'}"
                )
    else:
        kinds = sorted({probability(float(p), fmt) for p in row.tolist()})
        parts.append(f"probs={'|'.join(kinds)}")
        if labels is not None:
            hot = [probability(float(row[i]), fmt) for i in np.flatnonzero(labels != 0)]
            parts.append(f"target probs={'|'.join(sorted(set(hot)))}")
    if labels is not None and spec.labels == "dense":
        nonzero = int((labels != 0).sum())
        shape = "one-hot" if nonzero == 1 and labels.max() == 1 else "soft"
        parts.append(f"labels={shape}" + (", smoothed" if smoothed else ""))
    elif smoothed:
        parts.append("labels=smoothed")
    if kind == "grad" or spec.shape == "rowwise":
        parts.append(f"entry={_entry(row, labels, index, fmt)}")
    return tuple(parts)


def _entry(row, labels, index, fmt) -> str:
    """What the element ``index`` of a row is: the target, the maximum, masked, or another."""
    if not 0 <= index < row.size:
        return "?"
    x = row[index]
    if labels is not None and labels[index] != 0:
        return "target"
    if not math.isfinite(x):
        return magnitude(x, fmt)
    finite = row[np.isfinite(row)]
    return "max" if finite.size and x == finite.max() else "other"


def text(parts: tuple) -> str:
    """``logits=-large, labels=0``."""
    return ", ".join(parts)
