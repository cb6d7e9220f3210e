"""``lossfuzz.check``: fuzz one loss function against the oracle, from a test or a script.

    lossfuzz.check(my_bce, loss="sigmoid_cross_entropy_with_logits", dtype="float32", max_ulp=4)

``fn`` is called as it was written: with tensors of its framework (NumPy, PyTorch, JAX
or TensorFlow; detected from its code unless ``framework`` says), its own parameter
names (``input, target``, ``y_true, y_pred``...; ``args`` maps them where lossfuzz
cannot tell), returning a loss per row or the batch's mean or sum (``reduction``,
found by calling it). One preflight call says what is wrong with the description
before anything is fuzzed. The check runs the edge grid and a seeded Hypothesis
search over the inputs in scope (``allow_infinity``, ``labels``) and, on any answer
beyond ``max_ulp``, raises ``LossCheckFailed`` (an AssertionError) listing every
distinct failure, finite-input accuracy first, then special values, each with its
reproducer. The same seed and budget give the same verdict.
"""

from __future__ import annotations

from lossfuzz import oracles
from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.findings import finding
from lossfuzz.harness.isolation import IN_PROCESS
from lossfuzz.harness.registry import load_all
from lossfuzz.harness.results import Quantity
from lossfuzz.harness.scoring import Engine
from lossfuzz.harness.search import run_cell
from lossfuzz.harness.shrink import finalise
from lossfuzz.harness.signature import text
from lossfuzz.harness.strategies import Scope
from lossfuzz.harness.ulp import format_ulp
from lossfuzz.harness.userimpl import Description, preflight, register, resolve

DEFAULT_BUDGET = 30


class LossCheckFailed(AssertionError):
    """A loss is not within its ULP tolerance of the exact loss; ``findings`` says where."""

    def __init__(self, text: str, findings: list):
        super().__init__(text)
        self.findings = findings


def check(
    fn,
    *,
    loss: str,
    dtype: str = "float32",
    max_ulp: float = 4.0,
    budget: int | None = None,
    seed: int = 0,
    allow_infinity: bool = True,
    labels: str = "any",
    quantity: str = "value",
    framework: str | None = None,
    args: dict | None = None,
    reduction: str | None = None,
    min_classes: int = 1,
):
    """Fuzz ``fn`` as an implementation of ``loss``; raise LossCheckFailed on any answer
    beyond ``max_ulp`` (see the module). ``quantity`` "grad" checks the gradients by the
    framework's autodiff instead of the values. Returns the cells' measurements."""
    oracles.get_loss(loss)
    oracles.get_format(dtype)
    if quantity not in ("value", "grad"):
        raise ValueError(f"quantity must be 'value' or 'grad', not {quantity!r}")
    scope = Scope(allow_infinity=allow_infinity, labels=labels, min_classes=min_classes)
    load_all()
    name = f"{getattr(fn, '__module__', 'user')}:{getattr(fn, '__qualname__', repr(fn))}"
    desc = Description(
        name,
        loss,
        framework,
        tuple((args or {}).items()),
        reduction,
        framework_given=framework is not None,
    )
    try:
        impl = preflight(register(resolve(desc, fn), fn), IN_PROCESS, dtype)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    if quantity == "grad" and not impl.gradients:
        raise ValueError(f"{name}: {impl.runtime} has no autodiff lossfuzz can take gradients with")
    wanted = [q for q in impl.quantities(()) if (q.kind == "grad") == (quantity == "grad")]
    engine = Engine()
    cells, found = [], []
    for q in wanted:
        cell = run_cell(
            engine,
            impl,
            dtype,
            q,
            budget=DEFAULT_BUDGET if budget is None else budget,
            campaign_seed=seed,
            tolerance=max_ulp,
            scope=scope,
        )
        cells.append(cell)
        found += [finding(cell, o, g) for o, g in finalise(engine, cell)]
    if found:
        raise LossCheckFailed(failure_text(name, dtype, loss, max_ulp, cells, found), found)
    return cells


def failure_text(name, dtype, loss, max_ulp, cells, found) -> str:
    """Every distinct failure: finite-input accuracy first (worst first), then special
    values, each with its group, its count and its reproducer."""
    accuracy = [f for f in found if not f.special]
    special = [f for f in found if f.special]

    def counts(c) -> str:
        bad = [f"{k} {v}" for k, v in c.counts.items() if k not in ("exact", "ok")]
        return ", ".join(bad) or "none"

    lines = [
        f"lossfuzz: {name} [{dtype}] is not within {max_ulp:g} ULP of {loss}: "
        f"{len(found)} distinct failures"
    ]
    for cell in cells:
        what = "" if cell.quantity == Quantity() else f" ({cell.quantity.label})"
        lines += [
            f"  finite inputs{what}: {cell.finite.cases} cases, max "
            f"{format_ulp(cell.finite.max_finite_ulp)} ULP among finite answers; wrong: "
            f"{counts(cell.finite)}",
            f"  special values (inf or NaN inputs){what}: {cell.special.cases} cases; wrong: "
            f"{counts(cell.special)}",
        ]
    for title, group in (("finite-input accuracy", accuracy), ("special values", special)):
        if not group:
            continue
        lines += ["", f"== {title}: {len(group)} groups =="]
        for i, f in enumerate(group, 1):
            e = f.explained
            mechanism = [f"mechanism: {e.what} ({e.source})"] if e is not None else []
            lines += [
                "",
                f"[{i}] {f.cls} at {text(f.group)} ({f.group_cases} cases)",
                f.message,
                *mechanism,
                "",
                f.reproducer.rstrip(),
            ]
    return "\n".join(lines)
