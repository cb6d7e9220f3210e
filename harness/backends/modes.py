"""Execution modes: an eager CPU impl's very call, compiled by a framework or run on a GPU.

Frameworks compile a loss into other code than they run eagerly (XLA fuses and
rewrites ``log(sigmoid(x))``; Inductor generates C++ loops), so a compiled twin is
an impl of its own: ``tf-xla:sigmoid_cross_entropy_with_logits`` is
``tf:sigmoid_cross_entropy_with_logits`` inside ``tf.function(jit_compile=True)``.

A mode wraps the call in a function once (``define``, run once per process, so a
campaign compiles per input signature, not per case) and calls it for each case
(``invoke``); a reproducer prints both, after the inputs. Each framework's module
defines its modes (``tf-xla``, ``tf-gpu``, ``keras-xla``, ``torch-compile``,
``torch-cuda``, ``jax-jit``); devices are modes that run the call eagerly on the
first GPU, compared with the CPU impl the same way, and skipped with one line
where there is no GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lossfuzz.harness.backends import Autodiff, Backend, static_args

FN = "def loss_fn({params}):\n    return {call}\n"  # the call as a function of its inputs


@dataclass(frozen=True)
class Mode:
    name: str  # the compiled impls' id prefix
    base: str  # the eager backend it compiles
    what: str  # how the report names the compiler
    runner: Backend  # how inputs become tensors and answers come back
    imports: str  # after the backend's: configuration the reproducer shows too
    define: str  # template over {call} and {params}: defines loss_fn, compiled ("": none)
    grad_define: str  # template over {call}, {params} and {wrt}
    grad_prepare: str
    grad_body: str  # template over {params} and {wrt}; sets out and grad
    pad: bool  # pad batches to a power of two: XLA compiles once per shape
    quiet: str  # run by the harness only: the compiler's Python logging, off
    grad_how: str  # the autodiff's name: "torch.autograd", "tf.GradientTape", "jax.vjp"
    requires: tuple[str, ...] = ()
    invoke: str = "got = loss_fn({params})"  # template over {call} and {params}
    compiles: bool = True  # False: a device, running the call eagerly
    # why this mode cannot run here beyond a missing framework (no compiler, no GPU)
    unavailable: Callable[[], str | None] = lambda: None

    def value_code(self, call: str, params: str) -> tuple[str, str]:
        """(definition run once, or "", lines run per case): the latter set ``got``."""
        static = static_args(params)
        return (
            self.define.format(call=call, params=params, static=static),
            self.invoke.format(call=call, params=params),
        )

    def autodiff(self) -> Autodiff:
        r = self.runner
        return Autodiff.of(
            r,
            f"{self.grad_how} through {self.what}",
            self.grad_prepare,
            self.grad_body,
            imports=r.imports + "\n" + self.imports if self.imports else r.imports,
            requires=r.requires + self.requires,
            define=self.grad_define,
        )


MODES: dict[str, Mode] = {}


def register_mode(mode: Mode) -> Mode:
    MODES[mode.name] = mode
    return mode


def pad_rows(inputs: dict) -> tuple[dict, int]:
    """The batch padded to the next power of two rows by repeating its first row; the
    rows are independent cases, so the answers for the first n rows are unchanged."""
    arrays = [v for v in inputs.values() if getattr(v, "ndim", 0) >= 1]
    if not arrays:
        return inputs, 0
    n = arrays[0].shape[0]
    size = 1 << max(0, (n - 1).bit_length())
    if size == n:
        return inputs, n
    out = {}
    for name, v in inputs.items():
        if getattr(v, "ndim", 0) >= 1 and v.shape[0] == n:
            out[name] = np.concatenate([v, np.repeat(v[:1], size - n, axis=0)])
        else:
            out[name] = v
    return out, n
