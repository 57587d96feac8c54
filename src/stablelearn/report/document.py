"""A report as typed blocks, rendered to a self-contained HTML page and to Markdown.

Every report stablelearn writes (reproduce, run, doctor, sweep, the Keras Monitor, torch
watch) is built from these blocks, so all of them share one design: a headline first
(verdicts, cause and fix, or the best cells), then "what was run", then the evidence.
Text is Markdown's inline syntax (`code`, **bold**, links), rendered by markdown-it.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

VerdictKind = Literal["holds", "partial", "fails", "unmeasured"]
CalloutKind = Literal["good", "warning", "problem", "neutral"]
Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Text:
    """A paragraph of inline Markdown."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A list of inline-Markdown items."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict: a symbol and words, never colour alone."""

    kind: VerdictKind
    label: str

    @property
    def symbol(self) -> str:
        return {"holds": "✓", "partial": "◐", "fails": "✗", "unmeasured": "\u2013"}[self.kind]


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and the number it sorts by (None: sorts last, as text)."""

    text: str
    value: float | None = None
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Table:
    """A sortable table; `highlight` marks rows (e.g. the recommended configuration)."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    highlight: frozenset[int] = frozenset()
    numeric: frozenset[int] = frozenset()  # columns right-aligned

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"a row of {len(row)} cells in a table of {len(self.columns)}")


@dataclass(frozen=True)
class Facts:
    """Label: value pairs, e.g. what was run."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Code:
    """Preformatted lines (code, a printout); scrolls inside its own box."""

    lines: tuple[str, ...]
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    """An interactive Vega-Lite chart; `png` is its static twin for Markdown and print."""

    spec: dict[str, Any]
    alt: str
    caption: str = ""
    png: Path | None = None


@dataclass(frozen=True)
class Image:
    """A static PNG figure, inlined in HTML; `alt` says what it shows."""

    path: Path
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class Callout:
    """The headline box: one line that answers, then its supporting lines."""

    kind: CalloutKind
    title: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Alert:
    """A finding: a severity badge (symbol and word), its title and message, and the
    evidence behind it as blocks shown in a closed drill-down."""

    severity: Severity
    title: str
    message: str
    evidence: tuple["Block", ...] = ()
    evidence_summary: str = "Evidence"

    @property
    def symbol(self) -> str:
        return {"critical": "✖", "warning": "▲", "info": "\u2139"}[self.severity]


@dataclass(frozen=True)
class Details:
    """A drill-down, closed until the reader opens it (per-seed detail, raw evidence)."""

    summary: str
    blocks: tuple["Block", ...]


Block = Text | Bullets | Table | Facts | Code | Chart | Image | Callout | Alert | Details


@dataclass(frozen=True)
class Section:
    """A titled part of the report; `id` is its anchor in the table of contents."""

    id: str
    title: str
    blocks: tuple[Block, ...] = ()
    subsections: tuple["Section", ...] = ()


@dataclass(frozen=True)
class Report:
    """A whole report: the headline, what was run, then the evidence sections."""

    title: str
    headline: tuple[Block, ...]
    what_was_run: tuple[Block, ...]
    sections: tuple[Section, ...] = ()
    subtitle: str = ""
    notes: tuple[str, ...] = field(default=())  # footer lines (version, date)

    def all_sections(self) -> list[Section]:
        """The sections in page order, the fixed two first."""
        return [
            Section("headline", "Summary", self.headline),
            Section("what-was-run", "What was run", self.what_was_run),
            *self.sections,
        ]


def blocks(*items: Block | Sequence[Block] | None) -> tuple[Block, ...]:
    """Blocks from single blocks, sequences of blocks and Nones (skipped)."""
    out: list[Block] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, Sequence) and not isinstance(item, str):
            out.extend(item)
        else:
            out.append(item)
    return tuple(out)


def format_number(value: Any, digits: int = 4) -> str:
    """A table cell: '-' for a missing value, `digits` significant digits for a float."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def slug(text: str) -> str:
    """An anchor id from a title."""
    cleaned = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(part for part in cleaned.split("-") if part) or "section"
