"""Departures from the exact loss that a library builds in: clips, clamps, thresholds.

A ``Deviation`` explains a wrong answer only where its mechanism demonstrably acted
on that very input: ``acts`` says whether it did (the probability was outside the
clip range, the clamped term was beyond the clamp, the logit above the threshold),
and the answer must then be what the mechanism gives, ``formula`` evaluated exactly
on the clipped or clamped input, to within the cell's tolerance. Anything else is a
plain finding. ``documented`` says whether the library's documentation states the
mechanism (with ``source`` its address); one found only in the source code labels
its findings with the mechanism but does not excuse them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import numpy as np

from lossfuzz import oracles
from lossfuzz.harness.quantity import VALUE, Quantity
from lossfuzz.harness.ulp import ulp_error


@dataclass(frozen=True)
class Case:
    """One element of one answer: the single case's inputs (cast), its loss and dtype,
    the element's index and what was measured."""

    loss: str
    dtype: str
    inputs: dict
    index: int
    quantity: Quantity = VALUE
    known: object = None  # the exact value at these inputs, where already computed

    @property
    def spec(self):
        return oracles.get_loss(self.loss)

    @property
    def fmt(self):
        return oracles.get_format(self.dtype)

    def scalar(self, name: str) -> float:
        """An elementwise case's input (its only element)."""
        return float(np.asarray(self.inputs[name], dtype=np.float64).ravel()[0])

    def row(self, name: str) -> np.ndarray:
        return np.asarray(self.inputs[name], dtype=np.float64).reshape(-1)

    def exact(self, **changed) -> mpmath.mpf:
        """The exact value (or gradient) of the case's loss at its inputs with ``changed``."""
        if not changed and self.known is not None:
            return self.known
        inputs = dict(self.inputs, **changed)
        q = self.quantity
        if q.kind == "grad":
            ev = oracles.evaluate_gradient(self.loss, q.wrt, self.dtype, **inputs)
        else:
            ev = oracles.evaluate(self.loss, self.dtype, **inputs)
        flat = ev.exact.ravel()
        return flat[self.index if self.index < flat.size else 0]


@dataclass(frozen=True)
class Deviation:
    what: str
    source: str
    documented: bool  # stated in the library's documentation; False: found in its source
    acts: Callable[[Case], bool] = field(compare=False)
    # what the mechanism gives on this input, exactly; None: judge by ``bound`` instead
    formula: Callable[[Case], object] | None = field(default=None, compare=False)
    bound: float | None = None  # relative error the mechanism can cause, where no formula
    # "value" (values and their reductions), "reduction" (reductions only), "grad" (any
    # wrt), "d/dlabels" (one wrt) or "*" (all)
    quantity: str = "value"

    def applies(self, quantity: Quantity) -> bool:
        if self.quantity == "*":
            return True
        if quantity.kind == "reduction":
            return self.quantity in ("value", "reduction")
        if quantity.kind == "value":
            return self.quantity == "value"
        return self.quantity in ("grad", quantity.label)

    def explains(self, case: Case, got: float, exact, tolerance: float) -> bool:
        """The mechanism acted on ``case`` and ``got`` is what it gives."""
        if not self.applies(case.quantity) or not self.acts(case):
            return False
        if self.formula is None:
            if self.bound is None or not math.isfinite(got) or not mpmath.isfinite(exact):
                return False
            return abs(mpmath.mpf(got) - exact) <= self.bound * abs(exact)
        value = self.formula(case)
        if value is None:
            return False
        value = mpmath.mpf(value)
        if mpmath.isnan(value):
            return math.isnan(got)
        return ulp_error(got, value, case.fmt) <= tolerance


# ------------------------------------------------------------------ builders


def probability_clip(lo, hi, *, loss: str, what: str, source: str, documented: bool):
    """Probabilities clipped to [lo, hi] (each bound cast to the dtype, as the library's
    arithmetic does; a bound may be a function of the dtype's Format) before the loss:
    acts where a probability that carries label mass lies outside; the answer is then
    ``loss`` at the clipped probabilities. For a renormalising loss the probabilities
    are normalised (in the dtype) first."""

    def bounds(case: Case):
        f = case.fmt
        a, b = (v(f) if callable(v) else v for v in (lo, hi))
        return float(f.cast(a)), float(f.cast(b))

    def normalised(case: Case) -> np.ndarray:
        p = np.asarray(case.inputs["probs"])
        if case.spec.shape == "elementwise" or case.spec.variant_of is None:
            return p
        with np.errstate(all="ignore"):
            return (p / p.sum(axis=-1, keepdims=True)).astype(p.dtype)

    def carrying(case: Case) -> np.ndarray:
        p = normalised(case).astype(np.float64).reshape(-1)
        if case.spec.labels == "sparse":
            k = int(np.asarray(case.inputs["labels"]).ravel()[0])
            return p[k : k + 1]
        z = np.asarray(case.inputs["labels"], dtype=np.float64).reshape(-1)
        if case.spec.shape == "elementwise":
            return p  # both terms: z log p and (1 - z) log(1 - p)
        return p[z != 0]

    def acts(case: Case) -> bool:
        a, b = bounds(case)
        p = carrying(case)
        return bool(((p < a) | (p > b)).any())

    def formula(case: Case):
        a, b = bounds(case)
        clipped = np.clip(normalised(case), a, b).astype(np.asarray(case.inputs["probs"]).dtype)
        changed = {"probs": clipped}
        return _exact_of(case, loss, changed)

    return Deviation(what, source, documented, acts, formula)


def _exact_of(case: Case, loss: str, changed: dict):
    inputs = dict(case.inputs, **changed)
    spec = oracles.get_loss(loss)
    inputs = {k: v for k, v in inputs.items() if k in spec.inputs}
    q = case.quantity
    try:
        if q.kind == "grad":
            ev = oracles.evaluate_gradient(loss, q.wrt, case.dtype, **inputs)
        else:
            ev = oracles.evaluate(loss, case.dtype, **inputs)
    except (oracles.DomainError, ValueError):
        return None
    flat = ev.exact.ravel()
    return flat[case.index if case.index < flat.size else 0]


def log_clamp(floor: float, *, what: str, source: str, documented: bool) -> Deviation:
    """Binary CE on probabilities with each log clamped to >= ``floor`` (PyTorch: -100):
    acts where a term with a non-zero coefficient has its log below the floor; the
    answer is then z min(-log p, -floor) + (1 - z) min(-log(1 - p), -floor)."""

    def terms(case: Case):
        p, z = case.scalar("probs"), Fraction(case.scalar("labels"))
        with mpmath.workprec(200):
            neglog_p = -mpmath.log(mpmath.mpf(p)) if p > 0 else mpmath.inf
            neglog_q = -mpmath.log1p(-mpmath.mpf(p)) if p < 1 else mpmath.inf
        return z, neglog_p, neglog_q

    def acts(case: Case) -> bool:
        z, a, b = terms(case)
        return (z > 0 and a > -floor) or (z < 1 and b > -floor)

    def formula(case: Case):
        z, a, b = terms(case)
        cap = mpmath.mpf(-floor)
        with mpmath.workprec(200):
            first = mpmath.mpf(z.numerator) / z.denominator * min(a, cap) if z else 0
            second = (
                mpmath.mpf((1 - z).numerator) / (1 - z).denominator * min(b, cap) if z != 1 else 0
            )
            return first + second

    return Deviation(what, source, documented, acts, formula)


def identity_above(threshold: float, *, what: str, source: str, documented: bool) -> Deviation:
    """softplus(x) is x, and its derivative 1, for x > ``threshold`` (PyTorch: 20)."""

    def acts(case: Case) -> bool:
        return case.scalar("logits") > threshold

    def formula(case: Case):
        return 1 if case.quantity.kind == "grad" else mpmath.mpf(case.scalar("logits"))

    return Deviation(what, source, documented, acts, formula, quantity="*")


def softmax_minus_labels(*, what: str, source: str, documented: bool) -> Deviation:
    """The gradient of softmax CE taken as softmax(x) - z, the derivative only where the
    label row sums to 1: acts where it does not; the answer is softmax(x)_i - z_i."""

    def acts(case: Case) -> bool:
        return sum(map(Fraction, case.row("labels").tolist())) != 1

    def formula(case: Case):
        row = np.asarray(case.inputs["logits"]).reshape(1, -1)
        soft = oracles.evaluate("softmax", case.dtype, logits=row).exact.ravel()[case.index]
        z = Fraction(case.row("labels")[case.index])
        with mpmath.workprec(200):
            return soft - mpmath.mpf(z.numerator) / z.denominator

    return Deviation(what, source, documented, acts, formula, quantity="d/dlogits")


def flush_to_zero(*, what: str, source: str, documented: bool) -> Deviation:
    """Subnormal inputs read as 0 and subnormal results written as 0 (FTZ/DAZ): acts
    where an input or the exact result is subnormal; the answer is then the exact
    value at the flushed inputs, itself flushed."""

    def flushed(case: Case) -> dict:
        out = {}
        for k, v in case.inputs.items():
            if not isinstance(v, np.ndarray) or v.dtype.kind in "iub":
                continue
            a = v.astype(np.float64)
            tiny = (a != 0) & (np.abs(a) < case.fmt.min_normal)
            if tiny.any():
                out[k] = np.where(tiny, 0.0, a).astype(v.dtype)
        return out

    def acts(case: Case) -> bool:
        if flushed(case):
            return True
        e = case.exact()
        return bool(mpmath.isfinite(e) and 0 < abs(e) < case.fmt.min_normal)

    def formula(case: Case):
        e = case.exact(**flushed(case))
        if mpmath.isfinite(e) and abs(e) < case.fmt.min_normal:
            return mpmath.mpf(0)
        return e

    return Deviation(what, source, documented, acts, formula, quantity="*")
