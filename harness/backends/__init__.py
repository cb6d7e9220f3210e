"""Backends: how a framework receives the harness's arrays and how its answers come back.

An impl is a call expression over the input names (``logits``, ``labels``,
``probs``, ``pos_weight``, ``label_smoothing``, ``axis``), e.g.
``F.binary_cross_entropy_with_logits(logits, labels, reduction='none')``. The
harness evaluates that expression with the inputs as the backend's tensors, and a
reproducer prints the very same expression after the backend's imports and exact
literals of the inputs: what is measured is what a user pastes.

This module holds what every framework shares: the ``Backend`` and ``Autodiff``
records, exact literals, and the registries. Each framework has one module
(``numpy.py``, ``torch.py``, ``tf.py``, ``keras.py``, ``jax.py``, ``scipy.py``) with
its backend, autodiff, compiled and device modes, conversions, impls and the
documentation its contracts are checked against. Frameworks are imported only when
a backend's namespace is first built.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np

FRAMEWORK_MODULES = (  # in this order: twins.py registers the compiled twins of the others
    "lossfuzz.harness.backends.numpy",
    "lossfuzz.harness.backends.torch",
    "lossfuzz.harness.backends.tf",
    "lossfuzz.harness.backends.keras",
    "lossfuzz.harness.backends.scipy",
    "lossfuzz.harness.backends.jax",
    "lossfuzz.harness.backends.twins",
)


@contextmanager
def quiet_stderr():
    """Silence file descriptor 2: TensorFlow's C++ logs a banner on import through absl
    before TF_CPP_MIN_LOG_LEVEL is read."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _namespace_of(imports: str) -> dict:
    ns: dict = {}
    with quiet_stderr():
        exec(imports, ns)
    return ns


@dataclass(frozen=True)
class Backend:
    name: str
    requires: tuple[str, ...]  # modules that must import
    imports: str  # the reproducer's import lines; also run to build the eval namespace
    to_native: Callable[[np.ndarray], object]
    from_native: Callable[[object], np.ndarray]
    literal: Callable[[np.ndarray], str]  # code that rebuilds an array exactly
    show: str  # expression giving element {i} of {v} (flattened) as a Python float
    # statement repeating the rows of {v} {reps} times and keeping the first {n}; {ones}
    # is ", 1" for each further axis
    tile: str = "{v} = np.tile({v}, ({reps}{ones}))[:{n}]"
    framework: str | None = None  # the library whose documentation its impls follow
    # why this backend cannot run here though its modules import (a configuration), or None
    unavailable: Callable[[], str | None] = lambda: None

    @cache  # noqa: B019  (backends are a few module-level singletons)
    def namespace(self) -> dict:
        return _namespace_of(self.imports)


@dataclass(frozen=True)
class Autodiff:
    """How a backend's expressions are differentiated: the gradient of the sum of the
    output elements (a vector-Jacobian product with ones) with respect to one input.

    ``prepare`` marks the input, ``body`` runs the impl's call and leaves the gradient
    in ``grad``; the harness executes exactly these lines, and a reproducer prints them
    after the exact literals of the inputs.
    """

    name: str  # how the report names it
    imports: str
    requires: tuple[str, ...]
    to_native: Callable[[np.ndarray], object]
    from_native: Callable[[object], np.ndarray]
    literal: Callable[[np.ndarray], str]
    show: str  # as Backend.show
    prepare: str  # template over {wrt}
    body: str  # template over {wrt} and {call}; sets `out` and `grad`
    dtypes: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
    define: str = ""  # template over {call}, {wrt}, {params}: run once (a compiled function)

    @classmethod
    def of(cls, backend: Backend, name: str, prepare: str, body: str, **kw) -> Autodiff:
        """An autodiff over a backend's own imports, conversions and literals."""
        return cls(
            name,
            kw.pop("imports", backend.imports),
            kw.pop("requires", backend.requires),
            kw.pop("to_native", backend.to_native),
            kw.pop("from_native", backend.from_native),
            kw.pop("literal", backend.literal),
            backend.show,
            prepare,
            body,
            **kw,
        )

    @cache  # noqa: B019  (a few module-level singletons)
    def namespace(self) -> dict:
        return _namespace_of(self.imports)

    def setup(self, call: str, wrt: str, params: str = "") -> str:
        """What runs once per process: the compiled function's definition, if any."""
        return self.define.format(call=call, wrt=wrt, params=params, static=static_args(params))

    def step(self, call: str, wrt: str, params: str = "") -> str:
        """What runs for each case; leaves the gradient in ``grad``."""
        body = self.body.format(wrt=wrt, call=call, params=params)
        return self.prepare.format(wrt=wrt) + "\n" + body

    def code(self, call: str, wrt: str, params: str = "") -> str:
        setup = self.setup(call, wrt, params)
        return (setup + "\n" if setup else "") + self.step(call, wrt, params)


BACKENDS: dict[str, Backend] = {}
AUTODIFF: dict[str, Autodiff] = {}  # by the runtime (backend name) whose calls it differentiates


def register_backend(backend: Backend, autodiff: Autodiff | None = None) -> Backend:
    BACKENDS[backend.name] = backend
    if autodiff is not None:
        AUTODIFF[backend.name] = autodiff
    return backend


def static_args(params: str) -> str:
    """``, static_argnames=(...)`` for jax.jit: the parameters that are not arrays."""
    static = tuple(p for p in params.split(", ") if p in ("axis", "label_smoothing"))
    return f", static_argnames={static!r}" if static else ""


# ------------------------------------------------------------------ exact literals


def values_literal(arr: np.ndarray) -> str:
    """The values as exact float.fromhex literals (or ints), flattened."""
    if arr.dtype.kind in "iub":
        return repr(arr.astype(np.int64).tolist())
    flat = ", ".join(f"float.fromhex({v.hex()!r})" for v in arr.astype(np.float64).ravel().tolist())
    return f"[{flat}]"


def float_name(arr: np.ndarray) -> str:
    """float16, bfloat16, float32 or float64: the name every framework uses."""
    return "bfloat16" if is_bfloat16(arr) else arr.dtype.name


def is_bfloat16(arr: np.ndarray) -> bool:
    import ml_dtypes

    return arr.dtype == np.dtype(ml_dtypes.bfloat16)


def tensor_literal(arr: np.ndarray, *, ints: str, floats: str) -> str:
    """A framework's literal for ``arr``: ``ints`` or ``floats`` formatted with {values},
    {dtype} (the float's name), {shape} (a tuple) and {dims} (a list)."""
    fields = {
        "values": values_literal(arr),
        "dtype": float_name(arr) if arr.dtype.kind not in "iub" else "int64",
        "shape": repr(tuple(arr.shape)),
        "dims": repr(list(arr.shape)),
    }
    return (ints if arr.dtype.kind in "iub" else floats).format(**fields)
