"""A sweep's files: sweep.json, cells.csv, models.csv, figures and reports, each
written atomically; the group files stay where the runner saved them, so outputs can
be rebuilt from them at any time."""

import csv
import html
import io
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.io import write_json_atomic, write_text_atomic
from stablelearn.rendering import embedded_image, format_number, html_page, markdown_table
from stablelearn.results import divergence_record
from stablelearn.sweep.figures import sweep_figures
from stablelearn.sweep.run import SweepResult
from stablelearn.sweep.statistics import sweep_summary
from stablelearn.sweep.store import FIGURES_PARTIAL


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
        row = {
            "cell": cell.label,
            **{a.name: a.labels[list(a.values).index(cell.values[a.name])] for a in sweep.axes},
            "repeat": int(result.repeats[i]),
            "seed": int(result.seeds[i]),
            **divergence_record(result.diverged_epoch[i]),
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
                format_number(m["median"]),
                f"[{format_number(m['ci_low'])}, {format_number(m['ci_high'])}]",
                f"{format_number(m['mean'])} ({format_number(m['std'])})",
                format_number(comparison["p_holm"]) if comparison else "",
                format_number(comparison["p_better"]) if comparison else "",
                findings or "-",
            ]
        )
    return rows


_HEADER = ["cell", "diverged", "success [95% CI]", "median", "median 95% CI", "mean (std)",
           "Holm p vs baseline", "P(better than baseline)", "detectors fired"]  # fmt: skip


def timing_line(summary: dict[str, Any]) -> str:
    t = summary["timing"]
    resumed = f", {t['groups_resumed']} loaded from an earlier run" if t["groups_resumed"] else ""
    return (
        f"{len(summary['cells'])} cells x {summary['repeats']} repeats = {t['models']} models in "
        f"{t['groups']} compiled groups{resumed}; backend {t['backend']}; wall {t['wall_s']:.1f} s, "
        f"compile {t['compile_s']:.1f} s, train {t['train_s']:.1f} s "
        f"({t['train_s_per_cell']:.2f} s of training per cell)."
    )


def notable_sentences(summary: dict[str, Any]) -> list[str]:
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
        timing_line(summary),
        "",
        "## Differences from the baseline (Mann-Whitney U, diverged runs ranked worst, Holm-corrected)",
        "",
        *[f"- {s}" for s in notable_sentences(summary)],
        "",
        "## Cells",
        "",
        *markdown_table(_HEADER, _table_rows(summary)),
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
        f"<p>{html.escape(timing_line(summary))}</p>",
        "<h2>Differences from the baseline</h2><p>Two-sided Mann-Whitney U on all runs, diverged "
        "runs ranked worst, Holm-corrected over all comparisons.</p><ul>",
        *[f"<li>{html.escape(s)}</li>" for s in notable_sentences(summary)],
        "</ul>",
        *[embedded_image(folder / name) for name in figures],
        f"<h2>Cells</h2><table><tr>{header}</tr>{rows}</table>",
    ]
    return html_page(summary["title"], "\n".join(body))


def write_sweep_outputs(result: SweepResult, folder: Path) -> dict[str, Any]:
    """sweep.json, cells.csv, models.csv, figures and reports, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = sweep_summary(result)
    figures_folder = folder / FIGURES_PARTIAL
    # a killed run's half-drawn figures (the caller holds the lock: see open_sweep_folder)
    shutil.rmtree(figures_folder, ignore_errors=True)
    figures_folder.mkdir()
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
