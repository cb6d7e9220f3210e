"""Every docstring example in lossfuzz runs and is right."""

import doctest
import importlib
import pkgutil

import pytest

import lossfuzz


def _modules():
    names = ["lossfuzz"]
    for info in pkgutil.walk_packages(lossfuzz.__path__[:1] + [], "lossfuzz."):
        names.append(info.name)
    for sub in ("harness", "oracles", "reports"):
        pkg = importlib.import_module(f"lossfuzz.{sub}")
        names.append(pkg.__name__)
        names += [i.name for i in pkgutil.walk_packages(pkg.__path__, f"{pkg.__name__}.")]
    return sorted(n for n in set(names) if not n.endswith("__main__"))


MODULES = _modules()


def test_the_doctests_cover_the_engine_the_oracle_and_the_reports():
    assert {
        "lossfuzz.harness.results",
        "lossfuzz.oracles.formats",
        "lossfuzz.reports.escape",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests failed in {name}"
