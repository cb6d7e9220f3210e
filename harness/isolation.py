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


class ImplFailed(Exception):
    """The impl raised, crashed its process or hung: ``kind`` is error, crash or timeout."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class InProcess:
    """Calls impls in this process: fast, and unprotected against crashes and hangs."""

    def answer(self, impl, inputs: dict, quantity: Quantity = VALUE) -> np.ndarray:
        return np.asarray(impl.answer(inputs, quantity))

    def stop(self) -> None:
        pass


IN_PROCESS = InProcess()


def _resolve(impl_id: str, loss: str):
    from lossfuzz.harness.registry import get_impl, user_impl

    if impl_id.startswith("user:"):
        return user_impl(impl_id.partition(":")[2], loss)
    return get_impl(impl_id)


def _serve(conn, memory_limit: int | None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if memory_limit:
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ValueError, OSError):
            pass
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        impl_id, loss, inputs, quantity = request
        try:
            answer = np.asarray(_resolve(impl_id, loss).answer(inputs, quantity))
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


def _death(exitcode: int | None) -> str:
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

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, memory_limit: int | None = None):
        self.timeout = timeout
        self.memory_limit = DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit
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

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
            self._conn.close()
        self._proc = self._conn = None

    def _died(self) -> ImplFailed:
        self._proc.join(5)
        code = self._proc.exitcode
        self.stop()
        return ImplFailed("crash", _death(code))

    def answer(self, impl, inputs: dict, quantity: Quantity = VALUE) -> np.ndarray:
        if self._proc is None or not self._proc.is_alive():
            if self._proc is not None:
                self.restarts += 1
            self.stop()
            self._start()
        try:
            self._conn.send((impl.id, impl.loss, inputs, quantity))
        except (BrokenPipeError, OSError):
            raise self._died() from None
        if not self._conn.poll(self.timeout):
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

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, memory_limit: int | None = None):
        self.search = Worker(timeout, memory_limit)
        self.confirm = Worker(timeout, memory_limit)

    def stop(self) -> None:
        self.search.stop()
        self.confirm.stop()
