"""Exhaustive sweeps: every float of a range, through an impl, against the fast reference.

``lossfuzz sweep --loss sigmoid_cross_entropy_with_logits --dtype float16 --labels 0,1``
checks every finite float16 logit with each label; for float32 a range of values
(``--range -100,100``) or all of them (``--all``; float64 takes a ``--range`` only: its
2**64 values are beyond any sweep), in chunks of ``--chunk``
consecutive floats (by ordinal; +0 and -0 are one point), on ``--jobs`` worker
processes. The sweep's answer is the true maximum ULP error over the swept set,
like the max-error tables published for libm functions.

Memory stays flat: a chunk is scored and reduced to a summary (counts per
class, max ULP, the worst input of each class) before the next is built. Each
finished chunk's summary is appended to a journal beside the results file
(``<out>.journal``); ``--resume`` skips the chunks it lists. ``--shard K/N``
sweeps every N-th chunk from the K-th, for ``lossfuzz merge``. At the end the worst
input of each class is re-scored on the exact (mpmath) path, confirmed, and
written as a finding with a reproducer, in the results file the report and the
gate read.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from lossfuzz import oracles
from lossfuzz.harness.errors import UsageError, first_line
from lossfuzz.harness.journal import ends_torn
from lossfuzz.harness.jsonio import hexfloat, open_nofollow
from lossfuzz.harness.metrics import (
    CLASSES,
    CODE,
    DEFAULT_TOLERANCE,
    FINDING_CLASSES,
    SEVERITY,
    classify_exact,
)
from lossfuzz.harness.ulp import from_ordinals, ordinals
from lossfuzz.oracles import fast
from lossfuzz.oracles.api import evaluate_where

SWEEP_SCHEMA = "lossfuzz/sweep-journal/1"
DEFAULT_CHUNK = 1 << 20


@dataclass(frozen=True)
class Plan:
    loss: str
    impls: tuple[str, ...]
    dtype: str
    labels: tuple[float, ...]  # () for a loss without labels
    lo: int  # ordinal range, inclusive
    hi: int
    chunk: int
    shard: tuple[int, int] = (1, 1)  # K of N
    pos_weight: float = 1.0

    @property
    def chunks(self) -> list[int]:
        n = (self.hi - self.lo) // self.chunk + 1
        k, total = self.shard
        return [i for i in range(n) if i % total == k - 1]

    def key(self) -> dict:
        d = {
            "loss": self.loss,
            "impls": list(self.impls),
            "dtype": self.dtype,
            "labels": list(self.labels),
            "range": [self.lo, self.hi],
            "chunk": self.chunk,
            "shard": list(self.shard),
        }
        if self.pos_weight != 1.0:
            d["pos_weight"] = self.pos_weight
        return d


def ordinal_range(dtype: str, value_range: tuple[float, float] | None, primary: str):
    """The inclusive ordinal range of every finite float (of [0, 1] for probabilities),
    or of those within ``value_range``."""
    fmt = oracles.get_format(dtype)
    lo, hi = (-fmt.max_finite, fmt.max_finite) if primary == "logits" else (0.0, 1.0)
    if value_range is not None:
        lo, hi = max(lo, value_range[0]), min(hi, value_range[1])
        if lo > hi:
            raise UsageError(f"--range {value_range[0]},{value_range[1]} is empty")
    # round the ends inwards to floats of the dtype
    a = fmt.cast(np.array([lo, hi], dtype=np.float64))
    olo, ohi = (int(x) for x in ordinals(a, fmt))
    if float(a[0].astype(np.float64)) < lo:
        olo += 1
    if float(a[1].astype(np.float64)) > hi:
        ohi -= 1
    return olo, ohi


# ------------------------------------------------------------------ one chunk


def _empty_summary() -> dict:
    return {"elements": 0, "counts": {}, "max_ulp": 0.0, "max_finite_ulp": 0.0, "worst": {}}


def sweep_chunk(plan: Plan, index: int, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Score chunk ``index`` for every impl of the plan: {impl: summary}."""
    from lossfuzz.harness.registry import get_impl

    fmt = oracles.get_format(plan.dtype)
    spec = oracles.get_loss(plan.loss)
    start = plan.lo + index * plan.chunk
    stop = min(plan.hi, start + plan.chunk - 1)
    xs = from_ordinals(np.arange(start, stop + 1, dtype=np.int64), fmt)
    out = {}
    for impl_id in plan.impls:
        impl = get_impl(impl_id)
        summary = _empty_summary()
        for j, z in enumerate(plan.labels or (None,)):
            cast = {spec.primary: xs}
            if z is not None:
                cast["labels"] = np.full(xs.shape, z, dtype=np.float64).astype(fmt.numpy_dtype)
            if "pos_weight" in spec.params:
                cast["pos_weight"] = np.full(xs.shape, plan.pos_weight).astype(fmt.numpy_dtype)
            if "label_smoothing" in impl.params:
                cast["label_smoothing"] = 0.0
            _score_into(summary, impl, plan, cast, fmt, spec, tolerance, (index, j))
        out[impl_id] = summary
    return out


def _score_into(summary, impl, plan, cast, fmt, spec, tolerance, where) -> None:
    """Add one label's pass over a chunk to ``summary``; ``where`` = (chunk, label index)
    orders equal worst cases the same way however the chunks are split or scheduled."""
    from lossfuzz.harness.scoring import classify_fast

    n = cast[spec.primary].size
    fv = fast.fast_values(spec.id, plan.dtype, cast)
    try:
        got = np.asarray(impl.answer(cast)).astype(np.float64).ravel()
        if got.size != n:
            raise ValueError(f"returned {got.size} values for {n} inputs")
    except Exception as exc:  # noqa: BLE001 - a failing impl is recorded, not our crash
        summary["elements"] += n
        summary["counts"]["error"] = summary["counts"].get("error", 0) + n
        first = {name: float(np.asarray(v).ravel()[0]) for name, v in _inputs(cast, 0).items()}
        summary["worst"].setdefault(
            "error",
            {"inputs": first, "ulp": math.inf, "at": [*where, 0], "error": first_line(exc, 300)},
        )
        return
    codes, ulp, _, need = classify_fast(got, fv, fmt, tolerance, spec.is_loss)
    if need.any():  # rare: settle these on the exact path
        ev = evaluate_where(spec, plan.dtype, cast, need)
        picked = np.flatnonzero(need)
        again = classify_exact(
            got[picked],
            ev.exact.ravel().tolist(),
            ev.reference.astype(np.float64).ravel(),
            fmt,
            tolerance=tolerance,
            is_loss=spec.is_loss,
        )
        for i, s in zip(picked.tolist(), again):
            codes[i], ulp[i] = CODE[s.cls], s.ulp
    summary["elements"] += n
    counts = np.bincount(codes, minlength=len(CLASSES))
    for c, k in zip(CLASSES, counts.tolist()):
        if k:
            summary["counts"][c] = summary["counts"].get(c, 0) + k
    finite = ulp[np.isfinite(ulp)]
    if ulp.size:
        summary["max_ulp"] = max(summary["max_ulp"], float(np.nanmax(ulp)))
    if finite.size:
        summary["max_finite_ulp"] = max(summary["max_finite_ulp"], float(finite.max()))
    for c in FINDING_CLASSES:
        mask = codes == CODE[c]
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        i = int(idx[np.argmax(np.where(np.isnan(ulp[idx]), np.inf, ulp[idx]))])
        u = float(ulp[i]) if not math.isnan(ulp[i]) else math.inf
        inputs = {name: float(np.asarray(v).ravel()[0]) for name, v in _inputs(cast, i).items()}
        _keep_worse(summary["worst"], c, {"inputs": inputs, "ulp": u, "at": [*where, i]})


def _inputs(cast: dict, i: int) -> dict:
    return {
        k: v.ravel()[i : i + 1].astype(np.float64)
        for k, v in cast.items()
        if isinstance(v, np.ndarray)
    }


def _keep_worse(worst: dict, cls: str, candidate: dict) -> None:
    """The larger ULP error wins; on a tie, the earlier (chunk, label, position)."""
    held = worst.get(cls)
    if held is None or (candidate["ulp"], _neg(candidate["at"])) > (held["ulp"], _neg(held["at"])):
        worst[cls] = candidate


def _neg(at) -> tuple:
    return tuple(-a for a in at)


def merge_summary(into: dict, other: dict) -> None:
    into["elements"] += other["elements"]
    for c, k in other["counts"].items():
        into["counts"][c] = into["counts"].get(c, 0) + k
    into["max_ulp"] = max(into["max_ulp"], other["max_ulp"])
    into["max_finite_ulp"] = max(into["max_finite_ulp"], other["max_finite_ulp"])
    for c, w in other["worst"].items():
        _keep_worse(into["worst"], c, w)


# ------------------------------------------------------------------ the journal


def journal_path(out: str) -> str:
    return out + ".journal"


def read_journal(path: str, plan: Plan) -> dict:
    """{chunk index: summary} of a journal written for the same plan; a torn last line
    (the process killed mid-write) is ignored."""
    done: dict = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return done
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the journal ({exc.strerror})") from None
    if not lines or not lines[0].strip():
        return done
    try:
        head = json.loads(lines[0])
    except json.JSONDecodeError:
        raise UsageError(f"{path}: not a lossfuzz sweep journal") from None
    if head.get("schema") != SWEEP_SCHEMA:
        raise UsageError(f"{path}: not a lossfuzz sweep journal")
    if head.get("plan") != plan.key():
        raise UsageError(f"{path}: written for another sweep; remove it or drop --resume")
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # the torn tail of a killed run
        done[rec["chunk"]] = rec["summary"]
    return done


# ------------------------------------------------------------------ the sweep


def _worker_init():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _run_chunk(args):
    plan, index, tolerance = args
    return index, sweep_chunk(plan, index, tolerance)


def run(
    plan: Plan,
    out: str,
    *,
    jobs: int = 1,
    resume: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    progress=None,
) -> dict:
    """Sweep the plan's chunks (skipping journalled ones with ``resume``); the results."""
    start = time.monotonic()
    jpath = journal_path(out)
    done = read_journal(jpath, plan) if resume else {}
    todo = [i for i in plan.chunks if i not in done]
    mode = "a" if resume and os.path.exists(jpath) and done else "w"
    with open_nofollow(jpath, mode) as journal:
        if mode == "a" and ends_torn(jpath):
            journal.write("\n")  # end the line a kill tore, so the next record stands alone
        if mode == "w":
            journal.write(json.dumps({"schema": SWEEP_SCHEMA, "plan": plan.key()}) + "\n")
            journal.flush()

        def record(index, summary):
            done[index] = summary
            journal.write(json.dumps({"chunk": index, "summary": summary}) + "\n")
            journal.flush()
            if progress:
                progress(len(done), len(plan.chunks))

        if jobs <= 1 or len(todo) <= 1:
            for i in todo:
                record(i, sweep_chunk(plan, i, tolerance))
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")  # frameworks do not survive a fork
            with ctx.Pool(jobs, initializer=_worker_init, maxtasksperchild=64) as pool:
                for index, summary in pool.imap_unordered(
                    _run_chunk, [(plan, i, tolerance) for i in todo]
                ):
                    record(index, summary)
    data = results(plan, done, tolerance, time.monotonic() - start)
    return data


def results(plan: Plan, done: dict, tolerance: float, seconds: float):
    """The Results of a sweep: a cell per impl, the worst input of each class confirmed
    on the exact path and written as a finding."""
    from dataclasses import replace
    from types import MappingProxyType

    from lossfuzz.harness.campaign import versions
    from lossfuzz.harness.cell import CellRun, axis_name
    from lossfuzz.harness.findings import finding
    from lossfuzz.harness.registry import get_impl
    from lossfuzz.harness.results import Cell, Profile, Results, now
    from lossfuzz.harness.scoring import Engine
    from lossfuzz.harness.shrink import confirm, rescore

    engine = Engine()
    cells, findings = [], []
    for impl_id in plan.impls:
        impl = get_impl(impl_id)
        total = _empty_summary()
        for i in sorted(done):
            merge_summary(total, done[i][impl_id])
        run = CellRun(impl, plan.dtype, tolerance=tolerance)
        kept = []
        for cls in sorted(total["worst"], key=SEVERITY.__getitem__, reverse=True):
            w = total["worst"][cls]
            inputs = {k: np.array(v, dtype=np.float64) for k, v in w["inputs"].items()}
            if "label_smoothing" in impl.params:
                inputs["label_smoothing"] = 0.0
            try:
                (o,) = rescore(engine, run, inputs)
            except Exception:  # noqa: BLE001 - the lead cannot be re-scored alone
                continue
            if o.cls in FINDING_CLASSES and confirm(engine, run, o):
                kept.append(replace(finding(run, o), sweep_ulp=w["ulp"], sweep_at=tuple(w["at"])))
        cells.append(
            Cell(
                key=run.key,
                loss=impl.loss,
                cases=total["elements"],
                max_ulp=total["max_ulp"],
                max_finite_ulp=total["max_finite_ulp"],
                tolerance=tolerance,
                counts=MappingProxyType(total["counts"]),
                seconds=seconds,
                sweep={
                    "labels": list(plan.labels),
                    "range": [
                        _ordinal_value(plan.lo, plan.dtype),
                        _ordinal_value(plan.hi, plan.dtype),
                    ],
                    "ordinals": [plan.lo, plan.hi],
                    "chunks": len(done),
                    "of_chunks": len(plan.chunks),
                    "shard": list(plan.shard),
                },
                profile=Profile(axis_name(impl.loss)),
            )
        )
        findings.extend(kept)
    return Results(
        created=now(),
        seed=None,
        budget={"sweep": {k: v for k, v in plan.key().items() if k != "shard"}},
        versions=versions(),
        cells=tuple(cells),
        findings=tuple(findings),
        complete=set(done) >= set(plan.chunks),
        elapsed_seconds=round(seconds, 3),
        shard=plan.shard if plan.shard[1] > 1 else None,
    )


def _ordinal_value(o: int, dtype: str) -> str:
    fmt = oracles.get_format(dtype)
    return hexfloat(float(from_ordinals(np.array([o]), fmt).astype(np.float64)[0]))
