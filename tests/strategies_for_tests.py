"""Hypothesis strategies for the oracle's own tests (the harness has its own in harness/)."""

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

WIDTH = {"float16": 16, "float32": 32, "float64": 64}


def floats(dtype: str, **kw):
    """Every float of ``dtype`` (subnormals, ±0, and ±inf/NaN if allowed)."""
    if dtype == "bfloat16":
        s = st.floats(width=32, **kw).map(lambda v: float(np.float32(v).astype(ml_dtypes.bfloat16)))
        return s if kw.get("allow_infinity", True) else s.filter(math.isfinite)
    return st.floats(width=WIDTH[dtype], **kw)


def finite(dtype: str, **kw):
    return floats(dtype, allow_nan=False, allow_infinity=False, **kw)


def unit(dtype: str):
    """Labels or probabilities in [0, 1], including values one ULP from each end."""
    return finite(dtype, min_value=0.0, max_value=1.0)
