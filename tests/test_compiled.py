"""Compiled twins (tf-xla, keras-xla, torch-compile): registration, the compiled code
really running, eager-versus-compiled disagreements and their reproducers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli import lossfuzz, run_reproducer
from independent import same

from lossfuzz.harness import campaign
from lossfuzz.harness.backends import modes
from lossfuzz.harness.backends import torch as torch_backend
from lossfuzz.harness.registry import get_impl, load_all, skipped_reason
from lossfuzz.harness.reproducer import twin_reproducer
from lossfuzz.harness.results import Quantity
from lossfuzz.harness.scoring import Engine, score


def test_every_eager_framework_call_has_its_compiled_twins():
    impls = load_all()
    eager = [i for i in impls.values() if i.backend in ("tf", "keras", "torch") and i.call]
    assert len(eager) >= 28
    for impl in eager:
        twins = [t for t in impls.values() if t.eager == impl.id]
        assert [t.id.partition(":")[0] for t in twins] == [
            m.name for m in modes.MODES.values() if m.base == impl.backend
        ]
        for t in twins:
            assert t.id.partition(":")[2] == impl.id.partition(":")[2]
            assert (t.loss, t.call, t.dtypes, t.deviations) == (
                impl.loss,
                impl.call,
                impl.dtypes,
                impl.deviations,
            )
            assert t.gradients == impl.gradients


@pytest.mark.parametrize(
    "eager_id,dtype,inputs,eager_value,compiled_value",
    [
        # Inductor computes float16 in float32 and rounds once: eager PyTorch underflows
        (
            "torch:binary_cross_entropy_with_logits",
            "float16",
            {"logits": [-9.453125], "labels": [0.0]},
            0.0,
            7.82012939453125e-05,
        ),
        # XLA keeps a -inf logit out of the sum that eager TF turns into NaN
        (
            "tf:softmax_cross_entropy_with_logits",
            "float32",
            {"logits": [[0.0, -np.inf]], "labels": [[1.0, 0.0]], "axis": -1},
            np.nan,
            0.0,
        ),
    ],
)
def test_a_compiled_twin_runs_compiled_code_and_its_reproducer_shows_both(
    eager_id, dtype, inputs, eager_value, compiled_value, tmp_path
):
    eager = get_impl(eager_id)
    twin = next(i for i in load_all().values() if i.eager == eager_id)
    fmt_inputs = {
        k: (np.asarray(v, dtype=np.float64).astype(dtype) if isinstance(v, list) else v)
        for k, v in inputs.items()
    }
    a = score(Engine(), twin, dtype, fmt_inputs, 1.0, exact=True)[0]
    b = score(Engine(), eager, dtype, fmt_inputs, 1.0, exact=True)[0]
    assert same(a.got, compiled_value) and same(b.got, eager_value)
    code = twin_reproducer(twin, eager, dtype, a.inputs, "x", float(a.reference))
    out = run_reproducer(code, tmp_path)
    printed = {line.split(":")[0]: float(line.split()[-1]) for line in out.splitlines()[:2]}
    assert same(printed["eager"], eager_value) and same(printed["compiled"], compiled_value)


def test_xla_pads_batches_to_powers_of_two_without_changing_the_answers():
    x = np.array([-100.0, -20.0, 0.5, 3.0, 20.0], dtype=np.float32)
    inputs = {"logits": x, "labels": np.array([0, 1, 0.25, 1, 0], dtype=np.float32)}
    padded, n = modes.pad_rows(inputs)
    assert n == 5 and padded["logits"].shape == (8,)
    twin = get_impl("tf-xla:sigmoid_cross_entropy_with_logits")
    whole = twin.answer(inputs)
    assert whole.shape == (5,)
    for row in range(5):
        alone = twin.answer({k: v[row : row + 1] for k, v in inputs.items()})
        assert same(float(alone[0]), float(whole[row]))


def test_compiled_gradients_are_taken_through_the_compiler():
    impl = get_impl("tf-xla:sigmoid_cross_entropy_with_logits")
    assert "jit_compile=True" in impl.autodiff.name or "jit_compile" in impl.autodiff.define
    inputs = {"logits": np.array([0.0, 2.0], np.float32), "labels": np.array([1, 0], np.float32)}
    grad = impl.answer(inputs, Quantity.grad("logits"))
    assert grad.tolist() == pytest.approx([-0.5, 0.8807970779778823], rel=1e-6)


def test_a_campaign_compares_each_compiled_cell_with_its_eager_impl():
    sel = campaign.select(
        impls=("torch-compile:binary_cross_entropy_with_logits",),
        dtypes=("float16",),
        quantities=("value",),
    )
    data = campaign.run(sel, budget=5, seed=0).to_json()
    (cell,) = data["cells"]
    assert cell["twin"] == "torch:binary_cross_entropy_with_logits"
    assert cell["mode"] == "torch-compile"
    assert cell["compared"] == cell["cases"] and cell["disagreements"] > 0
    kinds = {(d["compiled"]["class"], d["eager"]["class"]) for d in cell["disagreement_cases"]}
    assert ("exact", "underflow") in kinds or ("ok", "underflow") in kinds
    for d in cell["disagreement_cases"]:
        assert d["compiled"]["got"] != d["eager"]["got"]
        assert "torch.compile" in d["reproducer"] and "eager =" in d["reproducer"]


def test_without_a_cxx_compiler_torch_compile_is_skipped_with_one_line(monkeypatch):
    monkeypatch.setattr(torch_backend.shutil, "which", lambda name: None)
    reason = skipped_reason(get_impl("torch-compile:softplus"))
    assert reason and "C++ compiler" in reason and "\n" not in reason
    assert skipped_reason(get_impl("tf-xla:softplus")) is None


def test_the_report_puts_eager_and_compiled_side_by_side(tmp_path):
    out = tmp_path / "r.json"
    args = ["run", "--out", str(out), "--budget", "3", "--dtype", "float16", "--quantity", "value"]
    for i in ("torch:", "torch-compile:"):
        args += ["--impl", i + "binary_cross_entropy_with_logits"]
    assert lossfuzz(*args).returncode in (0, 1)
    html = tmp_path / "r.html"
    assert lossfuzz("report", str(out), "-o", str(html)).returncode == 0
    page = html.read_text()
    assert 'id="twins-table"' in page and "kinds of disagreement" in page
    cells = json.loads(out.read_text())["cells"]
    assert {c["impl"] for c in cells} == {
        "torch:binary_cross_entropy_with_logits",
        "torch-compile:binary_cross_entropy_with_logits",
    }


def test_gpu_twins_are_skipped_with_one_line_without_a_gpu():
    import tensorflow as tf
    import torch

    impls = load_all()
    for prefix, base in (("torch-cuda:", "torch:"), ("tf-gpu:", "tf:")):
        twins = [i for i in impls.values() if i.id.startswith(prefix)]
        eager = [i for i in impls.values() if i.id.startswith(base) and i.call]
        assert sorted(t.eager for t in twins) == sorted(i.id for i in eager)
    has_cuda = torch.cuda.is_available()
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    for impl_id, present in (("torch-cuda:softplus", has_cuda), ("tf-gpu:softplus", has_gpu)):
        reason = skipped_reason(get_impl(impl_id))
        assert (reason is None) == present
        if not present:
            assert "\n" not in reason and ("GPU" in reason or "CUDA" in reason)
    if not has_cuda:
        run = lossfuzz("run", "--impl", "torch-cuda:softplus", "--out", "/dev/null/x.json")
        assert run.returncode == 2
        assert run.stderr.count("skipped: no CUDA device") == 1
        assert "Traceback" not in run.stderr
