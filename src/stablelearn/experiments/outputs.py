"""One experiment's run folder: summary.json, config.json, models.csv, history.npz,
figures, and its section of a report.

The layout and the summary.json schema are documented in the README; the schema file
ships as stablelearn/schemas/summary.schema.json. The folder itself is written
atomically by the caller (stablelearn.io.atomic_folder).
"""

import csv
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.experiments.figures import experiment_figures
from stablelearn.experiments.runner import ExperimentResult, VariantResult
from stablelearn.io import json_safe, write_json
from stablelearn.optim import describe
from stablelearn.results import divergence_record
from stablelearn.stats import summarize
from stablelearn.tasks import metric_display_name

SCHEMA_VERSION = 1
MODEL_COLUMNS = ["variant", "repeat", "seed", "diverged", "diverged_epoch", "train_metric",
                 "test_metric", "train_loss", "test_loss"]  # fmt: skip


def metric_name(result: ExperimentResult) -> str:
    """The lesson metric's name in summaries: 'accuracy' or 'mse'."""
    return metric_display_name(result.experiment.data.task)


def lesson_lines(result: ExperimentResult) -> list[str]:
    """The lesson's printout (mean over repeats where it printed one run), then the
    median and 10-90% range that a distribution deserves."""
    metric = result.metric
    lines = []
    for v in result.variants:
        train, test = v.result.train_scores[metric], v.result.test_scores[metric]
        if len(result.variants) == 1:
            lines.append(f"Train: {np.mean(train):.3f}, Test: {np.mean(test):.3f}")
        else:
            lines.append(f"{v.name}: {np.mean(test):.3f} ({np.std(test):.3f})")
    for v in result.variants:
        s = summarize(v.result.test_scores[metric])
        spread = (
            "all diverged"
            if s["median"] is None
            else f"median {s['median']:.4g} (p10 {s['p10']:.4g}, p90 {s['p90']:.4g})"
        )
        lines.append(
            f"  {v.name}: test {metric_name(result)} {spread}; diverged {int(v.result.diverged.sum())}/{v.result.n_models}"
        )
    return lines


def _variant_entry(result: ExperimentResult, v: VariantResult) -> dict[str, Any]:
    r, metric = v.result, result.metric
    entry: dict[str, Any] = {
        "name": v.name,
        "n": r.n_models,
        "diverged": int(r.diverged.sum()),
        "metric": metric_name(result),
        "train": summarize(r.train_scores[metric]),
        "test": summarize(r.test_scores[metric]),
        "model": v.variant.model.describe(),
        "optimizer": describe(v.variant.optimizer),
        "input_scaler": str(v.variant.input_scaler),
        "target_scaler": str(v.variant.target_scaler),
    }
    if "rmse_original" in r.test_scores:
        entry["test_rmse_original"] = summarize(r.test_scores["rmse_original"])
    return entry


def _model_rows(result: ExperimentResult, v: VariantResult) -> list[dict[str, Any]]:
    r, metric = v.result, result.metric
    return [
        {
            "variant": v.name,
            "repeat": int(run.tags["repeat"]),
            "seed": int(run.seed),
            **divergence_record(r.diverged_epoch[i]),
            "train_metric": float(r.train_scores[metric][i]),
            "test_metric": float(r.test_scores[metric][i]),
            "train_loss": float(r.train_scores["loss"][i]),
            "test_loss": float(r.test_scores["loss"][i]),
        }
        for i, run in enumerate(r.runs)
    ]


def experiment_summary(result: ExperimentResult, figures: Sequence[str] = ()) -> dict[str, Any]:
    """The summary.json document (schema version 1)."""
    e = result.experiment
    trains = e.kind == "train"
    return json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "experiment": {
                "id": e.id,
                "title": e.title,
                "section": e.section,
                "description": e.description,
                "kind": e.kind,
                "dataset": e.dataset,
                "epochs": e.config.epochs if trains else None,
                "repeats": e.repeats if trains else None,
                "fit_scalers_on": e.fit_scalers_on,
            },
            "metric": metric_name(result) if trains else None,
            "variants": [_variant_entry(result, v) for v in result.variants],
            "models": [row for v in result.variants for row in _model_rows(result, v)],
            "lesson_format": lesson_lines(result) if trains else [],
            "timing": {
                "compile_s": result.compile_s,
                "train_s": result.train_s,
                "wall_s": result.wall_s,
            },
            "figures": list(figures),
        }
    )


def _write_models_csv(path: Path, summary: dict[str, Any]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MODEL_COLUMNS)
        writer.writeheader()
        for row in summary["models"]:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in MODEL_COLUMNS})


def _write_history(result: ExperimentResult, path: Path) -> None:
    if not result.variants:
        return
    arrays: dict[str, np.ndarray] = {}
    for name in result.variants[0].result.history:
        arrays[name] = np.concatenate([v.result.history[name] for v in result.variants])
    arrays["variant"] = np.asarray(
        [v.name for v in result.variants for _ in range(v.result.n_models)]
    )
    arrays["repeat"] = np.concatenate([np.asarray(v.result.tag("repeat")) for v in result.variants])
    arrays["seed"] = np.concatenate([v.result.seeds for v in result.variants])
    arrays["diverged_epoch"] = np.concatenate([v.result.diverged_epoch for v in result.variants])
    arrays["epoch"] = np.asarray(result.variants[0].result.history_epochs, np.int64)
    np.savez_compressed(path, **arrays)


def _config(result: ExperimentResult) -> dict[str, Any]:
    e = result.experiment
    return json_safe(
        {
            "source": dict(e.raw),
            "resolved": {
                "train": asdict(e.config),
                "seeds": [e.seed + r for r in range(e.repeats)],
                "variants": [
                    {
                        "name": v.variant.name,
                        "model": v.variant.model.describe(),
                        "layers": [
                            {
                                "units": layer.units,
                                "activation": layer.activation,
                                "kernel_initializer": str(layer.kernel_initializer),
                                "bias_initializer": str(layer.bias_initializer),
                            }
                            | ({} if layer.use_bias else {"use_bias": False})
                            | {
                                name: True
                                for name in ("batch_norm", "residual")
                                if getattr(layer, name)
                            }
                            for layer in v.variant.model.layers
                        ],
                        "optimizer": {
                            "name": type(v.variant.optimizer).__name__,
                            **asdict(v.variant.optimizer),
                        },
                        "input_scaler": str(v.variant.input_scaler),
                        "target_scaler": str(v.variant.target_scaler),
                    }
                    for v in result.variants
                ],
            },
        }
    )


def write_experiment_files(result: ExperimentResult, folder: Path) -> dict[str, Any]:
    """Write one experiment's files into `folder`; returns its summary."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = [p.name for p in experiment_figures(result, folder)]
    summary = experiment_summary(result, figures)
    write_json(folder / "summary.json", summary)
    write_json(folder / "config.json", _config(result))
    if result.variants:
        _write_models_csv(folder / "models.csv", summary)
        _write_history(result, folder / "history.npz")
    return summary
