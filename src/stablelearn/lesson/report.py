"""The lesson's run folder: every experiment's files, claims.json, index.json and one
report (report.md and a self-contained report.html) with the claims table first."""

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stablelearn.experiments.outputs import SCHEMA_VERSION, experiment_html, experiment_markdown
from stablelearn.experiments.runner import ExperimentResult
from stablelearn.io import json_safe, write_json
from stablelearn.lesson.claims import ClaimResult
from stablelearn.rendering import format_number, html_page, markdown_table


def _measured_text(claim: ClaimResult) -> str:
    return ", ".join(
        f"{k}={format_number(v)}" for k, v in claim.measured.items() if not isinstance(v, dict)
    )


def claims_markdown(claims: Sequence[ClaimResult]) -> list[str]:
    rows = [[c.claim, f"**{c.verdict}**", _measured_text(c)] for c in claims]
    return markdown_table(["claim", "verdict", "measured"], rows)


def claims_html(claims: Sequence[ClaimResult]) -> str:
    rows = []
    for c in claims:
        css = "holds" if c.verdict.startswith("holds") else "fails"
        rows.append(
            f"<tr><td>{html.escape(c.claim)}</td><td class='{css}'><b>{html.escape(c.verdict)}</b></td><td>{html.escape(_measured_text(c))}</td></tr>"
        )
    return (
        "<h2>The lesson's claims</h2><table><tr><th>claim</th><th>verdict</th><th>measured</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def write_reports(
    folder: Path,
    title: str,
    intro: str,
    claims: Sequence[ClaimResult],
    parts: Sequence[tuple[dict[str, Any], str]],
) -> None:
    """report.md and a self-contained report.html; parts are (summary, subfolder) pairs."""
    md = [f"# {title}", "", intro, ""]
    body = [f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    if claims:
        md += ["## The lesson's claims", "", *claims_markdown(claims), ""]
        body.append(claims_html(claims))
    for summary, subfolder in parts:
        md += experiment_markdown(summary, prefix=f"{subfolder}/" if subfolder else "")
        body.append(experiment_html(summary, folder / subfolder if subfolder else folder))
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")
    (folder / "report.html").write_text(html_page(title, "\n".join(body)), encoding="utf-8")


def write_index(
    folder: Path,
    results: Sequence[ExperimentResult],
    summaries: Sequence[dict[str, Any]],
    claims: Sequence[ClaimResult],
    wall_s: float,
    combined: bool,
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
    if combined:
        title = "stablelearn: the lesson reproduced"
        intro = f"Every case study of the lesson: {len(results)} experiments in {wall_s:.1f} s."
        parts = [(s, s["experiment"]["id"]) for s in summaries]
    else:
        title = summaries[0]["experiment"]["title"]
        intro = f"Run in {wall_s:.1f} s."
        parts = [(summaries[0], "")]
    write_reports(folder, title, intro, claims, parts)
