"""The fast reference path for the softmax family: float64 rows with an error bound.

For float16, bfloat16 and float32 targets, softmax cross-entropy (dense and
sparse labels, label smoothing z (1 - e) + e / K), logsumexp, log_softmax and
softmax are computed a batch of rows at a time in float64 with NumPy, in the
exact oracle's form (``softmax.py``): for a row x with maximum x* at j*,

    d_j = x_j - x* <= 0,   T = sum_{j != j*} exp(d_j),   L = log1p(T)
    CE        = sum_k z_k (-d_k) + (sum_k z_k) L      (non-negative terms)
    logsumexp = x* + L                                (may cancel near 0)
    log_softmax_k = -((-d_k) + L),   softmax_k = exp(d_k) / (1 + T)

Error bound, with u = 2**-53, E = 2**-48 (fast.py's assumption on NumPy's float64
exp and log1p, relative, for normal results), A = 2**-1060 (their absolute error
where the result is subnormal or underflows; the true values there are below
2**-1022), and D = ceil(log2 K) for K classes:

- d_j is one rounding of the exact difference (exact for float16; for float32 and
  bfloat16 not always, when exponents are far apart): |error| <= u |d_j|. So
  exp(d_j) is within E + 1.01 u |d_j| relative (plus A) of exp(x_j - x*); only
  terms with |d_j| < 746 are nonzero, so the row's dmax = max such |d_j| enters.
- T is summed by an explicit balanced tree (``_tree_sum``): each term passes
  through at most D additions, so the sum of the computed non-negative terms is
  within gamma_D = D u / (1 - D u) relative, whatever NumPy's own summation order
  (2**18 classes: 18 u). Hence |T' - T| <= rho_T T' + alpha_T with
  rho_T = 1.01 (E + 1.01 u dmax + gamma_D), alpha_T = 2 A (number of finite
  entries - 1); a row with one finite entry has T = 0 exactly.
- log1p has slope <= 1 and log1p(T) >= T / (1 + T), so L' is within
  rho_L = 1.01 (rho_T + E) relative plus alpha_T.
- CE: the labels carry 3 roundings when smoothed, the products one, the tree
  gamma_D, so |CE' - CE| <= 1.01 (rho_L + 8 u + gamma_D) CE' + 1.01 M alpha_T
  (M = sum z): every term is non-negative, so relative bounds add.
- logsumexp: u |v| + 1.01 rho_L L' + 1.01 alpha_T, absolute on the terms, not
  relative on the result (which cancels when x* is near -L).
- log_softmax_k: 1.01 (rho_L + 2 u) |v| + 1.01 alpha_T.
- softmax_k: 1.01 (E + 1.01 u |d_k| + rho_T + alpha_T + 3 u) v + 2 A.

Each bound then gets 4 u |v| more, for the rounding of v -/+ bound themselves.
The factors 1.01 cover the products of first-order errors, all below 2**-30.
Where the sign of the exact value is known (CE and softmax >= 0, log_softmax <= 0)
the interval is clipped at zero of that sign, so a value too small for the target
rounds to the right signed zero; an exact zero is +0 (mpmath has no signed zero).

An element is decided when both ends round to the same float of the target, sign
of zero included. Rows with NaN, +inf or only -inf follow softmax.py's limits
exactly (-inf entries drop out of T): those values are exact and decided. The
rest goes to the mpmath oracle, a row at most once (``evaluate_rows_where``).

Rows are processed ``CHUNK`` entries at a time, so temporaries stay near 20 MiB
whatever the batch (one row at a time past CHUNK classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lossfuzz.oracles.api import DomainError, Evaluation, _decide_all, _raw, evaluate
from lossfuzz.oracles.fast import FastValues, round_fast
from lossfuzz.oracles.formats import Format, get_format
from lossfuzz.oracles.registry import Loss, get_loss

TARGETS = ("float16", "bfloat16", "float32")
U = 2.0**-53
E = 2.0**-48  # NumPy's float64 exp and log1p, relative: fast.py's assumption
A = 2.0**-1060  # the same, absolute, where a result is subnormal or underflows
SAFETY = 1.01  # second-order terms: every first-order error is below 2**-30
CHUNK = 1 << 18  # entries per batch of rows: 2 MiB per float64 temporary


def _tree_sum(a: np.ndarray) -> np.ndarray:
    """Row sums of a (B, K) array by a balanced tree: each entry meets at most
    ceil(log2 K) additions, so a sum of non-negative terms is within gamma of it."""
    while a.shape[1] > 1:
        h = a.shape[1] // 2
        s = a[:, :h] + a[:, h : 2 * h]
        a = np.concatenate([s, a[:, 2 * h :]], axis=1) if a.shape[1] % 2 else s
    return a[:, 0].copy() if a.shape[1] else np.zeros(a.shape[0])


def _gamma(k: int) -> float:
    depth = max(0, (k - 1).bit_length())  # ceil(log2 k)
    return depth * U / (1 - depth * U)


def _two_sum(a, b):
    """(s, t) with s = fl(a + b) and s + t = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


class _Rows:
    """A batch of logit rows (B, K), K >= 1: x*, d, T, L, their error terms, and
    which rows are special (NaN, +inf, nothing finite)."""

    def __init__(self, x: np.ndarray):
        b, k = x.shape
        self.nan = np.isnan(x).any(axis=1)
        self.pinf = x == np.inf
        self.n_pinf = self.pinf.sum(axis=1)
        self.ninf = x == -np.inf
        finite = np.isfinite(x)
        self.n_fin = finite.sum(axis=1)
        xf = np.where(finite, x, -np.inf)
        top = np.argmax(xf, axis=1)  # the first maximum, as softmax.py's
        rows = np.arange(b)
        self.top = xf[rows, top]
        self.top[self.n_fin == 0] = 0.0
        self.d, residual = _two_sum(xf, -self.top[:, None])
        self.exact_d = residual == 0  # always for float16; not for far-apart exponents
        e = np.exp(self.d)
        e[rows, top] = 0.0
        self.t = _tree_sum(e)
        dmax = np.max(np.where(e > 0, -self.d, 0.0), axis=1)
        self.gamma = _gamma(k)
        self.rho_t = SAFETY * (E + SAFETY * U * dmax + self.gamma)
        self.alpha_t = 2 * A * np.maximum(self.n_fin - 1, 0)
        self.log1p_t = np.log1p(self.t)
        self.rho_l = SAFETY * (self.rho_t + E)
        self.err_l = SAFETY * (self.rho_l * self.log1p_t + self.alpha_t)  # |L' - L|
        e[rows, top] = 1.0
        self.e = e  # exp(d_k) for every k, j* included


# Each kernel returns the value as a + c with |a' - a| <= err_a, |c' - c| <= err_c
# (a exact where err_a is 0: then the final addition's rounding is not an error;
# ``_settle`` adds the two exactly), and which elements are special (exact).


def _ce(r: _Rows, z: np.ndarray):
    """sum_k z_k (lse - x_k) per row, z the smoothed labels (B, K) in float64:
    a = sum z_k (x* - x_k), exact for a one-hot row; c = (sum z_k) L."""
    labelled = z > 0  # exactly where the exact smoothed label is non-zero
    a = _tree_sum(np.where(labelled, z * -r.d, 0.0))
    mass = _tree_sum(np.where(labelled, z, 0.0))
    c = mass * r.log1p_t
    one_hot = (labelled.sum(axis=1) == 1) & (labelled & (z == 1) & r.exact_d).any(axis=1)
    err_a = np.where(one_hot, 0.0, SAFETY * (5 * U + r.gamma) * a)
    err_c = SAFETY * ((r.rho_l + 4 * U + r.gamma) * c + mass * r.alpha_t)
    hit_pinf = (labelled & r.pinf).any(axis=1)
    hit_other = (labelled & ~r.pinf).any(axis=1)
    hit_ninf = (labelled & r.ninf).any(axis=1)
    some = r.n_pinf > 0
    cases = [  # softmax.py's order
        (r.nan | np.isnan(z).any(axis=1), np.nan),
        (some & hit_pinf & (r.n_pinf > 1), np.nan),
        (some & hit_other, np.inf),
        (some, 0.0),
        (~labelled.any(axis=1), 0.0),
        (r.n_fin == 0, np.nan),
        (hit_ninf, np.inf),
    ]
    return _specials(a, c, err_a, err_c, cases)


def _lse(r: _Rows, z=None):
    """a = x* (exact), c = L."""
    cases = [(r.nan, np.nan), (r.n_pinf > 0, np.inf), (r.n_fin == 0, -np.inf)]
    return _specials(r.top, r.log1p_t, np.zeros_like(r.top), r.err_l, cases)


def _log_softmax(r: _Rows, z=None):
    """a = x_k - x* (exact where the difference is), c = -L."""
    err_a = np.where(r.exact_d, 0.0, SAFETY * U * np.abs(r.d))
    c = np.zeros_like(r.d) - r.log1p_t[:, None]
    err_c = np.broadcast_to(r.err_l[:, None], c.shape)
    unique = (r.n_pinf == 1)[:, None]
    some = (r.n_pinf > 0)[:, None]
    cases = [
        (r.nan[:, None] | ((r.n_fin == 0) & (r.n_pinf == 0))[:, None], np.nan),
        (some & r.pinf & unique, 0.0),
        (some & r.pinf, np.nan),
        (some, -np.inf),
        (r.ninf, -np.inf),
    ]
    return _specials(r.d, c, err_a, err_c, cases)


def _softmax(r: _Rows, z=None):
    """a = the quotient, c = 0."""
    v = r.e / (1.0 + r.t)[:, None]
    rel = E + SAFETY * U * np.abs(r.d) + (r.rho_t + r.alpha_t + 3 * U)[:, None]
    zero = np.zeros_like(v)
    unique = (r.n_pinf == 1)[:, None]
    some = (r.n_pinf > 0)[:, None]
    cases = [
        (r.nan[:, None] | ((r.n_fin == 0) & (r.n_pinf == 0))[:, None], np.nan),
        (some & r.pinf & unique, 1.0),
        (some & r.pinf, np.nan),
        (some, 0.0),
        (r.ninf, 0.0),
    ]
    return _specials(v, zero, SAFETY * rel * v + 2 * A, zero, cases)


def _specials(a, c, err_a, err_c, cases):
    """(a, c, err_a, err_c, exact) with the first case that holds as the exact a."""
    shape = np.broadcast_shapes(np.shape(a), np.shape(c))
    exact = np.zeros(shape, dtype=bool)
    for mask, _ in cases:
        exact = exact | mask
    a = np.select([np.broadcast_to(m, shape) for m, _ in cases], [v for _, v in cases], a)
    return a, *(np.where(exact, 0.0, x) for x in (c, err_a, err_c)), exact


@dataclass(frozen=True)
class _RowLoss:
    shape: str  # "reduce" (a value per row) or "rowwise" (a value per entry)
    sign: int  # the exact value is >= 0 (+1), <= 0 (-1), or either (0)
    kernel: Callable


ROWS = {
    "softmax_cross_entropy_with_logits": _RowLoss("reduce", 1, _ce),
    "sparse_softmax_cross_entropy_with_logits": _RowLoss("reduce", 1, _ce),
    "logsumexp": _RowLoss("reduce", 0, _lse),
    "log_softmax": _RowLoss("rowwise", -1, _log_softmax),
    "softmax": _RowLoss("rowwise", 1, _softmax),
}


def covers(loss: str, dtype: str) -> bool:
    return loss in ROWS and dtype in TARGETS


def _nudged(s, t, fmt: Format):
    """A float64 that rounds to ``fmt`` as the exact s + t does (|t| <= ulp(s) / 2): s,
    unless s is a midpoint of the target (or its overflow threshold), where the
    sign of t picks a side; no other midpoint lies within a float64 ulp of s."""
    r = round_fast(s, fmt)
    _, e = np.frexp(np.abs(s))
    k = fmt.ulp_exponent(e - 1)
    top = fmt.max_finite + np.ldexp(1.0, fmt.ulp_exponent(fmt.emax) - 1)
    midpoint = (np.abs(s - r) == np.ldexp(1.0, k - 1)) | (np.abs(s) == top)
    return np.where(midpoint & (t != 0), s + np.sign(t) * np.ldexp(1.0, k - 2), s)


def _clip(lo_end, hi_end, bound, sign: int):
    """Clip the interval at zero on the side the exact value's sign rules out."""
    if sign > 0:
        lo_end = np.where((lo_end > 0) | (bound == 0), lo_end, 0.0)
    elif sign < 0:
        hi_end = np.where((hi_end < 0) | (bound == 0), hi_end, -0.0)
    return lo_end, hi_end


def _settle(a, c, err_a, err_c, exact, sign: int, fmt: Format):
    """(value, bound, reference, decided) of one batch (see the module)."""
    v = a + c
    bound = err_a + err_c + 5 * U * np.abs(np.where(exact, 0.0, v))  # a + c, and the ends
    v = np.where((v == 0) & (bound == 0), 0.0, v)  # an exact zero is +0
    lo_end, hi_end = _clip(v - bound, v + bound, bound, sign)
    split = (err_a == 0) & (bound > 0) & ~exact
    if split.any():  # a exact: the ends a + (c -+ err_c), each added exactly
        a_, c_, b_ = a[split], c[split], bound[split]
        wide = err_c[split] * (1 + 2.0**-40) + 2 * U * np.abs(c_)  # covers c -+ err's rounding
        ends = [_nudged(*_two_sum(a_, c_ + side * wide), fmt) for side in (-1.0, 1.0)]
        lo_end[split], hi_end[split] = _clip(*ends, b_, sign)
    lo, hi = round_fast(lo_end, fmt), round_fast(hi_end, fmt)
    decided = exact | ((lo == hi) & (np.signbit(lo) == np.signbit(hi)))
    reference = lo
    if not decided.all():
        reference[~decided] = round_fast(v[~decided], fmt)
    return v, bound, reference, decided


def _layout(spec: Loss, cast: dict):
    """The logits as (N, K) rows (class axis last) and a function giving the smoothed
    float64 labels of rows a:b, after the exact path's shape and domain checks."""
    check_row_domain(spec, cast)
    axis = cast["axis"]
    moved = np.moveaxis(cast[spec.primary], axis, -1)
    k = moved.shape[-1]
    x = moved.reshape(-1, k)
    eps = float(cast.get("label_smoothing", 0.0) or 0.0)

    def smooth(z):
        return z * (1.0 - eps) + eps / k if eps else z

    if spec.labels == "dense":
        labels = cast["labels"]
        dense = np.moveaxis(labels, axis, -1) if labels.ndim == moved.ndim else labels
        dense = dense.reshape(-1, k)
        return moved.shape, x, lambda a, b: smooth(dense[a:b].astype(np.float64))
    if spec.labels == "sparse":
        idx = cast["labels"].reshape(-1)
        classes = np.arange(k)
        return moved.shape, x, lambda a, b: smooth((classes == idx[a:b, None]).astype(float))
    return moved.shape, x, lambda a, b: None


def row_values(loss: str, dtype: str, cast: dict) -> FastValues:
    """The fast path for a row loss on inputs already cast to ``dtype``: one value per
    row for a reduce loss, per entry (the input's shape) for a rowwise one."""
    spec, kind, fmt = get_loss(loss), ROWS[loss], get_format(dtype)
    shape, x, labels_of = _layout(spec, cast)
    n, k = x.shape
    width = k if kind.shape == "rowwise" else 1
    value, bound, reference = (np.empty((n, width)) for _ in range(3))
    decided = np.empty((n, width), dtype=bool)
    if k == 0:  # no classes: CE 0 (no label), logsumexp -inf (an empty sum)
        value[:] = reference[:] = -np.inf if loss == "logsumexp" else 0.0
        bound[:], decided[:] = 0.0, True
    step = max(1, CHUNK // max(k, 1))
    for a in range(0, n if k else 0, step):
        b = min(n, a + step)
        with np.errstate(all="ignore"):  # special rows compute NaN first, then are set
            rows = _Rows(x[a:b].astype(np.float64))
            parts = kind.kernel(rows, labels_of(a, b))
            out = _settle(*(np.reshape(p, (b - a, width)) for p in parts), kind.sign, fmt)
        for arr, part in zip((value, bound, reference, decided), out):
            arr[a:b] = part
    if kind.shape == "reduce":
        arrays = [a.reshape(shape[:-1]) for a in (value, bound, reference, decided)]
    else:
        arrays = [
            np.moveaxis(a.reshape(shape), -1, cast["axis"])
            for a in (value, bound, reference, decided)
        ]
    return FastValues(*arrays)


def check_row_domain(spec: Loss, cast: dict) -> None:
    """The shape and domain errors the exact path (``api._rows``) raises, over whole
    arrays: the axis, the labels' shape, class indices in range, labels in [0, 1]."""
    axis = cast["axis"]
    primary = cast[spec.primary]
    if not -primary.ndim <= axis < primary.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {primary.shape}")
    moved = np.moveaxis(primary, axis, -1)
    k = moved.shape[-1]
    labels = cast.get("labels")
    if spec.labels == "sparse":
        if labels.shape != moved.shape[:-1]:
            raise ValueError(
                f"{spec.id}: class indices of shape {labels.shape} do not match "
                f"logits of shape {moved.shape} without the class axis"
            )
        bad = (labels < 0) | (labels >= k)
        if bad.any():
            idx = int(labels[bad].flat[0])
            raise DomainError(f"class index {idx} is out of range for {k} classes")
    elif spec.labels == "dense":
        dense = np.moveaxis(labels, axis, -1) if labels.ndim == moved.ndim else labels
        if dense.shape != moved.shape:
            raise ValueError(
                f"{spec.id}: labels of shape {labels.shape} do not match "
                f"{spec.primary} of shape {primary.shape}"
            )
        z = dense.astype(np.float64)
        bad = ~np.isnan(z) & ((z < 0) | (z > 1))
        if bad.any():
            raise DomainError(f"labels must lie in [0, 1]; got {float(z[bad].flat[0])!r}")


def evaluate_rows_where(spec: Loss, dtype: str, cast: dict, mask: np.ndarray) -> Evaluation:
    """The mpmath oracle on the output elements ``mask`` selects (shaped like the
    output), flat in the order of ``np.flatnonzero(mask)``: each row that holds one
    is evaluated once, and for a rowwise loss only its selected entries are decided
    (the row's T is shared between them, once per precision)."""
    axis = cast["axis"]
    moved = np.moveaxis(cast[spec.primary], axis, -1)
    k = moved.shape[-1]
    x = moved.reshape(-1, k)
    mask = np.asarray(mask, dtype=bool)
    if spec.shape == "reduce":
        rows = np.flatnonzero(mask)
        picked = {**cast, spec.primary: x[rows], "axis": -1}
        if spec.labels == "dense":
            labels = cast["labels"]
            dense = np.moveaxis(labels, axis, -1) if labels.ndim == moved.ndim else labels
            picked["labels"] = dense.reshape(-1, k)[rows]
        elif spec.labels == "sparse":
            picked["labels"] = cast["labels"].reshape(-1)[rows]
        return evaluate(spec, dtype, **picked)
    fmt = get_format(dtype)
    entries = np.moveaxis(mask, axis, -1).reshape(-1, k)
    results, where = [], []
    for r in np.flatnonzero(entries.any(axis=1)).tolist():
        ks = np.flatnonzero(entries[r])
        row = spec.fn([_raw(v) for v in x[r].astype(np.float64).tolist()])
        results += [row[i] for i in ks.tolist()]
        where.append(np.stack([np.full(ks.size, r), ks]))
    exact, rounded = _decide_all(results, (len(results),), fmt)
    if where and axis % mask.ndim != mask.ndim - 1:  # back to the output's element order
        r, kk = np.concatenate(where, axis=1)
        index = list(np.unravel_index(r, moved.shape[:-1]))
        index.insert(axis % mask.ndim, kk)
        order = np.argsort(np.ravel_multi_index(tuple(index), mask.shape))
        exact, rounded = exact[order], rounded[order]
    return Evaluation(spec, fmt, cast, exact, rounded.astype(fmt.numpy_dtype))
