"""Backends: how a framework receives the harness's arrays and how its answers come back.

An impl is a call expression over the input names (``logits``, ``labels``,
``probs``, ``pos_weight``, ``label_smoothing``, ``axis``), e.g.
``F.binary_cross_entropy_with_logits(logits, labels, reduction='none')``. The
harness evaluates that expression with the inputs as the backend's tensors, and a
reproducer prints the very same expression after the backend's imports and exact
literals of the inputs: what is measured is what a user pastes.

Frameworks are imported only when a backend's namespace is first built.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np
from lossfuzz.harness.backends import convert


@contextmanager
def quiet_stderr():
    """Silence file descriptor 2: TensorFlow's C++ logs a banner on import through absl
    before TF_CPP_MIN_LOG_LEVEL is read."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass(frozen=True)
class Backend:
    name: str
    requires: tuple[str, ...]  # modules that must import
    imports: str  # the reproducer's import lines; also run to build the eval namespace
    to_native: Callable[[np.ndarray], object]
    from_native: Callable[[object], np.ndarray]
    literal: Callable[[np.ndarray], str]  # code that rebuilds an array exactly
    show: str  # expression giving element {i} of {v} (flattened) as a Python float
    # statement repeating the rows of {v} {reps} times and keeping the first {n}; {ones}
    # is ", 1" for each further axis
    tile: str = "{v} = np.tile({v}, ({reps}{ones}))[:{n}]"

    @cache  # noqa: B019  (backends are a few module-level singletons)
    def namespace(self) -> dict:
        ns: dict = {}
        with quiet_stderr():
            exec(self.imports, ns)
        return ns


def _values(arr: np.ndarray) -> str:
    """The values as exact float.fromhex literals (or ints), nested like the array."""
    if arr.dtype.kind in "iub":
        return repr(arr.astype(np.int64).tolist())

    def one(v: float) -> str:
        return f"float.fromhex({float(v).hex()!r})"

    flat = ", ".join(one(v) for v in arr.astype(np.float64).ravel().tolist())
    return f"[{flat}]"


def _shape(arr: np.ndarray) -> str:
    return repr(tuple(arr.shape))


def _float_name(arr: np.ndarray) -> str:
    """float16, bfloat16, float32 or float64: the name every framework uses."""
    return "bfloat16" if convert.is_bfloat16(arr) else arr.dtype.name


def _numpy_literal(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return f"np.array({_values(arr)}, dtype=np.int64)"
    name = _float_name(arr)
    dtype = "ml_dtypes.bfloat16" if name == "bfloat16" else f"np.{name}"
    # float64 holds every value of the four formats, so the cast is exact
    return f"np.array({_values(arr)}, dtype=np.float64).astype({dtype}).reshape({_shape(arr)})"


def _torch_literal(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return f"torch.tensor({_values(arr)}, dtype=torch.int64)"
    return (
        f"torch.tensor({_values(arr)}, dtype=torch.float64)"
        f".to(torch.{_float_name(arr)}).reshape({_shape(arr)})"
    )


def _tf_literal(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return f"tf.constant({_values(arr)}, dtype=tf.int64)"
    return (
        f"tf.reshape(tf.cast(tf.constant({_values(arr)}, dtype=tf.float64), "
        f"tf.{_float_name(arr)}), {list(arr.shape)})"
    )


def _tf_env() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


_tf_env()

NUMPY = Backend(
    "numpy",
    (),
    "import numpy as np\nimport ml_dtypes",
    lambda a: a,
    lambda r: np.asarray(r),
    _numpy_literal,
    "float(np.asarray({v}).astype(np.float64).reshape(-1)[{i}])",
)
TORCH = Backend(
    "torch",
    ("torch",),
    "import torch\nimport torch.nn.functional as F",
    convert.to_torch,
    convert.from_torch,
    _torch_literal,
    "{v}.double().reshape(-1)[{i}].item()",
    "{v} = {v}.repeat({reps}{ones})[:{n}]",
)
TF = Backend(
    "tf",
    ("tensorflow",),
    "import tensorflow as tf",
    convert.to_tf,
    convert.from_tf,
    _tf_literal,
    "float(tf.reshape(tf.cast({v}, tf.float64), [-1])[{i}])",
    "{v} = tf.tile({v}, [{reps}{ones}])[:{n}]",
)
KERAS = Backend(
    "keras",
    ("keras", "tensorflow"),
    'import os\nos.environ.setdefault("KERAS_BACKEND", "tensorflow")\n'
    "import keras\nimport tensorflow as tf",
    convert.to_tf,
    convert.from_tf,
    _tf_literal,
    "float(tf.reshape(tf.cast({v}, tf.float64), [-1])[{i}])",
    "{v} = tf.tile({v}, [{reps}{ones}])[:{n}]",
)


def _jax_literal(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return f"jnp.array({_values(arr)}, dtype=jnp.int64)"
    return (
        f"jnp.array({_values(arr)}, dtype=jnp.float64)"
        f".astype(jnp.{_float_name(arr)}).reshape({_shape(arr)})"
    )


JAX = Backend(
    "jax",
    ("jax", "optax"),
    # without x64, JAX turns float64 inputs into float32 without a word
    'import jax\njax.config.update("jax_enable_x64", True)\nimport jax.numpy as jnp\nimport optax',
    convert.to_jax,
    convert.from_jax,
    _jax_literal,
    "float(jnp.ravel({v}).astype(jnp.float64)[{i}])",
    "{v} = jnp.tile({v}, ({reps}{ones}))[:{n}]",
)
BACKENDS = {b.name: b for b in (NUMPY, TORCH, TF, KERAS, JAX)}


def static_args(params: str) -> str:
    """``, static_argnames=(...)`` for jax.jit: the parameters that are not arrays."""
    static = tuple(p for p in params.split(", ") if p in ("axis", "label_smoothing"))
    return f", static_argnames={static!r}" if static else ""


# ------------------------------------------------------------------ gradients


@dataclass(frozen=True)
class Autodiff:
    """How a backend's expressions are differentiated: the gradient of the sum of the
    output elements (a vector-Jacobian product with ones) with respect to one input.

    ``prepare`` marks the input, ``body`` runs the impl's call and leaves the gradient
    in ``grad``; the harness executes exactly these lines, and a reproducer prints them
    after the exact literals of the inputs.
    """

    name: str  # how the report names it
    imports: str
    requires: tuple[str, ...]
    to_native: Callable[[np.ndarray], object]
    from_native: Callable[[object], np.ndarray]
    literal: Callable[[np.ndarray], str]
    show: str  # as Backend.show
    prepare: str  # template over {wrt}
    body: str  # template over {wrt} and {call}; sets `out` and `grad`
    dtypes: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
    define: str = ""  # template over {call}, {wrt}, {params}: run once (a compiled function)

    @cache  # noqa: B019  (a few module-level singletons)
    def namespace(self) -> dict:
        ns: dict = {}
        with quiet_stderr():
            exec(self.imports, ns)
        return ns

    def setup(self, call: str, wrt: str, params: str = "") -> str:
        """What runs once per process: the compiled function's definition, if any."""
        return self.define.format(call=call, wrt=wrt, params=params, static=static_args(params))

    def step(self, call: str, wrt: str, params: str = "") -> str:
        """What runs for each case; leaves the gradient in ``grad``."""
        body = self.body.format(wrt=wrt, call=call, params=params)
        return self.prepare.format(wrt=wrt) + "\n" + body

    def code(self, call: str, wrt: str, params: str = "") -> str:
        setup = self.setup(call, wrt, params)
        return (setup + "\n" if setup else "") + self.step(call, wrt, params)


def _torch_numpy(arr: np.ndarray):
    import torch._numpy as tnp

    return tnp.asarray(convert.to_torch(arr))


def _tf_gradient_body(indent: str = "    ") -> str:
    return (
        "with tf.GradientTape() as tape:\n"
        f"{indent}tape.watch({{wrt}})\n"
        f"{indent}out = {{call}}\n"
        "grad = tape.gradient(out, {wrt})\n"
        "if grad is None:\n"
        f"{indent}raise ValueError('the output does not depend on {{wrt}}: no gradient')"
    )


TORCH_AUTOGRAD = Autodiff(
    "torch.autograd",
    TORCH.imports,
    TORCH.requires,
    convert.to_torch,
    convert.from_torch,
    _torch_literal,
    TORCH.show,
    "{wrt} = {wrt}.requires_grad_()",
    "out = {call}\ngrad, = torch.autograd.grad(out, {wrt}, torch.ones_like(out))",
)
TF_TAPE = Autodiff(
    "tf.GradientTape",
    TF.imports,
    TF.requires,
    convert.to_tf,
    convert.from_tf,
    _tf_literal,
    TF.show,
    "",
    _tf_gradient_body(),
)
KERAS_TAPE = Autodiff(
    "tf.GradientTape (Keras on TensorFlow)",
    KERAS.imports,
    KERAS.requires,
    convert.to_tf,
    convert.from_tf,
    _tf_literal,
    KERAS.show,
    "",
    _tf_gradient_body(),
)
# NumPy has no autodiff: the naive formulas run unchanged on torch._numpy, PyTorch's
# NumPy-compatible layer (the one torch.compile traces NumPy code with), under autograd
TORCH_NUMPY = Autodiff(
    "torch.autograd through torch._numpy",
    "import torch\nimport torch._numpy as np",
    ("torch",),
    _torch_numpy,
    convert.from_torch,
    lambda a: f"np.asarray({_torch_literal(a)})",
    TORCH.show,
    "{wrt}.tensor.requires_grad_()",
    "out = {call}\n"
    "grad, = torch.autograd.grad(out.tensor, {wrt}.tensor, torch.ones_like(out.tensor))",
    ("float16", "float32", "float64"),  # torch._numpy has no bfloat16
)
AUTODIFF = {"torch": TORCH_AUTOGRAD, "tf": TF_TAPE, "keras": KERAS_TAPE, "numpy": TORCH_NUMPY}
