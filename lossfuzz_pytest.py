"""pytest plugin: fuzz your own loss against lossfuzz's oracle from your own test suite.

    def test_my_loss(lossfuzz):
        lossfuzz.check(my_loss, loss="sigmoid_cross_entropy_with_logits", max_ulp=4)

``my_loss`` is called as written: tensors of its framework, its own parameter names,
a loss per row or its batch's mean (see ``lossfuzz.check`` for the options). The
check runs lossfuzz's edge grid and a seeded Hypothesis search, and fails with every
distinct failure, shrunk and confirmed, each with a reproducer. Options: ``--lossfuzz-budget``
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

    def check(self, fn, *, loss: str, budget=None, seed=None, **options):
        """Fuzz ``fn`` as an implementation of ``loss`` and fail the test with every distinct
        failure; the options are ``lossfuzz.check``'s (dtype, max_ulp, allow_infinity,
        labels, quantity, framework, args, reduction, min_classes)."""
        from lossfuzz.harness.check import LossCheckFailed, check

        try:
            return check(
                fn,
                loss=loss,
                budget=self.budget if budget is None else budget,
                seed=self.seed if seed is None else seed,
                **options,
            )
        except LossCheckFailed as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def lossfuzz(request) -> LossFuzz:
    """Checks a loss against lossfuzz's oracle: ``lossfuzz.check(fn, loss=..., dtype=...)``."""
    config = request.config
    return LossFuzz(config.getoption("lossfuzz_budget"), config.getoption("lossfuzz_seed"))
