"""The gate's policy and a run's defaults: ``lossfuzz.toml`` or ``[tool.lossfuzz]``.

Every key is checked for its type when the file is read; a wrong one is exit 2 with
one line naming the file and the key. See docs/gate.md for the keys.
"""

from __future__ import annotations

import fnmatch
import math
import os
import sys
from dataclasses import dataclass, field

from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.results import CellKey

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

DEFAULT_SLACK = {"relative": 0.1, "ulps": 1.0}  # new > old * 1.1 + 1 ULP is worse
QUANTITY_PATTERNS = ("value", "grad", "reduction", "*")


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
    # the same patterns -> how many wrong answers at special values (an infinity or NaN
    # among the inputs) a cell may have; 0 holds it to every limit of the design
    special_limits: dict = field(default_factory=dict)
    known_failures: list = field(default_factory=list)
    # how the team's own losses are called: {"MODULE:FUNCTION": {framework, args, reduction}}
    user_impls: dict = field(default_factory=dict)
    allow_infinity: bool | None = None  # the inputs in scope (the CLI's --finite-only ...)
    labels: str | None = None
    min_classes: int | None = None
    source: str | None = None

    def limit(self, key: CellKey) -> float | None:
        """The largest ULP error allowed at finite inputs, or None."""
        return _match(self.limits, key)

    def special_limit(self, key: CellKey) -> float | None:
        return _match(self.special_limits, key)

    def known(self, impl: str, dtype: str, quantity: str = "value") -> KnownFailure | None:
        return next((k for k in self.known_failures if k.matches(impl, dtype, quantity)), None)


def _match(limits: dict, key: CellKey) -> float | None:
    """The value of the first pattern that names the cell: "impl-pattern [dtype-pattern]"
    for values, "impl d/dwrt-pattern [dtype]" for gradients, "impl mean [dtype]" for a
    reduction (any batch size)."""
    q = key.quantity
    wrt, reduction = q.wrt, q.reduction
    for pattern, value in limits.items():
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
        if fnmatch.fnmatchcase(key.impl, ip) and fnmatch.fnmatchcase(key.dtype, dp or "*"):
            return float(value)
    return None


KEYS = {
    "losses",
    "impls",
    "dtypes",
    "quantities",
    "batches",
    "budget",
    "seed",
    "slack",
    "limits",
    "special_limits",
    "known_failures",
    "user_impls",
    "allow_infinity",
    "labels",
    "min_classes",
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
    tool = table.get("tool", {})
    return _policy(tool.get("lossfuzz", table) if isinstance(tool, dict) else table, path)


def _read_toml(path: str) -> dict:
    if tomllib is None:  # pragma: no cover
        raise UsageError("reading a policy file needs Python 3.11+ (tomllib)")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file") from None


def _strings(table: dict, key: str, source: str) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]  # impls = "naive:x" means the one impl, not its letters
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{source}: {key} must be a list of strings, got {value!r}"[:200])
    return list(value)


def _count(table: dict, key: str, source: str) -> int | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise UsageError(f"{source}: {key} must be an integer >= 0, got {value!r}"[:200])
    return value


def _ulps(value, what: str, source: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value >= 0)
    ):
        raise UsageError(f"{source}: {what} must be a finite number >= 0, got {value!r}"[:200])
    return float(value)


def _policy(table: dict, source: str) -> Policy:
    if not isinstance(table, dict):
        raise UsageError(f"{source}: [tool.lossfuzz] must be a table")
    unknown = set(table) - KEYS
    if unknown:
        raise UsageError(f"{source}: unknown keys {sorted(unknown)}; known: {sorted(KEYS)}")
    known = []
    entries = table.get("known_failures", [])
    if not isinstance(entries, list):
        raise UsageError(f"{source}: known_failures must be a list of tables")
    for entry in entries:
        if not isinstance(entry, dict) or "impl" not in entry or "reason" not in entry:
            raise UsageError(f"{source}: each known failure needs impl and reason")
        for k, v in entry.items():
            if k not in ("impl", "dtype", "class", "reason", "issue", "quantity"):
                raise UsageError(f"{source}: a known failure has an unknown key {k!r}")
            if not isinstance(v, str):
                raise UsageError(f"{source}: known failure {k} must be a string, got {v!r}"[:200])
        if entry.get("quantity", "value") not in QUANTITY_PATTERNS:
            raise UsageError(
                f"{source}: known failure quantity must be one of {', '.join(QUANTITY_PATTERNS)}"
            )
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
    slack = table.get("slack", {})
    if not isinstance(slack, dict) or set(slack) - set(DEFAULT_SLACK):
        raise UsageError(f"{source}: slack must be a table of relative and ulps")
    slack = {k: _ulps(v, f"slack.{k}", source) for k, v in dict(DEFAULT_SLACK, **slack).items()}
    limits = table.get("limits", {})
    if not isinstance(limits, dict):
        raise UsageError(f'{source}: limits must be a table of "impl [dtype]" = ULPs')
    limits = {str(k): _ulps(v, f"limit {k!r}", source) for k, v in limits.items()}
    special = table.get("special_limits", {})
    if not isinstance(special, dict):
        raise UsageError(f'{source}: special_limits must be a table of "impl [dtype]" = counts')
    special = {str(k): _ulps(v, f"special limit {k!r}", source) for k, v in special.items()}
    batches = table.get("batches", [])
    if not isinstance(batches, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 10**8 for b in batches
    ):
        raise UsageError(f"{source}: batches must be a list of integers from 1 to 10**8")
    users = table.get("user_impls", {})
    if not isinstance(users, dict) or not all(isinstance(v, dict) for v in users.values()):
        raise UsageError(f"{source}: user_impls must be a table of tables, one per MODULE:FUNCTION")
    for spec, entry in users.items():
        bad = set(entry) - {"framework", "args", "reduction"}
        if bad:
            raise UsageError(f"{source}: user_impls.{spec} has an unknown key {sorted(bad)[0]!r}")
        if entry.get("framework") not in (None, "numpy", "torch", "jax", "tf"):
            raise UsageError(
                f"{source}: user_impls.{spec}.framework must be numpy, torch, jax or tf"
            )
        if entry.get("reduction") not in (None, "none", "mean", "sum"):
            raise UsageError(f"{source}: user_impls.{spec}.reduction must be none, mean or sum")
        args = entry.get("args", {})
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            raise UsageError(f"{source}: user_impls.{spec}.args must map inputs to parameter names")
    allow = table.get("allow_infinity")
    if allow is not None and not isinstance(allow, bool):
        raise UsageError(f"{source}: allow_infinity must be true or false")
    labels = table.get("labels")
    if labels not in (None, "any", "hard", "soft"):
        raise UsageError(f"{source}: labels must be any, hard or soft")
    min_classes = _count(table, "min_classes", source)
    return Policy(
        user_impls=users,
        allow_infinity=allow,
        labels=labels,
        min_classes=min_classes or None,
        losses=_strings(table, "losses", source),
        impls=_strings(table, "impls", source),
        dtypes=_strings(table, "dtypes", source),
        quantities=_strings(table, "quantities", source),
        batches=list(batches),
        budget=_count(table, "budget", source),
        seed=_count(table, "seed", source),
        slack=slack,
        limits=limits,
        special_limits=special,
        known_failures=known,
        source=source,
    )
