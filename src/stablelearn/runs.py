"""What to train: a training configuration (Keras' `fit()` arguments) and a Run, one
model's spec, optimizer, data and seed. The engine compiles and trains runs; results
describe them; neither module needs the other to say what a run is."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stablelearn import losses
from stablelearn.checks import check_positive_int, is_integer
from stablelearn.data import PreparedData
from stablelearn.errors import ConfigError
from stablelearn.model import MLP, validate_widths
from stablelearn.optim import Optimizer
from stablelearn.tasks import OUTPUT_ACTIVATIONS, TASK_DEFAULTS

MAX_SEED = 2**32 - 1  # JAX and NumPy seeds are 32-bit


@dataclass(frozen=True)
class TrainConfig:
    """How to fit, with Keras' `fit()` names and defaults (epochs as in the lesson)."""

    epochs: int = 100
    batch_size: int = 32
    loss: str = "mse"
    metrics: tuple[str, ...] = ()
    bce_form: str = "logits"
    shuffle: bool = True
    validation: bool = True
    telemetry: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_positive_int(name, getattr(self, name))
        object.__setattr__(self, "loss", losses.canonical_loss(self.loss))
        object.__setattr__(self, "metrics", losses.check_metrics(self.loss, tuple(self.metrics)))
        if self.bce_form not in losses.BCE_FORMS:
            raise ConfigError(
                f"bce_form must be one of {', '.join(losses.BCE_FORMS)}, got {self.bce_form!r}."
            )

    @classmethod
    def for_task(cls, task: str, **overrides: Any) -> "TrainConfig":
        """The lesson's choice for a task: MSE for regression; BCE + accuracy for binary;
        sparse categorical cross-entropy + accuracy for multiclass (softmax output)."""
        return cls(**{**TASK_DEFAULTS[task], **overrides})

    @property
    def result_layout(self) -> tuple:
        """What decides the arrays of a TrainResult: runs trained together must share it."""
        return (self.loss, self.metrics, self.validation, self.telemetry)


def check_model_for_data(model: MLP, data: PreparedData | Any, loss: str) -> None:
    """The model's input width, output units and output activation must fit the data's
    task: the losses read the output layer's logits, so a binary model needs a sigmoid
    and a multiclass model a softmax for its accuracy to mean what it says."""
    validate_widths(model, data.n_features)
    task = data.task
    units = data.n_classes if task == "multiclass" else 1
    if model.output.units != units:
        raise ConfigError(
            f"The output layer must have {units} unit(s) for this {task} target, got {model.output.units}."
        )
    wanted = OUTPUT_ACTIVATIONS.get(task)
    if wanted and model.output.activation != wanted:
        raise ConfigError(
            f"A {task} target needs a {wanted} output layer, got {model.output.activation!r}."
        )
    if task == "regression" and model.output.activation == "softmax":
        raise ConfigError("A regression target cannot use a softmax output layer.")
    expected = TASK_DEFAULTS[task]["loss"]
    if loss != expected:
        raise ConfigError(f"A {task} target needs loss={expected!r}, got {loss!r}.")


@dataclass(frozen=True, eq=False)
class Run:
    """One model to train: its spec, optimizer, data, seed and free-form tags."""

    model: MLP
    optimizer: Optimizer
    data: PreparedData
    seed: int = 0
    config: TrainConfig = field(default_factory=TrainConfig)
    tags: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_integer(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"A seed must be an integer from 0 to 2**32 - 1, got {self.seed!r}.")
        check_model_for_data(self.model, self.data, self.config.loss)
