"""A cell while it runs: the counts per class, the largest errors, the worst case of each
class (the leads that ``shrink.finalise`` turns into findings), the error profile for
the plots, and for a compiled twin where it disagrees with its eager impl.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from lossfuzz import oracles
from lossfuzz.harness.deviations import Case
from lossfuzz.harness.metrics import (
    CLASSES,
    DEFAULT_TOLERANCE,
    FINDING_CLASSES,
    SEVERITY,
    classify,
    same_answer,
)
from lossfuzz.harness.records import Tally
from lossfuzz.harness.registry import Impl
from lossfuzz.harness.results import VALUE, CellKey, Quantity
from lossfuzz.harness.scoring import RUN_ENDING, Observation
from lossfuzz.harness.signature import signature
from lossfuzz.harness.strategies import EVERYTHING, Scope

PROFILE_BINS = 400  # at most this many points of error against input per cell
BINS_PER_OCTAVE = 4
MAX_GROUPS = 64  # distinct groups of findings listed per cell; more are counted


def special_input(inputs: dict) -> bool:
    """An input is an infinity or NaN: the case tests a special value, not accuracy."""
    for v in inputs.values():
        if isinstance(v, np.ndarray) and v.dtype.kind not in "iub":
            if not np.isfinite(v.astype(np.float64)).all():
                return True
    return False


@dataclass
class Counts:
    """A running Tally."""

    cases: int = 0
    counts: Counter = field(default_factory=Counter)
    max_ulp: float = 0.0
    max_finite_ulp: float = 0.0

    def add(self, o: Observation) -> None:
        self.cases += 1
        self.counts[o.cls] += 1
        ulp = o.score.ulp
        if not math.isnan(ulp):
            self.max_ulp = max(self.max_ulp, ulp)
            if math.isfinite(ulp):
                self.max_finite_ulp = max(self.max_finite_ulp, ulp)

    def tally(self) -> Tally:
        counts = tuple((c, self.counts[c]) for c in CLASSES if self.counts[c])
        return Tally(self.cases, counts, self.max_ulp, self.max_finite_ulp)


@dataclass
class Group:
    """The failing cases of one class in one regime of inputs (``signature.py``)."""

    cls: str
    signature: tuple
    explained: object  # the Deviation that explains them, or None
    special: bool
    count: int = 0
    worst: Observation | None = None


def rank(o: Observation) -> tuple:
    """How bad an observation is: its class, then its ULP and absolute errors."""
    ulp = o.score.ulp if not math.isnan(o.score.ulp) else math.inf
    return (SEVERITY[o.cls], ulp, o.score.abs_error)


@dataclass
class Disagreement:
    """A case where a compiled twin and its eager impl answer differently."""

    compiled: Observation  # the compiled twin's answer, scored
    eager_cls: str  # the eager answer's class against the same exact value
    eager_ulp: float

    @property
    def kind(self) -> tuple[str, str]:
        return (self.compiled.cls, self.eager_cls)

    @property
    def rank(self) -> tuple:
        a, b = self.compiled.score.ulp, self.eager_ulp
        gap = abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
        return (max(SEVERITY[c] for c in self.kind), 0.0 if math.isnan(gap) else gap)


@dataclass
class CellRun:
    impl: Impl
    dtype: str
    quantity: Quantity = VALUE
    tolerance: float = DEFAULT_TOLERANCE
    scope: Scope = EVERYTHING  # the inputs the search draws (special values, labels)
    cases: int = 0
    counts: Counter = field(default_factory=Counter)
    max_ulp: float = 0.0
    max_finite_ulp: float = 0.0  # over the answers with a finite error: what inf hides
    # (class, signature, explained) -> Group: a finding that a library's clamp explains
    # is kept apart, so that it never hides an unexplained one of its regime
    groups: dict = field(default_factory=dict)
    max_groups: int = MAX_GROUPS
    dropped: set = field(default_factory=set)  # group keys beyond max_groups
    finite: Counts = field(default_factory=Counts)
    special: Counts = field(default_factory=Counts)
    seconds: float = 0.0
    profile: dict = field(default_factory=dict)  # bin -> (x, ulp, class, got, exact)
    stopped: str | None = None  # why the search ended early (the impl crashed or hung)
    fatal: BaseException | None = None  # what ended the run inside the search, re-raised
    # a compiled twin's cell also runs its eager impl on every batch: elements whose bits
    # differ (signed zero and NaN payloads aside) are disagreements, the worst kept per
    # pair of classes (compiled class, eager class)
    twin: Impl | None = None
    compared: int = 0
    disagree: int = 0
    disagreements: dict = field(default_factory=dict)  # (cls, eager cls) -> Disagreement

    @property
    def key(self) -> CellKey:
        return CellKey(self.impl.id, self.dtype, self.quantity)

    @property
    def loss(self) -> str:
        return self.impl.loss

    def add(self, observations: list[Observation]) -> float:
        """Record a batch; returns its worst ULP error (for target())."""
        worst = 0.0
        spec = oracles.get_loss(self.impl.loss)
        fmt = oracles.get_format(self.dtype)
        for o in observations:
            self.cases += 1
            self.counts[o.cls] += 1
            ulp = o.score.ulp
            if not math.isnan(ulp):
                self.max_ulp = max(self.max_ulp, ulp)
                worst = max(worst, ulp)
                if math.isfinite(ulp):
                    self.max_finite_ulp = max(self.max_finite_ulp, ulp)
            special = special_input(o.inputs)
            (self.special if special else self.finite).add(o)
            if o.cls in ("crash", "timeout") and self.stopped is None:
                self.stopped = f"{o.cls}: {o.error}"  # every further call would cost as much
            if o.cls in FINDING_CLASSES:
                sig = signature(spec, fmt, o.inputs, o.index, self.quantity.kind)
                dev = documented_by(self.impl, o, self.quantity, self.dtype, self.tolerance)
                self._group(o, sig, dev, special)
            self._profile(o)
        return worst

    def _group(self, o: Observation, sig: tuple, dev, special: bool) -> None:
        key = (o.cls, sig, dev is not None)
        g = self.groups.get(key)
        if g is None:
            if len(self.groups) >= self.max_groups:
                self.dropped.add(key)
                return
            g = self.groups[key] = Group(o.cls, sig, dev, special)
        g.count += 1
        if g.worst is None or rank(o) > rank(g.worst):
            g.worst = o

    def compare(self, engine, inputs: dict, observations: list[Observation]) -> None:
        """A compiled twin's cell: run the eager impl on the same batch and record where
        the bits differ (each answer scored against the same exact value)."""
        if self.twin is None or not observations or any(o.got is None for o in observations):
            return
        try:
            cast = oracles.cast_inputs(self.impl.loss, self.dtype, **inputs)
            theirs = engine.caller.answer(self.twin, cast, self.quantity, len(observations))
            theirs = np.asarray(theirs).astype(np.float64).ravel()
        except RUN_ENDING:
            raise
        except Exception:  # noqa: BLE001 - the eager impl's own cell reports its failures
            return
        if theirs.size != len(observations):
            return
        fmt = oracles.get_format(self.dtype)
        is_loss = oracles.get_loss(self.impl.loss).is_loss and self.quantity.is_value
        for o, t in zip(observations, theirs.tolist()):
            self.compared += 1
            if same_answer(o.got, t):
                continue
            self.disagree += 1
            s = classify(t, o.exact, o.reference, fmt, tolerance=self.tolerance, is_loss=is_loss)
            d = Disagreement(o, s.cls, s.ulp)
            held = self.disagreements.get(d.kind)
            if held is None or d.rank > held.rank:
                self.disagreements[d.kind] = d

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


def documented_by(
    impl: Impl,
    o: Observation,
    quantity: Quantity = VALUE,
    dtype: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
):
    """The impl's deviation (a clip, clamp or threshold) that demonstrably produced this
    wrong answer, if one did: its mechanism acted on this input and the answer is what
    it gives (``deviations.py``)."""
    if o.got is None or o.exact is None or not impl.deviations:
        return None
    dtype = dtype or _dtype_of(o.inputs)
    case = Case(impl.loss, dtype, o.inputs, o.index, quantity, o.exact)
    for d in impl.deviations:
        if not d.applies(quantity):
            continue
        try:
            if d.explains(case, o.got, o.exact, tolerance):
                return d
        except (oracles.DomainError, oracles.OracleUndecided, ValueError, ArithmeticError):
            continue  # what the mechanism gives cannot be computed here: it explains nothing
    return None


def _dtype_of(inputs: dict) -> str:
    primary = inputs.get("logits", inputs.get("probs"))
    return "bfloat16" if primary.dtype.name == "bfloat16" else primary.dtype.name


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


def axis_name(loss: str) -> str:
    """The plots' x axis; a gradient cell plots against the same input as its values."""
    spec = oracles.get_loss(loss)
    if spec.shape != "elementwise":
        return "row spread (max - min)"
    return "probability" if spec.primary == "probs" else "logit"
