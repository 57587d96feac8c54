"""Multilayer perceptrons as data: a spec, its parameters, and a pure forward pass.

Parameters are a tuple with one {"kernel", "bias"} dict per layer. Kernels are
[units, inputs] and activations [units, batch] ("hidden-major"): with a leading model
axis added by vmap, this is the layout that ran fastest on CPU (../shared/DESIGN.md).
JAX is imported by the functions that draw parameters, not with the module: reading a
spec (an experiment file, `stablelearn list`) does not need it.
"""

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stablelearn.activations import check_activation, get_activation
from stablelearn.checks import is_integer
from stablelearn.errors import ConfigError
from stablelearn.initializers import VARIANCE_SCALING, Initializer, as_initializer, sample

if TYPE_CHECKING:
    import jax

Params = tuple[dict[str, "jax.Array"], ...]


@dataclass(frozen=True)
class Dense:
    """One fully connected layer, named and defaulted as Keras' `Dense`."""

    units: int
    activation: str = "linear"
    kernel_initializer: Initializer | str | Mapping[str, Any] = "glorot_uniform"
    bias_initializer: Initializer | str | Mapping[str, Any] = "zeros"
    use_bias: bool = True

    def __post_init__(self) -> None:
        if not is_integer(self.units) or self.units < 1:
            raise ConfigError(
                f"A Dense layer needs a positive integer of units, got {self.units!r}."
            )
        if not isinstance(self.use_bias, bool):
            raise ConfigError(f"use_bias must be true or false, got {self.use_bias!r}.")
        object.__setattr__(self, "activation", check_activation(self.activation))
        if not self.use_bias:
            # a layer without a bias keeps a zero one that the forward pass never reads,
            # so it gets exactly zero gradient and every optimizer leaves it at zero
            object.__setattr__(self, "bias_initializer", "zeros")
        object.__setattr__(self, "kernel_initializer", as_initializer(self.kernel_initializer))
        object.__setattr__(self, "bias_initializer", as_initializer(self.bias_initializer))
        if self.bias_initializer.name in VARIANCE_SCALING:
            raise ConfigError(
                f"bias_initializer {self.bias_initializer.name!r} scales by a kernel's fan-in and "
                "cannot initialize a bias; use zeros, ones, random_uniform or random_normal."
            )


@dataclass(frozen=True)
class MLP:
    """An input width, hidden layers and an output layer.

    Equal specs hash equal, so a spec is the key under which compiled programs are reused.
    """

    input_dim: int
    hidden: tuple[Dense, ...] = field(default=())
    output: Dense = field(default_factory=lambda: Dense(1))

    def __post_init__(self) -> None:
        if not is_integer(self.input_dim) or self.input_dim < 1:
            raise ConfigError(f"input_dim must be a positive integer, got {self.input_dim!r}.")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for layer in (*self.hidden, self.output):
            if not isinstance(layer, Dense):
                raise ConfigError(f"Layers must be Dense specs, got {layer!r}.")

    @classmethod
    def stack(
        cls,
        input_dim: int,
        depth: int,
        units: int,
        activation: str = "relu",
        kernel_initializer: Initializer | str | Mapping[str, Any] = "glorot_uniform",
        output: Dense | None = None,
    ) -> "MLP":
        """`depth` identical hidden layers, the lesson's way of building deeper networks."""
        if not is_integer(depth) or depth < 0:
            raise ConfigError(f"depth must be a non-negative integer, got {depth!r}.")
        layer = Dense(units, activation, kernel_initializer)
        return cls(input_dim, (layer,) * depth, output or Dense(1))

    @property
    def layers(self) -> tuple[Dense, ...]:
        return (*self.hidden, self.output)

    @property
    def depth(self) -> int:
        return len(self.hidden)

    def describe(self) -> str:
        """A one-line summary such as '2-5(relu)x15-1(sigmoid)' (x15: fifteen equal layers)."""
        parts: list[list] = []
        for i, layer in enumerate(self.layers):
            text = f"{layer.units}({layer.activation}{'' if layer.use_bias else ', no bias'})"
            if parts and parts[-1][0] == text and i < self.depth:
                parts[-1][1] += 1
            else:
                parts.append([text, 1])
        body = [text if count == 1 else f"{text}x{count}" for text, count in parts]
        return "-".join([str(self.input_dim), *body])

    def parameter_count(self) -> int:
        widths = [self.input_dim] + [layer.units for layer in self.layers]
        kernels = sum(fan_in * fan_out for fan_in, fan_out in itertools.pairwise(widths))
        return kernels + sum(layer.units for layer in self.layers if layer.use_bias)


def init_params(model: MLP, key: "jax.Array") -> Params:
    """Draw one model's parameters; a model's seed alone decides them."""
    import jax

    params = []
    fan_in = model.input_dim
    for layer, layer_key in zip(
        model.layers, jax.random.split(key, len(model.layers)), strict=True
    ):
        kernel_key, bias_key = jax.random.split(layer_key)
        params.append(
            {
                "kernel": sample(layer.kernel_initializer, kernel_key, (layer.units, fan_in)),
                "bias": sample(layer.bias_initializer, bias_key, (layer.units,)),
            }
        )
        fan_in = layer.units
    return tuple(params)


def forward_layers(
    model: MLP, params: Params, x_t: "jax.Array"
) -> tuple[list["jax.Array"], list["jax.Array"]]:
    """Every layer's pre-activation and activation, each [units, batch].

    x_t is the input batch transposed to [input_dim, batch].
    """
    pre_activations, activations, h = [], [], x_t
    for layer, p in zip(model.layers, params, strict=True):
        z = p["kernel"] @ h
        if layer.use_bias:
            z = z + p["bias"][:, None]
        h = get_activation(layer.activation)(z)
        pre_activations.append(z)
        activations.append(h)
    return pre_activations, activations


def forward(model: MLP, params: Params, x_t: "jax.Array") -> tuple["jax.Array", "jax.Array"]:
    """The output layer's (logits, output): losses on sigmoid outputs use the logits."""
    pre_activations, activations = forward_layers(model, params, x_t)
    return pre_activations[-1], activations[-1]


def layer_names(model: MLP) -> list[str]:
    return [f"hidden_{i + 1}" for i in range(model.depth)] + ["output"]


def validate_widths(model: MLP, n_features: int) -> None:
    if model.input_dim != n_features:
        raise ConfigError(
            f"The model expects {model.input_dim} inputs but the data has {n_features} "
            f"feature columns; set input_dim={n_features}."
        )
