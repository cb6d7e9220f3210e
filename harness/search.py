"""Run a cell: score the impl on the edge grid, then fuzz it with Hypothesis.

The search is pointed at the worst ULP error with ``target()``. Determinism: each
cell's search runs with ``@seed`` set from the campaign seed and the cell's name, no
example database, and no phase that depends on time, so the same seed, versions and
budget give the same results.
"""

from __future__ import annotations

import math
import time
import zlib
from contextlib import contextmanager

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings, target

from lossfuzz import oracles
from lossfuzz.harness.cell import CellRun
from lossfuzz.harness.grid import edge_grid
from lossfuzz.harness.isolation import Stopped, WorkerStartError
from lossfuzz.harness.metrics import DEFAULT_TOLERANCE
from lossfuzz.harness.registry import Impl, get_impl
from lossfuzz.harness.results import VALUE, Quantity
from lossfuzz.harness.scoring import Engine, score, single_case
from lossfuzz.harness.strategies import EVERYTHING, Scope, from_loss

MOTIF_ROWS = 8  # a reduction cell's batch repeats at most this many fuzzed rows
TARGET_CAP = 1e30  # target() needs finite scores; inf ULP (NaN, overflow) maps here


class Leave(BaseException):
    """Ends a cell's search at once (a BaseException, so that Hypothesis neither catches
    it nor shrinks towards it): the deadline passed, the run was stopped, or the impl
    crashed. Returning instead would let Hypothesis draw the rest of its budget, which
    under ``--seconds`` is a billion examples."""


@contextmanager
def seed_only():
    """Hypothesis (6.131 and later) mixes literals from the source of every "local" module
    in sys.modules into the values it draws. Which modules are local depends on how
    lossfuzz is installed (editable or from a wheel) and on what else the process
    imported, so the same seed would give other cases on another machine. A cell's
    cases must depend on the seed alone: while it is searched the pool is empty."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis without the pool
        yield
        return
    saved = getattr(providers, "_get_local_constants", None)
    if saved is None:  # pragma: no cover
        yield
        return
    empty = type(providers._local_constants)()
    providers.CONSTANTS_CACHE.cache.clear()  # pools computed with the constants
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


def _grid_batches(cell: CellRun):
    """The edge grid's batches; for a loss that reduces its own batch, its rows one by one
    (a mean of one row is that row's loss, so each finding names its row)."""
    for batch in edge_grid(cell.impl.loss, cell.dtype, cell.impl.min_classes, cell.scope):
        if cell.quantity.kind == "reduction":
            n = next(v for v in batch.values() if isinstance(v, np.ndarray)).shape[0]
            for row in range(n):
                yield single_case(batch, row)
        else:
            yield batch


def run_grid(engine: Engine, cell: CellRun) -> None:
    if cell.quantity.kind == "reduction" and cell.quantity.batch is not None:
        return  # reductions of tiled batches are searched from tiled rows alone
    for batch in _grid_batches(cell):
        if cell.stopped or engine.stop:
            return
        try:
            observations = score(
                engine, cell.impl, cell.dtype, batch, cell.tolerance, cell.quantity
            )
            cell.add(observations)
            cell.compare(engine, batch, observations)
        except Stopped:
            return


def cell_seed(campaign_seed: int, cell: CellRun) -> int:
    """A compiled twin's search starts from its eager impl's seed: the two see the same
    cases for as long as their answers steer the search alike."""
    ident = cell.impl.eager or cell.impl.id
    suffix = cell.quantity.seed_suffix()
    return zlib.crc32(f"{campaign_seed}:{ident}:{cell.dtype}{suffix}".encode())


def fuzz(
    engine: Engine, cell: CellRun, *, budget: int, campaign_seed: int, deadline: float | None = None
) -> None:
    """Hypothesis search over the cell's inputs, climbing towards the worst ULP error."""
    if budget <= 0 or cell.stopped:
        return
    reduction = cell.quantity.kind == "reduction"
    strategy = from_loss(
        cell.impl.loss,
        dtype=cell.dtype,
        label_smoothing="label_smoothing" in cell.impl.params,
        min_classes=max(cell.impl.min_classes, cell.scope.min_classes),
        allow_infinity=cell.scope.allow_infinity,
        labels=cell.scope.labels,
        # a reduction's batch repeats a few rows: each row stands for many
        max_batch=MOTIF_ROWS if reduction and cell.quantity.batch is not None else 16,
    )

    @seed(cell_seed(campaign_seed, cell))
    @settings(
        max_examples=budget,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.target],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(strategy)
    def explore(inputs):
        late = deadline is not None and time.monotonic() > deadline
        if cell.stopped or cell.fatal or engine.stop or late:
            raise Leave  # the time is spent, the run stopped, or the impl crashed
        try:
            tiled = reduction and cell.quantity.batch is not None
            if tiled and not rows_sound(engine, cell.impl, cell.dtype, inputs):
                return  # a wrong loss would spoil any reduction: that is the value cell's finding
            observations = score(
                engine, cell.impl, cell.dtype, inputs, cell.tolerance, cell.quantity
            )
            worst = cell.add(observations)
            cell.compare(engine, inputs, observations)
        except (oracles.DomainError, oracles.OracleUndecided):
            return  # the strategies stay in the domain; this guards against edge casts
        except Stopped:
            raise Leave from None
        except WorkerStartError as exc:  # raised again once Hypothesis is out of the way
            cell.fatal = exc
            raise Leave from None
        # quantised to 1/64 octave, so that the fast path's last bits (2**-40 relative)
        # never steer the search elsewhere than the exact path would
        level = round(math.log2(1.0 + min(worst, TARGET_CAP)) * 64) / 64
        target(level, label="log2(1 + ULP error)")

    with seed_only():
        try:
            explore()
        except Leave:
            pass
    if cell.fatal is not None:
        raise cell.fatal


def rows_sound(engine: Engine, impl: Impl, dtype: str, inputs: dict, caller=None) -> bool:
    """The impl computes every row's loss within the default tolerance: a reduction
    cell searches (and shrinks) only such rows, so that its findings are the
    reduction's own (overflow of the sum, lost digits, a wrong divisor), not a wrong
    loss repeated a million times (that one is its value cell's finding)."""
    observations = score(engine, impl, dtype, inputs, DEFAULT_TOLERANCE, caller=caller)
    return all(o.cls in ("exact", "ok") for o in observations)


def reduction_tolerance(tolerance: float, batch: int | None) -> float:
    """A reduction's tolerance: the value's, plus log2(batch) ULP, the error bound of
    pairwise summation in the dtype (what NumPy and PyTorch do; a naive sum errs up to
    batch ULP). A batch as drawn has at most 16 rows."""
    return tolerance + math.log2(batch or 16)


def run_cell(
    engine: Engine,
    impl: Impl,
    dtype: str,
    quantity: Quantity = VALUE,
    *,
    budget: int,
    campaign_seed: int,
    tolerance: float = DEFAULT_TOLERANCE,
    deadline: float | None = None,
    scope: Scope = EVERYTHING,
) -> CellRun:
    start = time.monotonic()
    if quantity.kind == "reduction":
        tolerance = reduction_tolerance(tolerance, quantity.batch)
    cell = CellRun(impl, dtype, quantity, tolerance, scope)
    if impl.eager:
        cell.twin = get_impl(impl.eager)
    run_grid(engine, cell)
    fuzz(engine, cell, budget=budget, campaign_seed=campaign_seed, deadline=deadline)
    cell.seconds = time.monotonic() - start
    return cell
