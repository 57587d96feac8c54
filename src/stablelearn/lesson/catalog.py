"""The lesson's case studies: the shipped experiment files (catalog/*.toml), in lesson order."""

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from stablelearn.errors import ConfigError
from stablelearn.experiments import Experiment, load_file, load_mapping


def catalog_files() -> list[Any]:
    """The shipped experiment files, in lesson order (their names start with a number)."""
    folder = resources.files("stablelearn.lesson") / "catalog"
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
