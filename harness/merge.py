"""``lossfuzz merge``: combine the results files of a sharded run or sweep into one.

A campaign run with ``--shard K/N`` runs every N-th cell of the selection from the
K-th; a sweep with ``--shard K/N`` every N-th chunk. Each cell's search is seeded
from the campaign seed and the cell's name, and each chunk's summary depends only
on the chunk, so the merged file equals an unsharded run's (timings aside): run
shards are interleaved back into the selection's order; sweep shards of the same
cell are summed (counts and elements added, maxima taken, the worst input of each
class kept, ties going to the earlier chunk as in one process).
"""

from __future__ import annotations

from lossfuzz.harness import results as R
from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.metrics import CLASSES, SEVERITY, worst
from lossfuzz.harness.results import cell_key


def _check_same(files: list[tuple[str, dict]], key: str) -> None:
    first_path, first = files[0]
    for path, data in files[1:]:
        if data.get(key) != first.get(key):
            raise UsageError(
                f"{path}: its {key} differs from {first_path}'s; not shards of one run"
            )


def merge(files: list[tuple[str, dict]]) -> tuple[dict, list[str]]:
    """The merged results and a list of warnings (missing shards)."""
    if not files:
        raise UsageError("nothing to merge")
    for path, data in files:
        if "shard" not in data:
            raise UsageError(f"{path}: not a shard (run it with --shard K/N)")
    counts = {d["shard"]["count"] for _, d in files}
    if len(counts) != 1:
        raise UsageError("the files were sharded different ways (their N differ)")
    n = counts.pop()
    for key in ("seed", "budget", "versions"):
        _check_same(files, key)
    by_index: dict = {}
    for path, data in files:
        k = data["shard"]["index"]
        if k in by_index:
            raise UsageError(f"{path}: shard {k}/{n} given twice")
        by_index[k] = data
    missing = [k for k in range(1, n + 1) if k not in by_index]
    warnings = [f"shard {k}/{n} is missing: the merged results are incomplete" for k in missing]
    shards = [by_index[k] for k in sorted(by_index)]
    sweep = any(c.get("sweep") for d in shards for c in d["cells"])
    cells, findings = _sweep_cells(shards) if sweep else _run_cells(shards, n)
    first = shards[0]
    merged = {
        "schema": R.SCHEMA,
        "created": min(d["created"] for d in shards),
        "seed": first["seed"],
        "budget": first["budget"],
        "versions": first["versions"],
        "complete": not missing and all(d.get("complete", True) for d in shards),
        "elapsed_seconds": max(d.get("elapsed_seconds", 0) for d in shards),
        "skipped": _unique(s for d in shards for s in d.get("skipped", [])),
        "cells": cells,
        "findings": findings,
        "merged_from": len(shards),
    }
    return merged, warnings


def _unique(items) -> list:
    out, seen = [], set()
    for item in items:
        key = repr(sorted(item.items()))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _run_cells(shards: list[dict], n: int) -> tuple[list, list]:
    """Interleave: cell j of shard K sat at position (K - 1) + j N of the selection."""
    placed = []
    for d in shards:
        k = d["shard"]["index"]
        for j, c in enumerate(d["cells"]):
            placed.append(((k - 1) + j * n, c, d))
    placed.sort(key=lambda t: t[0])
    cells, findings = [], []
    for _, c, d in placed:
        cells.append(c)
        findings += [f for f in d["findings"] if cell_key(f) == cell_key(c)]
    return cells, findings


def _sweep_cells(shards: list[dict]) -> tuple[list, list]:
    order, total, best = [], {}, {}
    for d in shards:
        for c in d["cells"]:
            key = cell_key(c)
            if key not in total:
                order.append(key)
                total[key] = dict(c, counts=dict(c["counts"]), sweep=dict(c["sweep"]))
                continue
            t = total[key]
            t["cases"] += c["cases"]
            for cls, k in c["counts"].items():
                t["counts"][cls] = t["counts"].get(cls, 0) + k
            for m in ("max_ulp", "max_finite_ulp"):
                t[m] = R.number(max(_f(t[m]), _f(c[m])))
            t["seconds"] = round(t["seconds"] + c["seconds"], 3)
            t["sweep"]["chunks"] += c["sweep"]["chunks"]
            t["sweep"]["of_chunks"] += c["sweep"]["of_chunks"]
        for f in d["findings"]:
            key = (cell_key(f), f["class"])
            held = best.get(key)
            if held is None or _tie_rank(f) > _tie_rank(held):
                best[key] = f
    cells, findings = [], []
    for key in order:
        t = total[key]
        t["counts"] = {c: t["counts"][c] for c in CLASSES if t["counts"].get(c)}
        t["worst_class"] = worst(t["counts"])
        t["sweep"]["shard"] = [1, 1]
        kept = sorted(
            (f for (k, _), f in best.items() if k == key),
            key=lambda f: (SEVERITY[f["class"]], _tie_rank(f)),
            reverse=True,
        )
        t["worst"] = kept[0] if kept else None
        cells.append(t)
        findings += kept
    return cells, findings


def _tie_rank(f: dict) -> tuple:
    at = f.get("sweep_at") or [0, 0, 0]
    return (_f(f.get("sweep_ulp", f["ulp"])), tuple(-a for a in at))


def _f(v) -> float:
    return R.unhex(v) if isinstance(v, str) else float(v)
