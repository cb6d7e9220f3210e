"""A Markdown summary short enough for a CI job summary or a pull-request comment.

Everything that came from data is escaped (``escape.py``): a name with a backtick or
a pipe cannot close a code span, split a table cell or inject HTML.
"""

from __future__ import annotations

from lossfuzz.harness.metrics import SEVERITY
from lossfuzz.harness.results import Results
from lossfuzz.reports.escape import md_code, md_text
from lossfuzz.reports.model import build, is_finding

MAX_ROWS = 25


def markdown(data: Results, *, max_rows: int = MAX_ROWS) -> str:
    r = build(data)
    bad = [c for c in r.cells if is_finding(c.accuracy_class) or c.special_classes]
    undocumented = [c for c in bad if not c.documented_only]
    lines = [
        "## lossfuzz",
        "",
        f"{len(r.cells)} cells, {sum(c.cases for c in r.cells)} cases, seed {r.seed}"
        + ("" if r.complete else " — **incomplete run**")
        + ". Findings: "
        + (", ".join(f"{k} {v}" for k, v in sorted(r.totals.items())) or "none")
        + ".",
        "",
    ]
    if not bad:
        lines.append("Every cell is within its ULP tolerance.")
        return "\n".join(lines) + "\n"
    lines += [
        f"{len(undocumented)} cells with unexpected findings"
        f" ({len(bad) - len(undocumented)} more explained by documented clamps):",
        "",
        "| cell | finite inputs | max ULP | special values | example |",
        "|---|---|---|---|---|",
    ]
    order = sorted(
        undocumented,
        key=lambda c: (-SEVERITY[c.accuracy_class], -c.accuracy_value, c.impl, c.dtype),
    )
    for c in order[:max_rows]:
        example = next((f.message for f in c.findings if not f.documented and not f.special), "")
        example = example or next((f.message for f in c.findings if not f.documented), "")
        of = "" if c.quantity == "value" else f" {md_text(c.of)}"
        cell = f"{md_code(c.impl)}{of} {c.dtype}"
        lines.append(
            f"| {cell} | {c.accuracy_class} | {c.accuracy_ulp} | {md_text(c.special_text)} "
            f"| {md_code(example)} |"
        )
    if len(undocumented) > max_rows:
        lines.append(f"| … {len(undocumented) - max_rows} more | | | | |")
    return "\n".join(lines) + "\n"
