"""`lossfuzz triage`: one report per distinct cause, across impls and dtypes."""

import json

import pytest
from cli import lossfuzz

from lossfuzz.harness import campaign, triage

IMPLS = (
    "tf:sigmoid_cross_entropy_with_logits",
    "tf-xla:sigmoid_cross_entropy_with_logits",
    "keras:binary_crossentropy_from_logits",
    "torch:binary_cross_entropy_with_logits",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    sel = campaign.select(impls=IMPLS, dtypes=("float16", "float32"), quantities=("value",))
    data = campaign.run(sel, budget=0, seed=0)
    path = tmp_path_factory.mktemp("triage") / "r.json"
    path.write_text(json.dumps(data.to_json()))
    return data, path


def test_one_cause_in_tf_xla_and_keras_and_two_dtypes_is_one_bug(results):
    data, _ = results
    bugs = triage.bugs(data)
    nan = next(
        b
        for b in bugs
        if b.family == "TensorFlow/Keras"
        and b.cls == "nan"
        and b.group == ("logits=-inf", "labels=0")
    )
    assert {"tf:sigmoid_cross_entropy_with_logits", "keras:binary_crossentropy_from_logits"} <= set(
        nan.impls
    )
    assert nan.dtypes == ["float16", "float32"]
    assert (
        nan.representative.impl.startswith(("tf:", "keras:"))
        and nan.representative.dtype == "float32"
    )
    torch = [b for b in bugs if b.family == "PyTorch" and b.cls == "nan"]
    # PyTorch's NaNs are other bugs than TensorFlow's, and each input regime its own
    assert {("logits=-inf", "labels=0"), ("logits=+inf", "labels=1")} <= {b.group for b in torch}
    assert len(bugs) < len(data.findings)


def test_triage_writes_a_report_per_bug_and_an_index_by_severity(results, tmp_path):
    data, path = results
    out = tmp_path / "triage"
    r = lossfuzz("triage", str(path), "-o", str(out), "--no-isolation")
    assert r.returncode == 0, r.stderr
    index = (out / "index.md").read_text()
    assert "## Bugs" in index and "## Documented behaviour" in index
    reports = sorted(out.glob("[0-9]*.md"))
    assert len(reports) == len(triage.bugs(data))
    text = reports[0].read_text()
    for part in (
        "## Minimal reproducer",
        "## Versions",
        "## Does it still reproduce?",
        "```python",
    ):
        assert part in text, part
    assert "torch 2.13" in text and "yes" in text.split("## Does it still reproduce?")[1]
    nan = next(p for p in reports if "nan-at-logits-inf-labels-1" in p.name and "pytorch" in p.name)
    assert "https://pytorch.org/docs" in nan.read_text()  # what the documentation says


def test_triage_of_a_bad_file_or_into_a_file_is_one_line(tmp_path, results):
    _, path = results
    (tmp_path / "f").write_text("x")
    r = lossfuzz("triage", str(path), "-o", str(tmp_path / "f"), "--no-repro")
    assert r.returncode == 2 and "not a directory" in r.stderr
    r = lossfuzz("triage", str(tmp_path / "f"), "-o", str(tmp_path / "t"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
