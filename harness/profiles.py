"""Campaign profiles: how much a run covers when it names no impl and no loss.

``lossfuzz run`` with nothing narrower runs a profile's cells: ``quick`` (about a
minute: values in float32 and float16 of every eager impl), ``default`` (what
``make report`` runs, about five minutes on two cores) and ``deep`` (every cell,
torch.compile gradients and reductions and million-row batches included, with
three times a named run's budget). A run that names impls or losses runs all of their cells;
an explicit ``--budget``, ``--batch``, ``--dtype`` or ``--quantity`` wins over the
profile's. docs/guide.md lists what ``default`` leaves to ``deep`` and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lossfuzz.harness.errors import UsageError

# Compiled modes compile anew for every dtype, input signature, backward and reduction
# (XLA 1-3 s a cell, Inductor 3-15 s): `default` runs them in float32 only.
COMPILED = ("tf-xla", "keras-xla", "jax-jit", "torch-compile")


@dataclass(frozen=True)
class Profile:
    name: str
    about: str
    budget: int  # fuzzed batches per cell after the edge grid
    batches: tuple[int, ...]  # the reduction cells' batch sizes
    opt_in: bool  # torch.compile's gradient and reduction cells (campaign.OPT_IN)
    keeps: Callable[[object], bool]  # which cells (campaign.CellSpec) of the selection run


def _quick(cell) -> bool:
    return cell.impl.mode is None and cell.quantity.kind == "value" and cell.dtype in (
        "float32", "float16",
    )  # fmt: skip


def _default(cell) -> bool:
    if cell.impl.mode in COMPILED:  # float32, where fusion parts ways with eager code most
        return cell.dtype == "float32"
    return True


PROFILES = {
    p.name: p
    for p in (
        Profile("quick", "values in float32 and float16 of every eager impl, a small budget",
                10, (1000,), False, _quick),
        Profile("default", "every eager impl and dtype, the compiled modes in float32",
                20, (1000,), False, _default),
        Profile("deep", "every cell, torch.compile's gradients and reductions and 10**6-row "
                "batches included, three times a named run's budget", 300, (1000, 1_000_000),
                True, lambda cell: True),
    )
}  # fmt: skip
DEFAULT = "default"


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown profile {name!r}; use {', '.join(PROFILES)}") from None
