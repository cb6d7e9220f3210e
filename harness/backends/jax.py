"""JAX and optax (optional: ``pip install lossfuzz[jax]``), jitted as JAX code runs.

Each call runs inside ``jax.jit`` (the ``jax-jit`` mode), with ``jax_enable_x64``
on so that float64 stays float64. Without JAX and optax installed these impls are
skipped with one line.
"""

from __future__ import annotations

import numpy as np

from lossfuzz.harness.backends import Autodiff, Backend, register_backend, tensor_literal
from lossfuzz.harness.backends.modes import FN, Mode, register_mode
from lossfuzz.harness.deviations import flush_to_zero
from lossfuzz.harness.registry import implementation


def to_jax(arr: np.ndarray):
    import jax

    jax.config.update("jax_enable_x64", True)  # else float64 silently becomes float32
    import jax.numpy as jnp

    return jnp.asarray(np.asarray(arr))  # bfloat16 is ml_dtypes' type in JAX too


def from_jax(x) -> np.ndarray:
    return np.asarray(x)


def literal(arr: np.ndarray) -> str:
    return tensor_literal(
        arr,
        ints="jnp.array({values}, dtype=jnp.int64)",
        floats="jnp.array({values}, dtype=jnp.float64).astype(jnp.{dtype}).reshape({shape})",
    )


JAX = register_backend(
    Backend(
        "jax",
        ("jax", "optax"),
        # without x64, JAX turns float64 inputs into float32 without a word
        'import jax\njax.config.update("jax_enable_x64", True)\nimport jax.numpy as jnp\n'
        "import optax",
        to_jax,
        from_jax,
        literal,
        "float(jnp.ravel({v}).astype(jnp.float64)[{i}])",
        "{v} = jnp.tile({v}, ({reps}{ones}))[:{n}]",
        framework="jax",
    )
)
# a function run as written (a user's loss, which may not trace under jit): jax.vjp
register_backend(
    JAX,
    Autodiff.of(
        JAX,
        "jax.vjp",
        "",
        "out, pullback = jax.vjp(lambda {wrt}: {call}, {wrt})\n"
        "grad = pullback(jnp.ones_like(out))[0]",
    ),
)
# JAX's impls are jitted: jit is how JAX code runs in practice (XLA compiles per shape)
JAX_JIT = register_mode(
    Mode(
        "jax-jit",
        "jax",
        "jax.jit",
        JAX,
        "",
        FN + "loss_fn = jax.jit(loss_fn{static})",
        "def grad_fn({params}):\n"
        "    out, pullback = jax.vjp(lambda {wrt}: {call}, {wrt})\n"
        "    return out, pullback(jnp.ones_like(out))[0]\n"
        "grad_fn = jax.jit(grad_fn{static})",
        "",
        "out, grad = grad_fn({params})",
        pad=True,
        quiet="",
        grad_how="jax.vjp",
    )
)


FLUSH_TO_ZERO = flush_to_zero(
    what="on the CPU, XLA flushes subnormal inputs and results to zero (FTZ/DAZ)",
    source="https://docs.jax.dev/en/latest/notebooks/Common_Gotchas_in_JAX.html",
    documented=True,
)


def _impl(impl_id: str, *, loss: str, call: str, reducible: bool = False, doc=None) -> None:
    reduced = {"mean": f"jnp.mean({call})", "sum": f"jnp.sum({call})"} if reducible else None
    implementation(
        impl_id,
        loss=loss,
        call=call,
        runtime="jax",
        reduced=reduced,
        mode="jax-jit",
        deviations=(FLUSH_TO_ZERO,),
        doc=doc,
    )


_impl(
    "jax:sigmoid_binary_cross_entropy",
    doc=(
        "the binary cross-entropy of sigmoid(logits) against labels, computed from the logits",
        "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.sigmoid_binary_cross"
        "_entropy",
    ),
    loss="sigmoid_cross_entropy_with_logits",
    call="optax.sigmoid_binary_cross_entropy(logits, labels)",
    reducible=True,
)
_impl(
    "jax:softmax_cross_entropy",
    doc=(
        "the softmax cross entropy between logits and label distributions",
        "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.softmax_cross_entropy",
    ),
    loss="softmax_cross_entropy_with_logits",
    call="optax.softmax_cross_entropy(logits, labels)",
    reducible=True,
)
_impl(
    "jax:softmax_cross_entropy_with_integer_labels",
    doc=(
        "the softmax cross entropy between logits and integer labels",
        "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.softmax_cross_entrop"
        "y_with_integer_labels",
    ),
    loss="sparse_softmax_cross_entropy_with_logits",
    call="optax.softmax_cross_entropy_with_integer_labels(logits, labels)",
    reducible=True,
)
_impl("jax:log_softmax", loss="log_softmax", call="jax.nn.log_softmax(logits, axis=axis)")
_impl("jax:logsumexp", loss="logsumexp", call="jax.nn.logsumexp(logits, axis=axis)")
_impl("jax:softplus", loss="softplus", call="jax.nn.softplus(logits)")
_impl("jax:log_sigmoid", loss="log_sigmoid", call="jax.nn.log_sigmoid(logits)")
_impl("jax:sigmoid", loss="sigmoid", call="jax.nn.sigmoid(logits)")
