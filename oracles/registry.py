"""The table of losses the oracle defines, filled by the ``definition`` decorator.

A definition is a pure function of exact inputs (raw mpf tuples for floats,
Fractions for label coefficients) returning an exact special value or an interval
expression (``interval.py``). The decorator records what the function needs so
that ``api.py`` can cast, check and route inputs the same way for every loss.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

SHAPES = ("elementwise", "reduce", "rowwise")


@dataclass(frozen=True)
class Loss:
    """One exactly defined function: a loss, a library's variant of one, or a building block.

    shape:    "elementwise"; "reduce" (one value per row along ``axis``);
              "rowwise" (a value per entry of the row, like softmax).
    primary:  the main input, "logits" or "probs".
    labels:   None, "dense" (same shape as the primary input) or "sparse" (class indices).
    params:   further accepted inputs ("pos_weight", "label_smoothing").
    is_loss:  a cross-entropy, non-negative by definition (a negative answer is a sign error).
    variant_of: the canonical loss this documented library variant modifies.
    """

    id: str
    fn: Callable
    shape: str
    primary: str
    labels: str | None
    params: tuple[str, ...]
    is_loss: bool
    formula: str
    variant_of: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        names = (self.primary,) + (("labels",) if self.labels else ())
        return names + self.params + (("axis",) if self.shape != "elementwise" else ())


LOSSES: dict[str, Loss] = {}


def definition(
    id: str,
    *,
    shape: str,
    primary: str,
    formula: str,
    labels: str | None = None,
    params: tuple[str, ...] = (),
    is_loss: bool = True,
    variant_of: str | None = None,
):
    """Register the decorated function as the exact definition of ``id``."""
    assert shape in SHAPES, shape

    def register(fn: Callable) -> Callable:
        if id in LOSSES:
            raise ValueError(f"loss {id!r} defined twice")
        LOSSES[id] = Loss(
            id, fn, shape, primary, labels, tuple(params), is_loss, formula, variant_of
        )
        return fn

    return register


class UnknownName(ValueError):
    """A name that lossfuzz does not know, with the closest ones it does."""

    def __init__(self, kind: str, name: str, known):
        close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")
        self.name = name
        self.suggestions = close


def get_loss(loss_id: str) -> Loss:
    from lossfuzz.oracles import elementwise, softmax  # noqa: F401  (fill the table)

    try:
        return LOSSES[loss_id]
    except KeyError:
        raise UnknownName("loss", loss_id, LOSSES) from None
