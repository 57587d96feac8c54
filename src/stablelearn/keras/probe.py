"""Gradients and layer outputs of any Keras 3 model on a probe batch, per backend.

Keras 3 has no backend-neutral gradient API, so each backend gets its own small
function: `jax.value_and_grad` over the model's stateless `compute_loss_and_updates`
(compiled once), `tf.GradientTape`, or `torch.autograd.grad` (which leaves the
parameters' `.grad` alone). The probe runs the model in inference mode
(`training=False`): no dropout noise, and no batch-norm statistics are updated, so
watching never changes what is trained.
"""

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from stablelearn.errors import ConfigError

GradientFn = Callable[[Any, Any], tuple[float, list[np.ndarray]]]
OutputsFn = Callable[[Any], list[np.ndarray]]
BACKENDS = ("jax", "tensorflow", "torch")


def backend() -> str:
    name = keras.backend.backend()
    if name not in BACKENDS:
        raise ConfigError(
            f"stablelearn's Monitor supports the {', '.join(BACKENDS)} backends, not {name!r}."
        )
    return name


def _values(variables: Sequence[Any]) -> list[Any]:
    return [v.value for v in variables]


def gradient_function(model: Any) -> GradientFn:
    """(loss, gradient per trainable variable) of the compiled loss on one batch."""
    name = backend()
    if name == "jax":
        import jax

        def loss_fn(trainable, non_trainable, metrics, x, y):
            loss, aux = model.compute_loss_and_updates(
                trainable, non_trainable, metrics, x, y, None, training=False
            )
            return loss, aux

        value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))

        def jax_gradients(x, y):
            (loss, _), grads = value_and_grad(
                _values(model.trainable_variables),
                _values(model.non_trainable_variables),
                _values(model.metrics_variables),
                x,
                y,
            )
            return float(loss), [np.asarray(g) for g in grads]

        return jax_gradients
    if name == "tensorflow":
        import tensorflow as tf

        def tf_gradients(x, y):
            with tf.GradientTape() as tape:
                y_pred = model(x, training=False)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
            grads = tape.gradient(loss, model.trainable_variables)
            return float(loss), [
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
        return float(loss.detach().cpu()), [
            np.zeros(tuple(v.shape), np.float32) if g is None else g.detach().cpu().numpy()
            for g, v in zip(grads, values, strict=True)
        ]

    return torch_gradients


def outputs_function(model: Any, layers: Sequence[Any]) -> OutputsFn | None:
    """Every given layer's output on a batch, or None where the model has no graph to
    read them from (a subclassed model)."""
    try:
        outputs = [layer.output for layer in layers]
        probe_model = keras.Model(model.inputs, outputs)
    except (AttributeError, ValueError, TypeError):
        return None
    if backend() == "jax":
        import jax

        call = jax.jit(
            lambda trainable, non_trainable, x: probe_model.stateless_call(
                trainable, non_trainable, x, training=False
            )[0]
        )

        def jax_outputs(x):
            values = call(
                _values(probe_model.trainable_variables),
                _values(probe_model.non_trainable_variables),
                x,
            )
            return [np.asarray(v) for v in values]

        return jax_outputs

    def eager_outputs(x):
        values = probe_model(keras.ops.convert_to_tensor(x), training=False)
        return [keras.ops.convert_to_numpy(v) for v in values]

    return eager_outputs


def weights_of(variables: Sequence[Any]) -> list[np.ndarray]:
    """The current values of variables as NumPy arrays (a copy)."""
    return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in variables]
