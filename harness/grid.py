"""The deterministic edge grid: known-dangerous inputs every cell checks before fuzzing.

For logits: each danger point of the dtype (``strategies.danger_points``) and its
two neighbours on each side, +-0, +-inf, NaN, the extremes, and round numbers
from 1 to 1000; crossed with labels 0, 1, 1/2 and one ULP from each end, so every
special logit meets interior labels too. For probabilities: 0, 1, the smallest
subnormal and normal, 1e-7 (Keras' epsilon), 1/2 and one and two ULPs below 1.
Class-axis losses get two- and three-class rows built from the same values,
masked (-inf) rows with one-hot and uniform labels (label mass on a masked entry),
and one-class rows of every logit, +-inf and NaN included.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np

from lossfuzz.harness.strategies import danger_points
from lossfuzz.harness.ulp import step
from lossfuzz.oracles import get_format, get_loss

ROUND = [1.0, 2.0, 10.0, 20.0, 30.0, 50.0, 100.0, 1000.0]


@cache
def logit_points(dtype: str) -> tuple[float, ...]:
    fmt = get_format(dtype)
    pts = set()
    for p in danger_points(fmt):
        for k in (-2, -1, 0, 1, 2):
            pts.add(step(p, fmt, k))
    pts.update([fmt.min_subnormal, fmt.max_finite, math.inf])
    pts.update(float(fmt.cast(v)) for v in ROUND)
    pts |= {-p for p in pts}
    return tuple(sorted(p for p in pts if not math.isnan(p))) + (math.nan,)


@cache
def label_points(dtype: str) -> tuple[float, ...]:
    fmt = get_format(dtype)
    return (0.0, 1.0, 0.5, fmt.min_subnormal, step(1.0, fmt, -1))


@cache
def prob_points(dtype: str) -> tuple[float, ...]:
    fmt = get_format(dtype)
    return (
        0.0,
        fmt.min_subnormal,
        fmt.min_normal,
        float(fmt.cast(1e-7)),
        float(fmt.cast(1e-3)),
        0.5,
        step(1.0, fmt, -2),
        step(1.0, fmt, -1),
        1.0,
    )


def _arr(values, dtype):
    return get_format(dtype).cast(np.asarray(values, dtype=np.float64))


@cache
def _grid(loss: str, dtype: str) -> tuple:
    spec = get_loss(loss)
    xs = logit_points(dtype)
    zs = label_points(dtype)
    batches: list[dict] = []
    if spec.shape == "elementwise":
        primary = xs if spec.primary == "logits" else prob_points(dtype)
        if not spec.labels:
            batches.append({spec.primary: _arr(primary, dtype)})
        elif "pos_weight" in spec.params:
            combos = list(itertools.product(primary, zs, (0.0, 1.0, 2.5, 100.0)))
            x, z, q = zip(*combos)
            batches.append(
                {
                    spec.primary: _arr(x, dtype),
                    "labels": _arr(z, dtype),
                    "pos_weight": _arr(q, dtype),
                }
            )
        else:
            x, z = zip(*itertools.product(primary, zs))
            batches.append({spec.primary: _arr(x, dtype), "labels": _arr(z, dtype)})
        return tuple(batches)
    finite = [x for x in xs if math.isfinite(x)]
    if spec.primary == "logits":
        rows2 = [[x, 0.0] for x in xs] + [[x, -x] for x in finite] + [[x, x] for x in finite]
        rows2 += [[-math.inf, -math.inf], [math.inf, math.inf], [math.inf, -math.inf]]
        rows3 = [[x, 0.0, -math.inf] for x in finite] + [[0.0, x, x] for x in finite]
    else:
        ps = prob_points(dtype)
        rows2 = [[p, q] for p in ps for q in ps]
        rows3 = [[p, 0.5, 0.25] for p in ps]
    groups = [rows2, rows3]
    if spec.primary == "logits":
        # one class: any logit, the special values included (softmax over one output)
        groups.append([[x] for x in finite + [math.inf, -math.inf, math.nan]])
    elif spec.labels != "dense":
        groups.append([[1.0]])
    for rows in groups:
        k = len(rows[0])
        if spec.labels is None:
            batches.append({spec.primary: _arr(rows, dtype)})
            continue
        for cls in range(k):
            if spec.labels == "sparse":
                labels = np.full(len(rows), cls, dtype=np.int64)
            else:
                labels = _arr([[1.0 if j == cls else 0.0 for j in range(k)]] * len(rows), dtype)
            batches.append({spec.primary: _arr(rows, dtype), "labels": labels})
        if spec.labels == "dense" and k > 1:
            batches.append(
                {
                    spec.primary: _arr(rows, dtype),
                    "labels": _arr([[1.0 / k] * k] * len(rows), dtype),
                }
            )
    return tuple(batches)


def edge_grid(loss: str, dtype: str, min_classes: int = 1, scope=None) -> list[dict]:
    """Batches of inputs for ``loss`` in ``dtype``; the same on every call. Rows of fewer
    than ``min_classes`` classes (or the scope's) are left out, and so are the cases a
    ``strategies.Scope`` rules out (special values, hard or soft labels)."""
    spec = get_loss(loss)
    if scope is not None:
        min_classes = max(min_classes, scope.min_classes)
    out = []
    for b in _grid(loss, dtype):
        if spec.shape != "elementwise" and b[spec.primary].shape[-1] < min_classes:
            continue
        b = dict(b)
        if scope is not None and (not scope.allow_infinity or scope.labels != "any"):
            keep = _in_scope(spec, b, scope)
            if not keep.any():
                continue
            b = {k: v[keep] if isinstance(v, np.ndarray) and v.ndim else v for k, v in b.items()}
        out.append(b)
    return out


def _in_scope(spec, batch: dict, scope) -> np.ndarray:
    """Which cases (elements, or rows) of a batch the scope covers."""
    keep = None
    for name, v in batch.items():
        if not isinstance(v, np.ndarray) or v.dtype.kind in "iub":
            continue
        a = v.astype(np.float64)
        finite = np.isfinite(a) if a.ndim == 1 else np.isfinite(a).all(axis=-1)
        ok = finite if not scope.allow_infinity else np.ones(finite.shape, dtype=bool)
        if name == "labels" and scope.labels != "any":
            hard = (a == 0) | (a == 1)
            hard = hard if a.ndim == 1 else hard.all(axis=-1)
            ok &= hard if scope.labels == "hard" else ~hard
        keep = ok if keep is None else keep & ok
    return keep
