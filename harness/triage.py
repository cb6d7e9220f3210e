"""``lossfuzz triage``: the distinct bugs behind a results file's findings, one report each.

Findings of one root cause are one bug, however many impls and dtypes show it: the
same framework family (``tf:``, ``tf-xla:`` and ``keras:`` run TensorFlow's kernels;
``torch:`` and ``torch-compile:`` PyTorch's), the same loss, the same quantity, the
same class and the same regime of inputs (``signature.py``). Each bug gets a Markdown
file ready for the framework's tracker (title, versions, minimal reproducer, what the
documentation promises, exact value against the answer, affected impls and dtypes,
whether it still reproduces), and an index sorts them by severity, bugs before
documented behaviour.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from lossfuzz.harness.jsonio import write_text_atomic
from lossfuzz.harness.metrics import EXPLANATIONS, SEVERITY
from lossfuzz.harness.results import Finding, Results
from lossfuzz.harness.signature import text
from lossfuzz.harness.ulp import format_ulp
from lossfuzz.oracles import UnknownName, get_loss

FAMILIES = {
    "tf": "TensorFlow/Keras",
    "tf-xla": "TensorFlow/Keras",
    "tf-gpu": "TensorFlow/Keras",
    "keras": "TensorFlow/Keras",  # Keras 3 on its TensorFlow backend calls tf.nn's kernels
    "keras-xla": "TensorFlow/Keras",
    "torch": "PyTorch",
    "torch-compile": "PyTorch",
    "torch-cuda": "PyTorch",
    "jax": "JAX",
    "scipy": "SciPy",
    "sklearn": "scikit-learn",
    "naive": "hand-written formulas",
}


def family(impl_id: str) -> str:
    backend = impl_id.partition(":")[0]
    return FAMILIES.get(backend, backend)


def _loss(loss: str) -> str:
    try:
        spec = get_loss(loss)
    except UnknownName:
        return loss
    return spec.variant_of or spec.id


@dataclass
class Bug:
    family: str
    loss: str
    quantity: str
    cls: str
    group: tuple
    findings: list[Finding] = field(default_factory=list)

    @property
    def representative(self) -> Finding:
        """The finding to file: an eager impl's, float32 where there is one, smallest input."""

        def key(f: Finding):
            size = sum(len(getattr(v, "values", [v])) for _, v in f.inputs.items)
            return ("-" in f.impl.partition(":")[0], f.dtype != "float32", size, f.impl)

        return min(self.findings, key=key)

    @property
    def impls(self) -> list[str]:
        return sorted({f.impl for f in self.findings})

    @property
    def dtypes(self) -> list[str]:
        order = ("float16", "bfloat16", "float32", "float64")
        return sorted({f.dtype for f in self.findings}, key=order.index)

    @property
    def cases(self) -> int:
        return sum(f.group_cases for f in self.findings)

    @property
    def documented(self) -> bool:
        """Every finding is explained by a mechanism the documentation states."""
        return all(f.documented is not None for f in self.findings)

    @property
    def special(self) -> bool:
        return all(f.special for f in self.findings)

    @property
    def title(self) -> str:
        where = text(self.group) or "these inputs"
        what = {"value": "", "reduction": " (reduction)"}.get(self.quantity, f" {self.quantity}")
        return f"[{self.family}] {self.loss}{what}: {self.cls} at {where}"

    @property
    def severity(self) -> tuple:
        return (self.documented, self.special, -SEVERITY[self.cls], -len(self.impls), self.title)


def bugs(data: Results) -> list[Bug]:
    """The findings grouped into bugs, by severity (the worst undocumented first)."""
    found: dict = {}
    for f in data.findings:
        q = f.quantity
        quantity = q.label if q.kind == "grad" else q.kind
        key = (family(f.impl), _loss(f.loss), quantity, f.cls, f.group)
        bug = found.get(key)
        if bug is None:
            bug = found[key] = Bug(*key)
        bug.findings.append(f)
    return sorted(found.values(), key=lambda b: b.severity)


def recheck(engine, bugs: list[Bug], allowed=frozenset(), user_impls=None) -> dict:
    """{id(bug): "yes" | "no: now CLASS" | "not re-run: why"}: does its finding reproduce?"""
    from lossfuzz.harness.rerun import rerun

    out = {}
    for b in bugs:
        outcome = rerun(engine, b.representative, allowed, user_impls)
        if outcome.status == "not re-run":
            out[id(b)] = f"not re-run: {outcome.why}"
        else:
            out[id(b)] = "yes" if outcome.reproduces else f"no: now {outcome.observation.cls}"
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def _versions(data: Results) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(data.versions.items()) if v)


def report(data: Results, bug: Bug, reproduces: str | None) -> str:
    """One bug's Markdown report."""
    from lossfuzz.harness.registry import load_all

    f = bug.representative
    impl = load_all().get(f.impl)
    doc = impl.doc if impl is not None else None
    answer = "it raised: " + (f.error or "") if f.got is None else repr(f.got)
    kind = "special values (an infinity or NaN among them)" if bug.special else "finite"
    lines = [
        f"# {bug.title}",
        "",
        f"**What goes wrong:** {f.cls} — {EXPLANATIONS[f.cls]}.",
        f"**Inputs:** {kind} — {text(bug.group) or 'see below'}.",
        f"**Affected:** {', '.join(f'`{i}`' for i in bug.impls)}; dtypes {', '.join(bug.dtypes)};"
        f" {bug.cases} failing cases in the run.",
        "",
        "## Minimal reproducer",
        "",
        "```python",
        f.reproducer.rstrip(),
        "```",
        "",
        "## Expected and actual",
        "",
        f"- exact value: {f.exact} (correctly rounded to {f.dtype}: {f.reference!r})",
        f"- answer: {answer}",
        f"- error: {format_ulp(f.ulp)} ULP, absolute {f.abs_error:.3g}",
        f"- lossfuzz's line: `{f.message}`",
        "",
        "## What the documentation says",
        "",
        f"{doc[0]} ({doc[1]})" if doc else "Nothing lossfuzz records for this call.",
    ]
    if f.explained is not None:
        where = "documented" if f.explained.documented else "in the source, not the documentation"
        lines += ["", f"Mechanism ({where}): {f.explained.what} ({f.explained.source})."]
    lines += [
        "",
        "## Versions",
        "",
        _versions(data) or "not recorded",
        "",
        "## Does it still reproduce?",
        "",
        reproduces or "not checked (`lossfuzz triage --no-repro`)",
        "",
    ]
    if len(bug.findings) > 1:
        lines += ["## The same cause elsewhere", ""]
        lines += [f"- `{g.message}`" for g in bug.findings if g is not f]
        lines.append("")
    return "\n".join(lines)


def write(directory: str, data: Results, bugs: list[Bug], checked: dict, source: str) -> list:
    """The index and one report per bug; the paths written, the index first."""
    os.makedirs(directory, exist_ok=True)
    paths, rows = [], []
    for n, bug in enumerate(bugs, 1):
        name = f"{n:03d}-{_slug(bug.title)}.md"
        path = os.path.join(directory, name)
        write_text_atomic(path, report(data, bug, checked.get(id(bug))))
        paths.append(path)
        rows.append((bug, name))
    index = [
        f"# lossfuzz triage of {source}",
        "",
        f"{len(data.findings)} findings, {len(bugs)} distinct causes. Versions: {_versions(data)}.",
        "",
    ]
    for title, wanted in (("Bugs", False), ("Documented behaviour", True)):
        chosen = [(b, name) for b, name in rows if b.documented == wanted]
        index += [f"## {title} ({len(chosen)})", ""]
        if chosen:
            index += ["| # | cause | impls | dtypes | reproduces |", "|---|---|---|---|---|"]
            for b, name in chosen:
                index.append(
                    f"| [{name[:3]}]({name}) | {b.title.replace('|', '/')} | {len(b.impls)} "
                    f"| {', '.join(b.dtypes)} | {checked.get(id(b), 'not checked')} |"
                )
            index.append("")
    index_path = os.path.join(directory, "index.md")
    write_text_atomic(index_path, "\n".join(index))
    return [index_path, *paths]
