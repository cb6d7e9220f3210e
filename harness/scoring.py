"""Score a batch: call the impl and the oracle, and class every element of the answer.

``score`` is the one entry point: the values of a batch, their gradient with respect
to one input, or the reduction of the batch's rows repeated to a batch size, as
``Observation``s (one per output element, each with the single case it came from).
Values of the losses ``oracles/fast.py`` covers are scored on the fast path (a
float64 bound, mpmath only where it cannot decide) unless ``exact``; findings are
always scored again on the exact path before they are reported.

How impls are called and when a run stops is the ``Engine``'s: passed in, never
module state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import numpy as np

from lossfuzz import oracles
from lossfuzz.harness.errors import first_line
from lossfuzz.harness.isolation import IN_PROCESS, ImplFailed, Stopped, WorkerStartError
from lossfuzz.harness.metrics import (
    CLASSES,
    CODE,
    Score,
    class_codes,
    classify,
    classify_exact,
)
from lossfuzz.harness.registry import Impl
from lossfuzz.harness.results import VALUE, Quantity
from lossfuzz.harness.ulp import ulp_errors, ulp_exponents
from lossfuzz.oracles import fast, reductions
from lossfuzz.oracles.api import check_elementwise_domain, evaluate_where
from lossfuzz.oracles.formats import round_mpf


class Stop:
    """Set by a signal handler: a run ends at the next case (an exception raised from the
    handler could land inside Hypothesis or a framework)."""

    def __init__(self):
        self.signum: int | None = None

    def set(self, signum: int) -> None:
        self.signum = signum

    def __bool__(self) -> bool:
        return self.signum is not None


@dataclass
class Engine:
    """How a run calls impls: ``caller`` for the search, ``confirmer`` (another process
    under isolation) to confirm findings; ``stop`` ends the run; ``fast_path`` False
    scores every value through mpmath (the benchmarks and the equivalence tests)."""

    caller: object = IN_PROCESS
    confirmer: object = IN_PROCESS
    stop: Stop = field(default_factory=Stop)
    fast_path: bool = True

    @classmethod
    def isolated(cls, isolation, stop: Stop | None = None) -> Engine:
        return cls(isolation.search, isolation.confirm, stop if stop is not None else Stop())


@dataclass
class Observation:
    """One scored output element, with the single case (batch of one) that produced it."""

    inputs: dict  # cast inputs of the single case, class axis last
    index: int  # the element within that case's output (rowwise losses have several)
    score: Score
    got: float | None
    exact: mpmath.mpf | None
    reference: float | None
    error: str | None = None  # "TypeName: message" when the impl raised

    @property
    def cls(self) -> str:
        return self.score.cls


RUN_ENDING = (Stopped, WorkerStartError)  # not an impl's failure: they end the run


def checked(got, shape: tuple) -> np.ndarray:
    """An impl's answer as a real floating-point array of ``shape``, or ValueError saying
    what it is instead (an object, string, integer or complex array; another shape)."""
    got = np.asarray(got)
    if got.dtype.kind == "c":
        raise ValueError(f"returned complex numbers ({got.dtype}), expected real ones")
    if got.dtype.kind != "f" and got.dtype.name != "bfloat16":
        raise ValueError(f"returned an array of {got.dtype}, expected floating point")
    if got.shape != tuple(shape):
        raise ValueError(f"returned shape {got.shape}, expected {tuple(shape)}")
    return got


def single_case(inputs: dict, row: int) -> dict:
    """The row-th case of a batch, as a batch of one."""
    return {
        name: value[row : row + 1] if isinstance(value, np.ndarray) and value.ndim >= 1 else value
        for name, value in inputs.items()
    }


def _failed(engine, impl, dtype, cast, tolerance, quantity, exc, n, exact, caller) -> list:
    """Observations for a batch whose call failed: each case alone, to find which fail."""
    if n > 1:
        out = []
        costly = isinstance(exc, ImplFailed) and exc.kind in ("crash", "timeout")
        for row in range(n):
            one = single_case(cast, row)
            out += score(engine, impl, dtype, one, tolerance, quantity, exact=exact, caller=caller)
            if costly and out[-1].cls in ("crash", "timeout"):
                break  # the input that kills is found; each further one would cost as much
        return out
    if isinstance(exc, ImplFailed):
        kind, message = exc.kind, exc.message
    else:
        kind, message = "error", first_line(exc)
    return [Observation(cast, 0, Score(kind, math.inf, math.inf), None, None, None, message[:500])]


def score(
    engine: Engine,
    impl: Impl,
    dtype: str,
    inputs: dict,
    tolerance: float,
    quantity: Quantity = VALUE,
    *,
    exact: bool = False,
    caller=None,
) -> list[Observation]:
    """Call the impl on a batch and class every element of its answer (see the module).
    ``caller`` overrides the engine's (the confirming worker)."""
    caller = caller or engine.caller
    if quantity.kind == "reduction":
        return score_reduced(engine, impl, dtype, inputs, tolerance, quantity, caller)
    if quantity.is_value and not exact and engine.fast_path and fast.covers(impl.loss, dtype):
        scored = _score_fast(engine, impl, dtype, inputs, tolerance, caller)
        if scored is not None:
            return scored
    if quantity.is_value:
        ev = oracles.evaluate(impl.loss, dtype, **inputs)
    else:
        scale = _mean_scale(impl.loss, inputs) if quantity.reduction == "mean" else None
        ev = oracles.evaluate_gradient(impl.loss, quantity.wrt, dtype, scale=scale, **inputs)
    cast = dict(ev.inputs)
    try:
        got = checked(caller.answer(impl, cast, quantity, ev.reference.size), ev.reference.shape)
    except RUN_ENDING:
        raise
    except Exception as exc:  # noqa: BLE001 - an impl failing is a finding, not our crash
        n = ev.reference.shape[0] if ev.reference.ndim else 1
        return _failed(engine, impl, dtype, cast, tolerance, quantity, exc, n, exact, caller)
    is_loss = ev.loss.is_loss and quantity.is_value
    flat = got.astype(np.float64).ravel()
    exacts = ev.exact.ravel().tolist()
    refs = ev.reference.astype(np.float64).ravel()
    scores = classify_exact(flat, exacts, refs, ev.fmt, tolerance=tolerance, is_loss=is_loss)
    per_case = int(np.prod(ev.reference.shape[1:])) if ev.reference.ndim > 1 else 1
    out = []
    for i, s in enumerate(scores):
        row, index = divmod(i, per_case) if ev.reference.ndim else (0, 0)
        case = single_case(cast, row) if ev.reference.ndim else cast
        out.append(Observation(case, index, s, float(flat[i]), exacts[i], float(refs[i])))
    return out


def rows_of(loss: str, inputs: dict) -> int:
    """How many losses a batch holds: its elements, or its rows along the class axis."""
    spec = oracles.get_loss(loss)
    primary = np.asarray(inputs[spec.primary])
    if spec.shape == "elementwise":
        return int(primary.size)
    return int(primary.size // max(1, primary.shape[inputs.get("axis", -1)]))


def _mean_scale(loss: str, inputs: dict) -> Fraction:
    return Fraction(1, max(1, rows_of(loss, inputs)))


def score_reduced(engine, impl, dtype, inputs, tolerance, quantity, caller=None) -> list:
    """The impl's reduction of a batch made of ``inputs``'s rows repeated, in order, to the
    quantity's batch size, scored against the exact sum or mean of the exact losses: one
    Observation whose inputs are the rows (what a reproducer repeats).

    An answer outside the tolerance of the exact value is forgiven when it is within
    the tolerance of the sum (or mean) of the losses each correctly rounded to the
    dtype: no implementation that holds its losses in the dtype can do better, so
    such an error is the dtype's, not the reduction's (a float16 loss of 4.1e-8 is
    6e-8, and a thousand of them sum to 6e-5, not 4.1e-5). It is classed ok and keeps
    its ULP and absolute error from the exact value."""
    caller = caller or engine.caller
    spec = oracles.get_loss(impl.loss)
    cast = oracles.cast_inputs(spec, dtype, **inputs)
    if quantity.batch is None:  # the batch as drawn: every loss once
        counts = [1] * rows_of(spec.id, cast)
    else:
        rows = next(v for v in cast.values() if isinstance(v, np.ndarray) and v.ndim).shape[0]
        counts = reductions.tile_counts(rows, quantity.batch)
    exact, ref = reductions.reduce(spec.id, quantity.reduction, dtype, counts=counts, **cast)
    try:
        got = np.asarray(caller.answer(impl, cast, quantity, 1))
        if got.size != 1:
            raise ValueError(f"returned shape {got.shape}, expected one number")
        got = checked(got, got.shape)
    except RUN_ENDING:
        raise
    except Exception as exc:  # noqa: BLE001 - an impl failing is a finding, not our crash
        return _failed(engine, impl, dtype, cast, tolerance, quantity, exc, 1, True, caller)
    g = float(got.astype(np.float64).ravel()[0])
    fmt = oracles.get_format(dtype)
    s = classify(g, exact, ref, fmt, tolerance=tolerance, is_loss=spec.is_loss)
    if s.cls not in ("exact", "ok") and math.isfinite(g):
        stored = _sum_of_rounded(spec, dtype, cast, counts, quantity.reduction)
        if stored is not None:
            again = classify(g, stored[0], stored[1], fmt, tolerance=tolerance, is_loss=True)
            if again.cls in ("exact", "ok"):
                s = Score("ok", s.ulp, s.abs_error)  # the error from the exact value, kept
    return [Observation(cast, 0, s, g, exact, ref)]


def _sum_of_rounded(spec, dtype, cast, counts, reduction):
    """(exact, correctly rounded) sum or mean of the rows' losses each rounded to the
    dtype; None where a rounded loss is not finite."""
    rounded = oracles.evaluate(spec, dtype, **cast).reference.astype(np.float64).ravel()
    terms = [(float(v), w) for v, w in zip(rounded.tolist(), counts) if w]
    if not all(math.isfinite(v) for v, _ in terms):
        return None
    total = sum(Fraction(v) * w for v, w in terms)
    if reduction == "mean":
        total /= sum(counts)
    with mpmath.workprec(200):
        value = mpmath.mpf(total.numerator) / total.denominator
    return value, float(round_mpf(value, oracles.get_format(dtype)))


def _score_fast(engine, impl, dtype, inputs, tolerance, caller):
    """``score`` on the fast path: vectorised classes and ULP errors, with mpmath only
    for the elements whose rounding or class the float64 bound cannot decide. None
    where the impl raises or returns a wrong shape: the exact path reports that."""
    spec = oracles.get_loss(impl.loss)
    cast = oracles.cast_inputs(spec, dtype, **inputs)
    check_elementwise_domain(spec, cast)
    fv = fast.fast_values(spec.id, dtype, cast)
    try:
        got = checked(caller.answer(impl, cast, VALUE, fv.value.size), fv.value.shape)
    except RUN_ENDING:
        raise
    except ImplFailed as exc:  # not twice: a crash or a hang costs a worker or a timeout
        n = fv.value.shape[0] if fv.value.ndim else 1
        return _failed(engine, impl, dtype, cast, tolerance, VALUE, exc, n, False, caller)
    except Exception:  # noqa: BLE001 - the exact path finds which cases raise, and why
        return None
    fmt = oracles.get_format(dtype)
    y = got.astype(np.float64).ravel()
    codes, ulp, diff, need = classify_fast(y, fv, fmt, tolerance, spec.is_loss)
    v, ref = fv.value.ravel(), fv.reference.ravel()
    per_case = int(np.prod(got.shape[1:])) if got.ndim > 1 else 1
    exact_of = {}
    if need.any():
        ev = evaluate_where(spec, dtype, cast, need.reshape(got.shape))
        picked = np.flatnonzero(need)
        exacts = ev.exact.ravel().tolist()
        refs = ev.reference.astype(np.float64).ravel()
        again = classify_exact(
            y[picked], exacts, refs, fmt, tolerance=tolerance, is_loss=spec.is_loss
        )
        for i, ex, r, s in zip(picked.tolist(), exacts, refs.tolist(), again):
            exact_of[i] = (ex, r, s)
    out = []
    for i in range(y.size):
        row, index = divmod(i, per_case) if got.ndim else (0, 0)
        case = single_case(cast, row) if got.ndim else cast
        if i in exact_of:
            ex, r, s = exact_of[i]
            out.append(Observation(case, index, s, float(y[i]), ex, r))
        else:
            s = Score(CLASSES[codes[i]], float(ulp[i]), float(diff[i]))
            approx = mpmath.mpf(float(v[i]))  # profile and plots only; findings are exact
            out.append(Observation(case, index, s, float(y[i]), approx, float(ref[i])))
    return out


def classify_fast(y: np.ndarray, fv, fmt, tolerance: float, is_loss: bool):
    """The classes of answers ``y`` against the fast path's bounded values.

    Returns class codes (indices into CLASSES), ULP errors, absolute errors, and the
    mask of elements the bound cannot class (the rounding undecided, the exact value's
    sign unknown, the exact value within the bound of a power of two, where the ulp
    changes, or the error within the bound of the tolerance): those need mpmath.
    Elsewhere ULP errors are within the bound's width in ULPs (about 2**-20 for
    float32, 2**-37 for float64) plus 2**-50 relative of the exact ones, absolute
    errors likewise. Large float16/bfloat16/float32 batches are classed by one
    compiled loop (``oracles/kernels.py``) with the same results.
    """
    from lossfuzz.oracles import kernels

    need = ~fv.decided.ravel()
    errors = getattr(fv, "errors", None)  # float64: against the double-double (fast64.py)
    special = np.zeros(need.shape, dtype=bool)
    if errors is not None:
        ulp, diff, ulp_bound, positive, negative, unsure = errors(y)
        v = None
    else:
        v, bound = fv.value.ravel(), fv.bound.ravel()
        # decided NaN and infinities are exact (the row losses' limits): scored as ulp_error does
        special = fv.decided.ravel() & ~np.isfinite(v)
        if not special.any() and kernels.wanted(y.size):
            return kernels.classify(y, fv, fmt, tolerance, is_loss)
        ulp, diff = ulp_errors(y, v, fmt)
        if special.any():
            hit = (np.isnan(y) & np.isnan(v)) | (y == v)
            ulp = np.where(special, np.where(hit, 0.0, np.inf), ulp)
            diff = np.where(special, np.where(hit, 0.0, np.inf), diff)
        with np.errstate(all="ignore"):
            ulp_bound = np.ldexp(bound, -ulp_exponents(v, fmt)) + ulp * 2.0**-50
            a = np.abs(v)
            unsure = ulp_exponents(a - bound, fmt) != ulp_exponents(a + bound, fmt)
        positive, negative = v - bound > 0, v + bound < 0
    codes = class_codes(
        y,
        fv.reference.ravel(),
        ulp,
        positive=positive,
        negative=negative,
        exact_nan=special & np.isnan(v) if v is not None else False,
        exact_inf=np.where(special & np.isinf(v), v, 0.0) if v is not None else 0.0,
        tolerance=tolerance,
        is_loss=is_loss,
    )
    nan, same, sign = np.isnan(y), codes == CODE["exact"], codes == CODE["sign"]
    need |= ~same & ~nan & (y != 0) & ~positive & ~negative  # the exact value's sign unknown
    need |= ~same & unsure  # its ulp unknown: sigmoid(40) is 1 - 4e-18, under 1
    need |= ~same & ~sign & np.isfinite(y) & (np.abs(ulp - tolerance) <= ulp_bound)
    return codes, ulp, diff, need & ~special
