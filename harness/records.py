"""The results model's smaller records: a compiled twin's comparison with its eager impl,
and the contract, special-value and pitfall tables (``lossfuzz contracts``).

Each is frozen, written by ``to_json`` and validated by ``from_fields``
(``results.py`` holds the cells, findings and the file itself).
"""

from __future__ import annotations

from dataclasses import dataclass

from lossfuzz.harness.cases import Inputs
from lossfuzz.harness.jsonio import Fields, hexfloat, number
from lossfuzz.harness.metrics import CLASSES

CONTRACTS_SCHEMA = "lossfuzz/contracts/1"


@dataclass(frozen=True)
class Tally:
    """The cases of a cell of one kind of input (finite inputs, or special values: an
    infinity or NaN among them): how many, their counts per class, the largest errors."""

    cases: int = 0
    counts: tuple[tuple[str, int], ...] = ()
    max_ulp: float = 0.0
    max_finite_ulp: float = 0.0

    @property
    def findings(self) -> int:
        """Cases of a finding class."""
        return sum(n for c, n in self.counts if c not in ("exact", "ok"))

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(c for c, n in self.counts if n and c not in ("exact", "ok"))

    def to_json(self) -> dict:
        return {
            "cases": self.cases,
            "counts": dict(self.counts),
            "max_ulp": number(self.max_ulp),
            "max_finite_ulp": number(self.max_finite_ulp),
        }

    @classmethod
    def from_fields(cls, f: Fields) -> Tally:
        counts = []
        for c, n in f.dict("counts").items():
            if c not in CLASSES or not isinstance(n, int) or isinstance(n, bool) or n < 0:
                f.fail("counts", f"{c[:40]!r}: {n!r} is not a class and a count"[:100])
            counts.append((c, n))
        counts.sort(key=lambda cn: CLASSES.index(cn[0]))
        return cls(
            f.int("cases", minimum=0),
            tuple(counts),
            f.float("max_ulp", minimum=0),
            f.float("max_finite_ulp", minimum=0),
        )


@dataclass(frozen=True)
class Explanation:
    """The mechanism a library builds in (a clip, a clamp) that produced a finding: where it
    is stated, and whether that is the library's documentation or only its source."""

    what: str
    source: str
    documented: bool


@dataclass(frozen=True)
class Answer:
    """One side of a disagreement: an answer and its score against the exact value."""

    got: float
    cls: str
    ulp: float
    abs_error: float

    def to_json(self) -> dict:
        return {
            "got": hexfloat(self.got),
            "got_repr": repr(self.got),
            "class": self.cls,
            "ulp": number(self.ulp),
            "abs_error": number(self.abs_error),
        }

    @classmethod
    def from_fields(cls, f: Fields) -> Answer:
        return cls(
            f.float("got", nan=True),
            f.str("class", choices=CLASSES),
            f.float("ulp", minimum=0),
            f.float("abs_error", minimum=0),
        )


@dataclass(frozen=True)
class Disagreement:
    """A case where a compiled twin and its eager impl answer differently."""

    inputs: Inputs
    index: int
    exact: str
    reference: float
    compiled: Answer
    eager: Answer
    message: str
    reproducer: str

    def to_json(self, dtype: str) -> dict:
        return {
            "inputs": self.inputs.to_json(dtype),
            "index": self.index,
            "exact": self.exact,
            "reference": hexfloat(self.reference),
            "compiled": self.compiled.to_json(),
            "eager": self.eager.to_json(),
            "message": self.message,
            "reproducer": self.reproducer,
        }

    @classmethod
    def from_fields(cls, f: Fields, dtype: str) -> Disagreement:
        return cls(
            Inputs.from_fields(f, "inputs", dtype),
            f.int("index", minimum=0),
            f.str("exact"),
            f.float("reference", nan=True),
            Answer.from_fields(f.sub("compiled")),
            Answer.from_fields(f.sub("eager")),
            f.str("message"),
            f.str("reproducer"),
        )


@dataclass(frozen=True)
class Twin:
    """A compiled twin's cell ran its eager impl on every batch too."""

    mode: str  # tf-xla, keras-xla, torch-compile, torch-cuda, tf-gpu
    eager: str  # the eager impl's id
    compared: int  # elements both answered
    disagreements: int  # of those, elements whose bits differ
    cases: tuple[Disagreement, ...] = ()  # each kind of disagreement once, settled alone

    def to_json(self, dtype: str) -> dict:
        return {
            "mode": self.mode,
            "twin": self.eager,
            "compared": self.compared,
            "disagreements": self.disagreements,
            "disagreement_cases": [d.to_json(dtype) for d in self.cases],
        }

    @classmethod
    def from_fields(cls, f: Fields, dtype: str) -> Twin:
        return cls(
            f.str("mode", optional=True, default=""),
            f.str("twin"),
            f.int("compared", optional=True, default=0, minimum=0),
            f.int("disagreements", optional=True, default=0, minimum=0),
            tuple(
                Disagreement.from_fields(d, dtype)
                for d in f.items("disagreement_cases", optional=True)
            ),
        )


# ------------------------------------------------------------------ contracts


@dataclass(frozen=True)
class ContractRow:
    loss: str
    impl: str
    check: str
    input: str
    documented: str
    source: str
    observed: str
    verdict: str

    @property
    def silent(self) -> bool:
        return self.verdict.upper().startswith("SILENT")


@dataclass(frozen=True)
class SpecialAnswer:
    impl: str
    observed: str
    verdict: str


@dataclass(frozen=True)
class SpecialRow:
    rule: str
    loss: str
    exact: str
    answers: tuple[SpecialAnswer, ...]


@dataclass(frozen=True)
class Pitfall:
    pitfall: str
    input: str
    measured: str
    error: str


_CONTRACT_FIELDS = ("loss", "impl", "check", "input", "documented", "source", "observed", "verdict")
_PITFALL_FIELDS = ("pitfall", "input", "measured", "error")


@dataclass(frozen=True)
class Contracts:
    """The three tables of ``lossfuzz contracts``."""

    contracts: tuple[ContractRow, ...] = ()
    special_values: tuple[SpecialRow, ...] = ()
    pitfalls: tuple[Pitfall, ...] = ()

    def to_json(self) -> dict:
        return {
            "schema": CONTRACTS_SCHEMA,
            "contracts": [{k: getattr(r, k) for k in _CONTRACT_FIELDS} for r in self.contracts],
            "special_values": [
                {
                    "rule": s.rule,
                    "loss": s.loss,
                    "exact": s.exact,
                    "answers": [
                        {"impl": a.impl, "observed": a.observed, "verdict": a.verdict}
                        for a in s.answers
                    ],
                }
                for s in self.special_values
            ],
            "pitfalls": [{k: getattr(p, k) for k in _PITFALL_FIELDS} for p in self.pitfalls],
        }

    @classmethod
    def from_fields(cls, f: Fields) -> Contracts:
        return cls(
            tuple(
                ContractRow(*(r.str(k) for k in _CONTRACT_FIELDS))
                for r in f.items("contracts", optional=True)
            ),
            tuple(
                SpecialRow(
                    s.str("rule"),
                    s.str("loss"),
                    s.str("exact"),
                    tuple(
                        SpecialAnswer(a.str("impl"), a.str("observed"), a.str("verdict"))
                        for a in s.items("answers", optional=True)
                    ),
                )
                for s in f.items("special_values", optional=True)
            ),
            tuple(
                Pitfall(*(p.str(k) for k in _PITFALL_FIELDS))
                for p in f.items("pitfalls", optional=True)
            ),
        )
