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

SCHEMA = "lossfuzz/run-journal/1"
PARTIAL_EVERY = 5.0  # seconds between rewrites of the incomplete results file


def path_for(out: str) -> str:
    return out + ".journal"


def plan_key(selection, seed: int, budget, tolerance: float) -> dict:
    from lossfuzz.harness.results import cell_name

    return {
        "seed": seed,
        "budget": budget,
        "tolerance": tolerance,
        "cells": [cell_name(i.id, d, w, r) for i, d, w, r in selection.cells],
    }


def read(path: str, plan: dict) -> dict:
    """{cell name: (record, findings)} from a journal written for the same plan."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the journal ({exc.strerror})") from None
    try:
        head = json.loads(lines[0])
    except (json.JSONDecodeError, IndexError):
        if not lines[0].strip():
            return {}
        raise UsageError(f"{path}: not a lossfuzz run journal") from None
    if not isinstance(head, dict) or head.get("schema") != SCHEMA:
        raise UsageError(f"{path}: not a lossfuzz run journal")
    if head.get("plan") != plan:
        raise UsageError(
            f"{path}: written for another run (cells, seed or budget differ); "
            "remove it or drop --resume"
        )
    done = {}
    for line in lines[1:]:
        try:
            rec = json.loads(line)
            done[rec["cell"]] = (rec["record"], rec["findings"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # the torn tail of a killed run
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
        self.file = open(path, mode, encoding="utf-8")  # noqa: SIM115 (closed by close())
        if torn:
            self.file.write("\n")  # end the line a kill tore, so the next record stands alone
        if mode == "w":
            self._line({"schema": SCHEMA, "plan": plan})

    def _line(self, obj: dict) -> None:
        self.file.write(json.dumps(obj, allow_nan=False) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def cell(self, name: str, record: dict, findings: list) -> None:
        self._line({"cell": name, "record": record, "findings": findings})

    def close(self, remove: bool = False) -> None:
        self.file.close()
        if remove:
            os.unlink(self.path)
