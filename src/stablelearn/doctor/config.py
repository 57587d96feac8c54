"""The user's configuration for the doctor: a data file, an optional experiment file,
and flags, resolved into one experiment table. Flags change only what they name; what
neither the file nor a flag sets is the lesson's default (stablelearn.defaults)."""

import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stablelearn import defaults
from stablelearn.errors import ConfigError
from stablelearn.experiments import (
    Experiment,
    load_file,
    load_mapping,
    settings_only,
    variant_tables,
)
from stablelearn.model_file import framework
from stablelearn.optim import with_clipping
from stablelearn.tables import load_table, table_stem
from stablelearn.tasks import output_layer


@dataclass(frozen=True)
class DoctorFlags:
    """The doctor's command-line settings; None means 'not given'."""

    depth: int | None = None
    units: int | None = None
    activation: str | None = None
    init: str | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    momentum: float | None = None
    clipnorm: float | None = None
    clipvalue: float | None = None
    input_scaler: str | None = None
    target_scaler: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    repeats: int | None = None
    test_fraction: float | None = None

    def __post_init__(self) -> None:
        for name in ("repeats", "epochs", "batch_size", "depth", "units"):
            value, least = getattr(self, name), 0 if name == "depth" else 1
            if value is not None and value < least:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be at least {least}, got {value}."
                )


def doctor_id(data_path: Path) -> str:
    """The experiment id for a data file: ids name folders, so the file name loses its
    accents and every run of other characters becomes '-' ('my données.csv' is
    doctor-my-donnees); the name itself is kept for display."""
    folded = unicodedata.normalize("NFKD", table_stem(data_path)).encode("ascii", "ignore")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", folded.decode()).strip("-._")
    return f"doctor-{slug}" if slug else "doctor"


def _base(config: Path | None, model_file: Path | None) -> dict[str, Any]:
    """The experiment file's table (its run-only fields and its dataset's encoding left
    out: DATA replaces that dataset), or the lesson's MLP/SGD; a Keras model file replaces
    the model and, when it was compiled and no file gives an optimizer, the optimizer."""
    if config is None:
        base = {"model": defaults.model_table(), "optimizer": dict(defaults.OPTIMIZER)}
    elif not config.is_file():
        raise ConfigError(f"No configuration file at {config}.")
    else:
        base = {
            k: v
            for k, v in load_file(config).raw.items()
            if k not in ("n_train", "kind", "figures", "encoding")
        }
        if "model_file" in base:
            base["model_file"] = str((config.resolve().parent / base["model_file"]).resolve())
    if model_file is None:
        return base
    if config is not None and ("model" in base or "model_file" in base):
        raise ConfigError(
            f"--model and the model in {config.name} are alternatives; give one of them."
        )
    base.pop("model", None)
    if config is None:
        base.pop("optimizer")
    return base | {"model_file": str(model_file.resolve())}


def _hidden(hidden: list[dict[str, Any]], flags: DoctorFlags) -> list[dict[str, Any]]:
    template = dict(hidden[0]) if hidden else dict(defaults.HIDDEN_LAYER)
    changes = {
        "units": flags.units,
        "activation": flags.activation,
        "kernel_initializer": flags.init,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        template |= changes
        hidden = [{**layer, **changes} for layer in hidden]
    if flags.depth is not None:
        hidden = [dict(template) for _ in range(flags.depth)]
    return hidden


def _optimizer(optimizer: dict[str, Any], flags: DoctorFlags) -> dict[str, Any]:
    if flags.optimizer is not None and flags.optimizer.lower() != optimizer["name"]:
        optimizer = {"name": flags.optimizer.lower()}
    for key in ("learning_rate", "momentum"):
        if getattr(flags, key) is not None:
            optimizer[key] = getattr(flags, key)
    for mode in ("clipnorm", "clipvalue"):
        if getattr(flags, mode) is not None:
            optimizer = with_clipping(optimizer, mode, getattr(flags, mode))
    return optimizer


def doctor_table(
    data_path: Path,
    target: str,
    task: str | None,
    config: Path | None,
    flags: DoctorFlags,
    model_file: Path | None = None,
    encoding: str = "utf-8",
) -> dict[str, Any]:
    """The user's configuration as an experiment table: a Keras model file, an experiment
    file and/or flags over the lesson's MLP and SGD, with the output layer the task needs."""
    dataset = load_table(data_path, target, task, encoding).dataset
    where = {"dataset": str(data_path.resolve()), "target": target, "task": dataset.task}
    if encoding != "utf-8":
        where["encoding"] = encoding
    base = _base(config, model_file)
    first = {k: v for k, v in base.items() if k != "variants"}
    if "model_file" not in base:
        model = dict(base.get("model", {}))
        if "output" not in model:
            output = output_layer(dataset.task, dataset.n_classes)
            model["output"] = {"units": output.units, "activation": output.activation}
        first["model"] = model
    resolved = load_mapping({"id": "doctor", **first, **where}, config.name if config else "doctor")
    tables = variant_tables(resolved.variants[0])
    tables["model"]["hidden"] = _hidden(tables["model"]["hidden"], flags)
    tables["optimizer"] = _optimizer(tables["optimizer"], flags)
    for key in ("input_scaler", "target_scaler"):
        if getattr(flags, key) is not None:
            tables["data"][key] = getattr(flags, key)
    keras_model = Path(base["model_file"]).name if "model_file" in base else None
    title = (
        f"Your {framework(keras_model)} model {keras_model}"
        if keras_model
        else "Your configuration"
    )
    raw = settings_only(base) | {
        "id": base.get("id", doctor_id(data_path)),
        "title": base.get("title", f"{title} on {data_path.name}"),
        **where,
        **tables,
        "figures": ["learning_curves", "gradients"],
    }
    if keras_model:  # the model's loss form, which the tables do not carry
        raw["bce_form"] = resolved.config.bce_form
    given = {k: v for k, v in asdict(flags).items() if v is not None}
    raw |= {k: given[k] for k in ("epochs", "batch_size", "repeats", "test_fraction") if k in given}
    raw.setdefault("repeats", defaults.REPEATS)
    return raw


def doctor_experiment(
    data_path: Path,
    target: str,
    task: str | None,
    config: Path | None,
    flags: DoctorFlags,
    model_file: Path | None = None,
    encoding: str = "utf-8",
) -> Experiment:
    """The validated experiment the doctor diagnoses."""
    raw = doctor_table(data_path, target, task, config, flags, model_file, encoding)
    return load_mapping(raw, config.name if config else "doctor")
