"""What a cell measures and how a cell is named: ``Quantity`` and ``CellKey``.

>>> key = CellKey("torch:cross_entropy", "float16", Quantity.reduce("mean", 1000))
>>> key.name
'torch:cross_entropy mean of 1000 [float16]'
>>> CellKey.parse(key.name) == key
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lossfuzz.harness.jsonio import Fields
from lossfuzz.oracles.formats import DTYPES

KINDS = ("value", "grad", "reduction")
WRT = ("logits", "probs", "labels")
REDUCTIONS = ("mean", "sum")
MAX_BATCH = 10**8
# ------------------------------------------------------------------ what a cell measures


@dataclass(frozen=True)
class Quantity:
    """What a cell measures: the values, the gradient with respect to one input, or the
    reduction (mean or sum) of a batch of losses.

    A reduction's ``batch`` is the number of rows its inputs are repeated to; None is
    the batch as drawn (a user's loss that returns its batch's mean). A gradient may
    carry a reduction too (``batch`` None): the gradient of that mean or sum."""

    kind: str = "value"
    wrt: str | None = None
    reduction: str | None = None
    batch: int | None = None

    def __post_init__(self):
        batch_ok = self.batch is None or (
            isinstance(self.batch, int) and not isinstance(self.batch, bool)
            and 1 <= self.batch <= MAX_BATCH
        )  # fmt: skip
        ok = {
            "value": self.wrt is None and self.reduction is None and self.batch is None,
            "grad": self.wrt in WRT
            and self.reduction in (None, *REDUCTIONS)
            and self.batch is None,
            "reduction": self.wrt is None and self.reduction in REDUCTIONS and batch_ok,
        }
        if not ok.get(self.kind, False):
            raise ValueError(f"not a quantity: {self!r}")

    @classmethod
    def grad(cls, wrt: str, reduction: str | None = None) -> Quantity:
        return cls("grad", wrt=wrt, reduction=reduction)

    @classmethod
    def reduce(cls, reduction: str, batch: int | None) -> Quantity:
        return cls("reduction", reduction=reduction, batch=batch)

    @property
    def is_value(self) -> bool:
        return self.kind == "value"

    @property
    def label(self) -> str:
        """ "value", "d/dlogits", "mean of 1000"; "mean" (of the batch as drawn),
        "d/dlogits of mean"."""
        if self.kind == "grad":
            return f"d/d{self.wrt}" + (f" of {self.reduction}" if self.reduction else "")
        if self.kind == "reduction":
            return self.reduction if self.batch is None else f"{self.reduction} of {self.batch}"
        return "value"

    @property
    def order(self) -> tuple:
        """Values, then gradients, then each reduction by batch size."""
        return (KINDS.index(self.kind), self.wrt or "", self.reduction or "", self.batch or 0)

    def seed_suffix(self) -> str:
        """What a cell's search seed adds for this quantity (kept as it always was)."""
        if self.kind == "grad":
            return f":d/d{self.wrt}" + (f"/{self.reduction}" if self.reduction else "")
        if self.kind == "reduction":
            return f":{self.reduction}/{self.batch or 'batch'}"
        return ""

    def to_json(self) -> dict:
        out = {"quantity": self.kind, "wrt": self.wrt}
        if self.reduction is not None:
            out |= {"reduction": self.reduction, "batch": self.batch}
        return out

    @classmethod
    def from_fields(cls, f: Fields) -> Quantity:
        kind = f.str("quantity", optional=True, default=None, choices=KINDS)
        wrt = f.str("wrt", optional=True, choices=WRT)
        reduction = f.str("reduction", optional=True, choices=REDUCTIONS)
        batch = f.int("batch", optional=True, minimum=1)
        if kind is None:  # the earliest v1 files: a cell with a wrt is a gradient
            kind = "grad" if wrt else "reduction" if reduction else "value"
        try:
            return cls(kind, wrt, reduction, batch)
        except ValueError:
            f.fail(
                "quantity",
                f"{kind!r} with wrt={wrt!r}, reduction={reduction!r}, "
                f"batch={batch!r} is not a quantity",
            )


VALUE = Quantity()
_NAME = re.compile(
    r"^(\S+)(?: (?:d/d(\w+)(?: of (mean|sum))?|(mean|sum)(?: of (\d+))?))? \[(\w+)\]$"
)


@dataclass(frozen=True)
class CellKey:
    """A cell: one impl, one dtype, one quantity. Its ``name`` is how the gate, the
    journal, JUnit and the policy's limits refer to it."""

    impl: str
    dtype: str
    quantity: Quantity = VALUE

    @property
    def name(self) -> str:
        q = self.quantity
        return (
            f"{self.impl} [{self.dtype}]" if q.is_value else f"{self.impl} {q.label} [{self.dtype}]"
        )

    @classmethod
    def parse(cls, name: str) -> CellKey:
        m = _NAME.match(name)
        if not m or m.group(6) not in DTYPES:
            raise ValueError(f"not a cell name: {name!r}")
        impl, wrt, of, reduction, batch, dtype = m.groups()
        try:
            if wrt:
                return cls(impl, dtype, Quantity.grad(wrt, of))
            if reduction:
                return cls(impl, dtype, Quantity.reduce(reduction, int(batch) if batch else None))
        except ValueError:
            raise ValueError(f"not a cell name: {name!r}") from None
        return cls(impl, dtype)

    def __str__(self) -> str:
        return self.name

    def __lt__(self, other: CellKey) -> bool:  # sorted(): by impl, dtype, then quantity
        return (self.impl, self.dtype, self.quantity.order) < (
            other.impl,
            other.dtype,
            other.quantity.order,
        )


def key_fields(f: Fields) -> CellKey:
    impl = f.str("impl")
    if not impl or len(impl) > 500 or any(c.isspace() for c in impl):
        f.fail("impl", f"{impl[:60]!r} is not an impl id")
    return CellKey(impl, f.str("dtype", choices=DTYPES), Quantity.from_fields(f))
