"""One configuration from command-line flags (`stablelearn train`): the lesson's MLP and
SGD by default (stablelearn.defaults), on a built-in dataset, over several seeds."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn import defaults
from stablelearn.data import PreparedData, builtin_dataset, prepare
from stablelearn.engine import train
from stablelearn.errors import ConfigError
from stablelearn.model import MLP
from stablelearn.optim import Optimizer, describe, make_optimizer
from stablelearn.results import TrainResult
from stablelearn.runs import Run, TrainConfig
from stablelearn.tasks import lesson_metric, output_layer


@dataclass(frozen=True)
class TrainFlags:
    """`stablelearn train`'s options; None leaves the optimizer's Keras default."""

    dataset: str = defaults.BUILTIN_DATASET
    depth: int = defaults.DEPTH
    units: int = defaults.HIDDEN_LAYER["units"]
    activation: str = defaults.HIDDEN_LAYER["activation"]
    init: str = defaults.HIDDEN_LAYER["kernel_initializer"]
    optimizer: str | None = None  # the lesson's SGD, or a Keras model's compiled optimizer
    learning_rate: float | None = None
    momentum: float | None = None
    clipnorm: float | None = None
    clipvalue: float | None = None
    global_clipnorm: float | None = None
    input_scaler: str = "none"
    target_scaler: str = "none"
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    n_train: int = defaults.N_TRAIN
    repeats: int = defaults.REPEATS
    seed: int = 0
    model_file: Path | None = None  # a saved Keras model replaces depth/units/activation/init

    def build_optimizer(self) -> Optimizer:
        kwargs: dict[str, Any] = {
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }
        if self.learning_rate is not None:
            kwargs["learning_rate"] = self.learning_rate
        name = self.optimizer or defaults.OPTIMIZER["name"]
        momentum = self.momentum
        if momentum is None and name.lower() == "sgd":
            momentum = defaults.SGD_MOMENTUM
        if momentum is not None:
            kwargs["momentum"] = momentum
        return make_optimizer(name, **kwargs)

    def keras_optimizer(self, compiled: Optimizer | None) -> Optimizer:
        """A Keras model's compiled optimizer with the flags that were given applied; an
        uncompiled model, or --optimizer naming another one, gets the flags' optimizer."""
        if compiled is None or (
            self.optimizer is not None and self.optimizer.lower() != type(compiled).__name__.lower()
        ):
            return self.build_optimizer()
        changes: dict[str, Any] = {}
        if self.learning_rate is not None:
            changes["learning_rate"] = self.learning_rate
        if self.momentum is not None:
            changes["momentum"] = self.momentum
        clips = {
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }
        if any(v is not None for v in clips.values()):
            changes |= clips  # Keras takes one clip mode: a given one replaces the model's
        try:
            return dataclasses.replace(compiled, **changes)
        except TypeError:
            raise ConfigError(
                f"{type(compiled).__name__} takes no momentum; drop --momentum."
            ) from None


@dataclass(frozen=True, eq=False)
class FlagsResult:
    """What `stablelearn train` trained and measured."""

    flags: TrainFlags
    model: MLP
    optimizer: Optimizer
    data: PreparedData
    result: TrainResult

    @property
    def metric(self) -> str:
        return lesson_metric(self.data.task)

    def to_json(self) -> dict[str, Any]:
        t = self.result.timing
        return {
            "model": self.model.describe(),
            "optimizer": describe(self.optimizer),
            "data": self.data.describe(),
            "epochs": self.flags.epochs,
            "models": self.result.records(),
            "timing": {"compile_s": t.compile_s, "train_s": t.train_s, "prepare_s": t.prepare_s},
        }

    def medians(self) -> tuple[float, float]:
        """Median train and test score over the seeds."""
        metric = self.metric
        return (
            float(np.median(self.result.train_scores[metric])),
            float(np.median(self.result.test_scores[metric])),
        )


def flag_runs(flags: TrainFlags) -> tuple[MLP, Optimizer, PreparedData, list[Run]]:
    """The model, optimizer, data and one run per seed that the flags describe."""
    if flags.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {flags.repeats}.")
    raw = builtin_dataset(flags.dataset)
    prepared = prepare(raw, flags.input_scaler, flags.target_scaler, n_train=flags.n_train)
    settings = {"epochs": flags.epochs, "batch_size": flags.batch_size}
    if flags.model_file is not None:
        model, optimizer, config = _keras_configuration(flags, raw.n_features, raw.task, settings)
    else:
        model = MLP.stack(
            raw.n_features, flags.depth, flags.units, flags.activation, flags.init,
            output_layer(raw.task, raw.n_classes),
        )  # fmt: skip
        optimizer = flags.build_optimizer()
        config = TrainConfig.for_task(raw.task, **settings)
    runs = [
        Run(model, optimizer, prepared, flags.seed + i, config, {"repeat": i})
        for i in range(flags.repeats)
    ]
    return model, optimizer, prepared, runs


_ARCHITECTURE_FLAGS = ("depth", "units", "activation", "init")


def _keras_configuration(
    flags: TrainFlags, n_features: int, task: str, settings: dict[str, Any]
) -> tuple[MLP, Optimizer, TrainConfig]:
    """The model, optimizer and training settings of a saved Keras model."""
    from stablelearn.model_file import check_input_width, spec_from_file

    given = [
        f"--{name}"
        for name in _ARCHITECTURE_FLAGS
        if getattr(flags, name) != getattr(TrainFlags, name)
    ]
    if given:
        raise ConfigError(f"--model gives the layers; drop {', '.join(given)}.")
    spec = spec_from_file(flags.model_file)
    check_input_width(spec, flags.model_file.name, n_features, flags.dataset)
    return spec.model, flags.keras_optimizer(spec.optimizer), spec.train_config(task, **settings)


def train_from_flags(flags: TrainFlags) -> FlagsResult:
    model, optimizer, prepared, runs = flag_runs(flags)
    return FlagsResult(flags, model, optimizer, prepared, train(runs))
