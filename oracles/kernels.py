"""Compiled (Numba) loops for the fast reference path, with NumPy as the fallback.

Two kinds of kernel, both giving the NumPy path's floats bit for bit (tested in
tests/test_fast.py and tests/test_fast64.py):

- float16, bfloat16 and float32 targets (``oracles/fast.py``): NumPy still computes
  exp and log1p (its SIMD loops are several times faster than the libm calls
  Numba makes, and they round differently in about 1 element in 20, so sharing
  them is what makes the bits agree); one fused loop then does the rest of the
  loss, the bound, the rounding of both ends to the target and the decided flag
  (``values``), and another the classes and ULP errors of an answer
  (``classify``), instead of NumPy's thirty-odd passes over float64 arrays.
- float64 targets (``oracles/fast64.py``): the double-double functions of
  ``oracles/dd.py`` and ``fast64.py`` are compiled as they are (the helpers they
  call get scalar overloads here), one element per iteration, in parallel.

All with ``fastmath=False``: no fused multiply-add, no reassociation, IEEE
semantics, as the error-free transformations need. ``LOSSFUZZ_NUMBA=0`` (or Numba
missing) keeps everything on NumPy; batches under ``THRESHOLD`` elements stay on
NumPy too, because a kernel's first call in a process costs its loading (or, the
first time ever, compiling) from the cache in ``__pycache__``.
"""

from __future__ import annotations

import os

import numpy as np

THRESHOLD = 20_000  # elements; smaller batches are faster on NumPy than a cold kernel
_state: dict = {}


def available() -> bool:
    """Numba imports and ``LOSSFUZZ_NUMBA`` is not 0."""
    if os.environ.get("LOSSFUZZ_NUMBA", "1") == "0":
        return False
    if "ok" not in _state:
        try:
            _build()
            _state["ok"] = True
        except ImportError:
            _state["ok"] = False
    return _state["ok"]


def wanted(n: int) -> bool:
    return n >= THRESHOLD and available()


def _build() -> None:
    from lossfuzz.oracles import numba_kernels  # ImportError: no Numba, NumPy only

    _state["k"] = numba_kernels.KERNELS


def _k(name):
    available()
    return _state["k"][name]


# ------------------------------------------------------------------ entry points


UNARY = {"softplus": 0, "log_sigmoid": 1, "sigmoid": 2}


def fast_values64(loss: str, arrays: list, eps: float, covered):
    """``fast64.fast_values`` by the compiled double-double kernels."""
    from lossfuzz.oracles import fast64

    shape = np.broadcast(*arrays).shape
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).ravel() for a in arrays]
    n = flat[0].size
    h, l, kk = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    if loss in UNARY:
        _k("unary64")(flat[0], UNARY[loss], h, l, kk)
    elif loss == "binary_crossentropy":
        _k("bce64")(flat[0], flat[1], float(eps), h, l, kk)
    else:
        q = flat[2] if len(flat) > 2 else np.ones(n)
        _k("sce64")(flat[0], flat[1], q, float(eps), h, l, kk)
    h, l, kk = h.reshape(shape), l.reshape(shape), kk.reshape(shape)
    return fast64.finish(h, l, kk, covered, loss in fast64.NEGATIVE)


def fast_values(loss: str, fmt, arrays: list, eps: float, covered, rel, absolute):
    """``fast.fast_values`` for float16/bfloat16/float32 by a fused kernel: (value, bound,
    reference, decided), the same floats as NumPy's."""
    shape = np.broadcast(*arrays).shape
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).ravel() for a in arrays]
    cov = np.ascontiguousarray(np.broadcast_to(covered, shape)).ravel()
    n = flat[0].size
    v, b, r, d = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    tail = (cov, rel, absolute, fmt.precision, fmt.emin, fmt.max_finite, v, b, r, d)
    with np.errstate(all="ignore"):
        if loss == "binary_crossentropy":
            p = flat[0]
            neglog = np.where(p > 0.5, -np.log1p(p - 1.0), -np.log(np.maximum(p, 2.0**-1022)))
            _k("bce")(p, flat[1], neglog, -np.log1p(-p), float(eps), *tail)
        else:
            x = flat[0]
            e = np.exp(-np.abs(x))
            shared = np.log1p(e)
            if loss in UNARY:
                _k("unary")(x, UNARY[loss], e, shared, *tail)
            else:
                weighted = len(flat) > 2
                q = flat[2] if weighted else x
                _k("sce")(x, flat[1], q, weighted, shared, float(eps), *tail)
    return tuple(a.reshape(shape) for a in (v, b, r, d))


def classify(y, fv, fmt, tolerance: float, is_loss: bool):
    """``harness.scoring.classify_fast`` for float16/bfloat16/float32 in one loop."""
    n = y.size
    codes, ulp, diff, need = np.empty(n, np.int8), np.empty(n), np.empty(n), np.empty(n, bool)
    flat = [np.ascontiguousarray(a).ravel() for a in (fv.value, fv.bound, fv.reference)]
    decided = np.ascontiguousarray(fv.decided).ravel()
    _k("classify")(
        np.ascontiguousarray(y, dtype=np.float64),
        *flat,
        decided,
        fmt.precision,
        fmt.emin,
        float(tolerance),
        bool(is_loss),
        codes,
        ulp,
        diff,
        need,
    )
    return codes, ulp, diff, need
