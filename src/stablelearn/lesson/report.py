"""The lesson's run folder: every experiment's files, claims.json, index.json and one
report (report.md and a self-contained report.html) with the claims table first."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stablelearn.experiments.outputs import SCHEMA_VERSION
from stablelearn.experiments.report import experiment_section, metric_title
from stablelearn.experiments.runner import ExperimentResult
from stablelearn.io import json_safe, write_json
from stablelearn.lesson.claims import ClaimResult
from stablelearn.report import (
    Callout,
    Cell,
    Facts,
    Report,
    Section,
    Table,
    Text,
    Verdict,
    write_report,
)
from stablelearn.report.document import format_number
from stablelearn.report.facts import run_facts
from stablelearn.stats import summarize

# measured fields that restate the verdict or are the statistics' internals
_UNSHOWN = {"k", "n", "bar", "u", "rank_biserial", "n_candidate", "n_baseline",
            "median_candidate", "median_baseline", "median_difference", "p_better", "p_a_less"}  # fmt: skip
_WORDS = {"mse": "MSE", "rmse": "RMSE", "p10": "p10", "p90": "p90", "ci95": "95% CI"}


def verdict_of(claim: ClaimResult) -> Verdict:
    """holds / holds in k of n / does not hold / not measured, as a badge."""
    v = claim.verdict
    if v == "holds":
        return Verdict("holds", v)
    if v.startswith("holds in"):
        return Verdict("partial", v)
    if v == "does not hold":
        return Verdict("fails", v)
    return Verdict("unmeasured", v)


def _label(key: str) -> str:
    words = [_WORDS.get(w, w) for w in key.split("_")]
    if words and words[-1] == "median":
        words = ["median", *words[:-1]]
    text = " ".join(words).replace("first epoch loss", "epoch-1 loss")
    return text.replace(" original", " (original units)")


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_number(v, 3) for v in value) + "]"
    return format_number(value, 3)


def measured_text(claim: ClaimResult) -> str:
    """What was measured, in a few words: 'median test MSE 0.0063, diverged 0'; a
    comparison's groups as 'unscaled: median 0.0076 [95% CI 0.0046, 0.0096]'."""
    for key in ("summary", "sentence"):  # a comparison's own sentence says it best
        if isinstance(claim.measured.get(key), str):
            return claim.measured[key]
    parts = []
    for key, value in claim.measured.items():
        if key in _UNSHOWN:
            continue
        if isinstance(value, dict) and "sentence" in value:
            parts.append(str(value["sentence"]))
        elif isinstance(value, dict):
            ci = value.get("median_ci95")
            spread = f" [95% CI {_value(ci[0])}, {_value(ci[1])}]" if ci else ""
            parts.append(f"{key}: median {_value(value.get('median'))}{spread}")
        else:
            parts.append(f"{_label(key)} {_value(value)}")
    return "; ".join(parts) or "-"


def claims_table(claims: Sequence[ClaimResult]) -> Table:
    rows = tuple(
        (
            Cell(c.claim),
            Cell("", _verdict_rank(c), verdict=verdict_of(c)),
            Cell(str(c.measured.get("bar", "-"))),
            Cell(measured_text(c)),
            Cell(", ".join(f"[`{e}`](#{e})" for e in c.experiments)),
        )
        for c in claims
    )
    return Table(
        "The lesson's claims, each checked over every repeat",
        ("claim", "verdict", "criterion", "measured", "experiments"),
        rows,
    )


def _verdict_rank(claim: ClaimResult) -> float:
    """Sorts holds, holds in k of n (by k/n), does not hold, not measured."""
    kind = verdict_of(claim).kind
    k, n = claim.measured.get("k"), claim.measured.get("n")
    if kind == "partial" and isinstance(k, int) and isinstance(n, int) and n:
        return 1.0 - k / n
    return {"holds": 0.0, "partial": 0.5, "fails": 1.0, "unmeasured": 2.0}[kind]


def claims_headline(claims: Sequence[ClaimResult]) -> Callout:
    kinds = [verdict_of(c).kind for c in claims]
    counts = {k: kinds.count(k) for k in ("holds", "partial", "fails", "unmeasured")}
    title = f"{counts['holds']} of {len(claims)} claims of the lesson hold"
    extra = [f"{counts['partial']} hold in only some repeats"] if counts["partial"] else []
    extra += [f"{counts['fails']} do not hold"] if counts["fails"] else []
    extra += [f"{counts['unmeasured']} could not be measured"] if counts["unmeasured"] else []
    if extra:
        title += "; " + ", ".join(extra)
    lines = tuple(
        f"{verdict_of(c).symbol} {c.claim} ({c.verdict})"
        for c in claims
        if verdict_of(c).kind != "holds"
    )
    kind = "good" if counts["holds"] == len(claims) else "warning"
    return Callout(kind, title + ".", lines)


def _runs_table(results: Sequence[ExperimentResult]) -> Table:
    rows = []
    for r in results:
        e = r.experiment
        trained = bool(r.variants)
        rows.append((
            Cell(f"[`{e.id}`](#{e.id})"),
            Cell(e.section),
            Cell(", ".join(v.name for v in r.variants) or "data only"),
            Cell(str(e.config.epochs) if trained else "-", e.config.epochs if trained else None),
            Cell(str(e.repeats) if trained else "-", e.repeats if trained else None),
            Cell(str(sum(v.result.n_models for v in r.variants)),
                 float(sum(v.result.n_models for v in r.variants))),
            Cell(f"{r.wall_s:.1f}", r.wall_s),
        ))  # fmt: skip
    return Table("Experiments run", ("experiment", "lesson section", "variants", "epochs",
                 "repeats", "models", "seconds"), tuple(rows), numeric=frozenset({3, 4, 5, 6}))  # fmt: skip


def build_report(
    title: str,
    claims: Sequence[ClaimResult],
    parts: Sequence[Section],
    results: Sequence[ExperimentResult],
    wall_s: float,
) -> Report:
    models = sum(v.result.n_models for r in results for v in r.variants)
    facts = (*run_facts(), ("models trained", f"{models} in {len(results)} experiments"),
             ("wall time", f"{wall_s:.1f} s"))  # fmt: skip
    if claims:
        headline = (claims_headline(claims), claims_table(claims))
    elif len(results) == 1 and results[0].variants:
        headline = (_experiment_headline(results[0]),)
    else:
        headline = (Text(f"{len(results)} experiments, no claims checked."),)
    return Report(
        title,
        headline,
        (Facts(facts), _runs_table(results)),
        tuple(parts),
        notes=("Written by stablelearn; figures as PNG files beside this report.",),
    )


def _experiment_headline(result: ExperimentResult) -> Callout:
    """A run of one experiment: each variant's median (over its finite scores, as
    summary.json's) and divergences, in variant order."""
    title = metric_title(result)
    lines = []
    for v in result.variants:
        median = format_number(summarize(v.result.test_scores[result.metric])["median"])
        lines.append(f"`{v.name}`: median {title} {median}, diverged "
                     f"{int(v.result.diverged.sum())}/{v.result.n_models}")  # fmt: skip
    any_bad = any(v.result.diverged.any() for v in result.variants)
    return Callout("warning" if any_bad else "neutral", result.experiment.title, tuple(lines))


def write_reports(
    folder: Path,
    title: str,
    claims: Sequence[ClaimResult],
    parts: Sequence[Section],
    results: Sequence[ExperimentResult],
    wall_s: float,
) -> None:
    """report.md and a self-contained report.html."""
    write_report(build_report(title, claims, parts, results, wall_s), folder)


def write_index(
    folder: Path,
    results: Sequence[ExperimentResult],
    summaries: Sequence[dict[str, Any]],
    claims: Sequence[ClaimResult],
    wall_s: float,
    combined: bool,
    sections: Sequence[Section] | None = None,
) -> None:
    """claims.json, index.json and the reports of a finished run folder."""
    write_json(
        folder / "claims.json",
        json_safe({"schema_version": SCHEMA_VERSION, "claims": [c.to_json() for c in claims]}),
    )
    index = {
        "schema_version": SCHEMA_VERSION,
        "experiments": [
            {
                "id": s["experiment"]["id"],
                "folder": s["experiment"]["id"] if combined else ".",
                "timing": s["timing"],
            }
            for s in summaries
        ],
        "wall_s": wall_s,
    }
    write_json(folder / "index.json", json_safe(index))
    if sections is None:
        sections = [
            experiment_section(r, s, folder / s["experiment"]["id"] if combined else folder)
            for r, s in zip(results, summaries, strict=True)
        ]
    if combined:
        title = "stablelearn: the lesson reproduced"
    else:
        title = summaries[0]["experiment"]["title"]
    write_reports(folder, title, claims, sections, results, wall_s)
