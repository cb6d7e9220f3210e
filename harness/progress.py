"""Progress of a long run: a live line in a terminal, plain lines in a log.

In a terminal (``rich``) one line shows the cells done of the total, the elapsed
time, an estimate of the time left and the findings so far, and the cell under
way. Anywhere else (a CI log, a file) the same fields are printed as a plain line
at least every ``EVERY`` seconds, from a timer thread, so that a long cell never
leaves the log silent. ``quiet`` prints nothing; ``verbose`` adds a line per
finished cell.
"""

from __future__ import annotations

import sys
import threading
import time

EVERY = 10.0  # seconds between plain lines at the most


def clock(seconds: float) -> str:
    """1:02:03, 2:03 or 0:05."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Told when each cell starts and finishes; shows how the run goes."""

    def __init__(self, total: int, *, stream=None, quiet=False, verbose=False, what="cells"):
        self.stream = stream or sys.stderr
        self.total, self.what = total, what
        self.quiet, self.verbose = quiet, verbose
        self.done = self.findings = 0
        self.current = ""
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._live = None
        self._thread = None
        if quiet:
            return
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text

            self._text = Text
            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._live = Live(Text(self.line()), console=console, refresh_per_second=4)
            self._live.start()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = "?"
        if self.done:
            eta = clock(elapsed / self.done * (self.total - self.done))
        pct = 100 * self.done / self.total if self.total else 100
        now = f"  {self.current}" if self.current else ""
        return (
            f"[{self.done}/{self.total} {self.what}, {pct:.0f}%] elapsed {clock(elapsed)}, "
            f"ETA {eta}, {self.findings} findings{now}"
        )

    def _tick(self) -> None:
        while not self._stop.wait(0.25 if self._live else EVERY):
            self._show()

    def _show(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.update(self._text(self.line()))
            else:
                print(self.line(), file=self.stream, flush=True)

    def started(self, name: str) -> None:
        self.current = name

    def finished(self, name: str, findings: int = 0, summary: str = "") -> None:
        self.done += 1
        self.findings += findings
        self.current = ""
        if self.verbose and not self.quiet:
            text = f"done {name}" + (f": {summary}" if summary else "")
            with self._lock:
                if self._live is not None:
                    self._live.console.print(text, markup=False, highlight=False)
                else:
                    print(text, file=self.stream, flush=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1)
        if self._live is not None:
            self._live.update(self._text(self.line()))
            self._live.stop()
            self._live = None
        elif not self.quiet and self.done:
            print(self.line(), file=self.stream, flush=True)
