"""Cells in parallel: ``jobs`` runner processes, each running whole cells.

Each runner has its own engine: under isolation its own search and confirming
workers, started once and reused for every cell it runs, so each framework is
imported once per runner. A cell's search is seeded by the campaign seed and the
cell's name and depends on nothing another cell did, so which runner ran it makes no
difference: the results are those of ``--jobs 1`` in the selection's order.

The parent hands out one cell at a time to each runner (so ``--seconds`` can share
out the time left as cells finish) and owns the stop flag: on a signal it sets a
shared event, each runner ends its cell at the next case (the isolation's poll kills
an impl that is still answering), and the cells that finished are kept.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import signal
import time
from dataclasses import dataclass

from lossfuzz.harness.errors import first_line
from lossfuzz.harness.isolation import Stopped, WorkerStartError, death


@dataclass(frozen=True)
class Task:
    index: int
    impl: str  # the impl's id (a user's impl is registered again from its description)
    dtype: str
    quantity: object
    scope: object
    budget: int
    seed: int
    tolerance: float
    deadline: float | None  # time.monotonic() (one clock for every process on a machine)


class _EventStop:
    """The runner's stop flag: the parent's event (signals go to the parent)."""

    def __init__(self, event):
        self.event = event
        self.signum = None

    def set(self, signum: int) -> None:
        self.signum = signum
        self.event.set()

    def __bool__(self) -> bool:
        return self.event.is_set()


def _serve(tasks, answers, event, isolation: tuple | None, described: list) -> None:
    """A runner: build an engine, then run the cells it is given until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which says
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from lossfuzz.harness import userimpl
    from lossfuzz.harness.campaign import run_one
    from lossfuzz.harness.registry import IMPLS, load_all
    from lossfuzz.harness.scoring import Engine

    stop = _EventStop(event)
    iso = None
    try:
        load_all()
        for desc in described:
            userimpl.register(desc)
        if isolation is None:
            engine = Engine(stop=stop)
        else:
            from lossfuzz.harness.isolation import Isolation

            timeout, memory = isolation
            iso = Isolation(timeout, memory, lambda: bool(stop))
            engine = Engine.isolated(iso, stop)
        answers.put(("ready", os.getpid()))
        while True:
            task = tasks.get()
            if task is None:
                break
            try:
                record, kept = run_one(
                    engine,
                    IMPLS[task.impl],
                    task.dtype,
                    task.quantity,
                    task.scope,
                    budget=task.budget,
                    seed=task.seed,
                    tolerance=task.tolerance,
                    deadline=task.deadline,
                )
                # as the journal keeps them (the records hold mappingproxies, not pickled)
                text = json.dumps(
                    {"record": record.to_json(), "findings": [f.to_json() for f in kept]},
                    allow_nan=False,
                )
                answers.put(("cell", task.index, text))
            except Stopped:
                answers.put(("stopped", task.index))
            except WorkerStartError as exc:
                answers.put(("worker", task.index, str(exc)))
            except Exception as exc:  # noqa: BLE001 - said by the parent, as exit 3
                answers.put(("internal", task.index, f"{type(exc).__name__}: {first_line(exc)}"))
    finally:
        if iso is not None:
            iso.stop()


class Runners:
    """``jobs`` runner processes; ``run(tasks)`` yields (task, record, findings)."""

    def __init__(self, jobs: int, isolation: tuple | None, described: list, stop):
        self.stop = stop  # the parent's flag (set by its signal handler)
        ctx = mp.get_context("spawn")
        self.event = ctx.Event()
        self.tasks = ctx.Queue()
        self.answers = ctx.Queue()
        self.procs = [
            ctx.Process(
                target=_serve,
                args=(self.tasks, self.answers, self.event, isolation, described),
                daemon=False,  # a runner starts worker processes of its own
            )
            for _ in range(jobs)
        ]
        self.ready = False
        try:
            for p in self.procs:
                p.start()
            ready = 0
            while ready < jobs:
                kind, *_ = self._next()
                ready += kind == "ready"
        except BaseException:
            self.close()  # no runner outlives a start that failed or was interrupted
            raise
        self.ready = True

    def _next(self, wait: float = 0.25):
        """The next answer; WorkerStartError if a runner died without one."""
        while True:
            if self.stop:
                self.event.set()
            try:
                return self.answers.get(timeout=wait)
            except queue.Empty:
                dead = [p for p in self.procs if p.exitcode not in (None, 0)]
                if dead:
                    how = death(dead[0].exitcode).replace("worker", "runner")
                    if not self.ready:
                        raise WorkerStartError(
                            f"a runner process could not start ({how})"
                        ) from None
                    raise WorkerStartError(
                        f"a runner process died during the run ({how})"
                    ) from None

    def run(self, tasks, make_task):
        """Hand out ``tasks`` (indices) one per free runner, ``make_task(index)`` building
        each when it is handed out; yield ("cell", index, record, findings) as cells
        finish, then ("stopped", index) for each cell a stop cut short."""
        todo = list(tasks)
        busy = 0
        stopped = False
        while todo or busy:
            while todo and busy < len(self.procs) and not stopped and not self.stop:
                task = make_task(todo.pop(0))
                if task is None:  # no time left
                    todo.clear()
                    break
                self.tasks.put(task)
                busy += 1
            if not busy:
                break
            answer = self._next()
            kind = answer[0]
            if kind == "ready":
                continue
            busy -= 1
            if kind == "cell":
                from lossfuzz.harness.jsonio import Fields, loads
                from lossfuzz.harness.results import Cell, Finding

                _, index, text = answer
                raw = Fields(loads(text, "a runner's cell"), "a runner's cell")
                yield (
                    "cell",
                    index,
                    Cell.from_fields(raw.sub("record")),
                    [Finding.from_fields(f) for f in raw.items("findings")],
                )
            elif kind == "stopped":
                stopped = True
                yield answer
            elif kind == "worker":
                self.event.set()
                raise WorkerStartError(answer[2])
            else:
                self.event.set()
                raise RuntimeError(answer[2])
            if self.stop:
                stopped = True
                self.event.set()

    def close(self) -> None:
        for p in self.procs:
            if p.is_alive():
                self.tasks.put(None)
        deadline = time.monotonic() + 10
        for p in self.procs:
            if p.pid is not None:
                p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        self.tasks.close()
        self.answers.close()
