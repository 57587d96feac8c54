"""Sweeps: a base experiment, axes of settings, and every combination of their values.

A sweep file is an experiment file (see stablelearn.experiments) without variants, plus
an `[axes]` table and an optional `[sweep]` table::

    id = "depth-activation"
    dataset = "lesson-circles"
    epochs = 500
    repeats = 20
    [model]
    depth = 5
    units = 5
    activation = "relu"
    kernel_initializer = "he_uniform"
    output = {units = 1, activation = "sigmoid"}
    [optimizer]
    name = "sgd"
    learning_rate = 0.01
    momentum = 0.9

    [axes]
    "model.depth" = [1, 5, 10, 20]          # a field and its values
    [axes.activation]                       # a named axis: each value sets several fields
    tanh = {model = {activation = "tanh", kernel_initializer = "glorot_uniform"}}
    relu = {model = {activation = "relu", kernel_initializer = "he_uniform"}}

    [sweep]
    metric = "test_accuracy"                # default: test accuracy, or test RMSE in target units
    success = {min = 0.75}                  # default: see default_success
    baseline = {depth = 1, activation = "relu"}   # default: the first cell

Every cell is one configuration trained `repeats` times; repeat r of every cell uses
seed `seed + r`, so cells are compared on paired seeds (same batch order, and the same
starting weights wherever the architecture matches). Cells whose runs share array
shapes and code paths train together in one compiled program (engine.group_key); each
such group is the unit that is saved, skipped on resume, and sent to a Ray worker.

Axis fields: batch_size, epochs, bce_form; data.input_scaler, data.target_scaler;
model.depth, model.units, model.activation, model.kernel_initializer,
model.bias_initializer; optimizer.name and any optimizer field (learning_rate,
momentum, nesterov, clipnorm, clipvalue, global_clipnorm, beta_1, ...), plus
optimizer.clip_mode ("clipnorm", "clipvalue", "global_clipnorm" or "none") with
optimizer.clip_threshold, so that one threshold axis serves several clip modes.
"""

import dataclasses
import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.data import PreparedData
from stablelearn.engine import Run, group_key
from stablelearn.errors import ConfigError, is_number
from stablelearn.experiments import (
    DatasetCache,
    Experiment,
    _merge,
    _merge_variant,
    load_mapping,
    read_toml,
    settings_only,
    variant_tables,
)
from stablelearn.optim import CLIP_MODES, SGD, Adam, RMSprop
from stablelearn.runner import model_cost, prepare_variant_data

FORMAT_VERSION = 1  # bump when a saved group's content or meaning changes
TOP_LEVEL_AXES = ("batch_size", "epochs", "bce_form")
DATA_AXES = ("input_scaler", "target_scaler")
MODEL_AXES = ("depth", "units", "activation", "kernel_initializer", "bias_initializer")
CLIP_AXES = ("clip_mode", "clip_threshold")
OPTIMIZER_AXES = tuple(
    sorted(
        {"name", *CLIP_AXES}
        | {f.name for cls in (SGD, Adam, RMSprop) for f in dataclasses.fields(cls)}
    )
)
_SWEEP_KEYS = {"metric", "success", "baseline"}
_NOT_IN_SWEEPS = {"variants", "figures", "kind"}
_LAYER_FIELDS = ("units", "activation", "kernel_initializer", "bias_initializer")

# the metrics a sweep can compare cells on, and whether higher is better
METRICS = {
    "test_accuracy": True,
    "train_accuracy": True,
    "test_loss": False,
    "train_loss": False,
    "test_rmse_original": False,
    "train_rmse_original": False,
    "test_mse_original": False,
    "train_mse_original": False,
    "test_mae_original": False,
    "train_mae_original": False,
}


@dataclass(frozen=True)
class Axis:
    """One axis: a field path (e.g. "model.depth") or a named axis of overrides."""

    name: str
    field: str | None  # None for a named axis
    labels: tuple[str, ...]
    overrides: tuple[dict[str, Any], ...]  # per value, the tables it sets
    values: tuple[Any, ...]  # per value, what the figures put on an axis

    @property
    def numeric(self) -> bool:
        return all(is_number(v) and not isinstance(v, bool) for v in self.values)


@dataclass(frozen=True, eq=False)
class Cell:
    """One combination of axis values, validated as a one-variant experiment."""

    index: int
    label: str
    values: dict[str, Any]  # axis name -> value (label for named axes)
    experiment: Experiment

    @property
    def variant(self):
        return self.experiment.variants[0]


@dataclass(frozen=True)
class Success:
    """A run succeeds when it did not diverge and its metric is on the right side of
    `threshold` (min: at least; max: at most)."""

    threshold: float
    direction: str  # "min" or "max"
    reason: str

    def passed(self, values: np.ndarray) -> np.ndarray:
        finite = np.isfinite(values)
        safe = np.where(finite, values, 0.0)
        ok = safe >= self.threshold if self.direction == "min" else safe <= self.threshold
        return finite & ok

    def describe(self, metric: str) -> str:
        sign = ">=" if self.direction == "min" else "<="
        return f"not diverged and {metric} {sign} {self.threshold:.4g} ({self.reason})"


@dataclass(frozen=True, eq=False)
class Sweep:
    id: str
    title: str
    description: str
    source: str
    axes: tuple[Axis, ...]
    cells: tuple[Cell, ...]
    metric: str
    success: Success
    baseline: int  # index of the baseline cell
    repeats: int
    seed: int
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric]

    def cell(self, label: str) -> Cell:
        """The cell with this label, e.g. sweep.cell("depth=5, activation=relu")."""
        for cell in self.cells:
            if cell.label == label:
                return cell
        raise KeyError(label)


# --- parsing ----------------------------------------------------------------------------


def _value_label(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_value_label(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value_label(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _field_override(path: str, value: Any) -> dict[str, Any]:
    """{"model": {"depth": 5}} for ("model.depth", 5); top-level fields stay top-level."""
    if "." not in path:
        return {path: value}
    table, key = path.split(".", 1)
    return {table: {key: value}}


AXIS_FIELDS = {
    "": TOP_LEVEL_AXES,
    "data": DATA_AXES,
    "model": MODEL_AXES,
    "optimizer": OPTIMIZER_AXES,
}


def _check_field(source: str, path: str) -> None:
    table, _, key = path.rpartition(".")
    if key not in AXIS_FIELDS.get(table, ()):
        every = [f"{t}.{k}" if t else k for t, keys in AXIS_FIELDS.items() for k in keys]
        raise ConfigError(
            f"{source}: unknown field axes.{path!r}; an axis can vary: {', '.join(every)}."
        )


def axis_keys(raw: Mapping[str, Any]) -> list[str]:
    """The axes of a parsed sweep file by field or name, without validating it."""
    table = raw.get("axes", {})
    return [key for key, _ in _flatten_axes(table)] if isinstance(table, Mapping) else []


def _flatten_axes(table: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """[(path or name, values)] in file order. `model.depth = [...]` written without
    quotes parses as a nested table; it is read as the field "model.depth"."""
    entries: list[tuple[str, Any]] = []
    for key, value in table.items():
        if key in ("data", "model", "optimizer") and isinstance(value, Mapping):
            for sub, values in value.items():
                entries.append((f"{key}.{sub}", values))
        else:
            entries.append((key, value))
    return entries


def _parse_axis(source: str, key: str, value: Any) -> Axis:
    where = f"{source}: axes.{key}"
    if isinstance(value, list):
        if "." not in key and key not in TOP_LEVEL_AXES:
            raise ConfigError(
                f"{where}: a list of values needs a field such as 'model.depth'; a named axis "
                "is a table of label = {overrides}."
            )
        _check_field(source, key)
        if not value:
            raise ConfigError(f"{where} is empty; give at least one value.")
        labels = tuple(_value_label(v) for v in value)
        overrides = tuple(_field_override(key, v) for v in value)
        name = key.rpartition(".")[2]
        return Axis(name, key, labels, overrides, tuple(value))
    if isinstance(value, Mapping):
        if not value:
            raise ConfigError(f"{where} is empty; give at least one value.")
        overrides = []
        for label, override in value.items():
            if not isinstance(override, Mapping):
                raise ConfigError(
                    f"{where}.{label} must be a table of overrides such as "
                    f'{{model = {{activation = "tanh"}}}}, got {override!r}.'
                )
            for table, fields in override.items():
                if table in TOP_LEVEL_AXES:
                    continue
                if table not in ("data", "model", "optimizer") or not isinstance(fields, Mapping):
                    raise ConfigError(
                        f"{where}.{label}: unknown field {table!r}; an override sets data, model, "
                        f"optimizer tables or {', '.join(TOP_LEVEL_AXES)}."
                    )
                for name in fields:
                    _check_field(f"{where}.{label}", f"{table}.{name}")
            overrides.append(dict(override))
        labels = tuple(value)
        return Axis(key, None, labels, tuple(overrides), labels)
    raise ConfigError(
        f"{where} must be a list of values or a table of label = {{overrides}}, got {value!r}."
    )


def _depth_form(source: str, model: Mapping[str, Any], axes: Sequence[Axis]) -> dict[str, Any]:
    """The base model with identical hidden layers rewritten as depth/units/..., so that
    an axis over depth or a per-layer field applies to every hidden layer."""
    model = dict(model)
    touched = {
        name
        for axis in axes
        for override in axis.overrides
        for name in override.get("model", {})
        if name in ("depth", *_LAYER_FIELDS)
    }
    if not touched or "hidden" not in model:
        return model
    layers = model["hidden"]
    if not isinstance(layers, list) or not layers:
        return model  # the experiment's validation reports it
    if any(layer != layers[0] for layer in layers):
        raise ConfigError(
            f"{source}: axes vary model.{sorted(touched)[0]}, which needs a base [model] with "
            "depth = ... or identical hidden layers."
        )
    model.pop("hidden")
    first = layers[0] if isinstance(layers[0], Mapping) else {}
    return {"depth": len(layers), **first, **model}


def _resolve_clipping(source: str, optimizer: dict[str, Any]) -> dict[str, Any]:
    """Turn the pseudo-fields clip_mode/clip_threshold into the optimizer's own field."""
    if not any(key in optimizer for key in CLIP_AXES):
        return optimizer
    optimizer = dict(optimizer)
    base_modes = [mode for mode in CLIP_MODES if optimizer.get(mode) is not None]
    mode = optimizer.pop("clip_mode", base_modes[0] if base_modes else None)
    threshold = optimizer.pop("clip_threshold", None)
    if mode is not None and mode != "none" and mode not in CLIP_MODES:
        raise ConfigError(
            f"{source}: optimizer.clip_mode must be one of none, {', '.join(CLIP_MODES)}, got {mode!r}."
        )
    if threshold is None and mode not in (None, "none"):
        threshold = optimizer.get(mode)
    for name in CLIP_MODES:
        optimizer.pop(name, None)
    if mode is None:
        raise ConfigError(
            f"{source}: optimizer.clip_threshold needs a clip mode: add an optimizer.clip_mode "
            "axis or set clipnorm/clipvalue/global_clipnorm in the base [optimizer]."
        )
    if mode != "none":
        if threshold is None:
            raise ConfigError(f"{source}: optimizer.clip_mode {mode!r} needs a clip_threshold.")
        optimizer[mode] = threshold
    return optimizer


def _cell_raw(base: Mapping[str, Any], override: Mapping[str, Any], source: str) -> dict[str, Any]:
    tables = {key: base.get(key, {}) for key in ("data", "model", "optimizer")}
    merged = _merge_variant(tables, {k: v for k, v in override.items() if k in tables})
    merged["optimizer"] = _resolve_clipping(source, merged["optimizer"])
    top = {k: v for k, v in override.items() if k not in tables}
    return {**settings_only(base), **top, **merged}


def default_success(task: str, metric: str, data: PreparedData) -> Success:
    """Halfway from the trivial model to a perfect one, on the test split.

    Classification: accuracy >= majority share + (1 - majority share) / 2 (0.75 on the
    balanced circles, the bar the lesson's "learns" means). Regression, metric in target
    units: R^2 >= 0.5, i.e. RMSE <= std(y) / sqrt(2) (MSE <= var / 2, MAE likewise bounded by
    the RMSE bar). A loss, in scaled units has no task-independent bar, so it needs an
    explicit `success` in the sweep file.
    """
    if metric.endswith("_loss"):
        raise ConfigError(
            f"metric {metric!r} is in scaled units: give [sweep] success = {{max = ...}}."
        )
    y = data.target_to_original(data.test_y) if task == "regression" else data.test_y
    if task != "regression":
        majority = float(np.bincount(np.asarray(y, int)).max() / len(y))
        bar = majority + (1.0 - majority) / 2.0
        return Success(bar, "min", f"halfway from the majority class {majority:.3f} to 1")
    variance = float(np.var(y))
    if "_mse_" in metric:
        return Success(variance / 2.0, "max", "R^2 >= 0.5 on the test split")
    bar = float(np.sqrt(variance / 2.0))
    if "_mae_" in metric:
        return Success(bar, "max", "MAE at most the RMSE of R^2 = 0.5 on the test split")
    return Success(bar, "max", "R^2 >= 0.5 on the test split")


def _parse_success(source: str, value: Any) -> Success:
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in ("min", "max"):
        raise ConfigError(
            f"{source}: sweep.success must be a table with one of min or max, e.g. "
            f"{{min = 0.75}}, got {value!r}."
        )
    direction, threshold = next(iter(value.items()))
    if not is_number(threshold) or isinstance(threshold, bool) or not np.isfinite(threshold):
        raise ConfigError(
            f"{source}: sweep.success.{direction} must be a number, got {threshold!r}."
        )
    return Success(float(threshold), direction, "set in the sweep file")


def _parse_baseline(source: str, value: Any, axes: Sequence[Axis], cells: Sequence[Cell]) -> int:
    if value is None:
        return 0
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{source}: sweep.baseline must be a table of axis = value, got {value!r}."
        )
    names = {axis.name: axis for axis in axes}
    for name in value:
        if name not in names:
            raise ConfigError(
                f"{source}: sweep.baseline names {name!r}, which is not an axis; axes: {', '.join(names)}."
            )
    wanted = {name: _value_label(v) for name, v in value.items()}

    def same(a: Any, b: Any) -> bool:
        if all(is_number(x) and not isinstance(x, bool) for x in (a, b)):
            return float(a) == float(b)
        return _value_label(a) == _value_label(b)

    matches = [c.index for c in cells if all(same(c.values[name], v) for name, v in value.items())]
    if len(matches) != 1:
        found = "no cell" if not matches else f"{len(matches)} cells"
        raise ConfigError(
            f"{source}: sweep.baseline {wanted} matches {found}; give one value for each axis."
        )
    return matches[0]


def _axis_names_unique(axes: list[Axis]) -> list[Axis]:
    counts: dict[str, int] = {}
    for axis in axes:
        counts[axis.name] = counts.get(axis.name, 0) + 1
    return [
        dataclasses.replace(axis, name=axis.field) if counts[axis.name] > 1 and axis.field else axis
        for axis in axes
    ]


def load_sweep_mapping(raw: Mapping[str, Any], source: str, base_dir: Path | None = None) -> Sweep:
    """Validate a parsed sweep: every cell is checked as an experiment of its own, and
    each error names the file and, for a cell, the axis values that produced it."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the file must be a table.")
    for key in _NOT_IN_SWEEPS & set(raw):
        raise ConfigError(f"{source}: {key} does not apply to a sweep; the axes define its cells.")
    if "axes" not in raw:
        raise ConfigError(f"{source}: axes is required: a table of field = [values].")
    axes_table = raw["axes"]
    if not isinstance(axes_table, Mapping) or not axes_table:
        raise ConfigError(f"{source}: axes must be a table with at least one axis.")
    sweep_table = raw.get("sweep", {})
    if not isinstance(sweep_table, Mapping):
        raise ConfigError(f"{source}: sweep must be a table, got {sweep_table!r}.")
    unknown = sorted(set(sweep_table) - _SWEEP_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown field sweep.{unknown[0]}; expected one of: {', '.join(sorted(_SWEEP_KEYS))}."
        )
    axes = _axis_names_unique(
        [_parse_axis(source, key, value) for key, value in _flatten_axes(axes_table)]
    )
    for axis in axes:
        values = [float(v) for v in axis.values] if axis.numeric else axis.labels
        if len(set(values)) != len(values):
            raise ConfigError(f"{source}: axes.{axis.field or axis.name} repeats a value.")
    base = {k: v for k, v in raw.items() if k not in ("axes", "sweep")}
    for table in ("data", "model", "optimizer"):
        if table in base and not isinstance(base[table], Mapping):
            raise ConfigError(f"{source}: {table} must be a table, got {base[table]!r}.")
    if isinstance(base.get("model"), Mapping):
        base["model"] = _depth_form(source, base["model"], axes)
    datasets: DatasetCache = {}
    cells = []
    for index, combination in enumerate(itertools.product(*(range(len(a.labels)) for a in axes))):
        override: dict[str, Any] = {}
        values = {}
        for axis, i in zip(axes, combination, strict=True):
            override = _merge(override, axis.overrides[i])
            values[axis.name] = axis.values[i]
        label = ", ".join(f"{a.name}={a.labels[i]}" for a, i in zip(axes, combination, strict=True))
        where = f"{source} (cell {label})"
        cell_raw = _cell_raw(base, override, where)
        experiment = load_mapping(cell_raw, where, base_dir, datasets)
        cells.append(Cell(index, label, values, experiment))
    first = cells[0].experiment
    task = first.data.task
    metric = sweep_table.get(
        "metric", "test_accuracy" if task != "regression" else "test_rmse_original"
    )
    if not isinstance(metric, str) or metric not in METRICS:
        raise ConfigError(
            f"{source}: sweep.metric must be one of {', '.join(METRICS)}, got {metric!r}."
        )
    classification_only, regression_only = "accuracy" in metric, metric.endswith("_original")
    if (classification_only and task == "regression") or (regression_only and task != "regression"):
        raise ConfigError(f"{source}: sweep.metric {metric!r} does not apply to a {task} dataset.")
    target_scalers = {str(c.variant.target_scaler) for c in cells}
    if metric.endswith("_loss") and task == "regression" and len(target_scalers) > 1:
        raise ConfigError(
            f"{source}: sweep.metric {metric!r} is in scaled units, which differ between the "
            "target scalers the axes vary; compare in target units (test_rmse_original)."
        )
    if "success" in sweep_table:
        success = _parse_success(source, sweep_table["success"])
    else:
        try:
            success = default_success(task, metric, _prepared(first))
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    baseline = _parse_baseline(source, sweep_table.get("baseline"), axes, cells)
    return Sweep(
        id=first.id,
        title=first.title,
        description=first.description,
        source=source,
        axes=tuple(axes),
        cells=tuple(cells),
        metric=metric,
        success=success,
        baseline=baseline,
        repeats=first.repeats,
        seed=first.seed,
        raw=dict(raw),
    )


def _prepared(experiment: Experiment) -> PreparedData:
    return prepare_variant_data(experiment, experiment.data)[0]


def load_sweep_file(path: str | Path, **overrides: Any) -> Sweep:
    """Read a sweep TOML file; `overrides` (repeats, epochs... None = keep) replace
    top-level fields, as the CLI's options do."""
    path = Path(path)
    raw = read_toml(path, "sweep")
    return load_sweep_mapping(
        _with_overrides(raw, overrides, path.name), path.name, path.resolve().parent
    )


def _with_overrides(
    raw: dict[str, Any], overrides: Mapping[str, Any], source: str
) -> dict[str, Any]:
    """Top-level fields replaced (None = keep); a field an axis varies can't be replaced."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for key in given:
        if key in axis_keys(raw):
            raise ConfigError(f"{source}: {key} is an axis of this sweep; edit the axis instead.")
    return {**raw, **given}


def shipped_sweep_files() -> list[Any]:
    folder = resources.files("stablelearn") / "sweeps"
    return sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)


def shipped_sweep_text(sweep_id: str) -> str:
    """The TOML source of a shipped sweep, for `stablelearn show`."""
    for entry in shipped_sweep_files():
        text = entry.read_text(encoding="utf-8")
        if tomllib.loads(text).get("id") == sweep_id:
            return text
    raise ConfigError(
        f"No shipped experiment or sweep {sweep_id!r}; `stablelearn list` shows them."
    )


def resolve_sweep(name_or_path: str, **overrides: Any) -> Sweep:
    """A shipped sweep by id, or a sweep file by path."""
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        return load_sweep_file(name_or_path, **overrides)
    for entry in shipped_sweep_files():
        raw = tomllib.loads(entry.read_text(encoding="utf-8"))
        if raw.get("id") == name_or_path:
            return load_sweep_mapping(_with_overrides(raw, overrides, entry.name), entry.name)
    raise ConfigError(
        f"No shipped sweep {name_or_path!r} and no such file; `stablelearn list` shows them."
    )


# --- planning: cells -> runs -> groups ----------------------------------------------------


@dataclass(frozen=True, eq=False)
class Group:
    """Runs that train as one compiled ensemble; `id` hashes everything that decides
    their numbers, so a saved group is reused only for exactly the same work."""

    id: str
    runs: tuple[Run, ...]
    cells: tuple[int, ...]  # per run, its cell index
    repeats: tuple[int, ...]  # per run, its repeat index

    @property
    def cost(self) -> float:
        """Relative training cost, as the runner orders experiments."""
        run = self.runs[0]
        return len(self.runs) * model_cost(len(run.data.train_y), run.config, run.model)


def _data_key(experiment: Experiment) -> tuple:
    variant = experiment.variants[0]
    return (
        id(experiment.data),
        str(variant.input_scaler),
        str(variant.target_scaler),
        experiment.n_train,
        experiment.test_fraction,
        experiment.split_seed,
        experiment.fit_scalers_on,
    )


def _digest_data(data: PreparedData, cache: dict[int, str]) -> str:
    if id(data) not in cache:
        digest = hashlib.sha256()
        for array in (data.train_x, data.train_y, data.test_x, data.test_y):
            digest.update(np.ascontiguousarray(array).tobytes())
        cache[id(data)] = digest.hexdigest()
    return cache[id(data)]


def plan_groups(sweep: Sweep) -> list[Group]:
    """Every cell x repeat as an engine Run, grouped as the engine would compile them,
    costliest group first. Cells with the same scaled data share one PreparedData."""
    prepared: dict[tuple, PreparedData] = {}
    runs: list[tuple[Run, int, int]] = []
    for cell in sweep.cells:
        experiment = cell.experiment
        key = _data_key(experiment)
        if key not in prepared:
            prepared[key] = _prepared(experiment)
        for repeat in range(experiment.repeats):
            run = Run(
                cell.variant.model,
                cell.variant.optimizer,
                prepared[key],
                experiment.seed + repeat,
                experiment.config,
                {"cell": cell.label, "repeat": repeat},
            )
            runs.append((run, cell.index, repeat))
    by_key: dict[tuple, list[tuple[Run, int, int]]] = {}
    for entry in runs:
        by_key.setdefault(group_key(entry[0]), []).append(entry)
    digests: dict[int, str] = {}
    tables = [variant_tables(cell.variant) for cell in sweep.cells]
    groups = []
    for members in by_key.values():
        identity = [
            {
                "cell": sweep.cells[c].label,
                "tables": tables[c],
                "config": dataclasses.asdict(run.config),
                "seed": int(run.seed),
                "data": _digest_data(run.data, digests),
            }
            for run, c, _ in members
        ]
        text = json.dumps([FORMAT_VERSION, identity], sort_keys=True, default=str)
        groups.append(
            Group(
                id=hashlib.sha256(text.encode()).hexdigest()[:16],
                runs=tuple(m[0] for m in members),
                cells=tuple(m[1] for m in members),
                repeats=tuple(m[2] for m in members),
            )
        )
    return sorted(groups, key=lambda g: -g.cost)
