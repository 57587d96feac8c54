"""Declarative experiments: a TOML file describes a case study; this module validates it.

An experiment names a dataset, a model, an optimizer, training settings, a number of
repeats and optionally variants, each overriding part of the base (an input scaler, a
clip mode...). Every error names the file and the field, e.g.
"input-scaling.toml: optimizer.learning_rate must be in (0, inf), got -1".

    id = "standardized-target"
    title = "MLP with a standardized target"
    section = "2.1.2.2"
    dataset = "lesson-regression"
    epochs = 100
    repeats = 10

    [data]
    target_scaler = "standard"

    [model]
    hidden = [{units = 25, activation = "relu", kernel_initializer = "he_uniform"}]
    output = {units = 1, activation = "linear"}

    [optimizer]
    name = "sgd"
    learning_rate = 0.01
    momentum = 0.9

    [[variants]]                # optional; each overrides the base
    name = "normalized target"
    data = {target_scaler = "minmax"}
"""

import copy
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from stablelearn.data import (
    BUILTIN_DATASETS,
    Dataset,
    Scaler,
    as_scaler,
    builtin_dataset,
    split_rows,
)
from stablelearn.engine import MAX_SEED, TrainConfig, check_model_for_data
from stablelearn.errors import ConfigError, DataError
from stablelearn.initializers import Initializer
from stablelearn.model import MLP, Dense
from stablelearn.optim import CLIP_MODES, Optimizer, make_optimizer
from stablelearn.tables import load_table

KINDS = ("train", "data")
DATA_FIGURES = ("histograms", "target", "scatter")
FIGURES = ("histograms", "target", "scatter", "learning_curves", "box", "gradients")
_TOP_LEVEL = {
    "id", "title", "section", "description", "kind", "dataset", "target", "task", "n_train",
    "test_fraction", "split_seed", "fit_scalers_on",
    "epochs", "batch_size", "repeats", "seed", "validation", "bce_form", "telemetry", "figures", "data",
    "model", "optimizer", "variants",
}  # fmt: skip
_DATA_KEYS = {"input_scaler", "target_scaler"}
_MODEL_KEYS = {
    "hidden",
    "depth",
    "units",
    "activation",
    "kernel_initializer",
    "bias_initializer",
    "output",
}
_LAYER_KEYS = {"units", "activation", "kernel_initializer", "bias_initializer"}
_VARIANT_KEYS = {"name", "data", "model", "optimizer"}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: its resolved model, optimizer and scalers."""

    name: str
    model: MLP
    optimizer: Optimizer
    input_scaler: Scaler
    target_scaler: Scaler


@dataclass(frozen=True)
class Experiment:
    """A validated experiment; `raw` keeps the parsed TOML for the run folder."""

    id: str
    title: str
    section: str
    description: str
    kind: str
    dataset: str
    n_train: int | None
    test_fraction: float | None
    split_seed: int
    fit_scalers_on: str
    config: TrainConfig
    repeats: int
    seed: int
    figures: tuple[str, ...]
    variants: tuple[Variant, ...]
    raw: Mapping[str, Any] = field(compare=False, repr=False)
    data: Dataset | None = field(default=None, compare=False, repr=False)
    dropped_columns: tuple[str, ...] = field(default=(), compare=False)
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    @property
    def metric(self) -> str:
        """The number the lesson prints: test MSE (the loss) for regression, accuracy for circles."""
        return "loss" if self.config.loss == "mse" else "accuracy"

    def override(self, **fields: Any) -> "Experiment":
        """The same experiment with top-level fields replaced (repeats, epochs, ...);
        None values are ignored, so CLI options can be passed straight through."""
        given = {k: v for k, v in fields.items() if v is not None}
        if not given or self.kind == "data":
            return self
        return load_mapping({**self.raw, **given}, self.id, self.base_dir)


class _Fields:
    """Typed access to one TOML table that names the offending field in every error."""

    def __init__(self, source: str, table: Mapping[str, Any], prefix: str, allowed: set[str]):
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"{source}: {prefix.rstrip('.') or 'the file'} must be a table, got {table!r}."
            )
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ConfigError(
                f"{source}: unknown field {prefix}{unknown[0]}; expected one of: {', '.join(sorted(allowed))}."
            )
        self.source, self.table, self.prefix = source, table, prefix

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.prefix}{key} {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.table:
            if default is ...:
                raise self.error(key, "is required.")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.error(key, f"must be {_type_name(kind)}, got {value!r}.")
        return value

    def positive_int(self, key: str, default: Any = ...) -> int:
        value = self.get(key, int, default)
        if value is not None and value < 1:
            raise self.error(key, f"must be a positive integer, got {value!r}.")
        return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _merge_variant(base: Mapping[str, Any], variant: Mapping[str, Any]) -> dict[str, Any]:
    """A variant's tables over the base, with the replacements a user means: `depth` and
    `hidden` replace each other, another optimizer `name` replaces the whole optimizer,
    and a clip mode replaces the base's clip mode (Keras takes only one)."""
    base = copy.deepcopy(dict(base))
    model, optimizer = variant.get("model"), variant.get("optimizer")
    if isinstance(model, Mapping) and isinstance(base.get("model"), Mapping):
        for mine, other in (("depth", "hidden"), ("hidden", "depth")):
            if mine in model:
                base["model"].pop(other, None)
                if other == "depth":
                    for key in ("units", "activation", "kernel_initializer", "bias_initializer"):
                        base["model"].pop(key, None)
    if isinstance(optimizer, Mapping) and isinstance(base.get("optimizer"), Mapping):
        if (
            str(optimizer.get("name", base["optimizer"].get("name", "sgd"))).lower()
            != str(base["optimizer"].get("name", "sgd")).lower()
        ):
            base["optimizer"] = {}
        elif any(mode in optimizer for mode in CLIP_MODES):
            for mode in CLIP_MODES:
                base["optimizer"].pop(mode, None)
    return _merge(base, variant)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _layer(source: str, table: Any, prefix: str) -> Dense:
    fields = _Fields(source, table, prefix, _LAYER_KEYS)
    kwargs = {
        "units": fields.get("units", int),
        "activation": fields.get("activation", str, "linear"),
        "kernel_initializer": fields.get("kernel_initializer", (str, dict), "glorot_uniform"),
        "bias_initializer": fields.get("bias_initializer", (str, dict), "zeros"),
    }
    try:
        return Dense(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.')}: {err}") from None


def _model(source: str, table: Any, n_features: int, prefix: str) -> MLP:
    fields = _Fields(source, table, prefix, _MODEL_KEYS)
    if "hidden" in table and "depth" in table:
        raise fields.error("hidden", "and depth are alternatives; give one of them.")
    if "depth" in table:
        depth = fields.get("depth", int)
        if depth < 0:
            raise fields.error("depth", f"must be zero or more, got {depth}.")
        layer = {
            k: table[k]
            for k in ("units", "activation", "kernel_initializer", "bias_initializer")
            if k in table
        }
        hidden = [_layer(source, layer, f"{prefix}(depth layer).")] * depth
    else:
        extra = sorted(
            set(table) & {"units", "activation", "kernel_initializer", "bias_initializer"}
        )
        if extra:
            raise fields.error(
                extra[0], "only applies together with depth; put it inside each hidden layer."
            )
        layers = fields.get("hidden", list, [])
        hidden = [_layer(source, layer, f"{prefix}hidden[{i}].") for i, layer in enumerate(layers)]
    output = _layer(source, fields.get("output", dict), f"{prefix}output.")
    return MLP(n_features, tuple(hidden), output)


def _optimizer(source: str, table: Any, prefix: str) -> Optimizer:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.')} must be a table, got {table!r}.")
    kwargs = dict(table)
    name = kwargs.pop("name", "sgd")
    try:
        return make_optimizer(name, **kwargs)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.')}: {err}") from None


def _scalers(source: str, table: Any, prefix: str) -> tuple[Scaler, Scaler]:
    fields = _Fields(source, table, prefix, _DATA_KEYS)
    try:
        return (
            as_scaler(fields.get("input_scaler", (str, dict), "none")),
            as_scaler(fields.get("target_scaler", (str, dict), "none")),
        )
    except ConfigError as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.')}: {err}") from None


DatasetCache = dict[tuple[Any, ...], tuple[Dataset, tuple[str, ...]]]


def _load_data(
    top: _Fields, base_dir: Path | None, cache: DatasetCache | None = None
) -> tuple[Dataset, tuple[str, ...]]:
    """A built-in dataset by name, or a CSV/Parquet file (relative to the TOML's folder).
    `cache` (a dict kept by the caller) reads each dataset once across many experiments."""
    dataset = top.get("dataset", str)
    target = top.get("target", str, None)
    task = top.get("task", str, None)
    key = (dataset, target, task, base_dir)
    if cache is not None and key in cache:
        return cache[key]
    loaded = _read_data(top, dataset, target, task, base_dir)
    if cache is not None:
        cache[key] = loaded
    return loaded


def _read_data(
    top: _Fields, dataset: str, target: str | None, task: str | None, base_dir: Path | None
) -> tuple[Dataset, tuple[str, ...]]:
    if dataset in BUILTIN_DATASETS:
        if target is not None or task is not None:
            raise top.error("target", "and task only apply to a dataset read from a file.")
        return builtin_dataset(dataset), ()
    if not dataset.lower().endswith((".csv", ".tsv", ".parquet", ".pq")):
        raise top.error(
            "dataset",
            f"must be one of {', '.join(BUILTIN_DATASETS)} or a .csv/.tsv/.parquet file, got {dataset!r}.",
        )
    if target is None:
        raise top.error("target", "is required with a dataset file: name the column to predict.")
    path = Path(dataset)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        table = load_table(path, target, task)
    except (DataError, ConfigError) as err:
        raise ConfigError(f"{top.source}: dataset: {err}") from None
    return table.dataset, table.dropped_columns


def _drop_constant_on_rows(data: Dataset, rows: Any) -> tuple[Dataset, tuple[str, ...]]:
    """A file's columns that are constant on the training rows carry no signal there and
    would stop the scalers' check; drop them (the doctor reports them)."""
    varying = np.ptp(data.x[rows], axis=0) > 0
    if varying.all():
        return data, ()
    if not varying.any():
        raise ConfigError(f"Every feature column of {data.name} is constant on the training rows.")
    dropped = tuple(
        name for name, keep in zip(data.feature_names, varying, strict=True) if not keep
    )
    names = tuple(name for name, keep in zip(data.feature_names, varying, strict=True) if keep)
    kept = Dataset(data.x[:, varying], data.y, data.task, data.name, names, data.target_name)
    return kept, dropped


def _check_variant(
    source: str, where: str, variant: Variant, data: Dataset, config: TrainConfig
) -> None:
    """What the engine would refuse at training time, refused now with the file's name."""
    classes = 0 if data.task == "regression" else max(2, int(data.y.max()) + 1)
    shape = SimpleNamespace(n_features=data.n_features, task=data.task, n_classes=classes)
    try:
        check_model_for_data(variant.model, shape, config.loss)
        mode = variant.optimizer.clip_mode
        if mode:
            variant.optimizer.clip_thresholds(mode, len(variant.model.layers))
    except ConfigError as err:
        raise ConfigError(f"{source}: {where}model/optimizer: {err}") from None


def load_mapping(
    raw: Mapping[str, Any],
    source: str,
    base_dir: Path | None = None,
    datasets: DatasetCache | None = None,
) -> Experiment:
    """Validate a parsed experiment table; `source` names it in error messages and
    `base_dir` anchors a relative dataset path (the TOML file's folder). `datasets`
    shares loaded datasets between calls (a sweep validates one experiment per cell)."""
    top = _Fields(source, raw, "", _TOP_LEVEL)
    experiment_id = top.get("id", str)
    if not _ID.fullmatch(experiment_id):
        raise top.error(
            "id",
            f"must be letters, digits, '.', '_' or '-' (it names a folder), got {experiment_id!r}.",
        )
    kind = top.get("kind", str, "train")
    if kind not in KINDS:
        raise top.error("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}.")
    data, dropped = _load_data(top, base_dir, datasets)
    task = data.task
    from_file = top.get("dataset", str) not in BUILTIN_DATASETS
    n_train = top.positive_int("n_train", None)
    test_fraction = top.get("test_fraction", (float, int), None)
    if n_train is not None and test_fraction is not None:
        raise top.error("n_train", "and test_fraction are alternatives; give one of them.")
    if n_train is None and test_fraction is None:
        # the lesson's split for its own data: the first 500 rows train
        n_train, test_fraction = (None, 0.3) if from_file else (500, None)
    split_seed = top.get("split_seed", int, 0)
    if split_seed < 0:
        raise top.error("split_seed", f"must be zero or more, got {split_seed}.")
    try:
        train_rows, _ = split_rows(data, n_train, test_fraction, split_seed)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    if from_file:
        data, also_dropped = _drop_constant_on_rows(data, train_rows)
        dropped += also_dropped
    figures = tuple(top.get("figures", list, []))
    allowed = FIGURES if kind == "train" else DATA_FIGURES
    for name in figures:
        if name not in allowed:
            raise top.error(
                "figures",
                f"lists {name!r}; a {kind} experiment takes some of: {', '.join(allowed)}.",
            )
    if "scatter" in figures and (data.n_features < 2 or task == "regression"):
        raise top.error(
            "figures",
            "lists 'scatter', which needs a classification dataset with 2 or more features.",
        )
    fit_on = top.get("fit_scalers_on", str, "train")
    if fit_on not in ("train", "all"):
        raise top.error("fit_scalers_on", f"must be 'train' or 'all', got {fit_on!r}.")
    settings = {
        "epochs": top.positive_int("epochs", 100),
        "batch_size": top.positive_int("batch_size", 32),
        "validation": top.get("validation", bool, True),
        "bce_form": top.get("bce_form", str, "logits"),
        "telemetry": top.get("telemetry", bool, True),
    }
    seed = top.get("seed", int, 0)
    repeats = top.positive_int("repeats", 10)
    if not 0 <= seed <= MAX_SEED - repeats + 1:
        raise top.error(
            "seed", f"must be from 0 to 2**32 - repeats (seeds are 32-bit), got {seed}."
        )
    try:
        config = TrainConfig.for_task(task, **settings)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    variants: list[Variant] = []
    if kind == "train":
        base = {key: raw.get(key, {}) for key in ("data", "model", "optimizer")}
        if not base["model"]:
            raise top.error("model", "is required for a training experiment.")
        variant_tables = top.get("variants", list, []) or [{"name": experiment_id}]
        names = set()
        for i, table in enumerate(variant_tables):
            fields = _Fields(source, table, f"variants[{i}].", _VARIANT_KEYS)
            name = fields.get("name", str)
            if name in names:
                raise fields.error("name", f"{name!r} is used twice; variant names must be unique.")
            names.add(name)
            merged = _merge_variant(base, {k: v for k, v in table.items() if k != "name"})
            where = f"variants[{i}]." if "variants" in raw else ""
            input_scaler, target_scaler = _scalers(source, merged["data"], f"{where}data.")
            if task != "regression" and target_scaler.kind != "none":
                raise ConfigError(
                    f"{source}: {where}data.target_scaler only applies to regression datasets."
                )
            variant = Variant(
                name=name,
                model=_model(source, merged["model"], data.n_features, f"{where}model."),
                optimizer=_optimizer(source, merged["optimizer"], f"{where}optimizer."),
                input_scaler=input_scaler,
                target_scaler=target_scaler,
            )
            _check_variant(source, where, variant, data, config)
            variants.append(variant)
    return Experiment(
        id=experiment_id,
        title=top.get("title", str, experiment_id),
        section=top.get("section", str, ""),
        description=top.get("description", str, ""),
        kind=kind,
        dataset=top.get("dataset", str),
        n_train=n_train,
        test_fraction=test_fraction,
        split_seed=split_seed,
        fit_scalers_on=fit_on,
        config=config,
        repeats=repeats,
        seed=seed,
        figures=figures,
        variants=tuple(variants),
        raw=dict(raw),
        data=data,
        dropped_columns=dropped,
        base_dir=base_dir,
    )


def read_toml(path: Path, kind: str = "experiment") -> dict[str, Any]:
    """A TOML file as a dict; a missing, binary or malformed file is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"No {kind} file at {path}.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path.name}: not valid TOML ({err}).") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not a text file.") from None


def load_file(path: str | Path) -> Experiment:
    """Read and validate an experiment TOML file."""
    path = Path(path)
    return load_mapping(read_toml(path), path.name, path.resolve().parent)


def catalog_files() -> list[Any]:
    """The shipped experiment files, in lesson order (their names start with a number)."""
    folder = resources.files("stablelearn") / "catalog"
    return sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)


def catalog() -> list[Experiment]:
    experiments = []
    for entry in catalog_files():
        raw = tomllib.loads(entry.read_text(encoding="utf-8"))
        experiments.append(load_mapping(raw, entry.name))
    return experiments


def catalog_text(experiment_id: str) -> str:
    """The TOML source of a shipped experiment, for `stablelearn show`."""
    for entry in catalog_files():
        text = entry.read_text(encoding="utf-8")
        if tomllib.loads(text).get("id") == experiment_id:
            return text
    raise ConfigError(f"No shipped experiment {experiment_id!r}; `stablelearn list` shows them.")


def resolve(name_or_path: str) -> Experiment:
    """A shipped experiment by id, or an experiment file by path."""
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        return load_file(name_or_path)
    for experiment in catalog():
        if experiment.id == name_or_path:
            return experiment
    raise ConfigError(
        f"No shipped experiment {name_or_path!r} and no such file; `stablelearn list` shows them."
    )


def initializer_table(init: Initializer) -> str | dict[str, Any]:
    """The TOML form of an initializer: its name, or a table with its arguments."""
    return init.name if not init.args else {"name": init.name, **init.kwargs}


def layer_table(layer: Dense) -> dict[str, Any]:
    return {
        "units": layer.units,
        "activation": layer.activation,
        "kernel_initializer": initializer_table(layer.kernel_initializer),
        "bias_initializer": initializer_table(layer.bias_initializer),
    }


def model_table(model: MLP) -> dict[str, Any]:
    """The [model] table that parses back into `model` (the inverse of _model)."""
    return {
        "hidden": [layer_table(layer) for layer in model.hidden],
        "output": layer_table(model.output),
    }


def optimizer_table(optimizer: Optimizer) -> dict[str, Any]:
    """The [optimizer] table that parses back into `optimizer` (unset clipping left out)."""
    fields = {k: v for k, v in asdict(optimizer).items() if v is not None}
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return {"name": type(optimizer).__name__.lower(), **fields}


def variant_tables(variant: Variant) -> dict[str, Any]:
    """data, model and optimizer tables of a resolved variant."""
    return {
        "data": {
            "input_scaler": _scaler_value(variant.input_scaler),
            "target_scaler": _scaler_value(variant.target_scaler),
        },
        "model": model_table(variant.model),
        "optimizer": optimizer_table(variant.optimizer),
    }


def _scaler_value(scaler: Scaler) -> str | dict[str, Any]:
    if scaler.kind == "minmax" and scaler.feature_range != (0.0, 1.0):
        return {"kind": "minmax", "feature_range": list(scaler.feature_range)}
    return scaler.kind


TABLES = ("data", "model", "optimizer", "variants")


def settings_only(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An experiment table without its data/model/optimizer tables and variants."""
    return {k: v for k, v in raw.items() if k not in TABLES}
