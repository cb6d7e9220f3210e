"""A cell's error against its input, drawn directly as inline SVG (no plotting library).

The main panel is zoomed to where the errors are: the x range of the cases whose
error exceeds the tolerance (padded), on a symmetric log axis for logits and row
spreads and a log-odds axis for probabilities. Below it a thin overview shows the
dtype's whole range with the zoomed window marked. The y axis is log2(1 + ULP
error); infinite errors (NaN, overflow, a missed infinity) sit on a band at the top.
The dtype's exp thresholds are marked where they fall in the window; the tolerance
is a dashed line; the legend sits outside the data, on the right. Text is 12 px and
larger, so the plot reads at its default size (760 px wide).
"""

from __future__ import annotations

import html
import math

from lossfuzz.oracles import get_format

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
WIDTH, LEFT, RIGHT, TOP = 760, 70, 170, 30
MAIN, GAP, OVERVIEW, BOTTOM = 250, 60, 36, 34
HEIGHT = TOP + MAIN + GAP + OVERVIEW + BOTTOM
PLOT_W = WIDTH - LEFT - RIGHT


def _symlog(v: float) -> float:
    return math.copysign(math.log2(1 + abs(v)), v)


def _symlog_inverse(t: float) -> float:
    """The inverse of ``_symlog``: +-inf beyond float64 (a window's margin past 1.8e308)."""
    if abs(t) >= 1024:
        return math.copysign(math.inf, t)
    return math.copysign(2 ** abs(t) - 1, t)


def _logodds(p: float) -> float:
    """log2(p / (1 - p)), held to +-1100 at 0 and 1 (beyond every float64's log)."""
    if p <= 0:
        return -1100.0
    if p >= 1:
        return 1100.0
    return math.log2(p) - math.log2(1 - p)


def _logodds_inverse(t: float) -> float:
    if t < -1000:
        return 0.0
    if t > 1000:
        return 1.0
    return 1 / (1 + 2.0**-t)


def _error_y(ulp: float) -> float:
    return math.log2(1 + ulp) if math.isfinite(ulp) else math.inf


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < 1e4:
        text = f"{v:.4g}"
    else:
        text = f"{v:.0e}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return text


def _nice_ticks(lo: float, hi: float, inverse, count: int = 7) -> list[tuple[float, str]]:
    """Ticks at round values of the original axis, about ``count`` of them between the
    transformed ends ``lo`` and ``hi``."""
    out, seen = [], set()
    for i in range(count + 1):
        t = lo + (hi - lo) * i / count
        v = inverse(t)
        if v != 0 and math.isfinite(v):
            mag = 10.0 ** math.floor(math.log10(abs(v)))
            rounded = round(v / mag) * mag
            v = rounded if math.isfinite(rounded) else v  # 2e308 is past float64
        label = _fmt(v)
        if label not in seen:
            seen.add(label)
            out.append((v, label))
    return out


def cell_plot(cell, tolerance: float = 4.0) -> str:
    """An inline <svg> for one cell (a reports.model.CellView), or "" without points."""
    points = [p for p in cell.profile if not math.isnan(p[0])]
    if not points:
        return ""
    fmt = get_format(cell.dtype)
    probability = cell.profile_axis == "probability"
    if probability:
        tx, inverse = _logodds, _logodds_inverse
        full = (_logodds(0.0), _logodds(1.0))
    else:
        big = fmt.max_finite
        tx, inverse = _symlog, _symlog_inverse
        lo_full = 0.0 if cell.profile_axis.startswith("row spread") else -big
        full = (_symlog(lo_full), _symlog(big))
    xs = [min(max(tx(p[0]), full[0]), full[1]) for p in points]
    ys = [_error_y(p[1]) for p in points]
    bad = [x for x, p in zip(xs, points) if p[1] > tolerance or p[2] not in ("exact", "ok")]
    window = _window(bad or xs, full)
    finite_y = [y for y in ys if math.isfinite(y)]
    y_top = max([_error_y(tolerance) * 1.5, 4.0] + finite_y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" class="lf-plot" role="img" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{html.escape(cell.impl)} [{cell.dtype}] {html.escape(cell.of)}: "
        "log2(1 + ULP error) against the input</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{MAIN}" fill="#fafafa" '
        'stroke="#999" class="plot-area"/>',
    ]
    band = TOP + 12  # infinite errors

    def px(t: float) -> float:
        return LEFT + (t - window[0]) / (window[1] - window[0]) * PLOT_W

    def py(y: float) -> float:
        if math.isinf(y):
            return band
        return TOP + MAIN - y / y_top * (MAIN - 30)

    parts += _axes(window, inverse, y_top, px, py, tolerance)
    parts += _thresholds(cell, fmt, window, px, probability)
    counts: dict = {}
    for t, y, p in zip(xs, ys, points):
        counts[p[2]] = counts.get(p[2], 0) + 1
        if window[0] <= t <= window[1]:
            tip = f"x={_fmt(p[0])} ULP={_fmt(p[1])} {p[2]}"
            parts.append(
                f'<circle cx="{px(t):.1f}" cy="{py(y):.1f}" r="3.2" fill="{COLOURS[p[2]]}" '
                f'fill-opacity="0.85"><title>{tip}</title></circle>'
            )
    parts += _overview(xs, points, full, window, probability, inverse)
    parts += _legend(counts)
    axis = {"logit": "logit x", "probability": "probability p (log-odds axis)"}.get(
        cell.profile_axis, cell.profile_axis
    )
    parts.append(
        f'<text x="{LEFT + PLOT_W / 2:.0f}" y="{TOP + MAIN + 34}" text-anchor="middle" '
        f'font-size="13">{html.escape(axis)}</text>'
    )
    parts.append(
        f'<text x="16" y="{TOP + MAIN / 2:.0f}" font-size="13" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + MAIN / 2:.0f})">ULP error</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _window(ts: list[float], full: tuple[float, float]) -> tuple[float, float]:
    lo, hi = min(ts), max(ts)
    pad = max((hi - lo) * 0.08, 1.0)
    lo, hi = max(full[0], lo - pad), min(full[1], hi + pad)
    if hi - lo < 2:
        mid = (lo + hi) / 2
        lo, hi = max(full[0], mid - 1), min(full[1], mid + 1)
    return lo, hi


def _axes(window, inverse, y_top, px, py, tolerance) -> list[str]:
    out = []
    bottom = TOP + MAIN
    for v, label in _nice_ticks(window[0], window[1], inverse):
        t = _transform_of(inverse, v, window)
        if t is None:
            continue
        x = px(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" stroke="#333"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{html.escape(label)}</text>'
        )
    ulps = [0, 1, 4, 16, 256, 2**16, 2**24, 2**40, 2**53]
    for u in ulps:
        y = math.log2(1 + u)
        if y > y_top:
            break
        yy = py(y)
        out.append(f'<line x1="{LEFT - 5}" y1="{yy:.1f}" x2="{LEFT}" y2="{yy:.1f}" stroke="#333"/>')
        out.append(
            f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{LEFT + PLOT_W}" y2="{yy:.1f}" stroke="#e6e6e6"/>'
        )
        out.append(
            f'<text x="{LEFT - 8}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(float(u))}</text>'
        )
    out.append(f'<text x="{LEFT - 8}" y="{py(math.inf) + 4:.1f}" text-anchor="end">inf</text>')
    tol = py(math.log2(1 + tolerance))
    out.append(
        f'<line x1="{LEFT}" y1="{tol:.1f}" x2="{LEFT + PLOT_W}" y2="{tol:.1f}" stroke="#555" '
        'stroke-dasharray="6 4"/>'
    )
    out.append(
        f'<text x="{LEFT + PLOT_W - 4}" y="{tol - 4:.1f}" text-anchor="end" fill="#555">'
        f"tolerance {tolerance:g} ULP</text>"
    )
    return out


def _transform_of(inverse, v: float, window) -> float | None:
    """The axis coordinate of original value ``v`` (by bisection on the inverse)."""
    lo, hi = window
    if not inverse(lo) <= v <= inverse(hi):
        return None
    for _ in range(80):
        mid = (lo + hi) / 2
        if inverse(mid) < v:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _thresholds(cell, fmt, window, px, probability) -> list[str]:
    """exp's overflow threshold and where exp(-|x|) falls below an ulp of 1, if in view."""
    if probability or cell.profile_axis != "logit":
        return []
    out = []
    marks = [
        (fmt.precision * math.log(2), "exp(-|x|) < ulp(1)"),
        (fmt.overflow_threshold, "exp overflows"),
    ]
    # Labels read outwards from zero: a negative mark's text sits left of its line, a
    # positive one's right of it, and the outer mark of each side one line higher, so
    # that the four never overlap however narrow the window around zero is.
    for level, (value, what) in enumerate(marks):
        for v in (-value, value):
            t = _symlog(v)
            if not window[0] < t < window[1]:
                continue
            x = px(t)
            y = TOP + MAIN - 6 - 16 * level
            text = f"{_fmt(v)}: {what}"
            width = 6.6 * len(text)  # about 12 px system-ui
            left = v < 0 if LEFT + width < x < LEFT + PLOT_W - width else x > LEFT + width
            anchor, dx = ("end", -3) if left else ("start", 3)
            out.append(
                f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + MAIN}" '
                'stroke="#1565c0" stroke-dasharray="3 3"/>'
            )
            out.append(
                f'<text x="{x + dx:.1f}" y="{y}" fill="#1565c0" text-anchor="{anchor}" '
                f'class="threshold">{html.escape(text)}</text>'
            )
    return out


def _overview(xs, points, full, window, probability, inverse) -> list[str]:
    y0 = TOP + MAIN + GAP

    def ox(t: float) -> float:
        return LEFT + (t - full[0]) / (full[1] - full[0]) * PLOT_W

    span = max(2.0, ox(window[1]) - ox(window[0]))
    out = [
        f'<rect x="{LEFT}" y="{y0}" width="{PLOT_W}" height="{OVERVIEW}" fill="#fafafa" '
        'stroke="#bbb" class="overview"/>',
        f'<rect x="{ox(window[0]):.1f}" y="{y0}" width="{span:.1f}" height="{OVERVIEW}" '
        'fill="#1565c0" fill-opacity="0.12" stroke="#1565c0"/>',
    ]
    for t, p in zip(xs, points):
        y = y0 + OVERVIEW / 2 + (-8 if p[2] not in ("exact", "ok") else 8)
        out.append(f'<circle cx="{ox(t):.1f}" cy="{y:.1f}" r="1.6" fill="{COLOURS[p[2]]}"/>')
    ends = [(full[0], inverse(full[0])), (0.0 if not probability else 0.0, inverse(0.0)),
            (full[1], inverse(full[1]))]  # fmt: skip
    for t, v in ends:
        out.append(
            f'<text x="{ox(t):.1f}" y="{y0 + OVERVIEW + 14}" text-anchor="middle" '
            f'font-size="11" fill="#555">{_fmt(v)}</text>'
        )
    out.append(
        f'<text x="{LEFT}" y="{y0 - 6}" font-size="11" fill="#555">the whole range; '
        "the blue window is shown above</text>"
    )
    return out


def _legend(counts: dict) -> list[str]:
    x = LEFT + PLOT_W + 18
    out = [
        f'<g class="legend"><text x="{x}" y="{TOP + 12}" font-weight="bold">class (points)</text>'
    ]
    order = [c for c in COLOURS if c in counts]
    for i, c in enumerate(order):
        y = TOP + 32 + i * 20
        out.append(f'<circle cx="{x + 6}" cy="{y - 4}" r="5" fill="{COLOURS[c]}"/>')
        out.append(f'<text x="{x + 16}" y="{y}">{c} ({counts[c]})</text>')
    out.append("</g>")
    return out
