"""Render a results file: self-contained HTML (inline CSS, SVG, script) or Markdown.

Everything that came from an impl, an input or an exception is escaped by
Jinja2's autoescape; the only unescaped pieces are the SVG ``svgplot.py`` drew (its
text escaped there), the
report's own script, and a JSON island whose "<" are escaped as \\u003c.
"""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from lossfuzz.harness.results import Results
from lossfuzz.reports.model import Report, build
from lossfuzz.reports.svgplot import cell_plot

HERE = Path(__file__).parent


def _static(name: str) -> str:
    return (HERE / "static" / name).read_text(encoding="utf-8")


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def json_island(obj) -> str:
    """JSON safe inside <script type="application/json">: no "</script>" can close it."""
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plots(cells) -> list[str]:
    return [cell_plot(c, c.tolerance) for c in cells]


def html(data: Results, *, plots: bool = True) -> str:
    report: Report = build(data)
    if plots:
        for cell, svg in zip(report.cells, _plots(report.cells)):
            cell.plot_svg = svg
    summary = {
        "cells": [
            {"impl": c.impl, "dtype": c.dtype, "worst": c.worst_class, "max_ulp": c.max_ulp}
            for c in report.cells
        ]
    }
    template = _environment().get_template("report.html.j2")
    return template.render(
        r=report, css=_static("report.css"), js=_static("report.js"), data_json=json_island(summary)
    )
