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

Instead of [model], `model_file = "my_model.keras"` (relative to the TOML's folder) takes
the architecture of a saved Keras model and, when it was compiled, its optimizer (an
[optimizer] table still wins) and loss (stablelearn.keras.convert says what converts).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from stablelearn.data import (
    BUILTIN_DATASETS,
    Dataset,
    Scaler,
    builtin_dataset,
    split_rows,
    varying_columns,
)
from stablelearn.errors import ConfigError, DataError
from stablelearn.experiments.overrides import merge_variant, model_table, optimizer_table
from stablelearn.experiments.parse import (
    Fields,
    parse_model,
    parse_optimizer,
    parse_scalers,
)
from stablelearn.io import read_toml
from stablelearn.model import MLP
from stablelearn.optim import Optimizer
from stablelearn.runs import MAX_SEED, TrainConfig, check_model_for_data
from stablelearn.tables import EXPECTED, UndecodableText, load_table, table_format, text_codec
from stablelearn.tasks import lesson_metric

KINDS = ("train", "data")
DATA_FIGURES = ("histograms", "target", "scatter")
FIGURES = ("histograms", "target", "scatter", "learning_curves", "box", "gradients")
_TOP_LEVEL = {
    "id", "title", "section", "description", "kind", "dataset", "target", "task", "encoding", "n_train",
    "test_fraction", "split_seed", "fit_scalers_on",
    "epochs", "batch_size", "repeats", "seed", "validation", "bce_form", "telemetry", "figures", "data",
    "model", "model_file", "optimizer", "variants",
}  # fmt: skip
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
        """The number the lesson prints: test MSE (the loss) for regression, accuracy otherwise."""
        return lesson_metric(self.data.task)

    def override(self, **fields: Any) -> "Experiment":
        """The same experiment with top-level fields replaced (repeats, epochs, ...);
        None values are ignored, so CLI options can be passed straight through."""
        given = {k: v for k, v in fields.items() if v is not None}
        if not given or self.kind == "data":
            return self
        return load_mapping({**self.raw, **given}, self.id, self.base_dir)


DatasetCache = dict[tuple[Any, ...], tuple[Dataset, tuple[str, ...]]]


def _load_data(
    top: Fields, base_dir: Path | None, cache: DatasetCache | None = None
) -> tuple[Dataset, tuple[str, ...]]:
    """A built-in dataset by name, or a CSV/Parquet file (relative to the TOML's folder).
    `cache` (a dict kept by the caller) reads each dataset once across many experiments."""
    dataset = top.get("dataset", str)
    target = top.get("target", str, None)
    task = top.get("task", str, None)
    encoding = top.get("encoding", str, None)
    key = (dataset, target, task, encoding, base_dir)
    if cache is not None and key in cache:
        return cache[key]
    loaded = _read_data(top, dataset, target, task, encoding, base_dir)
    if cache is not None:
        cache[key] = loaded
    return loaded


def _read_data(
    top: Fields,
    dataset: str,
    target: str | None,
    task: str | None,
    encoding: str | None,
    base_dir: Path | None,
) -> tuple[Dataset, tuple[str, ...]]:
    if dataset in BUILTIN_DATASETS:
        given = [
            k
            for k, v in (("target", target), ("task", task), ("encoding", encoding))
            if v is not None
        ]
        if given:
            raise top.error(given[0], "only applies to a dataset read from a file.")
        return builtin_dataset(dataset), ()
    try:
        table_format(dataset)
    except DataError:
        raise top.error(
            "dataset",
            f"must be one of {', '.join(BUILTIN_DATASETS)} or {EXPECTED}, got {dataset!r}.",
        ) from None
    if target is None:
        raise top.error("target", "is required with a dataset file: name the column to predict.")
    if encoding is not None:
        try:
            text_codec(encoding)
        except ConfigError:
            raise top.error(
                "encoding",
                f"must be a text encoding such as utf-8, latin-1 or cp1252, got {encoding!r}.",
            ) from None
    path = Path(dataset)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        table = load_table(path, target, task, encoding or "utf-8")
    except UndecodableText as err:
        fix = f'encoding = "{err.suggested}"'
        raise ConfigError(f"{top.source}: dataset: {err.with_fix(fix)}") from None
    except (DataError, ConfigError) as err:
        raise ConfigError(f"{top.source}: dataset: {err}") from None
    return table.dataset, table.dropped_columns


def _drop_constant_on_rows(data: Dataset, rows: Any) -> tuple[Dataset, tuple[str, ...]]:
    """A file's columns that are constant on the training rows carry no signal there and
    would stop the scalers' check; drop them (the doctor reports them)."""
    varying = varying_columns(data.x[rows])
    if varying.all():
        return data, ()
    if not varying.any():
        raise ConfigError(f"Every feature column of {data.name} is constant on the training rows.")
    return data.keep_columns(varying), data.column_names(~varying)


def _check_variant(
    source: str, where: str, variant: Variant, data: Dataset, config: TrainConfig
) -> None:
    """What the engine would refuse at training time, refused now with the file's name."""
    shape = SimpleNamespace(n_features=data.n_features, task=data.task, n_classes=data.n_classes)
    try:
        check_model_for_data(variant.model, shape, config.loss)
        mode = variant.optimizer.clip_mode
        if mode:
            variant.optimizer.clip_thresholds(mode, len(variant.model.layers))
    except ConfigError as err:
        raise ConfigError(f"{source}: {where}model/optimizer: {err}") from None


@dataclass(frozen=True)
class _Split:
    n_train: int | None
    test_fraction: float | None
    split_seed: int


def _split(top: Fields, data: Dataset, from_file: bool) -> _Split:
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
    return _Split(n_train, test_fraction, split_seed)


def _figures(top: Fields, kind: str, data: Dataset) -> tuple[str, ...]:
    figures = tuple(top.get("figures", list, []))
    allowed = FIGURES if kind == "train" else DATA_FIGURES
    for name in figures:
        if name not in allowed:
            raise top.error(
                "figures",
                f"lists {name!r}; a {kind} experiment takes some of: {', '.join(allowed)}.",
            )
    if "scatter" in figures and (data.n_features < 2 or data.task == "regression"):
        raise top.error(
            "figures",
            "lists 'scatter', which needs a classification dataset with 2 or more features.",
        )
    return figures


def _train_config(top: Fields, task: str, keras: Any = None) -> TrainConfig:
    """Training settings; a Keras model file sets the loss it was compiled with (checked
    against the task) and the binary cross-entropy form of the Keras backend."""
    settings = {
        "epochs": top.positive_int("epochs", 100),
        "batch_size": top.positive_int("batch_size", 32),
        "validation": top.get("validation", bool, True),
        "bce_form": top.get("bce_form", str, keras.bce_form if keras else "logits"),
        "telemetry": top.get("telemetry", bool, True),
    }
    try:
        return (
            keras.train_config(task, **settings)
            if keras
            else TrainConfig.for_task(task, **settings)
        )
    except ConfigError as err:
        raise ConfigError(f"{top.source}: {err}") from None


def _model_file(top: Fields, data: Dataset, base_dir: Path | None, dropped: tuple[str, ...]) -> Any:
    """The Keras model a `model_file` names (relative to the TOML's folder), converted and
    checked against the data's width; None without one."""
    name = top.get("model_file", str, None)
    if name is None:
        return None
    if "model" in top.table:
        raise top.error("model_file", "and [model] are alternatives; give one of them.")
    from stablelearn.model_file import check_input_width, spec_from_file

    path = Path(name)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        spec = spec_from_file(path, input_dim=None)
    except ConfigError as err:  # the message names the model file
        raise ConfigError(f"{top.source}: {err}") from None
    after = f" after dropping the constant column(s) {', '.join(dropped)}" if dropped else ""
    try:
        check_input_width(spec, path.name, data.n_features, f"the data ({data.name})", after)
    except ConfigError as err:
        raise ConfigError(f"{top.source}: {err}") from None
    return spec


def _with_keras_tables(raw: Mapping[str, Any], keras: Any) -> dict[str, Any]:
    """The experiment table with the Keras model's [model] and, unless the file gives its
    own, its compiled [optimizer]."""
    tables = {k: v for k, v in raw.items() if k != "model_file"}
    tables["model"] = model_table(keras.model)
    if "optimizer" not in raw and keras.optimizer is not None:
        tables["optimizer"] = optimizer_table(keras.optimizer)
    return tables


def _check_data_only(top: Fields, raw: Mapping[str, Any]) -> None:
    """A data experiment trains nothing: tables that only training reads are a mistake
    (a typo there would otherwise go unnoticed), and [data] is checked as for training."""
    for key in ("model", "optimizer", "variants", "model_file"):
        if key in raw:
            raise top.error(
                key, "does not apply to kind = 'data', which trains nothing; remove it."
            )
    parse_scalers(top.source, raw.get("data", {}), "data.")


def _variants(
    top: Fields, raw: Mapping[str, Any], data: Dataset, config: TrainConfig
) -> list[Variant]:
    """Each variant's tables merged over the base and resolved into specs."""
    source = top.source
    base = {key: raw.get(key, {}) for key in ("data", "model", "optimizer")}
    if not base["model"]:
        raise top.error("model", "is required for a training experiment.")
    tables = top.get("variants", list, []) or [{"name": raw["id"]}]
    variants: list[Variant] = []
    for i, table in enumerate(tables):
        fields = Fields(source, table, f"variants[{i}].", _VARIANT_KEYS)
        name = fields.get("name", str)
        if name in {v.name for v in variants}:
            raise fields.error("name", f"{name!r} is used twice; variant names must be unique.")
        merged = merge_variant(base, {k: v for k, v in table.items() if k != "name"})
        where = f"variants[{i}]." if "variants" in raw else ""
        input_scaler, target_scaler = parse_scalers(source, merged["data"], f"{where}data.")
        if data.task != "regression" and target_scaler.kind != "none":
            raise ConfigError(
                f"{source}: {where}data.target_scaler only applies to regression datasets."
            )
        variant = Variant(
            name=name,
            model=parse_model(source, merged["model"], data.n_features, f"{where}model."),
            optimizer=parse_optimizer(source, merged["optimizer"], f"{where}optimizer."),
            input_scaler=input_scaler,
            target_scaler=target_scaler,
        )
        _check_variant(source, where, variant, data, config)
        variants.append(variant)
    return variants


def load_mapping(
    raw: Mapping[str, Any],
    source: str,
    base_dir: Path | None = None,
    datasets: DatasetCache | None = None,
) -> Experiment:
    """Validate a parsed experiment table; `source` names it in error messages and
    `base_dir` anchors a relative dataset path (the TOML file's folder). `datasets`
    shares loaded datasets between calls (a sweep validates one experiment per cell)."""
    top = Fields(source, raw, "", _TOP_LEVEL)
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
    from_file = top.get("dataset", str) not in BUILTIN_DATASETS
    split = _split(top, data, from_file)
    try:
        train_rows, _ = split_rows(data, split.n_train, split.test_fraction, split.split_seed)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    if from_file:
        data, also_dropped = _drop_constant_on_rows(data, train_rows)
        dropped += also_dropped
    figures = _figures(top, kind, data)
    fit_on = top.get("fit_scalers_on", str, "train")
    if fit_on not in ("train", "all"):
        raise top.error("fit_scalers_on", f"must be 'train' or 'all', got {fit_on!r}.")
    keras = _model_file(top, data, base_dir, dropped)
    train_config = _train_config(top, data.task, keras)
    repeats, seed = _experiment_settings(top)
    tables = _with_keras_tables(raw, keras) if keras else raw
    if kind == "data":
        _check_data_only(top, raw)
    variants = _variants(top, tables, data, train_config) if kind == "train" else []
    return Experiment(
        id=experiment_id,
        title=top.get("title", str, experiment_id),
        section=top.get("section", str, ""),
        description=top.get("description", str, ""),
        kind=kind,
        dataset=top.get("dataset", str),
        n_train=split.n_train,
        test_fraction=split.test_fraction,
        split_seed=split.split_seed,
        fit_scalers_on=fit_on,
        config=train_config,
        repeats=repeats,
        seed=seed,
        figures=figures,
        variants=tuple(variants),
        raw=dict(raw),
        data=data,
        dropped_columns=dropped,
        base_dir=base_dir,
    )


def _experiment_settings(top: Fields) -> tuple[int, int]:
    """repeats and the first seed (seeds are 32-bit, and the last is seed + repeats - 1)."""
    seed = top.get("seed", int, 0)
    repeats = top.positive_int("repeats", 10)
    if not 0 <= seed <= MAX_SEED - repeats + 1:
        raise top.error(
            "seed", f"must be from 0 to 2**32 - repeats (seeds are 32-bit), got {seed}."
        )
    return repeats, seed


def load_file(path: str | Path) -> Experiment:
    """Read and validate an experiment TOML file."""
    path = Path(path)
    return load_mapping(read_toml(path), path.name, path.resolve().parent)
