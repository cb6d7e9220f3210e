"""Cells in parallel (``lossfuzz run --jobs N``): the results of one job, stops that stop
every process, and runners that cannot start or die said in one line."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from cli import lossfuzz

TIMINGS = {"created", "elapsed_seconds", "seconds"}

SLOW = textwrap.dedent(
    """
    import numpy as np, time

    def slow(logits):  # answers the preflight's ordinary input, then sleeps
        if not np.all(np.abs(logits.astype(np.float64)) < 10):
            time.sleep(30)
        return np.log1p(np.exp(logits.astype(np.float64))).astype(logits.dtype)
    """
)


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _marked(marker: str) -> list[int]:
    """The live processes whose environment holds ``marker`` (a run's and its children's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    return pids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _gone(marker: str, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while _marked(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def marker(monkeypatch):
    mark = f"lossfuzz-test-{uuid.uuid4().hex}"
    yield mark
    for pid in _marked(mark):  # never leave a stray process behind a failed test
        os.kill(pid, signal.SIGKILL)


def test_results_do_not_depend_on_the_number_of_jobs(tmp_path):
    runs = {}
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"j{jobs}.json"
        r = lossfuzz("run", "--loss", "softplus", "--dtype", "float16", "--budget", "3",
                     "--jobs", jobs, "-q", "-o", str(out))  # fmt: skip
        assert r.returncode == 0, r.stderr
        runs[jobs] = json.loads(out.read_text())
    one = runs["1"]
    assert len(one["cells"]) >= 8 and one["findings"], "the comparison needs cells and findings"
    for jobs in ("2", "3"):
        assert _without_timings(runs[jobs]) == _without_timings(one), f"--jobs {jobs} differs"


def test_sigterm_stops_every_runner_and_keeps_the_finished_cells(tmp_path, marker):
    (tmp_path / "answers.py").write_text(SLOW)
    out = tmp_path / "slow.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossfuzz", "run", "--impl", "answers:slow", "--loss", "softplus",
         "--dtype", "float16", "--dtype", "float32", "--quantity", "value", "--budget", "2",
         "--jobs", "2", "-o", str(out)],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path), LOSSFUZZ_MARK=marker),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(20)  # both runners and their workers are up, each inside a 30 s sleep
    assert len(_marked(marker)) >= 5, "expected the run, two runners and their workers"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 12, "the run did not stop while its runners were busy"
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert json.loads(out.read_text())["complete"] is False
    assert _gone(marker), "a runner or a worker outlived the run"


def test_a_runner_that_cannot_start_is_one_line_and_exit_3(tmp_path, marker):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(  # every spawned process dies at once
        "import os, sys\nif '--multiprocessing-fork' in sys.argv:\n    os._exit(7)\n"
    )
    out = tmp_path / "r.json"
    r = lossfuzz("run", "--impl", "naive:softplus", "--dtype", "float16", "--budget", "1",
                 "--jobs", "2", "-o", str(out),
                 env={"PYTHONPATH": str(site), "LOSSFUZZ_MARK": marker})  # fmt: skip
    assert r.returncode == 3, r.stdout + r.stderr
    assert "could not start" in r.stderr and "exited with code 7" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 4
    assert not out.exists(), "a run that could not start wrote results"
    assert _gone(marker)


def test_a_runner_killed_during_the_run_is_said_and_nothing_is_left_running(tmp_path, marker):
    (tmp_path / "answers.py").write_text(SLOW)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossfuzz", "run", "--impl", "answers:slow", "--loss", "softplus",
         "--dtype", "float16", "--dtype", "float32", "--quantity", "value", "--budget", "2",
         "--jobs", "2", "--no-isolation", "-o", str(tmp_path / "r.json")],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path), LOSSFUZZ_MARK=marker),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(15)
    runners = [p for p in _marked(marker) if b"--multiprocessing-fork" in _cmdline(p)]
    assert runners, "no runner process found"
    os.kill(runners[0], signal.SIGKILL)  # as the kernel's out-of-memory killer would
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "runner process died during the run (killed by SIGKILL)" in err, err
    assert "Traceback" not in err
    assert _gone(marker)
