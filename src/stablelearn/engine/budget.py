"""What training will cost before it starts: seconds and peak memory from the plan.

The estimate is made from shapes alone (models, epochs, steps, layer sizes, rows,
telemetry), before any weight is drawn or program compiled, so that a run that cannot
fit is refused in one sentence instead of dying inside XLA, and a long one says how
long. The same step-time model sizes the chunks of epochs the engine trains between
two looks at Ctrl-C.

The constants were measured on a 2-core CPU with benchmarks/bench_engine.py; an
estimate is good to a factor of about two, which is what a budget needs.
"""

import dataclasses
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from stablelearn.engine.history import recorded_epochs
from stablelearn.engine.plan import (
    ACTIVATION_COMPILE_S,
    ACTIVATION_TRAIN_FACTOR,
    BATCH_NORM_COMPILE_S,
    COMPILE_LAYER_S,
    COMPILE_S,
    PACKED_COMPILE_LAYER_S,
    PACKED_TRAIN_FACTOR,
    plan_programs,
)
from stablelearn.errors import ResourceError
from stablelearn.model import MLP
from stablelearn.runs import Run

CHUNK_S = 0.4  # seconds of training between two chances to stop (Ctrl-C within 2 s)
STEP_S = 5e-6  # one optimizer step of one program, whatever its models
MODEL_LAYER_STEP_S = 2.5e-7  # one model, layer and step: small layers are latency-bound
MAC_S = 1 / 4e9  # one multiply-accumulate of the forward pass (backward is twice that)
BASE_BYTES = 600 * 2**20  # the Python process with JAX, NumPy, pandas and scikit-learn
FLOAT_BYTES = 4
OPTIMIZER_SLOTS = 2  # state arrays per parameter, at most (Adam: two moments)
WORKING_COPIES = 4  # params, gradients, updates and the new params live at once
MEMORY_SHARE = 0.8  # of the memory available now that a run may plan to use
TELEMETRY_STATS = 12  # per layer and epoch (norms, ratios, clipping, dead/saturated units)


@dataclass(frozen=True)
class Estimate:
    """A plan's cost: models, model-steps, programs, seconds and peak bytes."""

    models: int = 0
    model_steps: int = 0
    programs: int = 0
    compile_s: float = 0.0
    train_s: float = 0.0
    peak_bytes: int = BASE_BYTES

    @property
    def seconds(self) -> float:
        return self.compile_s + self.train_s

    def then(self, other: "Estimate") -> "Estimate":
        """This plan followed by `other` (seconds add, memory peaks at the larger)."""
        return Estimate(
            self.models + other.models,
            self.model_steps + other.model_steps,
            self.programs + other.programs,
            self.compile_s + other.compile_s,
            self.train_s + other.train_s,
            max(self.peak_bytes, other.peak_bytes),
        )

    def repeated(self, times: int) -> "Estimate":
        """`times` plans like this one, one after another."""
        return Estimate(
            self.models * times,
            self.model_steps * times,
            self.programs * times,
            self.compile_s * times,
            self.train_s * times,
            self.peak_bytes,
        )

    def in_parallel(self, workers: int) -> "Estimate":
        """This plan spread over `workers` threads or processes on one machine: time
        divides, the working memory of the groups in flight adds up."""
        workers = max(1, workers)
        return dataclasses.replace(
            self,
            compile_s=self.compile_s / workers,
            train_s=self.train_s / workers,
            peak_bytes=BASE_BYTES + workers * (self.peak_bytes - BASE_BYTES),
        )

    def describe(self) -> str:
        return (
            f"{self.models:,} models, {self.model_steps:,} model-steps in "
            f"{self.programs} compiled program{'s' if self.programs != 1 else ''}: about "
            f"{format_seconds(self.seconds)} (compile {format_seconds(self.compile_s)}, "
            f"train {format_seconds(self.train_s)}), peak memory about "
            f"{format_bytes(self.peak_bytes)}"
        )


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _macs(model: MLP) -> int:
    """Multiply-accumulates of one forward pass of one row."""
    widths = [model.input_dim] + [layer.units for layer in model.layers]
    return sum(a * b for a, b in itertools.pairwise(widths))


def step_seconds(models: int, model: MLP, batch: int) -> float:
    """Estimated seconds of one step of a program training `models` models like `model`."""
    layers = len(model.layers)
    per_model = MODEL_LAYER_STEP_S * layers + 3 * MAC_S * batch * _macs(model)
    return STEP_S + models * per_model


def _group_model(runs: Sequence[Run]) -> MLP:
    """The program's model as far as cost goes: the deepest one (packed programs pad
    every model to it)."""
    return max((r.model for r in runs), key=lambda m: (len(m.layers), _macs(m)))


def _steps_per_epoch(run: Run) -> int:
    return math.ceil(len(run.data.train_y) / run.config.batch_size)


def chunk_epochs(runs: Sequence[Run]) -> int:
    """Epochs per compiled chunk: as many as train in about CHUNK_S seconds (at least
    one, at most all). Depends on shapes only, so it is the same on every call."""
    first = runs[0]
    epoch_s = _steps_per_epoch(first) * step_seconds(
        len(runs), _group_model(runs), min(first.config.batch_size, len(first.data.train_y))
    )
    return max(1, min(first.config.epochs, int(CHUNK_S / epoch_s)))


def group_estimate(runs: Sequence[Run]) -> Estimate:
    """One compiled program's cost (see the module docstring)."""
    first = runs[0]
    config = first.config
    model = _group_model(runs)
    models = len(runs)
    rows_train, rows_test = len(first.data.train_y), len(first.data.test_y)
    features = first.data.train_x.shape[1]
    batch = min(config.batch_size, rows_train)
    steps = _steps_per_epoch(first) * config.epochs
    layers = len(model.layers)
    widths = sum(layer.units for layer in model.layers)
    variants = len({id(r.data) for r in runs})
    chunk = chunk_epochs(runs)
    per_epoch_history = models * (4 + (TELEMETRY_STATS * layers if config.telemetry else 0))
    outputs = model.layers[-1].units
    memory = FLOAT_BYTES * (
        models * model.parameter_count() * (WORKING_COPIES + OPTIMIZER_SLOTS)
        + 2 * variants * (rows_train + rows_test) * (features + 1)
        + 2 * chunk * _steps_per_epoch(first) * models * batch  # batch rows, host and device
        + 3 * models * batch * widths  # activations kept for the backward pass
        + models * max(rows_train, rows_test) * widths  # evaluation and unit statistics
        + 2 * len(recorded_epochs(config.epochs)) * per_epoch_history  # and its concatenation
        + models * (rows_train + rows_test) * outputs  # predictions
    )
    compile_s = (
        COMPILE_S
        + COMPILE_LAYER_S * layers
        + BATCH_NORM_COMPILE_S * sum(layer.batch_norm for layer in model.hidden)
    )
    train_s = steps * step_seconds(models, model, batch)
    # a packed program (the planner put several depths or hidden activations in it)
    # masks its slots and computes every activation it selects among, as the
    # planner's cost model says (stablelearn.engine.plan.program_cost); before, the
    # estimate priced it as its deepest model alone: the doctor's 30-layer repairs
    # (3 activations, 40 models) compiled 2.4-3.3x longer than estimated
    architectures = {_architecture(r.model) for r in runs}
    if len(architectures) > 1:
        activations = len(set().union(*(names for _, names in architectures)))
        compile_s += PACKED_COMPILE_LAYER_S * layers + ACTIVATION_COMPILE_S * (activations - 1)
        train_s *= PACKED_TRAIN_FACTOR * (1 + ACTIVATION_TRAIN_FACTOR * (activations - 1))
    return Estimate(
        models=models,
        model_steps=models * steps,
        programs=1,
        compile_s=compile_s,
        train_s=train_s,
        peak_bytes=BASE_BYTES + memory,
    )


def _architecture(model: MLP) -> tuple[int, frozenset[str]]:
    """What packing tells apart: depth and hidden activations."""
    return len(model.hidden), frozenset(layer.activation for layer in model.hidden)


def estimate_groups(groups: Sequence[Sequence[Run]]) -> Estimate:
    """The cost of training these groups, one compiled program each, one after another."""
    total = Estimate()
    for group in groups:
        total = total.then(group_estimate(group))
    return total


def estimate_runs(runs: Sequence[Run]) -> Estimate:
    """The cost of training `runs` as the engine would (one program per planned group,
    trained one after another; the next group's inputs are prepared meanwhile)."""
    return estimate_groups([[runs[i] for i in indices] for indices in plan_programs(runs)])


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (Linux: MemAvailable)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63


def check_memory(estimate: Estimate, available: int | None = None) -> None:
    """Refuse, in one sentence, a plan whose peak memory cannot fit."""
    available = available_memory() if available is None else available
    if estimate.peak_bytes > MEMORY_SHARE * available:
        raise ResourceError(
            f"This needs about {format_bytes(estimate.peak_bytes)} of memory but "
            f"{format_bytes(available)} is available ({estimate.models:,} models); use "
            "fewer repeats, epochs, units or rows, or turn telemetry off."
        )
