"""`lossfuzz sweep`, `--shard` and `lossfuzz merge`: exhaustive, resumable, splittable."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli import ROOT, lossfuzz

from lossfuzz import oracles
from lossfuzz.harness import sweep
from lossfuzz.harness.ulp import from_ordinals, ordinals

SIGMOID_CE = "sigmoid_cross_entropy_with_logits"


def _load(path):
    return json.loads(path.read_text())


def _strip(cells):
    return [{k: v for k, v in c.items() if k != "seconds"} for c in cells]


def test_ordinal_ranges_cover_every_finite_float_once():
    for dtype in ("float16", "bfloat16"):
        fmt = oracles.get_format(dtype)
        lo, hi = sweep.ordinal_range(dtype, None, "logits")
        xs = from_ordinals(np.arange(lo, hi + 1), fmt).astype(np.float64)
        assert np.isfinite(xs).all() and xs[0] == -fmt.max_finite and xs[-1] == fmt.max_finite
        assert np.all(np.diff(xs) > 0)  # every float once, in order (+0 and -0 are one point)
        assert np.array_equal(ordinals(xs, fmt), np.arange(lo, hi + 1))
    lo, hi = sweep.ordinal_range("float32", (-1.5, 2.0), "logits")
    xs = from_ordinals(np.array([lo, hi]), oracles.get_format("float32"))
    assert xs.tolist() == [-1.5, 2.0]
    lo, hi = sweep.ordinal_range("float16", None, "probs")
    assert from_ordinals(np.array([lo, hi]), oracles.get_format("float16")).tolist() == [0, 1]


# every finite float16 logit with labels 0 and 1, through three impls, in chunks of 20000
IMPLS = (
    "naive:sigmoid_then_log",
    "torch:binary_cross_entropy_with_logits",
    "naive:stable_sigmoid_ce",
)
SWEEP = ["sweep", "--loss", SIGMOID_CE, "--dtype", "float16", "--chunk", "20000"]
SWEEP += [arg for impl in IMPLS for arg in ("--impl", impl)]


@pytest.fixture(scope="module")
def float16_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s.json"
    r = lossfuzz(*SWEEP, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_a_float16_sweep_checks_every_finite_logit_with_each_label(float16_sweep):
    data = _load(float16_sweep)
    n_finite = 2 * (2**15 - 2**10) - 1  # both signs, less inf/NaN, one zero
    assert data["complete"] and len(data["cells"]) == 3
    for c in data["cells"]:
        assert c["cases"] == 2 * n_finite and sum(c["counts"].values()) == c["cases"]
        assert c["sweep"]["labels"] == [0.0, 1.0]
    by = {c["impl"]: c for c in data["cells"]}
    assert {"nan", "overflow"} <= set(by["naive:sigmoid_then_log"]["counts"])
    assert by["naive:stable_sigmoid_ce"]["worst_class"] in ("exact", "ok")
    # torch's log(1 + tiny): the sweep's max is the true maximum over all float16 logits
    torch_cell = by["torch:binary_cross_entropy_with_logits"]
    assert torch_cell["worst_class"] in ("inaccurate", "underflow")
    for f in data["findings"]:
        assert f["confirmed"] and f["reproducer"].startswith("# lossfuzz reproducer")


def test_the_sweep_maximum_is_the_maximum_over_the_set(float16_sweep):
    # score every float16 logit with label 0 directly for torch and compare the maxima
    from lossfuzz.harness.registry import get_impl
    from lossfuzz.harness.scoring import classify_fast
    from lossfuzz.oracles import fast

    fmt = oracles.get_format("float16")
    lo, hi = sweep.ordinal_range("float16", None, "logits")
    xs = from_ordinals(np.arange(lo, hi + 1), fmt)
    worst = 0.0
    for z in (0.0, 1.0):
        cast = {"logits": xs, "labels": np.full(xs.shape, z).astype(np.float16)}
        fv = fast.fast_values(SIGMOID_CE, "float16", cast)
        got = get_impl("torch:binary_cross_entropy_with_logits").answer(cast)
        _, ulp, _, _ = classify_fast(got.astype(np.float64), fv, fmt, 4.0, True)
        worst = max(worst, float(np.max(ulp)))
    cell = next(c for c in _load(float16_sweep)["cells"] if c["impl"].startswith("torch:binary"))
    from lossfuzz.harness.jsonio import to_float

    assert to_float(cell["max_ulp"]) == worst


def test_a_killed_sweep_resumes_from_its_journal(tmp_path, float16_sweep):
    out = tmp_path / "s.json"
    journal = out.with_name(out.name + ".journal")
    args = [*SWEEP, "--jobs", "1", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossfuzz", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (journal.exists() and len(journal.read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, "no chunk was journalled"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # after two chunks of four
    proc.wait()
    with journal.open("a") as f:
        f.write('{"chunk": 3, "summ')  # and a line torn by the kill
    r = lossfuzz(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert _strip(_load(out)["cells"]) == _strip(_load(float16_sweep)["cells"])
    assert _load(out)["findings"] == _load(float16_sweep)["findings"]
    assert not journal.exists()  # complete: every chunk is in the results
    journal.write_text(json.dumps({"schema": sweep.SWEEP_SCHEMA, "plan": {"loss": "x"}}) + "\n")
    other = lossfuzz(*args, "--resume")
    assert other.returncode == 2 and "another sweep" in other.stderr


def test_sweep_shards_merge_into_the_unsharded_sweep(tmp_path, float16_sweep):
    parts = []
    for k in (1, 2, 3):
        out = tmp_path / f"s{k}.json"
        r = lossfuzz(*SWEEP, "--shard", f"{k}/3", "--out", str(out))
        assert r.returncode == 0, r.stderr
        parts.append(str(out))
    merged = tmp_path / "m.json"
    r = lossfuzz("merge", *parts, "-o", str(merged))
    assert r.returncode == 0, r.stderr
    a, b = _load(merged), _load(float16_sweep)
    assert _strip(a["cells"]) == _strip(b["cells"]) and a["findings"] == b["findings"]
    assert a["complete"]
    r = lossfuzz("merge", *parts[:2], "-o", str(tmp_path / "part.json"))
    assert r.returncode == 0 and "shard 3/3 is missing" in r.stderr
    assert _load(tmp_path / "part.json")["complete"] is False


def test_run_shards_merge_into_the_unsharded_run(tmp_path):
    args = ["run", "--impl", "tf:softplus", "--impl", "naive:softplus", "--impl", "torch:sigmoid"]
    args += ["--dtype", "float16", "--dtype", "float32", "--budget", "4"]
    assert lossfuzz(*args, "--out", str(tmp_path / "all.json")).returncode == 0
    for k in (1, 2):
        r = lossfuzz(*args, "--shard", f"{k}/2", "--out", str(tmp_path / f"{k}.json"))
        assert r.returncode == 0, r.stderr
    r = lossfuzz(
        "merge", str(tmp_path / "1.json"), str(tmp_path / "2.json"), "-o", str(tmp_path / "m.json")
    )
    assert r.returncode == 0, r.stderr
    a, b = _load(tmp_path / "m.json"), _load(tmp_path / "all.json")
    assert _strip(a["cells"]) == _strip(b["cells"]) and a["findings"] == b["findings"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--loss", "softmax", "--dtype", "float16"], "fast reference path"),
        (["--loss", SIGMOID_CE, "--dtype", "float32"], "--range LO,HI or --all"),
        (["--loss", SIGMOID_CE, "--dtype", "float16", "--labels", "0,2"], "outside [0, 1]"),
        (["--loss", SIGMOID_CE, "--dtype", "float16", "--range", "3,1"], "LO must be <= HI"),
        (["--loss", SIGMOID_CE, "--dtype", "float16", "--shard", "3/2"], "1 <= K <= N"),
        (
            ["--loss", SIGMOID_CE, "--dtype", "float16", "--impl", "tf:softplus"],
            "computes softplus",
        ),
    ],
)
def test_bad_sweeps_get_one_line_and_exit_2(args, message, tmp_path):
    r = lossfuzz("sweep", *args, "--out", str(tmp_path / "x.json"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.json").exists()


def test_merge_refuses_files_that_are_not_shards_of_one_run(tmp_path, float16_sweep):
    r = lossfuzz("merge", str(float16_sweep), "-o", str(tmp_path / "m.json"))
    assert r.returncode == 2 and "not a shard" in r.stderr
