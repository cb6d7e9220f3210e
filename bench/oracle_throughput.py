"""Values per second of the mpmath oracle (``oracles.evaluate``), printed as a table.

    .venv/bin/python bench/oracle_throughput.py [--n 4000]

Inputs: logits ~ 30 * N(0, 1), labels 0/1 (elementwise); rows of 10 classes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lossfuzz import oracles


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4000)
    n = ap.parse_args().n
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n) * 30
    z = (rng.random(n) < 0.5).astype(float)
    rows = x.reshape(-1, 10)
    cases = {
        "sigmoid_cross_entropy_with_logits": dict(logits=x, labels=z),
        "softplus": dict(logits=x),
        "binary_crossentropy": dict(probs=rng.random(n), labels=z),
        "sparse_softmax_cross_entropy_with_logits": dict(
            logits=rows, labels=rng.integers(0, 10, len(rows))
        ),
    }
    print(f"{'loss':45} {'dtype':9} {'values/s':>12}  (a value per row for class-axis losses)")
    for loss, inputs in cases.items():
        for dtype in oracles.DTYPES:
            t = time.perf_counter()
            ev = oracles.evaluate(loss, dtype, **inputs)
            rate = ev.reference.size / (time.perf_counter() - t)
            print(f"{loss:45} {dtype:9} {rate:12,.0f}")


if __name__ == "__main__":
    main()
