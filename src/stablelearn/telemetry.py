"""Gradient-flow telemetry, computed inside the compiled training loop.

Per model, layer and epoch: the L2 norm of the layer's gradient (kernel and bias
together) as a root mean square over the epoch's steps, the largest absolute gradient
entry, the weight norm at the epoch's end and the epoch's update-to-weight ratio
||w_end - w_start|| / ||w_start||. Per model and epoch: the fraction of steps where
clipping changed the gradient, and the first step whose loss was NaN/Inf. Per hidden
layer, at each epoch's end on the whole training split: the fraction of dead ReLU units
(zero for every training example) and of saturated tanh/sigmoid activations
(|tanh| > 0.99; sigmoid outside [0.01, 0.99]). Gradients are recorded *before*
clipping: that is the number that says whether gradients explode.

Cost (benchmarks/bench_engine.py): per-step statistics are accumulated element-wise
(g^2 and max |g|) and reduced once per epoch, and dead/saturated units are measured on
at most ~100 epochs of a run. On the lesson's 20-25-1 input-scaling study telemetry adds
65-85% to training time (the model is so small that every extra operation shows; the
per-epoch pass over the training split and the accumulation cost about equally, and
reducing at every step instead measured the same); on the 20-layer circles model, 8%.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stablelearn.activations import activation_kind
from stablelearn.model import MLP, Params, forward_layers

DEAD_KINDS = ("relu", "relu6")  # activations whose units can die (zero for every example)
TANH_SATURATION = 0.99
SIGMOID_SATURATION = 0.01


def layer_norms(tree: Params) -> jax.Array:
    """L2 norm per layer over its kernel and bias together: [layers]."""
    return jnp.stack([jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in layer.values())) for layer in tree])


def init_accumulator(params: Params) -> dict[str, Any]:
    """Running sums for one model over one epoch."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    return {"sq": zeros, "abs": zeros, "clipped": jnp.float32(0), "first_bad": jnp.int32(-1)}


def accumulate(
    acc: dict[str, Any], grads: Params, clipped: Params | None, loss: jax.Array, step: jax.Array
) -> dict[str, Any]:
    """Add one step. Non-finite gradient entries add nothing, so the epoch in which a
    model diverges still shows how large its gradients grew. `clipped` is the gradient
    after clipping, or None when no model of the ensemble clips."""
    safe = jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grads)
    out = {
        "sq": jax.tree.map(lambda a, g: a + g * g, acc["sq"], safe),
        "abs": jax.tree.map(lambda a, g: jnp.maximum(a, jnp.abs(g)), acc["abs"], safe),
        "clipped": acc["clipped"],
    }
    if clipped is not None:
        pairs = zip(jax.tree.leaves(grads), jax.tree.leaves(clipped), strict=True)
        changed = jnp.any(jnp.stack([jnp.any(a != b) for a, b in pairs]))
        # NaN != NaN: a non-finite step does not count as clipped
        out["clipped"] = acc["clipped"] + (changed & jnp.isfinite(loss)).astype(jnp.float32)
    # after a NaN/Inf gradient the next step's loss is NaN, so checking the loss finds
    # the first bad step at most one step late without reducing every gradient
    bad = ~jnp.isfinite(loss)
    out["first_bad"] = jnp.where((acc["first_bad"] < 0) & bad, step, acc["first_bad"])
    return out


def epoch_stats(
    acc: dict[str, Any], start: Params, end: Params, n_steps: int
) -> dict[str, jax.Array]:
    """Per-layer statistics of one model's epoch from its accumulator and weights."""
    squares = jnp.stack([sum(jnp.sum(leaf) for leaf in layer.values()) for layer in acc["sq"]])
    largest = jnp.stack(
        [jnp.max(jnp.stack([jnp.max(leaf) for leaf in layer.values()])) for layer in acc["abs"]]
    )
    moved = jax.tree.map(lambda a, b: b - a, start, end)
    return {
        "grad_norm": jnp.sqrt(squares / n_steps),
        "grad_abs_max": largest,
        "update_ratio": layer_norms(moved) / jnp.maximum(layer_norms(start), 1e-12),
        "weight_norm": layer_norms(end),
        "clip_rate": acc["clipped"] / n_steps,
        "first_bad_step": acc["first_bad"],
    }


def activation_stats(model: MLP, params: Params, x_t: jax.Array) -> dict[str, jax.Array]:
    """Dead and saturated fractions of each hidden layer on inputs x_t [features, rows]."""
    if not model.hidden:
        return {"dead_fraction": jnp.zeros((0,)), "saturated_fraction": jnp.zeros((0,))}
    _, activations = forward_layers(model, params, x_t)
    kinds = [activation_kind(layer.activation) for layer in model.hidden]
    return unit_fractions(activations[:-1], kinds)


def unit_fractions(hidden: list[jax.Array], kinds: list[str]) -> dict[str, jax.Array]:
    """Dead and saturated fractions of hidden activations [units, rows], each read as the
    activation family given for it (NaN where that family cannot die or saturate)."""
    pairs = [
        unit_fraction(jnp, kind, h, units_axis=0) for kind, h in zip(kinds, hidden, strict=True)
    ]
    return {
        "dead_fraction": jnp.stack([dead for dead, _ in pairs]),
        "saturated_fraction": jnp.stack([saturated for _, saturated in pairs]),
    }


def unit_fraction(xp: Any, kind: str, h: Any, units_axis: int) -> tuple[Any, Any]:
    """(dead fraction, saturated fraction) of one activation output of any shape, with
    NumPy or jax.numpy as `xp` (the Keras Monitor reads convolution channels too): a unit
    is dead when it is at most 0 for every example; NaN where not applicable."""
    nan = xp.asarray(np.nan, np.float32)
    if kind in DEAD_KINDS:
        units = xp.moveaxis(h, units_axis, -1).reshape(-1, h.shape[units_axis])
        return xp.mean(xp.all(units <= 0, axis=0).astype(np.float32)), nan
    if kind == "tanh":
        return nan, xp.mean((xp.abs(h) > TANH_SATURATION).astype(np.float32))
    if kind == "sigmoid":
        outside = (h < SIGMOID_SATURATION) | (h > 1 - SIGMOID_SATURATION)
        return nan, xp.mean(outside.astype(np.float32))
    return nan, nan
