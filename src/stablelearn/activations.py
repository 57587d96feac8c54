"""Activation functions by their Keras names.

Where JAX and Keras disagree on a default, the Keras value wins because the lesson's
models are Keras models: `leaky_relu` uses Keras 3's `negative_slope=0.2` (JAX: 0.01)
and `gelu` is the exact erf form (Keras' `approximate=False`; JAX defaults to tanh).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from stablelearn.errors import ConfigError

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=0.2),
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "softplus": jax.nn.softplus,
    # across units: activations are [units, batch] in this engine
    "softmax": lambda x: jax.nn.softmax(x, axis=0),
}


def check_activation(name: str) -> str:
    """Return `name` if it is a known activation, else raise a ConfigError listing them."""
    if name not in ACTIVATIONS:
        known = ", ".join(ACTIVATIONS)
        raise ConfigError(f"Unknown activation {name!r}; expected one of: {known}.")
    return name


def get_activation(name: str) -> Activation:
    return ACTIVATIONS[check_activation(name)]
