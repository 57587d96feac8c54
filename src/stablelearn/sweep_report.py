"""A sweep's statistics and outputs: sweep.json, cells.csv, models.csv, figures, reports.

Per cell: the metric's median, mean, std and 10-90% range over the runs that did not
diverge, a bootstrap 95% CI of that median, the divergence count, and the success rate
(not diverged and past the success bar) with a Wilson 95% interval. Every other cell is
compared with the baseline cell by a two-sided Mann-Whitney U test on all runs, diverged
runs ranked worst, Holm-corrected over the comparisons, with effect sizes and one plain
sentence each. Every file is written atomically; the group files stay where the runner
saved them, so outputs can be rebuilt from them at any time.
"""

import csv
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.figures import sweep_figures
from stablelearn.io import json_safe, write_json_atomic, write_text_atomic
from stablelearn.report import _fmt, _html_page, _img
from stablelearn.stats import (
    bootstrap_median_ci,
    compare,
    describe_comparison,
    holm,
    summarize,
    wilson_interval,
)
from stablelearn.sweep import Sweep
from stablelearn.sweep_run import SweepResult

SWEEP_SCHEMA_VERSION = 1
ALPHA = 0.05


_METRIC_WORDS = {
    "accuracy": "accuracy",
    "loss": "loss",
    "rmse_original": "RMSE (target units)",
    "mse_original": "MSE (target units)",
    "mae_original": "MAE (target units)",
}


def _metric_label(metric: str) -> str:
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
    label = _metric_label(sweep.metric)
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
            "label": _metric_label(sweep.metric),
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


# --- files ----------------------------------------------------------------------------------


def _csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()


def cells_csv(summary: dict[str, Any]) -> str:
    axes = [a["name"] for a in summary["axes"]]
    stats = ["median", "ci_low", "ci_high", "mean", "std", "p10", "p90"]
    compared = {c["cell"]: c for c in summary["comparisons"]}
    rows = []
    for cell in summary["cells"]:
        comparison = compared.get(cell["label"], {})
        rows.append(
            {
                "cell": cell["label"],
                **cell["labels"],
                "n": cell["n"],
                "diverged": cell["diverged"],
                "success_k": cell["success"]["k"],
                "success_rate": cell["success"]["rate"],
                "success_ci_low": cell["success"]["ci_low"],
                "success_ci_high": cell["success"]["ci_high"],
                **{f"{summary['metric']['name']}_{s}": cell["metric"][s] for s in stats},
                "p_holm_vs_baseline": comparison.get("p_holm"),
                "p_better_vs_baseline": comparison.get("p_better"),
            }
        )
    columns = ["cell", *axes, "n", "diverged", "success_k", "success_rate", "success_ci_low",
               "success_ci_high", *(f"{summary['metric']['name']}_{s}" for s in stats),
               "p_holm_vs_baseline", "p_better_vs_baseline"]  # fmt: skip
    return _csv_text(columns, rows)


def models_csv(result: SweepResult) -> str:
    sweep = result.sweep
    score_columns = [f"train_{n}" for n in result.train_scores] + [
        f"test_{n}" for n in result.test_scores
    ]
    rows = []
    for i, c in enumerate(result.cells):
        cell = sweep.cells[int(c)]
        epoch = int(result.diverged_epoch[i])
        row = {
            "cell": cell.label,
            **{a.name: a.labels[list(a.values).index(cell.values[a.name])] for a in sweep.axes},
            "repeat": int(result.repeats[i]),
            "seed": int(result.seeds[i]),
            "diverged": epoch >= 1,
            "diverged_epoch": epoch if epoch >= 1 else None,
        }
        for column in score_columns:
            value = float(result.scores(column)[i])
            row[column] = value if np.isfinite(value) else None
        rows.append(row)
    columns = ["cell", *(a.name for a in sweep.axes), "repeat", "seed", "diverged",
               "diverged_epoch", *score_columns]  # fmt: skip
    return _csv_text(columns, rows)


def _rate(cell: dict[str, Any]) -> str:
    s = cell["success"]
    if s["ci_low"] is None:
        return "-"
    return f"{s['k']}/{s['n']} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"


def _table_rows(summary: dict[str, Any]) -> list[list[str]]:
    compared = {c["cell"]: c for c in summary["comparisons"]}
    rows = []
    for cell in summary["cells"]:
        m = cell["metric"]
        comparison = compared.get(cell["label"])
        findings = ", ".join(f"{k} {v}/{cell['n']}" for k, v in sorted(cell["findings"].items()))
        rows.append(
            [
                cell["label"] + (" (baseline)" if comparison is None else ""),
                f"{cell['diverged']}/{cell['n']}",
                _rate(cell),
                _fmt(m["median"]),
                f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]",
                f"{_fmt(m['mean'])} ({_fmt(m['std'])})",
                _fmt(comparison["p_holm"]) if comparison else "",
                _fmt(comparison["p_better"]) if comparison else "",
                findings or "-",
            ]
        )
    return rows


_HEADER = ["cell", "diverged", "success [95% CI]", "median", "median 95% CI", "mean (std)",
           "Holm p vs baseline", "P(better than baseline)", "detectors fired"]  # fmt: skip


def _timing_line(summary: dict[str, Any]) -> str:
    t = summary["timing"]
    resumed = f", {t['groups_resumed']} loaded from an earlier run" if t["groups_resumed"] else ""
    return (
        f"{len(summary['cells'])} cells x {summary['repeats']} repeats = {t['models']} models in "
        f"{t['groups']} compiled groups{resumed}; backend {t['backend']}; wall {t['wall_s']:.1f} s, "
        f"compile {t['compile_s']:.1f} s, train {t['train_s']:.1f} s "
        f"({t['train_s_per_cell']:.2f} s of training per cell)."
    )


def _notable(summary: dict[str, Any]) -> list[str]:
    significant = [c for c in summary["comparisons"] if c["significant"]]
    return [c["sentence"] for c in significant] or [
        "No cell differs detectably from the baseline after Holm correction."
    ]


def report_markdown(summary: dict[str, Any], figures: Sequence[str]) -> str:
    m = summary["metric"]
    lines = [
        f"# {summary['title']}",
        "",
        summary["description"],
        "",
        f"Metric: **{m['label']}** ({'higher' if m['higher_is_better'] else 'lower'} is better). "
        f"Success: {m['success']}. Baseline: {summary['baseline']}.",
        "",
        _timing_line(summary),
        "",
        "## Differences from the baseline (Mann-Whitney U, diverged runs ranked worst, Holm-corrected)",
        "",
        *[f"- {s}" for s in _notable(summary)],
        "",
        "## Cells",
        "",
        "| " + " | ".join(_HEADER) + " |",
        "|" + "---|" * len(_HEADER),
        *["| " + " | ".join(row) + " |" for row in _table_rows(summary)],
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
    ]
    return "\n".join(lines)


def report_html(summary: dict[str, Any], folder: Path, figures: Sequence[str]) -> str:
    m = summary["metric"]
    header = "".join(f"<th>{html.escape(h)}</th>" for h in _HEADER)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in _table_rows(summary)
    )
    body = [
        f"<h1>{html.escape(summary['title'])}</h1>",
        f"<p>{html.escape(summary['description'])}</p>",
        f"<p>Metric: <b>{html.escape(m['label'])}</b> ({'higher' if m['higher_is_better'] else 'lower'} "
        f"is better). Success: {html.escape(m['success'])}. Baseline: {html.escape(summary['baseline'])}.</p>",
        f"<p>{html.escape(_timing_line(summary))}</p>",
        "<h2>Differences from the baseline</h2><p>Two-sided Mann-Whitney U on all runs, diverged "
        "runs ranked worst, Holm-corrected over all comparisons.</p><ul>",
        *[f"<li>{html.escape(s)}</li>" for s in _notable(summary)],
        "</ul>",
        *[_img(folder / name) for name in figures],
        f"<h2>Cells</h2><table><tr>{header}</tr>{rows}</table>",
    ]
    return _html_page(summary["title"], "\n".join(body))


def write_sweep_outputs(result: SweepResult, folder: Path) -> dict[str, Any]:
    """sweep.json, cells.csv, models.csv, figures and reports, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = sweep_summary(result)
    figures_folder = folder / ".figures-partial"
    figures_folder.mkdir(exist_ok=True)
    names = []
    for path in sweep_figures(summary, figures_folder):
        path.replace(folder / path.name)  # a rename within one folder: atomic
        names.append(path.name)
    figures_folder.rmdir()
    summary["figures"] = names
    write_text_atomic(folder / "cells.csv", cells_csv(summary))
    write_text_atomic(folder / "models.csv", models_csv(result))
    write_text_atomic(folder / "report.md", report_markdown(summary, names))
    write_text_atomic(folder / "report.html", report_html(summary, folder, names))
    write_json_atomic(folder / "sweep.json", summary)
    return summary
