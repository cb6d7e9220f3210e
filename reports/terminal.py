"""The terminal summary of a run: one line a cell."""

from __future__ import annotations

from lossfuzz.harness.metrics import SEVERITY, worst
from lossfuzz.harness.results import Results
from lossfuzz.harness.ulp import format_ulp
from lossfuzz.reports.escape import terminal


def severity(c) -> tuple:
    """Worst first: the finite-input class, its largest error, then special values."""
    acc, special = c.accuracy, c.special_values
    return (
        -SEVERITY[worst(k for k, _ in acc.counts)],
        -acc.max_ulp,
        -SEVERITY[worst(k for k, _ in special.counts)],
        c.key,
    )


def summary_table(data: Results) -> str:
    """One line a cell, worst first: its cases, the largest ULP error at finite inputs and
    the wrong classes there, then what it does at special values (an infinity or NaN
    input)."""
    rows = [("impl", "of", "dtype", "cases", "max ULP", "finite inputs", "special values")]
    for c in sorted(data.cells, key=severity):
        acc, special = c.accuracy, c.special_values
        bad = ", ".join(f"{k} {n}" for k, n in acc.counts if k not in ("exact", "ok"))
        wrong = ", ".join(f"{k} {n}" for k, n in special.counts if k not in ("exact", "ok"))
        rows.append(
            (
                terminal(c.impl),
                c.quantity.label,
                c.dtype,
                str(c.cases),
                format_ulp(acc.max_ulp),
                bad or "ok",
                wrong or ("ok" if special.cases else "-"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1] for r in rows)
