"""API contracts, special values and the seeds' pitfalls, checked on the real frameworks.

Three tables, all in the results file (key ``contracts``) and in the report's
"Contracts and pitfalls" section:

- contracts: invalid or unusual inputs (a shape mismatch, a class index out of
  range, labels or probabilities outside [0, 1], an empty batch, one class,
  integer or mixed dtypes, strided or broadcast inputs) given to each framework
  loss, with what its documentation promises, what it did (raised which error,
  returned NaN, returned numbers), and a verdict. A number returned for an input
  the documentation rules out, or a wrong number for a valid one, is a
  ``silent wrong answer``.
- special values: each loss at +-inf and NaN logits, probabilities of exactly 0
  and 1, +-0, fully masked rows, one unmasked entry and label mass on a masked
  entry: the oracle's exact value (``SPECIAL``, pinned by tests/test_contracts.py
  under ids that read like the rule) beside each framework's answer.
- pitfalls: misuses the seeds warn about, measured with the oracle.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from lossfuzz import oracles
from lossfuzz.harness.errors import first_line
from lossfuzz.harness.records import (
    ContractRow,
    Contracts,
    Pitfall,
    SpecialAnswer,
    SpecialRow,
)
from lossfuzz.harness.ulp import ulp_error

INF, NAN = math.inf, math.nan

# (loss, inputs, exact value): the rules every framework is compared against
SPECIAL = [
    ("sigmoid_cross_entropy_with_logits", dict(logits=INF, labels=1.0), 0.0),
    ("sigmoid_cross_entropy_with_logits", dict(logits=INF, labels=0.0), INF),
    ("sigmoid_cross_entropy_with_logits", dict(logits=-INF, labels=0.0), 0.0),
    ("sigmoid_cross_entropy_with_logits", dict(logits=-INF, labels=1.0), INF),
    ("sigmoid_cross_entropy_with_logits", dict(logits=INF, labels=0.5), INF),
    ("sigmoid_cross_entropy_with_logits", dict(logits=NAN, labels=0.0), NAN),
    ("sigmoid_cross_entropy_with_logits", dict(logits=0.0, labels=0.0), math.log(2)),
    ("sigmoid_cross_entropy_with_logits", dict(logits=-0.0, labels=1.0), math.log(2)),
    ("softmax_cross_entropy_with_logits", dict(logits=[[0.0, -INF]], labels=[[1.0, 0.0]]), 0.0),
    ("softmax_cross_entropy_with_logits", dict(logits=[[0.0, -INF]], labels=[[0.0, 1.0]]), INF),
    ("softmax_cross_entropy_with_logits", dict(logits=[[0.0, -INF]], labels=[[0.5, 0.5]]), INF),
    ("softmax_cross_entropy_with_logits", dict(logits=[[-INF, -INF]], labels=[[1.0, 0.0]]), NAN),
    ("softmax_cross_entropy_with_logits", dict(logits=[[INF, 0.0]], labels=[[1.0, 0.0]]), 0.0),
    ("softmax_cross_entropy_with_logits", dict(logits=[[NAN, 0.0]], labels=[[0.0, 1.0]]), NAN),
    ("softmax_cross_entropy_with_logits", dict(logits=[[3.0]], labels=[[1.0]]), 0.0),
    ("sparse_softmax_cross_entropy_with_logits", dict(logits=[[0.0, -INF]], labels=[0]), 0.0),
    ("sparse_softmax_cross_entropy_with_logits", dict(logits=[[0.0, -INF]], labels=[1]), INF),
    ("sparse_softmax_cross_entropy_with_logits", dict(logits=[[-INF, -INF]], labels=[0]), NAN),
    ("sparse_softmax_cross_entropy_with_logits", dict(logits=[[INF, 0.0]], labels=[0]), 0.0),
    ("binary_crossentropy", dict(probs=0.0, labels=0.0), 0.0),
    ("binary_crossentropy", dict(probs=1.0, labels=1.0), 0.0),
    ("binary_crossentropy", dict(probs=0.0, labels=1.0), INF),
    ("binary_crossentropy", dict(probs=1.0, labels=0.0), INF),
    ("binary_crossentropy", dict(probs=0.5, labels=0.5), math.log(2)),
    ("categorical_crossentropy", dict(probs=[[1.0, 0.0]], labels=[[1.0, 0.0]]), 0.0),
    ("categorical_crossentropy", dict(probs=[[0.0, 1.0]], labels=[[1.0, 0.0]]), INF),
    ("sparse_categorical_crossentropy", dict(probs=[[0.0, 1.0]], labels=[0]), INF),
    ("softplus", dict(logits=INF), INF),
    ("softplus", dict(logits=-INF), 0.0),
    ("log_sigmoid", dict(logits=-INF), -INF),
    ("sigmoid", dict(logits=INF), 1.0),
    ("sigmoid", dict(logits=-INF), 0.0),
    ("logsumexp", dict(logits=[[-INF, -INF]]), -INF),
    ("logsumexp", dict(logits=[[INF, INF]]), INF),
]


def _show(v) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        arr = np.asarray(v, dtype=float).ravel()
        inner = ", ".join(_show(x) for x in arr)
        return f"[{inner}]"
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    return f"{v:.6g}"


def rule(loss: str, inputs: dict, value: float) -> str:
    """``sigmoid_cross_entropy_with_logits(logits=+inf, labels=1) -> 0``."""
    args = ", ".join(f"{k}={_show(v)}" for k, v in inputs.items())
    shown = "log(2)" if value == math.log(2) else _show(value)
    return f"{loss}({args}) -> {shown}"


# ------------------------------------------------------------------ framework impls


def _impls(loss: str) -> list:
    """Every framework impl of ``loss`` (or of a library's variant of it) that loads here,
    eager and compiled alike (XLA and torch.compile answer invalid inputs their own way);
    hand-written formulas and user code promise nothing."""
    from lossfuzz.harness.registry import load_all, skipped_reason

    out = []
    for impl in load_all().values():
        if impl.framework is None or impl.mode in ("torch-cuda", "tf-gpu"):
            continue
        spec = oracles.get_loss(impl.loss)
        if loss in (spec.id, spec.variant_of) and skipped_reason(impl) is None:
            out.append(impl)
    return out


def _with_params(impl, inputs: dict) -> dict:
    inputs = dict(inputs)
    if "label_smoothing" in impl.params:
        inputs.setdefault("label_smoothing", 0.0)
    if "axis" in (impl.call or ""):
        inputs.setdefault("axis", -1)
    return inputs


def observe(impl, inputs: dict) -> dict:
    """What the impl does with raw NumPy ``inputs``: raised, NaN, or its numbers."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = np.asarray(impl.answer(_with_params(impl, inputs)), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - raising is what is observed
        return {
            "raised": type(exc).__name__,
            "message": first_line(exc, 300).partition(": ")[2][:200],
        }
    return {"values": [float(v) for v in got.ravel()], "shape": list(got.shape)}


def _observed_text(obs: dict) -> str:
    if "raised" in obs:
        return f"raises {obs['raised']}: {obs['message']}"
    vals = obs["values"]
    if not vals:
        return f"returns an empty result, shape {tuple(obs['shape'])}"
    shown = ", ".join(_show(v) for v in vals[:4]) + (", ..." if len(vals) > 4 else "")
    return f"returns [{shown}]"


def special_values() -> list[SpecialRow]:
    rows = []
    for loss, inputs, value in SPECIAL:
        ev = oracles.evaluate(loss, "float32", **inputs)
        exact = ev.exact.ravel()[0]
        cast = oracles.cast_inputs(loss, "float32", **inputs)
        answers = []
        for impl in _impls(loss):
            obs = observe(impl, {k: v for k, v in cast.items() if k != "axis"})
            verdict = "raises"
            if "values" in obs:
                got = obs["values"][0] if obs["values"] else NAN
                err = ulp_error(got, exact, ev.fmt)
                verdict = "exact" if err <= 0.5 else "within 4 ULP" if err <= 4 else "differs"
            answers.append(SpecialAnswer(impl.id, _observed_text(obs), verdict))
        rows.append(
            SpecialRow(rule(loss, inputs, value), loss, _show(float(exact)), tuple(answers))
        )
    return rows


# ------------------------------------------------------------------ contracts


@dataclass(frozen=True)
class Check:
    """One contract check: an input given to every framework impl of ``loss``.

    ``family`` and ``about`` name the documentation it is held to (the frameworks'
    modules record it with ``registry.document``); ``valid`` is the input the oracle
    scores the answer against, or None where the input is outside the loss's domain
    or contract (then the answer should be an error)."""

    loss: str
    name: str
    input: str
    inputs: dict
    family: str
    about: str
    valid: dict | None


F32 = np.float32
X3 = np.array([-2.0, 0.5, 3.0], dtype=F32)
Z3 = np.array([0.0, 1.0, 0.25], dtype=F32)
X23 = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 9.0]], dtype=F32)
Z23 = np.array([[0.0, 1.0, 0.0], [0.25, 0.25, 0.5]], dtype=F32)
P3 = np.array([0.25, 0.5, 0.75], dtype=F32)
SIGMOID, SPARSE = "sigmoid_cross_entropy_with_logits", "sparse_softmax_cross_entropy_with_logits"
SOFTMAX, BCE = "softmax_cross_entropy_with_logits", "binary_crossentropy"

CHECKS = (
    Check(SIGMOID, "shape mismatch", "logits (3,), labels (2,)",
          dict(logits=X3, labels=Z3[:2]), "sigmoid", "shape", None),
    Check(SIGMOID, "label above 1", "labels = 1.5",
          dict(logits=X3, labels=np.full(3, 1.5, F32)), "sigmoid", "labels", None),
    Check(SIGMOID, "label below 0", "labels = -0.5",
          dict(logits=X3, labels=np.full(3, -0.5, F32)), "sigmoid", "labels", None),
    Check(SIGMOID, "empty batch", "logits (0,), labels (0,)",
          dict(logits=X3[:0], labels=Z3[:0]), "sigmoid", "empty",
          dict(logits=X3[:0], labels=Z3[:0])),
    Check(SIGMOID, "integer labels", "labels int64 [0, 1, 0]",
          dict(logits=X3, labels=np.array([0, 1, 0])), "sigmoid", "dtype",
          dict(logits=X3, labels=np.array([0.0, 1.0, 0.0], F32))),
    Check(SIGMOID, "mixed float dtypes", "logits float32, labels float64",
          dict(logits=X3, labels=Z3.astype(np.float64)), "sigmoid", "dtype",
          dict(logits=X3, labels=Z3)),
    Check(SIGMOID, "strided input", "logits a view with stride 2",
          dict(logits=np.repeat(X3, 2)[::2], labels=Z3), "sigmoid", "strided",
          dict(logits=X3, labels=Z3)),
    Check(SIGMOID, "broadcast labels", "logits (3,), labels (1,) = [1]",
          dict(logits=X3, labels=np.ones(1, F32)), "sigmoid", "shape", None),
    Check(SPARSE, "class index -1", "labels [-1, 0] for 3 classes",
          dict(logits=X23, labels=np.array([-1, 0])), "sparse", "index", None),
    Check(SPARSE, "class index == classes", "labels [3, 0] for 3 classes",
          dict(logits=X23, labels=np.array([3, 0])), "sparse", "index", None),
    Check(SPARSE, "one class", "logits (2, 1), labels [0, 0]: always 0 (NLABELS = 1)",
          dict(logits=X23[:, :1], labels=np.array([0, 0])), "sparse", "one-class",
          dict(logits=X23[:, :1], labels=np.array([0, 0]))),
    Check(SPARSE, "empty batch", "logits (0, 3), labels (0,)",
          dict(logits=X23[:0], labels=np.array([], dtype=np.int64)), "sparse", "empty",
          dict(logits=X23[:0], labels=np.array([], dtype=np.int64))),
    Check(SPARSE, "float class indices", "labels float32 [1.0, 2.0]",
          dict(logits=X23, labels=np.array([1.0, 2.0], F32)), "sparse", "dtype",
          dict(logits=X23, labels=np.array([1, 2]))),
    Check(SPARSE, "strided input", "logits a column-strided view",
          dict(logits=np.repeat(X23, 2, axis=1)[:, ::2], labels=np.array([1, 2])), "sparse",
          "strided", dict(logits=X23, labels=np.array([1, 2]))),
    Check(SOFTMAX, "shape mismatch", "logits (2, 3), labels (2, 2)",
          dict(logits=X23, labels=Z23[:, :2]), "softmax", "shape", None),
    Check(SOFTMAX, "one class", "logits (2, 1), labels [[1], [1]]: always 0 (NLABELS = 1)",
          dict(logits=X23[:, :1], labels=np.ones((2, 1), F32)), "softmax", "one-class",
          dict(logits=X23[:, :1], labels=np.ones((2, 1), F32))),
    Check(SOFTMAX, "empty batch", "logits (0, 3), labels (0, 3)",
          dict(logits=X23[:0], labels=Z23[:0]), "softmax", "empty",
          dict(logits=X23[:0], labels=Z23[:0])),
    Check(SOFTMAX, "broadcast labels", "logits (2, 3), labels (1, 3)",
          dict(logits=X23, labels=Z23[:1]), "softmax", "shape", None),
    Check(SOFTMAX, "label above 1", "labels [[2, 0, 0], ...]",
          dict(logits=X23, labels=np.array([[2.0, 0, 0], [0, 0, 1]], F32)), "softmax", "labels",
          None),
    Check(BCE, "probability above 1", "probs = 1.5",
          dict(probs=np.full(3, 1.5, F32), labels=Z3), "bce", "probs", None),
    Check(BCE, "probability below 0", "probs = -0.5",
          dict(probs=np.full(3, -0.5, F32), labels=Z3), "bce", "probs", None),
    Check(BCE, "label above 1", "labels = 1.5",
          dict(probs=P3, labels=np.full(3, 1.5, F32)), "bce", "labels", None),
    Check(BCE, "empty batch", "probs (0,), labels (0,)",
          dict(probs=P3[:0], labels=Z3[:0]), "bce", "empty", dict(probs=P3[:0], labels=Z3[:0])),
)  # fmt: skip


def _doc(impl, family: str, about: str):
    """A compiled twin is held to its eager impl's documentation; Keras to TensorFlow's
    where it says nothing itself (it calls the tf.nn ops on its TF backend)."""
    from lossfuzz.harness.registry import CONTRACT_DOCS

    fw = impl.framework
    found = CONTRACT_DOCS.get((fw, family, about))
    if found is None and fw == "keras":
        found = CONTRACT_DOCS.get(("tf", family, about))
    return found or ("either", "not stated in the documentation", "")


def _verdict(expect: str, obs: dict, oracle_inputs: dict | None, loss: str) -> str:
    if oracle_inputs is None:  # the input is outside the loss's domain or contract
        if "raised" in obs:
            return "ok: raises"
        if any(math.isnan(v) for v in obs["values"]):
            return "NaN, no error" if expect != "raise" else "silent: NaN instead of an error"
        if expect == "raise":
            return "SILENT: returns numbers for an input the documentation rules out"
        return "accepts: returns numbers (the documentation does not rule it out)"
    if "raised" in obs:
        if expect == "raise":
            return "ok: raises, as documented"
        return "raises, although the loss is defined here (not a silent answer)"
    want = oracles.evaluate(loss, "float32", **oracle_inputs)
    got = obs["values"]
    if len(got) != want.reference.size:
        return f"SILENT WRONG ANSWER: {len(got)} values for {want.reference.size} cases"
    # a contract is about meaning, not the last bits (the fuzzers measure those): a
    # relative error of 1e-3 still means the framework computed this loss
    worst = 0.0
    for g, e in zip(got, want.exact.ravel()):
        e = float(e)
        if math.isnan(g) or math.isnan(e):
            rel = 0.0 if math.isnan(g) and math.isnan(e) else math.inf
        elif math.isinf(g) or math.isinf(e):
            rel = 0.0 if g == e else math.inf
        else:
            rel = abs(g - e) / max(abs(e), 1e-30)
        worst = max(worst, rel)
    if worst <= 1e-3:
        return "ok: the loss's value"
    return f"SILENT WRONG ANSWER: relative error {worst:.3g} from the exact value"


def contracts() -> list[ContractRow]:
    rows = []
    for check in CHECKS:
        for impl in _impls(check.loss):
            expect, promise, source = _doc(impl, check.family, check.about)
            obs = observe(impl, check.inputs)
            rows.append(
                ContractRow(
                    check.loss,
                    impl.id,
                    check.name,
                    check.input,
                    promise,
                    source,
                    _observed_text(obs),
                    _verdict(expect, obs, check.valid, check.loss),
                )
            )
    return rows


# ------------------------------------------------------------------ pitfalls


def pitfalls() -> list[Pitfall]:
    """The seeds' misuses, each with the input that shows it and the size of the error."""
    ev = oracles.exact
    out = []
    # 1. a softmax over a single output: loss 0 whatever the logit
    one = [
        float(ev("softmax_cross_entropy_with_logits", "float64", logits=[[x]], labels=[[1.0]])[0])
        for x in (-30.0, 0.0, 42.0)
    ]
    out.append(
        {
            "pitfall": "softmax over a single output (NLABELS = 1)",
            "input": "logits [[-30]], [[0]], [[42]]; labels [[1]]",
            "measured": f"softmax cross-entropy = {', '.join(_show(v) for v in one)}",
            "error": "the loss is 0 for every logit: nothing is learned",
        }
    )
    # 2. elementwise binary CE on a one-hot N-way output against categorical CE
    for n in (2, 3, 10):
        p = np.full(n, 0.5 / (n - 1))
        p[0] = 0.5
        z = np.zeros(n)
        z[0] = 1.0
        bce = sum(
            float(ev("binary_crossentropy", "float64", probs=pi, labels=zi)) for pi, zi in zip(p, z)
        )
        cce = float(ev("categorical_crossentropy", "float64", probs=[p], labels=[z])[0])
        out.append(
            {
                "pitfall": f"binary CE summed over a one-hot {n}-way output, as categorical CE",
                "input": f"probs {_show(p)}, labels {_show(z)}",
                "measured": f"sum of binary CE = {bce:.6g}, categorical CE = {cce:.6g}",
                "error": f"ratio {bce / cce:.6g}"
                + (" (exactly 2 for N = 2: each class is counted twice)" if n == 2 else ""),
            }
        )
    # 3. the seed's partial formula -p log q against the full binary CE
    q, zz = 0.9, 0.0
    partial = -zz * math.log(q)
    full = float(ev("binary_crossentropy", "float64", probs=q, labels=zz))
    out.append(
        {
            "pitfall": "the partial formula -z log q for binary CE",
            "input": "q = 0.9, z = 0",
            "measured": f"-z log q = {partial:.6g}, full binary CE = {full:.6g}",
            "error": f"the wrong prediction costs nothing (abs error {full - partial:.6g})",
        }
    )
    # 4. sigmoid CE with softmax-normalised targets
    x = np.array([2.0, 2.0])
    z_soft = np.array([0.5, 0.5])
    sig = [
        float(v)
        for v in ev("sigmoid_cross_entropy_with_logits", "float64", logits=x, labels=z_soft)
    ]
    best = [
        float(v)
        for v in ev(
            "sigmoid_cross_entropy_with_logits", "float64", logits=[0.0, 0.0], labels=z_soft
        )
    ]
    out.append(
        {
            "pitfall": "sigmoid CE with softmax-normalised (summing to 1) targets",
            "input": "logits [2, 2], labels [0.5, 0.5] (both classes present)",
            "measured": f"loss {sum(sig):.6g}; its minimum is at logits [0, 0] ({sum(best):.6g})",
            "error": "the optimum predicts sigmoid = 0.5 for classes that are both present",
        }
    )
    return [Pitfall(**p) for p in out]


def run() -> Contracts:
    """The three tables; frameworks that are not installed are left out."""
    return Contracts(tuple(contracts()), tuple(special_values()), tuple(pitfalls()))
