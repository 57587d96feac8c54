"""Run experiments: expand variants x repeats into engine runs and collect the results.

Repeat r of every variant uses seed `experiment.seed + r`, so variants with the same
architecture start from the same weights and see the same batch order: comparisons
between variants are paired, and differences come from the variant alone.
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stablelearn.data import Dataset, PreparedData, prepare
from stablelearn.engine import Compiled, prepare_training, train
from stablelearn.engine.budget import Estimate, estimate_runs
from stablelearn.experiments.spec import Experiment, Variant
from stablelearn.model import MLP
from stablelearn.results import TrainResult
from stablelearn.runs import Run, TrainConfig
from stablelearn.scheduler import compile_ahead


@dataclass(frozen=True, eq=False)
class VariantResult:
    """One variant's prepared data and the TrainResult of its repeats, in repeat order."""

    variant: Variant
    data: PreparedData
    result: TrainResult

    @property
    def name(self) -> str:
        return self.variant.name


@dataclass(frozen=True, eq=False)
class ExperimentResult:
    experiment: Experiment
    dataset: Dataset
    variants: tuple[VariantResult, ...]
    compile_s: float = 0.0
    train_s: float = 0.0
    wall_s: float = 0.0

    @property
    def metric(self) -> str:
        return self.experiment.metric

    def variant(self, name: str) -> VariantResult:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"{self.experiment.id} has no variant {name!r}")


def prepare_variant_data(experiment: Experiment, dataset: Dataset) -> list[PreparedData]:
    """Each variant's scaled splits; variants with the same scalers share one object, so
    the engine stores their arrays once."""
    cache: dict[tuple[str, str], PreparedData] = {}
    prepared = []
    for variant in experiment.variants:
        key = (str(variant.input_scaler), str(variant.target_scaler))
        if key not in cache:
            cache[key] = prepare(
                dataset,
                variant.input_scaler,
                variant.target_scaler,
                n_train=experiment.n_train,
                test_fraction=experiment.test_fraction,
                split_seed=experiment.split_seed,
                fit_scalers_on=experiment.fit_scalers_on,
            )
        prepared.append(cache[key])
    return prepared


def experiment_runs(experiment: Experiment, prepared: Sequence[PreparedData]) -> list[Run]:
    return [
        Run(
            variant.model,
            variant.optimizer,
            data,
            experiment.seed + repeat,
            experiment.config,
            {"experiment": experiment.id, "variant": variant.name, "repeat": repeat},
        )
        for variant, data in zip(experiment.variants, prepared, strict=True)
        for repeat in range(experiment.repeats)
    ]


@dataclass(frozen=True, eq=False)
class Plan:
    """An experiment ready to train: its data, runs, and their compiled programs."""

    dataset: Dataset
    data: list[PreparedData]
    runs: list[Run]
    training: Compiled | None


def plan_experiment(experiment: Experiment) -> Plan:
    """Scale the data, build the runs, draw their weights and batches, and compile."""
    dataset = experiment.data
    if experiment.kind == "data":
        return Plan(dataset, [], [], None)
    prepared = prepare_variant_data(experiment, dataset)
    runs = experiment_runs(experiment, prepared)
    return Plan(dataset, prepared, runs, prepare_training(runs))


def run_experiment(experiment: Experiment, plan: Plan | None = None) -> ExperimentResult:
    """Train every variant and repeat of `experiment` (nothing for a data-only one).

    `plan` is the experiment already prepared and compiled (see run_experiments); its
    time is reported as the experiment's compile time.
    """
    start = time.perf_counter()
    plan = plan or plan_experiment(experiment)
    if plan.training is None:
        return ExperimentResult(experiment, plan.dataset, (), wall_s=time.perf_counter() - start)
    result = train(plan.runs, prepared=plan.training)
    names = np.asarray(result.tag("variant"))
    variants = tuple(
        VariantResult(variant, data, result.select(names == variant.name))
        for variant, data in zip(experiment.variants, plan.data, strict=True)
    )
    return ExperimentResult(
        experiment,
        plan.dataset,
        variants,
        compile_s=result.timing.compile_s,
        train_s=result.timing.train_s,
        wall_s=time.perf_counter() - start,
    )


def estimated_cost(experiment: Experiment) -> float:
    """Relative training cost: model-steps times layers (small nets are overhead-bound,
    so cost grows with the number of layers more than with their width)."""
    if experiment.kind == "data":
        return 0.0
    rows = experiment.n_train or round(len(experiment.data.y) * (1 - experiment.test_fraction))
    return sum(
        experiment.repeats * model_cost(rows, experiment.config, v.model)
        for v in experiment.variants
    )


def model_cost(rows: int, config: TrainConfig, model: MLP) -> float:
    """One model's relative training cost: its steps times (layers + 1)."""
    steps = math.ceil(rows / config.batch_size) * config.epochs
    return steps * (len(model.layers) + 1)


def estimate_experiments(experiments: Sequence[Experiment]) -> Estimate:
    """What training `experiments` will cost (stablelearn.engine.budget), from their
    shapes, before anything is compiled."""
    total = Estimate()
    for experiment in experiments:
        if experiment.kind != "data":
            runs = experiment_runs(experiment, prepare_variant_data(experiment, experiment.data))
            total = total.then(estimate_runs(runs))
    return total


def run_experiments(
    experiments: Sequence[Experiment], on_done: Callable[[ExperimentResult], None] | None = None
) -> list[ExperimentResult]:
    """Run experiments, the costliest first, while a second thread compiles the next ones
    (see stablelearn.scheduler): starting with the longest training keeps the training
    core busy while the rest compiles. `on_done` is called as each finishes; results
    come back in the order given."""
    order = sorted(range(len(experiments)), key=lambda i: -estimated_cost(experiments[i]))
    results: dict[int, ExperimentResult] = {}

    def finished(i: int, result: ExperimentResult) -> None:
        results[i] = result
        if on_done is not None:
            on_done(result)

    compile_ahead(
        order,
        lambda i: plan_experiment(experiments[i]),
        lambda i, plan: run_experiment(experiments[i], plan),
        finished,
    )
    return [results[i] for i in range(len(experiments))]
