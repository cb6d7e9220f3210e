"""What a new user meets first: progress in a log, user code from the working directory,
names that are found or suggested, the impl listing, and exit codes that mean one thing."""

import json
import re
import subprocess
import sys
import time

from cli import lossfuzz

PROGRESS = re.compile(
    r"^\[(\d+)/(\d+) cells, \d+%\] elapsed (\d+:\d\d), ETA (\S+), (\d+) findings", re.M
)


def test_a_campaign_piped_to_a_file_prints_progress_lines(tmp_path):
    """Not a terminal: plain lines with cells done of the total, elapsed time, ETA and
    findings, at least one every 10 s of the run, and a last one when it ends."""
    log = tmp_path / "log.txt"
    args = [sys.executable, "-m", "lossfuzz", "run", "--impl", "naive:sigmoid_then_log",
            "--impl", "torch:binary_cross_entropy_with_logits", "--impl", "tf:softplus",
            "--dtype", "float16", "--dtype", "float32", "--budget", "5",
            "-o", str(tmp_path / "r.json")]  # fmt: skip
    start = time.monotonic()
    with log.open("w") as f:
        r = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, timeout=600)
    wall = time.monotonic() - start
    assert r.returncode == 0, log.read_text()
    lines = PROGRESS.findall(log.read_text())
    assert lines, log.read_text()
    done, total, _, _, findings = lines[-1]
    assert done == total and int(total) >= 6 and int(findings) > 0
    assert len(lines) >= int(wall // 10)  # one at least every 10 s, plus the last
    assert "\x1b[" not in log.read_text()  # no terminal control codes in a log


def test_quiet_prints_no_progress_and_verbose_a_line_per_cell(tmp_path):
    base = ("run", "--impl", "naive:softplus", "--dtype", "float16", "--dtype", "float32",
            "--budget", "2")  # fmt: skip
    quiet = lossfuzz(*base, "-q", "-o", str(tmp_path / "q.json"))
    assert quiet.returncode == 0, quiet.stderr
    assert not PROGRESS.search(quiet.stderr + quiet.stdout)
    verbose = lossfuzz(*base, "-v", "-o", str(tmp_path / "v.json"))
    assert verbose.returncode == 0, verbose.stderr
    assert len(re.findall(r"^done naive:softplus", verbose.stderr, re.M)) == 4  # 2 dtypes x 2


def test_impl_module_function_imports_from_the_working_directory(tmp_path):
    """As pytest does: a module beside the user, found without PYTHONPATH."""
    (tmp_path / "team_losses.py").write_text(
        "import numpy as np\n\ndef softplus(x):\n    return np.log(1 + np.exp(x))\n"
    )
    out = tmp_path / "r.json"
    r = lossfuzz("run", "--impl", "team_losses:softplus", "--loss", "softplus",
                 "--dtype", "float32", "--budget", "3", "-o", str(out),
                 env={"PYTHONPATH": ""}, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert [c["impl"] for c in data["cells"]] == ["user:team_losses:softplus"]
    assert {f["class"] for f in data["findings"]} >= {"overflow"}  # exp(x) overflows at 89


def test_did_you_mean_knows_abbreviations_and_words(tmp_path):
    r = lossfuzz("run", "--impl", "torch:bce", cwd=tmp_path)
    assert r.returncode == 2
    suggested = re.findall(r"'([^']+)'", r.stderr.split("did you mean", 1)[1])
    assert suggested and all(s.startswith("torch:b") for s in suggested), r.stderr
    assert "torch:binary_cross_entropy" in suggested
    r = lossfuzz("run", "--loss", "sigmoid_crossentropy", cwd=tmp_path)
    assert "did you mean 'sigmoid_cross_entropy_with_logits'" in r.stderr
    r = lossfuzz("impls", "--framework", "pytorch", cwd=tmp_path)
    assert r.returncode == 2 and "did you mean 'torch'" in r.stderr


def test_impls_lists_ids_with_loss_framework_mode_dtypes_and_availability():
    r = lossfuzz("impls", "--loss", "softplus", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {row["loss"] for row in rows} == {"softplus"}
    by_id = {row["id"]: row for row in rows}
    torch = by_id["torch:softplus"]
    assert torch["framework"] == "torch" and torch["mode"] == "eager"
    assert torch["dtypes"] == ["float16", "bfloat16", "float32", "float64"]
    assert torch["available"] is True and torch["deviations"]  # Softplus' threshold
    assert by_id["torch-cuda:softplus"]["available"] is False  # no GPU here or in CI
    assert "no CUDA" in by_id["torch-cuda:softplus"]["skipped"]
    text = lossfuzz("impls", "--framework", "tf")
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["impl", "loss", "from"]
    assert all(line.split()[2] == "tf" for line in lines[1:])
    assert re.search(r"^\d+ impls, \d+ available here$", text.stderr, re.M)


def test_every_subcommand_has_help_with_defaults_and_examples():
    for command in ("run", "report", "gate", "baseline", "impls", "repro", "triage", "merge"):
        r = lossfuzz(command, "--help")
        assert r.returncode == 0, (command, r.stderr)
        assert "examples:" in r.stdout, command
        options = re.findall(r"^  (-[^\n]*)\n?(.*)$", r.stdout, re.M)
        assert options, command
    run = lossfuzz("run", "--help").stdout
    assert "-o OUT, --output OUT, --out OUT" in run or "--output" in run
    assert "(default: 0)" in run  # the seed
    assert "--junitxml" in lossfuzz("gate", "--help").stdout
