"""The results file (DESIGN.md, schema v1): written atomically, read with clear errors.

Floats that must round-trip are ``float.hex()`` strings with a readable repr
beside them; NaN and infinities are "nan", "inf", "-inf".
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from datetime import datetime, timezone
from importlib import metadata

import mpmath
import numpy as np
from lossfuzz.harness.errors import UsageError

SCHEMA = "lossfuzz/results/1"


class ResultsError(UsageError):
    """A results file that is missing, malformed or of another schema."""


def hexfloat(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v.hex()


def unhex(s) -> float:
    if isinstance(s, (int, float)):
        return float(s)
    return float(s) if s in ("nan", "inf", "-inf") else float.fromhex(s)


def number(v: float):
    """A float for JSON: itself when finite, else its string name."""
    v = float(v)
    return v if math.isfinite(v) else hexfloat(v)


def encode_inputs(inputs: dict, dtype: str) -> dict:
    from lossfuzz.oracles import get_format

    fmt = get_format(dtype)
    out = {}
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "iub":
                out[name] = {
                    "ints": value.astype(np.int64).ravel().tolist(),
                    "shape": list(value.shape),
                }
            else:
                flat = value.astype(np.float64).ravel().tolist()
                out[name] = {
                    "hex": [hexfloat(v) for v in flat],
                    "repr": [fmt.short(v) for v in flat],
                    "shape": list(value.shape),
                }
        else:
            out[name] = value
    return out


def decode_inputs(encoded: dict, dtype: str) -> dict:
    from lossfuzz.oracles import get_format

    fmt = get_format(dtype)
    out = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and "ints" in value:
            out[name] = np.asarray(value["ints"], dtype=np.int64).reshape(value["shape"])
        elif isinstance(value, dict) and "hex" in value:
            flat = [unhex(h) for h in value["hex"]]
            out[name] = fmt.cast(np.asarray(flat, dtype=np.float64)).reshape(value["shape"])
        else:
            out[name] = value
    return out


def exact_text(v: mpmath.mpf | None, digits: int = 20) -> str:
    if v is None:
        return "n/a"
    return mpmath.nstr(v, digits)


def versions() -> dict:
    out = {"python": platform.python_version(), "lossfuzz": _version("lossfuzz")}
    for dist, key in [
        ("numpy", "numpy"),
        ("mpmath", "mpmath"),
        ("torch", "torch"),
        ("tensorflow-cpu", "tensorflow"),
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("scipy", "scipy"),
        ("scikit-learn", "sklearn"),
        ("hypothesis", "hypothesis"),
    ]:
        if out.get(key) is None:
            out[key] = _version(dist)
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def quantity_label(wrt: str | None, reduce=None) -> str:
    """What a cell measures: "value"; "d/dlogits" for the gradient with respect to
    logits; "mean of 1000000" for the mean of a batch of a million losses."""
    if reduce:
        reduction, batch = reduce
        return f"{reduction} of {batch}"
    return "value" if not wrt else f"d/d{wrt}"


def cell_name(impl: str, dtype: str, wrt: str | None = None, reduce=None) -> str:
    """A cell's name everywhere (gate, journal, JUnit): ``impl [dtype]``,
    ``impl d/dlogits [dtype]`` for a gradient cell, ``impl mean of 1000 [dtype]``
    for a reduction cell."""
    label = quantity_label(wrt, reduce)
    return f"{impl} [{dtype}]" if label == "value" else f"{impl} {label} [{dtype}]"


def reduce_of(c: dict):
    """A results cell's or finding's (reduction, batch), or None."""
    return (c["reduction"], c["batch"]) if c.get("reduction") else None


def cell_key(c: dict) -> str:
    """The name of a results file's cell (or of a finding's cell)."""
    return cell_name(c["impl"], c["dtype"], c.get("wrt"), reduce_of(c))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_atomic(path: str, data: dict) -> None:
    """Write a results file as JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def write_text_atomic(path: str, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it over: never half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an output file follows the umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str, error: type[UsageError] = UsageError):
    """A JSON file's content, or ``error`` with one line saying what is wrong with it."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory") from None
    except PermissionError:
        raise error(f"{path}: permission denied") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file") from None


def load(path: str) -> dict:
    data = read_json(path, ResultsError)
    if not isinstance(data, dict) or "schema" not in data:
        raise ResultsError(f"{path}: not a lossfuzz results file (no schema)")
    if data["schema"] != SCHEMA:
        raise ResultsError(f"{path}: schema {data['schema']!r}, expected {SCHEMA!r}")
    for key in ("cells", "findings"):
        if not isinstance(data.get(key), list):
            raise ResultsError(f"{path}: missing or malformed {key!r}")
    return data
