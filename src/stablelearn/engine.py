"""The training engine: an ensemble of small MLPs trained in one compiled program.

Every model of an ensemble shares the array shapes (architecture, batch size, split
sizes); whatever else differs per model (seed, data variant, learning rate, momentum,
clip thresholds) is an array with a leading model axis. One `jit`-compiled program
then runs all epochs with `lax.scan` and all models with `vmap`.

Keras `fit()` semantics (../shared/DESIGN.md):
- Minibatches of `batch_size` rows from a fresh permutation each epoch; the last batch
  of an epoch is smaller (500 rows -> 15 x 32 + 1 x 20). The fixed batch shape that
  compilation needs is kept by padding that batch with zero-weight rows.
- The epoch's `loss` is the batch-size-weighted mean of its batch losses (each taken
  before that batch's update), as Keras' progress bar and History report it;
  `val_loss` is computed on the whole validation split after the epoch.
Speed choices (measured, see benchmarks/): per-epoch permutations are drawn with NumPy
(sorting on XLA's CPU backend is slow) from one Generator per model seed and passed in
as row indices; activations are [units, batch] per model.
"""

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from stablelearn import losses, telemetry
from stablelearn.data import PreparedData
from stablelearn.errors import ConfigError, is_integer
from stablelearn.initializers import Initializer, sample
from stablelearn.model import MLP, Dense, Params, forward, validate_widths
from stablelearn.optim import (
    Optimizer,
    OptimizerStructure,
    build_clipping,
    build_optimizer,
    optimizer_structure,
    stack_hyperparameters,
)
from stablelearn.results import Timing, TrainResult

_SHUFFLE_STREAM = 0x5EED
ACTIVATION_SAMPLES = 100  # epochs at which dead/saturated units are measured, at most  # keeps the shuffle stream apart from any other use of a seed


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
            value = getattr(self, name)
            if not is_integer(value) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
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


TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "regression": {"loss": "mse"},
    "binary": {"loss": "binary_crossentropy", "metrics": ("accuracy",)},
    "multiclass": {"loss": "sparse_categorical_crossentropy", "metrics": ("accuracy",)},
}


OUTPUT_ACTIVATIONS = {"binary": "sigmoid", "multiclass": "softmax"}
MAX_SEED = 2**32 - 1  # JAX and NumPy seeds are 32-bit


def output_layer(task: str, n_classes: int = 0) -> Dense:
    """The output layer a task needs: linear for regression, one sigmoid unit for a binary
    target, a softmax unit per class for a multiclass one."""
    if task == "multiclass":
        return Dense(n_classes, "softmax")
    return Dense(1, OUTPUT_ACTIVATIONS.get(task, "linear"))


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


@dataclass(frozen=True)
class Program:
    """Everything that selects compiled code; equal programs reuse one compilation."""

    model: MLP
    optimizer: OptimizerStructure
    loss: str
    metrics: tuple[str, ...]
    bce_form: str
    validation: bool
    telemetry: bool


def _predictions(output: jax.Array) -> jax.Array:
    """[rows] for a single output unit, [rows, classes] for a softmax output."""
    return output[0] if output.shape[0] == 1 else output.T


def _evaluate(
    program: Program, params: Params, x_t: jax.Array, y: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Loss and metrics of one model on a whole split, plus its predictions."""
    logits, output = forward(program.model, params, x_t)
    weights = jnp.ones_like(y)
    per_row = losses.per_example_loss(program.loss, logits, output, y, program.bce_form)
    scores = [losses.weighted_mean(per_row, weights)]
    for metric in program.metrics:
        mean = losses.weighted_mean(losses.per_example_metric(metric, output, y), weights)
        scores.append(losses.finish_metric(metric, mean))
    return jnp.stack(scores), _predictions(output)


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _train_program(
    program: Program,
    params: Params,
    hyperparameters: dict[str, jax.Array],
    variant: jax.Array,
    train_x: jax.Array,
    train_y: jax.Array,
    test_x_t: jax.Array,
    test_y: jax.Array,
    batch_rows: jax.Array,
    batch_weights: jax.Array,
) -> dict[str, jax.Array]:
    """All epochs of all models. Shapes: M models, V data variants, E epochs, S steps.

    params and hyperparameters lead with [M]; variant [M] picks each model's data;
    train_x [V, N, F]; train_y [V, N]; test_x_t [V, F, Nt]; test_y [V, Nt];
    batch_rows [E, S, M, B] row indices; batch_weights [S, B] (0 marks padding).
    """
    n_layers = len(program.model.layers)
    n_train = train_y.shape[1]
    train_x_t = jnp.swapaxes(train_x, 1, 2)

    def stages(hp: dict[str, jax.Array]) -> tuple[optax.GradientTransformation, ...]:
        return build_clipping(program.optimizer, hp, n_layers), build_optimizer(
            program.optimizer, hp
        )

    def model_step(params, opt_state, acc, hp, v, rows, weights, step):
        # one gather of whole rows; indexing the variant first would copy its full split
        x_t = train_x[v, rows].T
        y = train_y[v, rows]

        def batch_loss(p):
            logits, output = forward(program.model, p, x_t)
            per_row = losses.per_example_loss(program.loss, logits, output, y, program.bce_form)
            return losses.weighted_mean(per_row, weights), output

        (loss, output), grads = jax.value_and_grad(batch_loss, has_aux=True)(params)
        clip, optimizer = stages(hp)
        clipped, clip_state = clip.update(grads, opt_state[0])
        updates, optimizer_state = optimizer.update(clipped, opt_state[1], params)
        batch_size = jnp.sum(weights)
        sums = [loss * batch_size]
        sums += [
            jnp.sum(losses.per_example_metric(m, output, y) * weights) for m in program.metrics
        ]
        if program.telemetry:
            seen = clipped if program.optimizer.clip_modes else None
            acc = telemetry.accumulate(acc, grads, seen, loss, step)
        new_state = (clip_state, optimizer_state)
        return optax.apply_updates(params, updates), new_state, acc, jnp.stack(sums)

    steps = jax.vmap(model_step, in_axes=(0, 0, 0, 0, 0, 0, None, None))
    evaluate = jax.vmap(
        lambda p, v, x_t, y: _evaluate(program, p, x_t[v], y[v]), in_axes=(0, 0, None, None)
    )
    activations = jax.vmap(lambda p, v: telemetry.activation_stats(program.model, p, train_x_t[v]))
    n_steps = batch_weights.shape[0]
    epoch_stats = jax.vmap(lambda acc, start, end: telemetry.epoch_stats(acc, start, end, n_steps))

    def step(carry, xs):
        params, opt_state, acc = carry
        rows, weights, index = xs
        params, opt_state, acc, sums = steps(
            params, opt_state, acc, hyperparameters, variant, rows, weights, index
        )
        return (params, opt_state, acc), sums

    n_epochs = batch_rows.shape[0]
    # dead/saturated units need a forward pass over the whole training split; in long
    # runs it is taken every `stride` epochs (about 100 samples) and on the last epoch
    stride = max(1, -(-n_epochs // ACTIVATION_SAMPLES))

    def unit_stats(params, index):
        def measure():
            return activations(params, variant)

        def skip():
            return jax.tree.map(
                lambda a: jnp.full(a.shape, jnp.nan, a.dtype), jax.eval_shape(measure)
            )

        due = (index % stride == stride - 1) | (index == n_epochs - 1) | (stride == 1)
        return jax.lax.cond(due, measure, skip)

    def epoch(carry, xs):
        rows, index = xs
        start, opt_state = carry
        acc = jax.vmap(telemetry.init_accumulator)(start) if program.telemetry else ()
        xs = (rows, batch_weights, jnp.arange(n_steps))
        (params, opt_state, acc), sums = jax.lax.scan(step, (start, opt_state, acc), xs)
        means = sums.sum(axis=0) / n_train
        scores = [means[:, 0]]
        scores += [losses.finish_metric(m, means[:, i + 1]) for i, m in enumerate(program.metrics)]
        out = {"train": jnp.stack(scores, axis=1)}
        out["finite"] = jax.vmap(_all_finite)(params) & jnp.isfinite(means[:, 0])
        if program.validation:
            out["val"], _ = evaluate(params, variant, test_x_t, test_y)
        if program.telemetry:
            out["telemetry"] = {**epoch_stats(acc, start, params), **unit_stats(params, index)}
        return (params, opt_state), out

    opt_state = jax.vmap(lambda p, hp: tuple(stage.init(p) for stage in stages(hp)))(
        params, hyperparameters
    )
    xs = (batch_rows, jnp.arange(n_epochs))
    (params, _), history = jax.lax.scan(epoch, (params, opt_state), xs)
    train_scores, train_pred = evaluate(params, variant, train_x_t, train_y)
    test_scores, test_pred = evaluate(params, variant, test_x_t, test_y)
    return {
        "history": history,
        "train_scores": train_scores,
        "test_scores": test_scores,
        "train_pred": train_pred,
        "test_pred": test_pred,
        "params": params,
    }


_jitted_train = jax.jit(_train_program, static_argnums=0)


def _layer_keys(n_layers: int, seed: jax.Array) -> jax.Array:
    """[layers, 2] keys: init_params' key schedule for one seed."""
    layer_keys = jax.random.split(jax.random.key(seed), n_layers)
    return jax.vmap(jax.random.split)(layer_keys)


def _sample_layer(spec: tuple[Initializer, tuple[int, ...]], key: jax.Array) -> jax.Array:
    init, shape = spec
    return sample(init, key, shape)


_jitted_keys = jax.jit(_layer_keys, static_argnums=0)
_jitted_sample = jax.jit(_sample_layer, static_argnums=0)
_COMPILED: dict[Any, Any] = {}
# Each compiled program keeps 300-1,000 memory mappings of JIT code (more for deeper
# models) until it is released, and Linux allows a process 65,530 mappings: a sweep over
# 120 architectures crashed in LLVM ("Cannot allocate memory") after 109 programs. So the
# cache is cleared, with JAX's own caches that also hold the programs, every
# MAX_CACHED_PROGRAMS training programs (the small initializer programs barely count);
# programs still in use stay valid.
MAX_CACHED_PROGRAMS = 32


def _compiled(jitted: Any, static: Any, args: tuple) -> tuple[Callable, float]:
    """`jitted` compiled ahead of time for `static` and these argument shapes, and the
    seconds compilation took (0 when an earlier call already compiled it)."""
    leaves, treedef = jax.tree.flatten(args)
    key = (jitted, static, treedef, tuple((leaf.shape, leaf.dtype) for leaf in leaves))
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    if jitted is _jitted_train and _cached_training_programs() >= MAX_CACHED_PROGRAMS:
        release_compiled()
    start = time.perf_counter()
    compiled = jitted.lower(static, *args).compile()
    _COMPILED[key] = compiled
    return compiled, time.perf_counter() - start


def _cached_training_programs() -> int:
    return sum(1 for key in _COMPILED if key[0] is _jitted_train)


def release_compiled() -> None:
    """Drop every cached compiled program (see MAX_CACHED_PROGRAMS) so its memory can go."""
    _COMPILED.clear()
    jax.clear_caches()


def init_ensemble(model: MLP, seeds: Sequence[int]) -> Params:
    """Parameters for each seed, stacked on a leading model axis: exactly
    `init_params(model, jax.random.key(seed))` for every seed.

    Compiled per layer shape and initializer, not per architecture or ensemble size:
    the layers of a deep model, models of different depths and ensembles of any size
    share a handful of small programs (one program per architecture took longer to
    compile than the training itself in a sweep over 30 depths). Each call costs about
    30 us, so the host loop over models and layers stays cheap.
    """
    n_layers = len(model.layers)
    if jax.config.jax_threefry_partitionable:
        # split(key, n)[:k] == split(key, k) for partitionable threefry (JAX's default),
        # so depths share the key program of the next power of two
        n_keys = max(8, 1 << (n_layers - 1).bit_length())
    else:
        n_keys = n_layers
    keys_fn, _ = _compiled(_jitted_keys, n_keys, (np.uint32(0),))
    example_key = keys_fn(np.uint32(0))[0, 0]  # the argument shape the samplers compile for
    layers = []
    fan_in = model.input_dim
    for layer in model.layers:
        specs = (
            (layer.kernel_initializer, (layer.units, fan_in)),
            (layer.bias_initializer, (layer.units,)),
        )
        layers.append([_compiled(_jitted_sample, spec, (example_key,))[0] for spec in specs])
        fan_in = layer.units
    drawn: list[dict[str, list]] = [{"kernel": [], "bias": []} for _ in model.layers]
    for seed in seeds:
        keys = keys_fn(np.uint32(seed))
        for index, (kernel, bias) in enumerate(layers):
            drawn[index]["kernel"].append(kernel(keys[index, 0]))
            drawn[index]["bias"].append(bias(keys[index, 1]))
    return tuple({name: np.stack(values) for name, values in layer.items()} for layer in drawn)


def row_weights(n_rows: int, batch_size: int) -> np.ndarray:
    """Row weights [steps, batch]: 1 for real rows, 0 for the padding of the last batch
    (Keras keeps a smaller last batch; compiled shapes need a fixed one)."""
    batch = min(batch_size, n_rows)
    steps = math.ceil(n_rows / batch)
    return (np.arange(steps * batch) < n_rows).astype(np.float32).reshape(steps, batch)


def batch_schedule(
    seeds: Sequence[int], n_rows: int, epochs: int, batch_size: int, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices [epochs, steps, models, batch] and row weights [steps, batch].

    Each model draws its epoch permutations from its own NumPy Generator, so a model's
    batches depend on its seed alone, never on the ensemble it is trained in.
    """
    weights = row_weights(n_rows, batch_size)
    steps, batch = weights.shape
    padded = steps * batch
    order = np.arange(n_rows, dtype=np.int32)
    rows = np.zeros((len(seeds), epochs, padded), np.int32)
    for m, seed in enumerate(seeds):
        if shuffle:
            rng = np.random.default_rng([int(seed), _SHUFFLE_STREAM])
            rows[m, :, :n_rows] = rng.permuted(np.broadcast_to(order, (epochs, n_rows)), axis=1)
        else:
            rows[m, :, :n_rows] = order
    return rows.reshape(len(seeds), epochs, steps, batch).transpose(1, 2, 0, 3), weights


def compute_model(model: MLP) -> MLP:
    """The model as the compiled program sees it: widths and activations. Initializers
    only decide the starting weights, drawn outside the program, so models that differ
    in them alone share one compilation."""
    return MLP(
        model.input_dim,
        tuple(Dense(layer.units, layer.activation) for layer in model.hidden),
        Dense(model.output.units, model.output.activation),
    )


def group_key(run: Run) -> tuple:
    """Runs with equal keys train together in one compiled ensemble program."""
    data = run.data
    shapes = (data.train_x.shape, data.test_x.shape)
    structure = optimizer_structure([run.optimizer])
    return (compute_model(run.model), structure.kind, structure.nesterov, run.config, shapes)


def _initial_params(runs: Sequence[Run]) -> Params:
    """Seeded weights for each run, drawn once per distinct initializer set and stacked
    in run order."""
    by_model: dict[MLP, list[int]] = {}
    for i, run in enumerate(runs):
        by_model.setdefault(run.model, []).append(i)
    parts = {m: init_ensemble(m, [int(runs[i].seed) for i in idx]) for m, idx in by_model.items()}
    order = np.argsort(np.concatenate(list(by_model.values())), kind="stable")
    return jax.tree.map(lambda *leaves: np.concatenate(leaves)[order], *parts.values())


def _group_inputs(runs: Sequence[Run], params: Params | None) -> tuple[Program, tuple, float]:
    """The program and arguments for one ensemble, and the seconds spent preparing them."""
    first = runs[0]
    config = first.config
    structure = optimizer_structure([r.optimizer for r in runs])
    program = Program(
        compute_model(first.model),
        structure,
        config.loss,
        config.metrics,
        config.bce_form,
        config.validation,
        config.telemetry,
    )
    variants: list[PreparedData] = []
    variant_of: dict[int, int] = {}
    for run in runs:
        if id(run.data) not in variant_of:
            variant_of[id(run.data)] = len(variants)
            variants.append(run.data)
    seeds = [int(r.seed) for r in runs]
    start = time.perf_counter()
    if params is None:
        params = _initial_params(runs)
    rows, weights = batch_schedule(
        seeds, len(first.data.train_y), config.epochs, config.batch_size, config.shuffle
    )
    args = (
        params,
        stack_hyperparameters([r.optimizer for r in runs], structure, len(first.model.layers)),
        np.asarray([variant_of[id(r.data)] for r in runs], np.int32),
        np.stack([v.train_x for v in variants]),
        np.stack([v.train_y for v in variants]),
        np.stack([v.test_x.T for v in variants]),
        np.stack([v.test_y for v in variants]),
        rows,
        weights,
    )
    return program, args, time.perf_counter() - start


@dataclass(frozen=True, eq=False)
class PreparedGroup:
    """One ensemble ready to run: its runs, program, arguments and compiled executable."""

    indices: tuple[int, ...]
    program: Program
    args: tuple
    executable: Callable
    prepare_s: float
    compile_s: float


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything `train` needs before executing: see `prepare_training`."""

    runs: tuple[Run, ...]
    groups: tuple[PreparedGroup, ...]
    epochs: int


def _groups(runs: Sequence[Run]) -> list[list[int]]:
    """Indices of runs that share shapes and code paths, each group one compiled program."""
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(group_key(run), []).append(i)
    return list(groups.values())


def prepare_training(runs: Sequence[Run], initial_params: Params | None = None) -> Prepared:
    """Group the runs, draw their weights and batches, and compile their programs.

    Separate from execution so that a caller can prepare the next study on one core
    while the current one trains on the other (XLA compiles outside the GIL).
    `initial_params` (stacked over all runs, only when they form one ensemble) replaces
    the seeded initialization.
    """
    runs = tuple(runs)
    if not runs:
        raise ConfigError("Nothing to train: give at least one run.")
    epochs = {r.config.epochs for r in runs}
    if len(epochs) > 1:
        raise ConfigError(f"Runs trained together must share epochs, got {sorted(epochs)}.")
    settings = {
        (r.config.loss, r.config.metrics, r.config.validation, r.config.telemetry) for r in runs
    }
    if len(settings) > 1:
        raise ConfigError(
            "Runs trained together must share their loss, metrics, validation and telemetry settings."
        )
    indices = _groups(runs)
    if initial_params is not None and len(indices) > 1:
        raise ConfigError(
            "initial_params needs runs that form one ensemble (same shapes and code paths)."
        )
    groups = []
    for idx in indices:
        program, args, prepare_s = _group_inputs([runs[i] for i in idx], initial_params)
        executable, compile_s = _compiled(_jitted_train, program, args)
        groups.append(PreparedGroup(tuple(idx), program, args, executable, prepare_s, compile_s))
    return Prepared(runs, tuple(groups), epochs.pop())


def _execute(group: PreparedGroup) -> dict[str, Any]:
    start = time.perf_counter()
    out = jax.tree.map(np.asarray, jax.block_until_ready(group.executable(*group.args)))
    return {
        "program": group.program,
        "out": out,
        "steps_per_epoch": group.args[7].shape[1],
        "prepare_s": group.prepare_s,
        "compile_s": group.compile_s,
        "train_s": time.perf_counter() - start,
    }


def train(
    runs: Sequence[Run], initial_params: Params | None = None, prepared: Prepared | None = None
) -> TrainResult:
    """Train every run; runs with equal shapes and code paths share one compiled program.

    Results come back in the order of `runs`. `prepared` (from `prepare_training` on the
    same runs) skips the preparation and compilation already done.
    """
    if prepared is None or prepared.runs != tuple(runs):
        prepared = prepare_training(runs, initial_params)
    trained = [(list(group.indices), _execute(group)) for group in prepared.groups]
    return TrainResult.from_groups(prepared.runs, trained, prepared.epochs)


def fit(
    model: MLP,
    optimizer: Optimizer,
    data: PreparedData,
    seeds: Sequence[int] | int = 1,
    **config: Any,
) -> TrainResult:
    """Train `model` once per seed on `data`; `seeds=n` means seeds 0..n-1.

    Keyword arguments go to TrainConfig (epochs, batch_size, loss, metrics...); loss and
    metrics default to the lesson's choice for the data's task.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    run_config = TrainConfig.for_task(data.task, **config)
    return train(
        [Run(model, optimizer, data, s, run_config, {"repeat": i}) for i, s in enumerate(seed_list)]
    )


__all__ = [
    "Program",
    "Run",
    "Timing",
    "TrainConfig",
    "batch_schedule",
    "fit",
    "group_key",
    "init_ensemble",
    "train",
]
