"""The CI regression gate: baselines, policy, and a cell-by-cell comparison.

A baseline records, per cell, the max ULP error (all answers, and finite ones)
and the finding classes seen, with the versions, seed and budget of the run.
``compare`` judges a new results file against it and a policy, marking each
change the way asv does:

    !  a finding class the cell did not have (nan, overflow, underflow, missed_inf first)
    +  max finite ULP error above the baseline's by more than the slack
    L  above an absolute ULP limit of the policy
    *  a known failure that no longer fails: the policy file must be updated
    -  better than the baseline (a class gone, or a smaller error)
    x  a baseline cell missing from the results (not comparable: a regression)

Exit codes: 0 nothing regressed, 1 something did, 2 the gate could not judge.
"""

from __future__ import annotations

import fnmatch
import math
import os
import sys
from dataclasses import dataclass, field

from lossfuzz.harness import results as R
from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.metrics import FINDING_CLASSES, SEVERITY
from lossfuzz.harness.results import cell_key

BASELINE_SCHEMA = "lossfuzz/baseline/1"
DEFAULT_SLACK = {"relative": 0.1, "ulps": 1.0}  # new > old * 1.1 + 1 ULP is worse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None


# ------------------------------------------------------------------ baseline


def baseline(data: dict) -> dict:
    """The baseline of a results file."""
    cells = {}
    for c in data["cells"]:
        cells[cell_key(c)] = {
            "loss": c["loss"],
            "impl": c["impl"],
            "dtype": c["dtype"],
            "quantity": c.get("quantity", "value"),
            "wrt": c.get("wrt"),
            "max_ulp": c["max_ulp"],
            "max_finite_ulp": c.get("max_finite_ulp", c["max_ulp"]),
            "classes": sorted(
                (k for k in c["counts"] if k in FINDING_CLASSES), key=SEVERITY.__getitem__
            ),
        }
    return {
        "schema": BASELINE_SCHEMA,
        "created": R.now(),
        "seed": data.get("seed"),
        "budget": data.get("budget"),
        "versions": data.get("versions", {}),
        "cells": cells,
    }


def load_baseline(path: str) -> dict:
    data = R.read_json(path)
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise UsageError(f"{path}: schema {found!r}, expected {BASELINE_SCHEMA!r}")
    if not isinstance(data.get("cells"), dict):
        raise UsageError(f"{path}: missing or malformed 'cells'")
    return data


# ------------------------------------------------------------------ policy


@dataclass
class KnownFailure:
    impl: str  # fnmatch pattern
    dtype: str = "*"
    cls: str | None = None  # the class that is expected; None: any finding
    reason: str = ""
    issue: str = ""
    quantity: str = "value"  # "value", "grad", "reduction" or "*" (any)

    def matches(self, impl: str, dtype: str, quantity: str = "value") -> bool:
        return (
            fnmatch.fnmatchcase(impl, self.impl)
            and fnmatch.fnmatchcase(dtype, self.dtype)
            and fnmatch.fnmatchcase(quantity, self.quantity)
        )


@dataclass
class Policy:
    losses: list = field(default_factory=list)
    impls: list = field(default_factory=list)
    dtypes: list = field(default_factory=list)
    quantities: list = field(default_factory=list)
    batches: list = field(default_factory=list)  # reduction cells' batch sizes
    budget: int | None = None
    seed: int | None = None
    slack: dict = field(default_factory=lambda: dict(DEFAULT_SLACK))
    # "impl-pattern [dtype-pattern]" -> max ULP of the values; a gradient cell's limit
    # names it: "impl-pattern d/dwrt-pattern [dtype-pattern]"; a reduction cell's its
    # reduction: "impl-pattern mean [dtype-pattern]" (any batch size)
    limits: dict = field(default_factory=dict)
    known_failures: list = field(default_factory=list)
    source: str | None = None

    def limit(
        self, impl: str, dtype: str, wrt: str | None = None, reduction: str | None = None
    ) -> float | None:
        for pattern, value in self.limits.items():
            words = pattern.split()
            ip = words[0] if words else "*"
            grad = next((w[3:] for w in words[1:] if w.startswith("d/d")), None)
            red = next((w for w in words[1:] if w in ("mean", "sum", "*")), None)
            dp = next((w.strip("[]") for w in words[1:] if w.startswith("[")), "*")
            if (grad is None) != (wrt is None) or (red is None) != (reduction is None):
                continue
            if red is not None and not fnmatch.fnmatchcase(reduction, red):
                continue
            if grad is not None and not fnmatch.fnmatchcase(wrt, grad):
                continue
            if fnmatch.fnmatchcase(impl, ip) and fnmatch.fnmatchcase(dtype, dp or "*"):
                return float(value)
        return None

    def known(self, impl: str, dtype: str, quantity: str = "value") -> KnownFailure | None:
        return next((k for k in self.known_failures if k.matches(impl, dtype, quantity)), None)


POLICY_KEYS = {
    "losses",
    "impls",
    "dtypes",
    "quantities",
    "batches",
    "budget",
    "seed",
    "slack",
    "limits",
    "known_failures",
}


def load_policy(path: str | None = None) -> Policy:
    """``path``, else ./lossfuzz.toml, else [tool.lossfuzz] of ./pyproject.toml, else defaults."""
    if path is None:
        if os.path.exists("lossfuzz.toml"):
            path = "lossfuzz.toml"
        elif os.path.exists("pyproject.toml"):
            table = _read_toml("pyproject.toml").get("tool", {}).get("lossfuzz")
            return _policy(table, "pyproject.toml [tool.lossfuzz]") if table else Policy()
        else:
            return Policy()
    table = _read_toml(path)
    return _policy(table.get("tool", {}).get("lossfuzz", table), path)


def _read_toml(path: str) -> dict:
    if tomllib is None:  # pragma: no cover
        raise UsageError("reading a policy file needs Python 3.11+ (tomllib)")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def _policy(table: dict, source: str) -> Policy:
    unknown = set(table) - POLICY_KEYS
    if unknown:
        raise UsageError(f"{source}: unknown keys {sorted(unknown)}; known: {sorted(POLICY_KEYS)}")
    known = []
    for entry in table.get("known_failures", []):
        if not isinstance(entry, dict) or "impl" not in entry or "reason" not in entry:
            raise UsageError(f"{source}: each known failure needs impl and reason")
        known.append(
            KnownFailure(
                entry["impl"],
                entry.get("dtype", "*"),
                entry.get("class"),
                entry["reason"],
                entry.get("issue", ""),
                entry.get("quantity", "value"),
            )
        )
    slack = dict(DEFAULT_SLACK, **table.get("slack", {}))
    for name in ("budget", "seed"):
        value = table.get(name)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise UsageError(f"{source}: {name} must be an integer >= 0, got {value!r}")
    return Policy(
        losses=list(table.get("losses", [])),
        impls=list(table.get("impls", [])),
        dtypes=list(table.get("dtypes", [])),
        quantities=list(table.get("quantities", [])),
        batches=list(table.get("batches", [])),
        budget=table.get("budget"),
        seed=table.get("seed"),
        slack=slack,
        limits=dict(table.get("limits", {})),
        known_failures=known,
        source=source,
    )


# ------------------------------------------------------------------ comparison


@dataclass
class Change:
    mark: str
    cell: str
    what: str
    regression: bool
    finding: dict | None = None  # the worst finding of the new cell, for JUnit text


@dataclass
class Verdict:
    changes: list[Change]
    compared: int
    warnings: list[str]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def _f(v) -> float:
    return R.unhex(v) if isinstance(v, str) else float(v)


def compare(data: dict, base: dict, policy: Policy | None = None) -> Verdict:
    policy = policy or Policy()
    new = {cell_key(c): c for c in data["cells"]}
    old = base["cells"]
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
        worst = c.get("worst")
        classes = {x for x in c["counts"] if x in FINDING_CLASSES}
        before = set(b["classes"])
        known = policy.known(c["impl"], c["dtype"], c.get("quantity", "value"))
        if known is not None:
            used_known.add(policy.known_failures.index(known))
            still = (known.cls in classes) if known.cls else bool(classes)
            if not still:
                changes.append(
                    Change(
                        "*",
                        k,
                        f"known failure fixed: remove it from the policy ({known.reason})",
                        True,
                    )
                )
            continue
        for cls in sorted(classes - before, key=SEVERITY.__getitem__, reverse=True):
            changes.append(Change("!", k, f"new {cls}", True, worst))
        for cls in sorted(before - classes, key=SEVERITY.__getitem__, reverse=True):
            changes.append(Change("-", k, f"no more {cls}", False))
        now, then = _f(c.get("max_finite_ulp", c["max_ulp"])), _f(b["max_finite_ulp"])
        if now > then * (1 + rel) + ulps:
            changes.append(Change("+", k, f"max ULP {_u(then)} -> {_u(now)}", True, worst))
        elif now < (then - ulps) / (1 + rel):
            changes.append(Change("-", k, f"max ULP {_u(then)} -> {_u(now)}", False))
        limit = policy.limit(c["impl"], c["dtype"], c.get("wrt"), c.get("reduction"))
        if limit is not None and _f(c["max_ulp"]) > limit:
            changes.append(
                Change(
                    "L",
                    k,
                    f"max ULP {_u(_f(c['max_ulp']))} above the limit {_u(limit)}",
                    True,
                    worst,
                )
            )
    warnings = [
        f"known failure {k.impl} [{k.dtype}] matches no cell of the results"
        for i, k in enumerate(policy.known_failures)
        if i not in used_known
    ]
    return Verdict(changes, len(common), warnings)


def _u(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.3g}"


def table(verdict: Verdict) -> str:
    lines = [f"{len(verdict.changes)} changes over {verdict.compared} common cells"]
    for c in sorted(verdict.changes, key=lambda c: (not c.regression, c.cell)):
        lines.append(f"  {c.mark} {c.cell}: {c.what}")
    n = len(verdict.regressions)
    lines.append(f"{'REGRESSED' if n else 'OK'}: {n} regressions")
    return "\n".join(lines)


def markdown(verdict: Verdict) -> str:
    n = len(verdict.regressions)
    lines = [
        "## lossfuzz gate",
        "",
        f"**{'regressed' if n else 'passed'}**: {n} regressions over {verdict.compared} cells.",
        "",
    ]
    if verdict.changes:
        lines += ["| | cell | change |", "|---|---|---|"]
        for c in sorted(verdict.changes, key=lambda c: (not c.regression, c.cell)):
            lines.append(f"| {c.mark} | `{c.cell}` | {c.what.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
