"""The doctor's output folder: diagnosis.json, recommended.toml, figures and reports.

Written atomically like every run folder. `recommended.toml` is an experiment file
that `stablelearn run` accepts: the user's data and settings with the winning repair
(or the user's own configuration when no repair measurably beat it).
"""

import html
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import tomli_w

from stablelearn.diagnostics import Finding
from stablelearn.doctor.diagnose import (
    ALPHA,
    Diagnosis,
    Score,
    recommended_experiment,
    smallest_adjusted_p,
)
from stablelearn.doctor.lr_find import figure as range_figure
from stablelearn.doctor.repairs import repair_name
from stablelearn.doctor.search import LOOKS
from stablelearn.experiments.figures import experiment_figures
from stablelearn.figures import score_box_plot
from stablelearn.io import atomic_folder, json_safe, write_json
from stablelearn.rendering import embedded_image, html_page
from stablelearn.stats import format_p

SCHEMA_VERSION = 2


def headline(diagnosis: Diagnosis) -> str:
    """The first line: the cause, then the fix, then how sure."""
    cause = diagnosis.cause.headline
    if cause is None and diagnosis.recommended is None:
        return "No problem found: your configuration trains normally on this data."
    line = f"Cause: {cause.title.lower()}." if cause is not None else "No problem found."
    verdict, best = diagnosis.verdict, _recommended_score(diagnosis)
    if verdict is None or best is None:
        return line + " No repair measurably beat your configuration."
    base = diagnosis.scores[0]
    return (
        f"{line} Fix: {best.name}. How sure: better on {verdict.wins} of {verdict.n} seeds "
        f"(worse on {verdict.losses}), paired {format_p(verdict.p_value)}; median "
        f"{diagnosis.score_name} {best.median:.4g} vs {base.median:.4g}."
    )


def _recommended_score(diagnosis: Diagnosis) -> Score | None:
    return next((s for s in diagnosis.scores if s.recommended), None)


def summary_lines(diagnosis: Diagnosis) -> list[str]:
    """The printed diagnosis: the headline, the causal chain, the rows sampled, the
    findings (the cause's symptoms indented under it), the repair path, the budget."""
    lines = [headline(diagnosis)]
    chain = diagnosis.cause
    if chain.explained:
        lines.append(f"Why: {chain.sentence()}")
    sample = diagnosis.sample
    if sample is not None and sample.sampled:
        lines.append(sample.describe())
    if chain.headline is not None:
        lines.append(_finding_line(chain.headline))
        lines += ["  " + _finding_line(f) for f in chain.explained]
    lines += [_finding_line(f) for f in chain.other]
    lines += _range_lines(diagnosis)
    lines += _path_lines(diagnosis)
    if diagnosis.recommended is not None:
        best, base = _recommended_score(diagnosis), diagnosis.scores[0]
        lines.append(
            f"Recommended: {best.name}. Median {diagnosis.score_name} {best.median:.4g} "
            f"(p10 {best.p10:.4g}, p90 {best.p90:.4g}) vs {base.median:.4g} for your configuration; "
            f"{best.diverged}/{best.n} diverged vs {base.diverged}/{base.n}."
        )
        lines += [f"  In {diagnosis.framework}: {line}" for line in diagnosis.code()]
    elif len(diagnosis.scores) > 1:
        lines.append(
            "No repair measurably beat your configuration (a paired improvement with "
            f"Holm-adjusted p < {ALPHA / LOOKS:.3g} per look)."
        )
        repeats, tried = diagnosis.experiment.repeats * LOOKS, len(diagnosis.scores) - 1
        if smallest_adjusted_p(repeats, tried) >= ALPHA / LOOKS:
            lines.append(
                f"With at most {repeats} seeds per configuration and {tried} repairs no repair "
                "can reach significance after correction; use --repeats 10 or more."
            )
    lines.append(f"Search: {diagnosis.search.spend.describe()}.")
    return lines


def _finding_line(f: Finding) -> str:
    return f"[{f.severity}] {f.title}: {f.message}"


def _range_lines(diagnosis: Diagnosis) -> list[str]:
    """Each step's learning-rate range test, and the repairs a step's budget left out."""
    lines = []
    for step in diagnosis.search.steps:
        test = step.range_test
        if test is not None:
            lines.append(
                f"Range test, step {step.number} ({test.models} models, {len(test.seeds)} seeds "
                f"per rate): {test.summary()}"
            )
        if step.untried:
            lines.append(
                f"Step {step.number}: the budget left out {len(step.untried)} of the repairs "
                f"the findings call for ({', '.join(step.untried)})."
            )
    return lines


def _path_lines(diagnosis: Diagnosis) -> list[str]:
    """Each step of the search that found a winner, with its evidence."""
    lines = []
    for step in diagnosis.search.path:
        c = next(c for c in step.comparisons if c.trial is step.winner)
        lines.append(
            f"Step {step.number}: {c.trial.name} beats {c.versus.name} on {c.paired.wins} of "
            f"{c.paired.n} seeds (worse on {c.paired.losses}), Holm-adjusted "
            f"{format_p(c.p_holm)} over {len(step.comparisons)} repairs"
            + (f", after {step.looks} looks" if step.looks > 1 else "")
            + "."
        )
    return lines


def diagnosis_json(diagnosis: Diagnosis, toml_name: str) -> dict[str, Any]:
    e = diagnosis.experiment
    code = diagnosis.code()
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
            "cause": diagnosis.cause.to_json(),
            "headline": headline(diagnosis),
            "repair_path": [
                {
                    "step": step.number,
                    "name": step.winner.name,
                    "repairs": list(step.winner.candidate.path),
                    "versus": step.reference.name,
                    **_comparison_json(next(c for c in step.comparisons if c.trial is step.winner)),
                    "looks": step.looks,
                }
                for step in diagnosis.search.path
            ],
            "verdict": None if diagnosis.verdict is None else asdict(diagnosis.verdict),
            "remaining_findings": [finding_json(f) for f in diagnosis.search.findings]
            if diagnosis.recommended is not None
            else None,
            "budget": asdict(diagnosis.search.spend),
            "range_tests": [
                {"step": step.number, **step.range_test.to_json()}
                for step in diagnosis.search.steps
                if step.range_test is not None
            ],
            "untried": [
                {"step": step.number, "repairs": list(step.untried)}
                for step in diagnosis.search.steps
                if step.untried
            ],
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
                "framework": diagnosis.framework,
                "code": code,
                "keras_code": code if diagnosis.framework == "Keras" else [],
                "file": toml_name,
            },
            "summary": summary_lines(diagnosis),
        }
    )


def _comparison_json(c: Any) -> dict[str, Any]:
    return {"seeds": c.paired.n, "wins": c.paired.wins, "losses": c.paired.losses,
            "ties": c.paired.ties, "p_value": c.paired.p_value, "p_holm": c.p_holm}  # fmt: skip


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding as diagnosis.json holds it: the repairs by the names users see."""
    return {**finding.to_json(), "repairs": [repair_name(r) for r in finding.repairs]}


def _tables_of(diagnosis: Diagnosis, name: str) -> dict[str, Any] | None:
    return next((c.tables for c in diagnosis.tried if c.name == name), None)


def _scores_table_html(diagnosis: Diagnosis) -> str:
    rows = []
    for s in diagnosis.scores:
        mark = " class='holds'" if s.recommended else ""
        p = "-" if s.p_holm is None else f"{s.p_holm:.2g}"
        record = "-" if s.wins is None else f"{s.wins}/{s.losses}/{s.ties}"
        rows.append(
            f"<tr{mark}><td>{s.step}</td><td>{html.escape(s.name)}</td><td>{s.median:.4g}</td>"
            f"<td>{s.p10:.4g} to {s.p90:.4g}</td><td>{s.diverged}/{s.n}</td>"
            f"<td>{html.escape(s.versus or '-')}</td><td>{record}</td><td>{p}</td>"
            f"<td>{'yes' if s.beats else ''}</td></tr>"
        )
    return (
        f"<table><tr><th>step</th><th>configuration</th><th>median {html.escape(diagnosis.score_name)}</th>"
        "<th>p10 to p90</th><th>diverged</th><th>compared with</th><th>better/worse/same seeds</th>"
        "<th>Holm p</th><th>beats it</th></tr>" + "".join(rows) + "</table>"
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
    named = [(t.name, t.scores()) for t in diagnosis.search.trials()]
    figures.append(
        score_box_plot(
            [n for n, _ in named], [v for _, v in named], diagnosis.score_name,
            "Repairs on your data, held-out split", folder / "repairs.png",
        )
    )  # fmt: skip
    for step in diagnosis.search.steps:
        if step.range_test is not None:
            figures.append(
                range_figure(
                    step.range_test,
                    f"Learning-rate range test, step {step.number}",
                    folder / f"range_test_step{step.number}.png",
                )
            )
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
