"""Self-contained reproducer scripts: the impl's own call on the exact input floats.

A reproducer needs only the framework (and NumPy for the numpy runtime): it
rebuilds each input from ``float.fromhex`` literals, so the framework receives
the very bits lossfuzz tested, runs the impl's expression as registered, and
prints the answer beside the exact value from lossfuzz's oracle. A compiled twin's
reproducer defines the compiled function first; a disagreement's reproducer runs
the eager impl and its compiled twin on the same inputs and prints both.
"""

from __future__ import annotations

import numpy as np

from lossfuzz.harness.registry import Impl, tile_code
from lossfuzz.harness.results import VALUE, Quantity

HEADER = "# lossfuzz reproducer: {impl} [{dtype}] computes {loss}\n"


def _readable(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return repr(arr.tolist())
    return repr(arr.astype(np.float64).tolist())


def _imports(impl: Impl, wrt: str | None) -> list[str]:
    lines = [impl.autodiff.imports if wrt is not None else impl.runner.imports]
    if wrt is None and impl.compiled is not None and impl.compiled.imports:
        lines.append(impl.compiled.imports)
    if impl.imports:
        lines.append(impl.imports)
    if impl.call is None and impl.function is not None:
        lines.append(f"from {impl.function.__module__} import {impl.function.__qualname__}")
    return lines


def _inputs(impl: Impl, inputs: dict, wrt: str | None) -> list[str]:
    literal = impl.autodiff.literal if wrt is not None else impl.runner.literal
    lines = []
    for name, value in impl.arguments(inputs).items():
        if isinstance(value, np.ndarray):
            lines.append(f"{name} = {literal(value)}  # {_readable(value)}")
        else:
            lines.append(f"{name} = {value!r}")
    return lines


def _compute(impl: Impl, inputs: dict, q: Quantity) -> tuple[list[str], str]:
    """The lines that compute the answer, and the variable that holds it."""
    wrt = q.wrt
    if q.kind == "reduction" and impl.reduces:  # the user's loss reduces the batch itself
        return [f"got = {impl.call}"], "got"
    if q.kind == "reduction":
        reduction, batch = q.reduction, q.batch
        call = impl.reduced[reduction]
        lines = [
            f"# the batch: these rows repeated, in order, to {batch} rows",
            tile_code(impl.runner, impl.arguments(inputs), batch),
        ]
        if impl.compiled is not None:
            return lines + [c for c in impl.compiled.value_code(call, impl.signature) if c], "got"
        return [*lines, f"got = {call}"], "got"
    if wrt is not None:
        params = impl.signature if impl.compiled else ""
        return [impl.autodiff.code(impl.call, wrt, params).strip("\n")], "grad"
    if impl.call is None:
        args = ", ".join(f"{n}={n}" for n in impl.arguments(inputs))
        return [f"got = {impl.function.__qualname__}({args})"], "got"
    if impl.compiled is not None:
        return [c for c in impl.compiled.value_code(impl.call, impl.signature) if c], "got"
    return [f"got = {impl.call}"], "got"


def _show(impl: Impl, wrt: str | None, var: str, index: int) -> str:
    show = impl.autodiff.show if wrt is not None else impl.runner.show
    return show.format(v=var, i=index)


def _header(impl: Impl, dtype: str, q: Quantity) -> str:
    wrt = q.wrt
    if wrt is None:
        head = HEADER.format(impl=impl.id, dtype=dtype, loss=impl.loss).rstrip()
        if q.kind == "reduction" and q.batch is not None:
            head += f", reduced to its {q.reduction} over {q.batch} rows"
        elif q.kind == "reduction":
            head += f", which returns the {q.reduction} of its batch"
        mode = impl.compiled
        if mode is not None:
            head += f", {'compiled by' if mode.compiles else 'on'} {mode.what}"
        return head
    return (
        f"# lossfuzz reproducer: d/d{wrt} of {impl.id} [{dtype}] ({impl.loss}), "
        f"by {impl.autodiff.name}"
    )


def reproducer(
    impl: Impl,
    dtype: str,
    inputs: dict,
    exact: str,
    reference: float,
    index: int = 0,
    quantity: Quantity = VALUE,
) -> str:
    """Python source that reruns ``impl`` on ``inputs`` (cast, class axis last) and prints
    element ``index`` of its answer: the value, or for a gradient quantity the gradient
    of the sum of the values with respect to that input, through the backend's
    autodiff; for a reduction, the reduction of the rows repeated to its batch size."""
    wrt = quantity.wrt
    head = _header(impl, dtype, quantity)
    lines = [head, *_imports(impl, wrt), *_inputs(impl, inputs, wrt)]
    code, var = _compute(impl, inputs, quantity)
    lines += code
    lines.append(f'print("got:  ", {_show(impl, wrt, var, index)})')
    lines.append(_exact_line(exact, dtype, reference))
    return "\n".join(lines) + "\n"


def twin_reproducer(
    compiled: Impl,
    eager: Impl,
    dtype: str,
    inputs: dict,
    exact: str,
    reference: float,
    index: int = 0,
    quantity: Quantity = VALUE,
) -> str:
    """Python source that runs ``eager`` and its compiled twin on the same inputs and
    prints element ``index`` of both answers (values, gradients, or the reduction of a
    tiled batch)."""
    wrt, reduction = quantity.wrt, quantity.kind == "reduction"
    what = "values" if wrt is None else quantity.label
    if reduction:
        what = f"the {quantity.reduction} over {quantity.batch} rows"
    head = (
        f"# lossfuzz reproducer: {eager.id} against {compiled.id} [{dtype}] ({compiled.loss}), "
        f"{what}: eager CPU and {compiled.compiled.what} disagree"
    )
    lines = [head]
    for line in _imports(eager, wrt) + _imports(compiled, wrt):
        if line not in lines:
            lines.append(line)
    lines += _inputs(compiled, inputs, wrt)
    code, var = _compute(eager, inputs, quantity)
    lines += code
    lines.append(f"eager = {_show(eager, wrt, var, index)}")
    if reduction:  # the compiled twin gets the rows again, not the eager batch
        lines += _inputs(compiled, inputs, wrt)
    code, var = _compute(compiled, inputs, quantity)
    lines += code
    lines.append(f"compiled = {_show(compiled, wrt, var, index)}")
    lines.append('print("eager:   ", eager)')
    lines.append('print("compiled:", compiled)')
    lines.append(_exact_line(exact, dtype, reference))
    return "\n".join(lines) + "\n"


def _exact_line(exact: str, dtype: str, reference: float) -> str:
    return f'print("exact:", "{exact}", "(correctly rounded to {dtype}: {float(reference)!r})")'
