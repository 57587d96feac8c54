"""A Report as Markdown: the same headline, what was run and evidence as the HTML page,
with each chart's static PNG twin (or only its caption when it has none)."""

import os
from pathlib import Path

from stablelearn.report.document import (
    Alert,
    Block,
    Bullets,
    Callout,
    Chart,
    Code,
    Details,
    Facts,
    Image,
    Report,
    Section,
    Table,
    Text,
)


def render_markdown(report: Report, folder: Path) -> str:
    """The Markdown report; figure links are relative to `folder`, where it is written."""
    sections = report.all_sections()
    lines = [f"# {report.title}", ""]
    if report.subtitle:
        lines += [report.subtitle, ""]
    lines += _section(sections[0], folder, 2)
    lines += ["Contents:", ""] + [f"- [{s.title}](#{s.id})" for s in sections[1:]] + [""]
    for s in sections[1:]:
        lines += _section(s, folder, 2)
    lines += [f"_{line}_" for line in report.notes]
    return "\n".join(lines).rstrip() + "\n"


def _section(section: Section, folder: Path, level: int) -> list[str]:
    lines = [f"{'#' * level} {section.title}", ""]
    for block in section.blocks:
        lines += _block(block, folder)
    for sub in section.subsections:
        lines += _section(sub, folder, min(level + 1, 4))
    return lines


def _link(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _block(block: Block, folder: Path) -> list[str]:
    match block:
        case Text(text):
            return [text, ""]
        case Bullets(items):
            return [*(f"- {i}" for i in items), ""]
        case Callout(_, title, extra):
            return [f"> **{title}**", *(f"> - {line}" for line in extra), ""]
        case Alert():
            lines = [f"- {block.symbol} **{block.severity}: {block.title}:** {block.message}", ""]
            for b in block.evidence:
                lines += ["  " + line if line else "" for line in _block(b, folder)]
            return lines
        case Facts(pairs):
            return [*(f"- **{k}:** {v}" for k, v in pairs), ""]
        case Code(code, caption):
            return ([f"_{caption}_", ""] if caption else []) + ["```", *code, "```", ""]
        case Table(caption, columns, rows, highlight):
            marks = ["---:" if j in block.numeric else "---" for j in range(len(columns))]
            body = [
                "| "
                + " | ".join(
                    _cell(f"{c.verdict.symbol} {c.verdict.label}" if c.verdict else c.text)
                    + (" ★" if j == 0 and i in highlight else "")
                    for j, c in enumerate(row)
                )
                + " |"
                for i, row in enumerate(rows)
            ]
            return [
                f"_{caption}_",
                "",
                "| " + " | ".join(_cell(c) for c in columns) + " |",
                "|" + "|".join(marks) + "|",
                *body,
                "",
            ]
        case Chart(_, alt, caption, png):
            if png is None:
                return [f"_{caption or alt} (interactive chart in report.html)_", ""]
            return [f"![{alt}]({_link(png, folder)})", *([f"_{caption}_"] if caption else []), ""]
        case Image(path, alt, caption):
            return [f"![{alt}]({_link(path, folder)})", *([f"_{caption}_"] if caption else []), ""]
        case Details(summary, inner):
            lines = [f"**{summary}**", ""]
            for b in inner:
                lines += _block(b, folder)
            return lines
    raise TypeError(f"not a report block: {block!r}")
