"""The terminal summary of a run: one line a cell."""

from __future__ import annotations

from lossfuzz.harness.results import Results
from lossfuzz.harness.ulp import format_ulp
from lossfuzz.reports.escape import terminal


def summary_table(data: Results) -> str:
    """cell, cases, max ULP and counts per class: one line a cell."""
    rows = [("impl", "of", "dtype", "cases", "max ULP", "worst", "findings")]
    for c in data.cells:
        bad = ", ".join(f"{k} {v}" for k, v in c.counts.items() if k not in ("exact", "ok"))
        rows.append(
            (
                terminal(c.impl),
                c.quantity.label,
                c.dtype,
                str(c.cases),
                format_ulp(c.max_ulp),
                c.worst_class,
                bad or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1] for r in rows)
