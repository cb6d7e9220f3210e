"""The CI regression gate: baselines and a cell-by-cell comparison.

A baseline records, per cell, the max ULP error (all answers, and finite ones)
and the finding classes seen, with the versions, seed and budget of the run.
``compare`` judges new Results against it and a policy (``policy.py``), marking
each change the way asv does:

    !  a finding class the cell did not have (nan, overflow, underflow, missed_inf first)
    +  max finite ULP error above the baseline's by more than the slack
    L  above an absolute ULP limit of the policy
    *  a known failure that no longer fails: the policy file must be updated
    -  better than the baseline (a class gone, or a smaller error)
    x  a baseline cell missing from the results (not comparable: a regression)

Exit codes: 0 nothing regressed, 1 something did, 2 the gate could not judge (an
unreadable or invalid file, NaN or missing figures, no common cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.jsonio import DataError, Fields, number, read_json
from lossfuzz.harness.metrics import CLASSES, FINDING_CLASSES, SEVERITY
from lossfuzz.harness.policy import Policy
from lossfuzz.harness.results import CellKey, Finding, Results, key_fields, now
from lossfuzz.harness.ulp import format_ulp

BASELINE_SCHEMA = "lossfuzz/baseline/1"


# ------------------------------------------------------------------ baseline


@dataclass(frozen=True)
class BaselineCell:
    """A cell as the gate remembers it: its finite-input accuracy (largest ULP error among
    finite answers, finding classes) and its special-value classes, apart."""

    key: CellKey
    loss: str
    max_ulp: float  # over every case
    max_finite_ulp: float  # finite inputs' largest error among finite answers
    classes: tuple[str, ...]  # finite inputs' finding classes
    special_classes: tuple[str, ...] = ()  # the classes of cases with an infinity or NaN

    def to_json(self) -> dict:
        return {
            "loss": self.loss,
            "impl": self.key.impl,
            "dtype": self.key.dtype,
            **self.key.quantity.to_json(),
            "max_ulp": number(self.max_ulp),
            "max_finite_ulp": number(self.max_finite_ulp),
            "classes": list(self.classes),
            "special_classes": list(self.special_classes),
        }


@dataclass(frozen=True)
class Baseline:
    created: str
    seed: int | None
    budget: object
    versions: dict
    cells: dict  # CellKey -> BaselineCell

    def to_json(self) -> dict:
        return {
            "schema": BASELINE_SCHEMA,
            "created": self.created,
            "seed": self.seed,
            "budget": self.budget,
            "versions": dict(self.versions),
            "cells": {k.name: c.to_json() for k, c in self.cells.items()},
        }

    @classmethod
    def load(cls, path: str) -> Baseline:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else None
            raise DataError(f"{path}: schema {str(found)[:60]!r}, expected {BASELINE_SCHEMA!r}")
        f = Fields(data, path)
        cells = {}
        for name, raw in f.dict("cells").items():
            c = Fields(raw, path, f"cells[{name[:80]!r}]")
            try:
                key = CellKey.parse(name)
            except ValueError:
                c.fail("", "its name is not a cell name")
            if c.has("impl") and key_fields(c).impl != key.impl:
                c.fail("impl", "differs from the cell's name")
            classes = {}
            for field_name in ("classes", "special_classes"):
                found = c.list(field_name, optional=True)
                if not all(isinstance(k, str) and k in CLASSES for k in found):
                    c.fail(field_name, "expected finding classes")
                classes[field_name] = tuple(found)
            if not c.has("special_classes"):  # an older baseline: one set of classes for all
                classes["special_classes"] = classes["classes"]
            max_ulp = c.float("max_ulp", minimum=0)
            cells[key] = BaselineCell(
                key,
                c.str("loss"),
                max_ulp,
                c.float("max_finite_ulp", minimum=0) if c.has("max_finite_ulp") else max_ulp,
                classes["classes"],
                classes["special_classes"],
            )
        seed = f.int("seed", optional=True, minimum=0)
        return cls(
            f.str("created", optional=True, default=""),
            seed,
            data.get("budget"),
            f.dict("versions", optional=True),
            cells,
        )


def _ordered(classes) -> tuple[str, ...]:
    return tuple(sorted((k for k in classes if k in FINDING_CLASSES), key=SEVERITY.__getitem__))


def baseline(data: Results) -> Baseline:
    """The baseline of a results file."""
    cells = {
        c.key: BaselineCell(
            c.key,
            c.loss,
            c.max_ulp,
            c.accuracy.max_finite_ulp,
            _ordered(c.accuracy.classes),
            _ordered(c.special_values.classes),
        )
        for c in data.cells
    }
    return Baseline(now(), data.seed, data.budget, dict(data.versions), cells)


# ------------------------------------------------------------------ comparison


@dataclass
class Change:
    mark: str
    cell: CellKey
    what: str
    regression: bool
    finding: Finding | None = None  # the worst finding of the new cell, for JUnit text


@dataclass
class Verdict:
    changes: list[Change]
    compared: int
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def compare(data: Results, base: Baseline, policy: Policy | None = None) -> Verdict:
    policy = policy or Policy()
    new = {c.key: c for c in data.cells}
    old = base.cells
    common = sorted(set(new) & set(old))
    if not common:
        raise UsageError("no common cells between the results and the baseline: nothing to judge")
    changes: list[Change] = []
    used_known: set[int] = set()
    rel, ulps = float(policy.slack["relative"]), float(policy.slack["ulps"])
    for k in sorted(set(old) - set(new)):
        changes.append(Change("x", k, "cell disappeared from the results", True))
    for k in common:
        c, b = new[k], old[k]
        kept = data.findings_of(k)
        worst = kept[0] if kept else None
        accuracy, special = c.accuracy, c.special_values
        classes, specials = set(accuracy.classes), set(special.classes)
        known = policy.known(c.impl, c.dtype, c.quantity.kind)
        if known is not None:
            used_known.add(policy.known_failures.index(known))
            both = classes | specials
            still = (known.cls in both) if known.cls else bool(both)
            if not still:
                what = f"known failure fixed: remove it from the policy ({known.reason})"
                changes.append(Change("*", k, what, True))
            continue
        for cls in sorted(classes - set(b.classes), key=SEVERITY.__getitem__, reverse=True):
            changes.append(Change("!", k, f"new {cls}", True, worst))
        for cls in sorted(
            specials - set(b.special_classes), key=SEVERITY.__getitem__, reverse=True
        ):
            changes.append(Change("!", k, f"new {cls} at special values", True, worst))
        for cls in sorted(set(b.classes) - classes, key=SEVERITY.__getitem__, reverse=True):
            changes.append(Change("-", k, f"no more {cls}", False))
        for cls in sorted(
            set(b.special_classes) - specials, key=SEVERITY.__getitem__, reverse=True
        ):
            changes.append(Change("-", k, f"no more {cls} at special values", False))
        now_ulp, then = accuracy.max_finite_ulp, b.max_finite_ulp
        shown = f"max ULP {format_ulp(then)} -> {format_ulp(now_ulp)}"
        if now_ulp > then * (1 + rel) + ulps:
            changes.append(Change("+", k, shown, True, worst))
        elif now_ulp < (then - ulps) / (1 + rel):
            changes.append(Change("-", k, shown, False))
        limit = policy.limit(k)
        if limit is not None and not accuracy.max_ulp <= limit:
            what = f"max ULP {format_ulp(accuracy.max_ulp)} above the limit {format_ulp(limit)}"
            changes.append(Change("L", k, what, True, worst))
        allowed = policy.special_limit(k)
        if allowed is not None and special.findings > allowed:
            what = (
                f"{special.findings} wrong answers at special values, above the limit {allowed:g}"
            )
            changes.append(Change("L", k, what, True, worst))
    warnings = [
        f"known failure {k.impl} [{k.dtype}] matches no cell of the results"
        for i, k in enumerate(policy.known_failures)
        if i not in used_known
    ]
    return Verdict(changes, len(common), warnings)


def _order(c: Change) -> tuple:
    return (not c.regression, c.cell.name)


def table(verdict: Verdict) -> str:
    from lossfuzz.reports.escape import terminal

    lines = [f"{len(verdict.changes)} changes over {verdict.compared} common cells"]
    for c in sorted(verdict.changes, key=_order):
        lines.append(f"  {c.mark} {terminal(c.cell.name)}: {terminal(c.what)}")
    n = len(verdict.regressions)
    lines.append(f"{'REGRESSED' if n else 'OK'}: {n} regressions")
    return "\n".join(lines)


def markdown(verdict: Verdict) -> str:
    from lossfuzz.reports.escape import md_code, md_text

    n = len(verdict.regressions)
    lines = [
        "## lossfuzz gate",
        "",
        f"**{'regressed' if n else 'passed'}**: {n} regressions over {verdict.compared} cells.",
        "",
    ]
    if verdict.changes:
        lines += ["| | cell | change |", "|---|---|---|"]
        for c in sorted(verdict.changes, key=_order):
            lines.append(f"| {c.mark} | {md_code(c.cell.name)} | {md_text(c.what)} |")
    return "\n".join(lines) + "\n"
