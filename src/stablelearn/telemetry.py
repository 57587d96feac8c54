"""Gradient-flow telemetry, computed inside the compiled training loop.

Per model, layer and epoch: the L2 norm of the layer's gradient (kernel and bias
together) as a root mean square over the epoch's steps, the largest absolute gradient
entry, the weight norm at the epoch's end and the epoch's update-to-weight ratio
||w_end - w_start|| / ||w_start||. Per model and epoch: the fraction of steps where
clipping changed the gradient, and the first step at which something became NaN/Inf,
with the layer and direction it came from (see `origin`). Per hidden
layer, at each epoch's end on the whole training split: the fraction of dead ReLU units
(zero for every training example) and of saturated tanh/sigmoid activations
(|tanh| > 0.99; sigmoid outside [0.01, 0.99]). Gradients are recorded *before*
clipping: that is the number that says whether gradients explode.

Cost (benchmarks/bench_compare.py --telemetry-cost, paired, one core): per-step
statistics are accumulated element-wise (g^2 and max |g|) on one vector of every
parameter (`flat`) and reduced per layer once per epoch with segment sums; each step's
NaN/Inf test is one sum (`maybe_nonfinite`), and the per-layer flags that follow it are
segment sums too; dead/saturated units are measured on at most ~25 epochs of a run.
Telemetry adds 7-33% (between runs of the benchmark) to training the lesson's 90-model
input-scaling study and 0-10% on the 20-layer circles model (55-58% and 19-23% with a
sum and a test per tensor); compiling takes about twice as long (x2.3-2.6 before).
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
    squares = flat(tree) ** 2
    return jnp.sqrt(per_layer_sum(squares, layer_of_entries(tree), len(tree)))


# Where the first non-finite value of a step came from: what `origin` returns as a kind
# (0: nothing), with its direction. The vocabulary of stablelearn.torch.watch and the
# Keras Monitor: "forward" is a value the forward pass computed, "backward" one that
# backpropagation (or the update it feeds) produced.
ORIGIN_KINDS = ("", "output", "loss", "gradient", "update")
ORIGIN_DIRECTIONS = ("", "forward", "forward", "backward", "backward")


def flat(tree: Any) -> jax.Array:
    """Every leaf of `tree` raveled into one vector, in jax.tree.leaves order. The
    per-step sums and tests run on it: one fused operation per step instead of one per
    tensor, which for small models was most of telemetry's cost (a deep narrow model has
    two tensors a layer, each a separate loop in the compiled step)."""
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def layer_of_entries(params: Params) -> np.ndarray:
    """Which layer each entry of `flat(params)` belongs to (static: from the shapes)."""
    sizes = [(i, leaf.size) for i, layer in enumerate(params) for leaf in jax.tree.leaves(layer)]
    return np.concatenate(
        [np.full(size, i, np.int32) for i, size in sizes] or [np.zeros(0, np.int32)]
    )


def per_layer_sum(values: jax.Array, layers: np.ndarray, n_layers: int) -> jax.Array:
    """Sum of each layer's entries of a flat vector [n_layers]: one segment sum, where a
    sum per tensor compiled to two loops a layer."""
    return jax.ops.segment_sum(values, layers, n_layers, indices_are_sorted=True)


def init_accumulator(params: Params) -> dict[str, Any]:
    """Running sums for one model over one epoch: g^2 and max |g| of every parameter,
    as one vector (see `flat`)."""
    zeros = jnp.zeros_like(flat(params))
    return {
        "sq": zeros,
        "abs": zeros,
        "clipped": jnp.float32(0),
        "first_bad": jnp.int32(-1),
        "bad_layer": jnp.int32(-1),
        "bad_kind": jnp.int32(0),
    }


def layer_bad(tree: Any) -> jax.Array:
    """[layers] bool: whether any entry of each layer's arrays (a dict per layer, maybe
    empty) is NaN/Inf."""
    if not jax.tree.leaves(tree):
        return jnp.zeros(len(tree), bool)
    bad = (~jnp.isfinite(flat(tree))).astype(jnp.int32)
    return per_layer_sum(bad, layer_of_entries(tree), len(tree)) > 0


def forward_bad(activations: list[jax.Array], weights: jax.Array) -> jax.Array:
    """[layers] bool: whether a layer's output (its activation [units, batch]) is NaN/Inf
    on a real row of the batch (`weights` [batch], 0 marks padding).

    The activation, not the pre-activation: a pre-activation that overflows into a
    saturating activation (tanh(inf) = 1, relu(-inf) = 0) sends nothing non-finite on,
    and its derivative there is 0, so no NaN starts there. (Reading the pre-activations
    too also made XLA fuse packed programs differently, moving their numbers by 1 ulp.)"""
    padding = weights == 0
    units = jnp.concatenate(activations)  # [every layer's units, batch]
    bad = (~jnp.all(jnp.isfinite(units) | padding, axis=1)).astype(jnp.int32)
    layer = np.repeat(np.arange(len(activations)), [a.shape[0] for a in activations])
    return per_layer_sum(bad, layer, len(activations)) > 0


def origin(flags: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """(kind, layer) of one step's first non-finite value from its flags: `forward`,
    `gradient`, `update` [layers] bool (a layer's forward values, its raw gradient
    before clipping, its weights after the update) and `loss` (scalar bool).

    The rule, in the order a step computes:
    - forward, kind "output": the first (shallowest) layer whose output (activation)
      is non-finite, or whose batch normalization's moving statistics became so; the
      weights are finite at the step's start (an earlier step that broke them was
      recorded as the origin instead);
    - forward, kind "loss": every layer's values are finite but the loss is not (an
      MSE of a finite output can overflow); the layer is the output layer;
    - backward, kind "gradient": the forward pass and loss are finite but a gradient is
      not: the deepest layer with a non-finite gradient, where backpropagation first
      overflowed (it runs from the output layer down);
    - backward, kind "update": every gradient is finite but the weights after the
      update are not (a finite gradient times the learning rate, or the momentum,
      overflowed): the deepest such layer, as watch() and the Monitor name the deepest
      layer whose weights the update made non-finite.
    kind is an index into ORIGIN_KINDS (0: nothing non-finite), layer -1 then."""
    fwd, grad, update = flags["forward"], flags["gradient"], flags["update"]
    n = fwd.shape[0]

    def deepest(bad: jax.Array) -> jax.Array:
        return n - 1 - jnp.argmax(bad[::-1])

    cases = [jnp.any(fwd), flags["loss"], jnp.any(grad), jnp.any(update)]
    kind = jnp.select(cases, [1, 2, 3, 4], 0).astype(jnp.int32)
    layer = jnp.select(cases, [jnp.argmax(fwd), n - 1, deepest(grad), deepest(update)], -1)
    return kind, layer.astype(jnp.int32)


def maybe_nonfinite(tree: Any) -> jax.Array:
    """True whenever an entry of `tree` is NaN/Inf, read as one sum: a sum with a NaN or
    an Inf in it is never finite. It can also be True without one (finite entries whose
    sum overflows), so it only decides where to look; the exact test comes after."""
    return ~jnp.isfinite(jnp.sum(flat(tree)))


def accumulate(
    acc: dict[str, Any],
    grads: Params,
    clipped: Params | None,
    loss: jax.Array,
    step: jax.Array,
    flags: dict[str, jax.Array] | None = None,
) -> dict[str, Any]:
    """Add one step. Non-finite gradient entries add nothing, so the epoch in which a
    model diverges still shows how large its gradients grew. `clipped` is the gradient
    after clipping, or None when no model of the ensemble clips. `flags` (see `origin`)
    say where a non-finite value came from; the epoch keeps the first step that had
    one, with its layer and kind. Without them only the loss is checked, which finds
    the first bad step at most one step late (after a NaN/Inf gradient the next step's
    loss is NaN), with no layer. (The engine accumulates the gradients here without
    flags' origin and notes the origin itself, see `note_origin`.)"""
    out = accumulate_gradients(acc, grads, clipped, loss)
    if flags is None:
        kind, layer = jnp.where(jnp.isfinite(loss), 0, 2).astype(jnp.int32), jnp.int32(-1)
    else:
        kind, layer = origin(flags)
    return note_origin(out, step, kind, layer)


def accumulate_gradients(
    acc: dict[str, Any], grads: Params, clipped: Params | None, loss: jax.Array
) -> dict[str, Any]:
    """`accumulate` without the origin: the gradients' sums and the clipped-step count;
    the origin's fields pass through unchanged."""
    flat_grads = flat(grads)
    safe = jnp.where(jnp.isfinite(flat_grads), flat_grads, 0.0)
    out = {**acc, "sq": acc["sq"] + safe * safe, "abs": jnp.maximum(acc["abs"], jnp.abs(safe))}
    if clipped is not None:
        # NaN != NaN: a non-finite step does not count as clipped
        changed = jnp.any(flat_grads != flat(clipped))
        out["clipped"] = acc["clipped"] + (changed & jnp.isfinite(loss)).astype(jnp.float32)
    return out


def note_origin(
    acc: dict[str, Any], step: jax.Array, kind: jax.Array, layer: jax.Array
) -> dict[str, Any]:
    """Keep step `step`'s origin (`origin`'s kind and layer) unless the epoch already has
    one. Element-wise, so it takes one model's accumulator or a stack of them."""
    first = (acc["first_bad"] < 0) & (kind > 0)
    return {
        **acc,
        "first_bad": jnp.where(first, step, acc["first_bad"]),
        "bad_layer": jnp.where(first, layer, acc["bad_layer"]),
        "bad_kind": jnp.where(first, kind, acc["bad_kind"]),
    }


def epoch_stats(
    acc: dict[str, Any], start: Params, end: Params, n_steps: int
) -> dict[str, jax.Array]:
    """Per-layer statistics of one model's epoch from its accumulator and weights."""
    layers, n = layer_of_entries(start), len(start)
    moved = jax.tree.map(lambda a, b: b - a, start, end)
    largest = jax.ops.segment_max(acc["abs"], layers, n, indices_are_sorted=True)
    return {
        "grad_norm": jnp.sqrt(per_layer_sum(acc["sq"], layers, n) / n_steps),
        "grad_abs_max": largest,
        "update_ratio": layer_norms(moved) / jnp.maximum(layer_norms(start), 1e-12),
        "weight_norm": layer_norms(end),
        "clip_rate": acc["clipped"] / n_steps,
        "first_bad_step": acc["first_bad"],
        "first_bad_layer": acc["bad_layer"],
        "first_bad_kind": acc["bad_kind"],
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
