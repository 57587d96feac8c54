"""The doctor's output folder: diagnosis.json, recommended.toml, figures and reports.

Written atomically like every run folder. `recommended.toml` is an experiment file
that `stablelearn run` accepts: the user's data and settings with the winning repair
(or the user's own configuration when no repair measurably beat it).
"""

import html
import json
import os
from pathlib import Path
from typing import Any

import tomli_w

from stablelearn.diagnostics import Finding
from stablelearn.doctor.diagnose import (
    ALPHA,
    Diagnosis,
    held_out_scores,
    recommended_experiment,
    smallest_adjusted_p,
)
from stablelearn.doctor.repairs import repair_name
from stablelearn.experiments.figures import experiment_figures
from stablelearn.figures import score_box_plot
from stablelearn.io import atomic_folder, json_safe, write_json
from stablelearn.rendering import embedded_image, html_page

SCHEMA_VERSION = 1


def summary_lines(diagnosis: Diagnosis) -> list[str]:
    """The short printed diagnosis: the rows it sampled, if any, findings with their
    evidence, then the verdict."""
    sample = diagnosis.sample
    lines = [sample.describe()] if sample is not None and sample.sampled else []
    for f in diagnosis.findings:
        lines.append(f"[{f.severity}] {f.title}: {f.message}")
    if not diagnosis.findings:
        lines.append("No problem found: your configuration trains normally on this data.")
    base = diagnosis.scores[0]
    if diagnosis.recommended is not None:
        best = next(s for s in diagnosis.scores if s.name == diagnosis.recommended.name)
        lines.append(
            f"Recommended: {best.name}. Median {diagnosis.score_name} {best.median:.4g} "
            f"(p10 {best.p10:.4g}, p90 {best.p90:.4g}) vs {base.median:.4g} for your configuration; "
            f"Holm-adjusted p = {best.p_holm:.2g}, {best.n} seeds each, "
            f"{best.diverged}/{best.n} diverged vs {base.diverged}/{base.n}."
        )
        lines += [f"  In Keras: {line}" for line in diagnosis.keras_code()]
    elif len(diagnosis.scores) > 1:
        lines.append(
            "No repair measurably beat your configuration (Holm-adjusted p < 0.05 and a better median)."
        )
        repeats, tried = diagnosis.experiment.repeats, len(diagnosis.scores) - 1
        if smallest_adjusted_p(repeats, tried) >= ALPHA:
            lines.append(
                f"With {repeats} seeds per configuration and {tried} repairs no repair can reach "
                "significance after correction; use --repeats 10 or more."
            )
    return lines


def diagnosis_json(diagnosis: Diagnosis, toml_name: str) -> dict[str, Any]:
    e = diagnosis.experiment
    return json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "data": {
                "dataset": e.dataset,
                "task": e.data.task,
                "rows": len(e.data.y),
                "features": list(e.data.feature_names),
                "dropped_columns": list(e.dropped_columns),
                "rows_used": None if diagnosis.sample is None else diagnosis.sample.to_json(),
            },
            "configuration": diagnosis.baseline_tables,
            "repeats": e.repeats,
            "epochs": e.config.epochs,
            "findings": [finding_json(f) for f in diagnosis.findings],
            "score": {"name": diagnosis.score_name, "higher_is_better": diagnosis.higher_is_better},
            "candidates": [
                {**s.to_json(), "tables": None if i == 0 else _tables_of(diagnosis, s.name)}
                for i, s in enumerate(diagnosis.scores)
            ],
            "recommended": None
            if diagnosis.recommended is None
            else {
                "name": diagnosis.recommended.name,
                "tables": diagnosis.recommended.tables,
                "keras_code": diagnosis.keras_code(),
                "file": toml_name,
            },
            "summary": summary_lines(diagnosis),
        }
    )


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding as diagnosis.json holds it: the repairs by the names users see."""
    return {**finding.to_json(), "repairs": [repair_name(r) for r in finding.repairs]}


def _tables_of(diagnosis: Diagnosis, name: str) -> dict[str, Any] | None:
    return next((c.tables for c in diagnosis.tried if c.name == name), None)


def _scores_table_html(diagnosis: Diagnosis) -> str:
    rows = []
    for s in diagnosis.scores:
        mark = " class='holds'" if s.beats_baseline else ""
        p = "-" if s.p_holm is None else f"{s.p_holm:.2g}"
        rows.append(
            f"<tr{mark}><td>{html.escape(s.name)}</td><td>{s.median:.4g}</td><td>{s.p10:.4g} to {s.p90:.4g}</td>"
            f"<td>{s.diverged}/{s.n}</td><td>{p}</td><td>{'yes' if s.beats_baseline else ''}</td></tr>"
        )
    return (
        f"<table><tr><th>configuration</th><th>median {html.escape(diagnosis.score_name)}</th><th>p10 to p90</th>"
        "<th>diverged</th><th>Holm p vs yours</th><th>beats yours</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def write_doctor(diagnosis: Diagnosis, target: Path, dataset_path: Path) -> Path:
    """Write the doctor's folder atomically; `dataset_path` is the user's data file."""
    with atomic_folder(target) as folder:
        write_doctor_files(diagnosis, folder, target, dataset_path)
    return target


def write_doctor_files(
    diagnosis: Diagnosis, folder: Path, target: Path, dataset_path: Path
) -> None:
    """Write the doctor's files into `folder`, the partial folder that becomes `target`
    (the command opens it before training; see stablelearn.io.atomic_folder)."""
    relative = os.path.relpath(dataset_path.resolve(), target.resolve())
    toml_name = "recommended.toml"
    (folder / toml_name).write_text(
        tomli_w.dumps(recommended_experiment(diagnosis, relative)), encoding="utf-8"
    )
    doc = diagnosis_json(diagnosis, toml_name)
    write_json(folder / "diagnosis.json", doc)
    figures = experiment_figures(diagnosis.baseline, folder)
    named = [
        (s.name, held_out_scores(v))
        for s, v in zip(diagnosis.scores, _all_variants(diagnosis), strict=True)
    ]
    figures.append(
        score_box_plot(
            [n for n, _ in named], [v for _, v in named], diagnosis.score_name,
            "Repairs on your data, held-out split", folder / "repairs.png",
        )
    )  # fmt: skip
    title = f"stablelearn doctor: {diagnosis.experiment.data.name}"
    findings = "".join(
        f"<li><b>{html.escape(f.title)}</b> ({f.severity}): {html.escape(f.message)}"
        f"<br><small>{html.escape(json.dumps(json_safe(f.evidence))[:600])}</small></li>"
        for f in diagnosis.findings
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<pre>" + html.escape("\n".join(summary_lines(diagnosis))) + "</pre>",
        f"<h2>Findings</h2><ul>{findings or '<li>none</li>'}</ul>",
        "<h2>Repairs tried</h2>",
        _scores_table_html(diagnosis),
        *[embedded_image(p) for p in figures],
    ]
    (folder / "report.html").write_text(html_page(title, "\n".join(body)), encoding="utf-8")
    md = [f"# {title}", "", "```", *summary_lines(diagnosis), "```", ""]
    md += [f"![{p.stem}]({p.name})" for p in figures]
    (folder / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")


def _all_variants(diagnosis: Diagnosis) -> list[Any]:
    variants = [diagnosis.baseline.variants[0]]
    if diagnosis.candidates is not None:
        variants += list(diagnosis.candidates.variants)
    return variants
