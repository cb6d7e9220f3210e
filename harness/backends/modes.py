"""Execution modes: an eager CPU impl's very call, compiled by a framework or run on a GPU.

Frameworks compile a loss into other code than they run eagerly (XLA fuses and
rewrites ``log(sigmoid(x))``; Inductor generates C++ loops), so a compiled twin is
an impl of its own: ``tf-xla:sigmoid_cross_entropy_with_logits`` is
``tf:sigmoid_cross_entropy_with_logits`` inside ``tf.function(jit_compile=True)``.

A mode wraps the call in a function once (``define``, run once per process, so a
campaign compiles per input signature, not per case) and calls it for each case
(``invoke``); a reproducer prints both, after the inputs. Gradients are taken inside
the compiled function for XLA (``tf.GradientTape`` in ``tf.function``, which XLA
compiles with the forward pass) and through AOTAutograd's compiled backward for
``torch.compile`` (``torch.autograd.grad`` on the compiled forward's output).

Devices are modes too: ``torch-cuda:`` and ``tf-gpu:`` run the call eagerly on the
first GPU, and are compared with the CPU impl the same way. Without a GPU they are
skipped with one line.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from lossfuzz.harness.backends import (
    JAX,
    KERAS,
    TF,
    TORCH,
    TORCH_AUTOGRAD,
    Autodiff,
    Backend,
    _tf_gradient_body,
    _torch_literal,
    convert,
    static_args,
)

# torch.compile falls back to eager without a word when a function recompiles too
# often; a compiled twin must never be eager in disguise, so that is an error here
TORCH_COMPILE_CONFIG = (
    "import torch._dynamo\n"
    "torch._dynamo.config.fail_on_recompile_limit_hit = True  # never fall back to eager\n"
    "torch._dynamo.config.recompile_limit = 64\n"
    "torch._dynamo.config.accumulated_recompile_limit = 100000"
)


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
    requires: tuple[str, ...] = ()
    invoke: str = "got = loss_fn({params})"  # template over {call} and {params}
    compiles: bool = True  # False: a device, running the call eagerly

    def value_code(self, call: str, params: str) -> tuple[str, str]:
        """(definition run once, or "", lines run per case): the latter set ``got``."""
        static = static_args(params)
        return (
            self.define.format(call=call, params=params, static=static),
            self.invoke.format(call=call, params=params),
        )

    def autodiff(self) -> Autodiff:
        r = self.runner
        how = {"torch": "torch.autograd", "jax": "jax.vjp"}.get(self.base, "tf.GradientTape")
        return Autodiff(
            f"{how} through {self.what}",
            r.imports + "\n" + self.imports if self.imports else r.imports,
            r.requires + self.requires,
            r.to_native,
            r.from_native,
            r.literal,
            r.show,
            self.grad_prepare,
            self.grad_body,
            define=self.grad_define,
        )

    def unavailable(self) -> str | None:
        """Why this mode cannot run here, beyond a missing framework; None if it can."""
        if self.name == "torch-compile" and not (shutil.which("g++") or shutil.which("c++")):
            return "torch.compile's Inductor backend needs a C++ compiler (g++): none on PATH"
        if self.name == "torch-cuda":
            import torch

            if not torch.cuda.is_available():
                return "no CUDA device: torch.cuda.is_available() is False"
        if self.name == "tf-gpu":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return "no GPU visible to TensorFlow: tf.config.list_physical_devices('GPU') is []"
        return None


_FN = "def loss_fn({params}):\n    return {call}\n"
_XLA = "loss_fn = tf.function(loss_fn, jit_compile=True)"
_XLA_GRAD = (
    "def grad_fn({params}):\n"
    "    with tf.GradientTape() as tape:\n"
    "        tape.watch({wrt})\n"
    "        out = {call}\n"
    "    return out, tape.gradient(out, {wrt})\n"
    "grad_fn = tf.function(grad_fn, jit_compile=True)"
)
_XLA_GRAD_BODY = (
    "out, grad = grad_fn({params})\n"
    "if grad is None:\n"
    "    raise ValueError('the output does not depend on {wrt}: no gradient')"
)
_COMPILE = "loss_fn = torch.compile(loss_fn, dynamic=True, fullgraph=True)"


def _tf_mode(name: str, base: str, runner: Backend) -> Mode:
    return Mode(
        name,
        base,
        "tf.function(jit_compile=True)",
        runner,
        "",
        _FN + _XLA,
        _XLA_GRAD,
        "",
        _XLA_GRAD_BODY,
        pad=True,
        # retracing warnings (a new shape or smoothing factor) are the expected cost
        quiet='tf.get_logger().setLevel("ERROR")',
    )


TF_XLA = _tf_mode("tf-xla", "tf", TF)
KERAS_XLA = _tf_mode("keras-xla", "keras", KERAS)
TORCH_COMPILE = Mode(
    "torch-compile",
    "torch",
    "torch.compile (Inductor, dynamic shapes)",
    TORCH,
    TORCH_COMPILE_CONFIG,
    _FN + _COMPILE,
    _FN + _COMPILE,
    TORCH_AUTOGRAD.prepare,
    TORCH_AUTOGRAD.body.replace("{call}", "loss_fn({params})"),  # on the compiled forward
    pad=False,  # dynamic shapes: one compilation serves every batch size above 1
    # Dynamo logs the exceptions it turns into errors (an index out of range) in full
    quiet="import logging, torch._logging\ntorch._logging.set_logs(all=logging.CRITICAL)",
)


def _cuda_to(arr):
    return convert.to_torch(arr).to("cuda")


TORCH_CUDA_BACKEND = Backend(
    "torch-cuda",
    TORCH.requires,
    TORCH.imports,
    _cuda_to,
    convert.from_torch,  # it moves the answer to the CPU
    lambda a: _torch_literal(a) + '.to("cuda")',
    TORCH.show,
    TORCH.tile,
)
TORCH_CUDA = Mode(
    "torch-cuda",
    "torch",
    "PyTorch on CUDA",
    TORCH_CUDA_BACKEND,
    "",
    "",
    "",
    TORCH_AUTOGRAD.prepare,
    TORCH_AUTOGRAD.body,
    pad=False,
    quiet="",
    invoke="got = {call}",
    compiles=False,
)


def _gpu_to(arr):
    import tensorflow as tf

    with tf.device("/GPU:0"):
        return tf.identity(convert.to_tf(arr))


TF_GPU_BACKEND = Backend(
    "tf-gpu",
    TF.requires,
    TF.imports,
    _gpu_to,
    TF.from_native,
    TF.literal,  # placed by the tf.device block around the call
    TF.show,
    TF.tile,
)
_ON_GPU = "with tf.device('/GPU:0'):\n"
TF_GPU = Mode(
    "tf-gpu",
    "tf",
    "TensorFlow on the GPU",
    TF_GPU_BACKEND,
    "",
    "",
    "",
    "",
    _ON_GPU + "\n".join("    " + line for line in _tf_gradient_body().splitlines()),
    pad=False,
    quiet="",
    invoke=_ON_GPU + "    got = {call}",
    compiles=False,
)
# JAX's impls are jitted: jit is how JAX code runs in practice (XLA compiles per shape)
JAX_JIT = Mode(
    "jax-jit",
    "jax",
    "jax.jit",
    JAX,
    "",
    _FN + "loss_fn = jax.jit(loss_fn{static})",
    "def grad_fn({params}):\n"
    "    out, pullback = jax.vjp(lambda {wrt}: {call}, {wrt})\n"
    "    return out, pullback(jnp.ones_like(out))[0]\n"
    "grad_fn = jax.jit(grad_fn{static})",
    "",
    "out, grad = grad_fn({params})",
    pad=True,
    quiet="",
)
MODES = {m.name: m for m in (TF_XLA, KERAS_XLA, TORCH_COMPILE, TORCH_CUDA, TF_GPU, JAX_JIT)}


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
    import numpy as np

    out = {}
    for name, v in inputs.items():
        if getattr(v, "ndim", 0) >= 1 and v.shape[0] == n:
            out[name] = np.concatenate([v, np.repeat(v[:1], size - n, axis=0)])
        else:
            out[name] = v
    return out, n
