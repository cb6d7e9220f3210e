"""Re-run a finding as it was measured: the same impl, inputs, element and quantity.

Nothing named in a results file is imported: a user's impl (``user:MOD:FN``) is
re-run only when the caller names ``MOD:FN`` in ``allowed`` (``--impl`` on the
command line); every other impl must be one this installation registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from lossfuzz.harness.cell import CellRun
from lossfuzz.harness.jsonio import hexfloat
from lossfuzz.harness.registry import load_all, user_impl
from lossfuzz.harness.results import Finding
from lossfuzz.harness.scoring import Engine, Observation
from lossfuzz.harness.search import reduction_tolerance
from lossfuzz.harness.shrink import rescore


@dataclass
class Outcome:
    status: str  # "reproduces", "changed", "not re-run"
    why: str = ""  # for "not re-run"
    observation: Observation | None = None
    impl: object = None

    @property
    def reproduces(self) -> bool:
        return self.status == "reproduces"


def rerun(engine: Engine, f: Finding, allowed=frozenset(), user_impls=None) -> Outcome:
    """Re-run ``f``; ``user_impls`` is the results file's record of how user impls were
    called (their framework, arguments and reduction)."""
    from lossfuzz.harness import userimpl

    registry = load_all()
    if f.impl.startswith("user:"):
        if f.impl[5:] not in allowed:
            return Outcome("not re-run", f"user code, re-run only with --impl {f.impl[5:]}")
        raw = (user_impls or {}).get(f.impl)
        desc = userimpl.from_json(f.impl[5:], raw) if raw else None
        impl = user_impl(f.impl[5:], f.loss, desc)
    elif f.impl in registry:
        impl = registry[f.impl]
    else:
        return Outcome("not re-run", "not an impl of this installation")
    q = f.quantity
    tolerance = 4.0 if q.kind != "reduction" else reduction_tolerance(4.0, q.batch)
    cell = CellRun(impl, f.dtype, q, tolerance)
    observations = rescore(engine, cell, f.inputs.arrays(f.dtype), q)
    o = observations[f.index] if f.index < len(observations) else observations[0]
    same = o.cls == f.cls and (
        o.error is not None
        if f.got is None
        else o.got is not None and hexfloat(o.got) == hexfloat(f.got)
    )
    return Outcome("reproduces" if same else "changed", "", o, impl)
