"""Display names for a sweep's axes, cells and metric: what figures, tables and charts
show instead of the internal names (`optimizer.clip_threshold` -> "clip threshold",
`units=8, learning_rate=0.001` -> "units = 8, learning rate = 0.001"). sweep.json and
the CSV files keep the internal names, which the sweep file and the code use."""

from collections.abc import Mapping, Sequence
from typing import Any

from stablelearn.sweep.statistics import metric_label

# field names whose words alone would mislead or read badly
_WORDS = {
    "residual": "skip connections",
    "batch_norm": "batch norm",
    "clipnorm": "clipnorm",
    "clipvalue": "clipvalue",
    "global_clipnorm": "global clipnorm",
    "bce_form": "BCE form",
    "beta_1": "beta 1",
    "beta_2": "beta 2",
    "name": "optimizer",
}


def field_title(name: str) -> str:
    """One field or axis name in words: "optimizer.clip_threshold" -> "clip threshold",
    "model.residual" -> "skip connections", "tanh-or-relu" stays as written."""
    last = name.rpartition(".")[2]
    return _WORDS.get(last, last.replace("_", " "))


def axis_titles(axes: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each axis's display title by its name (sweep.json's `axes` entries); two axes that
    would read the same keep their field's first part ("model activation")."""
    titles = {a["name"]: field_title(a["field"] or a["name"]) for a in axes}
    for axis in axes:
        clash = [a for a in axes if titles[a["name"]] == titles[axis["name"]]]
        if len(clash) > 1:
            for a in clash:
                if a["field"]:
                    titles[a["name"]] = a["field"].replace(".", " ").replace("_", " ")
    return titles


def cell_title(labels: Mapping[str, str], titles: Mapping[str, str]) -> str:
    """A cell in words, its axes in order: "units = 8, learning rate = 0.001"."""
    return ", ".join(f"{titles.get(name, name)} = {label}" for name, label in labels.items())


def metric_title(metric: str) -> str:
    """test_rmse_original -> "test RMSE (target units)" (sweep.json's metric label)."""
    return metric_label(metric)


def success_title(metric: Mapping[str, Any]) -> str:
    """The success rule in words (sweep.json's metric.success) with the metric's display
    name: "not diverged and test RMSE (target units) <= 200 (set in the sweep file)"."""
    return metric["success"].replace(metric["name"], metric["label"])
