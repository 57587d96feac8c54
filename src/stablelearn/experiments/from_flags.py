"""One configuration from command-line flags (`stablelearn train`): the lesson's MLP and
SGD by default (stablelearn.defaults), on a built-in dataset, over several seeds."""

from dataclasses import dataclass
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
    optimizer: str = defaults.OPTIMIZER["name"]
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

    def build_optimizer(self) -> Optimizer:
        kwargs: dict[str, Any] = {
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }
        if self.learning_rate is not None:
            kwargs["learning_rate"] = self.learning_rate
        momentum = self.momentum
        if momentum is None and self.optimizer.lower() == "sgd":
            momentum = defaults.SGD_MOMENTUM
        if momentum is not None:
            kwargs["momentum"] = momentum
        return make_optimizer(self.optimizer, **kwargs)


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
    model = MLP.stack(
        raw.n_features, flags.depth, flags.units, flags.activation, flags.init,
        output_layer(raw.task, raw.n_classes),
    )  # fmt: skip
    optimizer = flags.build_optimizer()
    config = TrainConfig.for_task(raw.task, epochs=flags.epochs, batch_size=flags.batch_size)
    runs = [
        Run(model, optimizer, prepared, flags.seed + i, config, {"repeat": i})
        for i in range(flags.repeats)
    ]
    return model, optimizer, prepared, runs


def train_from_flags(flags: TrainFlags) -> FlagsResult:
    model, optimizer, prepared, runs = flag_runs(flags)
    return FlagsResult(flags, model, optimizer, prepared, train(runs))
