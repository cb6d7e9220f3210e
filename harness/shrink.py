"""From leads to findings: each worst case re-run alone, shrunk to simple inputs, and
confirmed by a second call (in another process under isolation).

A batch only gives a lead: frameworks take other code paths for other batch sizes,
so each lead is scored again as a case of one (what the reproducer runs) before it
is shrunk and confirmed; one that changes class alone is dropped.
"""

from __future__ import annotations

import math

import numpy as np

from lossfuzz import oracles
from lossfuzz.harness.cell import CellRun, documented_by, rank
from lossfuzz.harness.metrics import same_answer
from lossfuzz.harness.results import VALUE, Quantity
from lossfuzz.harness.scoring import Engine, Observation, score
from lossfuzz.harness.search import rows_sound
from lossfuzz.harness.signature import signature

NOT_SCORABLE = (oracles.DomainError, oracles.OracleUndecided, ValueError, TypeError)


def _simpler_values(v: float, dtype: str, is_label: bool) -> tuple[list[float], list[float]]:
    """Candidates simpler than v: the simple ones simplest first (0, 1, short decimals,
    an integer), and v truncated toward 0 to 1, 2, ... significant bits."""
    if not math.isfinite(v) or v == 0:
        return [], []
    fmt = oracles.get_format(dtype)
    simple = [0.0, 1.0, 0.5] if is_label else [0.0, math.copysign(1.0, v)]
    for digits in range(1, 5):
        simple.append(float(fmt.cast(float(f"{v:.{digits}g}"))))
    if abs(v) < 2**53:
        simple.append(float(round(v)))
    m, e = math.frexp(v)
    bits = [
        float(fmt.cast(math.ldexp(math.trunc(m * 2**b) / 2**b, e))) for b in range(1, fmt.precision)
    ]
    seen = {v}

    def fresh(values):
        out = []
        for c in values:
            if c not in seen and math.isfinite(c):
                seen.add(c)
                out.append(c)
        return out

    return fresh(simple), fresh(bits)


def shrink(
    engine: Engine, cell: CellRun, o: Observation, rounds: int = 3, group=None, tries: int = 64
) -> Observation:
    """Greedily simplify each input value of a single case while its class (and, given a
    group, its regime of inputs and its explanation) stays the same.

    For each value the simple candidates are tried in order and the first that keeps
    the class wins; failing those, the fewest significant bits that keep it are found by
    bisection (a handful of tries where trying every width took up to 52). At most
    ``tries`` trials a case: each scores a case of one on the exact path, and a cell's
    findings are shrunk one after another."""
    current = o
    fmt = oracles.get_format(cell.dtype)
    left = tries

    def attempt(base: Observation, name: str, shape, flat, pos: int, candidate: float):
        nonlocal left
        left -= 1
        trial = flat.copy()
        trial[pos] = candidate
        inputs = dict(base.inputs)
        inputs[name] = fmt.cast(trial).reshape(shape)
        found = same_class(engine, cell, inputs, base, group=group)
        return None if found is None else (found, trial)

    for _ in range(rounds):
        changed = False
        for name, value in current.inputs.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind in "iub":
                continue  # class indices stay as they are
            flat = value.astype(np.float64).ravel()
            for pos in range(flat.size):
                if left <= 0:
                    return current
                simple, bits = _simpler_values(float(flat[pos]), cell.dtype, name == "labels")
                args = (current, name, value.shape, flat, pos)
                best = None
                for candidate in simple:
                    if left <= 0:
                        break
                    best = attempt(*args, candidate)
                    if best is not None:
                        break
                if best is None:  # the fewest bits that keep it; bits[i] has i + 1 of them
                    lo, hi = 0, len(bits)
                    while lo < hi and left > 0:
                        mid = (lo + hi) // 2
                        got = attempt(*args, bits[mid])
                        if got is None:
                            lo = mid + 1
                        else:
                            best, hi = got, mid
                if best is not None:
                    current, flat = best
                    changed = True
        if not changed:
            break
    return current


def same_class(
    engine: Engine, cell: CellRun, inputs: dict, like: Observation, caller=None, group=None
) -> Observation | None:
    """The observation at ``like``'s element for ``inputs`` scored alone on the exact path,
    if it has ``like``'s class and an error of the same order (and is of ``group``: its
    regime of inputs, explained or not as the group is); else None."""
    impl, dtype, quantity = cell.impl, cell.dtype, cell.quantity
    try:
        if (
            quantity.kind == "reduction"
            and quantity.batch is not None
            and like.got is not None
            and not rows_sound(engine, impl, dtype, inputs, caller)
        ):
            return None  # shrinking must not walk into rows the impl gets wrong alone
        observations = score(
            engine, impl, dtype, inputs, cell.tolerance, quantity, exact=True, caller=caller
        )
    except NOT_SCORABLE:
        return None
    if like.index >= len(observations):
        return None
    o = observations[like.index]
    # same class, and an error of the same order: the worst case must not shrink away
    if o.cls != like.cls or o.score.ulp < like.score.ulp / 2:
        return None
    if group is not None:
        spec, fmt = oracles.get_loss(impl.loss), oracles.get_format(dtype)
        if signature(spec, fmt, o.inputs, o.index, quantity.kind) != group.signature:
            return None
        explained = documented_by(impl, o, quantity, dtype, cell.tolerance)
        if (explained is None) != (group.explained is None):
            return None
    return o


def confirm(engine: Engine, cell: CellRun, o: Observation, group=None) -> bool:
    """The impl gives the same bits on a second call (under isolation, in another
    process than the one that found it), and the exact oracle agrees again."""
    again = same_class(engine, cell, o.inputs, o, caller=engine.confirmer, group=group)
    if again is None:
        return False
    if o.got is None:
        return again.got is None
    return same_answer(again.got, o.got)


def finalise(engine: Engine, cell: CellRun) -> list[tuple[Observation, object]]:
    """The cell's findings: the worst case of each group (class and regime of inputs),
    shrunk within its group and confirmed, with its group; worst first."""
    findings = []
    for g in cell.groups.values():
        alone = same_class(engine, cell, g.worst.inputs, g.worst, group=g)
        if alone is None:
            continue
        if alone.cls in ("crash", "timeout"):
            small = alone  # each try would cost a process or a timeout: keep the input
        else:
            # a reduction re-runs a whole batch per try: one round of simplification
            rounds = 3 if cell.quantity.kind != "reduction" else 1
            small = shrink(engine, cell, alone, rounds=rounds, group=g)
        if confirm(engine, cell, small, group=g):
            findings.append((small, g))
    return sorted(findings, key=lambda t: rank(t[0]), reverse=True)


def settle(engine: Engine, cell: CellRun) -> list[tuple[Observation, Observation]]:
    """The cell's disagreements, each scored again alone on the exact path for both the
    compiled twin and its eager impl (the cases the reproducers run): those whose bits
    still differ, as (compiled, eager) observations, worst first."""
    out = []
    for d in sorted(cell.disagreements.values(), key=lambda d: d.rank, reverse=True):
        o = d.compiled
        try:
            args = (cell.dtype, o.inputs, cell.tolerance, cell.quantity)
            mine = score(engine, cell.impl, *args, exact=True)
            theirs = score(engine, cell.twin, *args, exact=True)
        except NOT_SCORABLE:
            continue
        if o.index >= min(len(mine), len(theirs)):
            continue
        a, b = mine[o.index], theirs[o.index]
        if a.got is None or b.got is None or same_answer(a.got, b.got):
            continue  # it differs only inside a batch; reported cases stand alone
        out.append((a, b))
    return out


def rescore(
    engine: Engine, cell: CellRun, inputs: dict, quantity: Quantity = VALUE
) -> list[Observation]:
    """Score a case alone on the exact path (``repro`` and sweeps)."""
    return score(engine, cell.impl, cell.dtype, inputs, cell.tolerance, quantity, exact=True)
