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


def reproducer(impl: Impl, dtype: str, inputs: dict, exact: str, reference: float) -> str:
    """Python source that reruns ``impl`` on ``inputs`` (cast, class axis last)."""
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
    lines.append(f'print("got:  ", {b.show})')
    lines.append(
        f'print("exact:", "{exact}", "(correctly rounded to {dtype}: {float(reference)!r})")'
    )
    return "\n".join(lines) + "\n"
