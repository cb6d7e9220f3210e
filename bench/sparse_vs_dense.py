"""Dense one-hot against sparse labels for softmax cross-entropy: peak memory and time.

    .venv/bin/python bench/sparse_vs_dense.py [--batch 64] [--classes 1000 100000 1000000]

Each configuration runs in a fresh process (so peaks do not mix): it builds the
logits, then either class indices (sparse) or the one-hot matrix from them (dense,
as a user converting labels would), computes the loss three times and reports
the best time and the process's peak resident memory above the baseline after
the imports. TensorFlow: tf.nn.sparse_/softmax_cross_entropy_with_logits;
PyTorch: F.cross_entropy with indices or with probabilities.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
framework, kind, batch, classes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import numpy as np
if framework == "tf":
    import tensorflow as tf
else:
    import torch, torch.nn.functional as F
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rng = np.random.default_rng(0)
logits_np = rng.standard_normal((batch, classes), dtype=np.float32)
index_np = rng.integers(0, classes, batch)
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    if framework == "tf":
        logits = tf.constant(logits_np)
        if kind == "sparse":
            labels = tf.constant(index_np)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        else:
            labels = tf.one_hot(tf.constant(index_np), classes, dtype=tf.float32)
            loss = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        loss.numpy()
    else:
        logits = torch.from_numpy(logits_np)
        if kind == "sparse":
            loss = F.cross_entropy(logits, torch.from_numpy(index_np), reduction="none")
        else:
            labels = F.one_hot(torch.from_numpy(index_np), classes).to(torch.float32)
            loss = F.cross_entropy(logits, labels, reduction="none")
        loss.numpy()
    best = min(best, time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": best, "peak_mib": (peak - base) / 1024}))
"""


def measure(framework: str, kind: str, batch: int, classes: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, framework, kind, str(batch), str(classes)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--classes", type=int, nargs="+", default=[1000, 100000, 1000000])
    args = p.parse_args()
    print(f"softmax cross-entropy, batch {args.batch}, float32 logits; memory above the imports")
    print(
        f"{'framework':9} {'classes':>9} {'sparse MiB':>11} {'dense MiB':>10} "
        f"{'sparse ms':>10} {'dense ms':>9}"
    )
    for framework in ("tf", "torch"):
        for classes in args.classes:
            s = measure(framework, "sparse", args.batch, classes)
            d = measure(framework, "dense", args.batch, classes)
            print(
                f"{framework:9} {classes:9d} {s['peak_mib']:11.1f} {d['peak_mib']:10.1f} "
                f"{s['seconds'] * 1e3:10.2f} {d['seconds'] * 1e3:9.2f}"
            )


if __name__ == "__main__":
    main()
