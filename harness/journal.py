"""The run journal: every finished cell, appended as it finishes, for ``--resume``.

``lossfuzz run --out R`` appends one JSON line per finished cell (its record and
findings) to ``R.journal``, flushed and fsynced, and replaces ``R`` atomically with
the results so far (marked incomplete) at most every ``PARTIAL_EVERY`` seconds. So
Ctrl-C, SIGTERM or kill -9 at any moment leaves a results file that the report
and the gate read, and ``--resume`` runs only the cells the journal lacks. A line
torn by a kill is ignored. The journal is removed once the complete results are
written.
"""

from __future__ import annotations

import json
import os

from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.jsonio import DataError, Fields, loads, open_nofollow
from lossfuzz.harness.results import Cell, CellKey, Finding

SCHEMA = "lossfuzz/run-journal/1"
PARTIAL_EVERY = 5.0  # seconds between rewrites of the incomplete results file


def path_for(out: str) -> str:
    return out + ".journal"


def plan_key(selection, seed: int, budget, tolerance: float) -> dict:
    return {
        "seed": seed,
        "budget": budget,
        "tolerance": tolerance,
        "cells": [spec.key.name for spec in selection.cells],
    }


def read(path: str, plan: dict) -> dict:
    """{CellKey: (Cell, findings)} from a journal written for the same plan."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the journal ({exc.strerror})") from None
    if not lines[0].strip():
        return {}
    try:
        head = loads(lines[0], path)
    except DataError:
        raise UsageError(f"{path}: not a lossfuzz run journal") from None
    if not isinstance(head, dict) or head.get("schema") != SCHEMA:
        raise UsageError(f"{path}: not a lossfuzz run journal")
    if head.get("plan") != plan:
        raise UsageError(
            f"{path}: written for another run (cells, seed or budget differ); "
            "remove it or drop --resume"
        )
    done = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        what = f"{path}: line {n}"
        try:
            raw = loads(line, what)
        except DataError:
            continue  # a line torn by a kill (the run then resumed on a new line)
        try:
            rec = Fields(raw, what)
            key = CellKey.parse(rec.str("cell"))
            cell = Cell.from_fields(rec.sub("record"))
            findings = [Finding.from_fields(f) for f in rec.items("findings")]
        except (DataError, ValueError):
            raise UsageError(
                f"{what}: a damaged record; remove the journal or drop --resume"
            ) from None
        done[key] = (cell, findings)
    return done


def ends_torn(path: str) -> bool:
    """The file's last line lacks its newline: a kill cut it short."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


class Writer:
    def __init__(self, path: str, plan: dict, append: bool):
        self.path = path
        mode = "a" if append and os.path.exists(path) else "w"
        torn = mode == "a" and ends_torn(path)
        self.file = open_nofollow(path, mode)  # a link here is refused, never written through
        if torn:
            self.file.write("\n")  # end the line a kill tore, so the next record stands alone
        if mode == "w":
            self._line({"schema": SCHEMA, "plan": plan})

    def _line(self, obj: dict) -> None:
        try:
            self.file.write(json.dumps(obj, allow_nan=False) + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as exc:
            raise DataError(f"cannot write {self.path}: {exc.strerror}") from None

    def cell(self, key: CellKey, record: Cell, findings: list[Finding]) -> None:
        self._line(
            {
                "cell": key.name,
                "record": record.to_json(),
                "findings": [f.to_json() for f in findings],
            }
        )

    def close(self, remove: bool = False) -> None:
        self.file.close()
        if remove:
            os.unlink(self.path)
