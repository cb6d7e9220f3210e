"""Turn a finished cell into the results model: its Cell record, its Findings with the
one message form and a reproducer, and a compiled twin's Disagreements.

The one form of a wrong answer::

    torch:binary_cross_entropy_with_logits(logits=-50.0, labels=0.0) [float32] = 0.0,
    exact 1.9287499e-22: underflow (huge ULP, abs 1.9e-22)
"""

from __future__ import annotations

import math
from types import MappingProxyType

import mpmath
import numpy as np

from lossfuzz import oracles
from lossfuzz.harness.cell import CellRun, axis_name, documented_by, special_input
from lossfuzz.harness.records import Answer, Disagreement, Explanation, Twin
from lossfuzz.harness.registry import Impl
from lossfuzz.harness.reproducer import reproducer, twin_reproducer
from lossfuzz.harness.results import VALUE, Cell, Finding, Inputs, Profile, Quantity
from lossfuzz.harness.scoring import Observation


def exact_text(v: mpmath.mpf | None, digits: int = 20) -> str:
    if v is None:
        return "n/a"
    return mpmath.nstr(v, digits)


def describe(impl_id: str, inputs: dict, dtype: str, quantity: Quantity = VALUE, index=0) -> str:
    """impl(logits=-50.0, labels=0.0) [float32], with scalars for cases of one; for a
    gradient d/dlogits impl(...)[index] [float32] (the index within the row); for a
    reduction "mean of 1000 rows repeating impl(logits=[...], ...) [float16]"."""
    fmt = oracles.get_format(dtype)
    parts = []
    for name, value in inputs.items():
        if name == "axis" or (name == "label_smoothing" and not value):
            continue
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "iub":
                flat = [str(v) for v in value.ravel().tolist()]
            else:
                flat = [fmt.short(v) for v in value.astype(np.float64).ravel().tolist()]
            shown = flat[0] if len(flat) == 1 else f"[{', '.join(flat)}]"
        else:
            shown = repr(value)
        parts.append(f"{name}={shown}")
    call = f"{impl_id}({', '.join(parts)})"
    if quantity.kind == "reduction" and quantity.batch is None:
        return f"{quantity.reduction} of the batch {call} [{dtype}]"
    if quantity.kind == "reduction":
        return f"{quantity.reduction} of {quantity.batch} rows repeating {call} [{dtype}]"
    if quantity.is_value:
        return f"{call} [{dtype}]"
    wrt = inputs.get(quantity.wrt)
    entries = wrt.size if isinstance(wrt, np.ndarray) else 1
    at = f"[{index}]" if entries > 1 else ""
    return f"{quantity.label} {call}{at} [{dtype}]"


def show_float(v: float) -> str:
    return f"{v:.8g}" if math.isfinite(v) else repr(v)


def message(impl: Impl, dtype: str, o: Observation, quantity: Quantity = VALUE) -> str:
    """The one form of a wrong answer: call = got, exact e: class (ULP, abs)."""
    call = describe(impl.id, o.inputs, dtype, quantity, o.index)
    if o.error:
        return f"{call} raised {o.error}"
    ulp = o.score.ulp
    size = "huge ULP" if ulp >= 2**24 else f"{ulp:.3g} ULP"
    return (
        f"{call} = {show_float(o.got)}, exact {exact_text(o.exact, 8)}: "
        f"{o.cls} ({size}, abs {o.score.abs_error:.2g})"
    )


def finding(cell: CellRun, o: Observation, group=None) -> Finding:
    """The Finding of an observation (with its group: regime, count, explanation)."""
    impl, q = cell.impl, cell.quantity
    dev = documented_by(impl, o, q, cell.dtype, cell.tolerance)
    exact = exact_text(o.exact)
    reference = o.reference if o.reference is not None else math.nan
    return Finding(
        key=cell.key,
        loss=cell.loss,
        cls=o.cls,
        inputs=Inputs.of(o.inputs),
        index=o.index,
        exact=exact,
        reference=o.reference,
        got=o.got,
        ulp=o.score.ulp,
        abs_error=o.score.abs_error,
        error=o.error,
        explained=Explanation(dev.what, dev.source, dev.documented) if dev else None,
        message=message(impl, cell.dtype, o, q),
        reproducer=reproducer(impl, cell.dtype, o.inputs, exact, reference, o.index, q),
        group=group.signature if group is not None else (),
        group_cases=group.count if group is not None else 1,
        special=special_input(o.inputs),
    )


def _answer(o: Observation) -> Answer:
    return Answer(o.got, o.cls, o.score.ulp, o.score.abs_error)


def disagreement(cell: CellRun, compiled: Observation, eager: Observation) -> Disagreement:
    """A case where a compiled twin and its eager impl differ: both answers, each scored
    against the exact value, and a reproducer that runs both."""
    exact = exact_text(compiled.exact)
    call = describe(cell.impl.id, compiled.inputs, cell.dtype, cell.quantity, compiled.index)
    reference = compiled.reference if compiled.reference is not None else math.nan
    return Disagreement(
        inputs=Inputs.of(compiled.inputs),
        index=compiled.index,
        exact=exact,
        reference=reference,
        compiled=_answer(compiled),
        eager=_answer(eager),
        message=(
            f"{call}: compiled {show_float(compiled.got)} ({compiled.cls}), eager "
            f"{cell.twin.id} {show_float(eager.got)} ({eager.cls}), "
            f"exact {exact_text(compiled.exact, 8)}"
        ),
        reproducer=twin_reproducer(
            cell.impl,
            cell.twin,
            cell.dtype,
            compiled.inputs,
            exact,
            reference,
            compiled.index,
            cell.quantity,
        ),
    )


def cell_record(cell: CellRun, disagreements: tuple[Disagreement, ...] = ()) -> Cell:
    twin = None
    if cell.twin is not None:
        twin = Twin(
            cell.impl.mode, cell.twin.id, cell.compared, cell.disagree, tuple(disagreements)
        )
    points = tuple(sorted(cell.profile.values(), key=lambda p: p[0]))
    return Cell(
        key=cell.key,
        loss=cell.loss,
        cases=cell.cases,
        max_ulp=cell.max_ulp,
        max_finite_ulp=cell.max_finite_ulp,
        tolerance=cell.tolerance,
        counts=MappingProxyType(dict(cell.counts)),
        seconds=cell.seconds,
        autodiff=cell.impl.autodiff.name if cell.quantity.kind == "grad" else None,
        stopped=cell.stopped,
        twin=twin,
        profile=Profile(axis_name(cell.loss), points),
        finite=cell.finite.tally(),
        special=cell.special.tally(),
        groups_dropped=len(cell.dropped),
    )
