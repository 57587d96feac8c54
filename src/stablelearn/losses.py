"""Losses and metrics with Keras semantics, on a batch with per-row weights.

Weights are 1 for real rows and 0 for the padding that fills the smaller last batch
of an epoch to the fixed batch shape, so every mean below is over real rows only.

`binary_crossentropy` comes in two forms, because Keras itself has two:
- "logits" (default): what the lesson's TensorFlow-backed Keras computes. When the
  prediction comes from a sigmoid, TF Keras recovers the logits and calls
  `sigmoid_cross_entropy_with_logits` (keras/src/backend/tensorflow/nn.py, `_get_logits`),
  so no epsilon clipping happens.
- "clipped": the probability form of Keras' JAX/NumPy backends: p clipped to
  [1e-7, 1 - 1e-7], then -(y log p + (1 - y) log(1 - p)). Equal to the logits form
  away from the clip, but its gradient is zero once a sigmoid saturates past the clip.
"""

from typing import TYPE_CHECKING

from stablelearn.errors import ConfigError

if TYPE_CHECKING:
    import jax

# The names and checks below are what reading a configuration needs; the functions
# that compute import jax.numpy when a training program is traced, not before.

EPSILON = 1e-7  # keras.config.epsilon()
LOSSES = ("mse", "binary_crossentropy", "sparse_categorical_crossentropy")
BCE_FORMS = ("logits", "clipped")
REGRESSION_METRICS = ("mae", "mse", "rmse")
CLASSIFICATION_METRICS = ("accuracy",)
_LOSS_ALIASES = {
    "mean_squared_error": "mse",
    "bce": "binary_crossentropy",
    "categorical_crossentropy": "sparse_categorical_crossentropy",
}


def canonical_loss(name: str) -> str:
    loss = _LOSS_ALIASES.get(name, name)
    if loss not in LOSSES:
        raise ConfigError(f"Unknown loss {name!r}; expected one of: {', '.join(LOSSES)}.")
    return loss


def check_metrics(loss: str, metrics: tuple[str, ...]) -> tuple[str, ...]:
    allowed = REGRESSION_METRICS if loss == "mse" else CLASSIFICATION_METRICS
    for metric in metrics:
        if metric not in allowed:
            raise ConfigError(
                f"Metric {metric!r} does not fit loss {loss!r}; expected one of: {', '.join(allowed)}."
            )
    return tuple(metrics)


def weighted_mean(values: "jax.Array", weights: "jax.Array") -> "jax.Array":
    import jax.numpy as jnp

    return jnp.sum(values * weights) / jnp.sum(weights)


def per_example_loss(
    loss: str, logits: "jax.Array", output: "jax.Array", y: "jax.Array", bce_form: str
) -> "jax.Array":
    """Loss per row. `logits` is the output layer's pre-activation and `output` its
    activation, both [units, batch]; y is [batch] (class indices for the categorical loss).

    The categorical loss is computed from the logits, as TF-backed Keras does for a
    softmax output (its `_keras_logits` shortcut), which is also the stable form.
    """
    import jax
    import jax.numpy as jnp

    if loss == "mse":
        return (output[0] - y) ** 2
    if loss == "sparse_categorical_crossentropy":
        log_p = jax.nn.log_softmax(logits, axis=0)
        return -jnp.take_along_axis(log_p, y.astype(jnp.int32)[None, :], axis=0)[0]
    z = logits[0]
    if bce_form == "logits":
        return jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))
    p = jnp.clip(output[0], EPSILON, 1.0 - EPSILON)
    return -(y * jnp.log(p) + (1.0 - y) * jnp.log(1.0 - p))


def per_example_metric(metric: str, output: "jax.Array", y: "jax.Array") -> "jax.Array":
    """The row-wise quantity whose (weighted) mean gives `metric` (rmse: before the root).

    output is [units, batch]: one unit is a regression value or a sigmoid probability
    (Keras' binary accuracy: strict > 0.5); several units are class probabilities
    (the predicted class is the argmax).
    """
    import jax.numpy as jnp

    if metric == "accuracy":
        if output.shape[0] > 1:
            return (jnp.argmax(output, axis=0) == y.astype(jnp.int32)).astype(jnp.float32)
        return ((output[0] > 0.5) == (y > 0.5)).astype(jnp.float32)
    if metric == "mae":
        return jnp.abs(output[0] - y)
    return (output[0] - y) ** 2  # mse and rmse


def finish_metric(metric: str, mean_value: "jax.Array") -> "jax.Array":
    import jax.numpy as jnp

    return jnp.sqrt(mean_value) if metric == "rmse" else mean_value
