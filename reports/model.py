"""The report's view model, built from a results file and nothing else.

No framework is imported here and nothing is rendered: ``build`` turns the JSON
of DESIGN.md into plain dataclasses that the templates (``templates/``), the
plots (``plots.py``) and the Markdown summary read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from lossfuzz.harness.metrics import CLASSES, EXPLANATIONS, SEVERITY
from lossfuzz.harness.results import quantity_label, reduce_of, unhex

DTYPE_ORDER = ("float16", "bfloat16", "float32", "float64")
FINDING = set(CLASSES[2:])


def ulp_text(v) -> str:
    """A max ULP error for a table: '0.5', '3.2e+06', 'inf'."""
    v = unhex(v) if isinstance(v, str) else float(v)
    if math.isinf(v):
        return "inf"
    if math.isnan(v):
        return "nan"
    return f"{v:.3g}" if v < 1e5 else f"{v:.1e}"


@dataclass
class Finding:
    number: int  # index in the results file's findings (for `lossfuzz repro --finding`)
    cls: str
    message: str
    inputs: list[tuple[str, str, str]]  # name, readable, exact hex
    exact: str
    reference: str
    got: str
    ulp: str
    abs_error: str
    documented: str | None
    documented_source: str | None
    error: str | None
    reproducer: str


@dataclass
class CellView:
    anchor: str
    loss: str
    impl: str
    backend: str
    dtype: str
    quantity: str  # "value", "grad" or "reduction"
    of: str  # "value", "d/dlogits" or "mean of 1000": what the cell measures
    autodiff: str | None  # how a gradient was taken (torch.autograd, tf.GradientTape)
    cases: int
    max_ulp: str
    max_ulp_value: float
    max_finite_ulp: str  # shown beside "inf": the largest error among finite answers
    worst_class: str
    counts: list[tuple[str, int]]
    findings: list[Finding]
    documented_only: bool  # every finding explained by a documented deviation
    profile_axis: str
    profile: list  # [x, ulp, class, got, exact] with floats (inf/nan as floats)
    plot_svg: str = ""  # filled by render


@dataclass
class Row:
    """One impl's values, its gradient with respect to one input, or one reduction over
    one batch size: cells by dtype."""

    loss: str
    impl: str
    backend: str
    quantity: str
    of: str
    cells: dict  # dtype -> CellView


@dataclass
class Twin:
    """A compiled twin's cell beside its eager impl's cell, and where their answers differ."""

    loss: str
    eager: str
    compiled: str
    mode: str
    dtype: str
    of: str
    compared: int  # elements both ran on
    disagreements: int  # of those, elements whose bits differ
    eager_cell: CellView | None
    compiled_cell: CellView
    cases: list[dict]  # the results file's disagreement_cases


@dataclass
class Report:
    title: str
    created: str
    seed: object
    budget: object
    elapsed: float | None
    complete: bool
    versions: list[tuple[str, str]]
    dtypes: list[str]
    backends: list[str]
    rows: list[Row]
    cells: list[CellView]
    skipped: list[dict]
    totals: dict  # class -> findings count
    explanations: list[tuple[str, str]]
    classes_present: list[str] = field(default_factory=list)
    contracts: dict | None = None  # harness/contracts.py's tables, when the run has them
    twins: list[Twin] = field(default_factory=list)

    @property
    def quantities(self) -> list[str]:
        return sorted({r.quantity for r in self.rows}, key=("value", "grad", "reduction").index)


def _float(v) -> float:
    return unhex(v) if isinstance(v, str) else float(v)


def _finding(number: int, f: dict) -> Finding:
    inputs = []
    for name, value in f["inputs"].items():
        if isinstance(value, dict) and "hex" in value:
            readable = ", ".join(value["repr"])
            hexes = ", ".join(value["hex"])
            if len(value["repr"]) > 1:
                readable, hexes = f"[{readable}]", f"[{hexes}]"
            inputs.append((name, readable, hexes))
        elif isinstance(value, dict) and "ints" in value:
            ints = ", ".join(map(str, value["ints"]))
            inputs.append((name, ints, ints))
        elif name == "label_smoothing" and value:
            inputs.append((name, repr(value), float(value).hex()))
    return Finding(
        number=number,
        cls=f["class"],
        message=f["message"],
        inputs=inputs,
        exact=f["exact"],
        reference=f["reference_repr"] or "n/a",
        got=f["got_repr"] or "raised",
        ulp=ulp_text(f["ulp"]),
        abs_error=ulp_text(f["abs_error"]) if f["abs_error"] is not None else "n/a",
        documented=f.get("documented"),
        documented_source=f.get("documented_source"),
        error=f.get("error"),
        reproducer=f["reproducer"],
    )


def build(data: dict, title: str = "lossfuzz report") -> Report:
    by_cell = defaultdict(list)
    for number, f in enumerate(data["findings"]):
        of = quantity_label(f.get("wrt"), reduce_of(f))
        by_cell[(f["impl"], f["dtype"], of)].append(_finding(number, f))
    cells, rows = [], {}
    for c in data["cells"]:
        wrt = c.get("wrt")
        of = quantity_label(wrt, reduce_of(c))
        findings = by_cell.get((c["impl"], c["dtype"], of), [])
        profile = c.get("profile", {"axis": "logit", "points": []})
        view = CellView(
            anchor=f"cell-{len(cells)}",
            loss=c["loss"],
            impl=c["impl"],
            backend=c["impl"].partition(":")[0],
            dtype=c["dtype"],
            quantity=c.get("quantity") or ("grad" if wrt else "value"),
            of=of,
            autodiff=c.get("autodiff"),
            cases=c["cases"],
            max_ulp=ulp_text(c["max_ulp"]),
            max_ulp_value=_float(c["max_ulp"]),
            max_finite_ulp=ulp_text(c.get("max_finite_ulp", c["max_ulp"])),
            worst_class=c["worst_class"],
            counts=sorted(c["counts"].items(), key=lambda kv: SEVERITY.get(kv[0], 0)),
            findings=findings,
            documented_only=bool(findings) and all(f.documented for f in findings),
            profile_axis=profile["axis"],
            profile=[
                [_float(x), _float(u), k, _float(g), _float(e)]
                for x, u, k, g, e in profile["points"]
            ],
        )
        cells.append(view)
        row = rows.setdefault(
            (c["impl"], of),
            Row(c["loss"], c["impl"], view.backend, view.quantity, view.of, {}),
        )
        row.cells[c["dtype"]] = view
    by_key = {(v.impl, v.dtype, v.of): v for v in cells}
    twins = []
    for c, v in zip(data["cells"], cells):
        if not c.get("twin"):
            continue
        twins.append(
            Twin(
                loss=c["loss"],
                eager=c["twin"],
                compiled=c["impl"],
                mode=c.get("mode") or v.backend,
                dtype=c["dtype"],
                of=v.of,
                compared=c.get("compared", 0),
                disagreements=c.get("disagreements", 0),
                eager_cell=by_key.get((c["twin"], c["dtype"], v.of)),
                compiled_cell=v,
                cases=c.get("disagreement_cases", []),
            )
        )
    twins.sort(key=lambda t: (t.loss, t.eager, t.mode, t.of, DTYPE_ORDER.index(t.dtype)))
    present = sorted({v.worst_class for v in cells}, key=SEVERITY.__getitem__)
    totals: dict = defaultdict(int)
    for f in data["findings"]:
        totals["documented" if f.get("documented") else f["class"]] += 1
    versions = [(k, v) for k, v in sorted(data.get("versions", {}).items()) if v]
    dtypes = [d for d in DTYPE_ORDER if any(d in r.cells for r in rows.values())]
    return Report(
        title=title,
        created=data.get("created", ""),
        seed=data.get("seed"),
        budget=data.get("budget"),
        elapsed=data.get("elapsed_seconds"),
        complete=bool(data.get("complete", True)),
        versions=versions,
        dtypes=dtypes,
        backends=sorted({r.backend for r in rows.values()}),
        rows=sorted(rows.values(), key=_row_order),
        cells=cells,
        skipped=data.get("skipped", []),
        totals=dict(totals),
        explanations=[(c, EXPLANATIONS[c]) for c in CLASSES],
        classes_present=present,
        contracts=data.get("contracts"),
        twins=twins,
    )


def _row_order(r: Row) -> tuple:
    """By loss and impl; values, then gradients, then each reduction by batch size."""
    kinds = ("value", "grad", "reduction")
    if r.quantity == "reduction":
        reduction, _, batch = r.of.split(" ")
        return (r.loss, r.impl, 2, reduction, int(batch))
    return (r.loss, r.impl, kinds.index(r.quantity), r.of, 0)


def is_finding(cls: str) -> bool:
    return cls in FINDING
