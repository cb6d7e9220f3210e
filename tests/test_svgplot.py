"""The inline SVG plots' axes at the ends of float64 (a window's margin runs past 1.8e308)."""

import math

import pytest

from lossfuzz.reports import svgplot


def test_symlog_inverse_is_infinite_past_float64_and_exact_inside():
    top = svgplot._symlog(1.7976931348623157e308)
    assert svgplot._symlog_inverse(top + 5) == math.inf
    assert svgplot._symlog_inverse(-(top + 5)) == -math.inf
    assert svgplot._symlog_inverse(svgplot._symlog(1000.0)) == pytest.approx(1000.0, rel=1e-12)


def test_ticks_of_a_window_past_float64_are_finite_labels_or_inf():
    top = svgplot._symlog(1.7976931348623157e308)
    ticks = svgplot._nice_ticks(-(top + 20), top + 20, svgplot._symlog_inverse)
    labels = [label for _, label in ticks]
    assert labels[0] == "-inf" and labels[-1] == "inf"
    assert len(set(labels)) == len(labels) >= 5
    for v, label in ticks[1:-1]:
        assert math.isfinite(v), label
    # ticks near the top round to a power of ten without leaving float64
    near = svgplot._nice_ticks(top - 3, top - 0.01, svgplot._symlog_inverse)
    assert all(math.isfinite(v) for v, _ in near)
