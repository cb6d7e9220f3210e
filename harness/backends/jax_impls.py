"""JAX and optax (optional: ``pip install lossfuzz[jax]``), jitted as JAX code runs.

Each call runs inside ``jax.jit`` (the ``jax-jit`` mode), with ``jax_enable_x64``
on so that float64 stays float64. Without JAX and optax installed these impls are
skipped with one line.
"""

from __future__ import annotations

from lossfuzz.harness.registry import implementation


def _impl(impl_id: str, *, loss: str, call: str, reducible: bool = False) -> None:
    reduced = {"mean": f"jnp.mean({call})", "sum": f"jnp.sum({call})"} if reducible else None
    implementation(impl_id, loss=loss, call=call, runtime="jax", reduced=reduced, mode="jax-jit")


_impl(
    "jax:sigmoid_binary_cross_entropy",
    loss="sigmoid_cross_entropy_with_logits",
    call="optax.sigmoid_binary_cross_entropy(logits, labels)",
    reducible=True,
)
_impl(
    "jax:softmax_cross_entropy",
    loss="softmax_cross_entropy_with_logits",
    call="optax.softmax_cross_entropy(logits, labels)",
    reducible=True,
)
_impl(
    "jax:softmax_cross_entropy_with_integer_labels",
    loss="sparse_softmax_cross_entropy_with_logits",
    call="optax.softmax_cross_entropy_with_integer_labels(logits, labels)",
    reducible=True,
)
_impl("jax:log_softmax", loss="log_softmax", call="jax.nn.log_softmax(logits, axis=axis)")
_impl("jax:logsumexp", loss="logsumexp", call="jax.nn.logsumexp(logits, axis=axis)")
_impl("jax:softplus", loss="softplus", call="jax.nn.softplus(logits)")
_impl("jax:log_sigmoid", loss="log_sigmoid", call="jax.nn.log_sigmoid(logits)")
_impl("jax:sigmoid", loss="sigmoid", call="jax.nn.sigmoid(logits)")
