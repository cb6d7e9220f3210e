"""A case's inputs as data: exact values, shapes, and scalars, with their JSON form.

Every float of the four formats is a Python float, so ``Array`` holds the values
exactly; ``Inputs.arrays(dtype)`` gives back the arrays the impl received.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossfuzz.harness.jsonio import Fields, hexfloat
from lossfuzz.oracles.formats import get_format

MAX_ELEMENTS = 10**6  # of one finding's input array: a reduction's rows, a wide row


@dataclass(frozen=True)
class Array:
    """One input array, its values exact (every float of the four formats is a float)."""

    values: tuple
    shape: tuple[int, ...]
    integer: bool = False

    @classmethod
    def of(cls, arr: np.ndarray) -> Array:
        if arr.dtype.kind in "iub":
            return cls(tuple(arr.astype(np.int64).ravel().tolist()), tuple(arr.shape), True)
        return cls(tuple(arr.astype(np.float64).ravel().tolist()), tuple(arr.shape))

    def array(self, dtype: str) -> np.ndarray:
        if self.integer:
            return np.asarray(self.values, dtype=np.int64).reshape(self.shape)
        return get_format(dtype).cast(np.asarray(self.values, dtype=np.float64)).reshape(self.shape)


@dataclass(frozen=True)
class Inputs:
    """A case's inputs by name: Arrays, and scalars (label_smoothing, axis)."""

    items: tuple[tuple[str, object], ...]

    @classmethod
    def of(cls, inputs: dict) -> Inputs:
        return cls(
            tuple((k, Array.of(v) if isinstance(v, np.ndarray) else v) for k, v in inputs.items())
        )

    def arrays(self, dtype: str) -> dict:
        """The inputs as the impl received them: arrays of ``dtype`` (class indices int64)."""
        return {k: v.array(dtype) if isinstance(v, Array) else v for k, v in self.items}

    def to_json(self, dtype: str) -> dict:
        fmt = get_format(dtype)
        out = {}
        for name, v in self.items:
            if isinstance(v, Array) and v.integer:
                out[name] = {"ints": list(v.values), "shape": list(v.shape)}
            elif isinstance(v, Array):
                out[name] = {
                    "hex": [hexfloat(x) for x in v.values],
                    "repr": [fmt.short(x) for x in v.values],
                    "shape": list(v.shape),
                }
            else:
                out[name] = v
        return out

    @classmethod
    def from_fields(cls, f: Fields, key: str, dtype: str) -> Inputs:
        items = []
        raw = f.dict(key)
        fmt = get_format(dtype)
        for name, v in raw.items():
            where = f"{key}.{name}"
            if name in ("label_smoothing",):
                items.append((name, f.sub(key).check_float(name, v)))
                continue
            if name == "axis":
                if not isinstance(v, int) or isinstance(v, bool) or abs(v) > 64:
                    f.fail(where, "expected a small integer")
                items.append((name, v))
                continue
            a = Fields(v, f.what, f"{f.where}.{where}" if f.where else where)
            shape = tuple(a.list("shape"))
            if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape):
                a.fail("shape", "expected a list of sizes")
            if len(shape) > 8 or math.prod(shape) > MAX_ELEMENTS:
                a.fail("shape", f"{list(shape)[:9]} is larger than lossfuzz writes")
            if a.has("ints"):
                ints = a.list("ints")
                if not all(isinstance(i, int) and not isinstance(i, bool) for i in ints):
                    a.fail("ints", "expected integers")
                values, integer = tuple(ints), True
            else:
                hexes = a.list("hex")
                floats = [a.check_float(f"hex[{i}]", h, nan=True) for i, h in enumerate(hexes)]
                if any(math.isfinite(x) and float(fmt.cast(x)) != x for x in floats):
                    a.fail("hex", f"holds a value that is not a {dtype}")
                values, integer = tuple(floats), False
            if len(values) != math.prod(shape):
                a.fail("shape", f"{list(shape)} does not hold {len(values)} values")
            items.append((name, Array(values, shape, integer)))
        return cls(tuple(items))
