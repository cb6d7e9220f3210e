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
    found = [finding(cell, o) for o in finalise(engine, cell)]
    if found:
        worst = found[0]
        classes = ", ".join(f"{k} {v}" for k, v in cell.counts.items() if k not in ("exact", "ok"))
        raise LossCheckFailed(
            f"lossfuzz: {name} [{dtype}] is not within {max_ulp:g} ULP of {loss} "
            f"({cell.cases} cases: {classes})\n{worst.message}\n\n{worst.reproducer}",
            found,
        )
    return cell
