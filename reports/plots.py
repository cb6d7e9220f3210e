"""Plots of a cell's error against its input, drawn by matplotlib as inline SVG.

Left: log2(1 + ULP error) against the input, on a symmetric log axis over the
dtype's whole range, with exp's overflow and underflow thresholds marked;
infinite errors (NaN, overflow, missed infinities) sit on a band at the top.
Right: the impl's answer beside the exact value, where over- and underflow show.
The points are rasterised inside the SVG (axes and text stay vector), which keeps
a report of hundreds of cells small.
"""

from __future__ import annotations

import io
import math
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lossfuzz.oracles import get_format  # noqa: E402

COLOURS = {
    "exact": "#2e7d32",
    "ok": "#7cb342",
    "inaccurate": "#f9a825",
    "underflow": "#ef6c00",
    "sign": "#8e24aa",
    "overflow": "#c62828",
    "missed_inf": "#ad1457",
    "missed_nan": "#6a1b9a",
    "nan": "#b71c1c",
    "error": "#455a64",
    "timeout": "#37474f",
    "crash": "#212121",
}
plt.rcParams.update(
    {"svg.hashsalt": "lossfuzz", "svg.fonttype": "none", "font.size": 8}
)  # deterministic ids; text as <text>, not glyph paths


def _t(v: float, lin: float) -> float:
    """Symmetric log coordinate: sign(v) log10(1 + |v| / lin); finite for every float64."""
    return math.copysign(math.log10(1 + abs(v) / lin), v)


def _decade_ticks(axis, big: float, lin: float, per_side: int = 4) -> None:
    """Ticks at 0 and about ``per_side`` powers of ten each way, from lin up to big."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    low, high = math.ceil(math.log10(lin)), math.floor(math.log10(big))
    step = max(1, math.ceil((high - low) / per_side))
    ks = list(range(high, low - 1, -step))
    values = sorted([0.0] + [s * 10.0**k for k in ks for s in (1, -1)])
    axis.set_major_locator(FixedLocator([_t(v, lin) for v in values]))
    labels = ["0" if v == 0 else f"{v:.0e}".replace("e+0", "e").replace("e+", "e") for v in values]
    axis.set_major_formatter(FixedFormatter(labels))


def _clip(x: float, big: float) -> float:
    return max(-big, min(big, x))


def cell_plot(cell) -> str:
    """An inline <svg> for one cell (a CellView), or "" when it has no points."""
    points = [p for p in cell.profile if not math.isnan(p[0])]
    if not points:
        return ""
    fmt = get_format(cell.dtype)
    big = fmt.max_finite
    probability = cell.profile_axis == "probability"
    lin_x, lin_y = 1.0, fmt.min_subnormal
    edge = _t(big, lin_x) * 1.02
    xs = [p[0] if probability else _t(_clip(p[0], big), lin_x) for p in points]
    finite_err = [math.log2(1 + p[1]) for p in points if math.isfinite(p[1])]
    top = max(finite_err + [1.0]) * 1.15 + 2
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.2, 2.6))
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.17, top=0.9, wspace=0.22)  # fixed: fast

    for cls, colour in COLOURS.items():
        sel = [i for i, p in enumerate(points) if p[2] == cls]
        if sel:
            ys = [math.log2(1 + points[i][1]) if math.isfinite(points[i][1]) else top for i in sel]
            left.scatter(
                [xs[i] for i in sel], ys, s=9, c=colour, label=cls, rasterized=True, linewidths=0
            )
    left.axhline(math.log2(1 + 4), color="#999", lw=0.6, ls=":")  # the default tolerance
    left.axhspan(top - 1, top + 1, color="#fde0e0", zorder=0)
    left.set_ylim(-0.5, top + 1.5)
    left.set_ylabel("log2(1 + ULP error)")
    left.set_xlabel(cell.profile_axis)
    left.set_title("error against input (worst per bin; band = inf/NaN)", fontsize=8)
    if probability:
        left.set_xlim(-0.02, 1.02)
    else:
        left.set_xlim(-edge, edge)
        _decade_ticks(left.xaxis, big, lin_x)
        if cell.profile_axis == "logit":
            for t, colour in (
                (fmt.overflow_threshold, "#c62828"),
                (fmt.underflow_threshold, "#ef6c00"),
            ):
                for x in (t, -t):
                    left.axvline(_t(x, lin_x), color=colour, lw=0.6, ls="--")
            left.text(
                _t(fmt.overflow_threshold, lin_x),
                top,
                f" ±{fmt.overflow_threshold:.2f}",
                fontsize=6,
                va="top",
            )
    left.legend(fontsize=6, loc="upper left", ncol=2, frameon=False)

    exact = [(xs[i], _t(p[4], lin_y)) for i, p in enumerate(points) if math.isfinite(p[4])]
    got = [(xs[i], _t(p[3], lin_y)) for i, p in enumerate(points) if math.isfinite(p[3])]
    if exact:
        right.scatter(
            *zip(*exact),
            s=14,
            facecolors="none",
            edgecolors="#1565c0",
            label="exact",
            rasterized=True,
        )
    if got:
        right.scatter(*zip(*got), s=5, c="#c62828", label="impl", rasterized=True, linewidths=0)
    _decade_ticks(right.yaxis, big, lin_y, per_side=3)
    right.set_ylabel("value")
    if not probability:
        right.set_xlim(-edge, edge)
        _decade_ticks(right.xaxis, big, lin_x)
    right.set_xlabel(cell.profile_axis)
    right.set_title("answer and exact value (finite ones)", fontsize=8)
    right.legend(fontsize=6, loc="best", frameon=False)

    buf = io.StringIO()
    fig.savefig(buf, format="svg", dpi=90, metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: inline in HTML
    return re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
