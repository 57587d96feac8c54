"""Activation functions by their Keras names.

Where JAX and Keras disagree on a default, the Keras value wins because the lesson's
models are Keras models: `leaky_relu` uses Keras 3's `negative_slope=0.2` (JAX: 0.01)
and `gelu` is the exact erf form (Keras' `approximate=False`; JAX defaults to tanh).

Two activations take a number, written as in Python: `leaky_relu(negative_slope=0.3)`
(Keras' `LeakyReLU` layer defaults to 0.3, PyTorch's to 0.01) and `elu(alpha=0.5)`.
A name is kept in its canonical form (arguments at their default are left out), so
equal activations compare and hash equal and share compiled programs.
"""

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stablelearn.checks import is_number
from stablelearn.errors import ConfigError

if TYPE_CHECKING:
    import jax

Activation = Callable[["jax.Array"], "jax.Array"]

# The names are known without JAX, so that parsing an experiment file does not import
# it; the functions are built on first use (`_tables`: ACTIVATIONS, PARAMETRIC).
ACTIVATION_NAMES = (
    "linear", "relu", "tanh", "sigmoid", "leaky_relu", "elu", "selu", "gelu", "silu",
    "relu6", "softsign", "softplus", "softmax",
)  # fmt: skip
# name -> (argument, Keras default) of the activations that take a number
PARAMETRIC_ARGUMENTS: dict[str, tuple[str, float]] = {
    "leaky_relu": ("negative_slope", 0.2),
    "elu": ("alpha", 1.0),
}
_Parametric = dict[str, tuple[str, float, Callable[["jax.Array", float], "jax.Array"]]]


@functools.cache
def _tables() -> tuple[dict[str, Activation], _Parametric]:
    """ACTIVATIONS and PARAMETRIC, the JAX functions behind the names; built once, when a
    model is first traced, so that importing this module does not import JAX."""
    import jax
    import jax.numpy as jnp

    activations: dict[str, Activation] = {
        "linear": lambda x: x,
        "relu": jax.nn.relu,
        "tanh": jnp.tanh,
        "sigmoid": jax.nn.sigmoid,
        "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=0.2),
        "elu": jax.nn.elu,
        "selu": jax.nn.selu,
        "gelu": lambda x: jax.nn.gelu(x, approximate=False),
        "silu": jax.nn.silu,  # Keras' swish
        "relu6": jax.nn.relu6,
        "softsign": jax.nn.soft_sign,
        "softplus": jax.nn.softplus,
        # across units: activations are [units, batch] in this engine
        "softmax": lambda x: jax.nn.softmax(x, axis=0),
    }
    with_number = {
        "leaky_relu": lambda x, s: jax.nn.leaky_relu(x, negative_slope=s),
        "elu": lambda x, a: jax.nn.elu(x, alpha=a),
    }
    parametric = {k: (*PARAMETRIC_ARGUMENTS[k], with_number[k]) for k in PARAMETRIC_ARGUMENTS}
    return activations, parametric


def __getattr__(name: str) -> Any:
    """ACTIVATIONS (name -> function) and PARAMETRIC (name -> (argument, Keras default,
    function of (x, value))): the module's tables of JAX functions, built on first use."""
    if name == "ACTIVATIONS":
        return _tables()[0]
    if name == "PARAMETRIC":
        return _tables()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_WITH_ARGUMENT = re.compile(r"^\s*([a-z_0-9]+)\s*\(\s*(?:([a-z_]+)\s*=\s*)?([^()=]+?)\s*\)\s*$")


def with_argument(name: str, value: float) -> str:
    """The canonical name of a parametric activation, e.g. 'leaky_relu(negative_slope=0.3)'."""
    argument, default = PARAMETRIC_ARGUMENTS[name]
    value = float(value)
    return name if value == default else f"{name}({argument}={value:g})"


def parse_activation(name: str) -> tuple[str, float | None]:
    """(base name, argument or None): 'elu(alpha=0.5)' -> ('elu', 0.5), 'relu' -> ('relu', None)."""
    if not isinstance(name, str):
        raise ConfigError(f"An activation must be a name, got {name!r}.")
    match = _WITH_ARGUMENT.match(name)
    if match is None:
        if name not in ACTIVATION_NAMES:
            known = ", ".join(ACTIVATION_NAMES)
            raise ConfigError(
                f"Unknown activation {name!r}; expected one of: {known} "
                "(leaky_relu and elu also take an argument, e.g. 'leaky_relu(negative_slope=0.3)')."
            )
        return name, None
    base, key, text = match.groups()
    if base not in PARAMETRIC_ARGUMENTS:
        raise ConfigError(
            f"Activation {base!r} takes no argument; only {' and '.join(PARAMETRIC_ARGUMENTS)} do."
        )
    argument = PARAMETRIC_ARGUMENTS[base][0]
    if key not in (None, argument):
        raise ConfigError(f"Activation {base!r} takes {argument}, not {key}.")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"Activation {name!r}: {argument} must be a number.") from None
    if not is_number(value) or value != value or abs(value) == float("inf"):
        raise ConfigError(f"Activation {name!r}: {argument} must be a finite number.")
    return base, value


def check_activation(name: str) -> str:
    """`name` in canonical form if it is a known activation, else a ConfigError listing them."""
    base, value = parse_activation(name)
    return base if value is None else with_argument(base, value)


def activation_kind(name: str) -> str:
    """The activation's family without its argument: 'leaky_relu(negative_slope=0.3)' -> 'leaky_relu'."""
    return parse_activation(name)[0]


@functools.cache
def get_activation(name: str) -> Activation:
    base, value = parse_activation(name)
    activations, parametric = _tables()
    if value is None:
        return activations[base]
    function = parametric[base][2]
    return lambda x: function(x, value)
