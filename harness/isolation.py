"""Who calls an impl: this process, or a worker process for which a crash, a hang or a
runaway allocation is a finding, not our end.

A caller has one method, ``answer(impl, inputs, quantity)``, which returns the
impl's answer as a NumPy array or raises. ``IN_PROCESS`` calls the impl here. A
``Worker`` is a child process (started with "spawn": frameworks do not survive a
fork) that receives (impl id, loss, inputs, quantity) over a pipe and sends back
the answer, or the exception it raised. The parent waits at most ``timeout`` seconds:

    the child sends an answer          -> the answer
    the child sends an exception       -> ImplFailed("error", "TypeName: message")
    the child runs out of memory       -> ImplFailed("crash", "MemoryError: ...")
                                          (its address space is capped at ``memory_limit``)
    the child dies (abort, segfault)   -> ImplFailed("crash", "killed by SIGSEGV")
    no answer within ``timeout``       -> ImplFailed("timeout", ...); the child is killed

After a crash or a timeout the next call starts a fresh child. Impls are named by
id and resolved in the child: built-in and entry-point impls by ``get_impl``, user
code (``user:module:function``) by importing it again.

A child runs in a process group of its own; stopping it kills the group, so that
processes an impl forked do not outlive it. An answer larger than the caller said
it expects is refused in the child, without being sent. A child that dies before
it is ready is not an impl's finding but ``WorkerStartError`` (the run cannot go
on). While the parent waits, a set stop flag ends the wait within a fraction of a
second.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback

import numpy as np

from lossfuzz.harness.errors import first_line
from lossfuzz.harness.results import VALUE, Quantity

DEFAULT_TIMEOUT = 60.0  # seconds per call: TensorFlow's first call in a fresh child takes ~5
DEFAULT_MEMORY_LIMIT = 16 * 2**30  # bytes of address space per child
POLL = 0.25  # seconds between looks at the stop flag while a call runs


class ImplFailed(Exception):
    """The impl raised, crashed its process or hung: ``kind`` is error, crash or timeout."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class WorkerStartError(RuntimeError):
    """A worker process could not start (not the impl's doing): the run cannot go on."""


class Stopped(Exception):
    """The run's stop flag was set while a worker was answering; the worker was killed."""


class InProcess:
    """Calls impls in this process: fast, and unprotected against crashes and hangs."""

    def answer(self, impl, inputs: dict, quantity: Quantity = VALUE, expect=None) -> np.ndarray:
        return np.asarray(impl.answer(inputs, quantity))

    def stop(self) -> None:
        pass


IN_PROCESS = InProcess()


def _resolve(impl_id: str, loss: str, description):
    from lossfuzz.harness import userimpl
    from lossfuzz.harness.registry import get_impl

    if description is not None:  # a user's loss, as the parent described and checked it
        return userimpl.register(description)
    return get_impl(impl_id)


def _serve(conn, memory_limit: int | None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        os.setpgid(0, 0)  # a group of its own: stopping the worker stops what its impl forked
    except OSError:
        pass
    if memory_limit:
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ValueError, OSError):
            pass
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        impl_id, loss, description, inputs, quantity, expect = request
        try:
            answer = np.asarray(_resolve(impl_id, loss, description).answer(inputs, quantity))
            if expect is not None and answer.size > expect:
                # refused here: sending a runaway answer could take minutes
                raise ValueError(f"returned {answer.size} values, expected {expect}")
            reply = ("ok", answer)
        except MemoryError as exc:
            reply = ("crash", f"MemoryError: out of memory {exc}".strip())
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            reply = ("error", first_line(exc))
            if os.environ.get("LOSSFUZZ_DEBUG"):
                traceback.print_exc()
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("crash", "MemoryError: out of memory sending the answer"))


def death(exitcode: int | None) -> str:
    """How a worker process ended, in words (its exit code or signal)."""
    if exitcode is None:
        return "the worker process stopped answering"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"the worker process exited with code {exitcode}"


class Worker:
    """A caller that runs each impl in a child process of its own."""

    START_TIMEOUT = 300.0  # seconds for a fresh child to import lossfuzz and say it is ready

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        memory_limit: int | None = None,
        stop=lambda: False,
    ):
        self.timeout = timeout
        self.memory_limit = DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit
        self.stopping = stop  # the run's stop flag: true ends a wait at once
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._conn = None
        self.restarts = 0

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, self.memory_limit), daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        try:
            ready = parent.poll(self.START_TIMEOUT) and parent.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            proc.join(1)
            code = proc.exitcode
            self.stop()
            raise WorkerStartError(f"a worker process could not start ({death(code)})")

    def stop(self) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)  # the worker and what it forked
            except (ProcessLookupError, PermissionError, OSError):
                if self._proc.is_alive():
                    self._proc.kill()
            self._proc.join(5)
            self._conn.close()
        self._proc = self._conn = None

    def _wait(self) -> bool:
        """True once an answer is ready; False after the timeout (Stopped on a stop)."""
        waited = 0.0
        while waited < self.timeout:
            step = min(POLL, self.timeout - waited)
            if self._conn.poll(step):
                return True
            waited += step
            if self.stopping():
                self.stop()
                raise Stopped("the run was stopped")
        return False

    def _died(self) -> ImplFailed:
        self._proc.join(5)
        code = self._proc.exitcode
        self.stop()
        return ImplFailed("crash", death(code))

    def answer(self, impl, inputs: dict, quantity: Quantity = VALUE, expect=None) -> np.ndarray:
        """The impl's answer from the child; ``expect``, if given, the most elements an
        answer may have (a larger one is refused in the child as an error)."""
        if self._proc is None or not self._proc.is_alive():
            if self._proc is not None:
                self.restarts += 1
            self.stop()
            self._start()
        try:
            self._conn.send((impl.id, impl.loss, impl.description, inputs, quantity, expect))
        except (BrokenPipeError, OSError):
            raise self._died() from None
        if not self._wait():
            self.stop()
            raise ImplFailed(
                "timeout", f"no answer within {self.timeout:g} s; the worker was killed"
            )
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if kind == "ok":
            return value
        if kind == "crash":
            self.stop()  # a child that ran out of memory is not trusted again
        raise ImplFailed(kind, value)


class Isolation:
    """The workers of a campaign: one searches, a second (another process) confirms."""

    def __init__(
        self, timeout: float = DEFAULT_TIMEOUT, memory_limit: int | None = None, stop=lambda: False
    ):
        self.search = Worker(timeout, memory_limit, stop)
        self.confirm = Worker(timeout, memory_limit, stop)

    def stop(self) -> None:
        self.search.stop()
        self.confirm.stop()
