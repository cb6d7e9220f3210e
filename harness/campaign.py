"""A campaign: choose the cells, run each, and build the Results."""

from __future__ import annotations

import fnmatch
import sys
import time
from dataclasses import dataclass, field

from lossfuzz import oracles
from lossfuzz.harness import userimpl
from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.findings import cell_record, disagreement, finding
from lossfuzz.harness.isolation import Stopped
from lossfuzz.harness.metrics import DEFAULT_TOLERANCE
from lossfuzz.harness.registry import (
    Impl,
    framework_versions,
    get_impl,
    load_all,
    skipped_reason,
    user_impl,
)
from lossfuzz.harness.results import Cell, CellKey, Finding, Quantity, Results, Skipped, now
from lossfuzz.harness.scoring import Engine
from lossfuzz.harness.search import run_cell
from lossfuzz.harness.shrink import finalise, settle
from lossfuzz.harness.strategies import EVERYTHING, Scope
from lossfuzz.oracles.registry import closest

DEFAULT_BUDGET = 100  # fuzzed batches per cell after the edge grid
QUANTITIES = ("value", "grad", "reduction")
DEFAULT_BATCHES = (1000, 1_000_000)  # a reduction cell repeats its rows to this many
# torch.compile compiles anew for every dtype, input signature, backward and reduction
# (3-15 s a cell, and again in the confirming worker): the default campaign runs its
# value cells; these run when torch-compile impls are named (--impl 'torch-compile:*')
OPT_IN = {("torch-compile", "grad"), ("torch-compile", "reduction")}
REDUCTION_BUDGET = 10  # fuzzed batches per reduction cell: each may be a million rows


@dataclass(frozen=True)
class CellSpec:
    """A cell to run: an impl, a dtype, what to measure, and the inputs in scope."""

    impl: Impl
    dtype: str
    quantity: Quantity
    scope: Scope = EVERYTHING

    @property
    def key(self) -> CellKey:
        return CellKey(self.impl.id, self.dtype, self.quantity)


@dataclass
class Selection:
    cells: list[CellSpec]
    skipped: list[Skipped] = field(default_factory=list)


def _covers(impl: Impl, loss: str) -> bool:
    return impl.loss == loss or oracles.get_loss(impl.loss).variant_of == loss


def _loadable_or_unknown(name: str, registry) -> None:
    """Nothing if ``name`` loads as module:function; else, when it looks like a mistyped
    impl id, "unknown impl ...; did you mean ...", and otherwise why it cannot load."""
    try:
        userimpl.load(name)
    except UsageError as exc:
        close = closest(name, registry)
        if close:
            hint = " or ".join(map(repr, close))
            raise UsageError(f"unknown impl {name!r}; did you mean {hint}? ({exc})") from None
        raise


def _chosen(losses, impls, described=None, caller=None) -> list[Impl]:
    """The impls named (ids, patterns, or a user's module:function, described by
    ``described[spec]`` and preflighted with ``caller``), or every registered one."""
    registry = load_all()
    described = described or {}
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
            _loadable_or_unknown(name, registry)
            if len(losses) != 1:
                raise UsageError(
                    f"--impl {name} is user code: name the loss it computes with one --loss"
                )
            chosen.append(user_impl(name, losses[0], described.get(name), caller))
        else:
            chosen.append(get_impl(name))  # raises UnknownName with suggestions
    return chosen if impls else list(registry.values())


def select(
    losses=(),
    impls=(),
    dtypes=(),
    quantities=QUANTITIES,
    batches=DEFAULT_BATCHES,
    *,
    scope: Scope = EVERYTHING,
    described=None,
    caller=None,
    opt_in: bool | None = None,
) -> Selection:
    """The cells a run covers: for each chosen impl and dtype its values, each reduction
    it has over each batch size, and each gradient it has; frameworks that cannot load
    are skipped, with the reason. A user's loss (``module:function``) is described by
    ``described[spec]`` (a ``userimpl.Description``) and called once by ``caller`` to
    check the description before anything is fuzzed. The costly cells of ``OPT_IN`` run
    when ``opt_in`` (default: when impls are named)."""
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
    chosen = _chosen(losses, impls, described, caller)
    skip_costly = not impls if opt_in is None else not opt_in
    if losses:
        chosen = [i for i in chosen if any(_covers(i, loss) for loss in losses)]
    sel = Selection([])
    for impl in chosen:
        reason = skipped_reason(impl)
        if reason:
            sel.skipped.append(Skipped(impl.id, reason))
            continue
        wanted = [d for d in impl.dtypes if not dtypes or d in dtypes]
        if impl.description is not None and "grad" in quantities and not impl.gradients:
            sel.skipped.append(
                Skipped(f"{impl.id} gradients", f"{impl.runtime} has no autodiff lossfuzz uses")
            )
        for q in impl.quantities(tuple(batches)):
            kind = "value" if q.kind == "reduction" and q.batch is None else q.kind
            if kind not in quantities or (skip_costly and (impl.mode, q.kind) in OPT_IN):
                continue
            if q.kind != "grad":
                sel.cells += [CellSpec(impl, d, q, scope) for d in wanted]
                continue
            reason = skipped_reason(impl, q)
            if reason:
                sel.skipped.append(Skipped(f"{impl.id} {q.label}", reason))
                continue
            ad = impl.autodiff
            for d in wanted:
                if d in ad.dtypes:
                    sel.cells.append(CellSpec(impl, d, q, scope))
                else:
                    sel.skipped.append(
                        Skipped(CellKey(impl.id, d, q).name, f"{ad.name} does not support {d}")
                    )
    return sel


def versions() -> dict:
    """The versions a results file records: Python, lossfuzz, and every library the
    registry's impls need."""
    import platform

    import lossfuzz

    return {"python": platform.python_version(), "lossfuzz": lossfuzz.__version__} | (
        framework_versions()
    )


def run(
    selection: Selection,
    *,
    engine: Engine | None = None,
    budget: int = DEFAULT_BUDGET,
    seconds: float | None = None,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    progress=None,
    done: dict | None = None,
    on_cell=None,
    jobs: int = 1,
    isolation: tuple | None = None,
) -> Results:
    """Run every selected cell; the Results.

    ``engine`` says how impls are called (in this process, or in worker processes) and
    holds the stop flag a signal handler sets. ``done`` maps cell keys to (Cell,
    findings) already computed (a resumed run): those cells are not run again.
    ``on_cell(key, cell, findings, partial)`` is called after each cell; ``partial()``
    builds the results so far (incomplete). ``jobs`` > 1 runs cells in that many
    runner processes (``parallel.py``), each calling impls in workers of its own under
    ``isolation`` (timeout, memory limit), or in-process where it is None; the results
    are those of one job, in the selection's order.
    """
    engine = engine or Engine()
    start = time.monotonic()
    created = now()
    found_versions = versions()  # once: partial results are written every few seconds
    users = {
        s.impl.id: userimpl.to_json(s.impl.description)
        for s in selection.cells
        if s.impl.description is not None
    }
    cells: list[Cell] = []
    findings: list[Finding] = []
    done = done or {}
    total = len(selection.cells)
    complete = True

    def results(complete: bool) -> Results:
        return Results(
            created=created,
            seed=seed,
            budget=budget if seconds is None else {"seconds": seconds},
            versions=found_versions,
            cells=tuple(cells),
            findings=tuple(findings),
            complete=complete,
            elapsed_seconds=round(time.monotonic() - start, 3),
            skipped=tuple(selection.skipped),
            user_impls=users,
        )

    todo = []
    for n, spec in enumerate(selection.cells):
        if spec.key in done:
            record, kept = done[spec.key]
            cells.append(record)
            findings.extend(kept)
        else:
            todo.append(n)
    position = {spec.key: n for n, spec in enumerate(selection.cells)}

    def deadline_for(left_cells: int) -> tuple[bool, float | None]:
        """(time left?, the next cell's deadline): its share of the time left."""
        if seconds is None:
            return True, None
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            return False, None
        rounds = -(-left_cells // max(1, jobs))
        return True, time.monotonic() + left / rounds

    def keep(spec, record, kept):
        cells.append(record)
        findings.extend(kept)
        if on_cell:
            on_cell(spec.key, record, kept, lambda: results(False))

    if jobs <= 1 or len(todo) <= 1:
        for i, n in enumerate(todo):
            spec = selection.cells[n]
            more, deadline = deadline_for(len(todo) - i)
            if not more:
                complete = False
                break
            if progress:
                progress(n, total, spec.key.name)
            try:
                record, kept = run_one(
                    engine, spec.impl, spec.dtype, spec.quantity, spec.scope,
                    budget=budget, seed=seed, tolerance=tolerance, deadline=deadline,
                )  # fmt: skip
            except Stopped:
                complete = False  # a signal cut this cell short: it is not kept
                break
            keep(spec, record, kept)
    else:
        complete = _run_parallel(
            selection, todo, jobs, isolation, engine, budget, seed, tolerance,
            deadline_for, progress, keep,
        ) and complete  # fmt: skip
    cells.sort(key=lambda c: position.get(c.key, total))
    order = {c.key: i for i, c in enumerate(cells)}
    findings.sort(key=lambda f: order.get(f.key, total))  # stable: a cell's own order kept
    return results(complete)


def run_one(engine, impl, dtype, quantity, scope, *, budget, seed, tolerance, deadline):
    """Run one cell: its record and its findings (Stopped if a signal cut it short)."""
    cell = run_cell(
        engine,
        impl,
        dtype,
        quantity,
        budget=budget if quantity.kind != "reduction" else min(budget, REDUCTION_BUDGET),
        campaign_seed=seed,
        tolerance=tolerance,
        deadline=deadline,
        scope=scope,
    )
    if engine.stop:
        raise Stopped("the run was stopped")
    kept = [finding(cell, o, g) for o, g in finalise(engine, cell)]
    differ = tuple(disagreement(cell, a, b) for a, b in settle(engine, cell)) if cell.twin else ()
    return cell_record(cell, differ), kept


def _run_parallel(selection, todo, jobs, isolation, engine, budget, seed, tolerance,
                  deadline_for, progress, keep) -> bool:  # fmt: skip
    """The cells ``todo`` (indices) on ``jobs`` runners; False if a stop or the time limit
    left some undone."""
    from lossfuzz.harness.parallel import Runners, Task

    described = [s.impl.description for s in selection.cells if s.impl.description is not None]
    described = list({d.spec: d for d in described}.values())
    handed = {"n": 0}
    complete = {"ok": True}

    def make_task(n: int):
        more, deadline = deadline_for(len(todo) - handed["n"])
        if not more:
            complete["ok"] = False
            return None
        handed["n"] += 1
        spec = selection.cells[n]
        if progress:
            progress(n, len(selection.cells), spec.key.name)
        return Task(n, spec.impl.id, spec.dtype, spec.quantity, spec.scope, budget, seed,
                    tolerance, deadline)  # fmt: skip

    runners = Runners(min(jobs, len(todo)), isolation, described, engine.stop)
    finished = 0
    try:
        for kind, n, *rest in runners.run(todo, make_task):
            if kind == "cell":
                finished += 1
                keep(selection.cells[n], *rest)
            else:
                complete["ok"] = False
    finally:
        runners.close()
    return complete["ok"] and finished == len(todo)


def progress_bar(stream=sys.stderr):
    """A one-line progress display on a terminal; silent otherwise."""
    if not stream.isatty():
        return None

    def show(n, total, name):
        stream.write(f"\r\033[K[{n + 1}/{total}] {name}")
        stream.flush()

    return show
