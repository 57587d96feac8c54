"""Optimizers and gradient clipping with Keras semantics, built from Optax pieces.

An optimizer spec splits in two: a *structure* (which optimizer, which clipping
modes, nesterov...) that decides the compiled code, and *hyperparameters* (learning
rate, momentum, clip thresholds...) that are plain numbers and may differ between
the models of one ensemble, because they enter the compiled program as arrays with a
leading model axis.

Keras facts this module follows (keras/src/optimizers/):
- SGD: v <- momentum * v - lr * g; w <- w + v (nesterov: w <- w + momentum * v - lr * g).
  For a constant learning rate this is exactly `optax.sgd(lr, momentum, nesterov)`,
  whose trace is -v / lr; tests/core/test_optim.py proves it step by step.
- Clipping is applied to the raw gradients before the optimizer, and Keras accepts
  only one of: `clipnorm` (each variable's gradient rescaled separately to norm <= c),
  `global_clipnorm` (all gradients together, as PyTorch's clip_grad_norm_), and
  `clipvalue` (element-wise to [-c, c]).
- RMSprop: epsilon inside the square root, no bias correction (optax `eps_in_sqrt=True`).
- Adam: Keras adds epsilon to sqrt(v) *before* bias correction ("epsilon hat"); Optax
  adds it after. They differ only while sqrt(v_hat) is comparable to 1e-7; we use
  Optax's `adam` with Keras' epsilon 1e-7 and document the difference here.

PyTorch's forms (torch/optim/), for models converted by stablelearn.torch:
- SGD: b <- momentum * b + (1 - dampening) * g, with b = g at the first step; w <- w - lr * b
  (nesterov: w <- w - lr * (g + momentum * b)). Without dampening this is the Keras
  update above; `dampening` > 0 selects `torch_momentum`, the dampened form.
- RMSprop: epsilon outside the square root, g / (sqrt(v) + eps) (`epsilon_in_sqrt=False`);
  momentum buffers the scaled gradient as Keras and Optax do.
- Adam: epsilon added to sqrt(v_hat) after bias correction: exactly Optax's `adam`.
- clip_grad_norm_ is global_clipnorm (PyTorch divides by norm + 1e-6, a relative
  difference of 1e-6 / norm) and clip_grad_value_ is clipvalue.
FORM_DEFAULTS holds these settings at their Keras values, which tables and labels omit.

This module also owns the one rule about clipping in configuration tables: Keras takes
a single clip mode, so setting one replaces any other (`with_clipping`).

JAX and Optax are imported by the functions that build transformations (when a training
program is traced), not with the module: specs and tables need neither.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from stablelearn.checks import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    UNIT_OPEN_HIGH,
    Interval,
    check_in,
)
from stablelearn.errors import ConfigError

if TYPE_CHECKING:
    import jax
    import optax

Threshold = float | tuple[float, ...] | None
CLIP_MODES = ("clipnorm", "clipvalue", "global_clipnorm")
# PyTorch-only settings at their Keras values: left out of tables and labels
FORM_DEFAULTS: dict[str, Any] = {"dampening": 0.0, "epsilon_in_sqrt": True}


def _normalize_threshold(owner: str, name: str, value: Any) -> Threshold:
    if value is None:
        return None
    values = (
        tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else (value,)
    )
    if not values:
        raise ConfigError(f"{owner} {name} needs at least one threshold.")
    for v in values:
        check_in(owner, name, v, POSITIVE)
    return (
        tuple(float(v) for v in values)
        if len(values) > 1 or isinstance(value, Sequence)
        else float(values[0])
    )


@dataclass(frozen=True, kw_only=True)
class _Clipping:
    """Keras' clipping arguments; a tuple gives one threshold per layer, output last.

    Subclasses declare their numeric fields' ranges once, in CONSTRAINTS; the fields
    listed there are also the hyperparameters that may differ within one ensemble.
    """

    CONSTRAINTS: ClassVar[dict[str, Interval]] = {}

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
            check_in(owner, "global_clipnorm", self.global_clipnorm, POSITIVE)
            object.__setattr__(self, "global_clipnorm", float(self.global_clipnorm))
        used = [mode for mode in CLIP_MODES if getattr(self, mode) is not None]
        if len(used) > 1:
            raise ConfigError(
                f"{owner} got {' and '.join(used)}; Keras allows only one clipping mode per "
                "optimizer, so choose one."
            )
        for name, interval in self.CONSTRAINTS.items():
            check_in(owner, name, getattr(self, name), interval)

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
    """Keras `SGD(learning_rate=0.01, momentum=0.0, nesterov=False)`; `dampening` is
    PyTorch's (0: the Keras update)."""

    CONSTRAINTS: ClassVar[dict[str, Interval]] = {
        "learning_rate": POSITIVE,
        "momentum": UNIT,
        "dampening": UNIT,
    }

    learning_rate: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    dampening: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.nesterov, bool):  # "yes" would turn it on, [] crash
            raise ConfigError(f"SGD nesterov must be true or false, got {self.nesterov!r}.")
        if self.nesterov and self.dampening:  # PyTorch refuses it too
            raise ConfigError("SGD nesterov needs dampening 0, as in PyTorch.")


@dataclass(frozen=True)
class Adam(_Clipping):
    """Keras `Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`."""

    CONSTRAINTS: ClassVar[dict[str, Interval]] = {
        "learning_rate": POSITIVE,
        "beta_1": UNIT_OPEN_HIGH,
        "beta_2": UNIT_OPEN_HIGH,
        "epsilon": NON_NEGATIVE,
    }

    learning_rate: float = 0.001
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7


@dataclass(frozen=True)
class RMSprop(_Clipping):
    """Keras `RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7)`;
    `epsilon_in_sqrt=False` is PyTorch's form, g / (sqrt(v) + epsilon)."""

    CONSTRAINTS: ClassVar[dict[str, Interval]] = {
        "learning_rate": POSITIVE,
        "rho": UNIT_OPEN_HIGH,
        "momentum": UNIT,
        "epsilon": NON_NEGATIVE,
    }

    learning_rate: float = 0.001
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7
    epsilon_in_sqrt: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.epsilon_in_sqrt, bool):
            raise ConfigError(
                f"RMSprop epsilon_in_sqrt must be true or false, got {self.epsilon_in_sqrt!r}."
            )


Optimizer = SGD | Adam | RMSprop
OPTIMIZERS: dict[str, type] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def hyperparameter_names(kind: type) -> tuple[str, ...]:
    """The numeric fields that may vary between the models of one ensemble."""
    return tuple(kind.CONSTRAINTS)


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


# --- clipping in configuration tables -------------------------------------------------------


def without_clipping(table: Mapping[str, Any]) -> dict[str, Any]:
    """An [optimizer] table with every clip mode removed."""
    return {k: v for k, v in table.items() if k not in CLIP_MODES}


def clipping_of(table: Mapping[str, Any]) -> dict[str, Any]:
    """Only the clip mode (if any) of an [optimizer] table."""
    return {k: v for k, v in table.items() if k in CLIP_MODES}


def with_clipping(
    table: Mapping[str, Any], mode: str | None, threshold: Any = None
) -> dict[str, Any]:
    """An [optimizer] table clipping with `mode` at `threshold`: Keras takes one clip mode
    per optimizer, so any other is removed. `mode` None or "none" removes clipping."""
    if mode not in (None, "none", *CLIP_MODES):
        raise ConfigError(f"clip mode must be one of none, {', '.join(CLIP_MODES)}, got {mode!r}.")
    table = without_clipping(table)
    if mode not in (None, "none"):
        table[mode] = threshold
    return table


@dataclass(frozen=True)
class OptimizerStructure:
    """What an ensemble's optimizers share: it selects the compiled code."""

    kind: type
    nesterov: bool = False
    clip_modes: tuple[str, ...] = field(default=())
    dampened: bool = False  # some model uses PyTorch's dampened momentum
    epsilon_in_sqrt: bool = True


def optimizer_structure(optimizers: Sequence[Optimizer]) -> OptimizerStructure:
    """The common structure of an ensemble's optimizers, or a ConfigError if they have none."""
    first = optimizers[0]
    kinds = {type(o) for o in optimizers}
    nesterov = {getattr(o, "nesterov", False) for o in optimizers}
    in_sqrt = {getattr(o, "epsilon_in_sqrt", True) for o in optimizers}
    if len(kinds) > 1 or len(nesterov) > 1 or len(in_sqrt) > 1:
        raise ConfigError(
            "Models trained as one ensemble must use the same optimizer type, nesterov flag "
            "and epsilon placement."
        )
    modes = tuple(m for m in CLIP_MODES if any(getattr(o, m) is not None for o in optimizers))
    dampened = any(getattr(o, "dampening", 0.0) for o in optimizers)
    return OptimizerStructure(type(first), nesterov.pop(), modes, dampened, in_sqrt.pop())


def stack_hyperparameters(
    optimizers: Sequence[Optimizer], structure: OptimizerStructure, n_layers: int
) -> dict[str, np.ndarray]:
    """Each numeric hyperparameter as an array with a leading model axis."""
    stacked = {
        name: np.asarray([getattr(o, name) for o in optimizers], np.float32)
        for name in hyperparameter_names(structure.kind)
    }
    for mode in structure.clip_modes:
        stacked[mode] = np.stack([o.clip_thresholds(mode, n_layers) for o in optimizers])
    return stacked


def _layer_labels(params: Any, per_tensor: bool) -> Any:
    return tuple(
        {name: (f"{i}/{name}" if per_tensor else str(i)) for name in layer}
        for i, layer in enumerate(params)
    )


TENSORS = ("kernel", "bias")
BATCH_NORM_TENSORS = ("gamma", "beta")  # a batch-normalized layer's trainable variables


def clip_by_tensor_norm(
    thresholds: "jax.Array", n_layers: int, tensors: Sequence[str] = TENSORS
) -> "optax.GradientTransformation":
    """Keras `clipnorm`: every variable's gradient (kernel, bias, batch norm's gamma and
    beta) rescaled on its own to norm <= c.

    `thresholds` holds one value per layer (applied to each of that layer's `tensors`
    it has); inf leaves a tensor alone. Each tensor is its own partition of Optax's
    `clip_by_global_norm`, so the global-norm code does the per-tensor work.
    """
    import optax

    transforms = {
        f"{i}/{name}": optax.clip_by_global_norm(thresholds[i])
        for i in range(n_layers)
        for name in tensors
    }
    return optax.partition(transforms, lambda params: _layer_labels(params, per_tensor=True))


def clip_by_layer_value(thresholds: "jax.Array", n_layers: int) -> "optax.GradientTransformation":
    """Keras `clipvalue` with one bound per layer: element-wise clip to [-c_i, c_i]."""
    import optax

    transforms = {str(i): optax.clip(thresholds[i]) for i in range(n_layers)}
    return optax.partition(transforms, lambda params: _layer_labels(params, per_tensor=False))


def build_clipping(
    structure: OptimizerStructure,
    hp: Mapping[str, "jax.Array"],
    n_layers: int,
    tensors: Sequence[str] = TENSORS,
) -> "optax.GradientTransformation":
    """The clipping stage alone (identity when no model of the ensemble clips);
    `tensors` names every variable a layer may have."""
    import optax

    clipping = []
    if "clipnorm" in structure.clip_modes:
        clipping.append(clip_by_tensor_norm(hp["clipnorm"], n_layers, tensors))
    if "clipvalue" in structure.clip_modes:
        clipping.append(clip_by_layer_value(hp["clipvalue"], n_layers))
    if "global_clipnorm" in structure.clip_modes:
        clipping.append(optax.clip_by_global_norm(hp["global_clipnorm"]))
    return optax.chain(*clipping) if clipping else optax.identity()


def torch_momentum(momentum: "jax.Array", dampening: "jax.Array") -> "optax.GradientTransformation":
    """PyTorch's SGD momentum buffer: b <- momentum * b + (1 - dampening) * g, b = g at
    the first step (torch/optim/sgd.py), so dampening never scales the first gradient."""
    import jax
    import jax.numpy as jnp
    import optax

    def init(params):
        return (jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        count, buffers = state
        # without momentum PyTorch keeps no buffer, so dampening does nothing
        scale = jnp.where((count == 0) | (momentum == 0), 1.0, 1.0 - dampening)
        buffers = jax.tree.map(lambda b, g: momentum * b + scale * g, buffers, updates)
        return buffers, (count + 1, buffers)

    return optax.GradientTransformation(init, update)


def build_optimizer(
    structure: OptimizerStructure, hp: Mapping[str, "jax.Array"]
) -> "optax.GradientTransformation":
    """The optimizer stage alone: SGD, Adam or RMSprop with this model's numbers."""
    import optax

    if structure.kind is SGD and structure.dampened:
        momentum = torch_momentum(hp["momentum"], hp["dampening"])
        return optax.chain(momentum, optax.scale_by_learning_rate(hp["learning_rate"]))
    if structure.kind is SGD:
        return optax.sgd(hp["learning_rate"], momentum=hp["momentum"], nesterov=structure.nesterov)
    if structure.kind is Adam:
        return optax.adam(hp["learning_rate"], b1=hp["beta_1"], b2=hp["beta_2"], eps=hp["epsilon"])
    return optax.rmsprop(
        hp["learning_rate"],
        decay=hp["rho"],
        eps=hp["epsilon"],
        eps_in_sqrt=structure.epsilon_in_sqrt,
        momentum=hp["momentum"],
    )


def describe(optimizer: Optimizer) -> str:
    """A short label such as 'SGD(lr=0.01, momentum=0.9, clipnorm=1)'."""
    parts = [
        f"{name}={getattr(optimizer, name):g}"
        for name in hyperparameter_names(type(optimizer))
        if getattr(optimizer, name) != FORM_DEFAULTS.get(name)
    ]
    parts[0] = parts[0].replace("learning_rate", "lr")
    if getattr(optimizer, "nesterov", False):
        parts.append("nesterov")
    if not getattr(optimizer, "epsilon_in_sqrt", True):
        parts.append("epsilon outside sqrt")
    mode = optimizer.clip_mode
    if mode:
        parts.append(f"{mode}={getattr(optimizer, mode)}")
    return f"{type(optimizer).__name__}({', '.join(parts)})"
