"""Checking against computing: the impl's own rate, the fast reference path's, mpmath's.

    .venv/bin/python bench/fast_path.py [--n 1000000] [--exact-n 20000] [--sweep]

Prints, per dtype, elements per second on the same inputs (every bit pattern's
finite logits at random, labels 0 and 1) of (a) the impl under test
(torch.nn.functional.binary_cross_entropy_with_logits), (b) the fast path
(oracles/fast.py, references decided and scored, mpmath fallback included) and
(c) the mpmath-only oracle, with the ratios the targets of issue 7 name; then
the time and peak memory of a full float16 and bfloat16 sweep (and, with
``--sweep``, of a float32 sweep over 2**28 logits, to extrapolate the full one);
then how long fuzzing takes to rediscover known worst cases.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lossfuzz import oracles  # noqa: E402
from lossfuzz.harness.registry import get_impl  # noqa: E402
from lossfuzz.harness.scoring import Engine, classify_fast  # noqa: E402
from lossfuzz.oracles import fast  # noqa: E402

LOSS = "sigmoid_cross_entropy_with_logits"
IMPL = "torch:binary_cross_entropy_with_logits"
UINT = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.uint32, "float64": np.uint64}


def inputs(dtype: str, n: int, seed: int = 0) -> dict:
    fmt = oracles.get_format(dtype)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2 ** (8 * np.dtype(UINT[dtype]).itemsize), 2 * n, dtype=np.uint64)
    x = bits.astype(UINT[dtype]).view(fmt.numpy_dtype)
    with np.errstate(invalid="ignore"):  # NaN bit patterns, dropped here
        x = x[np.isfinite(x.astype(np.float64))][:n]
    z = (rng.random(x.size) < 0.5).astype(np.float64).astype(fmt.numpy_dtype)
    return {"logits": x, "labels": z}


def rate(fn, n: int, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def throughput(dtype: str, n: int, exact_n: int) -> dict:
    impl = get_impl(IMPL)
    fmt = oracles.get_format(dtype)
    cast = inputs(dtype, n)
    impl.answer(cast)  # warm up the framework

    def checked():
        fv = fast.fast_values(LOSS, dtype, cast)
        got = np.asarray(impl.answer(cast)).astype(np.float64).ravel()
        classify_fast(got, fv, fmt, 4.0, True)

    def reference_only():
        fast.fast_values(LOSS, dtype, cast)

    small = {k: v[:exact_n] for k, v in cast.items()}
    return {
        "impl": rate(lambda: impl.answer(cast), n),
        "fast reference": rate(reference_only, n),
        "fast checked": rate(checked, n),
        "mpmath": rate(lambda: oracles.evaluate(LOSS, dtype, **small), exact_n, repeat=1),
    }


def sweep(dtype: str, extra: list[str], out: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) of the largest process, elements."""
    cmd = [sys.executable, "-m", "lossfuzz", "sweep", "--loss", LOSS, "--impl", IMPL]
    cmd += ["--dtype", dtype, "--out", str(out), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    seconds = time.perf_counter() - t
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    data = json.loads(out.read_text())
    return seconds, peak, sum(c["cases"] for c in data["cells"])


KNOWN = [  # (impl, dtype, class) found by the default campaign, with the input that shows it
    ("torch:binary_cross_entropy_with_logits", "float32", "inaccurate"),  # logits -12, labels 0
    ("tf:sigmoid_cross_entropy_with_logits", "float32", "inaccurate"),  # 20, 1 - 2**-24
    ("torch:cross_entropy", "float32", "underflow"),  # [20, 0]
    ("naive:sigmoid_then_log", "float16", "nan"),
    ("torch:binary_cross_entropy_with_logits", "float32", "underflow"),  # subnormal label
]


def rediscovery(budget: int) -> list[tuple]:
    from lossfuzz.harness.search import run_cell

    rows = []
    for impl_id, dtype, cls in KNOWN:
        t = time.perf_counter()
        cell = run_cell(Engine(), get_impl(impl_id), dtype, budget=budget, campaign_seed=0)
        found = any(g.worst.cls == cls for g in cell.groups.values())
        rows.append((impl_id, dtype, cls, found, time.perf_counter() - t))
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--exact-n", type=int, default=20_000)
    p.add_argument("--sweep", action="store_true", help="also sweep 2**28 float32 logits")
    p.add_argument("--budget", type=int, default=100)
    args = p.parse_args()

    print(
        f"elements per second, {IMPL} vs the references ({args.n} elements; mpmath on "
        f"{args.exact_n})"
    )
    print(
        f"{'dtype':9} {'impl':>12} {'fast ref':>12} {'fast check':>12} {'mpmath':>10} "
        f"{'fast/mpmath':>12} {'check/impl':>11}"
    )
    for dtype in (*fast.TARGETS, "float64"):  # float64 by double-double (oracles/fast64.py)
        r = throughput(dtype, args.n, args.exact_n)
        print(
            f"{dtype:9} {r['impl']:12.3g} {r['fast reference']:12.3g} {r['fast checked']:12.3g} "
            f"{r['mpmath']:10.3g} {r['fast checked'] / r['mpmath']:12.0f} "
            f"{r['fast checked'] / r['impl']:11.3f}"
        )

    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    print("\nsweeps of sigmoid CE, labels 0 and 1, one impl, 2 jobs")
    print(f"{'sweep':32} {'elements':>13} {'seconds':>9} {'peak MiB':>9}")
    runs = [
        ("float16, every finite logit", "float16", []),
        ("bfloat16, every finite logit", "bfloat16", []),
    ]
    if args.sweep:
        runs.append(
            (
                "float32, 2**28 logits in [1, 2**32]",
                "float32",
                ["--range", "1,4294967296", "--jobs", "2"],
            )
        )
    for name, dtype, extra in runs:
        s, peak, n = sweep(dtype, extra, out / f"bench-sweep-{dtype}.json")
        print(f"{name:32} {n:13d} {s:9.1f} {peak:9.0f}")

    print(f"\nrediscovering known worst cases by fuzzing (budget {args.budget}, seed 0)")
    for impl_id, dtype, cls, found, s in rediscovery(args.budget):
        print(f"  {impl_id} [{dtype}] {cls}: {'found' if found else 'NOT found'} in {s:.1f} s")


if __name__ == "__main__":
    main()
