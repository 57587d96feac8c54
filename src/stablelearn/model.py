"""Multilayer perceptrons as data: a spec, its parameters, and a pure forward pass.

Parameters are a tuple with one {"kernel", "bias"} dict per layer. Kernels are
[units, inputs] and activations [units, batch] ("hidden-major"): with a leading model
axis added by vmap, this is the layout that ran fastest on CPU (../shared/DESIGN.md).
JAX is imported by the functions that draw parameters, not with the module: reading a
spec (an experiment file, `stablelearn list`) does not need it.

Two deeper-network options of a hidden layer, each as Keras users write it:
- `batch_norm`: Dense -> BatchNormalization() -> activation (the Dense keeps its bias
  unless use_bias=False, as `keras.layers.Dense` does). The layer's dict also holds the
  trainable "gamma" (init 1) and "beta" (init 0); the moving statistics are *state*, not
  parameters: a separate tuple with {"moving_mean" (init 0), "moving_variance" (init 1)}
  per batch-normalized layer ({} for the others), never seen by gradients or the
  optimizer. Keras semantics (keras/src/layers/normalization/batch_normalization.py):
  training normalizes with the batch mean and biased variance and updates
  moving = moving * 0.99 + batch * (1 - 0.99); evaluation and prediction normalize with
  the moving statistics; epsilon 1e-3 is added to the variance inside the square root.
- `residual`: a skip connection, output = input + activation(layer(input)), Keras'
  `x = layers.Add()([x, Dense(units, activation)(x)])` (with batch_norm the Dense ->
  BatchNormalization -> Activation block sits inside the Add). Only where the layer's
  input has its own width.
"""

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from stablelearn.activations import check_activation, get_activation
from stablelearn.checks import is_integer
from stablelearn.errors import ConfigError
from stablelearn.initializers import VARIANCE_SCALING, Initializer, as_initializer, sample

if TYPE_CHECKING:
    import jax

Params = tuple[dict[str, "jax.Array"], ...]
State = tuple[dict[str, "jax.Array"], ...]  # per layer: moving statistics, or {}

BN_MOMENTUM = 0.99  # keras.layers.BatchNormalization defaults
BN_EPSILON = 1e-3


@dataclass(frozen=True)
class Dense:
    """One fully connected layer, named and defaulted as Keras' `Dense`."""

    units: int
    activation: str = "linear"
    kernel_initializer: Initializer | str | Mapping[str, Any] = "glorot_uniform"
    bias_initializer: Initializer | str | Mapping[str, Any] = "zeros"
    use_bias: bool = True
    batch_norm: bool = False  # Dense -> BatchNormalization() -> activation
    residual: bool = False  # output = input + activation(...), a skip connection

    def __post_init__(self) -> None:
        if not is_integer(self.units) or self.units < 1:
            raise ConfigError(
                f"A Dense layer needs a positive integer of units, got {self.units!r}."
            )
        for name in ("use_bias", "batch_norm", "residual"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}.")
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
        if self.output.batch_norm or self.output.residual:
            raise ConfigError(
                "batch_norm and residual apply to hidden layers; the output layer takes neither."
            )
        for i, (fan_in, layer) in enumerate(zip(self.fan_ins, self.hidden, strict=False)):
            if layer.residual and fan_in != layer.units:
                raise ConfigError(
                    f"Hidden layer {i + 1} has residual=true but its input has {fan_in} units "
                    f"and it has {layer.units}; a skip connection adds a layer's input to its "
                    "output, so both need the same width."
                )

    @classmethod
    def stack(
        cls,
        input_dim: int,
        depth: int,
        units: int,
        activation: str = "relu",
        kernel_initializer: Initializer | str | Mapping[str, Any] = "glorot_uniform",
        output: Dense | None = None,
        batch_norm: bool = False,
        residual: bool = False,
    ) -> "MLP":
        """`depth` identical hidden layers, the lesson's way of building deeper networks.

        residual=True puts a skip connection around every layer whose input has its
        width: all of them, except the first when input_dim differs from units (that
        layer projects the inputs to the stack's width)."""
        if not is_integer(depth) or depth < 0:
            raise ConfigError(f"depth must be a non-negative integer, got {depth!r}.")
        layer = Dense(units, activation, kernel_initializer, batch_norm=batch_norm)
        hidden = skips_where_widths_match(input_dim, (layer,) * depth, residual)
        return cls(input_dim, hidden, output or Dense(1))

    def with_batch_norm(self, batch_norm: bool = True) -> "MLP":
        """This model with batch normalization before every hidden activation (or none)."""
        hidden = tuple(dataclasses.replace(layer, batch_norm=batch_norm) for layer in self.hidden)
        return dataclasses.replace(self, hidden=hidden)

    def with_residual(self, residual: bool = True) -> "MLP":
        """This model with a skip connection around every hidden layer whose input has
        its width (or none); a ConfigError when no layer has one to take."""
        hidden = skips_where_widths_match(self.input_dim, self.hidden, residual)
        if residual and not any(layer.residual for layer in hidden):
            raise ConfigError(
                f"{self.describe()} has no hidden layer whose input has its own width, so no "
                "skip connection fits; use two or more hidden layers of equal width."
            )
        return dataclasses.replace(self, hidden=hidden)

    @property
    def fan_ins(self) -> tuple[int, ...]:
        """Each layer's input width, output layer last."""
        return (self.input_dim, *(layer.units for layer in self.hidden))

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
            notes = [layer.activation] + [
                note
                for note, on in (
                    ("no bias", not layer.use_bias),
                    ("batch norm", layer.batch_norm),
                    ("residual", layer.residual),
                )
                if on
            ]
            text = f"{layer.units}({', '.join(notes)})"
            if parts and parts[-1][0] == text and i < self.depth:
                parts[-1][1] += 1
            else:
                parts.append([text, 1])
        body = [text if count == 1 else f"{text}x{count}" for text, count in parts]
        return "-".join([str(self.input_dim), *body])

    def parameter_count(self) -> int:
        """Every weight, as Keras' count_params (batch norm: gamma, beta and the two
        moving statistics)."""
        widths = [self.input_dim] + [layer.units for layer in self.layers]
        kernels = sum(fan_in * fan_out for fan_in, fan_out in itertools.pairwise(widths))
        biases = sum(layer.units for layer in self.layers if layer.use_bias)
        return kernels + biases + sum(4 * layer.units for layer in self.layers if layer.batch_norm)

    @property
    def has_state(self) -> bool:
        """Whether the model keeps moving statistics (batch normalization)."""
        return any(layer.batch_norm for layer in self.hidden)


def skips_where_widths_match(
    input_dim: int, hidden: Sequence[Dense], residual: bool
) -> tuple[Dense, ...]:
    """`hidden` with a skip connection on each layer whose input has its width (residual
    True), or on none: the one rule for "residual" on a stack of layers."""
    widths = (input_dim, *(layer.units for layer in hidden))
    return tuple(
        dataclasses.replace(layer, residual=residual and fan_in == layer.units)
        for fan_in, layer in zip(widths, hidden, strict=False)
    )


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
                **batch_norm_params(layer, np),
            }
        )
        fan_in = layer.units
    return tuple(params)


def batch_norm_params(layer: Dense, xp: Any, models: tuple[int, ...] = ()) -> dict[str, Any]:
    """A layer's gamma (ones) and beta (zeros), with leading `models` axes; {} without
    batch norm. Constant, so drawing them uses no random key: every other weight of a
    seed stays what it was without batch norm."""
    if not layer.batch_norm:
        return {}
    shape = (*models, layer.units)
    return {"gamma": xp.ones(shape, np.float32), "beta": xp.zeros(shape, np.float32)}


def init_state(model: MLP, models: tuple[int, ...] = ()) -> State:
    """Fresh moving statistics (mean 0, variance 1) with leading `models` axes."""
    return tuple(
        {
            "moving_mean": np.zeros((*models, layer.units), np.float32),
            "moving_variance": np.ones((*models, layer.units), np.float32),
        }
        if layer.batch_norm
        else {}
        for layer in model.layers
    )


STATE_KEYS = ("moving_mean", "moving_variance")


def split_state(model: MLP, weights: Params, models: tuple[int, ...] = ()) -> tuple[Params, State]:
    """Trainable parameters and moving statistics from per-layer weight dicts (such as
    TrainResult.final_params): statistics a dict lacks start fresh."""
    fresh = init_state(model, models)
    params = tuple({k: v for k, v in layer.items() if k not in STATE_KEYS} for layer in weights)
    state = tuple(
        {k: layer.get(k, default) for k, default in start.items()}
        for layer, start in zip(weights, fresh, strict=True)
    )
    return params, state


def batch_moments(z: "jax.Array", weights: "jax.Array | None") -> tuple["jax.Array", "jax.Array"]:
    """Per-unit mean and biased variance of z [units, batch] over the rows of weight 1
    (weights 0 mark a padded last batch: Keras sees those rows as a smaller batch)."""
    import jax.numpy as jnp

    if weights is None:
        return jnp.mean(z, axis=1), jnp.var(z, axis=1)
    count = jnp.sum(weights)
    mean = jnp.sum(z * weights, axis=1) / count
    variance = jnp.sum(jnp.square(z - mean[:, None]) * weights, axis=1) / count
    return mean, variance


def batch_normalize(
    z: "jax.Array", mean: "jax.Array", variance: "jax.Array", p: dict[str, "jax.Array"]
) -> "jax.Array":
    """gamma * (z - mean) / sqrt(variance + epsilon) + beta, as keras.ops.batch_normalization
    computes it."""
    import jax

    scale = jax.lax.rsqrt(variance + BN_EPSILON) * p["gamma"]
    return z * scale[:, None] + (p["beta"] - mean * scale)[:, None]


def moving_average(stats: dict[str, "jax.Array"], mean: "jax.Array", variance: "jax.Array"):
    """Keras' moving-statistics update after one training batch."""
    return {
        "moving_mean": stats["moving_mean"] * BN_MOMENTUM + mean * (1.0 - BN_MOMENTUM),
        "moving_variance": stats["moving_variance"] * BN_MOMENTUM + variance * (1.0 - BN_MOMENTUM),
    }


def apply_layer(
    layer: Dense,
    p: dict[str, "jax.Array"],
    h: "jax.Array",
    stats: dict[str, "jax.Array"],
    weights: "jax.Array | None" = None,
    training: bool = False,
) -> tuple["jax.Array", "jax.Array", "jax.Array", dict[str, "jax.Array"]]:
    """One layer on h [inputs, batch]: (pre-activation, activation, output, statistics).

    The pre-activation is what the activation function receives (after batch norm);
    the output is what the next layer receives (the activation, plus the input for a
    residual layer). In training mode a batch-normalized layer uses the batch's
    statistics (rows of weight 1) and returns its updated moving statistics.
    """
    z = p["kernel"] @ h
    if layer.use_bias:
        z = z + p["bias"][:, None]
    if layer.batch_norm:
        if training:
            mean, variance = batch_moments(z, weights)
            stats = moving_average(stats, mean, variance)
        else:
            mean, variance = stats["moving_mean"], stats["moving_variance"]
        z = batch_normalize(z, mean, variance, p)
    a = get_activation(layer.activation)(z)
    return z, a, h + a if layer.residual else a, stats


def run_layers(
    model: MLP,
    params: Params,
    x_t: "jax.Array",
    state: State | None = None,
    weights: "jax.Array | None" = None,
    training: bool = False,
) -> tuple[list["jax.Array"], list["jax.Array"], State]:
    """Every layer's pre-activation and activation (see apply_layer), and the moving
    statistics after this batch (unchanged unless training)."""
    state = init_state(model) if state is None else state
    pre_activations, activations, new_state, h = [], [], [], x_t
    for layer, p, stats in zip(model.layers, params, state, strict=True):
        z, a, h, stats = apply_layer(layer, p, h, stats, weights, training)
        pre_activations.append(z)
        activations.append(a)
        new_state.append(stats)
    return pre_activations, activations, tuple(new_state)


def forward_layers(
    model: MLP, params: Params, x_t: "jax.Array", state: State | None = None
) -> tuple[list["jax.Array"], list["jax.Array"]]:
    """Every layer's pre-activation and activation, each [units, batch], as the model
    evaluates and predicts (batch norm with the moving statistics of `state`, fresh
    ones when None).

    x_t is the input batch transposed to [input_dim, batch].
    """
    pre_activations, activations, _ = run_layers(model, params, x_t, state)
    return pre_activations, activations


def forward(
    model: MLP, params: Params, x_t: "jax.Array", state: State | None = None
) -> tuple["jax.Array", "jax.Array"]:
    """The output layer's (logits, output): losses on sigmoid outputs use the logits."""
    pre_activations, activations = forward_layers(model, params, x_t, state)
    return pre_activations[-1], activations[-1]


def layer_names(model: MLP) -> list[str]:
    return [f"hidden_{i + 1}" for i in range(model.depth)] + ["output"]


def validate_widths(model: MLP, n_features: int) -> None:
    if model.input_dim != n_features:
        raise ConfigError(
            f"The model expects {model.input_dim} inputs but the data has {n_features} "
            f"feature columns; set input_dim={n_features}."
        )
