"""Optimizers and gradient clipping with Keras semantics, built from Optax pieces.

An optimizer spec splits in two: a *structure* (which optimizer, which clipping
modes, nesterov...) that decides the compiled code, and *hyperparameters* (learning
rate, momentum, clip thresholds...) that are plain numbers and may differ between
the models of one ensemble, because they enter the compiled program as arrays with a
leading model axis.

Keras facts this module follows (keras/src/optimizers/):
- SGD: v <- momentum * v - lr * g; w <- w + v (nesterov: w <- w + momentum * v - lr * g).
  For a constant learning rate this is exactly `optax.sgd(lr, momentum, nesterov)`,
  whose trace is -v / lr; tests/test_optim.py proves it step by step.
- Clipping is applied to the raw gradients before the optimizer, and Keras accepts
  only one of: `clipnorm` (each variable's gradient rescaled separately to norm <= c),
  `global_clipnorm` (all gradients together, as PyTorch's clip_grad_norm_), and
  `clipvalue` (element-wise to [-c, c]).
- RMSprop: epsilon inside the square root, no bias correction (optax `eps_in_sqrt=True`).
- Adam: Keras adds epsilon to sqrt(v) *before* bias correction ("epsilon hat"); Optax
  adds it after. They differ only while sqrt(v_hat) is comparable to 1e-7; we use
  Optax's `adam` with Keras' epsilon 1e-7 and document the difference here.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import jax
import numpy as np
import optax

from stablelearn.errors import ConfigError, is_number

Threshold = float | tuple[float, ...] | None
CLIP_MODES = ("clipnorm", "clipvalue", "global_clipnorm")


def _check_number(
    owner: str, name: str, value: Any, low: float, high: float, *, open_low: bool, open_high: bool
) -> None:
    if not is_number(value) or not math.isfinite(value):
        raise ConfigError(f"{owner} {name} must be a finite number, got {value!r}.")
    too_low = value <= low if open_low else value < low
    too_high = value >= high if open_high else value > high
    if too_low or too_high:
        lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
        raise ConfigError(f"{owner} {name} must be in {lo}{low:g}, {high:g}{hi}, got {value!r}.")


def _normalize_threshold(owner: str, name: str, value: Any) -> Threshold:
    if value is None:
        return None
    values = (
        tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else (value,)
    )
    if not values:
        raise ConfigError(f"{owner} {name} needs at least one threshold.")
    for v in values:
        _check_number(owner, name, v, 0.0, math.inf, open_low=True, open_high=True)
    return (
        tuple(float(v) for v in values)
        if len(values) > 1 or isinstance(value, Sequence)
        else float(values[0])
    )


@dataclass(frozen=True, kw_only=True)
class _Clipping:
    """Keras' clipping arguments; a tuple gives one threshold per layer, output last."""

    clipnorm: Threshold = None
    clipvalue: Threshold = None
    global_clipnorm: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for mode in ("clipnorm", "clipvalue"):
            object.__setattr__(self, mode, _normalize_threshold(owner, mode, getattr(self, mode)))
        if self.global_clipnorm is not None:
            if isinstance(self.global_clipnorm, Sequence):
                raise ConfigError(
                    f"{owner} global_clipnorm takes one threshold, not one per layer."
                )
            _check_number(
                owner,
                "global_clipnorm",
                self.global_clipnorm,
                0.0,
                math.inf,
                open_low=True,
                open_high=True,
            )
            object.__setattr__(self, "global_clipnorm", float(self.global_clipnorm))
        used = [mode for mode in CLIP_MODES if getattr(self, mode) is not None]
        if len(used) > 1:
            raise ConfigError(
                f"{owner} got {' and '.join(used)}; Keras allows only one clipping mode per "
                "optimizer, so choose one."
            )

    @property
    def clip_mode(self) -> str | None:
        return next((mode for mode in CLIP_MODES if getattr(self, mode) is not None), None)

    def clip_thresholds(self, mode: str, n_layers: int) -> np.ndarray:
        """Per-layer thresholds for `mode` ([n_layers]; [] for global), inf where unused."""
        value = getattr(self, mode)
        if mode == "global_clipnorm":
            return np.float32(math.inf if value is None else value)
        if value is None:
            return np.full(n_layers, np.inf, np.float32)
        if isinstance(value, tuple):
            if len(value) != n_layers:
                raise ConfigError(
                    f"{mode} lists {len(value)} thresholds but the model has {n_layers} layers "
                    "(hidden layers then the output layer); give one per layer or a single number."
                )
            return np.asarray(value, np.float32)
        return np.full(n_layers, value, np.float32)


@dataclass(frozen=True)
class SGD(_Clipping):
    """Keras `SGD(learning_rate=0.01, momentum=0.0, nesterov=False)`."""

    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number(
            "SGD", "learning_rate", self.learning_rate, 0.0, math.inf, open_low=True, open_high=True
        )
        _check_number("SGD", "momentum", self.momentum, 0.0, 1.0, open_low=False, open_high=False)


@dataclass(frozen=True)
class Adam(_Clipping):
    """Keras `Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`."""

    learning_rate: float = 0.001
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number(
            "Adam",
            "learning_rate",
            self.learning_rate,
            0.0,
            math.inf,
            open_low=True,
            open_high=True,
        )
        _check_number("Adam", "beta_1", self.beta_1, 0.0, 1.0, open_low=False, open_high=True)
        _check_number("Adam", "beta_2", self.beta_2, 0.0, 1.0, open_low=False, open_high=True)
        _check_number(
            "Adam", "epsilon", self.epsilon, 0.0, math.inf, open_low=False, open_high=True
        )


@dataclass(frozen=True)
class RMSprop(_Clipping):
    """Keras `RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7)`."""

    learning_rate: float = 0.001
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_number(
            "RMSprop",
            "learning_rate",
            self.learning_rate,
            0.0,
            math.inf,
            open_low=True,
            open_high=True,
        )
        _check_number("RMSprop", "rho", self.rho, 0.0, 1.0, open_low=False, open_high=True)
        _check_number(
            "RMSprop", "momentum", self.momentum, 0.0, 1.0, open_low=False, open_high=False
        )
        _check_number(
            "RMSprop", "epsilon", self.epsilon, 0.0, math.inf, open_low=False, open_high=True
        )


Optimizer = SGD | Adam | RMSprop
OPTIMIZERS: dict[str, type] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}
# numeric fields that may vary between the models of one ensemble
_HYPERPARAMETERS = {
    SGD: ("learning_rate", "momentum"),
    Adam: ("learning_rate", "beta_1", "beta_2", "epsilon"),
    RMSprop: ("learning_rate", "rho", "momentum", "epsilon"),
}


def make_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Build an optimizer from its Keras name ('sgd', 'adam', 'rmsprop') and keyword arguments."""
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ConfigError(f"Unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}.")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ConfigError(
            f"{cls.__name__} got unknown argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(allowed))}."
        )
    return cls(**kwargs)


@dataclass(frozen=True)
class OptimizerStructure:
    """What an ensemble's optimizers share: it selects the compiled code."""

    kind: type
    nesterov: bool = False
    clip_modes: tuple[str, ...] = field(default=())


def optimizer_structure(optimizers: Sequence[Optimizer]) -> OptimizerStructure:
    """The common structure of an ensemble's optimizers, or a ConfigError if they have none."""
    first = optimizers[0]
    kinds = {type(o) for o in optimizers}
    nesterov = {getattr(o, "nesterov", False) for o in optimizers}
    if len(kinds) > 1 or len(nesterov) > 1:
        raise ConfigError(
            "Models trained as one ensemble must use the same optimizer type and nesterov flag."
        )
    modes = tuple(m for m in CLIP_MODES if any(getattr(o, m) is not None for o in optimizers))
    return OptimizerStructure(type(first), nesterov.pop(), modes)


def stack_hyperparameters(
    optimizers: Sequence[Optimizer], structure: OptimizerStructure, n_layers: int
) -> dict[str, np.ndarray]:
    """Each numeric hyperparameter as an array with a leading model axis."""
    stacked = {
        name: np.asarray([getattr(o, name) for o in optimizers], np.float32)
        for name in _HYPERPARAMETERS[structure.kind]
    }
    for mode in structure.clip_modes:
        stacked[mode] = np.stack([o.clip_thresholds(mode, n_layers) for o in optimizers])
    return stacked


def _layer_labels(params: Any, per_tensor: bool) -> Any:
    return tuple(
        {name: (f"{i}/{name}" if per_tensor else str(i)) for name in layer}
        for i, layer in enumerate(params)
    )


def clip_by_tensor_norm(thresholds: jax.Array, n_layers: int) -> optax.GradientTransformation:
    """Keras `clipnorm`: every kernel and bias gradient rescaled on its own to norm <= c.

    `thresholds` holds one value per layer (applied to that layer's kernel and bias);
    inf leaves a tensor alone. Each tensor is its own partition of Optax's
    `clip_by_global_norm`, so the global-norm code does the per-tensor work.
    """
    transforms = {
        f"{i}/{name}": optax.clip_by_global_norm(thresholds[i])
        for i in range(n_layers)
        for name in ("kernel", "bias")
    }
    return optax.partition(transforms, lambda params: _layer_labels(params, per_tensor=True))


def clip_by_layer_value(thresholds: jax.Array, n_layers: int) -> optax.GradientTransformation:
    """Keras `clipvalue` with one bound per layer: element-wise clip to [-c_i, c_i]."""
    transforms = {str(i): optax.clip(thresholds[i]) for i in range(n_layers)}
    return optax.partition(transforms, lambda params: _layer_labels(params, per_tensor=False))


def build_clipping(
    structure: OptimizerStructure, hp: Mapping[str, jax.Array], n_layers: int
) -> optax.GradientTransformation:
    """The clipping stage alone (identity when no model of the ensemble clips)."""
    clipping = []
    if "clipnorm" in structure.clip_modes:
        clipping.append(clip_by_tensor_norm(hp["clipnorm"], n_layers))
    if "clipvalue" in structure.clip_modes:
        clipping.append(clip_by_layer_value(hp["clipvalue"], n_layers))
    if "global_clipnorm" in structure.clip_modes:
        clipping.append(optax.clip_by_global_norm(hp["global_clipnorm"]))
    return optax.chain(*clipping) if clipping else optax.identity()


def build_optimizer(
    structure: OptimizerStructure, hp: Mapping[str, jax.Array]
) -> optax.GradientTransformation:
    """The optimizer stage alone: SGD, Adam or RMSprop with this model's numbers."""
    if structure.kind is SGD:
        return optax.sgd(hp["learning_rate"], momentum=hp["momentum"], nesterov=structure.nesterov)
    if structure.kind is Adam:
        return optax.adam(hp["learning_rate"], b1=hp["beta_1"], b2=hp["beta_2"], eps=hp["epsilon"])
    return optax.rmsprop(
        hp["learning_rate"],
        decay=hp["rho"],
        eps=hp["epsilon"],
        eps_in_sqrt=True,
        momentum=hp["momentum"],
    )


def build_transform(
    structure: OptimizerStructure, hp: Mapping[str, jax.Array], n_layers: int
) -> optax.GradientTransformation:
    """The Optax chain for one model: clipping first (as Keras), then the optimizer.

    Called inside traced code with this model's hyperparameters, so every model of an
    ensemble gets its own learning rate, momentum and thresholds from the same program.
    The engine applies the two stages one after the other itself, to see the gradient
    before and after clipping; the result is the same as this chain.
    """
    return optax.chain(build_clipping(structure, hp, n_layers), build_optimizer(structure, hp))


def describe(optimizer: Optimizer) -> str:
    """A short label such as 'SGD(lr=0.01, momentum=0.9, clipnorm=1)'."""
    parts = [f"{name}={getattr(optimizer, name):g}" for name in _HYPERPARAMETERS[type(optimizer)]]
    parts[0] = parts[0].replace("learning_rate", "lr")
    if getattr(optimizer, "nesterov", False):
        parts.append("nesterov")
    mode = optimizer.clip_mode
    if mode:
        parts.append(f"{mode}={getattr(optimizer, mode)}")
    return f"{type(optimizer).__name__}({', '.join(parts)})"
