"""lossfuzz as a CI gate reading other people's files: data never runs code, the gate fails
closed, no input is ever overwritten, and no input gives a traceback."""

import contextlib
import copy
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest
from cli import lossfuzz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossfuzz.harness import campaign
from lossfuzz.harness.cli import main

NAIVE = ("naive:sigmoid_then_log", "naive:softplus")


@pytest.fixture(scope="module")
def valid() -> dict:
    sel = campaign.select(impls=NAIVE, dtypes=("float16",), batches=(10,))
    return campaign.run(sel, budget=2, seed=0).to_json()


@pytest.fixture()
def files(valid, tmp_path):
    res = tmp_path / "r.json"
    res.write_text(json.dumps(valid))
    base = tmp_path / "b.json"
    assert lossfuzz("baseline", str(res), "-o", str(base)).returncode == 0
    return res, base


def _one_line_exit_2(r):
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ------------------------------------------------------------------ data never runs code

EVIL = textwrap.dedent(
    """
    import os, pathlib
    pathlib.Path(os.environ["MARKER"]).write_text("imported")

    def fn(logits, labels):
        return logits * 0 + 1
    """
)


def test_repro_never_imports_a_module_named_in_the_results(valid, tmp_path):
    (tmp_path / "evilmod.py").write_text(EVIL)
    data = copy.deepcopy(valid)
    f = next(f for f in data["findings"] if f["impl"] == "naive:sigmoid_then_log")
    f["impl"] = "user:evilmod:fn"
    data["findings"] = [f]
    path = tmp_path / "crafted.json"
    path.write_text(json.dumps(data))
    marker = tmp_path / "marker"
    r = lossfuzz("repro", str(path), cwd=tmp_path, env={"MARKER": str(marker)})
    _one_line_exit_2(r)
    assert "--impl" in r.stderr and not marker.exists()
    assert "not re-run" in r.stdout


FAULTY = textwrap.dedent(
    """
    import os, signal

    def segfaults(logits, labels):
        os.kill(os.getpid(), signal.SIGSEGV)

    def exits(logits, labels):
        os._exit(0)
    """
)


@pytest.mark.parametrize("fn,death", [("segfaults", "SIGSEGV"), ("exits", "code 0")])
def test_repro_runs_user_code_in_a_worker_and_reports_its_death(valid, tmp_path, fn, death):
    (tmp_path / "faulty_user.py").write_text(FAULTY)
    data = copy.deepcopy(valid)
    f = next(f for f in data["findings"] if f["impl"] == "naive:sigmoid_then_log")
    f["impl"] = f"user:faulty_user:{fn}"
    data["findings"] = [f]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    r = lossfuzz("repro", str(path), "--impl", f"faulty_user:{fn}", cwd=tmp_path,
                 env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "changed: now crash" in r.stdout and death in r.stdout


# ------------------------------------------------------------------ the gate fails closed


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda c: c.update(max_ulp="nan"), "is NaN"),
        (lambda c: c.update(max_finite_ulp="nan"), "is NaN"),
        (lambda c: c.update(counts=[1, 2, 3, 4]), "expected an object"),
        (lambda c: c.pop("max_ulp"), "missing"),
        (lambda c: c.update(max_ulp="abc"), "expected a number"),
    ],
    ids=["nan-max", "nan-finite", "counts-list", "missing-max", "text-max"],
)
def test_the_gate_cannot_judge_nan_missing_or_ill_typed_figures(files, change, message):
    res, base = files
    data = json.loads(res.read_text())
    change(data["cells"][0])
    res.write_text(json.dumps(data))
    r = lossfuzz("gate", str(res), "--baseline", str(base))
    _one_line_exit_2(r)
    assert message in r.stderr


def test_a_baseline_with_nan_figures_cannot_be_judged_against(files):
    res, base = files
    b = json.loads(base.read_text())
    next(iter(b["cells"].values()))["max_finite_ulp"] = "nan"
    base.write_text(json.dumps(b))
    _one_line_exit_2(lossfuzz("gate", str(res), "--baseline", str(base)))


# ------------------------------------------------------------------ inputs are never destroyed


@pytest.mark.parametrize(
    "args",
    [
        ["report", "{res}", "-o", "{res}"],
        ["report", "{res}", "--format", "markdown", "-o", "{res}"],
        ["baseline", "{res}", "-o", "{res}"],
        ["gate", "{res}", "--baseline", "{base}", "--junit", "{res}"],
        ["gate", "{res}", "--baseline", "{base}", "--junit", "{base}"],
        ["report", "{res}", "-o", "{link}"],
    ],
    ids=["report", "markdown", "baseline", "junit-results", "junit-baseline", "via-a-link"],
)
def test_no_command_writes_over_one_of_its_inputs(files, tmp_path, args):
    res, base = files
    link = tmp_path / "link.json"
    link.symlink_to(res)
    before = res.read_bytes(), base.read_bytes()
    r = lossfuzz(*(a.format(res=res, base=base, link=link) for a in args))
    _one_line_exit_2(r)
    assert "input" in r.stderr
    assert (res.read_bytes(), base.read_bytes()) == before


def test_merge_and_run_do_not_write_over_their_inputs(tmp_path):
    pol = tmp_path / "pol.toml"
    pol.write_text('impls = ["naive:softplus"]\ndtypes = ["float16"]\nbudget = 1\n')
    text = pol.read_text()
    _one_line_exit_2(lossfuzz("run", "--config", str(pol), "--out", str(pol)))
    assert pol.read_text() == text
    shard = tmp_path / "s.json"
    r = lossfuzz("run", "--impl", "naive:softplus", "--dtype", "float16", "--budget", "1",
                 "--shard", "1/2", "--out", str(shard))  # fmt: skip
    assert r.returncode == 0, r.stderr
    kept = shard.read_bytes()
    _one_line_exit_2(lossfuzz("merge", str(shard), "-o", str(shard)))
    assert shard.read_bytes() == kept


def test_a_symbolic_link_at_the_journal_is_refused_and_its_target_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "r.json.journal").symlink_to(victim)
    r = lossfuzz("run", "--impl", "naive:softplus", "--dtype", "float16", "--budget", "1",
                 "--out", str(tmp_path / "r.json"))  # fmt: skip
    _one_line_exit_2(r)
    assert "symbolic link" in r.stderr and victim.read_text() == "precious"


def test_a_full_disk_is_one_line_and_leaves_no_half_written_file(files, tmp_path):
    import resource

    res, _ = files
    out = tmp_path / "report.html"

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))

    r = subprocess.run(
        [sys.executable, "-m", "lossfuzz", "report", str(res), "-o", str(out), "--no-plots"],
        capture_output=True, text=True, timeout=300, preexec_fn=small_files,
    )  # fmt: skip
    _one_line_exit_2(r)
    assert "cannot write" in r.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


# ------------------------------------------------------------------ bad values, bounded limits


@pytest.mark.parametrize(
    "args,message",
    [
        (["oracle", "softplus", "logits=1", "--digits", "-5"], "must be >="),
        (["oracle", "softplus", "logits=[[[[[[" * 1000], "not a number"),
        (["run", "--timeout", "1e7"], "seconds in"),
        (["run", "--timeout", "nan"], "seconds in"),
        (["run", "--memory-limit", "0"], "GiB"),
        (["run", "--impl", "naive:softplus", "--out", ""], "empty"),
        (["sweep", "--loss", "weighted_sigmoid_cross_entropy_with_logits", "--dtype", "float16",
          "--pos-weight", "-1"], "pos-weight"),
        (["sweep", "--loss", "weighted_sigmoid_cross_entropy_with_logits", "--dtype", "float16",
          "--pos-weight", "nan"], "pos-weight"),
    ],
    ids=["digits", "deep-list", "timeout-huge", "timeout-nan", "memory", "empty-out",
         "pos-weight-negative", "pos-weight-nan"],
)  # fmt: skip
def test_bad_values_are_one_line_and_exit_2(args, message, tmp_path):
    r = lossfuzz(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "policy,message",
    [
        ("budget = 'x'", "budget must be an integer"),
        ("limits = { 'naive:* [float16]' = 'abc' }", "must be a finite number"),
        ("known_failures = { impl = 'x' }", "known_failures must be a list"),
        ("slack = { relative = -1 }", "slack.relative"),
        ("batches = [0]", "batches"),
        ("impls = [1, 2]", "impls must be a list of strings"),
    ],
)
def test_a_policy_with_wrong_types_is_one_line_and_exit_2(policy, message, tmp_path):
    (tmp_path / "lossfuzz.toml").write_text(policy + "\n")
    r = lossfuzz("run", "--out", "r.json", cwd=tmp_path)
    _one_line_exit_2(r)
    assert message in r.stderr


def test_a_policy_naming_one_impl_as_a_string_means_that_impl(tmp_path):
    (tmp_path / "lossfuzz.toml").write_text(
        'impls = "naive:softplus"\ndtypes = ["float16"]\nbudget = 1\nquantities = ["value"]\n'
    )
    r = lossfuzz("run", "--out", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [c["impl"] for c in json.loads((tmp_path / "r.json").read_text())["cells"]] == [
        "naive:softplus"
    ]


def test_the_longest_timeout_is_accepted(tmp_path):
    out = str(tmp_path / "r.json")
    r = lossfuzz("run", "--impl", "naive:softplus", "--dtype", "float16", "--budget", "1",
                 "--quantity", "value", "--timeout", "604800", "--out", out)  # fmt: skip
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ what impls return

ANSWERS = textwrap.dedent(
    """
    import numpy as np, os, subprocess, time

    # each answers an ordinary input (the preflight's), and misbehaves beyond |logit| 10

    def softplus(logits):
        return np.log1p(np.exp(logits.astype(np.float64))).astype(logits.dtype)

    def ordinary(logits):
        return bool(np.all(np.abs(logits.astype(np.float64)) < 10))

    def huge(logits):
        return softplus(logits) if ordinary(logits) else np.zeros(10**8)

    def objects(logits):
        return softplus(logits) if ordinary(logits) else np.array([object()] * logits.size)

    def strings(logits):
        return softplus(logits) if ordinary(logits) else np.array(["x"] * logits.size)

    def complex_(logits):
        return softplus(logits) if ordinary(logits) else logits.astype(np.complex64) + 1j

    def forks(logits):
        subprocess.Popen(["sleep", "600"])
        return softplus(logits)

    def slow(logits):
        if not ordinary(logits):
            time.sleep(30)
        return softplus(logits)
    """
)


def _run_answers(tmp_path, fn, *extra, **kw):
    (tmp_path / "answers.py").write_text(ANSWERS)
    return lossfuzz(
        "run", "--impl", f"answers:{fn}", "--loss", "softplus", "--dtype", "float32",
        "--quantity", "value", "--budget", "2", "--out", str(tmp_path / f"{fn}.json"), *extra,
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    "fn,message",
    [
        ("huge", "returned 100000000 values"),
        ("objects", "expected floating point"),
        ("strings", "expected floating point"),
        ("complex_", "complex numbers"),
    ],
)
def test_answers_that_are_not_real_floats_of_the_right_size_are_error_findings(
    tmp_path, fn, message
):
    r = _run_answers(tmp_path, fn)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / f"{fn}.json").read_text())
    (cell,) = data["cells"]
    assert cell["counts"]["error"] > 0 and cell["worst_class"] == "error"
    assert any(message in (f["error"] or "") for f in data["findings"])


def _alive(pattern: str) -> bool:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return bool(out.stdout.strip())


def test_processes_an_impl_forks_do_not_outlive_the_run(tmp_path):
    assert not _alive("^sleep 600$")
    r = _run_answers(tmp_path, "forks")
    assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    assert not _alive("^sleep 600$")


def test_sigterm_stops_a_run_while_an_impl_is_still_answering(tmp_path):
    (tmp_path / "answers.py").write_text(ANSWERS)
    out = tmp_path / "slow.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossfuzz", "run", "--impl", "answers:slow", "--loss", "softplus",
         "--dtype", "float32", "--budget", "2", "--out", str(out)],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(12)  # the worker has started and is inside the 30 s sleep
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 10, "the run did not stop while the impl was answering"
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert json.loads(out.read_text())["complete"] is False


def test_a_worker_that_cannot_start_is_not_an_impl_crash(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\nif '--multiprocessing-fork' in sys.argv:\n    os._exit(7)\n"
    )
    r = lossfuzz("run", "--impl", "naive:softplus", "--dtype", "float16", "--budget", "1",
                 "--out", str(tmp_path / "r.json"), env={"PYTHONPATH": str(site)})  # fmt: skip
    assert r.returncode == 3, r.stdout + r.stderr
    assert "could not start" in r.stderr and "crash" not in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 4


def test_keras_on_another_backend_is_skipped_with_one_line(tmp_path):
    r = lossfuzz("run", "--impl", "keras:binary_crossentropy", "--dtype", "float32",
                 "--out", str(tmp_path / "r.json"), env={"KERAS_BACKEND": "jax"})  # fmt: skip
    assert r.returncode == 2 and "KERAS_BACKEND=jax" in r.stderr, r.stderr


def test_a_second_run_on_the_same_output_is_refused(tmp_path):
    (tmp_path / "answers.py").write_text(ANSWERS)
    out = tmp_path / "slow.json"
    first = subprocess.Popen(
        [sys.executable, "-m", "lossfuzz", "run", "--impl", "answers:slow", "--loss", "softplus",
         "--dtype", "float32", "--budget", "1", "--timeout", "60", "--out", str(out)],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(8)
        r = lossfuzz("run", "--impl", "naive:softplus", "--dtype", "float16", "--budget", "1",
                     "--out", str(out))  # fmt: skip
        _one_line_exit_2(r)
        assert "another lossfuzz run" in r.stderr
    finally:
        first.kill()
        first.wait()


def test_runs_write_nothing_into_the_working_directory_but_their_output(tmp_path):
    r = lossfuzz("run", "--impl", "naive:softplus", "--dtype", "float16", "--budget", "3",
                 "--out", "out/r.json", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.json"]


# ------------------------------------------------------------------ outputs escape data


def test_markdown_terminal_and_junit_escape_what_came_from_data(files, tmp_path):
    res, base = files
    data = json.loads(res.read_text())
    evil = "evil`|<b>x</b>\x1b[2J\x07"
    for c in data["cells"]:
        c["impl"] = c["impl"].replace("naive:", "naive:" + evil.replace(" ", ""))
    for f in data["findings"]:
        f["impl"] = f["impl"].replace("naive:", "naive:" + evil.replace(" ", ""))
        f["message"] = evil + f["message"]
        f["reproducer"] = evil + f["reproducer"]
    for c in data["cells"]:
        c["finite"]["counts"]["crash"] = 1  # a regression, so the gate prints the cells
    res.write_text(json.dumps(data))
    base_data = json.loads(base.read_text())
    base_data["cells"] = {
        k.replace("naive:", "naive:" + evil): {
            **v,
            "impl": v["impl"].replace("naive:", "naive:" + evil),
        }
        for k, v in base_data["cells"].items()
    }
    base.write_text(json.dumps(base_data))
    junit = tmp_path / "j.xml"
    g = lossfuzz("gate", str(res), "--baseline", str(base), "--junit", str(junit))
    assert g.returncode == 1, g.stdout + g.stderr
    assert "\x1b" not in g.stdout and "\x07" not in g.stdout and "\\x1b" in g.stdout
    ET.parse(junit)  # well-formed despite the control characters
    md = lossfuzz("gate", str(res), "--baseline", str(base), "--format", "markdown")
    rep = lossfuzz("report", str(res), "--format", "markdown")
    for text in (md.stdout, rep.stdout):
        assert "\x1b" not in text and "\\x1b" in text
        # markup from data appears only inside code spans, which Markdown shows literally
        outside = re.sub(r"(`+) .*? \1|`[^`]*`", "", text)
        assert "<b>" not in outside and "evil" not in outside
    rows = [line for line in rep.stdout.splitlines() if line.startswith("| ``")]
    assert rows and all(line.count(" | ") == 4 for line in rows)  # no cell split by a pipe


# ------------------------------------------------------------------ merge


def test_merge_refuses_impossible_shards_and_duplicated_cells(tmp_path, valid):
    a = dict(valid, shard={"index": 5, "count": 2})
    (tmp_path / "a.json").write_text(json.dumps(a))
    _one_line_exit_2(lossfuzz("merge", str(tmp_path / "a.json"), "-o", str(tmp_path / "m.json")))
    one, two = (
        dict(valid, shard={"index": 1, "count": 2}),
        dict(valid, shard={"index": 2, "count": 2}),
    )
    (tmp_path / "1.json").write_text(json.dumps(one))
    (tmp_path / "2.json").write_text(json.dumps(two))
    r = lossfuzz(
        "merge", str(tmp_path / "1.json"), str(tmp_path / "2.json"), "-o", str(tmp_path / "m.json")
    )
    _one_line_exit_2(r)
    assert "more than one shard" in r.stderr


def test_merge_of_thousands_of_cells_keeps_every_cell_and_finding(valid):
    from lossfuzz.harness import merge
    from lossfuzz.harness.results import Results

    shards = []
    for k in (1, 2):
        d = copy.deepcopy(valid)
        d["shard"] = {"index": k, "count": 2}
        cells, findings = [], []
        for j in range(1000):
            for c in valid["cells"]:
                cells.append(dict(c, impl=f"{c['impl']}#{k}.{j}"))
            for f in valid["findings"]:
                findings.append(dict(f, impl=f"{f['impl']}#{k}.{j}"))
        d["cells"], d["findings"] = cells, findings
        shards.append((f"s{k}", Results.from_json(d)))
    merged, warnings = merge.merge(shards)
    assert not warnings and len(merged.cells) == 2 * 1000 * len(valid["cells"])
    assert len(merged.findings) == 2 * 1000 * len(valid["findings"])


# ------------------------------------------------------------------ fuzzing the readers

SPECIALS = [None, True, False, -1, 0, 1e308, 2**70, "nan", "inf", "-inf", "", "x" * 300, [],
            {}, [1, [2, [3]]], {"a": {"b": None}}, "0x1.8p+1"]  # fmt: skip


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated(draw, data):
    data = copy.deepcopy(data)
    paths = [p for p in _paths(data) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent = data
        try:
            for k in path[:-1]:
                parent = parent[k]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(st.sampled_from(SPECIALS))
        except (KeyError, IndexError, TypeError):
            continue
    text = json.dumps(data, allow_nan=True)
    tail = draw(st.sampled_from(["", "", "", "NaN", "[" * 100, "1e999", "9" * 5000]))
    if tail and draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))] + tail  # torn, or garbage appended
    return text


def _main(*args) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, err.getvalue()


def test_every_reading_command_survives_mutated_results_files(valid, tmp_path_factory):
    base_dir = tmp_path_factory.mktemp("fuzz")
    good = base_dir / "good.json"
    good.write_text(json.dumps(valid))
    assert _main("baseline", str(good), "-o", str(base_dir / "base.json"))[0] == 0

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(
        text=mutated(valid),
        command=st.sampled_from(["report-md", "baseline", "gate", "repro", "merge"]),
    )
    def check(text, command):
        bad = base_dir / "bad.json"
        bad.write_text(text)
        out = base_dir / "out"
        args = {
            "report-md": ["report", str(bad), "--format", "markdown"],
            "baseline": ["baseline", str(bad), "-o", str(out)],
            "gate": ["gate", str(bad), "--baseline", str(base_dir / "base.json")],
            "repro": ["repro", str(bad), "--no-isolation", "--finding", "0"],
            "merge": ["merge", str(bad), "-o", str(out)],
        }[command]
        code, err = _main(*args)
        assert code in (0, 1, 2), (command, code, err)
        assert "Traceback" not in err

    check()
