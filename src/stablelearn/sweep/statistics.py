"""A sweep's statistics and outputs: sweep.json, cells.csv, models.csv, figures, reports.

Per cell: the metric's median, mean, std and 10-90% range over the runs that did not
diverge, a bootstrap 95% CI of that median, the divergence count, and the success rate
(not diverged and past the success bar) with a Wilson 95% interval. Every other cell is
compared with the baseline cell by a two-sided Mann-Whitney U test on all runs, diverged
runs ranked worst, Holm-corrected over the comparisons, with effect sizes and one plain
sentence each. Every file is written atomically; the group files stay where the runner
saved them, so outputs can be rebuilt from them at any time.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from stablelearn.io import json_safe
from stablelearn.stats import (
    bootstrap_median_ci,
    compare,
    describe_comparison,
    holm,
    summarize,
    wilson_interval,
)
from stablelearn.sweep.run import SweepResult
from stablelearn.sweep.spec import Sweep

SWEEP_SCHEMA_VERSION = 1
ALPHA = 0.05


_METRIC_WORDS = {
    "accuracy": "accuracy",
    "loss": "loss",
    "rmse_original": "RMSE (target units)",
    "mse_original": "MSE (target units)",
    "mae_original": "MAE (target units)",
}


def metric_label(metric: str) -> str:
    """test_rmse_original -> "test RMSE (target units)"."""
    split, _, name = metric.partition("_")
    return f"{split} {_METRIC_WORDS[name]}"


def _axis_json(sweep: Sweep) -> list[dict[str, Any]]:
    return [
        {
            "name": axis.name,
            "field": axis.field,
            "labels": list(axis.labels),
            "values": [
                v if axis.field else label
                for v, label in zip(axis.values, axis.labels, strict=True)
            ],
            "numeric": axis.numeric,
        }
        for axis in sweep.axes
    ]


def cell_statistics(result: SweepResult) -> list[dict[str, Any]]:
    """One entry per cell: its axis values, run counts, metric summary and success rate."""
    sweep = result.sweep
    scores = result.scores(sweep.metric)
    success = sweep.success.passed(scores)
    cells = []
    for cell in sweep.cells:
        mask = result.cell_mask(cell.index)
        values = scores[mask]
        diverged_epochs = result.diverged_epoch[mask]
        n = int(mask.sum())
        k = int(success[mask].sum())
        ci_low, ci_high = bootstrap_median_ci(values, seed=sweep.seed)
        rate_low, rate_high = wilson_interval(k, n)
        diverged = int((diverged_epochs >= 1).sum())
        summary = summarize(values)
        cells.append(
            {
                "index": cell.index,
                "label": cell.label,
                "values": dict(cell.values),
                "labels": {
                    axis.name: axis.labels[list(axis.values).index(cell.values[axis.name])]
                    for axis in sweep.axes
                },
                "n": n,
                "diverged": diverged,
                "diverged_epoch_median": (
                    float(np.median(diverged_epochs[diverged_epochs >= 1])) if diverged else None
                ),
                "metric": {
                    **{k_: summary[k_] for k_ in ("median", "mean", "std", "p10", "p90")},
                    "ci_low": ci_low,
                    "ci_high": ci_high,
                },
                "success": {
                    "k": k,
                    "n": n,
                    "rate": k / n if n else 0.0,
                    "ci_low": rate_low,
                    "ci_high": rate_high,
                },
                "findings": result.findings.get(cell.index, {}),
            }
        )
    return cells


def comparisons(result: SweepResult, cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every cell against the baseline cell, Holm-corrected, with one sentence each."""
    sweep = result.sweep
    scores = result.scores(sweep.metric)
    base = sweep.cells[sweep.baseline]
    base_mask = result.cell_mask(base.index)
    entries = []
    for cell in sweep.cells:
        if cell.index == base.index:
            continue
        mask = result.cell_mask(cell.index)
        entries.append(
            {
                "cell": cell.label,
                "baseline": base.label,
                **compare(scores[mask], scores[base_mask], sweep.higher_is_better),
                "diverged": [cells[cell.index]["diverged"], cells[base.index]["diverged"]],
            }
        )
    adjusted = holm([e["p_value"] for e in entries])
    label = metric_label(sweep.metric)
    for entry, p in zip(entries, adjusted, strict=True):
        entry["p_holm"] = p
        entry["significant"] = p is not None and p < ALPHA
        entry["sentence"] = describe_comparison(
            entry["cell"], entry["baseline"], label, entry, p, ALPHA, tuple(entry["diverged"])
        )
    return entries


def sweep_summary(result: SweepResult) -> dict[str, Any]:
    """The content of sweep.json (schema: stablelearn/schemas/sweep.schema.json)."""
    sweep = result.sweep
    cells = cell_statistics(result)
    first = sweep.cells[0].experiment
    n_cells = len(sweep.cells)
    return {
        "schema_version": SWEEP_SCHEMA_VERSION,
        "id": sweep.id,
        "title": sweep.title,
        "description": sweep.description,
        "source": sweep.source,
        "dataset": first.dataset,
        "task": first.data.task,
        "repeats": sweep.repeats,
        "seed": sweep.seed,
        "axes": _axis_json(sweep),
        "metric": {
            "name": sweep.metric,
            "label": metric_label(sweep.metric),
            "higher_is_better": sweep.higher_is_better,
            "success": sweep.success.describe(sweep.metric),
            "success_threshold": sweep.success.threshold,
            "success_direction": sweep.success.direction,
        },
        "baseline": sweep.cells[sweep.baseline].label,
        "cells": cells,
        "comparisons": comparisons(result, cells),
        "timing": {
            "backend": result.backend,
            "wall_s": result.wall_s,
            "compile_s": result.compile_s,
            "train_s": result.train_s,
            "groups": result.groups,
            "groups_resumed": result.groups_resumed,
            "models": int(result.cells.size),
            "train_s_per_cell": result.train_s / n_cells,
        },
        "config": json_safe(dict(sweep.raw)),
        "figures": [],  # file names, filled in by write_sweep_outputs
    }
