"""Reading and writing lossfuzz's JSON files: strict, bounded, atomic.

Results, baselines and journals come from other machines and other people, so a
file is read as untrusted data: NaN/Infinity literals, numbers too long to be
numbers, nesting deeper than ``MAX_DEPTH`` and files over ``MAX_BYTES`` are refused
with one line. ``Fields`` walks a decoded object and checks each value's type as
it is taken, naming the file and the field (``r.json: cells[3].max_ulp: expected
a number, got 'abc'``). Writes go to a temporary file beside the target, renamed
over it: a reader never sees half a file, and a symbolic link at the target is
replaced, never followed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile

from lossfuzz.harness.errors import UsageError

MAX_BYTES = 4 * 2**30  # a results file of a million findings is about 2 GB
MAX_DEPTH = 64  # lossfuzz's files nest 8 levels deep


class DataError(UsageError):
    """A file lossfuzz reads is missing, unreadable or malformed: exit 2, one line."""


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _depth(obj, limit: int) -> int:
    """The nesting depth of a decoded JSON value (iteratively: no recursion limit)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, d = stack.pop()
        if d > limit:
            return d
        deepest = max(deepest, d)
        if isinstance(value, dict):
            stack.extend((v, d + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, d + 1) for v in value)
    return deepest


def loads(text: str, what: str):
    """Decode JSON text strictly; DataError naming ``what`` on anything malformed."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DataError(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise DataError(f"{what}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # NaN/Infinity literals; integers of more than 4300 digits
        raise DataError(f"{what}: not valid JSON ({str(exc).splitlines()[0]})") from None
    if _depth(obj, MAX_DEPTH) > MAX_DEPTH:
        raise DataError(f"{what}: nested more than {MAX_DEPTH} levels deep")
    return obj


def read_json(path: str):
    """A JSON file's decoded content, or DataError with one line saying what is wrong."""
    try:
        size = os.stat(path).st_size
        if size > MAX_BYTES:
            raise DataError(f"{path}: {size} bytes, more than the {MAX_BYTES} lossfuzz reads")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    return loads(text, path)


def dumps(data) -> str:
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def write_text_atomic(path: str, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it over: never half-written,
    and a symbolic link at ``path`` is replaced by the file, its target left alone."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an output file follows the umask
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise DataError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str, data) -> None:
    write_text_atomic(path, dumps(data))


def open_nofollow(path: str, mode: str):
    """A text file opened for writing ("w") or appending ("a") without following a
    symbolic link at ``path`` (a link there is an error, its target left alone)."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_APPEND if mode == "a" else os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if os.path.islink(path):
            raise DataError(f"cannot write {path}: it is a symbolic link") from None
        raise DataError(f"cannot write {path}: {exc.strerror}") from None
    return os.fdopen(fd, mode, encoding="utf-8")


class OutputLock:
    """Held while a run writes ``path``: a second run on the same output is refused with
    one line (an advisory lock on ``path.lock``, released when the process ends)."""

    def __init__(self, path: str):
        self.path = path + ".lock"
        self.fd = None

    def __enter__(self):
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            self.fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            raise DataError(f"cannot lock {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise DataError(
                f"another lossfuzz run is writing {self.path[:-5]} ({self.path} is locked)"
            ) from None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
        return False


# ------------------------------------------------------------------ checked fields


def hexfloat(v: float) -> str:
    """A float as a string that reads back bit for bit: float.hex(), or nan/inf/-inf."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v.hex()


def number(v: float):
    """A float for JSON: itself when finite, else its string name."""
    v = float(v)
    return v if math.isfinite(v) else hexfloat(v)


class Fields:
    """A decoded JSON object, read field by field with its type checked.

    Each accessor raises DataError naming the file and the field's path. ``where``
    is that path so far (``cells[3]``).
    """

    def __init__(self, obj, what: str, where: str = ""):
        if not isinstance(obj, dict):
            raise DataError(f"{what}: {where or 'the file'}: expected an object, got {_kind(obj)}")
        self.obj, self.what, self.where = obj, what, where

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str):
        raise DataError(f"{self.what}: {self._path(key)}: {problem}")

    def has(self, key: str) -> bool:
        return key in self.obj and self.obj[key] is not None

    def raw(self, key: str, default=None):
        return self.obj.get(key, default)

    def _take(self, key, types, name, optional, default):
        if key not in self.obj or self.obj[key] is None:
            if optional:
                return default
            self.fail(key, "missing")
        v = self.obj[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            self.fail(key, f"expected {name}, got {_kind(v)}")
        return v

    def str(self, key: str, *, optional: bool = False, default=None, choices=None) -> str:
        v = self._take(key, (str,), "a string", optional, default)
        if choices is not None and v is not None and v not in choices:
            self.fail(key, f"{v!r} is not one of {', '.join(map(repr, choices))}")
        return v

    def bool(self, key: str, *, optional: bool = False, default=None) -> bool:
        return self._take(key, (bool,), "true or false", optional, default)

    def int(self, key: str, *, optional: bool = False, default=None, minimum=None) -> int:
        v = self._take(key, (int,), "an integer", optional, default)
        if v is not None and minimum is not None and v < minimum:
            self.fail(key, f"{v} is below {minimum}")
        return v

    def float(self, key: str, *, optional=False, default=None, nan=False, minimum=None) -> float:
        """A number: a JSON number, or a string "nan", "inf", "-inf" or a float.hex()."""
        if key not in self.obj or self.obj[key] is None:
            if optional:
                return default
            self.fail(key, "missing")
        return self.check_float(key, self.obj[key], nan=nan, minimum=minimum)

    def check_float(self, key, v, *, nan=False, minimum=None) -> float:
        value = to_float(v)
        if value is None:
            self.fail(key, f"expected a number, got {_kind(v)}")
        if math.isnan(value) and not nan:
            self.fail(key, "is NaN")
        if minimum is not None and not math.isnan(value) and value < minimum:
            self.fail(key, f"{value!r} is below {minimum}")
        return value

    def list(self, key: str, *, optional: bool = False) -> list:
        return self._take(key, (list,), "a list", optional, [])

    def dict(self, key: str, *, optional: bool = False) -> dict:
        return self._take(key, (dict,), "an object", optional, {})

    def sub(self, key: str, *, optional: bool = False):
        """The object at ``key`` as Fields (None when optional and absent)."""
        if optional and not self.has(key):
            return None
        return Fields(
            self._take(key, (dict,), "an object", False, None), self.what, self._path(key)
        )

    def items(self, key: str, *, optional: bool = False):
        """(Fields, path) of each object in the list at ``key``."""
        for i, v in enumerate(self.list(key, optional=optional)):
            yield Fields(v, self.what, f"{self._path(key)}[{i}]")


def to_float(v) -> float | None:
    """A JSON number or a float string (hex, nan, inf, -inf) as a float; None otherwise."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return float(v) if abs(v) < 2**1024 else None
    if isinstance(v, float):
        return v
    if isinstance(v, str) and len(v) <= 64:
        if v in ("nan", "inf", "-inf"):
            return float(v)
        if not v.lstrip("+-").startswith("0x"):
            return None  # only float.hex() text: "abc" would read as 2748
        try:
            return float.fromhex(v)
        except (ValueError, OverflowError):
            return None
    return None


def _kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"[:60]
    if isinstance(v, str):
        return f"the string {v[:40]!r}"
    return {"list": "a list", "dict": "an object"}.get(type(v).__name__, type(v).__name__)
