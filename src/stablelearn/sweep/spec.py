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
shapes and code paths train together in one compiled program (engine.plan_programs); each
such group is the unit that is saved, skipped on resume, and sent to a Ray worker.

Axis fields: batch_size, epochs, bce_form; data.input_scaler, data.target_scaler;
model.depth, model.units, model.activation, model.kernel_initializer,
model.bias_initializer; optimizer.name and any optimizer field (learning_rate,
momentum, nesterov, clipnorm, clipvalue, global_clipnorm, beta_1, ...), plus
optimizer.clip_mode ("clipnorm", "clipvalue", "global_clipnorm" or "none") with
optimizer.clip_threshold, so that one threshold axis serves several clip modes.
"""

import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.checks import is_number
from stablelearn.data import PreparedData
from stablelearn.errors import ConfigError
from stablelearn.experiments.overrides import merge
from stablelearn.experiments.spec import DatasetCache, Experiment, load_mapping
from stablelearn.io import read_toml
from stablelearn.sweep.axes import (
    Axis,
    axis_keys,
    axis_names_unique,
    cell_raw,
    depth_form,
    flatten_axes,
    parse_axis,
    value_label,
)
from stablelearn.tasks import held_out_metric

_SWEEP_KEYS = {"metric", "success", "baseline"}
_NOT_IN_SWEEPS = {"variants", "figures", "kind"}

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
    wanted = {name: value_label(v) for name, v in value.items()}

    def same(a: Any, b: Any) -> bool:
        if all(is_number(x) and not isinstance(x, bool) for x in (a, b)):
            return float(a) == float(b)
        return value_label(a) == value_label(b)

    matches = [c.index for c in cells if all(same(c.values[name], v) for name, v in value.items())]
    if len(matches) != 1:
        found = "no cell" if not matches else f"{len(matches)} cells"
        raise ConfigError(
            f"{source}: sweep.baseline {wanted} matches {found}; give one value for each axis."
        )
    return matches[0]


def _sweep_table(source: str, raw: Mapping[str, Any]) -> Mapping[str, Any]:
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
    return sweep_table


def _axes(source: str, axes_table: Mapping[str, Any]) -> list[Axis]:
    axes = axis_names_unique(
        [parse_axis(source, key, value) for key, value in flatten_axes(axes_table)]
    )
    for axis in axes:
        values = [float(v) for v in axis.values] if axis.numeric else axis.labels
        if len(set(values)) != len(values):
            raise ConfigError(f"{source}: axes.{axis.field or axis.name} repeats a value.")
    return axes


def _cells(
    source: str, raw: Mapping[str, Any], axes: Sequence[Axis], base_dir: Path | None
) -> list[Cell]:
    """Every combination of axis values, each validated as an experiment of its own."""
    base = {k: v for k, v in raw.items() if k not in ("axes", "sweep")}
    for table in ("data", "model", "optimizer"):
        if table in base and not isinstance(base[table], Mapping):
            raise ConfigError(f"{source}: {table} must be a table, got {base[table]!r}.")
    if isinstance(base.get("model"), Mapping):
        base["model"] = depth_form(source, base["model"], axes)
    datasets: DatasetCache = {}
    cells = []
    for index, combination in enumerate(itertools.product(*(range(len(a.labels)) for a in axes))):
        override: dict[str, Any] = {}
        values = {}
        for axis, i in zip(axes, combination, strict=True):
            override = merge(override, axis.overrides[i])
            values[axis.name] = axis.values[i]
        label = ", ".join(f"{a.name}={a.labels[i]}" for a, i in zip(axes, combination, strict=True))
        where = f"{source} (cell {label})"
        experiment = load_mapping(cell_raw(base, override, where), where, base_dir, datasets)
        cells.append(Cell(index, label, values, experiment))
    return cells


def _metric(source: str, sweep_table: Mapping[str, Any], cells: Sequence[Cell]) -> str:
    task = cells[0].experiment.data.task
    metric = sweep_table.get("metric", f"test_{held_out_metric(task)}")
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
    return metric


def load_sweep_mapping(raw: Mapping[str, Any], source: str, base_dir: Path | None = None) -> Sweep:
    """Validate a parsed sweep: every cell is checked as an experiment of its own, and
    each error names the file and, for a cell, the axis values that produced it."""
    sweep_table = _sweep_table(source, raw)
    axes = _axes(source, raw["axes"])
    cells = _cells(source, raw, axes, base_dir)
    first = cells[0].experiment
    metric = _metric(source, sweep_table, cells)
    if "success" in sweep_table:
        success = _parse_success(source, sweep_table["success"])
    else:
        try:
            success = default_success(first.data.task, metric, first_variant_data(first))
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


def first_variant_data(experiment: Experiment) -> PreparedData:
    """The scaled splits of a one-variant experiment (a cell)."""
    # the runner imports the engine (JAX); reading sweep files for `list` needs neither
    from stablelearn.experiments.runner import prepare_variant_data

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
    folder = resources.files("stablelearn.sweep") / "shipped"
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
