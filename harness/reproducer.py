"""Self-contained reproducer scripts: the impl's own call on the exact input floats.

A reproducer needs only the framework (and NumPy for the numpy runtime): it
rebuilds each input from ``float.fromhex`` literals, so the framework receives
the very bits lossfuzz tested, runs the impl's expression as registered, and
prints the answer beside the exact value from lossfuzz's oracle.
"""

from __future__ import annotations

import numpy as np

from harness.registry import Impl

HEADER = "# lossfuzz reproducer: {impl} [{dtype}] computes {loss}\n"


def _readable(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return repr(arr.tolist())
    return repr(arr.astype(np.float64).tolist())


def reproducer(
    impl: Impl,
    dtype: str,
    inputs: dict,
    exact: str,
    reference: float,
    index: int = 0,
    wrt: str | None = None,
) -> str:
    """Python source that reruns ``impl`` on ``inputs`` (cast, class axis last) and prints
    element ``index`` of its answer: the value, or with ``wrt`` the gradient of the sum
    of the values with respect to that input, through the backend's autodiff."""
    if wrt is not None:
        return _gradient_reproducer(impl, dtype, inputs, exact, reference, index, wrt)
    b = impl.runner
    lines = [HEADER.format(impl=impl.id, dtype=dtype, loss=impl.loss).rstrip(), b.imports]
    if impl.imports:
        lines.append(impl.imports)
    if impl.function is not None:
        lines.append(f"from {impl.function.__module__} import {impl.function.__qualname__}")
    for name, value in impl.arguments(inputs).items():
        if isinstance(value, np.ndarray):
            lines.append(f"{name} = {b.literal(value)}  # {_readable(value)}")
        else:
            lines.append(f"{name} = {value!r}")
    if impl.function is not None:
        args = ", ".join(f"{n}={n}" for n in impl.arguments(inputs))
        lines.append(f"got = {impl.function.__qualname__}({args})")
    else:
        lines.append(f"got = {impl.call}")
    lines.append(f'print("got:  ", {b.show.format(v="got", i=index)})')
    lines.append(_exact_line(exact, dtype, reference))
    return "\n".join(lines) + "\n"


def _exact_line(exact: str, dtype: str, reference: float) -> str:
    return f'print("exact:", "{exact}", "(correctly rounded to {dtype}: {float(reference)!r})")'


def _gradient_reproducer(impl, dtype, inputs, exact, reference, index, wrt) -> str:
    ad = impl.autodiff
    head = f"# lossfuzz reproducer: d/d{wrt} of {impl.id} [{dtype}] ({impl.loss}), by {ad.name}"
    lines = [head, ad.imports]
    if impl.imports:
        lines.append(impl.imports)
    for name, value in impl.arguments(inputs).items():
        if isinstance(value, np.ndarray):
            lines.append(f"{name} = {ad.literal(value)}  # {_readable(value)}")
        else:
            lines.append(f"{name} = {value!r}")
    lines.append(ad.code(impl.call, wrt).strip("\n"))
    lines.append(f'print("got:  ", {ad.show.format(v="grad", i=index)})')
    lines.append(_exact_line(exact, dtype, reference))
    return "\n".join(lines) + "\n"
