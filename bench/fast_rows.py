"""The row fast path (oracles/fast_rows.py) against the plain mpmath oracle.

    .venv/bin/python bench/fast_rows.py [--rows 200000] [--exact-rows 2000]
                                        [--wide-rows 1000] [--wide-exact 1]

Prints, per row loss and dtype, rows per second of the full certified reference
(``oracles.reference``: the float64 bound, and mpmath for what it leaves
undecided) and of the mpmath oracle alone (``oracles.evaluate``) on the same
10-class rows, their ratio (issue 20's target: 100x for softmax CE) and the
share of elements the bound left to mpmath; then, for 131,072-wide float32 rows
(issue 25), the seconds per row of each and the peak memory the fast path
allocated (tracemalloc) over ``--wide-rows`` rows.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lossfuzz import oracles  # noqa: E402
from lossfuzz.oracles import fast, fast_rows  # noqa: E402

LOSSES = (
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
    "logsumexp",
    "log_softmax",
    "softmax",
)
SHORT = {
    "softmax_cross_entropy_with_logits": "softmax CE",
    "sparse_softmax_cross_entropy_with_logits": "sparse softmax CE",
    "logsumexp": "logsumexp",
    "log_softmax": "log_softmax",
    "softmax": "softmax",
}


def inputs(loss: str, dtype: str, rows: int, k: int, seed: int = 0) -> dict:
    """Rows of normal logits at scales 0.1 to 30, one-hot (dense) or class labels."""
    fmt = oracles.get_format(dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, k)) * rng.uniform(0.1, 30, (rows, 1))
    out = {"logits": x.astype(fmt.numpy_dtype)}
    spec = oracles.get_loss(loss)
    if spec.labels == "sparse":
        out["labels"] = rng.integers(0, k, rows)
    elif spec.labels == "dense":
        z = np.zeros((rows, k), dtype=fmt.numpy_dtype)
        z[np.arange(rows), rng.integers(0, k, rows)] = 1
        out["labels"] = z
    return out


def undecided(loss: str, dtype: str, batch: dict) -> float:
    fv = fast.fast_values(loss, dtype, oracles.cast_inputs(loss, dtype, **batch))
    return float(1 - fv.decided.mean())


def seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def narrow(args) -> None:
    print(
        f"10-class rows per second: the certified fast reference (bound + mpmath fallback) "
        f"on {args.rows} rows, mpmath alone on {args.exact_rows}"
    )
    print(
        f"{'loss':18} {'dtype':9} {'fast rows/s':>12} {'mpmath rows/s':>14} {'ratio':>8} "
        f"{'undecided':>10}"
    )
    for loss in LOSSES:
        for dtype in fast_rows.TARGETS:
            batch = inputs(loss, dtype, args.rows, 10)
            small = {k: v[: args.exact_rows] for k, v in batch.items()}
            oracles.reference(loss, dtype, **small)  # warm up
            fast_rate = args.rows / seconds(partial(oracles.reference, loss, dtype, **batch))
            exact_rate = args.exact_rows / seconds(partial(oracles.evaluate, loss, dtype, **small))
            print(
                f"{SHORT[loss]:18} {dtype:9} {fast_rate:12.3g} {exact_rate:14.3g} "
                f"{fast_rate / exact_rate:8.0f} {undecided(loss, dtype, batch):10.2e}"
            )


def wide(args) -> None:
    k = 131072
    print(
        f"\n{k}-wide float32 rows: seconds per row, fast reference vs mpmath alone; peak "
        f"memory the fast path allocates (tracemalloc) and the process's peak RSS"
    )
    print(
        f"{'loss':18} {'rows':>6} {'fast s/row':>11} {'mpmath s/row':>13} {'ratio':>7} "
        f"{'undecided':>10} {'peak MiB':>9} {'input MiB':>10} {'RSS MiB':>8}"
    )
    for loss in LOSSES:
        # a rowwise loss returns (and bounds) every entry: 4 float64 arrays of the input's size
        rows = args.wide_rows if fast_rows.ROWS[loss].shape == "reduce" else args.wide_rows // 20
        batch = inputs(loss, "float32", rows, k, seed=1)
        one = {name: v[: args.wide_exact] for name, v in batch.items()}
        tracemalloc.start()
        fast_s = seconds(partial(oracles.reference, loss, "float32", **batch)) / rows
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        exact_s = seconds(partial(oracles.evaluate, loss, "float32", **one)) / args.wide_exact
        size = batch["logits"].nbytes / 2**20
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{SHORT[loss]:18} {rows:6d} {fast_s:11.2e} {exact_s:13.2f} "
            f"{exact_s / fast_s:7.0f} {undecided(loss, 'float32', one):10.2e} {peak:9.0f} "
            f"{size:10.0f} {rss:8.0f}"
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--exact-rows", type=int, default=2_000)
    p.add_argument("--wide-rows", type=int, default=1_000)
    p.add_argument("--wide-exact", type=int, default=1)
    args = p.parse_args()
    narrow(args)
    wide(args)


if __name__ == "__main__":
    main()
