"""Rendering helpers every report shares: numbers, HTML pages, embedded figures, tables."""

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "pre{background:#f5f5f5;padding:8px}img{max-width:100%}.holds{color:#1a7f37}.fails{color:#b42318}"
)


def format_number(value: Any, digits: int = 4) -> str:
    """A table cell: '-' for a missing value, `digits` significant digits for a float."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def html_page(title: str, body: str) -> str:
    """A self-contained HTML page around `body`."""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{PAGE_STYLE}</style></head><body>{body}</body></html>\n"
    )


def embedded_image(path: Path) -> str:
    """A PNG file as an <img> with the picture inlined, so the page needs no other file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<p><img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'></p>"


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: str = ""
) -> list[str]:
    """Lines of a Markdown table; `align` holds one 'l' or 'r' per column (default left)."""
    marks = [("---:" if a == "r" else "---") for a in (align or "l" * len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
