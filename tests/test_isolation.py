"""Faults injected into impls and into lossfuzz itself: every one is survived.

An impl that aborts, segfaults, hangs, allocates without bound or raises becomes a
crash, timeout or error finding while the campaign goes on; a run killed with
SIGKILL or stopped with SIGTERM leaves a readable, incomplete results file, and
--resume finishes it with the results of an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cli import ROOT, lossfuzz

FAULTY = """
import ctypes, os, time
import numpy as np

# each answers an ordinary input (the preflight's) and fails beyond |logit| 10

def ordinary(logits):
    x = np.asarray(logits, dtype=np.float64)
    if np.all(np.abs(x) < 10):
        return (np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)).astype(logits.dtype)
    return None

def aborts(logits):
    return ordinary(logits) if ordinary(logits) is not None else os.abort()

def segfaults(logits):
    return ordinary(logits) if ordinary(logits) is not None else ctypes.string_at(0)

def hangs(logits):
    return ordinary(logits) if ordinary(logits) is not None else time.sleep(10**6)

def allocates(logits):
    hoard = []
    while ordinary(logits) is None:
        hoard.append(np.ones(2**24))
    return ordinary(logits)

def raises(logits):
    if ordinary(logits) is None:
        raise RuntimeError("boom")
    return ordinary(logits)

def only_big_logits_crash(logits):
    if np.any(np.abs(logits.astype(np.float64)) > 1e4):
        os.abort()
    return np.log1p(np.exp(-np.abs(logits))) + np.maximum(logits, 0)
"""


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    d = tmp_path_factory.mktemp("faulty")
    (d / "faulty_impls.py").write_text(FAULTY)
    return d


def _run(tmp, d, *impls, timeout="4", extra=()):
    out = tmp / "r.json"
    args = ["run", "--loss", "softplus", "--dtype", "float64", "--budget", "3"]
    for impl in impls:
        args += ["--impl", impl]
    args += ["--timeout", timeout, "--memory-limit", "1", "--out", str(out), *extra]
    r = lossfuzz(*args, env={"PYTHONPATH": str(d)})
    return r, out


@pytest.mark.parametrize(
    "fn,cls,says",
    [
        ("aborts", "crash", "SIGABRT"),
        ("segfaults", "crash", "SIGSEGV"),
        ("hangs", "timeout", "no answer within"),
        ("allocates", "crash", "MemoryError"),
        ("raises", "error", "RuntimeError: boom"),
    ],
)
def test_a_faulty_impl_is_a_finding_and_the_campaign_goes_on(faulty, tmp_path, fn, cls, says):
    r, out = _run(tmp_path, faulty, f"faulty_impls:{fn}", "naive:softplus")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    data = json.loads(out.read_text())
    cells = {c["impl"]: c for c in data["cells"]}
    assert cells[f"user:faulty_impls:{fn}"]["worst_class"] == cls
    assert cells["naive:softplus"]["cases"] > 0  # the campaign went on after the fault
    # it fails in every regime of inputs beyond |logit| 10: one finding each, all of its class
    found = [f for f in data["findings"] if f["impl"] == f"user:faulty_impls:{fn}"]
    assert found and all(f["class"] == cls for f in found)
    f = found[0]
    assert says in f["error"] and f["confirmed"]
    assert f"from faulty_impls import {fn}" in f["reproducer"]


def test_a_crash_on_some_inputs_names_the_input_that_kills(faulty, tmp_path):
    r, out = _run(tmp_path, faulty, "faulty_impls:only_big_logits_crash")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    crash = [f for f in data["findings"] if f["class"] == "crash"]
    assert crash and abs(float.fromhex(crash[0]["inputs"]["logits"]["hex"][0])) > 1e4
    cell = data["cells"][0]
    # the search stops at the first crash: each further one would cost a process
    assert cell["counts"]["crash"] == 1 and cell["stopped"].startswith("crash: killed by SIGABRT")


SLOW = ["naive:softplus", "naive:log_sigmoid", "naive:sigmoid_then_log", "naive:tf_doc_step3"]


def _run_args(out):
    args = ["run", "--dtype", "float16", "--dtype", "float32", "--budget", "40"]
    args += ["--quantity", "value", "--no-isolation", "--out", str(out)]
    for impl in SLOW:
        args += ["--impl", impl]
    return args


def _popen(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [sys.executable, "-m", "lossfuzz", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_cells(journal, n, proc, limit=120):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if journal.exists() and len(journal.read_text().splitlines()) > n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("the run finished no cells")


def _same(a, b):
    strip = lambda cs: [{k: v for k, v in c.items() if k != "seconds"} for c in cs]  # noqa: E731
    return strip(a["cells"]) == strip(b["cells"]) and a["findings"] == b["findings"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "r.json"
    r = lossfuzz(*_run_args(out))
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


def test_a_run_killed_with_sigkill_leaves_results_and_resumes_to_the_same(tmp_path, uninterrupted):
    out = tmp_path / "r.json"
    journal = tmp_path / "r.json.journal"
    proc = _popen(_run_args(out))
    _wait_for_cells(journal, 3, proc)  # the header and three cells
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = json.loads(out.read_text())
    assert partial["complete"] is False and 1 <= len(partial["cells"]) < len(SLOW) * 2
    assert lossfuzz("report", str(out), "-o", str(tmp_path / "p.html")).returncode == 0
    r = lossfuzz(*_run_args(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    resumed = json.loads(out.read_text())
    assert resumed["complete"] and _same(resumed, uninterrupted)
    assert not journal.exists()


def test_sigterm_writes_the_finished_cells_and_exits_143(tmp_path):
    out = tmp_path / "r.json"
    proc = _popen(_run_args(out))
    _wait_for_cells(tmp_path / "r.json.journal", 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "--resume" in err and "Traceback" not in err
    data = json.loads(out.read_text())
    assert data["complete"] is False and len(data["cells"]) >= 2
    base = tmp_path / "b.json"
    assert lossfuzz("baseline", str(out), "-o", str(base)).returncode == 0


def test_resume_refuses_a_journal_of_another_run(tmp_path):
    out = tmp_path / "r.json"
    (tmp_path / "r.json.journal").write_text(
        json.dumps({"schema": "lossfuzz/run-journal/1", "plan": {"seed": 99}}) + "\n"
    )
    r = lossfuzz(*_run_args(out), "--resume")
    assert r.returncode == 2 and "another run" in r.stderr and not out.exists()


def test_the_stable_control_reports_nothing_above_its_tolerance(tmp_path):
    # zero false positives: the non-negative-terms formula in every dtype, values fuzzed
    out = tmp_path / "r.json"
    r = lossfuzz(
        "run", "--impl", "naive:control_sigmoid_ce", "--quantity", "value", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert len(data["cells"]) == 4 and data["findings"] == []
    for c in data["cells"]:
        assert c["worst_class"] in ("exact", "ok") and c["cases"] > 500


def test_a_journal_torn_by_a_kill_takes_new_records_on_a_line_of_their_own(tmp_path):
    from types import MappingProxyType

    from lossfuzz.harness import journal
    from lossfuzz.harness.results import Cell, CellKey

    a, b = CellKey("t:a", "float16"), CellKey("t:b", "float16")
    path = str(tmp_path / "r.json.journal")
    plan = {"seed": 0, "budget": 1, "tolerance": 4.0, "cells": [a.name, b.name]}

    def cell(key):
        return Cell(key, "softplus", 1, 0.0, 0.0, 4.0, MappingProxyType({"exact": 1}))

    w = journal.Writer(path, plan, append=False)
    w.cell(a, cell(a), [])
    w.close()
    with open(path, "a") as f:
        f.write('{"cell": "t:b [flo')  # the kill
    assert set(journal.read(path, plan)) == {a}
    w = journal.Writer(path, plan, append=True)
    w.cell(b, cell(b), [])
    w.close()
    assert set(journal.read(path, plan)) == {a, b}
