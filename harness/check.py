"""``lossfuzz.check``: fuzz one loss function against the oracle, from a test or a script.

    lossfuzz.check(my_bce, loss="sigmoid_cross_entropy_with_logits", dtype="float32", max_ulp=4)

``fn`` receives NumPy arrays of the dtype by input name (``logits``, ``labels``, ...;
class axis last) and returns the loss per element or row. The check runs the edge
grid and a seeded Hypothesis search; on an answer beyond ``max_ulp`` it raises
``LossCheckFailed`` (an AssertionError) with the worst finding, shrunk and
confirmed, and its reproducer. The same seed and budget give the same verdict.
"""

from __future__ import annotations

from lossfuzz import oracles
from lossfuzz.harness.findings import finding
from lossfuzz.harness.registry import Impl, load_all
from lossfuzz.harness.scoring import Engine
from lossfuzz.harness.search import run_cell
from lossfuzz.harness.shrink import finalise
from lossfuzz.harness.signature import text
from lossfuzz.harness.ulp import format_ulp

DEFAULT_BUDGET = 30


class LossCheckFailed(AssertionError):
    """A loss is not within its ULP tolerance of the exact loss; ``findings`` says where."""

    def __init__(self, text: str, findings: list):
        super().__init__(text)
        self.findings = findings


def check(fn, *, loss: str, dtype: str = "float32", max_ulp: float = 4.0, budget=None, seed=0):
    """Fuzz ``fn`` as an implementation of ``loss``; raise LossCheckFailed on any answer
    beyond ``max_ulp``. Returns the cell's measurements when it passes."""
    oracles.get_loss(loss)
    oracles.get_format(dtype)
    load_all()  # the NumPy backend the function runs on
    name = f"{getattr(fn, '__module__', 'user')}:{getattr(fn, '__qualname__', repr(fn))}"
    impl = Impl(f"pytest:{name}", loss, "numpy", function=fn)
    engine = Engine()
    cell = run_cell(
        engine,
        impl,
        dtype,
        budget=DEFAULT_BUDGET if budget is None else budget,
        campaign_seed=seed,
        tolerance=max_ulp,
    )
    found = [finding(cell, o, g) for o, g in finalise(engine, cell)]
    if found:
        raise LossCheckFailed(failure_text(name, dtype, loss, max_ulp, cell, found), found)
    return cell


def failure_text(name, dtype, loss, max_ulp, cell, found) -> str:
    """Every distinct failure: finite-input accuracy first (worst first), then special
    values, each with its group, its count and its reproducer."""
    accuracy = [f for f in found if not f.special]
    special = [f for f in found if f.special]

    def counts(c) -> str:
        bad = [f"{k} {v}" for k, v in c.counts.items() if k not in ("exact", "ok")]
        return ", ".join(bad) or "none"

    lines = [
        f"lossfuzz: {name} [{dtype}] is not within {max_ulp:g} ULP of {loss}: "
        f"{len(found)} distinct failures",
        f"  finite inputs: {cell.finite.cases} cases, max {format_ulp(cell.finite.max_finite_ulp)}"
        f" ULP among finite answers; wrong: {counts(cell.finite)}",
        f"  special values (inf or NaN inputs): {cell.special.cases} cases; "
        f"wrong: {counts(cell.special)}",
    ]
    for title, group in (("finite-input accuracy", accuracy), ("special values", special)):
        if not group:
            continue
        lines += ["", f"== {title}: {len(group)} groups =="]
        for i, f in enumerate(group, 1):
            lines += [
                "",
                f"[{i}] {f.cls} at {text(f.group)} ({f.group_cases} cases)",
                f.message,
                *([f"mechanism: {f.explained.what} ({f.explained.source})"] if f.explained else []),
                "",
                f.reproducer.rstrip(),
            ]
    return "\n".join(lines)
