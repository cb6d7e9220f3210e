"""Run a cell: score an impl against the oracle on the edge grid, then fuzz it.

Data flows one way: strategies and the grid make batches of inputs, ``score``
calls the impl and the oracle and classes every element, a ``Cell`` keeps the
counts and the worst observation of each class, and ``finalise`` shrinks each of
those to a minimal single case, confirms it and turns it into a finding. The
Hypothesis search is pointed at the worst ULP error with ``target()``.

Determinism: each cell's search runs with ``@seed`` set from the campaign seed and
the cell's name, no example database, and no phase that depends on time, so the
same seed, versions and budget give the same results.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import mpmath
import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings, target
from lossfuzz.harness.grid import edge_grid
from lossfuzz.harness.isolation import ImplFailed
from lossfuzz.harness.metrics import (
    CLASSES,
    DEFAULT_TOLERANCE,
    FINDING_CLASSES,
    SEVERITY,
    Score,
    classify,
)
from lossfuzz.harness.registry import Impl, get_impl
from lossfuzz.harness.results import cell_name
from lossfuzz.harness.strategies import from_loss
from lossfuzz.oracles import fast, reductions
from lossfuzz.oracles.api import check_elementwise_domain, evaluate_where
from lossfuzz.oracles.formats import round_mpf

from lossfuzz import oracles

MOTIF_ROWS = 8  # a reduction cell's batch repeats at most this many fuzzed rows
TARGET_CAP = 1e30  # target() needs finite scores; inf ULP (NaN, overflow) maps here
PROFILE_BINS = 400  # at most this many points of error against input per cell
BINS_PER_OCTAVE = 4


@dataclass
class Observation:
    """One scored output element, with the single case (batch of one) that produced it."""

    inputs: dict  # cast inputs of the single case, class axis last
    index: int  # the element within that case's output (rowwise losses have several)
    score: Score
    got: float | None
    exact: mpmath.mpf | None
    reference: float | None
    error: str | None = None  # "TypeName: message" when the impl raised

    @property
    def cls(self) -> str:
        return self.score.cls


def single_case(inputs: dict, spec: oracles.Loss, row: int) -> dict:
    """The row-th case of a batch, as a batch of one."""
    out = {}
    for name, value in inputs.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1:
            out[name] = value[row : row + 1]
        else:
            out[name] = value
    return out


def _error_score(kind: str = "error") -> Score:
    return Score(kind, math.inf, math.inf)


ISOLATION = None  # an isolation.Isolation while a campaign runs impls in worker processes
STOP: dict = {"signal": None}  # set by a SIGINT/SIGTERM handler: end the cell at the next case
_CONFIRMING = False  # True while confirm() re-runs a finding (in the other worker)


def call_impl(
    impl: Impl, cast: dict, dtype: str, wrt: str | None = None, reduce=None
) -> np.ndarray:
    """The impl's answer (values, the gradient with respect to ``wrt``, or with ``reduce``
    = (reduction, batch) the reduction of the rows tiled to a batch): in a worker
    process under isolation (raising isolation.ImplFailed), else in this one."""
    if ISOLATION is not None:
        worker = ISOLATION.confirm if _CONFIRMING else ISOLATION.search
        return np.asarray(worker.call(impl, cast, dtype, wrt, reduce))
    if reduce is not None:
        return np.asarray(impl.reduce(cast, dtype, *reduce))
    return np.asarray(impl(cast, dtype) if wrt is None else impl.gradient(cast, dtype, wrt))


def _failed(impl, dtype, cast, spec, tolerance, wrt, exc, n, exact) -> list:
    """Observations for a batch whose call failed: each case alone, to find which fail."""
    if n > 1:
        out = []
        costly = isinstance(exc, ImplFailed) and exc.kind in ("crash", "timeout")
        for row in range(n):
            one = single_case(cast, spec, row)
            out += score(impl, dtype, one, tolerance, wrt, exact=exact)
            if costly and out[-1].cls in ("crash", "timeout"):
                break  # the input that kills is found; each further one would cost as much
        return out
    if isinstance(exc, ImplFailed):
        kind, message = exc.kind, exc.message
    else:
        first = str(exc).splitlines()[0] if str(exc) else ""
        kind, message = "error", f"{type(exc).__name__}: {first}"
    return [Observation(cast, 0, _error_score(kind), None, None, None, message[:500])]


def score(
    impl: Impl,
    dtype: str,
    inputs: dict,
    tolerance: float,
    wrt: str | None = None,
    *,
    exact: bool = False,
    reduce=None,
) -> list[Observation]:
    """Call the impl on a batch and class every element of its answer: the values, or
    with ``wrt`` the gradient of their sum with respect to that input. With ``reduce``
    = (reduction, batch), the one number of the reduction (``score_reduced``).

    Values of the losses ``oracles/fast.py`` covers are scored on the fast path unless
    ``exact``; findings are always re-scored with ``exact`` (mpmath) before reporting.
    """
    if reduce is not None:
        return score_reduced(impl, dtype, inputs, tolerance, reduce)
    if wrt is None and not exact and FAST_PATH and fast.covers(impl.loss, dtype):
        scored = _score_fast(impl, dtype, inputs, tolerance)
        if scored is not None:
            return scored
    if wrt is None:
        ev = oracles.evaluate(impl.loss, dtype, **inputs)
    else:
        ev = oracles.evaluate_gradient(impl.loss, wrt, dtype, **inputs)
    spec = ev.loss
    cast = dict(ev.inputs)
    try:
        got = call_impl(impl, cast, dtype, wrt)
        if got.shape != ev.reference.shape:
            raise ValueError(f"returned shape {got.shape}, expected {ev.reference.shape}")
    except Exception as exc:  # noqa: BLE001 - an impl failing is a finding, not our crash
        n = ev.reference.shape[0] if ev.reference.ndim else 1
        return _failed(impl, dtype, cast, spec, tolerance, wrt, exc, n, exact)
    per_case = int(np.prod(ev.reference.shape[1:])) if ev.reference.ndim > 1 else 1
    out = []
    flat_got = got.astype(np.float64).ravel()
    for i, (g, exact, ref) in enumerate(
        zip(flat_got, ev.exact.ravel(), ev.reference.astype(np.float64).ravel())
    ):
        s = classify(
            g, exact, ref, ev.fmt, tolerance=tolerance, is_loss=spec.is_loss and wrt is None
        )
        row, index = divmod(i, per_case) if ev.reference.ndim else (0, 0)
        case = single_case(cast, spec, row) if ev.reference.ndim else cast
        out.append(Observation(case, index, s, float(g), exact, float(ref)))
    return out


FAST_PATH = True  # False: every value through mpmath (bench/ and the equivalence tests)


def score_reduced(impl: Impl, dtype: str, inputs: dict, tolerance: float, reduce) -> list:
    """The impl's reduction of a batch made of ``inputs``'s rows repeated, in order, to
    ``batch`` rows, scored against the exact sum or mean of the exact losses: one
    Observation whose inputs are the rows (what a reproducer repeats).

    An answer outside the tolerance of the exact value is forgiven when it is within
    the tolerance of the sum (or mean) of the losses each correctly rounded to the
    dtype: no implementation that holds its losses in the dtype can do better, so
    such an error is the dtype's, not the reduction's (a float16 loss of 4.1e-8 is
    6e-8, and a thousand of them sum to 6e-5, not 4.1e-5). It is classed ok and keeps
    its ULP and absolute error from the exact value."""
    reduction, batch = reduce
    spec = oracles.get_loss(impl.loss)
    cast = oracles.cast_inputs(spec, dtype, **inputs)
    rows = next(v for v in cast.values() if isinstance(v, np.ndarray) and v.ndim).shape[0]
    counts = reductions.tile_counts(rows, batch)
    exact, ref = reductions.reduce(spec.id, reduction, dtype, counts=counts, **cast)
    try:
        got = call_impl(impl, cast, dtype, reduce=reduce)
        if got.size != 1:
            raise ValueError(f"returned shape {got.shape}, expected one number")
    except Exception as exc:  # noqa: BLE001 - an impl failing is a finding, not our crash
        return _failed(impl, dtype, cast, spec, tolerance, None, exc, 1, True)
    g = float(got.astype(np.float64).ravel()[0])
    fmt = oracles.get_format(dtype)
    s = classify(g, exact, ref, fmt, tolerance=tolerance, is_loss=spec.is_loss)
    if s.cls not in ("exact", "ok") and math.isfinite(g):
        stored = _sum_of_rounded(spec, dtype, cast, counts, reduction)
        if stored is not None:
            again = classify(g, stored[0], stored[1], fmt, tolerance=tolerance, is_loss=True)
            if again.cls in ("exact", "ok"):
                s = Score("ok", s.ulp, s.abs_error)  # the error from the exact value, kept
    return [Observation(cast, 0, s, g, exact, ref)]


def _sum_of_rounded(spec, dtype, cast, counts, reduction):
    """(exact, correctly rounded) sum or mean of the rows' losses each rounded to the
    dtype; None where a rounded loss is not finite."""
    from fractions import Fraction

    rounded = oracles.evaluate(spec, dtype, **cast).reference.astype(np.float64).ravel()
    terms = [(float(v), w) for v, w in zip(rounded.tolist(), counts) if w]
    if not all(math.isfinite(v) for v, _ in terms):
        return None
    total = sum(Fraction(v) * w for v, w in terms)
    if reduction == "mean":
        total /= sum(counts)
    with mpmath.workprec(200):
        value = mpmath.mpf(total.numerator) / total.denominator
    return value, float(round_mpf(value, oracles.get_format(dtype)))


def _score_fast(impl: Impl, dtype: str, inputs: dict, tolerance: float):
    """``score`` on the fast path: vectorised classes and ULP errors, with mpmath only
    for the elements whose rounding or class the float64 bound cannot decide. None
    where the impl raises or returns a wrong shape: the exact path reports that."""
    spec = oracles.get_loss(impl.loss)
    cast = oracles.cast_inputs(spec, dtype, **inputs)
    check_elementwise_domain(spec, cast)
    fv = fast.fast_values(spec.id, dtype, cast)
    try:
        got = call_impl(impl, cast, dtype)
    except ImplFailed as exc:  # not twice: a crash or a hang costs a worker or a timeout
        n = fv.value.shape[0] if fv.value.ndim else 1
        return _failed(impl, dtype, cast, spec, tolerance, None, exc, n, False)
    except Exception:  # noqa: BLE001 - the exact path finds which cases raise
        return None
    if got.shape != fv.value.shape:
        return None
    fmt = oracles.get_format(dtype)
    y = got.astype(np.float64).ravel()
    codes, ulp, diff, need = classify_fast(y, fv, fmt, tolerance, spec.is_loss)
    v, ref = fv.value.ravel(), fv.reference.ravel()
    per_case = int(np.prod(got.shape[1:])) if got.ndim > 1 else 1
    exact_of = {}
    if need.any():
        ev = evaluate_where(spec, dtype, cast, need.reshape(got.shape))
        for i, ex, r in zip(np.flatnonzero(need), ev.exact.ravel(), ev.reference.ravel()):
            exact_of[i] = (ex, float(r))
    out = []
    for i in range(y.size):
        row, index = divmod(i, per_case) if got.ndim else (0, 0)
        case = single_case(cast, spec, row) if got.ndim else cast
        if i in exact_of:
            ex, r = exact_of[i]
            s = classify(y[i], ex, r, fmt, tolerance=tolerance, is_loss=spec.is_loss)
            out.append(Observation(case, index, s, float(y[i]), ex, r))
        else:
            s = Score(CLASSES[codes[i]], float(ulp[i]), float(diff[i]))
            approx = mpmath.mpf(float(v[i]))  # profile and plots only; findings are exact
            out.append(Observation(case, index, s, float(y[i]), approx, float(ref[i])))
    return out


CODE = {c: i for i, c in enumerate(CLASSES)}


def classify_fast(y: np.ndarray, fv, fmt, tolerance: float, is_loss: bool):
    """``metrics.classify`` over arrays, against the fast path's bounded values.

    Returns class codes (indices into CLASSES), ULP errors, absolute errors, and the
    mask of elements the bound cannot class (the rounding undecided, the exact value's
    sign unknown, or the error within the bound of the tolerance): those need mpmath.
    ULP and absolute errors are within 2**-40 relative of the exact ones.
    """
    v, bound, ref = fv.value.ravel(), fv.bound.ravel(), fv.reference.ravel()
    need = ~fv.decided.ravel()
    with np.errstate(all="ignore"):
        _, e = np.frexp(v)
        k = np.where(v == 0, fmt.emin, np.maximum(e - 1, fmt.emin)) - fmt.precision + 1
        nan = np.isnan(y)
        diff = np.where(nan, np.inf, np.abs(y - v))
        ulp = np.ldexp(diff, -k)
        ulp_bound = np.ldexp(bound, -k) + ulp * 2.0**-50
    positive, negative = v - bound > 0, v + bound < 0
    same = (y == ref) & ~nan
    sign = ((y < 0) & positive) | ((y > 0) & negative) | ((y < 0) & is_loss)
    need |= ~same & ~nan & (y != 0) & ~positive & ~negative  # the exact value's sign unknown
    need |= ~same & ~sign & np.isfinite(y) & (np.abs(ulp - tolerance) <= ulp_bound)
    codes = np.full(y.shape, CODE["inaccurate"], dtype=np.int8)
    codes[(y == 0) & (ref != 0)] = CODE["underflow"]
    codes[ulp <= tolerance] = CODE["ok"]
    codes[np.isinf(y)] = CODE["overflow"]
    codes[sign] = CODE["sign"]
    codes[same] = CODE["exact"]
    codes[nan] = CODE["nan"]
    return codes, ulp, diff, need


def _rank(o: Observation) -> tuple:
    ulp = o.score.ulp if not math.isnan(o.score.ulp) else math.inf
    return (SEVERITY[o.cls], ulp, o.score.abs_error)


@dataclass
class Cell:
    loss: str
    impl: Impl
    dtype: str
    tolerance: float = DEFAULT_TOLERANCE
    wrt: str | None = None  # None: a cell of values; else of gradients with respect to wrt
    reduce: tuple | None = None  # (reduction, batch): a cell of reductions of tiled rows
    cases: int = 0
    counts: Counter = field(default_factory=Counter)
    max_ulp: float = 0.0
    max_finite_ulp: float = 0.0  # over the answers with a finite error: what inf hides
    # (class, documented) -> the worst Observation: a finding that a documented clamp
    # explains is kept apart, so that it never hides an unexplained one of its class
    worst_of: dict = field(default_factory=dict)
    seconds: float = 0.0
    profile: dict = field(default_factory=dict)  # bin -> (x, ulp, class, got, exact)
    stopped: str | None = None  # why the search ended early (the impl crashed or hung)
    # a compiled twin's cell also runs its eager impl on every batch: elements whose bits
    # differ (signed zero and NaN payloads aside) are disagreements, the worst kept per
    # pair of classes (compiled class, eager class)
    twin: Impl | None = None
    compared: int = 0
    disagree: int = 0
    disagreements: dict = field(default_factory=dict)  # (cls, eager cls) -> Disagreement

    @property
    def quantity(self) -> str:
        if self.reduce is not None:
            return "reduction"
        return "value" if self.wrt is None else "grad"

    @property
    def name(self) -> str:
        return cell_name(self.impl.id, self.dtype, self.wrt, self.reduce)

    def compare(self, inputs: dict, observations: list[Observation]) -> None:
        """Run the eager twin on the batch just scored and record where the bits differ."""
        if self.twin is None or not observations or any(o.got is None for o in observations):
            return
        spec = oracles.get_loss(self.impl.loss)
        try:
            cast = oracles.cast_inputs(spec, self.dtype, **inputs)
            theirs = call_impl(self.twin, cast, self.dtype, self.wrt, self.reduce)
            theirs = theirs.astype(np.float64).ravel()
        except Exception:  # noqa: BLE001 - the eager impl's own cell reports its failures
            return
        if theirs.size != len(observations):
            return
        fmt = oracles.get_format(self.dtype)
        is_loss = spec.is_loss and self.wrt is None
        for o, t in zip(observations, theirs.tolist()):
            self.compared += 1
            if same_answer(o.got, t):
                continue
            self.disagree += 1
            s = classify(t, o.exact, o.reference, fmt, tolerance=self.tolerance, is_loss=is_loss)
            d = Disagreement(o, s)
            held = self.disagreements.get(d.kind)
            if held is None or d.rank > held.rank:
                self.disagreements[d.kind] = d

    def add(self, observations: list[Observation]) -> float:
        """Record a batch; returns its worst ULP error (for target())."""
        worst = 0.0
        for o in observations:
            self.cases += 1
            self.counts[o.cls] += 1
            ulp = o.score.ulp
            if not math.isnan(ulp):
                self.max_ulp = max(self.max_ulp, ulp)
                worst = max(worst, ulp)
                if math.isfinite(ulp):
                    self.max_finite_ulp = max(self.max_finite_ulp, ulp)
            if o.cls in ("crash", "timeout") and self.stopped is None:
                self.stopped = f"{o.cls}: {o.error}"  # every further call would cost as much
            if o.cls in FINDING_CLASSES:
                k = (o.cls, documented_by(self.impl, o, self.wrt, self.reduce) is not None)
                best = self.worst_of.get(k)
                if best is None or _rank(o) > _rank(best):
                    self.worst_of[k] = o
            self._profile(o)
        return worst

    def _profile(self, o: Observation) -> None:
        """Keep the worst observation in each bin of the input axis (log-spaced, both signs)."""
        x = axis_value(o.inputs)
        if math.isnan(x):
            return
        if math.isinf(x):
            key = math.copysign(10**9, x)
        else:
            key = round(math.copysign(math.log2(1 + abs(x)), x) * BINS_PER_OCTAVE)
        held = self.profile.get(key)
        if held is None and len(self.profile) >= PROFILE_BINS:
            return
        ulp = o.score.ulp if not math.isnan(o.score.ulp) else math.inf
        if held is None or (SEVERITY[o.cls], ulp) > (SEVERITY[held[2]], held[1]):
            exact = float(o.exact) if o.exact is not None else math.nan
            got = o.got if o.got is not None else math.nan
            self.profile[key] = (x, ulp, o.cls, got, exact)


def same_answer(a: float, b: float) -> bool:
    """Equal, or both NaN: +0 and -0 agree (DESIGN's exact class sets signed zero aside)."""
    return a == b or (math.isnan(a) and math.isnan(b))


@dataclass
class Disagreement:
    """A case where a compiled twin and its eager impl answer differently."""

    compiled: Observation  # the compiled twin's answer, scored
    eager: Score  # the eager answer, scored against the same exact value

    @property
    def kind(self) -> tuple[str, str]:
        return (self.compiled.cls, self.eager.cls)

    @property
    def rank(self) -> tuple:
        a, b = self.compiled.score.ulp, self.eager.ulp
        gap = abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
        return (max(SEVERITY[a_] for a_ in self.kind), 0.0 if math.isnan(gap) else gap)


def settle(cell: Cell) -> list[tuple[Observation, Observation]]:
    """The cell's disagreements, each scored again alone on the exact path for both the
    compiled twin and its eager impl (the cases the reproducers run): those whose bits
    still differ, as (compiled, eager) observations, worst first."""
    out = []
    for d in sorted(cell.disagreements.values(), key=lambda d: d.rank, reverse=True):
        o = d.compiled
        try:
            again = {"exact": True, "reduce": cell.reduce}
            mine = score(cell.impl, cell.dtype, o.inputs, cell.tolerance, cell.wrt, **again)
            theirs = score(cell.twin, cell.dtype, o.inputs, cell.tolerance, cell.wrt, **again)
        except (oracles.DomainError, oracles.OracleUndecided, ValueError, TypeError):
            continue
        if o.index >= min(len(mine), len(theirs)):
            continue
        a, b = mine[o.index], theirs[o.index]
        if a.got is None or b.got is None or same_answer(a.got, b.got):
            continue  # it differs only inside a batch; reported cases stand alone
        out.append((a, b))
    return out


def documented_by(impl: Impl, o: Observation, wrt: str | None = None, reduce=None):
    """The impl's documented deviation that explains this wrong answer, if one does."""
    if o.got is None or o.exact is None:
        return None
    for d in impl.deviations:
        if not d.applies(wrt, reduce):
            continue
        try:
            if d.explains(o.inputs, o.got, float(o.exact)):
                return d
        except Exception:  # noqa: BLE001 - a predicate failing explains nothing
            continue
    return None


def axis_value(inputs: dict) -> float:
    """Where a case sits on the plots' x axis: the logit or probability of an
    elementwise case; the spread max - min of the finite entries of a row."""
    primary = inputs.get("logits", inputs.get("probs"))
    values = primary.astype(np.float64).ravel()
    if primary.ndim <= 1 and values.size == 1:
        return float(values[0])
    finite = values[np.isfinite(values)]
    if not finite.size:
        return math.nan
    with np.errstate(over="ignore"):  # 1.8e308 - -1.8e308 is inf: the far end of the axis
        return float(finite.max() - finite.min())


def run_grid(cell: Cell) -> None:
    if cell.reduce is not None:
        return  # reductions are searched from tiled rows alone
    for batch in edge_grid(cell.impl.loss, cell.dtype):
        if cell.stopped or STOP["signal"]:
            return
        observations = score(cell.impl, cell.dtype, batch, cell.tolerance, cell.wrt)
        cell.add(observations)
        cell.compare(batch, observations)


def cell_seed(campaign_seed: int, cell: Cell) -> int:
    """A compiled twin's search starts from its eager impl's seed: the two see the same
    cases for as long as their answers steer the search alike."""
    grad = "" if cell.wrt is None else f":d/d{cell.wrt}"
    if cell.reduce is not None:
        grad = f":{cell.reduce[0]}/{cell.reduce[1]}"
    ident = cell.impl.eager or cell.impl.id
    return zlib.crc32(f"{campaign_seed}:{ident}:{cell.dtype}{grad}".encode())


def fuzz(cell: Cell, *, budget: int, campaign_seed: int, deadline: float | None = None) -> None:
    """Hypothesis search over the cell's inputs, climbing towards the worst ULP error."""
    if budget <= 0 or cell.stopped:
        return
    strategy = from_loss(
        cell.impl.loss,
        dtype=cell.dtype,
        label_smoothing="label_smoothing" in cell.impl.params,
        # a reduction's batch repeats a few rows: each row stands for many
        max_batch=MOTIF_ROWS if cell.reduce is not None else 16,
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
        if cell.stopped or STOP["signal"] or (deadline is not None and time.monotonic() > deadline):
            return  # the campaign's time is spent, or the impl crashed: let the rest pass by
        try:
            if cell.reduce is not None and not rows_sound(cell.impl, cell.dtype, inputs):
                return  # a wrong loss would spoil any reduction: that is the value cell's finding
            observations = score(
                cell.impl, cell.dtype, inputs, cell.tolerance, cell.wrt, reduce=cell.reduce
            )
        except (oracles.DomainError, oracles.OracleUndecided):
            return  # the strategies stay in the domain; this guards against edge casts
        worst = cell.add(observations)
        cell.compare(inputs, observations)
        # quantised to 1/64 octave, so that the fast path's last bits (2**-40 relative)
        # never steer the search elsewhere than the exact path would
        level = round(math.log2(1.0 + min(worst, TARGET_CAP)) * 64) / 64
        target(level, label="log2(1 + ULP error)")

    explore()


def rows_sound(impl: Impl, dtype: str, inputs: dict) -> bool:
    """The impl computes every row's loss within the default tolerance: a reduction
    cell searches (and shrinks) only such rows, so that its findings are the
    reduction's own (overflow of the sum, lost digits, a wrong divisor), not a wrong
    loss repeated a million times (that one is its value cell's finding)."""
    observations = score(impl, dtype, inputs, DEFAULT_TOLERANCE)
    return all(o.cls in ("exact", "ok") for o in observations)


def reduction_tolerance(tolerance: float, batch: int) -> float:
    """A reduction's tolerance: the value's, plus log2(batch) ULP, the error bound of
    pairwise summation in the dtype (what NumPy and PyTorch do; a naive sum errs up to
    batch ULP)."""
    return tolerance + math.log2(batch)


def run_cell(
    impl: Impl,
    dtype: str,
    *,
    budget: int,
    campaign_seed: int,
    tolerance: float = DEFAULT_TOLERANCE,
    deadline: float | None = None,
    wrt: str | None = None,
    reduce=None,
) -> Cell:
    start = time.monotonic()
    if reduce is not None:
        tolerance = reduction_tolerance(tolerance, reduce[1])
    cell = Cell(impl.loss, impl, dtype, tolerance, wrt, reduce)
    if impl.eager:
        cell.twin = get_impl(impl.eager)
    run_grid(cell)
    fuzz(cell, budget=budget, campaign_seed=campaign_seed, deadline=deadline)
    cell.seconds = time.monotonic() - start
    return cell


# ------------------------------------------------------------------ shrinking


def _simpler_values(v: float, dtype: str, is_label: bool) -> list[float]:
    """Candidates simpler than v, simplest first: 0, 1, short decimals, fewer bits."""
    if not math.isfinite(v) or v == 0:
        return []
    fmt = oracles.get_format(dtype)
    out = [0.0, 1.0, 0.5] if is_label else [0.0, math.copysign(1.0, v)]
    for digits in range(1, 5):
        out.append(float(fmt.cast(float(f"{v:.{digits}g}"))))
    if abs(v) < 2**53:
        out.append(float(round(v)))
    m, e = math.frexp(v)
    for bits in range(1, fmt.precision):
        out.append(float(fmt.cast(math.ldexp(math.trunc(m * 2**bits) / 2**bits, e))))  # toward 0
    seen, result = set(), []
    for c in out:
        if c != v and c not in seen and math.isfinite(c):
            seen.add(c)
            result.append(c)
    return result


def shrink(
    impl: Impl,
    dtype: str,
    o: Observation,
    tolerance: float,
    rounds: int = 3,
    wrt: str | None = None,
    reduce=None,
) -> Observation:
    """Greedily simplify each input value of a single case while its class stays the same."""
    current = o
    for _ in range(rounds):
        changed = False
        for name, value in current.inputs.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind in "iub":
                continue  # class indices stay as they are
            flat = value.astype(np.float64).ravel()
            for pos in range(flat.size):
                for candidate in _simpler_values(float(flat[pos]), dtype, name == "labels"):
                    trial = flat.copy()
                    trial[pos] = candidate
                    inputs = dict(current.inputs)
                    inputs[name] = oracles.get_format(dtype).cast(trial).reshape(value.shape)
                    found = _same_class(impl, dtype, inputs, current, tolerance, wrt, reduce)
                    if found is not None:
                        current, flat, changed = found, trial, True
                        break
        if not changed:
            break
    return current


def _same_class(
    impl, dtype, inputs, like: Observation, tolerance, wrt=None, reduce=None
) -> Observation | None:
    try:
        if reduce is not None and like.got is not None and not rows_sound(impl, dtype, inputs):
            return None  # shrinking must not walk into rows the impl gets wrong alone
        observations = score(impl, dtype, inputs, tolerance, wrt, exact=True, reduce=reduce)
    except (oracles.DomainError, oracles.OracleUndecided, ValueError, TypeError):
        return None
    if like.index >= len(observations):
        return None
    o = observations[like.index]
    # same class, and an error of the same order: the worst case must not shrink away
    if o.cls == like.cls and not o.score.ulp < like.score.ulp / 2:
        return o
    return None


def confirm(
    impl: Impl, dtype: str, o: Observation, tolerance: float, wrt: str | None = None, reduce=None
) -> bool:
    """The impl gives the same bits on a second call (under isolation, in another
    process than the one that found it), and the exact oracle agrees again."""
    global _CONFIRMING
    _CONFIRMING = True
    try:
        again = _same_class(impl, dtype, o.inputs, o, tolerance, wrt, reduce)
    finally:
        _CONFIRMING = False
    if again is None:
        return False
    if o.got is None:
        return again.got is None
    return same_answer(again.got, o.got)


def finalise(cell: Cell) -> list[Observation]:
    """The cell's findings: the worst case of each class, shrunk and confirmed, worst first.

    A batch only gives a lead: frameworks take other code paths for other batch
    sizes, so each lead is scored again as a case of one (what the reproducer
    runs) before it is shrunk and confirmed; one that changes class alone is dropped.
    """
    findings = []
    for (_, documented), lead in cell.worst_of.items():
        if documented and (lead.cls, False) in cell.worst_of:
            continue  # the class has an unexplained finding; that one is reported
        how = (cell.tolerance, cell.wrt, cell.reduce)
        alone = _same_class(cell.impl, cell.dtype, lead.inputs, lead, *how)
        if alone is None:
            continue
        if alone.cls in ("crash", "timeout"):
            small = alone  # each try would cost a process or a timeout: keep the input
        else:
            # a reduction re-runs a whole batch per try: one round of simplification
            rounds = 3 if cell.reduce is None else 1
            small = shrink(
                cell.impl,
                cell.dtype,
                alone,
                cell.tolerance,
                rounds=rounds,
                wrt=cell.wrt,
                reduce=cell.reduce,
            )
        if confirm(cell.impl, cell.dtype, small, *how):
            findings.append(small)
    return sorted(findings, key=_rank, reverse=True)
