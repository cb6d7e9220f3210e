"""Implementations under test: one frozen record per way of computing a loss.

Most impls are a call expression over the input names, run on a backend (see
``harness/backends/__init__.py``)::

    implementation("torch:softplus", loss="softplus", call="F.softplus(logits)")

A Python function works too, for user code and packages that ship their own
impls: it is called with the inputs as NumPy arrays, by name::

    @implementation("mypkg:my_bce", loss="sigmoid_cross_entropy_with_logits")
    def my_bce(logits, labels): ...

Every impl answers through one call, ``Impl.answer(inputs, quantity)``: its values,
the gradient of their sum with respect to one input, or the reduction of a batch.
Inputs arrive as ``oracles.cast_inputs`` returns them (arrays of the case's dtype,
class indices as int64, the class axis last). Listing impls imports no framework;
``skipped_reason`` says, in one line, why a framework cannot be loaded. Packages
add impls through the entry-point group ``lossfuzz.impls`` (each entry point
names a module that registers impls when imported).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import metadata

import numpy as np

from lossfuzz.harness.backends import (
    AUTODIFF,
    BACKENDS,
    FRAMEWORK_MODULES,
    Autodiff,
    Backend,
    quiet_stderr,
)
from lossfuzz.harness.backends.modes import MODES, Mode, pad_rows
from lossfuzz.harness.deviations import Deviation
from lossfuzz.harness.errors import first_line
from lossfuzz.harness.results import VALUE, Quantity
from lossfuzz.oracles import DTYPES, UnknownName, get_loss

ENTRY_POINT_GROUP = "lossfuzz.impls"


@dataclass(frozen=True)
class Impl:
    id: str  # backend:name
    loss: str  # the oracle's loss id (a variant where the library documents one)
    runtime: str  # key of BACKENDS: how inputs become tensors
    call: str | None = None  # the expression, or None for a function impl
    function: Callable | None = field(default=None, compare=False, repr=False)
    imports: str = ""  # extra import lines the expression needs
    dtypes: tuple[str, ...] = DTYPES
    requires: tuple[str, ...] = ()  # modules that must import, beyond the backend's
    params: tuple[str, ...] = ()  # optional oracle inputs it takes (label_smoothing)
    deviations: tuple[Deviation, ...] = ()
    grad_wrt: tuple[str, ...] | None = None  # None: every input the oracle differentiates
    # reduction ("mean", "sum") -> the call that reduces the batch's losses to one number
    reduced: dict = field(default_factory=dict, compare=False)
    mode: str | None = None  # a key of modes.MODES (a compiler or a GPU); None: eager CPU
    eager: str | None = None  # such a twin's eager CPU impl: what it is compared with
    min_classes: int = 1  # the fewest classes a row may have (scikit-learn's log_loss: 2)
    # what the library's documentation says the call computes, and where
    doc: tuple[str, str] | None = None
    # a user's loss: how it is called (userimpl.Description), rebuilt by worker processes
    description: object = field(default=None, compare=False)

    @property
    def backend(self) -> str:
        return self.id.partition(":")[0]

    @property
    def compiled(self) -> Mode | None:
        return MODES[self.mode] if self.mode else None

    @property
    def framework(self) -> str | None:
        """The library whose documentation the impl follows (tf, keras, torch, jax), or
        None for hand-written formulas and user code."""
        if self.call is None:
            return None
        base = self.compiled.base if self.compiled else self.runtime
        return BACKENDS[base].framework if base in BACKENDS else None

    @property
    def signature(self) -> str:
        """A compiled function's parameters: the loss's inputs that the call uses."""
        uses = _compiled(self.call).co_names
        return ", ".join(n for n in get_loss(self.loss).inputs if n in uses)

    @property
    def runner(self) -> Backend:
        return self.compiled.runner if self.compiled else BACKENDS[self.runtime]

    @property
    def modules(self) -> tuple[str, ...]:
        extra = self.compiled.requires if self.compiled else ()
        return self.runner.requires + self.requires + extra

    @property
    def autodiff(self) -> Autodiff | None:
        """How this impl's call is differentiated; None for function impls, and for NumPy
        calls into other libraries (SciPy, scikit-learn), which have no autodiff."""
        if self.call is None or (self.runtime == "numpy" and (self.imports or self.requires)):
            return None
        if self.compiled:
            return _mode_autodiff(self.compiled)
        return AUTODIFF.get(self.runtime)

    @property
    def gradients(self) -> tuple[str, ...]:
        """The inputs gradient cells differentiate with respect to: those the oracle has a
        gradient for (the logits or probabilities; soft labels where they carry one),
        that the call uses, given an autodiff for its backend."""
        if self.autodiff is None:
            return ()
        from lossfuzz.oracles.api import WRT
        from lossfuzz.oracles.gradients import GRADIENTS

        uses = frozenset(_compiled(self.call).co_names)
        known = [w for w in WRT if (self.loss, w) in GRADIENTS and w in uses]
        if self.grad_wrt is not None:
            known = [w for w in known if w in self.grad_wrt]
        return tuple(known)

    @property
    def reduces(self) -> str | None:
        """ "mean" or "sum" for a user's loss that returns its batch's reduction."""
        d = self.description
        return d.reduction if d is not None and d.reduction in ("mean", "sum") else None

    def quantities(self, batches: tuple[int, ...]) -> list[Quantity]:
        """Everything this impl can be measured on: its values, each reduction it has over
        each batch size, and each gradient; for a loss that reduces its batch itself, that
        reduction of the batch as drawn and its gradients."""
        if self.reduces:
            r = self.reduces
            return [Quantity.reduce(r, None)] + [Quantity.grad(w, r) for w in self.gradients]
        return (
            [VALUE]
            + [Quantity.reduce(r, b) for r in ("mean", "sum") if r in self.reduced for b in batches]
            + [Quantity.grad(w) for w in self.gradients]
        )

    def answer(self, inputs: dict, quantity: Quantity = VALUE) -> np.ndarray:
        """The impl's answer for cast ``inputs``, as a NumPy array: its values; with a
        gradient quantity d sum(values) / d inputs[wrt] through the backend's autodiff;
        with a reduction quantity the reduction of the losses of the input rows repeated,
        in order, to the batch size (the repeating runs in the framework, ``tile_code``).
        """
        # a framework's warnings (Keras on a single class, NumPy on overflow) are not
        # findings and would bury the campaign's output; the answer is what is scored
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if quantity.kind == "reduction":
                call = self.call if self.reduces else self.reduced[quantity.reduction]
                return self._run(call, inputs, quantity.batch)
            if quantity.kind == "grad":
                return self._gradient(inputs, quantity.wrt)
            if self.call is None:
                return np.asarray(self.function(**self.arguments(inputs)))
            return self._run(self.call, inputs)

    def _gradient(self, inputs: dict, wrt: str) -> np.ndarray:
        ad = self.autodiff
        if ad is None or wrt not in self.gradients:
            raise ValueError(f"{self.id} has no gradient with respect to {wrt!r}")
        ns = dict(_grad_namespace(self, wrt))
        inputs, n = self._padded(inputs)
        for name, value in inputs.items():
            ns[name] = ad.to_native(value) if isinstance(value, np.ndarray) else value
        params = self.signature if self.compiled else ""
        exec(_compiled_step(ad, self.call, wrt, params), ns)
        grad = ad.from_native(ns["grad"])
        return grad[:n] if n else grad

    def _padded(self, inputs: dict) -> tuple[dict, int | None]:
        if self.compiled is not None and self.compiled.pad:
            return pad_rows(inputs)
        return inputs, None

    def _run(self, call: str, inputs: dict, batch: int | None = None) -> np.ndarray:
        """``call`` on the backend with the inputs as its tensors (rows tiled to ``batch``
        first, if given), eagerly or through the impl's mode; the answer as NumPy."""
        b = self.runner
        ns = dict(_namespace(self, call))
        n = None
        if batch is None:
            inputs, n = self._padded(inputs)
        for name, value in inputs.items():
            ns[name] = b.to_native(value) if isinstance(value, np.ndarray) else value
        if batch is not None:
            exec(_compiled_exec(tile_code(b, self.arguments(inputs), batch)), ns)
        if self.compiled is None:
            got = b.from_native(eval(_compiled(call), ns))
        else:
            _, invoke = self.compiled.value_code(call, self.signature)
            exec(_compiled_exec(invoke), ns)
            got = b.from_native(ns["got"])
        return got[:n] if n else got

    def arguments(self, inputs: dict) -> dict:
        """The inputs the impl uses: those its function's signature names (all, with
        **kwargs), or those its call expression mentions."""
        if self.call is None:
            names = _parameters(self.function)
        else:
            names = frozenset(_compiled(self.call).co_names)
        return {k: v for k, v in inputs.items() if names is None or k in names}


def _parameters(fn: Callable) -> frozenset | None:
    """Names ``fn`` accepts by keyword; None when it takes **kwargs."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


@cache
def _compiled(call: str):
    return compile(call, "<impl>", "eval")


@cache
def _compiled_exec(code: str):
    return compile(code, "<impl>", "exec")


@cache
def _compiled_step(ad: Autodiff, call: str, wrt: str, params: str):
    return compile(ad.step(call, wrt, params), "<impl gradient>", "exec")


@cache
def _mode_autodiff(mode: Mode) -> Autodiff:
    return mode.autodiff()


@cache
def _grad_namespace(impl: Impl, wrt: str) -> dict:
    """The autodiff's namespace with the impl's imports, and a compiled twin's gradient
    function defined (once per process: compiled code is cached per input signature)."""
    ad = impl.autodiff
    ns = dict(ad.namespace())
    _add_imports(impl, ns)
    setup = ad.setup(impl.call, wrt, impl.signature if impl.compiled else "")
    if impl.compiled:
        setup = impl.compiled.quiet + "\n" + setup
    if setup:
        with quiet_stderr():
            exec(setup, ns)
    return ns


def _add_imports(impl: Impl, ns: dict) -> None:
    """The impl's import lines, run in ``ns``; a user's function is put there by its own
    name as well (it may live where no import reaches, in a test module or a closure)."""
    if impl.call is not None and impl.function is not None:
        ns[impl.call.partition("(")[0].partition(".")[0]] = impl.function
        return
    if impl.imports:
        exec(impl.imports, ns)


def tile_code(backend: Backend, inputs: dict, batch: int) -> str:
    """Statements that repeat the rows of the input arrays, in order, to ``batch`` rows."""
    arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray) and v.ndim}
    rows = next(iter(arrays.values())).shape[0]
    reps = -(-batch // rows)
    return "\n".join(
        backend.tile.format(v=k, reps=reps, n=batch, ones=", 1" * (v.ndim - 1))
        for k, v in arrays.items()
        if v.shape[0] == rows
    )


@cache
def _namespace(impl: Impl, call: str) -> dict:
    """The backend's namespace with the impl's imports, and for a compiled twin its
    function for ``call`` defined (once per process)."""
    ns = dict(impl.runner.namespace())
    _add_imports(impl, ns)
    if impl.compiled:
        define, _ = impl.compiled.value_code(call, impl.signature)
        with quiet_stderr():
            exec(impl.compiled.quiet + "\n" + impl.compiled.imports + "\n" + define, ns)
    return ns


def labels_not_a_distribution(inputs: dict) -> bool:
    """Some label row of the case does not sum to exactly 1 (sums taken exactly)."""
    from fractions import Fraction

    labels = np.asarray(inputs["labels"], dtype=np.float64)
    rows = labels.reshape(-1, labels.shape[-1]) if labels.ndim else labels.reshape(1, 1)
    return any(sum(map(Fraction, row.tolist())) != 1 for row in rows)


IMPLS: dict[str, Impl] = {}
_ORIGIN: dict[str, str] = {}  # impl id -> the module that registered it
# (framework, loss family, check) -> (expectation, promise, source): what each framework's
# documentation says about its inputs; ``contracts.py`` holds the framework to it
CONTRACT_DOCS: dict[tuple[str, str, str], tuple[str, str, str]] = {}


def document(framework: str, table: dict) -> None:
    """Record what ``framework`` documents: {(loss family, check): (expect, promise, url)},
    expect being "raise" (the input is ruled out and must raise) or "either"."""
    for (kind, check), doc in table.items():
        CONTRACT_DOCS[(framework, kind, check)] = doc


def implementation(
    impl_id: str,
    *,
    loss: str,
    call: str | None = None,
    runtime: str | None = None,
    imports: str = "",
    dtypes: tuple[str, ...] = DTYPES,
    requires: tuple[str, ...] = (),
    params: tuple[str, ...] = (),
    deviations: tuple[Deviation, ...] = (),
    grad_wrt: tuple[str, ...] | None = None,
    reduced: dict | None = None,
    mode: str | None = None,
    eager: str | None = None,
    min_classes: int = 1,
    doc: tuple[str, str] | None = None,
):
    """Register impl ``impl_id``: with ``call``, at once; without, as a decorator.
    ``mode`` (with the ``eager`` impl it compiles) registers a compiled twin."""
    backend, sep, name = impl_id.partition(":")
    if not sep or not backend or not name:
        raise ValueError(f"impl id {impl_id!r} is not backend:name")
    get_loss(loss)  # an impl must compute a loss the oracle defines
    unknown = set(dtypes) - set(DTYPES)
    if unknown:
        raise ValueError(f"{impl_id}: unknown dtypes {sorted(unknown)}")
    if runtime not in BACKENDS and "numpy" not in BACKENDS:
        importlib.import_module(FRAMEWORK_MODULES[0])  # NumPy: user code's runtime
    origin = sys._getframe(1).f_globals.get("__name__", "")
    runtime = runtime or (backend if backend in BACKENDS else "numpy")
    if runtime not in BACKENDS:
        raise ValueError(f"{impl_id}: unknown runtime {runtime!r}")

    def register(function: Callable | None) -> Callable | None:
        if impl_id in IMPLS:
            raise ValueError(f"impl {impl_id!r} registered twice")
        _ORIGIN[impl_id] = origin
        IMPLS[impl_id] = Impl(
            impl_id,
            loss,
            runtime,
            call,
            function,
            imports,
            tuple(dtypes),
            tuple(requires),
            tuple(params),
            tuple(deviations),
            grad_wrt,
            dict(reduced or {}),
            mode,
            eager,
            min_classes,
            doc,
        )
        return function

    if call is not None:
        _compiled(call)  # a syntax error surfaces at registration
        register(None)
        return IMPLS[impl_id]
    return register


def user_impl(spec: str, loss: str, description=None, caller=None) -> Impl:
    """Register a user's ``module:function`` as impl ``user:spec``: described by
    ``description`` (a ``userimpl.Description``; its framework, arguments and reduction
    detected where not given) and, given a ``caller``, checked by one preflight call."""
    from lossfuzz.harness import userimpl

    desc = description or userimpl.Description(spec, loss)
    if desc.spec != spec or desc.loss != loss:
        desc = replace(desc, spec=spec, loss=loss)
    fn = userimpl.load(spec)
    impl = userimpl.register(userimpl.resolve(desc, fn), fn)
    if caller is not None:
        impl = userimpl.preflight(impl, caller)
    return impl


@cache
def load_all() -> dict[str, Impl]:
    """Import the built-in backends and every ``lossfuzz.impls`` entry point. The impls
    come in a fixed order, whichever module was imported first: the framework modules'
    (``FRAMEWORK_MODULES``), each in the order it registers them, then everything else."""
    for module in FRAMEWORK_MODULES:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    rank = {m: i for i, m in enumerate(FRAMEWORK_MODULES)}
    ordered = sorted(
        enumerate(IMPLS.values()),
        key=lambda t: (rank.get(_ORIGIN.get(t[1].id), len(rank)), t[0]),
    )
    IMPLS.clear()
    IMPLS.update((impl.id, impl) for _, impl in ordered)
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
        with quiet_stderr():
            importlib.import_module(module)
    except Exception as exc:  # ImportError, or a framework failing in its own init
        return f"{module} is not installed or failed to import ({first_line(exc)})"
    return None


def skipped_reason(impl: Impl, quantity: Quantity = VALUE) -> str | None:
    """Why the impl (its gradient, for a gradient quantity) cannot run here, or None."""
    grad = quantity.kind == "grad"
    modules = impl.autodiff.requires + impl.requires if grad else impl.modules
    for module in modules:
        reason = availability(module)
        if reason:
            return reason
    base = impl.compiled.base if impl.compiled else impl.runtime
    reason = BACKENDS[base].unavailable() if base in BACKENDS else None
    return reason or (impl.compiled.unavailable() if impl.compiled else None)


def framework_versions() -> dict[str, str | None]:
    """The installed version of each framework the registry's impls need (by module name,
    as the results file records them), and of the libraries every run uses."""
    modules = ["numpy", "mpmath", "hypothesis", "ml_dtypes"]
    for impl in load_all().values():
        for m in impl.modules:
            if m not in modules:
                modules.append(m)
    out = {}
    dists = metadata.packages_distributions()
    for module in modules:
        version = None
        for dist in dists.get(module, ()):
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        out[module] = version
    return out
