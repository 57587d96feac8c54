"""Keras weight initializers, built on `jax.nn.initializers`.

Kernels are stored as [units, inputs] (hidden-major, the fast layout on CPU), so
fan_in is the last axis and fan_out the one before it. The variance-scaling family
follows Keras exactly: uniform draws use limit sqrt(3 * scale / n); "normal" draws
are a normal truncated at two standard deviations whose stddev is divided by
0.87962566 to keep the target variance (JAX's `variance_scaling` does the same).

PyTorch's default `nn.Linear` initialization (torch/nn/modules/linear.py) is two named
initializers: `torch_linear` for the kernel, Kaiming uniform with a = sqrt(5), which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (variance scaling 1/3, fan_in, uniform), and
`torch_linear_bias(fan_in=n)` for the bias, the same bound from the kernel's fan_in,
given as an argument because a bias alone does not know its layer's inputs.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stablelearn.checks import is_number
from stablelearn.errors import ConfigError

if TYPE_CHECKING:
    import jax

# name -> (scale, mode, distribution) of Keras' VarianceScaling
VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "torch_linear": (1.0 / 3.0, "fan_in", "uniform"),
}
# name -> Keras default arguments
_PARAMETRIC = {
    "random_uniform": {"minval": -0.05, "maxval": 0.05},
    "random_normal": {"mean": 0.0, "stddev": 0.05},
    "torch_linear_bias": {"fan_in": 1.0},
}
_CONSTANT = {"zeros", "ones"}
INITIALIZERS = (*VARIANCE_SCALING, *_PARAMETRIC, *_CONSTANT)


@dataclass(frozen=True)
class Initializer:
    """A named Keras initializer with its arguments (only the parametric ones take any)."""

    name: str
    args: tuple[tuple[str, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.name not in INITIALIZERS:
            known = ", ".join(INITIALIZERS)
            raise ConfigError(f"Unknown initializer {self.name!r}; expected one of: {known}.")
        allowed = _PARAMETRIC.get(self.name, {})
        for key, value in self.args:
            if key not in allowed:
                expected = ", ".join(allowed) or "no arguments"
                raise ConfigError(
                    f"Initializer {self.name!r} got unknown argument {key!r}; it takes {expected}."
                )
            if not is_number(value) or not math.isfinite(value):
                raise ConfigError(
                    f"Initializer {self.name!r} argument {key!r} must be a finite number, "
                    f"got {value!r}."
                )
        kwargs = self.kwargs
        if self.name == "random_uniform" and not kwargs["minval"] < kwargs["maxval"]:
            raise ConfigError(
                f"random_uniform needs minval < maxval, got {kwargs['minval']} and "
                f"{kwargs['maxval']}."
            )
        if self.name == "random_normal" and not kwargs["stddev"] > 0:
            raise ConfigError(f"random_normal needs stddev > 0, got {kwargs['stddev']}.")
        if self.name == "torch_linear_bias" and not (
            kwargs["fan_in"] >= 1 and float(kwargs["fan_in"]).is_integer()
        ):
            raise ConfigError(
                f"torch_linear_bias needs a positive integer fan_in, got {kwargs['fan_in']}."
            )

    @property
    def kwargs(self) -> dict[str, float]:
        """Arguments with the Keras defaults filled in."""
        return {**_PARAMETRIC.get(self.name, {}), **dict(self.args)}

    def __str__(self) -> str:
        if not self.args:
            return self.name
        inner = ", ".join(f"{k}={v:g}" for k, v in self.kwargs.items())
        return f"{self.name}({inner})"


def random_uniform(minval: float = -0.05, maxval: float = 0.05) -> Initializer:
    """Keras `RandomUniform(minval, maxval)`."""
    return Initializer("random_uniform", (("minval", minval), ("maxval", maxval)))


def random_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """Keras `RandomNormal(mean, stddev)` (not truncated, as in Keras)."""
    return Initializer("random_normal", (("mean", mean), ("stddev", stddev)))


def torch_linear_bias(fan_in: int) -> Initializer:
    """PyTorch's default `nn.Linear` bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return Initializer("torch_linear_bias", (("fan_in", float(fan_in)),))


def as_initializer(value: "str | Mapping[str, Any] | Initializer") -> Initializer:
    """Accept an Initializer, a name, or a mapping such as {name="random_uniform", minval=0}."""
    if isinstance(value, Initializer):
        return value
    if isinstance(value, str):
        return Initializer(value)
    if isinstance(value, Mapping):
        if "name" not in value:
            raise ConfigError(f"An initializer table needs a 'name' key, got {dict(value)!r}.")
        args = tuple((k, v) for k, v in value.items() if k != "name")
        return Initializer(str(value["name"]), args)
    raise ConfigError(f"An initializer must be a name or a table with a 'name' key, got {value!r}.")


def sample(init: Initializer, key: "jax.Array", shape: tuple[int, ...]) -> "jax.Array":
    """Draw an array of `shape` ([units, inputs] for kernels, [units] for biases).

    JAX is imported here, not with the module: reading a spec does not need it."""
    import jax
    import jax.numpy as jnp

    if init.name in VARIANCE_SCALING:
        scale, mode, distribution = VARIANCE_SCALING[init.name]
        if len(shape) < 2:
            raise ConfigError(f"{init.name} needs a kernel of rank 2, not a bias of shape {shape}.")
        fn = jax.nn.initializers.variance_scaling(
            scale, mode, distribution, in_axis=-1, out_axis=-2
        )
        return fn(key, shape, jnp.float32)
    kwargs = init.kwargs
    if init.name == "random_uniform":
        return jax.random.uniform(
            key, shape, jnp.float32, minval=kwargs["minval"], maxval=kwargs["maxval"]
        )
    if init.name == "random_normal":
        return kwargs["mean"] + kwargs["stddev"] * jax.random.normal(key, shape, jnp.float32)
    if init.name == "torch_linear_bias":
        bound = 1.0 / math.sqrt(kwargs["fan_in"])
        return jax.random.uniform(key, shape, jnp.float32, minval=-bound, maxval=bound)
    return jnp.full(shape, 1.0 if init.name == "ones" else 0.0, jnp.float32)
