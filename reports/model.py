"""The report's view model, built from Results and nothing else.

No framework is imported here and nothing is rendered: ``build`` turns the typed
Results (``harness/results.py``) into plain dataclasses that the templates
(``templates/``), the plots (``plots.py``) and the Markdown summary read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from lossfuzz.harness.jsonio import hexfloat
from lossfuzz.harness.metrics import CLASSES, EXPLANATIONS, SEVERITY, worst
from lossfuzz.harness.results import Quantity, Results
from lossfuzz.harness.signature import text
from lossfuzz.harness.ulp import format_ulp as ulp_text
from lossfuzz.oracles.formats import get_format
from lossfuzz.reports.diagnose import diagnosis

DTYPE_ORDER = ("float16", "bfloat16", "float32", "float64")
FINDING = set(CLASSES[2:])


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
    documented: str | None  # the mechanism, where the library's documentation states it
    documented_source: str | None
    error: str | None
    reproducer: str
    mechanism: str | None = None  # a mechanism found only in the library's source
    mechanism_source: str | None = None
    group: str = ""  # the regime of its inputs
    group_cases: int = 1
    special: bool = False


@dataclass
class CellView:
    anchor: str
    loss: str
    impl: str
    backend: str
    dtype: str
    quantity: str  # "value", "grad" or "reduction"
    of: str  # "value", "d/dlogits" or "mean of 1000": what the cell measures
    measures: Quantity  # the same, as a Quantity (wrt, reduction, batch)
    autodiff: str | None  # how a gradient was taken (torch.autograd, tf.GradientTape)
    cases: int
    max_ulp: str
    max_ulp_value: float
    max_finite_ulp: str  # shown beside "inf": the largest error among finite answers
    worst_class: str
    counts: list[tuple[str, int]]
    accuracy_ulp: str  # the headline: the largest error at finite inputs
    accuracy_value: float
    accuracy_class: str  # the worst class at finite inputs
    special_text: str  # special values (an infinity or NaN among the inputs): "ok", "nan 12"
    special_class: str
    findings: list[Finding]
    documented_only: bool  # every finding explained by a documented deviation
    profile_axis: str
    profile: list  # [x, ulp, class, got, exact] with floats (inf/nan as floats)
    special_classes: list = field(default_factory=list)  # the wrong classes at special values
    tolerance: float = 4.0
    diagnosis: str = ""  # one sentence: what goes wrong, where (diagnose.py)
    plot_svg: str = ""  # filled by render

    @property
    def severity(self) -> tuple:
        """Worst first: the finite-input class, its ULP error, then special values."""
        return (SEVERITY[self.accuracy_class], self.accuracy_value, SEVERITY[self.special_class])


@dataclass
class Row:
    """One impl's values, its gradient with respect to one input, or one reduction over
    one batch size: cells by dtype."""

    loss: str
    impl: str
    backend: str
    quantity: str
    of: str
    order: tuple  # the Quantity's order: values, gradients, reductions by batch size
    cells: dict  # dtype -> CellView

    @property
    def special_class(self) -> str:
        return worst(c.special_class for c in self.cells.values())

    @property
    def diagnosis(self) -> str:
        """The worst cell's sentence, with its dtype."""
        cell = max(self.cells.values(), key=lambda c: c.severity)
        return f"{cell.dtype}: {cell.diagnosis}"

    @property
    def special_text(self) -> str:
        """Special values across the row's dtypes: "ok", or the wrong classes with dtypes."""
        by: dict = {}
        tested = False
        for d, c in self.cells.items():
            tested |= c.special_text != "not tested"
            for cls in c.special_classes:
                by.setdefault(cls, []).append(d)
        if not by:
            return "ok" if tested else "not tested"
        return "; ".join(f"{cls} ({', '.join(ds)})" for cls, ds in by.items())


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
    cases: list  # harness.records.Disagreement, each kind once


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


def _finding(number: int, f) -> Finding:
    inputs = []
    for name, value in f.inputs.items:
        if getattr(value, "integer", False):
            ints = ", ".join(map(str, value.values))
            inputs.append((name, ints, ints))
        elif hasattr(value, "values"):
            fmt = get_format(f.dtype)
            readable = ", ".join(fmt.short(v) for v in value.values)
            hexes = ", ".join(hexfloat(v) for v in value.values)
            if len(value.values) > 1:
                readable, hexes = f"[{readable}]", f"[{hexes}]"
            inputs.append((name, readable, hexes))
        elif name == "label_smoothing" and value:
            inputs.append((name, repr(value), float(value).hex()))
    return Finding(
        number=number,
        cls=f.cls,
        message=f.message,
        inputs=inputs,
        exact=f.exact,
        reference=repr(f.reference) if f.reference is not None else "n/a",
        got=repr(f.got) if f.got is not None else "raised",
        ulp=ulp_text(f.ulp),
        abs_error=ulp_text(f.abs_error),
        documented=f.documented.what if f.documented else None,
        documented_source=f.documented.source if f.documented else None,
        error=f.error,
        reproducer=f.reproducer,
        mechanism=f.explained.what if f.explained and not f.explained.documented else None,
        mechanism_source=f.explained.source if f.explained and not f.explained.documented else None,
        group=text(f.group),
        group_cases=f.group_cases,
        special=f.special,
    )


def build(data: Results, title: str = "lossfuzz report") -> Report:
    by_cell = defaultdict(list)
    for number, f in enumerate(data.findings):
        # finite inputs before special values, unexplained first, then worst first
        ulp = f.ulp if f.ulp is not None and not math.isnan(f.ulp) else math.inf
        order = (f.special, f.documented is not None, -SEVERITY[f.cls], -ulp, number)
        by_cell[f.key].append((order, _finding(number, f)))
    for key in by_cell:
        by_cell[key] = [view for _, view in sorted(by_cell[key], key=lambda p: p[0])]
    cells, rows = [], {}
    for c in data.cells:
        q = c.quantity
        findings = by_cell.get(c.key, [])
        acc, special = c.accuracy, c.special_values
        bad_special = [(k, n) for k, n in special.counts if k in FINDING]
        view = CellView(
            anchor=f"cell-{len(cells)}",
            loss=c.loss,
            impl=c.impl,
            backend=c.impl.partition(":")[0],
            dtype=c.dtype,
            quantity=q.kind,
            of=q.label,
            measures=q,
            autodiff=c.autodiff,
            cases=c.cases,
            max_ulp=ulp_text(c.max_ulp),
            max_ulp_value=c.max_ulp,
            max_finite_ulp=ulp_text(c.max_finite_ulp),
            worst_class=c.worst_class,
            counts=list(c.counts.items()),
            accuracy_ulp=ulp_text(acc.max_ulp),
            accuracy_value=acc.max_ulp,
            accuracy_class=worst(k for k, _ in acc.counts),
            special_text=(
                "not tested"
                if not special.cases
                else ", ".join(f"{k} {n}" for k, n in bad_special) or "ok"
            ),
            special_class=worst(k for k, _ in special.counts),
            special_classes=[k for k, _ in bad_special],
            tolerance=c.tolerance,
            findings=findings,
            documented_only=bool(findings) and all(f.documented for f in findings),
            profile_axis=c.profile.axis,
            profile=[list(p) for p in c.profile.points],
        )
        view.diagnosis = diagnosis(view)
        cells.append(view)
        row = rows.setdefault(
            (c.impl, q), Row(c.loss, c.impl, view.backend, q.kind, q.label, q.order, {})
        )
        row.cells[c.dtype] = view
    by_key = {(v.impl, v.dtype, v.measures): v for v in cells}
    twins = []
    for c, v in zip(data.cells, cells):
        if c.twin is None:
            continue
        twins.append(
            Twin(
                loss=c.loss,
                eager=c.twin.eager,
                compiled=c.impl,
                mode=c.twin.mode or v.backend,
                dtype=c.dtype,
                of=v.of,
                compared=c.twin.compared,
                disagreements=c.twin.disagreements,
                eager_cell=by_key.get((c.twin.eager, c.dtype, v.measures)),
                compiled_cell=v,
                cases=list(c.twin.cases),
            )
        )
    twins.sort(
        key=lambda t: (
            t.loss,
            t.eager,
            t.mode,
            t.compiled_cell.measures.order,
            DTYPE_ORDER.index(t.dtype),
        )
    )
    present = sorted({v.worst_class for v in cells}, key=SEVERITY.__getitem__)
    totals: dict = defaultdict(int)
    for f in data.findings:
        totals["documented" if f.documented else f.cls] += 1
    versions = [(k, v) for k, v in sorted(data.versions.items()) if v]
    dtypes = [d for d in DTYPE_ORDER if any(d in r.cells for r in rows.values())]
    return Report(
        title=title,
        created=data.created,
        seed=data.seed,
        budget=data.budget,
        elapsed=data.elapsed_seconds,
        complete=data.complete,
        versions=versions,
        dtypes=dtypes,
        backends=sorted({r.backend for r in rows.values()}),
        rows=sorted(rows.values(), key=lambda r: (_worst(r), r.loss, r.impl, r.order)),
        cells=cells,
        skipped=[{"impl": s.what, "reason": s.reason} for s in data.skipped],
        totals=dict(totals),
        explanations=[(c, EXPLANATIONS[c]) for c in CLASSES],
        classes_present=present,
        contracts=data.contracts,
        twins=twins,
    )


def _worst(row: Row) -> tuple:
    """A row's sort key, worst first: its worst cell by finite-input class and error."""
    worst_cell = max(c.severity for c in row.cells.values())
    return tuple(-v for v in worst_cell)


def is_finding(cls: str) -> bool:
    return cls in FINDING
