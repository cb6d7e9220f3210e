"""The results model: what a run measured, as frozen types, and the one reader and
writer of the results file (the schema: docs/results.md).

The runner, campaign, sweep, merge, contracts and the plugin produce these types;
the gate, the HTML, Markdown and JUnit reports and ``lossfuzz repro`` read them.
Nothing parses a display string back: a cell is named by its ``CellKey``, what it
measures by its ``Quantity``.

``Results.from_json`` validates everything once (types, finite numbers where they
must be, known classes, sizes); an invalid file is one ``DataError`` naming the
file, the field and the problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import MappingProxyType

from lossfuzz.harness.cases import Array, Inputs
from lossfuzz.harness.jsonio import DataError, Fields, hexfloat, number, read_json
from lossfuzz.harness.metrics import CLASSES, worst
from lossfuzz.harness.quantity import VALUE, CellKey, Quantity, key_fields
from lossfuzz.harness.records import Contracts, Explanation, Tally, Twin

__all__ = [
    "VALUE",
    "Array",
    "Cell",
    "CellKey",
    "Explanation",
    "Finding",
    "Inputs",
    "Profile",
    "Quantity",
    "Results",
    "ResultsError",
    "Skipped",
    "Tally",
    "key_fields",
    "load_results",
]

SCHEMA = "lossfuzz/results/2"
SCHEMAS_READ = ("lossfuzz/results/1", SCHEMA)


class ResultsError(DataError):
    """A results file that is missing, malformed or of another schema."""


# ------------------------------------------------------------------ findings and cells


@dataclass(frozen=True)
class Finding:
    """One wrong answer, shrunk and confirmed, with the one message form and a reproducer."""

    key: CellKey
    loss: str
    cls: str
    inputs: Inputs
    index: int  # the element of the answer (a row's entry, a gradient's component)
    exact: str  # the exact value, in decimal ("n/a" where the impl gave no answer)
    reference: float | None  # the exact value correctly rounded to the dtype
    got: float | None  # None: the impl raised, crashed or hung
    ulp: float
    abs_error: float
    error: str | None
    explained: Explanation | None  # the library's clip or clamp that produced it, if one did
    message: str
    reproducer: str
    confirmed: bool = True
    sweep_ulp: float | None = None  # a sweep's finding: the ULP error the sweep measured
    sweep_at: tuple[int, ...] | None = None  # and where (chunk, label, position)
    group: tuple[str, ...] = ()  # the regime of its inputs (signature.py)
    group_cases: int = 1  # how many cases of the cell fell in that group
    special: bool = False  # an input is an infinity or NaN: a special value, not accuracy

    @property
    def documented(self) -> Explanation | None:
        """The explanation, where the library's documentation states it."""
        return self.explained if self.explained is not None and self.explained.documented else None

    @property
    def impl(self) -> str:
        return self.key.impl

    @property
    def dtype(self) -> str:
        return self.key.dtype

    @property
    def quantity(self) -> Quantity:
        return self.key.quantity

    def to_json(self) -> dict:
        q = self.key.quantity
        out = {
            "loss": self.loss,
            "impl": self.key.impl,
            "dtype": self.key.dtype,
            **q.to_json(),
            "class": self.cls,
            "inputs": self.inputs.to_json(self.key.dtype),
            "index": self.index,
            "exact": self.exact,
            "reference": None if self.reference is None else hexfloat(self.reference),
            "reference_repr": None if self.reference is None else repr(self.reference),
            "got": None if self.got is None else hexfloat(self.got),
            "got_repr": None if self.got is None else repr(self.got),
            "ulp": number(self.ulp),
            "abs_error": number(self.abs_error),
            "error": self.error,
            "documented": self.documented.what if self.documented else None,
            "documented_source": self.documented.source if self.documented else None,
            "mechanism": None
            if self.explained is None
            else {
                "what": self.explained.what,
                "source": self.explained.source,
                "documented": self.explained.documented,
            },
            "group": list(self.group),
            "group_cases": self.group_cases,
            "special": self.special,
            "confirmed": self.confirmed,
            "message": self.message,
            "reproducer": self.reproducer,
        }
        if self.sweep_ulp is not None:
            out |= {"sweep_ulp": number(self.sweep_ulp), "sweep_at": list(self.sweep_at or ())}
        return out

    @classmethod
    def from_fields(cls, f: Fields) -> Finding:
        key = key_fields(f)
        explained = None
        if f.has("mechanism"):
            m = f.sub("mechanism")
            explained = Explanation(m.str("what"), m.str("source"), m.bool("documented"))
        elif f.has("documented"):  # v1: documented mechanisms only
            explained = Explanation(
                f.str("documented"), f.str("documented_source", optional=True, default=""), True
            )
        group = f.list("group", optional=True)
        if not all(isinstance(g, str) for g in group):
            f.fail("group", "expected strings")
        sweep_at = None
        if f.has("sweep_at"):
            at = f.list("sweep_at")
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in at):
                f.fail("sweep_at", "expected integers")
            sweep_at = tuple(at)
        got = f.float("got", optional=True, nan=True)
        return cls(
            key=key,
            loss=f.str("loss"),
            cls=f.str("class", choices=CLASSES),
            inputs=Inputs.from_fields(f, "inputs", key.dtype),
            index=f.int("index", optional=True, default=0, minimum=0),
            exact=f.str("exact", optional=True, default="n/a"),
            reference=f.float("reference", optional=True, nan=True),
            got=got,
            ulp=f.float("ulp", minimum=0),
            abs_error=f.float("abs_error", optional=True, default=math.inf, minimum=0),
            error=f.str("error", optional=True),
            explained=explained,
            message=f.str("message"),
            reproducer=f.str("reproducer"),
            confirmed=f.bool("confirmed", optional=True, default=True),
            sweep_ulp=f.float("sweep_ulp", optional=True, minimum=0),
            sweep_at=sweep_at,
            group=tuple(group),
            group_cases=f.int("group_cases", optional=True, default=1, minimum=1),
            special=f.bool("special", optional=True, default=False),
        )


@dataclass(frozen=True)
class Profile:
    """Error against input: the worst observation per bin of the plots' x axis."""

    axis: str = "logit"
    points: tuple[tuple[float, float, str, float, float], ...] = ()  # x, ulp, class, got, exact

    def to_json(self) -> dict:
        return {
            "axis": self.axis,
            "points": [
                [number(x), number(u), c, number(g), number(e)] for x, u, c, g, e in self.points
            ],
        }

    @classmethod
    def from_fields(cls, f: Fields | None) -> Profile:
        if f is None:
            return cls()
        points = []
        for i, p in enumerate(f.list("points")):
            if not (isinstance(p, list) and len(p) == 5 and p[2] in CLASSES):
                f.fail(f"points[{i}]", "expected [x, ulp, class, got, exact]")
            x, u, g, e = (
                f.check_float(f"points[{i}]", v, nan=True) for v in (p[0], p[1], p[3], p[4])
            )
            points.append((x, u, p[2], g, e))
        return cls(f.str("axis"), tuple(points))


@dataclass(frozen=True)
class Cell:
    """One cell's measurements: its counts per class, its largest errors, its profile,
    and for a compiled twin where it disagrees with its eager impl."""

    key: CellKey
    loss: str
    cases: int
    max_ulp: float
    max_finite_ulp: float  # over the answers with a finite error: what inf hides
    tolerance: float
    counts: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    seconds: float = 0.0
    autodiff: str | None = None  # how a gradient was taken
    stopped: str | None = None  # why the search ended early (the impl crashed or hung)
    twin: Twin | None = None
    sweep: dict | None = None  # a sweep's cell: labels, range, ordinals, chunks, shard
    profile: Profile = Profile()
    # the cases with finite inputs (accuracy) and with an infinity or NaN among them
    # (special values), apart; None in v1 files
    finite: Tally | None = None
    special: Tally | None = None
    groups_dropped: int = 0  # groups of findings beyond the cap, counted but not listed

    def __post_init__(self):
        ordered = {c: int(self.counts[c]) for c in CLASSES if self.counts.get(c)}
        object.__setattr__(self, "counts", MappingProxyType(ordered))

    @property
    def impl(self) -> str:
        return self.key.impl

    @property
    def dtype(self) -> str:
        return self.key.dtype

    @property
    def quantity(self) -> Quantity:
        return self.key.quantity

    @property
    def worst_class(self) -> str:
        return worst(self.counts)

    @property
    def accuracy(self) -> Tally:
        """The finite-input cases (all of them in a v1 file, which did not tell them apart)."""
        if self.finite is not None:
            return self.finite
        return Tally(self.cases, tuple(self.counts.items()), self.max_ulp, self.max_finite_ulp)

    @property
    def special_values(self) -> Tally:
        return self.special if self.special is not None else Tally()

    def to_json(self) -> dict:
        out = {
            "loss": self.loss,
            "impl": self.key.impl,
            "dtype": self.key.dtype,
            **self.key.quantity.to_json(),
            "autodiff": self.autodiff,
            "cases": self.cases,
            "max_ulp": number(self.max_ulp),
            "max_finite_ulp": number(self.max_finite_ulp),
            "tolerance": self.tolerance,
            "counts": dict(self.counts),
            "worst_class": self.worst_class,
            "seconds": round(self.seconds, 3),
        }
        if self.stopped:
            out["stopped"] = self.stopped
        if self.twin is not None:
            out |= self.twin.to_json(self.key.dtype)
        if self.sweep is not None:
            out["sweep"] = self.sweep
        if self.finite is not None:
            out["finite"] = self.finite.to_json()
        if self.special is not None:
            out["special"] = self.special.to_json()
        if self.groups_dropped:
            out["groups_dropped"] = self.groups_dropped
        out["profile"] = self.profile.to_json()
        return out

    @classmethod
    def from_fields(cls, f: Fields) -> Cell:
        key = key_fields(f)
        counts = {}
        raw = f.dict("counts")
        for c, n in raw.items():
            if c not in CLASSES:
                f.fail("counts", f"unknown class {c[:40]!r}")
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                f.fail(f"counts.{c}", f"expected a count, got {n!r}"[:80])
            counts[c] = n
        sweep = f.dict("sweep", optional=True) if f.has("sweep") else None
        return cls(
            key=key,
            loss=f.str("loss"),
            cases=f.int("cases", minimum=0),
            max_ulp=f.float("max_ulp", minimum=0),
            max_finite_ulp=f.float("max_finite_ulp", optional=True, default=None, minimum=0)
            if f.has("max_finite_ulp")
            else f.float("max_ulp", minimum=0),
            tolerance=f.float("tolerance", optional=True, default=4.0, minimum=0),
            counts=MappingProxyType(counts),
            seconds=f.float("seconds", optional=True, default=0.0, minimum=0),
            autodiff=f.str("autodiff", optional=True),
            stopped=f.str("stopped", optional=True),
            twin=Twin.from_fields(f, key.dtype) if f.has("twin") else None,
            sweep=sweep,
            profile=Profile.from_fields(f.sub("profile", optional=True)),
            finite=Tally.from_fields(f.sub("finite")) if f.has("finite") else None,
            special=Tally.from_fields(f.sub("special")) if f.has("special") else None,
            groups_dropped=f.int("groups_dropped", optional=True, default=0, minimum=0),
        )


# ------------------------------------------------------------------ the results file


@dataclass(frozen=True)
class Skipped:
    what: str  # an impl id, or a cell name
    reason: str

    def to_json(self) -> dict:
        return {"impl": self.what, "reason": self.reason}


@dataclass(frozen=True)
class Results:
    """A run's results: its cells and findings, how it ran, and what it skipped."""

    created: str
    seed: int | None
    budget: object  # fuzzed batches per cell, {"seconds": s}, a sweep's plan, or None
    versions: MappingProxyType
    cells: tuple[Cell, ...] = ()
    findings: tuple[Finding, ...] = ()
    complete: bool = True
    elapsed_seconds: float | None = None
    skipped: tuple[Skipped, ...] = ()
    contracts: Contracts | None = None
    shard: tuple[int, int] | None = None  # (K, N): this file holds every N-th cell from the K-th
    merged_from: int | None = None
    # how each user impl (user:MODULE:FUNCTION) was called: loss, framework, args, reduction
    user_impls: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    profile: str | None = None  # the campaign profile that chose the cells (profiles.py)

    def __post_init__(self):
        object.__setattr__(self, "versions", MappingProxyType(dict(self.versions)))
        object.__setattr__(self, "user_impls", MappingProxyType(dict(self.user_impls)))

    def findings_of(self, key: CellKey) -> tuple[Finding, ...]:
        """A cell's findings, worst first (as the run listed them)."""
        index = self.__dict__.get("_by_key")
        if index is None:
            index = {}
            for f in self.findings:
                index.setdefault(f.key, []).append(f)
            object.__setattr__(self, "_by_key", index)
        return tuple(index.get(key, ()))

    def replace(self, **changes) -> Results:
        return replace(self, **changes)

    def to_json(self) -> dict:
        out = {
            "schema": SCHEMA,
            "created": self.created,
            "seed": self.seed,
            "budget": self.budget,
            "versions": dict(self.versions),
            "complete": self.complete,
            "elapsed_seconds": self.elapsed_seconds,
            "skipped": [s.to_json() for s in self.skipped],
            "cells": [c.to_json() for c in self.cells],
            "findings": [f.to_json() for f in self.findings],
        }
        if self.contracts is not None:
            out["contracts"] = self.contracts.to_json()
        if self.shard is not None:
            out["shard"] = {"index": self.shard[0], "count": self.shard[1]}
        if self.merged_from is not None:
            out["merged_from"] = self.merged_from
        if self.user_impls:
            out["user_impls"] = {k: dict(v) for k, v in self.user_impls.items()}
        if self.profile is not None:
            out["profile"] = self.profile
        return out

    @classmethod
    def from_json(cls, data, what: str = "results") -> Results:
        """Validate a decoded results file (schema v1 or v2) into Results."""
        if not isinstance(data, dict) or "schema" not in data:
            raise ResultsError(f"{what}: not a lossfuzz results file (no schema)")
        if data["schema"] not in SCHEMAS_READ:
            raise ResultsError(
                f"{what}: schema {str(data['schema'])[:60]!r}, expected one of {SCHEMAS_READ}"
            )
        f = Fields(data, what)
        try:
            versions = {}
            for k, v in f.dict("versions", optional=True).items():
                if not (v is None or isinstance(v, str)):
                    f.fail(f"versions.{k}", "expected a version string")
                versions[k] = v
            shard = None
            if f.has("shard"):
                s = f.sub("shard")
                shard = (s.int("index", minimum=1), s.int("count", minimum=1))
                if shard[0] > shard[1]:
                    f.fail("shard", f"shard {shard[0]} of {shard[1]}")
            budget = data.get("budget")
            if isinstance(budget, bool) or not (budget is None or isinstance(budget, (int, dict))):
                f.fail("budget", "expected a number of batches or an object")
            return cls(
                created=f.str("created", optional=True, default=""),
                seed=f.int("seed", optional=True, minimum=0),
                budget=budget,
                versions=MappingProxyType(versions),
                cells=tuple(Cell.from_fields(c) for c in f.items("cells")),
                findings=tuple(Finding.from_fields(x) for x in f.items("findings")),
                complete=f.bool("complete", optional=True, default=True),
                elapsed_seconds=f.float("elapsed_seconds", optional=True, minimum=0),
                skipped=tuple(
                    Skipped(s.str("impl"), s.str("reason"))
                    for s in f.items("skipped", optional=True)
                ),
                contracts=Contracts.from_fields(f.sub("contracts")) if f.has("contracts") else None,
                shard=shard,
                merged_from=f.int("merged_from", optional=True, minimum=1),
                user_impls=_user_impls(f),
                profile=f.str("profile", optional=True, default=None),
            )
        except DataError as exc:
            raise ResultsError(str(exc)) from None

    @classmethod
    def load(cls, path: str) -> Results:
        try:
            data = read_json(path)
        except DataError as exc:
            raise ResultsError(str(exc)) from None
        return cls.from_json(data, path)


def _user_impls(f: Fields) -> dict:
    out = {}
    for impl_id, raw in f.dict("user_impls", optional=True).items():
        u = Fields(raw, f.what, f"user_impls.{impl_id[:60]}")
        u.str("loss")
        u.str("framework", optional=True, choices=("numpy", "torch", "jax", "tf"))
        u.str("reduction", optional=True, choices=("none", "mean", "sum"))
        u.bool("positional", optional=True)
        for i, pair in enumerate(u.list("args", optional=True)):
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            ):
                u.fail(f"args[{i}]", "expected [input, parameter]")
        out[impl_id] = raw
    return out


def load_results(path: str) -> Results:
    """Read and validate a results file (schema v1 or v2)."""
    return Results.load(path)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
