"""The doctor's output folder: diagnosis.json, recommended.toml, figures and reports.

Written atomically like every run folder. `recommended.toml` is an experiment file
that `stablelearn run` accepts: the user's data and settings with the winning repair
(or the user's own configuration when no repair measurably beat it).
"""

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
from stablelearn.doctor.page import doctor_report
from stablelearn.doctor.repairs import repair_name
from stablelearn.doctor.search import LOOKS
from stablelearn.io import atomic_folder, json_safe, write_json
from stablelearn.report import write_report
from stablelearn.stats import format_p

# diagnosis.json's layout: 3 added `nan_origin` (2: cause, repair_path, verdict, budget)
SCHEMA_VERSION = 3


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
            "nan_origin": diagnosis.nan_origin(),
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
    write_report(doctor_report(diagnosis, folder, target, toml_name), folder)
