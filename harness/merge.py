"""``lossfuzz merge``: combine the results files of a sharded run or sweep into one.

A campaign run with ``--shard K/N`` runs every N-th cell of the selection from the
K-th; a sweep with ``--shard K/N`` every N-th chunk. Each cell's search is seeded
from the campaign seed and the cell's name, and each chunk's summary depends only
on the chunk, so the merged file equals an unsharded run's (timings aside): run
shards are interleaved back into the selection's order; sweep shards of the same
cell are summed (counts and elements added, maxima taken, the worst input of each
class kept, ties going to the earlier chunk as in one process).

Linear in the cells and findings: findings are grouped by cell key once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from types import MappingProxyType

from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.metrics import SEVERITY
from lossfuzz.harness.results import Results


def _check_same(files: list[tuple[str, Results]], attr: str) -> None:
    first_path, first = files[0]
    for path, data in files[1:]:
        if getattr(data, attr) != getattr(first, attr):
            raise UsageError(
                f"{path}: its {attr} differs from {first_path}'s; not shards of one run"
            )


def merge(files: list[tuple[str, Results]]) -> tuple[Results, list[str]]:
    """The merged results and a list of warnings (missing shards)."""
    if not files:
        raise UsageError("nothing to merge")
    for path, data in files:
        if data.shard is None:
            raise UsageError(f"{path}: not a shard (run it with --shard K/N)")
    counts = {d.shard[1] for _, d in files}
    if len(counts) != 1:
        raise UsageError("the files were sharded different ways (their N differ)")
    n = counts.pop()
    for attr in ("seed", "budget", "versions", "profile"):
        _check_same(files, attr)
    by_index: dict = {}
    for path, data in files:
        k = data.shard[0]
        if k in by_index:
            raise UsageError(f"{path}: shard {k}/{n} given twice")
        by_index[k] = data
    missing = [k for k in range(1, n + 1) if k not in by_index]
    warnings = [f"shard {k}/{n} is missing: the merged results are incomplete" for k in missing]
    shards = [by_index[k] for k in sorted(by_index)]
    sweep = any(c.sweep for d in shards for c in d.cells)
    cells, findings = _sweep_cells(shards) if sweep else _run_cells(shards, n)
    first = shards[0]
    skipped = list(dict.fromkeys(s for d in shards for s in d.skipped))
    merged = Results(
        created=min(d.created for d in shards),
        seed=first.seed,
        budget=first.budget,
        versions=first.versions,
        cells=tuple(cells),
        findings=tuple(findings),
        complete=not missing and all(d.complete for d in shards),
        elapsed_seconds=max((d.elapsed_seconds or 0) for d in shards),
        skipped=tuple(skipped),
        merged_from=len(shards),
        user_impls={k: v for d in shards for k, v in d.user_impls.items()},
        profile=first.profile,
    )
    return merged, warnings


def _run_cells(shards: list[Results], n: int) -> tuple[list, list]:
    """Interleave: cell j of shard K sat at position (K - 1) + j N of the selection."""
    placed, seen = [], set()
    for d in shards:
        k = d.shard[0]
        for j, c in enumerate(d.cells):
            if c.key in seen:
                raise UsageError(f"cell {c.key.name} is in more than one shard")
            seen.add(c.key)
            placed.append(((k - 1) + j * n, c, d))
    placed.sort(key=lambda t: t[0])
    cells, findings = [], []
    for _, c, d in placed:
        cells.append(c)
        findings += d.findings_of(c.key)
    return cells, findings


def _sweep_cells(shards: list[Results]) -> tuple[list, list]:
    order, total, best = [], {}, {}
    for d in shards:
        for c in d.cells:
            held = total.get(c.key)
            if held is None:
                order.append(c.key)
                total[c.key] = c
                continue
            counts = defaultdict(int, held.counts)
            for cls, k in c.counts.items():
                counts[cls] += k
            sweep = dict(held.sweep or {})
            sweep["chunks"] = sweep.get("chunks", 0) + (c.sweep or {}).get("chunks", 0)
            sweep["of_chunks"] = sweep.get("of_chunks", 0) + (c.sweep or {}).get("of_chunks", 0)
            total[c.key] = replace(
                held,
                cases=held.cases + c.cases,
                counts=MappingProxyType(dict(counts)),
                max_ulp=max(held.max_ulp, c.max_ulp),
                max_finite_ulp=max(held.max_finite_ulp, c.max_finite_ulp),
                seconds=held.seconds + c.seconds,
                sweep=sweep,
            )
        for f in d.findings:
            key = (f.key, f.cls)
            held = best.get(key)
            if held is None or _tie_rank(f) > _tie_rank(held):
                best[key] = f
    by_cell = defaultdict(list)
    for (key, _), f in best.items():
        by_cell[key].append(f)
    cells, findings = [], []
    for key in order:
        t = total[key]
        cells.append(replace(t, sweep={**(t.sweep or {}), "shard": [1, 1]}))
        findings += sorted(
            by_cell[key], key=lambda f: (SEVERITY[f.cls], _tie_rank(f)), reverse=True
        )
    return cells, findings


def _tie_rank(f) -> tuple:
    at = f.sweep_at or (0, 0, 0)
    ulp = f.sweep_ulp if f.sweep_ulp is not None else f.ulp
    return (ulp, tuple(-a for a in at))
