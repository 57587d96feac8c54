"""Gradient-flow telemetry, computed inside the compiled training loop.

Per model, layer and epoch: the L2 norm of the layer's gradient (kernel and bias
together) as the mean and the max over the epoch's steps, the largest absolute
gradient entry, the weight norm at the epoch's end and the update-to-weight ratio
||update|| / ||w||. Per model and epoch: the fraction of steps where clipping changed
the gradient, and the first step whose loss or gradient was NaN/Inf. Per hidden layer,
at each epoch's end on the whole training split: the fraction of dead ReLU units
(zero for every training example) and of saturated tanh/sigmoid activations
(|tanh| > 0.99; sigmoid outside [0.01, 0.99]). Gradients are recorded *before*
clipping: that is the number that says whether gradients explode.
"""

import jax
import jax.numpy as jnp

from stablelearn.model import MLP, Params, forward_layers

TANH_SATURATION = 0.99
SIGMOID_SATURATION = 0.01
NOT_APPLICABLE = jnp.nan  # dead units for tanh, saturation for relu, ...

STEP_KEYS = ("grad_norm", "grad_abs_max", "update_ratio", "clipped", "finite")


def layer_norms(tree: Params) -> jax.Array:
    """L2 norm per layer over its kernel and bias together: [layers]."""
    return jnp.stack([jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in layer.values())) for layer in tree])


def layer_abs_max(tree: Params) -> jax.Array:
    return jnp.stack(
        [jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in layer.values()])) for layer in tree]
    )


def step_stats(
    params: Params, grads: Params, clipped: Params, updates: Params, loss: jax.Array
) -> dict[str, jax.Array]:
    """What one optimizer step of one model reveals about its gradients."""
    grads_finite = jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(grads)])
    )
    pairs = zip(jax.tree.leaves(grads), jax.tree.leaves(clipped), strict=True)
    # NaN != NaN: without the finiteness guard a NaN gradient would count as clipped
    changed = jnp.any(jnp.stack([jnp.any(a != b) for a, b in pairs])) & grads_finite
    return {
        "grad_norm": layer_norms(grads),
        "grad_abs_max": layer_abs_max(grads),
        "update_ratio": layer_norms(updates) / jnp.maximum(layer_norms(params), 1e-12),
        "clipped": changed.astype(jnp.float32),
        "finite": grads_finite & jnp.isfinite(loss),
    }


def epoch_stats(steps: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Reduce the step stats of one epoch (leading axis: steps) for each model.

    Norms are reduced over the finite steps only (Inf and NaN left out), so the epoch
    in which a model diverges still shows how large its gradients grew before they
    overflowed; `first_bad_step` says when that happened.
    """
    bad = ~steps["finite"]
    n_steps = bad.shape[0]
    finite = {
        k: jnp.where(jnp.isfinite(steps[k]), steps[k], jnp.nan)
        for k in ("grad_norm", "grad_abs_max", "update_ratio")
    }
    return {
        "grad_norm_mean": jnp.nanmean(finite["grad_norm"], axis=0),
        "grad_norm_max": jnp.nanmax(finite["grad_norm"], axis=0),
        "grad_abs_max": jnp.nanmax(finite["grad_abs_max"], axis=0),
        "update_ratio": jnp.nanmean(finite["update_ratio"], axis=0),
        "clip_rate": jnp.mean(steps["clipped"], axis=0),
        "first_bad_step": jnp.where(jnp.any(bad, axis=0), jnp.argmax(bad, axis=0), n_steps),
    }


def activation_stats(model: MLP, params: Params, x_t: jax.Array) -> dict[str, jax.Array]:
    """Dead and saturated fractions of each hidden layer on inputs x_t [features, rows]."""
    if not model.hidden:
        return {"dead_fraction": jnp.zeros((0,)), "saturated_fraction": jnp.zeros((0,))}
    _, activations = forward_layers(model, params, x_t)
    dead, saturated = [], []
    for layer, h in zip(model.hidden, activations[:-1], strict=False):
        if layer.activation == "relu":
            dead.append(jnp.mean(jnp.all(h <= 0, axis=1)))
        else:
            dead.append(jnp.asarray(NOT_APPLICABLE))
        if layer.activation == "tanh":
            saturated.append(jnp.mean(jnp.abs(h) > TANH_SATURATION))
        elif layer.activation == "sigmoid":
            saturated.append(jnp.mean((h < SIGMOID_SATURATION) | (h > 1 - SIGMOID_SATURATION)))
        else:
            saturated.append(jnp.asarray(NOT_APPLICABLE))
    return {"dead_fraction": jnp.stack(dead), "saturated_fraction": jnp.stack(saturated)}
