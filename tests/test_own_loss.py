"""Your own loss, as you wrote it: losses written the way people write them (batch means,
their own argument names and order, their framework's tensors), checked from the CLI and
the plugin without being edited; bad descriptions get one line and exit 2."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from cli import lossfuzz as run_lossfuzz

import lossfuzz

LOSSES = textwrap.dedent(
    """
    import numpy as np
    import torch


    def torch_bce(input, target):
        # the textbook formula, as in many training scripts
        p = torch.sigmoid(input)
        return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


    def numpy_bce(y_hat, y):
        p = 1 / (1 + np.exp(-y_hat))
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))


    def keras_style(y_true, y_pred):
        import tensorflow as tf

        return tf.reduce_mean(
            tf.nn.relu(y_pred) - y_pred * y_true + tf.math.log(1 + tf.exp(-tf.abs(y_pred)))
        )


    def jax_positional(x, z):
        import jax.numpy as jnp

        return jnp.sum(jnp.maximum(x, 0) - x * z + jnp.log(1 + jnp.exp(-jnp.abs(x))))


    def softmax_ce(logits, target):
        # sparse labels, the batch mean
        logp = torch.log(torch.softmax(logits, dim=-1))
        return -logp.gather(-1, target.long().unsqueeze(-1)).mean()


    def three_args(a, b, c):
        return a


    def always_raises(logits, labels):
        raise RuntimeError("this loss is not finished")


    def square_answer(logits, labels):
        return torch.zeros(3, 3)


    def crashes(logits, labels):
        import os

        os.abort()
    """
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("team")
    (d / "team_losses.py").write_text(LOSSES)
    sys.path.insert(0, str(d))
    yield d
    sys.path.remove(str(d))
    sys.modules.pop("team_losses", None)


def _run(workdir, fn, *args, loss="sigmoid_cross_entropy_with_logits", budget="5", name=None):
    out = workdir / f"{name or fn}.json"
    r = run_lossfuzz("run", "--impl", f"team_losses:{fn}", "--loss", loss, "--dtype", "float32",
                     "--budget", budget, "-q", "-o", str(out), *args, cwd=workdir)  # fmt: skip
    return r, (json.loads(out.read_text()) if out.exists() else None)


def test_a_torch_batch_mean_named_input_target_from_the_cli(workdir):
    """Values and gradients, scored against the exact mean of the batch; the NaN gradient
    of torch.log(torch.sigmoid(x)) at large negative x, where the exact gradient is -1."""
    r, data = _run(workdir, "torch_bce")
    assert r.returncode == 0, r.stderr
    cells = {(c["quantity"], c.get("wrt"), c.get("reduction")) for c in data["cells"]}
    assert cells == {("reduction", None, "mean"), ("grad", "logits", "mean"),
                     ("grad", "labels", "mean")}  # fmt: skip
    value = [f for f in data["findings"] if f["quantity"] == "reduction" and not f["special"]]
    assert {"nan", "overflow"} <= {f["class"] for f in value}
    nan_grads = [
        f
        for f in data["findings"]
        if f["wrt"] == "logits" and f["class"] == "nan" and not f["special"]
        and float(f["inputs"]["logits"]["repr"][0]) < -100
        and f["inputs"]["labels"]["repr"] == ["1.0"]
    ]  # fmt: skip
    assert nan_grads, [f["message"] for f in data["findings"]]
    assert float(nan_grads[0]["exact"]) == pytest.approx(-1.0)
    assert "torch_bce(input=logits, target=labels)" in nan_grads[0]["reproducer"]
    assert "torch.autograd.grad" in nan_grads[0]["reproducer"]


def test_a_numpy_loss_named_y_hat_y_per_row(workdir):
    r, data = _run(workdir, "numpy_bce")
    assert r.returncode == 0, r.stderr
    assert [(c["quantity"], c.get("reduction")) for c in data["cells"]] == [("value", None)]
    assert {"nan", "overflow"} <= {f["class"] for f in data["findings"]}
    assert "numpy has no autodiff" in r.stderr  # said once, no gradient cells


def test_a_sparse_softmax_loss_with_its_own_reduction(workdir):
    r, data = _run(workdir, "softmax_ce", loss="sparse_softmax_cross_entropy_with_logits")
    assert r.returncode == 0, r.stderr
    assert {c.get("reduction") for c in data["cells"]} == {"mean"}
    assert any(c.get("wrt") == "logits" for c in data["cells"])
    # log(softmax) underflows to -inf where a logit is far below the others
    assert {"overflow", "nan"} & {f["class"] for f in data["findings"]}


def test_the_plugin_takes_a_keras_style_y_true_y_pred_order(workdir):
    import team_losses

    with pytest.raises(lossfuzz.LossCheckFailed) as failed:
        lossfuzz.check(team_losses.keras_style, loss="sigmoid_cross_entropy_with_logits",
                       budget=5, allow_infinity=False)  # fmt: skip
    text = str(failed.value)
    assert "keras_style(y_pred=logits, y_true=labels)" in text
    assert "special values" not in text.split("==", 1)[1]  # only finite inputs in scope
    assert "underflow" in text or "inaccurate" in text


def test_the_plugin_checks_a_jax_positional_sum_and_its_gradient(workdir):
    import team_losses

    with pytest.raises(lossfuzz.LossCheckFailed) as values:
        lossfuzz.check(team_losses.jax_positional, loss="sigmoid_cross_entropy_with_logits",
                       budget=5)  # fmt: skip
    assert "jax_positional(logits, labels)" in str(values.value)
    assert "sum of the batch" in str(values.value)
    with pytest.raises(lossfuzz.LossCheckFailed) as grads:
        lossfuzz.check(team_losses.jax_positional, loss="sigmoid_cross_entropy_with_logits",
                       budget=5, quantity="grad")  # fmt: skip
    assert "jax.vjp" in str(grads.value)
    assert all(f.key.quantity.kind == "grad" for f in grads.value.findings)


@pytest.mark.parametrize(
    "fn,extra,message",
    [
        ("three_args", (), "cannot tell which of (a, b, c) are logits, labels: give --args"),
        ("torch_bce", ("--args", "logits=input,labels=tgt"), "takes (input, target)"),
        ("always_raises", (), "RuntimeError: this loss is not finished"),
        ("square_answer", (), "returned shape (3, 3) for 3 rows"),
        ("crashes", (), "crashed on an ordinary input (killed by SIGABRT)"),
        ("torch_bce", ("--reduction", "none"), "but it returns its batch mean"),
        ("torch_bce", ("--framework", "mxnet"), "invalid choice: 'mxnet'"),
        ("no_such_function", (), "has no attribute 'no_such_function'"),
    ],
)
def test_each_bad_description_is_one_line_and_exit_2(workdir, fn, extra, message):
    r, data = _run(workdir, fn, *extra, name=f"bad-{fn}-{len(extra)}-{extra[:1]}")
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert data is None  # nothing written


def test_the_policy_file_describes_the_team_loss_once(workdir):
    (workdir / "lossfuzz.toml").write_text(
        textwrap.dedent(
            """
            impls = ["team_losses:torch_bce"]
            losses = ["sigmoid_cross_entropy_with_logits"]
            dtypes = ["float32"]
            quantities = ["value"]
            budget = 3
            allow_infinity = false

            [user_impls."team_losses:torch_bce"]
            framework = "torch"
            args = {logits = "input", labels = "target"}
            reduction = "mean"
            """
        )
    )
    try:
        out = workdir / "policy.json"
        r = run_lossfuzz("run", "--config", "lossfuzz.toml", "-q", "-o", str(out), cwd=workdir)
        assert r.returncode == 0, r.stderr
        data = json.loads(out.read_text())
        assert [c.get("reduction") for c in data["cells"]] == ["mean"]
        assert data["findings"] and not any(f["special"] for f in data["findings"])
    finally:
        (workdir / "lossfuzz.toml").unlink()


def test_seconds_ends_the_run_on_time_with_a_readable_results_file(tmp_path):
    out = tmp_path / "r.json"
    start = time.monotonic()
    r = run_lossfuzz("run", "--impl", "naive:sigmoid_then_log", "--impl", "torch:cross_entropy",
                     "--seconds", "5", "-q", "-o", str(out))  # fmt: skip
    wall = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert wall < 15, wall
    data = lossfuzz.load_results(out)
    assert data.cells and all(c.cases > 0 for c in data.cells)


def test_sigterm_stops_a_hypothesis_search_and_keeps_what_finished(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossfuzz", "run", "--impl", "naive:sigmoid_then_log",
         "--budget", "100000", "-q", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(12)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 10, err
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert json.loads(out.read_text())["complete"] is False
