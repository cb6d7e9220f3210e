"""Campaign profiles (harness/profiles.py): which cells each runs, and how a run uses them."""

import json

from cli import lossfuzz

from lossfuzz.harness import campaign, profiles
from lossfuzz.harness.results import Results

IMPL = "naive:stable_sigmoid_ce"


def _cells(name):
    p = profiles.get(name)
    sel = campaign.select(batches=p.batches, opt_in=p.opt_in or None)
    return {c.key.name: c for c in sel.cells if p.keeps(c)}


def test_quick_is_inside_default_and_default_inside_deep():
    quick, default, deep = _cells("quick"), _cells("default"), _cells("deep")
    assert set(quick) < set(default) < set(deep)
    assert len(quick) < len(default) / 4  # quick is a first look, not a campaign
    assert all(c.quantity.kind == "value" and c.impl.mode is None for c in quick.values())
    assert {c.dtype for c in quick.values()} == {"float32", "float16"}


def test_default_leaves_compiled_cells_beyond_float32_and_million_rows_to_deep():
    default, deep = _cells("default"), _cells("deep")
    left = [deep[k] for k in set(deep) - set(default)]
    assert left
    for c in left:
        compiled_beyond_f32 = c.impl.mode in profiles.COMPILED and c.dtype != "float32"
        million = c.quantity.kind == "reduction" and "1000000" in c.key.name
        opt_in = (c.impl.mode, c.quantity.kind) in campaign.OPT_IN
        assert compiled_beyond_f32 or million or opt_in, c.key.name
    # every eager cell of every dtype is in default, and every compiled float32 value
    eager = {k for k, c in deep.items() if c.impl.mode is None and "1000000" not in k}
    assert eager <= set(default)
    compiled = {
        k
        for k, c in deep.items()
        if c.impl.mode in profiles.COMPILED and c.dtype == "float32" and c.quantity.kind == "value"
    }
    assert compiled and compiled <= set(default)


def test_an_unknown_profile_is_one_line_and_exit_2(tmp_path):
    out = lossfuzz("run", "--profile", "fast", "-o", str(tmp_path / "r.json"))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "quick" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "r.json").exists()


def _run(tmp_path, *extra):
    path = tmp_path / "r.json"
    args = ("--impl", IMPL, "--dtype", "float32", "--quantity", "value", "-j", "1")
    out = lossfuzz("run", *args, *extra, "-q", "-o", str(path))
    assert out.returncode == 0, out.stderr
    return json.loads(path.read_text())


def test_a_named_run_keeps_its_budget_unless_a_profile_is_asked_for(tmp_path):
    plain = _run(tmp_path)
    assert plain["budget"] == campaign.DEFAULT_BUDGET and "profile" not in plain
    quick = _run(tmp_path, "--profile", "quick")
    assert quick["budget"] == profiles.get("quick").budget
    # a named run takes the profile's budget and batches, not its cell filter: recorded as None
    assert "profile" not in quick
    explicit = _run(tmp_path, "--profile", "quick", "--budget", "3")
    assert explicit["budget"] == 3


def test_the_profile_round_trips_through_the_results_file(tmp_path):
    data = Results.from_json(_run(tmp_path))
    named = data.replace(profile="default")
    assert Results.from_json(json.loads(json.dumps(named.to_json()))).profile == "default"
    assert Results.from_json(json.loads(json.dumps(data.to_json()))).profile is None
