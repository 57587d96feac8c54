"""Per-layer statistics of any Keras 3 model on a probe batch, per backend.

Keras 3 has no backend-neutral gradient API, so each backend gets its own gradient:
`jax.value_and_grad` over the model's stateless `compute_loss_and_updates`,
`tf.GradientTape`, or `torch.autograd.grad` (which leaves the parameters' `.grad`
alone). On JAX the whole probe (gradients, layer outputs and every statistic) is one
compiled program that returns a few numbers per layer and a device-side copy of the
weights, so a probe costs one dispatch and one small transfer; the other backends
compute the same statistics with NumPy from host copies. The probe runs the model in
inference mode (`training=False`): no dropout noise, and no batch-norm statistics are
updated, so watching never changes what is trained.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from stablelearn.errors import ConfigError
from stablelearn.telemetry import unit_fraction

BACKENDS = ("jax", "tensorflow", "torch")


@dataclass(frozen=True)
class ProbePlan:
    """What a probe measures: the trainable variables of each watched layer, and for each
    activation output read, its family (relu, tanh, ...) and channels axis."""

    layer_variables: tuple[tuple[int, ...], ...]
    output_kinds: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ProbeStats:
    """One probe's numbers: per watched layer, then per activation output read."""

    grad_norm: np.ndarray
    grad_abs_max: np.ndarray  # largest finite |entry|
    weight_norm: np.ndarray
    moved_norm: np.ndarray  # ||w - w_before||
    before_norm: np.ndarray  # ||w_before||
    weights_finite: np.ndarray  # bool
    grads_finite: np.ndarray  # bool
    outputs_finite: np.ndarray  # bool, per output
    dead_fraction: np.ndarray  # per output; NaN where the activation cannot die
    saturated_fraction: np.ndarray  # per output; NaN where it cannot saturate


Snapshot = list[Any]  # the weights at the previous probe (device arrays on JAX)
Prober = Callable[[Any, Any, Snapshot], tuple[ProbeStats, Snapshot]]


def backend() -> str:
    name = keras.backend.backend()
    if name not in BACKENDS:
        raise ConfigError(
            f"stablelearn's Monitor supports the {', '.join(BACKENDS)} backends, not {name!r}."
        )
    return name


def _values(variables: Sequence[Any]) -> list[Any]:
    return [v.value for v in variables]


def _norm(xp: Any, arrays: Sequence[Any]) -> Any:
    """L2 norm over arrays, scaled by the largest |entry| so float32 squares cannot overflow."""
    if not arrays:
        return xp.asarray(0.0)
    scale = xp.max(xp.stack([xp.max(xp.abs(a)) for a in arrays]))  # NaN if any entry is
    safe = xp.where(xp.isfinite(scale) & (scale > 0), scale, 1.0)
    total = sum(xp.sum(xp.square(a / safe)) for a in arrays)
    norm = xp.where(xp.isinf(scale), np.inf, safe * xp.sqrt(total))
    return xp.where(scale == 0, 0.0, norm)


def _finite_abs_max(xp: Any, arrays: Sequence[Any]) -> Any:
    return xp.max(xp.stack([xp.max(xp.where(xp.isfinite(a), xp.abs(a), 0.0)) for a in arrays]))


def _all_finite(xp: Any, arrays: Sequence[Any]) -> Any:
    return xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in arrays]))


def statistics(
    xp: Any,
    plan: ProbePlan,
    weights: Sequence[Any],
    grads: Sequence[Any],
    before: Sequence[Any],
    outputs: Sequence[Any] | None,
) -> dict[str, Any]:
    """The probe's numbers as arrays of `xp` (NumPy, or jax.numpy inside the compiled probe)."""
    per_layer: dict[str, list[Any]] = {
        k: [] for k in ("grad_norm", "grad_abs_max", "weight_norm", "moved_norm", "before_norm",
                        "weights_finite", "grads_finite")
    }  # fmt: skip
    for indices in plan.layer_variables:
        w, g, b = ([arrays[i] for i in indices] for arrays in (weights, grads, before))
        per_layer["grad_norm"].append(_norm(xp, g))
        per_layer["grad_abs_max"].append(_finite_abs_max(xp, g))
        per_layer["weight_norm"].append(_norm(xp, w))
        per_layer["moved_norm"].append(_norm(xp, [a - c for a, c in zip(w, b, strict=True)]))
        per_layer["before_norm"].append(_norm(xp, b))
        per_layer["weights_finite"].append(_all_finite(xp, w))
        per_layer["grads_finite"].append(_all_finite(xp, g))
    result = {k: xp.stack(v) for k, v in per_layer.items()}
    dead, saturated, finite = [], [], []
    for (kind, axis), h in zip(plan.output_kinds, outputs or (), strict=False):
        d, s = unit_fraction(xp, kind, h, axis)
        dead.append(d)
        saturated.append(s)
        finite.append(xp.all(xp.isfinite(h)))
    result["dead_fraction"] = xp.stack(dead) if dead else xp.zeros((0,), np.float32)
    result["saturated_fraction"] = xp.stack(saturated) if saturated else xp.zeros((0,))
    result["outputs_finite"] = xp.stack(finite) if finite else xp.zeros((0,), bool)
    return result


def _to_stats(numbers: dict[str, Any], outputs_read: bool, n_outputs: int) -> ProbeStats:
    host = {k: np.asarray(v) for k, v in numbers.items()}
    if not outputs_read:  # no graph to read outputs from: unit statistics are unknown
        host["dead_fraction"] = host["saturated_fraction"] = np.full(n_outputs, np.nan)
        host["outputs_finite"] = np.ones(n_outputs, bool)
    floats = {k: v.astype(np.float64) for k, v in host.items() if v.dtype != bool}
    return ProbeStats(**floats, **{k: v for k, v in host.items() if v.dtype == bool})


def _probe_model(model: Any, layers: Sequence[Any]) -> Any:
    """A model returning every given layer's output, or None where the model has no
    graph to read them from (a subclassed model)."""
    if not layers:
        return None
    try:
        return keras.Model(model.inputs, [layer.output for layer in layers])
    except (AttributeError, ValueError, TypeError):
        return None


def snapshot(model: Any) -> Snapshot:
    """A copy of the model's trainable weights, for the first probe's update ratio."""
    if backend() == "jax":
        import jax.numpy as jnp

        return [jnp.array(v, copy=True) for v in _values(model.trainable_variables)]
    return weights_of(model.trainable_variables)


def probe_function(model: Any, plan: ProbePlan, output_layers: Sequence[Any]) -> Prober:
    """prober(x, y, before) -> (statistics, snapshot of the weights for the next probe)."""
    probe_model = _probe_model(model, output_layers)
    n_outputs = len(plan.output_kinds)
    if backend() == "jax":
        return _jax_prober(model, plan, probe_model, n_outputs)
    gradients = _eager_gradients(model)

    def eager_probe(x, y, before):
        weights = weights_of(model.trainable_variables)
        grads = gradients(x, y)
        outputs = None
        if probe_model is not None:
            values = probe_model(keras.ops.convert_to_tensor(x), training=False)
            outputs = [keras.ops.convert_to_numpy(v) for v in values]
        with np.errstate(all="ignore"):
            numbers = statistics(np, plan, weights, grads, before, outputs)
        return _to_stats(numbers, outputs is not None, n_outputs), weights

    return eager_probe


def _jax_prober(model: Any, plan: ProbePlan, probe_model: Any, n_outputs: int) -> Prober:
    import jax
    import jax.numpy as jnp

    def loss_fn(trainable, non_trainable, metrics, x, y):
        loss, _ = model.compute_loss_and_updates(
            trainable, non_trainable, metrics, x, y, None, training=False
        )
        return loss

    # the probe model's variables are the model's own: passing the same arrays lets XLA
    # share the forward pass between the gradient and the layer outputs
    shared = _shared_variables(model, probe_model) if probe_model is not None else None

    @jax.jit
    def fused(trainable, non_trainable, metrics, probe_variables, before, x, y):
        grads = jax.grad(loss_fn)(trainable, non_trainable, metrics, x, y)
        outputs = None
        if probe_model is not None:
            if shared is not None:
                probe_variables = (
                    [trainable[i] for i in shared[0]],
                    [non_trainable[i] for i in shared[1]],
                )
            outputs = probe_model.stateless_call(*probe_variables, x, training=False)[0]
        numbers = statistics(jnp, plan, trainable, grads, before, outputs)
        return numbers, [jnp.copy(w) for w in trainable]  # survives Keras donating its state

    def jax_probe(x, y, before):
        probe_variables = (
            (_values(probe_model.trainable_variables), _values(probe_model.non_trainable_variables))
            if probe_model is not None and shared is None
            else ((), ())
        )
        numbers, weights = fused(
            _values(model.trainable_variables),
            _values(model.non_trainable_variables),
            _values(model.metrics_variables),
            probe_variables,
            before,
            x,
            y,
        )
        return _to_stats(jax.device_get(numbers), probe_model is not None, n_outputs), weights

    return jax_probe


def _shared_variables(model: Any, probe_model: Any) -> tuple[list[int], list[int]] | None:
    """Where each of the probe model's variables sits in the model's own lists, or None."""
    pairs = (
        (model.trainable_variables, probe_model.trainable_variables),
        (model.non_trainable_variables, probe_model.non_trainable_variables),
    )
    found = []
    for ours, theirs in pairs:
        position = {id(v): i for i, v in enumerate(ours)}
        if any(id(v) not in position for v in theirs):
            return None
        found.append([position[id(v)] for v in theirs])
    return found[0], found[1]


def _eager_gradients(model: Any) -> Callable[[Any, Any], list[np.ndarray]]:
    """The gradient of the compiled loss per trainable variable, on TensorFlow or torch."""
    if backend() == "tensorflow":
        import tensorflow as tf

        def tf_gradients(x, y):
            with tf.GradientTape() as tape:
                y_pred = model(x, training=False)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
            grads = tape.gradient(loss, model.trainable_variables)
            return [
                np.zeros(v.shape, np.float32) if g is None else np.asarray(g)
                for g, v in zip(grads, model.trainable_variables, strict=True)
            ]

        return tf_gradients
    import torch

    def torch_gradients(x, y):
        x_t, y_t = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
        y_pred = model(x_t, training=False)
        loss = model.compute_loss(x=x_t, y=y_t, y_pred=y_pred, training=False)
        values = _values(model.trainable_variables)
        grads = torch.autograd.grad(loss, values, allow_unused=True)
        return [
            np.zeros(tuple(v.shape), np.float32) if g is None else g.detach().cpu().numpy()
            for g, v in zip(grads, values, strict=True)
        ]

    return torch_gradients


def weights_of(variables: Sequence[Any]) -> list[np.ndarray]:
    """The current values of variables as NumPy arrays (a copy)."""
    return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in variables]
