"""The table of losses the oracle defines, filled by the ``definition`` decorator.

A definition is a pure function of exact inputs (raw mpf tuples for floats,
Fractions for label coefficients) returning an exact special value or an interval
expression (``interval.py``). The decorator records what the function needs so
that ``api.py`` can cast, check and route inputs the same way for every loss.
"""

from __future__ import annotations

import difflib
import re
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


def _words(name: str) -> tuple[str, list[str]]:
    """An id's prefix (before the last ':') and its words."""
    prefix, _, rest = name.lower().rpartition(":")
    return prefix, [w for w in re.split(r"[_\-.\s]+", rest) if w]


def _abbreviates(short: str, words: list[str]) -> int | None:
    """How well ``short`` abbreviates ``words``: 0 if it is one of them or the initials
    of the first few ("bce" of binary_cross_entropy...), 1 if the initials of a run
    further on (sigmoid_binary_cross_entropy), None if neither."""
    if short in words or "".join(w[0] for w in words[: len(short)]) == short:
        return 0
    initials = "".join(w[0] for w in words)
    return 1 if len(short) > 1 and short in initials else None


def closest(name: str, known, n: int = 3) -> list[str]:
    """The known names a person most likely meant by ``name``: an abbreviation or a
    subset of the words of a known id (with the same prefix, where the prefix is one
    lossfuzz has), then the most words in common, then spelling."""
    name = str(name)
    known = list(known)
    prefix, words = _words(name)
    prefixes = {_words(k)[0] for k in known}
    if prefix and prefix not in prefixes:  # "numpy:..." where no impl id starts so
        words, prefix = re.split(r"[_\-.\s]+", prefix) + words, ""
    scored = []
    for k in known:
        kp, kw = _words(k)
        if (prefix and kp and prefix != kp) or not words:
            continue
        rank = _abbreviates(words[0], kw) if len(words) == 1 else None
        joined = {a + b for a, b in zip(kw, kw[1:])}  # "crossentropy" is "cross_entropy"
        common = len(set(words) & (set(kw + [kp]) | joined))
        like = difflib.SequenceMatcher(None, name, k).ratio()
        if rank is not None:
            scored.append((rank, len(kw), k))
        elif set(words) <= set(kw):
            scored.append((2, len(kw) - len(words), k))
        elif len(words) > 1 and 2 * common >= len(words):
            scored.append((3, -common + ("-" in kp) / 2 - like / 4, k))  # eager before twins
    by_words = [k for *_, k in sorted(scored)]
    spelled = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    if prefix:  # the same framework's names before another's
        spelled.sort(key=lambda k: _words(k)[0] != prefix)
    out = []
    for k in by_words + spelled if by_words else spelled:
        if k not in out:
            out.append(k)
    return out[:n]


class UnknownName(ValueError):
    """A name that lossfuzz does not know, with the closest ones it does."""

    def __init__(self, kind: str, name: str, known):
        close = closest(name, known)
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
