"""One report design for every command: typed blocks (document), rendered to a
self-contained, interactive HTML page (html) and to Markdown (markdown), with charts
built by `charts` and written by `write_report`."""

from pathlib import Path

from stablelearn.report.document import (
    Alert,
    Block,
    Bullets,
    Callout,
    Cell,
    Chart,
    Code,
    Details,
    Facts,
    Image,
    Report,
    Section,
    Table,
    Text,
    Verdict,
    blocks,
    format_number,
    slug,
)

__all__ = ["Alert", "Block", "Bullets", "Callout", "Cell", "Chart", "Code", "Details", "Facts", "Image",
           "Report", "Section", "Table", "Text", "Verdict", "blocks", "format_number", "slug", "write_report"]  # fmt: skip


def write_report(report: Report, folder: Path, atomic: bool = False) -> None:
    """report.html and report.md in `folder`; `atomic` writes each through a temporary
    file (for folders that are not themselves written atomically)."""
    from stablelearn.io import write_text_atomic
    from stablelearn.report.html import render_html
    from stablelearn.report.markdown import render_markdown

    page, text = render_html(report), render_markdown(report, folder)
    if atomic:
        write_text_atomic(folder / "report.html", page)
        write_text_atomic(folder / "report.md", text)
    else:
        (folder / "report.html").write_text(page, encoding="utf-8")
        (folder / "report.md").write_text(text, encoding="utf-8")
