"""Train runs: group them by compiled program, prepare each group's inputs, compile,
execute, and hand the outputs to `TrainResult` as typed `GroupOutput`s.

Preparation (weights, batches, compilation) is separate from execution so that a
caller can prepare the next study on one core while the current one trains on the
other (XLA compiles outside the GIL); see stablelearn.scheduler.
"""

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import numpy as np

from stablelearn import interrupts
from stablelearn.data import PreparedData
from stablelearn.engine.batches import BatchStream
from stablelearn.engine.budget import check_memory, chunk_epochs, estimate_groups
from stablelearn.engine.compilation import compiled
from stablelearn.engine.history import HistoryRecorder
from stablelearn.engine.plan import plan_programs
from stablelearn.engine.program import (
    Program,
    initial_opt_state,
    jitted_train,
    model_slots,
    slot_layout,
    unpack_telemetry,
)
from stablelearn.engine.weights import initial_params, slot_params
from stablelearn.errors import ConfigError
from stablelearn.interrupts import Stopped
from stablelearn.model import MLP, Params, State, split_state
from stablelearn.optim import Optimizer, stack_hyperparameters
from stablelearn.results import GroupOutput, TrainResult
from stablelearn.runs import Run, TrainConfig
from stablelearn.telemetry import ORIGIN_DIRECTIONS, ORIGIN_KINDS


@dataclass(frozen=True, eq=False)
class GroupInputs:
    """The arguments of one ensemble's training program, with a leading model axis
    where they differ per model. Shapes: M models, V data variants, E epochs, S steps,
    B batch rows, N/Nt train/test rows, F features."""

    params: Params
    state: State  # moving statistics of batch-normalized layers ({} for the others)
    hyperparameters: dict[str, np.ndarray]
    layout: dict[str, np.ndarray]  # packed programs: [M, slots] each (see slot_layout)
    opt_state: Any  # a placeholder shaped like the optimizer state; chunk 0 starts fresh
    variant: np.ndarray  # [M] which data variant each model trains on
    train_x: np.ndarray  # [V, N, F]
    train_y: np.ndarray  # [V, N]
    test_x_t: np.ndarray  # [V, F, Nt]
    test_y: np.ndarray  # [V, Nt]
    batches: BatchStream  # row indices [C, S, M, B] a chunk of C epochs at a time
    epochs: int
    chunk_epochs: int  # C: epochs per compiled chunk (see chunk_epochs)

    @property
    def batch_weights(self) -> np.ndarray:  # [S, B], 0 marks padding
        return self.batches.weights

    def as_args(
        self, params: Any, state: Any, opt_state: Any, rows: np.ndarray, first_epoch: int
    ) -> tuple:
        """The training program's arguments for the chunk starting at `first_epoch`."""
        return (
            params, state, opt_state, self.hyperparameters, self.layout, self.variant, self.train_x,
            self.train_y, self.test_x_t, self.test_y, rows, self.batch_weights,
            np.int32(first_epoch), np.int32(self.epochs),
        )  # fmt: skip

    def compile_args(self) -> tuple:
        """Arguments shaped like every chunk's, for compiling ahead of time."""
        steps, batch = self.batch_weights.shape
        rows = np.zeros((self.chunk_epochs, steps, self.batches.n_models, batch), np.int32)
        return self.as_args(self.params, self.state, self.opt_state, rows, 0)

    @property
    def steps_per_epoch(self) -> int:
        return self.batch_weights.shape[0]


@dataclass(frozen=True, eq=False)
class CompiledGroup:
    """One ensemble ready to run: its runs, program, inputs and compiled executable.

    A part of a split program (see split_models) after its first shares the first's
    executable (`shared_program`)."""

    indices: tuple[int, ...]
    runs: tuple[Run, ...]
    program: Program
    inputs: GroupInputs
    executable: Callable
    prepare_s: float
    compile_s: float
    shared_program: bool = False


@dataclass(frozen=True, eq=False)
class Compiled:
    """Everything `train` needs before executing: see `prepare_training`. `workers`
    threads execute its groups side by side."""

    runs: tuple[Run, ...]
    groups: tuple[CompiledGroup, ...]
    epochs: int
    workers: int = 1


# Below this many models a part, the second core gains less than splitting costs: each
# part pays the program's per-step overhead, which small ensembles are made of.
MIN_PART_MODELS = 4


def available_cores() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def host_cores() -> int:
    """The cores training may split a program across: all on a CPU backend, one
    elsewhere (a GPU trains the whole model axis at once)."""
    return available_cores() if jax.default_backend() == "cpu" else 1


def split_models(indices: Sequence[int], parts: int) -> list[tuple[int, ...]]:
    """A program's models as `parts` consecutive parts of one size, each at least
    MIN_PART_MODELS models, so that they share one compiled program and train side by
    side on separate cores (XLA runs outside the GIL). Where the models do not divide
    evenly, the last part overlaps the one before it, and the models in both train
    twice. A model trains bit for bit as in the whole (its numbers do not depend on its
    neighbours or on the ensemble's size), except that a loss averaged over many rows
    (an epoch's mean loss, val_loss, the final losses) can move by an ulp: XLA
    vectorizes that reduction differently for fewer models (tests/core/test_split.py)."""
    count = len(indices)
    parts = max(1, min(parts, count // MIN_PART_MODELS))
    size = -(-count // parts)
    starts = [min(j * size, count - size) for j in range(parts)]
    return [tuple(indices[start : start + size]) for start in dict.fromkeys(starts)]


def group_inputs(
    runs: Sequence[Run], program: Program, params: Params | None
) -> tuple[GroupInputs, float]:
    """The inputs for one ensemble (whose program is `program`), and the seconds spent
    preparing them."""
    first = runs[0]
    config = first.config
    variants: list[PreparedData] = []
    variant_of: dict[int, int] = {}
    for run in runs:
        if id(run.data) not in variant_of:
            variant_of[id(run.data)] = len(variants)
            variants.append(run.data)
    start = time.perf_counter()
    if params is None:
        params = initial_params(runs) if program.packing is None else slot_params(runs, program)
    params, state = split_state(program.model, params, (len(runs),))
    batches = BatchStream(
        [int(r.seed) for r in runs], len(first.data.train_y), config.batch_size, config.shuffle
    )
    hyperparameters = _hyperparameters(runs, program)
    opt_state = jax.tree.map(
        lambda leaf: np.zeros(leaf.shape, leaf.dtype),
        jax.eval_shape(partial(initial_opt_state, program), params, hyperparameters),
    )
    inputs = GroupInputs(
        params=params,
        state=state,
        hyperparameters=hyperparameters,
        layout=_layout(runs, program),
        opt_state=opt_state,
        variant=np.asarray([variant_of[id(r.data)] for r in runs], np.int32),
        train_x=np.stack([v.train_x for v in variants]),
        train_y=np.stack([v.train_y for v in variants]),
        test_x_t=np.stack([v.test_x.T for v in variants]),
        test_y=np.stack([v.test_y for v in variants]),
        batches=batches,
        epochs=config.epochs,
        chunk_epochs=chunk_epochs(runs),
    )
    return inputs, time.perf_counter() - start


def _hyperparameters(runs: Sequence[Run], program: Program) -> dict[str, np.ndarray]:
    """Each model's numbers; per-layer clip thresholds sit in the model's slots (inf in
    the slots it does not use, whose gradient is zero anyway)."""
    optimizers = [r.optimizer for r in runs]
    n_layers = len(program.model.layers)
    if program.packing is None:
        return stack_hyperparameters(optimizers, program.optimizer, n_layers)
    unclipped = dataclasses.replace(program.optimizer, clip_modes=())
    stacked = stack_hyperparameters(optimizers, unclipped, n_layers)
    for mode in program.optimizer.clip_modes:
        if mode == "global_clipnorm":
            stacked[mode] = np.stack([o.clip_thresholds(mode, 0) for o in optimizers])
            continue
        values = np.full((len(runs), n_layers), np.inf, np.float32)
        for m, run in enumerate(runs):
            slots = list(model_slots(run.model, program.model.depth))
            values[m, slots] = run.optimizer.clip_thresholds(mode, len(slots))
        stacked[mode] = values
    return stacked


def _layout(runs: Sequence[Run], program: Program) -> dict[str, np.ndarray]:
    if program.packing is None:
        return {}
    layouts = [slot_layout(r.model, program) for r in runs]
    return {key: np.stack([lay[key] for lay in layouts]) for key in layouts[0]}


def _groups(runs: Sequence[Run]) -> list[list[int]]:
    """Indices of runs that train together, each group one compiled program."""
    return plan_programs(runs)


def prepare_training(
    runs: Sequence[Run], initial_params: Params | None = None, workers: int | None = None
) -> Compiled:
    """Group the runs, draw their weights and batches, and compile their programs.

    `initial_params` (stacked over all runs, only when they form one ensemble) replaces
    the seeded initialization. `workers` threads train the groups side by side, a
    program with enough models split into that many parts (split_models; default: one
    per core of a CPU backend). Pass 1 where the caller already trains groups in
    parallel (sweeps).
    """
    runs = tuple(runs)
    if not runs:
        raise ConfigError("Nothing to train: give at least one run.")
    epochs = {r.config.epochs for r in runs}
    if len(epochs) > 1:
        raise ConfigError(f"Runs trained together must share epochs, got {sorted(epochs)}.")
    if len({r.config.result_layout for r in runs}) > 1:
        raise ConfigError(
            "Runs trained together must share their loss, metrics, validation and telemetry settings."
        )
    indices = _groups(runs)
    # before drawing weights: XLA would abort, not say
    check_memory(estimate_groups([[runs[i] for i in idx] for idx in indices]))
    if initial_params is not None and len(indices) > 1:
        raise ConfigError(
            "initial_params needs runs that form one ensemble (same shapes and code paths)."
        )
    workers = host_cores() if workers is None else max(1, workers)
    groups = []
    for planned in indices:
        program = Program.for_runs([runs[i] for i in planned])
        for part, idx in enumerate(split_models(planned, workers)):
            groups.append(_compiled_group(runs, idx, program, initial_params, part > 0))
    return Compiled(runs, tuple(groups), epochs.pop(), min(workers, len(groups)))


def _compiled_group(
    runs: Sequence[Run],
    idx: tuple[int, ...],
    program: Program,
    initial_params: Params | None,
    shared_program: bool,
) -> CompiledGroup:
    """The runs at `idx` prepared and compiled (parts of one split program compile once:
    they have one shape)."""
    members = [runs[i] for i in idx]
    params = None
    if initial_params is not None:
        params = jax.tree.map(lambda leaf: np.asarray(leaf)[list(idx)], initial_params)
    inputs, prepare_s = group_inputs(members, program, params)
    executable, compile_s = compiled(jitted_train, program, inputs.compile_args(), large=True)
    return CompiledGroup(
        idx, tuple(members), program, inputs, executable, prepare_s, compile_s, shared_program
    )


def _run_chunks(
    group: CompiledGroup, stop: threading.Event | None
) -> tuple[dict[str, Any], HistoryRecorder]:
    """Train a group chunk by chunk: Python regains control between chunks, so Ctrl-C
    (or `stop`, for training on another thread) ends training within a chunk's time
    (see budget.CHUNK_S), and the next chunk's batches are drawn while one trains.
    Returns the last chunk's outputs and the history recorded over all chunks."""
    inputs = group.inputs
    size, epochs = inputs.chunk_epochs, inputs.epochs
    params, state, opt_state = inputs.params, inputs.state, inputs.opt_state
    recorder = HistoryRecorder(epochs, inputs.batches.n_models, inputs.steps_per_epoch)
    out = None
    rows = _padded(inputs.batches.next(min(size, epochs)), size)
    for first in range(0, epochs, size):
        if stop is not None and stop.is_set():
            raise Stopped(f"stopped at epoch {first} of {epochs}")
        interrupts.check()
        out = group.executable(*inputs.as_args(params, state, opt_state, rows, first))
        params, state, opt_state = out["params"], out["state"], out["opt_state"]
        if first + size < epochs:  # drawn on the host while the chunk trains
            rows = _padded(inputs.batches.next(min(size, epochs - first - size)), size)
        real = min(size, epochs - first)
        recorder.add(first, jax.tree.map(lambda a, n=real: np.asarray(a)[:n], out["history"]))
    assert out is not None
    kept = {
        k: v for k, v in out.items() if k not in ("history", "opt_state")
    }  # optimizer state stays
    return jax.tree.map(np.asarray, kept), recorder


def _padded(rows: np.ndarray, epochs: int) -> np.ndarray:
    """`rows` [e, S, M, B] padded with zero rows to `epochs` epochs (padding epochs are
    skipped by the program)."""
    if rows.shape[0] == epochs:
        return rows
    pad = np.zeros((epochs - rows.shape[0], *rows.shape[1:]), rows.dtype)
    return np.concatenate([rows, pad])


def _first_nonfinite(
    recorder: HistoryRecorder, model_layers: tuple[tuple[int, ...], ...] | None
) -> dict[str, np.ndarray]:
    """Per model, the first step with a NaN/Inf and where it came from (see
    stablelearn.telemetry.origin): the model's own layer (0-based, output last; -1 if
    never), a packed program's slot mapped back to it; direction and kind as words."""
    layer = recorder.first_nonfinite_layer.copy()
    if model_layers is not None:  # the program never reports a slot its model skips
        for m, slots in enumerate(model_layers):
            if layer[m] >= 0:
                layer[m] = slots.index(int(layer[m]))
    kind = recorder.first_nonfinite_kind
    return {
        "first_nonfinite_step": recorder.first_nonfinite_step,
        "first_nonfinite_layer": layer,
        "first_nonfinite_direction": np.asarray(ORIGIN_DIRECTIONS)[kind],
        "first_nonfinite_kind": np.asarray(ORIGIN_KINDS)[kind],
    }


def execute(group: CompiledGroup, stop: threading.Event | None = None) -> GroupOutput:
    """Run one compiled group and return its output as NumPy arrays; raises Stopped
    between two chunks once `stop` is set."""
    start = time.perf_counter()
    out, recorder = _run_chunks(group, stop)
    history = recorder.history()
    telemetry = history.get("telemetry", {})
    model_layers = None
    if group.program.packing is not None:
        slots = group.program.model.depth
        model_layers = tuple(model_slots(run.model, slots) for run in group.runs)
        if telemetry:
            telemetry = unpack_telemetry(telemetry, model_layers)
    if telemetry:
        telemetry = {k: v for k, v in telemetry.items() if not k.startswith("first_bad_")}
        telemetry |= _first_nonfinite(recorder, model_layers)
    # moving statistics are reported with their layer's weights, as Keras' get_weights
    params = tuple({**p, **s} for p, s in zip(out["params"], out["state"], strict=True))
    return GroupOutput(
        indices=group.indices,
        history_epochs=recorder.kept,
        history_train=history["train"],
        history_val=history.get("val"),
        diverged_epoch=recorder.diverged_epoch,
        train_scores=out["train_scores"],
        test_scores=out["test_scores"],
        train_predictions=out["train_pred"],
        test_predictions=out["test_pred"],
        params=params,
        model_layers=model_layers,
        telemetry=telemetry,
        prepare_s=group.prepare_s,
        compile_s=group.compile_s,
        train_s=time.perf_counter() - start,
        shared_program=group.shared_program,
    )


def _execute_all(prepared: Compiled, stop: threading.Event | None) -> list[GroupOutput]:
    """Every group's output, in order; `prepared.workers` threads train them side by
    side. If one stops or fails, the others stop at their next chunk (`stop` is set
    then, or a private event if none was given)."""
    if prepared.workers == 1:
        return [execute(group, stop) for group in prepared.groups]
    halt = stop or threading.Event()
    pool = ThreadPoolExecutor(max_workers=prepared.workers, thread_name_prefix="train")
    futures = [pool.submit(execute, group, halt) for group in prepared.groups]
    try:
        return [interrupts.result(future) for future in futures]
    except BaseException:
        halt.set()
        raise
    finally:  # nothing waits for a part still finishing its chunk after a stop
        pool.shutdown(wait=False, cancel_futures=True)


def train(
    runs: Sequence[Run],
    initial_params: Params | None = None,
    prepared: Compiled | None = None,
    stop: threading.Event | None = None,
    workers: int | None = None,
) -> TrainResult:
    """Train every run; runs with equal shapes and code paths share one compiled program.

    Results come back in the order of `runs`. `prepared` (from `prepare_training` on
    the same runs) skips the preparation and compilation already done; `workers`: see
    prepare_training. Setting `stop` (from another thread) ends training with Stopped
    within a chunk of epochs.
    """
    if prepared is None or prepared.runs != tuple(runs):
        prepared = prepare_training(runs, initial_params, workers)
    start = time.perf_counter()
    outputs = _execute_all(prepared, stop)
    wall = time.perf_counter() - start
    return TrainResult.from_groups(prepared.runs, outputs, prepared.epochs, train_s=wall)


def fit(
    model: MLP,
    optimizer: Optimizer,
    data: PreparedData,
    seeds: Sequence[int] | int = 1,
    initial_params: Params | None = None,
    **config: Any,
) -> TrainResult:
    """Train `model` once per seed on `data`; `seeds=n` means seeds 0..n-1.

    Keyword arguments go to TrainConfig (epochs, batch_size, loss, metrics...); loss and
    metrics default to the lesson's choice for the data's task. `initial_params` (one
    model's weights) starts every seed from them; seeds then differ only in the shuffling.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    run_config = TrainConfig.for_task(data.task, **config)
    runs = [
        Run(model, optimizer, data, s, run_config, {"repeat": i}) for i, s in enumerate(seed_list)
    ]
    stacked = None
    if initial_params is not None:
        stacked = jax.tree.map(lambda leaf: np.stack([leaf] * len(runs)), initial_params)
    return train(runs, initial_params=stacked)
