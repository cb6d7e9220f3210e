"""The oracle's public entry points: cast and check inputs, evaluate every element, round.

    reference(loss, dtype, **inputs) -> numpy array in dtype, correctly rounded
    exact(loss, dtype, **inputs)     -> object array of mpmath numbers
    evaluate(loss, dtype, **inputs)  -> both, from one evaluation

Inputs are first cast to ``dtype`` (the floats an implementation would receive);
class indices stay integers and ``axis`` selects the class axis (default -1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np
from mpmath.libmp import from_float, round_nearest

from lossfuzz.oracles import interval
from lossfuzz.oracles.formats import Format, get_format
from lossfuzz.oracles.registry import Loss, get_loss


class DomainError(ValueError):
    """An input outside the loss's domain (label 1.3, probability -0.1, class 7 of 5)."""


@dataclass(frozen=True)
class Evaluation:
    loss: Loss
    fmt: Format
    inputs: dict  # the cast inputs, as the implementation receives them
    exact: np.ndarray  # object array of mpmath.mpf
    reference: np.ndarray  # correctly rounded, in fmt.numpy_dtype


def cast_inputs(loss: str | Loss, dtype: str, **inputs) -> dict:
    """The inputs as the oracle (and an implementation) sees them: cast and checked.

    Floats become arrays of ``dtype``; sparse labels int64 arrays; label_smoothing a
    Python float holding the value cast to ``dtype``; axis an int.
    """
    spec = loss if isinstance(loss, Loss) else get_loss(loss)
    fmt = get_format(dtype)
    unknown = sorted(set(inputs) - set(spec.inputs))
    missing = [n for n in spec.inputs if n not in inputs and n not in ("axis", "label_smoothing")]
    if unknown or missing:
        parts = ([f"unexpected {', '.join(unknown)}"] if unknown else []) + (
            [f"missing {', '.join(missing)}"] if missing else []
        )
        raise TypeError(f"{spec.id} takes {', '.join(spec.inputs)}: {'; '.join(parts)}")
    out: dict = {spec.primary: _cast(inputs[spec.primary], fmt, spec.primary)}
    if spec.shape != "elementwise":
        axis = inputs.get("axis", -1)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"axis must be an int, got {axis!r}")
        out["axis"] = int(axis)
        if out[spec.primary].ndim == 0:
            raise DomainError(f"{spec.id} needs at least one axis of classes; got a scalar")
    if spec.labels == "dense":
        out["labels"] = _cast(inputs["labels"], fmt, "labels")
    elif spec.labels == "sparse":
        out["labels"] = _class_indices(inputs["labels"])
    if "pos_weight" in spec.params:
        out["pos_weight"] = _cast(inputs["pos_weight"], fmt, "pos_weight")
    if "label_smoothing" in spec.params:
        ls = float(fmt.cast(inputs.get("label_smoothing", 0.0)))
        if not 0.0 <= ls <= 1.0:
            raise DomainError(f"label_smoothing must lie in [0, 1]; got {ls!r}")
        out["label_smoothing"] = ls
    return out


def _cast(values, fmt: Format, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == fmt.numpy_dtype:
        return arr
    if arr.dtype.kind not in "biuf" and arr.dtype.name != "bfloat16":
        raise TypeError(f"{name} must be numbers; got an array of {arr.dtype}")
    return fmt.cast(arr)  # one rounding, from the exact float64


def _class_indices(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "f" or arr.dtype.name == "bfloat16":
        f = arr.astype(np.float64)
        if not np.all(np.isfinite(f) & (f == np.round(f))):
            raise DomainError("class indices must be integers")
        return f.astype(np.int64)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"class indices must be integers; got an array of {arr.dtype}")
    return arr.astype(np.int64)


def _raw(v) -> tuple:
    return from_float(float(v), 53, round_nearest)


def _fraction_labels(z: np.ndarray, what: str = "labels") -> list:
    """Exact label values as Fractions, NaN kept as None; DomainError outside [0, 1]."""
    out = []
    for v in z.astype(np.float64).ravel().tolist():
        if math.isnan(v):
            out.append(None)
        elif not 0.0 <= v <= 1.0:
            raise DomainError(f"{what} must lie in [0, 1]; got {v!r}")
        else:
            out.append(Fraction(v))
    return out


def check_elementwise_domain(spec: Loss, cast: dict) -> None:
    """The domain errors the exact path raises, checked over whole arrays (fast path)."""
    if spec.shape != "elementwise":  # rows: the axis, label shapes, class indices
        from lossfuzz.oracles.fast_rows import check_row_domain

        return check_row_domain(spec, cast)
    names = (
        [spec.primary]
        + (["labels"] if spec.labels else [])
        + [n for n in ("pos_weight",) if n in spec.params]
    )
    try:
        np.broadcast_shapes(*(np.shape(cast[n]) for n in names))
    except ValueError:
        shapes = ", ".join(f"{n} {np.shape(cast[n])}" for n in names)
        raise ValueError(f"{spec.id}: shapes do not broadcast: {shapes}") from None
    if spec.primary == "probs":
        check_probs(cast["probs"])
    if spec.labels:
        z = cast["labels"].astype(np.float64)
        bad = ~np.isnan(z) & ((z < 0) | (z > 1))
        if bad.any():
            raise DomainError(f"labels must lie in [0, 1]; got {float(z[bad].flat[0])!r}")
    if "pos_weight" in spec.params:
        q = cast["pos_weight"].astype(np.float64)
        bad = ~np.isnan(q) & ~((q >= 0) & (q < np.inf))
        if bad.any():
            raise DomainError(f"pos_weight must be finite and >= 0; got {float(q[bad].flat[0])!r}")


def check_probs(p: np.ndarray) -> None:
    f = p.astype(np.float64)
    bad = ~np.isnan(f) & ((f < 0) | (f > 1))
    if bad.any():
        raise DomainError(f"probs must lie in [0, 1]; got {float(f[bad].flat[0])!r}")


def _smooth(z: Fraction, eps: Fraction, k: int) -> Fraction:
    return z * (1 - eps) + eps / k if eps else z


def evaluate(loss: str | Loss, dtype: str, **inputs) -> Evaluation:
    """Exact and correctly rounded values of ``loss`` at ``inputs`` cast to ``dtype``."""
    spec = loss if isinstance(loss, Loss) else get_loss(loss)
    fmt = get_format(dtype)
    cast = cast_inputs(spec, dtype, **inputs)
    if spec.primary == "probs":
        check_probs(cast["probs"])
    per_entry = spec.shape == "rowwise"
    if spec.shape == "elementwise":
        results, shape = _elementwise(spec, cast, spec.fn, {})
    else:
        results, shape = _rows(spec, cast, spec.fn, per_entry, {})
    exact, rounded = _decide_all(results, shape, fmt)
    if per_entry:
        exact = np.moveaxis(exact, -1, cast["axis"])
        rounded = np.moveaxis(rounded, -1, cast["axis"])
    return Evaluation(spec, fmt, cast, exact, rounded.astype(fmt.numpy_dtype))


WRT = ("logits", "probs", "labels")


def evaluate_gradient(
    loss: str | Loss, wrt: str, dtype: str, *, scale: Fraction | None = None, **inputs
) -> Evaluation:
    """Exact and correctly rounded d loss / d ``wrt``, shaped like the ``wrt`` input.

    For a class-axis loss the gradient of each row's value with respect to each
    entry of that row; for label smoothing, the labels' chain rule included.
    ``scale`` (a positive Fraction) multiplies every derivative exactly, inside the
    enclosure: the gradient of the batch's mean is that of its sum times 1/N.
    """
    from lossfuzz.oracles.gradients import GRADIENTS

    spec = loss if isinstance(loss, Loss) else get_loss(loss)
    fn = GRADIENTS.get((spec.id, wrt))
    if fn is None:
        known = sorted(w for (lid, w) in GRADIENTS if lid == spec.id)
        raise ValueError(
            f"no gradient of {spec.id} with respect to {wrt!r}; "
            f"it has {', '.join(known) or 'none'} (of {', '.join(WRT)})"
        )
    fmt = get_format(dtype)
    cast = cast_inputs(spec, dtype, **inputs)
    if spec.primary == "probs":
        check_probs(cast["probs"])
    extra = {"eps": Fraction(cast.get("label_smoothing", 0.0))} if wrt == "labels" else {}
    if spec.shape == "elementwise":
        results, shape = _elementwise(spec, cast, fn, extra)
        exact, rounded = _decide_all(_scaled(results, scale), shape, fmt)
    else:
        results, shape = _rows(spec, cast, fn, True, extra)
        exact, rounded = _decide_all(_scaled(results, scale), shape, fmt)
        exact = np.moveaxis(exact, -1, cast["axis"])
        rounded = np.moveaxis(rounded, -1, cast["axis"])
    return Evaluation(spec, fmt, cast, exact, rounded.astype(fmt.numpy_dtype))


def _scaled(results: list, scale: Fraction | None) -> list:
    """Each result times a positive rational, exactly: enclosures scaled outward, exact
    values kept exact where they stay representable."""
    if scale is None or scale == 1:
        return results
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out = []
    for r in results:
        if callable(r):
            out.append(_scale_expression(r, scale))
        elif isinstance(r, float) and (r == 0 or not math.isfinite(r)):
            out.append(r)
        else:
            q = Fraction(r) * scale
            f = float(q)
            out.append(f if Fraction(f) == q else _fraction_expression(q))
    return out


def _scale_expression(expr, scale: Fraction):
    def scaled(w: int):
        lo, hi = expr(w)
        s_lo, s_hi = interval.from_fraction(scale, w + 8)
        return (_mul(lo, s_lo, s_hi, w, low=True), _mul(hi, s_lo, s_hi, w, low=False))

    return scaled


def _mul(x, s_lo, s_hi, w: int, *, low: bool):
    """x times the positive interval [s_lo, s_hi], rounded outward (an end of a product)."""
    from mpmath.libmp import mpf_mul, mpf_sign

    negative = mpf_sign(x) < 0
    factor = (s_hi if negative else s_lo) if low else (s_lo if negative else s_hi)
    return mpf_mul(x, factor, w, interval.FLOOR if low else interval.CEIL)


def _fraction_expression(q: Fraction):
    return lambda w: interval.from_fraction(q, w)


def gradient(loss: str, wrt: str, dtype: str, **inputs) -> np.ndarray:
    """d loss / d ``wrt`` ("logits", "probs" or "labels"), correctly rounded to ``dtype``.

    >>> gradient("softplus", "logits", "float64", logits=-100.0)  # sigmoid(-100)
    array(3.72007598e-44)
    """
    return evaluate_gradient(loss, wrt, dtype, **inputs).reference


def _decide_all(results: list, shape: tuple, fmt: Format):
    """Exact values (object array) and their roundings for a list of results."""
    exact = np.empty(len(results), dtype=object)
    rounded = np.empty(len(results), dtype=np.float64)
    for i, r in enumerate(results):
        if callable(r):
            raw, rounded[i] = interval.decide(r, fmt)
            exact[i] = mpmath.mp.make_mpf(raw)
        else:
            exact[i] = mpmath.mpf(r)
            rounded[i] = r
    return exact.reshape(shape), rounded.reshape(shape)


def reference(loss: str, dtype: str, **inputs) -> np.ndarray:
    """The loss at ``inputs`` (cast to ``dtype``), correctly rounded to ``dtype``.

    Elementwise losses and the softmax family in float16, bfloat16 and float32 take
    the fast path (``oracles/fast.py``, ``oracles/fast_rows.py``) and only its
    undecided elements the mpmath oracle; the result is the same, bit for bit.

    >>> reference("sigmoid_cross_entropy_with_logits", "float32", logits=1.0, labels=0.0)
    array(1.3132616, dtype=float32)
    """
    from lossfuzz.oracles import fast

    spec = get_loss(loss)
    if not fast.covers(spec.id, dtype):
        return evaluate(spec, dtype, **inputs).reference
    fmt = get_format(dtype)
    cast = cast_inputs(spec, dtype, **inputs)
    check_elementwise_domain(spec, cast)
    fv = fast.fast_values(spec.id, dtype, cast)
    out = np.array(fv.reference, dtype=np.float64)  # an array even for 0-d inputs
    todo = np.asarray(~fv.decided)
    if todo.any():
        out[todo] = evaluate_where(spec, dtype, cast, todo).reference
    return out.astype(fmt.numpy_dtype)


def evaluate_where(spec: Loss, dtype: str, cast: dict, mask: np.ndarray) -> Evaluation:
    """``evaluate`` on the elements of cast elementwise inputs that ``mask`` selects (after
    broadcasting): the exact path for what the fast path left undecided, in one call.
    For a row loss ``mask`` is shaped like the output; each row it touches goes to
    mpmath once (``fast_rows.evaluate_rows_where``)."""
    from lossfuzz.oracles import fast

    if spec.shape != "elementwise":
        from lossfuzz.oracles.fast_rows import evaluate_rows_where

        return evaluate_rows_where(spec, dtype, cast, mask)
    names = fast.FAST[spec.id].inputs
    arrays = np.broadcast_arrays(*(cast[n] for n in names))
    picked = {n: a[mask] for n, a in zip(names, arrays)}
    return evaluate(spec, dtype, **{**cast, **picked})


def exact(loss: str, dtype: str, **inputs) -> np.ndarray:
    """The exact values (mpmath numbers) that ULP errors are measured against."""
    return evaluate(loss, dtype, **inputs).exact


def _elementwise(spec: Loss, cast: dict, fn, extra: dict):
    names = (
        [spec.primary]
        + (["labels"] if spec.labels else [])
        + [n for n in ("pos_weight",) if n in spec.params]
    )
    try:
        arrays = np.broadcast_arrays(*(cast[n] for n in names))
    except ValueError:
        shapes = ", ".join(f"{n} {cast[n].shape}" for n in names)
        raise ValueError(f"{spec.id}: shapes do not broadcast: {shapes}") from None
    shape = arrays[0].shape
    xs = [_raw(v) for v in arrays[0].astype(np.float64).ravel().tolist()]
    if not spec.labels:
        return [fn(x) for x in xs], shape
    eps = Fraction(cast.get("label_smoothing", 0.0))
    zs = _fraction_labels(arrays[1])
    weights = None
    if "pos_weight" in spec.params:
        weights = []
        for v in arrays[2].astype(np.float64).ravel().tolist():
            if math.isnan(v):
                weights.append(None)
            elif not (0.0 <= v < math.inf):
                raise DomainError(f"pos_weight must be finite and >= 0; got {v!r}")
            else:
                weights.append(Fraction(v))
    out = []
    for i, (x, z) in enumerate(zip(xs, zs)):
        if z is None or (weights is not None and weights[i] is None):
            out.append(math.nan)
            continue
        z = _smooth(z, eps, 2)
        out.append(fn(x, z, **extra) if weights is None else fn(x, z, weights[i], **extra))
    return out, shape


def _rows(spec: Loss, cast: dict, fn, per_entry: bool, extra: dict):
    axis = cast["axis"]
    primary = cast[spec.primary]
    if not -primary.ndim <= axis < primary.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {primary.shape}")
    moved = np.moveaxis(primary, axis, -1)
    batch = moved.shape[:-1]
    raw_rows = [[_raw(v) for v in row] for row in _as_rows(moved.astype(np.float64)).tolist()]
    if spec.labels is None:
        if per_entry:
            return [r for row in raw_rows for r in fn(row)], moved.shape
        return [fn(row) for row in raw_rows], batch
    eps = Fraction(cast.get("label_smoothing", 0.0))
    label_rows = _label_rows(spec, cast["labels"], axis, moved.shape, eps)
    out = []
    for row, zs in zip(raw_rows, label_rows):
        if per_entry:
            out.extend([math.nan] * len(row) if zs is None else fn(row, zs, **extra))
        else:
            out.append(math.nan if zs is None else fn(row, zs, **extra))
    return out, moved.shape if per_entry else batch


def _as_rows(arr: np.ndarray) -> np.ndarray:
    """(..., K) -> (N, K); numpy cannot infer N when K is 0."""
    return arr.reshape(int(np.prod(arr.shape[:-1])), arr.shape[-1])


def _label_rows(spec: Loss, labels: np.ndarray, axis: int, shape: tuple, eps: Fraction):
    """Per row, the exact (smoothed) label coefficients, or None where a label is NaN."""
    k = shape[-1]
    if spec.labels == "sparse":
        if labels.shape != shape[:-1]:
            raise ValueError(
                f"{spec.id}: class indices of shape {labels.shape} do not match "
                f"logits of shape {shape} without the class axis"
            )
        rows = []
        for idx in labels.ravel().tolist():
            if not 0 <= idx < k:
                raise DomainError(f"class index {idx} is out of range for {k} classes")
            rows.append([_smooth(Fraction(int(i == idx)), eps, k) for i in range(k)])
        return rows
    # a label row per logit row, as the frameworks require: no broadcasting, which
    # would turn a mistaken labels=[[1]] against two classes into a silent [[1, 1]]
    dense = np.moveaxis(labels, axis, -1) if labels.ndim == len(shape) else labels
    if dense.shape != shape:
        raise ValueError(
            f"{spec.id}: labels of shape {labels.shape} do not match "
            f"{spec.primary} of shape {np.moveaxis(np.empty(shape), -1, axis).shape}"
        )
    rows = []
    for row in _as_rows(dense):
        zs = _fraction_labels(row)
        rows.append(None if any(z is None for z in zs) else [_smooth(z, eps, k) for z in zs])
    return rows
