"""One sentence per cell: what goes wrong, where, and how badly.

Built from the cell's worst unexplained finding at finite inputs (its class, its
group of inputs) and, for an elementwise cell, the span of the input axis over which
the profile shows that class within the group's band: "Underflow: returns 0 for
logits from -103 to -16.6 (logits=-large, labels=0)". Special values get a clause of
their own.
"""

from __future__ import annotations

import math

from lossfuzz.harness.signature import magnitude, probability
from lossfuzz.harness.ulp import format_ulp
from lossfuzz.oracles import get_format

SAYS = {
    "underflow": "returns 0",
    "nan": "returns NaN",
    "overflow": "returns inf",
    "inaccurate": "{ulp} ULP off",
    "missed_inf": "returns a finite number, not inf",
    "missed_nan": "returns a number, not NaN",
    "sign": "the wrong sign",
    "error": "raises {error}",
    "timeout": "hangs",
    "crash": "crashes its process",
}


def _band(group: str, axis: str) -> str | None:
    """The magnitude band a finding's group names for the profile's axis, if any."""
    key = "logits=" if axis == "logit" else "probs="
    for part in group.split(", "):
        if part.startswith(key):
            return part[len(key) :]
    return None


def _span(cell, finding) -> str:
    """' for logits from A to B': the profile points of the finding's class whose input
    lies in the finding's band (so two groups of one class get two spans)."""
    if cell.profile_axis not in ("logit", "probability"):
        return ""
    fmt = get_format(cell.dtype)
    band = _band(finding.group, cell.profile_axis)
    describe = magnitude if cell.profile_axis == "logit" else probability

    def in_band(x: float) -> bool:
        return band is None or describe(x, fmt) == band

    xs = [p[0] for p in cell.profile if p[2] == finding.cls and math.isfinite(p[0])]
    xs = [x for x in xs if in_band(x)]
    if not xs:
        return ""
    name = "logits" if cell.profile_axis == "logit" else "probabilities"
    lo, hi = min(xs), max(xs)
    if lo == hi:
        return f" at {'logit' if name == 'logits' else 'probability'} {lo:.4g}"
    return f" for {name} from {lo:.3g} to {hi:.3g}"


def diagnosis(cell) -> str:
    """The sentence for a reports.model.CellView: the worst wrong answer at finite
    inputs, where it happens, and what special values get."""
    plain = [f for f in cell.findings if not f.documented]
    finite = [f for f in plain if not f.special]
    special = [f for f in plain if f.special]
    parts = []
    if finite:
        f = finite[0]
        says = SAYS[f.cls].format(ulp=f.ulp, error=(f.error or "an exception").split(":")[0])
        name = "NaN" if f.cls == "nan" else f.cls
        text = f"{name}: {says}{_span(cell, f)} ({f.group})"
        if len(finite) > 1:
            text += f"; {len(finite) - 1} more below"
        parts.append(text)
    else:
        parts.append(f"within {format_ulp(cell.accuracy_value)} ULP at finite inputs")
    if special:
        kinds = sorted({f.cls for f in special})
        parts.append(f"special values: {', '.join(kinds)} ({len(special)} kinds of input)")
    elif cell.special_text == "ok":
        parts.append("special values as the limits say")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
