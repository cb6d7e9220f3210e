"""The typed results model: one name and one parse per cell, v1 files read, v2 round-trips."""

import json
from pathlib import Path

import pytest

from lossfuzz.harness import campaign
from lossfuzz.harness.results import CellKey, Quantity, Results, ResultsError

V1 = Path(__file__).parent / "data" / "results-v1.json"  # written by lossfuzz 0.1.0


@pytest.mark.parametrize(
    "key,name",
    [
        (CellKey("torch:softplus", "float32"), "torch:softplus [float32]"),
        (CellKey("user:m:f", "float16", Quantity.grad("labels")), "user:m:f d/dlabels [float16]"),
        (
            CellKey("tf:x", "bfloat16", Quantity.reduce("sum", 1000000)),
            "tf:x sum of 1000000 [bfloat16]",
        ),
    ],
)
def test_a_cell_has_one_name_and_parsing_it_gives_the_key_back(key, name):
    assert key.name == name and CellKey.parse(name) == key


@pytest.mark.parametrize("name", ["torch:x", "torch:x [float8]", "torch:x d/dz [float32]", ""])
def test_what_is_not_a_cell_name_does_not_parse(name):
    with pytest.raises(ValueError):
        CellKey.parse(name)


def test_a_quantity_is_one_of_three_kinds_with_what_each_needs():
    for bad in (
        dict(kind="grad"),
        dict(kind="reduction", reduction="max", batch=3),
        dict(kind="value", wrt="logits"),
        dict(kind="reduction", reduction="mean", batch=0),
    ):
        with pytest.raises(ValueError):
            Quantity(**bad)


def test_cell_keys_sort_by_impl_dtype_then_values_gradients_reductions():
    keys = [
        CellKey("a", "float16", Quantity.reduce("mean", 10)),
        CellKey("a", "float16", Quantity.grad("logits")),
        CellKey("a", "float16"),
    ]
    assert sorted(keys) == keys[::-1]


def test_a_v1_results_file_is_read_into_the_same_cells_and_findings():
    raw = json.loads(V1.read_text())
    data = Results.load(str(V1))
    assert [c.key.name for c in data.cells] == [_v1_name(c) for c in raw["cells"]]
    assert len(data.findings) == len(raw["findings"])
    for f, r in zip(data.findings, raw["findings"]):
        assert f.cls == r["class"] and f.message == r["message"] and f.reproducer == r["reproducer"]
        # inputs come back bit for bit
        assert f.inputs.to_json(f.dtype) == r["inputs"]
    grad = next(c for c in data.cells if c.quantity.kind == "grad")
    assert grad.quantity.wrt == "logits" and grad.autodiff == "torch.autograd"


def _v1_name(c):
    q = c.get("quantity")
    if q == "grad":
        return f"{c['impl']} d/d{c['wrt']} [{c['dtype']}]"
    if q == "reduction":
        return f"{c['impl']} {c['reduction']} of {c['batch']} [{c['dtype']}]"
    return f"{c['impl']} [{c['dtype']}]"


def test_results_round_trip_through_v2_json_unchanged():
    sel = campaign.select(
        impls=("naive:sigmoid_then_log", "torch:binary_cross_entropy_with_logits"),
        dtypes=("float16",),
        batches=(10,),
    )
    data = campaign.run(sel, budget=2, seed=0)
    written = data.to_json()
    again = Results.from_json(json.loads(json.dumps(written)))
    assert again.to_json() == written  # read and written again, nothing changes
    assert written["schema"] == "lossfuzz/results/2"
    assert {c.quantity.kind for c in again.cells} == {"value", "grad", "reduction"}
    for c in again.cells:
        mine = [f.to_json() for f in again.findings_of(c.key)]
        assert mine == [f.to_json() for f in data.findings if f.key == c.key]


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d["cells"][0].update(max_ulp="nan"), "cells[0].max_ulp: is NaN"),
        (lambda d: d["cells"][0].update(counts=[1, 2]), "cells[0].counts: expected an object"),
        (lambda d: d["cells"][0]["counts"].update(weird=1), "unknown class 'weird'"),
        (lambda d: d["cells"][0].update(dtype="float8"), "cells[0].dtype: 'float8' is not one of"),
        (lambda d: d["findings"][0].update({"class": "bad"}), "findings[0].class"),
        (lambda d: d["findings"][0]["inputs"]["logits"].update(hex=["0xzz"]), "expected a number"),
        (lambda d: d["findings"][0].update(ulp=-1), "is below 0"),
        (lambda d: d["cells"][0].update(cases=True), "expected an integer, got a boolean"),
    ],
)
def test_an_invalid_field_is_one_error_naming_the_field(change, message):
    raw = json.loads(V1.read_text())
    change(raw)
    with pytest.raises(ResultsError) as exc:
        Results.from_json(raw, "r.json")
    assert str(exc.value).startswith("r.json: ") and message in str(exc.value), str(exc.value)
