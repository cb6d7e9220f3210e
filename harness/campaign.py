"""A campaign: choose the cells, run each, and build the results file of DESIGN.md."""

from __future__ import annotations

import fnmatch
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from lossfuzz.harness import results as R
from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.metrics import CLASSES, DEFAULT_TOLERANCE, worst
from lossfuzz.harness.registry import Impl, get_impl, load_all, skipped_reason, user_impl
from lossfuzz.harness.reproducer import reproducer, twin_reproducer
from lossfuzz.harness.results import cell_name, quantity_label
from lossfuzz.harness.runner import Cell, Observation, documented_by, finalise, run_cell, settle

from lossfuzz import oracles

DEFAULT_BUDGET = 100  # fuzzed batches per cell after the edge grid: all 181 cells in minutes


QUANTITIES = ("value", "grad", "reduction")
REDUCTIONS = ("mean", "sum")
DEFAULT_BATCHES = (1000, 1_000_000)  # a reduction cell repeats its rows to this many
# torch.compile compiles anew for every dtype, input signature, backward and reduction
# (3-15 s a cell, and again in the confirming worker): the default campaign runs its
# value cells; these run when torch-compile impls are named (--impl 'torch-compile:*')
OPT_IN = {("torch-compile", "grad"), ("torch-compile", "reduction")}
REDUCTION_BUDGET = 10  # fuzzed batches per reduction cell: each may be a million rows


@dataclass
class Selection:
    # (impl, dtype, wrt, reduce): wrt None for values, reduce (reduction, batch) or None
    cells: list[tuple[Impl, str, str | None, tuple | None]]
    skipped: list[dict] = field(default_factory=list)  # {"impl", "reason"}


def _covers(impl: Impl, loss: str) -> bool:
    return impl.loss == loss or oracles.get_loss(impl.loss).variant_of == loss


def select(
    losses=(), impls=(), dtypes=(), quantities=QUANTITIES, batches=DEFAULT_BATCHES
) -> Selection:
    """The cells a run covers: (impl, dtype) for values, (impl, dtype, wrt) for each
    gradient the impl has, and (impl, dtype, reduction, batch) for each reduction it
    has and each batch size; frameworks that cannot load are skipped, with the reason."""
    unknown = set(quantities) - set(QUANTITIES)
    if unknown:
        raise UsageError(f"unknown quantity {sorted(unknown)[0]!r}; use value, grad or reduction")
    for b in batches:
        if not isinstance(b, int) or not 1 <= b <= 10**8:
            raise UsageError(f"batch size {b!r} must be an integer from 1 to 10**8")
    for loss in losses:
        oracles.get_loss(loss)
    for dtype in dtypes:
        try:
            oracles.get_format(dtype)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    registry = load_all()
    chosen: list[Impl] = []
    for name in impls:
        if name in registry:
            chosen.append(registry[name])
        elif any(ch in name for ch in "*?["):  # a pattern: every impl id it matches
            matched = [i for i in registry.values() if fnmatch.fnmatchcase(i.id, name)]
            if not matched:
                raise UsageError(f"--impl {name!r} matches no impl (lossfuzz losses lists them)")
            chosen += [i for i in matched if i not in chosen]
        elif ":" in name and name.partition(":")[0] not in {i.backend for i in registry.values()}:
            if len(losses) != 1:
                raise UsageError(
                    f"--impl {name} is user code: name the loss it computes with one --loss"
                )
            chosen.append(user_impl(name, losses[0]))
        else:
            chosen.append(get_impl(name))  # raises UnknownName with suggestions
    if not impls:
        chosen = list(registry.values())
    opt_in = not impls  # costly cells run when their impls are named (OPT_IN)
    if losses:
        chosen = [i for i in chosen if any(_covers(i, loss) for loss in losses)]
    sel = Selection([])
    for impl in chosen:
        reason = skipped_reason(impl)
        if reason:
            sel.skipped.append({"impl": impl.id, "reason": reason})
            continue
        wanted = [d for d in impl.dtypes if not dtypes or d in dtypes]
        if "value" in quantities:
            sel.cells += [(impl, d, None, None) for d in wanted]
        if "reduction" in quantities and not (opt_in and (impl.mode, "reduction") in OPT_IN):
            sel.cells += [
                (impl, d, None, (r, b))
                for r in REDUCTIONS
                if r in impl.reduced
                for b in batches
                for d in wanted
            ]
        if "grad" not in quantities or (opt_in and (impl.mode, "grad") in OPT_IN):
            continue
        for wrt in impl.gradients:
            reason = skipped_reason(impl, wrt)
            if reason:
                sel.skipped.append({"impl": f"{impl.id} {quantity_label(wrt)}", "reason": reason})
                continue
            ad = impl.autodiff
            sel.cells += [(impl, d, wrt, None) for d in wanted if d in ad.dtypes]
            for d in wanted:
                if d not in ad.dtypes:
                    sel.skipped.append(
                        {
                            "impl": cell_name(impl.id, d, wrt),
                            "reason": f"{ad.name} does not support {d}",
                        }
                    )
    return sel


def describe(
    impl_id: str, inputs: dict, dtype: str, wrt: str | None = None, index=0, reduce=None
) -> str:
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
    if reduce is not None:
        return f"{reduce[0]} of {reduce[1]} rows repeating {call} [{dtype}]"
    if wrt is None:
        return f"{call} [{dtype}]"
    entries = inputs[wrt].size if isinstance(inputs.get(wrt), np.ndarray) else 1
    at = f"[{index}]" if entries > 1 else ""
    return f"{quantity_label(wrt)} {call}{at} [{dtype}]"


def _fmt(v: float) -> str:
    return f"{v:.8g}" if math.isfinite(v) else repr(v)


def message(impl: Impl, dtype: str, o: Observation, wrt: str | None = None, reduce=None) -> str:
    """The one form of a wrong answer: call = got, exact e: class (ULP, abs)."""
    call = describe(impl.id, o.inputs, dtype, wrt, o.index, reduce)
    if o.error:
        return f"{call} raised {o.error}"
    ulp = o.score.ulp
    size = "huge ULP" if ulp >= 2**24 else f"{ulp:.3g} ULP"
    return (
        f"{call} = {_fmt(o.got)}, exact {R.exact_text(o.exact, 8)}: "
        f"{o.cls} ({size}, abs {o.score.abs_error:.2g})"
    )


def finding(cell: Cell, o: Observation) -> dict:
    impl = cell.impl
    dev = documented_by(impl, o, cell.wrt, cell.reduce)
    exact = R.exact_text(o.exact)
    return {
        "loss": cell.loss,
        "impl": impl.id,
        "dtype": cell.dtype,
        "quantity": cell.quantity,
        "wrt": cell.wrt,
        **_reduction_fields(cell),
        "class": o.cls,
        "inputs": R.encode_inputs(o.inputs, cell.dtype),
        "index": o.index,
        "exact": exact,
        "reference": R.hexfloat(o.reference) if o.reference is not None else None,
        "reference_repr": repr(o.reference) if o.reference is not None else None,
        "got": R.hexfloat(o.got) if o.got is not None else None,
        "got_repr": repr(o.got) if o.got is not None else None,
        "ulp": R.number(o.score.ulp),
        "abs_error": R.number(o.score.abs_error),
        "error": o.error,
        "documented": dev.what if dev else None,
        "documented_source": dev.source if dev else None,
        "confirmed": True,
        "message": message(impl, cell.dtype, o, cell.wrt, cell.reduce),
        "reproducer": reproducer(
            impl,
            cell.dtype,
            o.inputs,
            exact,
            o.reference if o.reference is not None else math.nan,
            index=o.index,
            wrt=cell.wrt,
            reduce=cell.reduce,
        ),
    }


def _reduction_fields(cell: Cell) -> dict:
    if cell.reduce is None:
        return {}
    return {"reduction": cell.reduce[0], "batch": cell.reduce[1]}


def _answer(o: Observation) -> dict:
    return {
        "got": R.hexfloat(o.got),
        "got_repr": repr(o.got),
        "class": o.cls,
        "ulp": R.number(o.score.ulp),
        "abs_error": R.number(o.score.abs_error),
    }


def disagreement(cell: Cell, compiled: Observation, eager: Observation) -> dict:
    """A case where a compiled twin and its eager impl differ: both answers, each scored
    against the exact value, and a reproducer that runs both."""
    exact = R.exact_text(compiled.exact)
    call = describe(
        cell.impl.id, compiled.inputs, cell.dtype, cell.wrt, compiled.index, cell.reduce
    )
    reference = compiled.reference if compiled.reference is not None else math.nan
    return {
        "inputs": R.encode_inputs(compiled.inputs, cell.dtype),
        "index": compiled.index,
        "exact": exact,
        "reference": R.hexfloat(reference),
        "compiled": _answer(compiled),
        "eager": _answer(eager),
        "message": (
            f"{call}: compiled {_fmt(compiled.got)} ({compiled.cls}), eager {cell.twin.id} "
            f"{_fmt(eager.got)} ({eager.cls}), exact {R.exact_text(compiled.exact, 8)}"
        ),
        "reproducer": twin_reproducer(
            cell.impl,
            cell.twin,
            cell.dtype,
            compiled.inputs,
            exact,
            reference,
            index=compiled.index,
            wrt=cell.wrt,
            reduce=cell.reduce,
        ),
    }


def cell_record(cell: Cell, findings: list[dict], disagreements: list[dict] = ()) -> dict:
    counts = {c: cell.counts[c] for c in CLASSES if cell.counts[c]}
    twin = {}
    if cell.twin is not None:
        twin = {
            "mode": cell.impl.mode,
            "twin": cell.twin.id,
            "compared": cell.compared,
            "disagreements": cell.disagree,
            "disagreement_cases": list(disagreements),
        }
    return {
        "loss": cell.loss,
        "impl": cell.impl.id,
        "dtype": cell.dtype,
        "quantity": cell.quantity,
        "wrt": cell.wrt,
        **_reduction_fields(cell),
        "autodiff": cell.impl.autodiff.name if cell.wrt else None,
        "cases": cell.cases,
        "max_ulp": R.number(cell.max_ulp),
        "max_finite_ulp": R.number(cell.max_finite_ulp),
        "tolerance": cell.tolerance,
        "counts": counts,
        "worst_class": worst(counts),
        "worst": findings[0] if findings else None,
        "seconds": round(cell.seconds, 3),
        **({"stopped": cell.stopped} if cell.stopped else {}),
        **twin,
        "profile": {
            "axis": _axis_name(cell.loss),
            "points": [
                [R.number(x), R.number(u), c, R.number(g), R.number(e)]
                for x, u, c, g, e in sorted(cell.profile.values(), key=lambda p: p[0])
            ],
        },
    }


def _axis_name(loss: str) -> str:
    """The plots' x axis; a gradient cell plots against the same input as its values."""
    spec = oracles.get_loss(loss)
    if spec.shape != "elementwise":
        return "row spread (max - min)"
    return "probability" if spec.primary == "probs" else "logit"


def run(
    selection: Selection,
    *,
    budget: int = DEFAULT_BUDGET,
    seconds: float | None = None,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    progress=None,
    isolation=None,
    done: dict | None = None,
    on_cell=None,
) -> dict:
    """Run every selected cell; the results file's content.

    ``isolation`` (an ``isolation.Isolation``) runs the impls in worker processes.
    ``done`` maps cell names to (record, findings) already computed (a resumed run):
    those cells are not run again. ``on_cell(name, record, findings, partial)`` is
    called after each cell; ``partial()`` builds the results so far (incomplete).
    """
    from lossfuzz.harness import runner

    start = time.monotonic()
    created = R.now()
    versions = R.versions()  # once: partial results are written every few seconds
    cells, findings = [], []
    done = done or {}
    total = len(selection.cells)
    state = {"complete": True}

    def results(complete: bool) -> dict:
        return {
            "schema": R.SCHEMA,
            "created": created,
            "seed": seed,
            "budget": budget if seconds is None else {"seconds": seconds},
            "versions": versions,
            "complete": complete,
            "elapsed_seconds": round(time.monotonic() - start, 3),
            "skipped": selection.skipped,
            "cells": list(cells),
            "findings": list(findings),
        }

    previous = runner.ISOLATION
    runner.ISOLATION = isolation
    try:
        for n, (impl, dtype, wrt, reduce) in enumerate(selection.cells):
            name = cell_name(impl.id, dtype, wrt, reduce)
            if name in done:
                record, kept = done[name]
                cells.append(record)
                findings.extend(kept)
                continue
            deadline = None
            if seconds is not None:
                left = seconds - (time.monotonic() - start)
                if left <= 0:
                    state["complete"] = False
                    break
                deadline = time.monotonic() + left / (total - n)
            if progress:
                progress(n, total, name)
            cell = run_cell(
                impl,
                dtype,
                budget=budget if reduce is None else min(budget, REDUCTION_BUDGET),
                campaign_seed=seed,
                tolerance=tolerance,
                deadline=deadline,
                wrt=wrt,
                reduce=reduce,
            )
            if runner.STOP["signal"]:
                state["complete"] = False  # a signal cut this cell short: it is not kept
                break
            kept = [finding(cell, o) for o in finalise(cell)]
            differ = [disagreement(cell, a, b) for a, b in settle(cell)] if cell.twin else []
            record = cell_record(cell, kept, differ)
            cells.append(record)
            findings.extend(kept)
            if on_cell:
                on_cell(name, record, kept, lambda: results(False))
    finally:
        runner.ISOLATION = previous
    return results(state["complete"])


def progress_bar(stream=sys.stderr):
    """A one-line progress display on a terminal; silent otherwise."""
    if not stream.isatty():
        return None

    def show(n, total, name):
        stream.write(f"\r\033[K[{n + 1}/{total}] {name}")
        stream.flush()

    return show


def summary_table(data: dict) -> str:
    """cell, cases, max ULP and counts per class: one line a cell."""
    rows = [("impl", "of", "dtype", "cases", "max ULP", "worst", "findings")]
    for c in data["cells"]:
        bad = ", ".join(f"{k} {v}" for k, v in c["counts"].items() if k not in ("exact", "ok"))
        rows.append(
            (
                c["impl"],
                quantity_label(c.get("wrt"), R.reduce_of(c)),
                c["dtype"],
                str(c["cases"]),
                _ulp_text(c["max_ulp"]),
                c["worst_class"],
                bad or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    return "\n".join(lines)


def _ulp_text(v) -> str:
    if isinstance(v, str):
        return v
    return f"{v:.3g}" if v < 1e6 else f"{v:.2e}"
