"""Your own loss, as you wrote it: its framework, its argument names, its batch mean.

A user's function is described once (``Description``): the framework whose tensors
it takes (numpy, torch, jax, tf; detected from the modules its code uses when not
given), how the oracle's inputs map onto its parameters (by name, recognising the
usual ones: ``input, target``, ``y_true, y_pred``, ``pred, gt``, ``y_hat, y``...;
else by position), and whether it returns a loss per row or reduces the batch to
its mean or sum (detected by calling it, when not given). ``preflight`` calls it
once on an ordinary input and says, in one line, what is wrong and how to fix it.

The description becomes an ``Impl`` whose call expression is the function applied to
the inputs (``my_loss(input=logits, target=labels)``), run on the framework's
backend, differentiated by its autodiff, and printed as such by reproducers.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass, replace

import numpy as np

from lossfuzz.harness.errors import UsageError, first_line

FRAMEWORKS = ("numpy", "torch", "jax", "tf")
REDUCTIONS = ("none", "mean", "sum")
ALIASES = {
    "logits": ("logits", "logit", "input", "inputs", "x", "y_pred", "pred", "preds",
               "prediction", "predictions", "output", "outputs", "y_hat", "yhat", "scores"),
    "probs": ("probs", "prob", "probabilities", "p", "input", "inputs", "y_pred", "pred", "preds",
              "prediction", "predictions", "output", "outputs", "y_hat", "yhat", "q"),
    "labels": ("labels", "label", "target", "targets", "y", "y_true", "true", "gt", "truth",
               "ground_truth", "t"),
    "pos_weight": ("pos_weight", "weight", "w"),
    "label_smoothing": ("label_smoothing", "smoothing"),
}  # fmt: skip


@dataclass(frozen=True)
class Description:
    """How a user's loss function is called; everything a worker needs to rebuild it."""

    spec: str  # module:function
    loss: str
    framework: str | None = None  # None: detected
    args: tuple[tuple[str, str], ...] = ()  # (oracle input, parameter) pairs; () detected
    reduction: str | None = None  # none, mean or sum; None: detected
    positional: bool = False  # the mapped inputs go by position, in ``args``' order
    framework_given: bool = False  # the user named the framework (none other is tried)


def to_json(desc: Description) -> dict:
    return {
        "loss": desc.loss,
        "framework": desc.framework,
        "args": [list(a) for a in desc.args],
        "positional": desc.positional,
        "reduction": desc.reduction,
    }


def from_json(spec: str, raw: dict) -> Description:
    """A description as a results file records it (validated by the caller's Fields)."""
    return Description(
        spec,
        raw["loss"],
        raw.get("framework"),
        tuple(tuple(a) for a in raw.get("args", ())),
        raw.get("reduction"),
        bool(raw.get("positional", False)),
        raw.get("framework") is not None,
    )


def load(spec: str):
    """The function ``module:function`` names, importing from the working directory
    first (as pytest does)."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise UsageError(f"--impl {spec!r} is neither a known impl id nor module:function")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load {spec!r}: {first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        raise UsageError(f"cannot load {spec!r}: importing it raised {first_line(exc)}") from None
    if not callable(obj):
        raise UsageError(f"{spec!r} is not callable")
    return obj


def parse_args(text: str) -> tuple[tuple[str, str], ...]:
    """``logits=input,labels=target`` as pairs; UsageError on anything else."""
    pairs = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, param = item.partition("=")
        if not sep or not name or not param or not param.isidentifier():
            raise UsageError(f"--args {text!r}: expected INPUT=PARAMETER pairs, e.g. logits=input")
        pairs.append((name.strip(), param.strip()))
    return tuple(pairs)


def _names(code) -> set:
    """The global names a code object and the functions nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names(const)
    return names


def detect_framework(fn) -> str:
    """The framework the function's own code uses: the modules (or their members) among
    the global names it refers to; NumPy when it uses none of torch, TensorFlow, JAX."""
    method = vars(type(fn)).get("__call__")  # a callable object's method
    code = getattr(fn, "__code__", None) or getattr(method, "__code__", None)
    if code is None:
        return "numpy"
    scope = getattr(fn, "__globals__", {})
    found = set()
    for name in _names(code):
        value = scope.get(name)
        if value is None:  # ``import tensorflow as tf`` inside the function names the module
            top = name.partition(".")[0]
            module = top if top in ("torch", "tensorflow", "keras", "jax", "optax", "flax") else ""
        elif inspect.ismodule(value):
            module = value.__name__
        else:
            module = getattr(value, "__module__", "")
        top = (module or "").partition(".")[0]
        found.add({"tensorflow": "tf", "keras": "tf", "optax": "jax", "flax": "jax"}.get(top, top))
    for framework in ("torch", "jax", "tf"):
        if framework in found:
            return framework
    return "numpy"


def _parameters(fn):
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None


def map_arguments(fn, spec, args=()) -> tuple[tuple[tuple[str, str], ...], bool]:
    """(pairs of oracle input and parameter, positional?) for calling ``fn``."""
    needed = [spec.primary] + (["labels"] if spec.labels else [])
    needed += [n for n in ("pos_weight",) if n in spec.params]
    params = _parameters(fn)
    if params is None:
        return tuple((n, n) for n in needed), True
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_positional = any(p.kind is p.VAR_POSITIONAL for p in params)
    if args:
        unknown = [param for _, param in args if param not in named]
        bad = [name for name, _ in args if name not in set(needed) | {"label_smoothing"}]
        if bad:
            raise UsageError(
                f"--args names {bad[0]!r}, which {spec.id} does not take ({', '.join(needed)})"
            )
        if unknown:
            raise UsageError(
                f"--args names the parameter {unknown[0]!r}, but the function takes "
                f"({', '.join(p.name for p in params)})"
            )
        return tuple(args), False
    taken, pairs = set(), []
    for name in needed + ["label_smoothing"]:
        match = next((p for p in named if p in ALIASES[name] and p not in taken), None)
        if match is None and name == "label_smoothing":
            continue
        if match is not None:
            taken.add(match)
            pairs.append((name, match))
    if len(pairs) >= len(needed):
        return tuple(pairs), False
    # by position: the parameters in order, the oracle's inputs in order (primary, labels)
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) == len(needed) or (var_positional and len(positional) <= len(needed)):
        return tuple(zip(needed, needed)), True
    shown = ", ".join(p.name for p in params)
    hint = ",".join(f"{n}={p}" for n, p in zip(needed, required or positional))
    hint = hint or "logits=..."
    raise UsageError(f"cannot tell which of ({shown}) are {', '.join(needed)}: give --args {hint}")


def call_expression(name: str, pairs, positional: bool) -> str:
    if positional:
        return f"{name}({', '.join(n for n, _ in pairs)})"
    return f"{name}({', '.join(f'{p}={n}' for n, p in pairs)})"


# ------------------------------------------------------------------ an Impl of it


def resolve(desc: Description, fn=None) -> Description:
    """The description with its framework and argument mapping filled in (nothing is
    called: the reduction is found by ``preflight``)."""
    from lossfuzz.oracles import get_loss

    if desc.framework is not None and desc.framework not in FRAMEWORKS:
        raise UsageError(f"--framework {desc.framework!r}: use one of {', '.join(FRAMEWORKS)}")
    if desc.reduction is not None and desc.reduction not in REDUCTIONS:
        raise UsageError(f"--reduction {desc.reduction!r}: use one of {', '.join(REDUCTIONS)}")
    fn = fn if fn is not None else load(desc.spec)
    spec = get_loss(desc.loss)
    pairs, positional = map_arguments(fn, spec, desc.args)
    return replace(
        desc,
        framework=desc.framework or detect_framework(fn),
        framework_given=desc.framework is not None or desc.framework_given,
        args=pairs,
        positional=positional,
    )


def register(desc: Description, fn=None):
    """The Impl ``user:MODULE:FUNCTION`` for a resolved description (registered once per
    description: a changed one replaces it)."""
    from lossfuzz.harness.registry import IMPLS, Impl, load_all

    load_all()
    fn = fn if fn is not None else load(desc.spec)
    impl_id = f"user:{desc.spec}"
    held = IMPLS.get(impl_id)
    if held is not None and held.description == desc:
        return held
    module, _, attr = desc.spec.partition(":")
    top = attr.split(".")[0] if attr.split(".")[0].isidentifier() else "loss_fn"
    name = attr if top != "loss_fn" else "loss_fn"
    runtime = desc.framework or "numpy"
    impl = Impl(
        impl_id,
        desc.loss,
        runtime,
        call=call_expression(name, desc.args, desc.positional),
        function=_top(fn, desc.spec) if top != "loss_fn" else fn,
        imports=f"from {module} import {top}" if top != "loss_fn" else "",
        description=desc,
    )
    IMPLS[impl_id] = impl
    return impl


def _top(fn, spec: str):
    """The object a dotted attribute starts from (``Class`` of ``Class.method``)."""
    module, _, attr = spec.partition(":")
    parts = attr.split(".")
    if len(parts) == 1:
        return fn
    return getattr(sys.modules.get(module) or importlib.import_module(module), parts[0])


def ordinary_inputs(loss: str, rows: int = 3) -> dict:
    """A small batch of unremarkable inputs (no extreme values) for a loss."""
    from lossfuzz.oracles import get_loss

    spec = get_loss(loss)
    rng = np.random.default_rng(0)
    out: dict = {}
    if spec.shape == "elementwise":
        if spec.primary == "logits":
            out["logits"] = np.array([0.5, -1.5, 2.0, -0.25, 1.0, -3.0][:rows])
        else:
            out["probs"] = np.array([0.3, 0.8, 0.55, 0.1, 0.65, 0.9][:rows])
        if spec.labels:
            out["labels"] = np.array([1.0, 0.0, 0.25, 0.0, 1.0, 0.75][:rows])
        if "pos_weight" in spec.params:
            out["pos_weight"] = np.full(rows, 2.0)
        return out
    k = 4
    if spec.primary == "logits":
        out["logits"] = rng.normal(size=(rows, k)).round(3)
    else:
        p = rng.uniform(0.1, 1.0, size=(rows, k))
        out["probs"] = (p / p.sum(axis=-1, keepdims=True)).round(3)
    if spec.labels == "sparse":
        out["labels"] = np.arange(rows) % k
    elif spec.labels == "dense":
        out["labels"] = np.eye(k)[np.arange(rows) % k]
    return out


def preflight(impl, caller, dtype: str = "float32"):
    """Call the user's function once on ordinary inputs, and again on the batch doubled:
    the Impl with its reduction decided, or UsageError saying in one line what is wrong
    and what would fix it. Other frameworks are tried where the detected one fails."""
    from lossfuzz import oracles
    from lossfuzz.harness.isolation import ImplFailed

    desc = impl.description
    first_error, alike = None, True
    candidates = (
        [desc.framework]
        if desc.framework_given
        else [desc.framework] + [f for f in FRAMEWORKS if f != desc.framework]
    )
    for framework in candidates:
        trial = register(replace(desc, framework=framework))
        batch = ordinary_inputs(desc.loss, 3)
        twice = {k: np.concatenate([v, v]) for k, v in batch.items()}
        try:
            one = _answer(trial, caller, batch, dtype)
            two = _answer(trial, caller, twice, dtype)
        except (ImplFailed, Exception) as exc:  # noqa: BLE001 - what the user's code did
            if isinstance(exc, ImplFailed) and exc.kind != "error":  # not the framework's
                raise UsageError(
                    f"{desc.spec}: {trial.call} "
                    f"{'crashed' if exc.kind == 'crash' else 'gave no answer'} on an ordinary "
                    f"input ({exc.message}); lossfuzz needs it to answer one before fuzzing"
                ) from None
            message = exc.message if isinstance(exc, ImplFailed) else first_line(exc)
            first_error = first_error or (framework, message)
            alike = alike and message == first_error[1]
            continue
        return register(replace(trial.description, reduction=_reduction(trial, one, two)))
    framework, message = first_error
    spec = oracles.get_loss(desc.loss)
    raise UsageError(_explain(impl, framework, message, spec, alike and len(candidates) > 1))


def _answer(impl, caller, inputs, dtype):
    from lossfuzz import oracles

    cast = oracles.cast_inputs(impl.loss, dtype, **inputs)
    return np.asarray(caller.answer(impl, cast))


def _reduction(impl, one: np.ndarray, two: np.ndarray) -> str:
    from lossfuzz import oracles

    desc = impl.description
    spec = oracles.get_loss(desc.loss)
    rows = 3
    per_row = (rows,) if spec.shape != "rowwise" else (rows, 4)
    if one.dtype.kind not in "fc" and one.dtype.name != "bfloat16":
        raise UsageError(
            f"{desc.spec} returned an array of {one.dtype}; a loss must return floating point"
        )
    if one.shape == per_row:
        found = "none"
    elif one.size == 1:
        a, b = float(one.ravel()[0]), float(two.ravel()[0])
        found = (
            "mean"
            if abs(b - a) <= 1e-3 * abs(a)
            else "sum"
            if abs(b - 2 * a) <= 1e-3 * abs(a)
            else None
        )
        if found is None:
            raise UsageError(
                f"{desc.spec} returns one number, but neither the mean nor the sum of its rows "
                f"({a!r} for 3 rows, {b!r} for them twice): give --reduction mean or sum"
            )
    else:
        raise UsageError(
            f"{desc.spec} returned shape {one.shape} for {rows} rows: neither one loss per row "
            "nor one number for the batch (--reduction none|mean|sum)"
        )
    if desc.reduction is not None and desc.reduction != found:
        raise UsageError(
            f"{desc.spec} was described with --reduction {desc.reduction}, "
            f"but it returns {'one loss per row' if found == 'none' else 'its batch ' + found}"
        )
    return found


def _explain(impl, framework: str, message: str, spec, everywhere: bool = False) -> str:
    desc = impl.description
    params = _parameters(impl.function) or []
    shown = ", ".join(p.name for p in params)
    call = impl.call
    hint = ""
    if "argument" in message and ("missing" in message or "unexpected" in message):
        needed = [spec.primary] + (["labels"] if spec.labels else [])
        named = [p.name for p in params][: len(needed)]
        hint = f"; it takes ({shown}): map them with --args " + ",".join(
            f"{n}={p}" for n, p in zip(needed, named)
        )
    elif everywhere:
        return f"{desc.spec}: {call} raised {message} on an ordinary input, in every framework"
    elif not desc.framework_given:
        hint = "; name its framework with --framework numpy|torch|jax|tf"
    return f"{desc.spec}: {call} raised {message} on {framework} inputs{hint}"
