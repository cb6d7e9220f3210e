"""pytest plugin: fuzz your own loss against lossfuzz's oracle from your own test suite.

    def test_my_loss(lossfuzz):
        lossfuzz.check(my_loss, loss="sigmoid_cross_entropy_with_logits", max_ulp=4)

``my_loss`` receives NumPy arrays of the dtype by input name (``logits``,
``labels``, ...; class axis last) and returns the loss per element or row. The
check runs lossfuzz's edge grid and a seeded Hypothesis search, and fails with the
worst finding, shrunk and confirmed, and a reproducer. Options: ``--lossfuzz-budget``
(fuzzed batches, default 30) and ``--lossfuzz-seed`` (default 0); the same seed and
budget give the same verdict. This module imports neither lossfuzz's engine nor
any framework until the fixture is used (as Hypothesis keeps its plugin apart).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("lossfuzz", "numerical accuracy of losses (lossfuzz)")
    group.addoption("--lossfuzz-budget", type=int, default=30, help="fuzzed batches per check")
    group.addoption("--lossfuzz-seed", type=int, default=0, help="seed of the lossfuzz search")


class LossFuzz:
    def __init__(self, budget: int, seed: int):
        self.budget = budget
        self.seed = seed

    def check(
        self, fn, *, loss: str, dtype: str = "float32", max_ulp: float = 4.0, budget=None, seed=None
    ):
        """Fuzz ``fn`` as an implementation of ``loss``; fail on any answer beyond ``max_ulp``."""
        from lossfuzz.harness.check import LossCheckFailed, check

        try:
            return check(
                fn,
                loss=loss,
                dtype=dtype,
                max_ulp=max_ulp,
                budget=self.budget if budget is None else budget,
                seed=self.seed if seed is None else seed,
            )
        except LossCheckFailed as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def lossfuzz(request) -> LossFuzz:
    """Checks a loss against lossfuzz's oracle: ``lossfuzz.check(fn, loss=..., dtype=...)``."""
    config = request.config
    return LossFuzz(config.getoption("lossfuzz_budget"), config.getoption("lossfuzz_seed"))
