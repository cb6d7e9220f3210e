"""Implementations under test: one frozen record per way of computing a loss.

An impl is registered with the ``implementation`` decorator on a function
``fn(inputs, dtype) -> numpy array`` that receives the cast inputs (as
``oracles.cast_inputs`` returns them: numpy arrays of the dtype, class indices as
int64) and returns its answer as a numpy array. Backend modules import their
framework inside those functions, never at import time, so listing impls costs
nothing; ``availability`` says whether a framework can be loaded, and why not.

Packages outside lossfuzz add impls through the entry-point group
``lossfuzz.impls`` (each entry point names a module that registers impls on import).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

from oracles import DTYPES, UnknownName, get_loss

BACKEND_MODULES = (
    "harness.backends.naive",
    "harness.backends.torch_impls",
    "harness.backends.tf_impls",
    "harness.backends.keras_impls",
    "harness.backends.scipy_impls",
)
ENTRY_POINT_GROUP = "lossfuzz.impls"


@dataclass(frozen=True)
class Deviation:
    """A documented departure from the exact loss: a clamp or epsilon the library states.

    ``explains(inputs, got, reference)`` says whether a finding is due to it; such
    findings are measured like any other and labelled "documented".
    """

    what: str
    source: str
    explains: Callable[[dict, float, float], bool] = field(compare=False)


@dataclass(frozen=True)
class Impl:
    id: str  # backend:name
    loss: str  # the oracle's loss id (a variant where the library documents one)
    backend: str
    fn: Callable = field(compare=False, repr=False)
    dtypes: tuple[str, ...] = DTYPES
    requires: tuple[str, ...] = ()  # modules that must import
    params: tuple[str, ...] = ()  # optional oracle inputs it accepts (label_smoothing)
    deviations: tuple[Deviation, ...] = ()
    doc: str = ""  # the call, as a user would write it

    def __call__(self, inputs: dict, dtype: str):
        return self.fn(inputs, dtype)


IMPLS: dict[str, Impl] = {}


def implementation(
    impl_id: str,
    *,
    loss: str,
    dtypes: tuple[str, ...] = DTYPES,
    requires: tuple[str, ...] = (),
    params: tuple[str, ...] = (),
    deviations: tuple[Deviation, ...] = (),
    doc: str = "",
):
    """Register the decorated ``fn(inputs, dtype)`` as impl ``impl_id``."""
    backend, sep, name = impl_id.partition(":")
    if not sep or not backend or not name:
        raise ValueError(f"impl id {impl_id!r} is not backend:name")
    get_loss(loss)  # an impl must compute a loss the oracle defines
    unknown = set(dtypes) - set(DTYPES)
    if unknown:
        raise ValueError(f"{impl_id}: unknown dtypes {sorted(unknown)}")

    def register(fn: Callable) -> Callable:
        if impl_id in IMPLS:
            raise ValueError(f"impl {impl_id!r} registered twice")
        IMPLS[impl_id] = Impl(
            impl_id,
            loss,
            backend,
            fn,
            tuple(dtypes),
            tuple(requires),
            tuple(params),
            tuple(deviations),
            doc,
        )
        return fn

    return register


@cache
def load_all() -> dict[str, Impl]:
    """Import the built-in backends and every ``lossfuzz.impls`` entry point."""
    for module in BACKEND_MODULES:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    return IMPLS


def get_impl(impl_id: str) -> Impl:
    impls = load_all()
    try:
        return impls[impl_id]
    except KeyError:
        raise UnknownName("impl", impl_id, impls) from None


@cache
def availability(module: str) -> str | None:
    """None if ``module`` imports, else one line saying why not."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a framework failing in its own init
        return f"{module} is not installed or failed to import ({type(exc).__name__}: {exc})"
    return None


def skipped_reason(impl: Impl) -> str | None:
    for module in impl.requires:
        reason = availability(module)
        if reason:
            return reason
    return None
