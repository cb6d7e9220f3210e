"""Exact conversions between the harness's numpy arrays and framework tensors.

bfloat16 goes through float32, which holds every bfloat16 exactly, so no value
changes on the way in or out.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np


def is_bfloat16(arr: np.ndarray) -> bool:
    return arr.dtype == np.dtype(ml_dtypes.bfloat16)


def to_torch(arr: np.ndarray):
    import torch

    arr = np.asarray(arr)
    if is_bfloat16(arr):
        return torch.from_numpy(np.asarray(arr.astype(np.float32))).to(torch.bfloat16)
    # np.ascontiguousarray makes a 0-d array 1-d; the reshape keeps a scalar a scalar
    return torch.from_numpy(np.ascontiguousarray(arr).reshape(arr.shape))


def from_torch(t) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.to(torch.float32).numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def to_tf(arr: np.ndarray):
    import tensorflow as tf

    arr = np.asarray(arr)
    if is_bfloat16(arr):
        return tf.cast(tf.constant(arr.astype(np.float32)), tf.bfloat16)
    return tf.constant(arr)


def from_tf(t) -> np.ndarray:
    import tensorflow as tf

    if t.dtype == tf.bfloat16:
        return tf.cast(t, tf.float32).numpy().astype(ml_dtypes.bfloat16)
    return np.asarray(t.numpy())


def to_jax(arr: np.ndarray):
    import jax

    jax.config.update("jax_enable_x64", True)  # else float64 silently becomes float32
    import jax.numpy as jnp

    return jnp.asarray(np.asarray(arr))  # bfloat16 is ml_dtypes' type in JAX too


def from_jax(x) -> np.ndarray:
    return np.asarray(x)
