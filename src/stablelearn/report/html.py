"""A Report as one self-contained HTML page: style, script, Vega libraries, chart specs and
PNG figures all inlined, so the file opens offline and alone.

The page's structure is a contract the browser tests (tests/reports) check: <html lang>,
a viewport meta; the headline section, the table of contents (nav.toc), "what was run",
then the evidence; tables in a .scroll-box with caption, thead and sort buttons (numeric
cells carry data-value, a highlighted row is tr.recommended); charts as
figure.chart > div.vega-chart[data-spec][role=img][aria-label] with their spec in a
<script type="application/json">, drawn near the viewport (data-rendered) or when their
drill-down (details.drilldown) opens; <html data-interactive="true"> once the charts in
view are drawn."""

import base64
import functools
import html
import json
from collections.abc import Iterable

from stablelearn.report.assets import page_script, page_style, vega_bundle
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
    Verdict,
)

WIDE_FIGURE_PX = 1150  # the page's column is 72 rem (1152 px) less its padding


@functools.cache
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False})


def inline(text: str) -> str:
    """Inline Markdown (code, emphasis, links) as HTML; raw HTML in `text` is escaped."""
    return _markdown().renderInline(text)


def render_html(report: Report) -> str:
    """The page. Charts get ids c0, c1, ... in page order."""
    charts: list[Chart] = []
    sections = report.all_sections()
    body = [f"<h1>{inline(report.title)}</h1>"]
    if report.subtitle:
        body.append(f"<p class='subtitle'>{inline(report.subtitle)}</p>")
    body.append(_section(sections[0], charts, level=2))
    body.append(_toc(sections[1:]))
    body += [_section(s, charts, level=2) for s in sections[1:]]
    footer = "".join(f"<p>{inline(line)}</p>" for line in report.notes)
    specs = "".join(
        f"<script type='application/json' id='c{i}'>"
        f"{_json_for_script({**c.spec, 'description': c.alt})}</script>"
        for i, c in enumerate(charts)
    )
    scripts = f"<script>{vega_bundle()}</script>" if charts else ""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(_plain(report.title))}</title><style>{page_style()}</style></head>"
        f"<body><main>{''.join(body)}<footer>{footer}</footer></main>{specs}{scripts}"
        f"<script>{page_script()}</script></body></html>\n"
    )


def _plain(text: str) -> str:
    return text.replace("`", "").replace("**", "")


def _json_for_script(spec: dict) -> str:
    """JSON that cannot close its <script> element early."""
    return json.dumps(spec, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _toc(sections: Iterable[Section]) -> str:
    items = []
    for s in sections:
        sub = "".join(
            f"<li><a href='#{html.escape(t.id)}'>{inline(t.title)}</a></li>" for t in s.subsections
        )
        items.append(
            f"<li><a href='#{html.escape(s.id)}'>{inline(s.title)}</a>"
            + (f"<ol>{sub}</ol>" if sub else "")
            + "</li>"
        )
    return (
        f"<nav class='toc' aria-label='Contents'><h2>Contents</h2><ol>{''.join(items)}</ol></nav>"
    )


def _section(section: Section, charts: list[Chart], level: int) -> str:
    klass = " class='headline'" if section.id == "headline" else ""
    heading = f"<h{level}>{inline(section.title)}</h{level}>"
    inner = [_block(b, charts) for b in section.blocks]
    inner += [_section(s, charts, min(level + 1, 4)) for s in section.subsections]
    return f"<section id='{html.escape(section.id)}'{klass}>{heading}{''.join(inner)}</section>"


def _block(block: Block, charts: list[Chart]) -> str:
    match block:
        case Text(text):
            return f"<p>{inline(text)}</p>"
        case Bullets(items):
            return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>"
        case Callout():
            return _callout(block)
        case Alert():
            return _alert(block, charts)
        case Facts(pairs):
            rows = "".join(f"<dt>{inline(k)}</dt><dd>{inline(v)}</dd>" for k, v in pairs)
            return f"<dl class='facts'>{rows}</dl>"
        case Code(lines, caption):
            label = html.escape(caption or "printout")
            box = f"<div class='scroll-box' role='region' tabindex='0' aria-label='{label}'>"
            cap = f"<figcaption>{inline(caption)}</figcaption>" if caption else ""
            return f"<figure>{box}<pre>{html.escape(chr(10).join(lines))}</pre></div>{cap}</figure>"
        case Table():
            return _table(block)
        case Chart():
            index = len(charts)
            charts.append(block)
            cap = f"<figcaption>{inline(block.caption)}</figcaption>" if block.caption else ""
            return (
                f"<figure class='chart'><div class='vega-chart' data-spec='c{index}' role='img' "
                f"aria-label='{html.escape(block.alt)}'{_reserved(block.spec)}></div>{cap}</figure>"
            )
        case Image(path, alt, caption):
            raw = path.read_bytes()
            data = base64.b64encode(raw).decode("ascii")
            width = _png_width(raw)
            # a figure wider than the column is shown at its own size (text readable),
            # scrolling sideways inside its box, instead of shrunk
            wide = width > WIDE_FIGURE_PX
            size = f" style='width:{width}px'" if wide else ""
            cap = f"<figcaption>{inline(caption)}</figcaption>" if caption else ""
            return (
                f"<figure class='static{' wide' if wide else ''}'><div class='scroll-box' "
                f"role='region' tabindex='0' aria-label='{html.escape(alt)}'><img "
                f"alt='{html.escape(alt)}'{size} src='data:image/png;base64,{data}'></div>"
                f"{cap}</figure>"
            )
        case Details(summary, inner):
            content = "".join(_block(b, charts) for b in inner)
            return f"<details class='drilldown'><summary>{inline(summary)}</summary>{content}</details>"
    raise TypeError(f"not a report block: {block!r}")


def _reserved(spec: dict) -> str:
    """The height a chart will take, kept free until it is drawn: charts draw as they
    scroll into view, and a page whose content jumps then moves what a reader (or a
    click) was aiming at. The plot's height plus its title, axis and legend, roughly."""
    height = spec.get("height")
    if not isinstance(height, int | float):
        return ""
    return f" style='min-height:{int(height) + 110}px'"


def _callout(block: Callout) -> str:
    lines = "".join(f"<li>{inline(line)}</li>" for line in block.lines)
    return (
        f"<div class='callout callout-{block.kind}'><p class='callout-title'>{inline(block.title)}</p>"
        + (f"<ul>{lines}</ul>" if lines else "")
        + "</div>"
    )


def _alert(block: Alert, charts: list[Chart]) -> str:
    badge = (
        f"<span class='severity severity-{block.severity}'>{block.symbol} {block.severity}</span>"
    )
    evidence = ""
    if block.evidence:
        inner = "".join(_block(b, charts) for b in block.evidence)
        evidence = (
            f"<details class='drilldown'><summary>{inline(block.evidence_summary)}</summary>"
            f"{inner}</details>"
        )
    return (
        f"<div class='alert alert-{block.severity}'><p>{badge} <strong>{inline(block.title)}</strong>"
        f": {inline(block.message)}</p>{evidence}</div>"
    )


def verdict_html(verdict: Verdict) -> str:
    return (
        f"<span class='verdict verdict-{verdict.kind}'>{verdict.symbol} "
        f"{html.escape(verdict.label)}</span>"
    )


def _table(table: Table) -> str:
    head = "".join(
        f"<th scope='col'><button type='button' class='sort'>{inline(c)}</button></th>"
        for c in table.columns
    )
    rows = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, cell in enumerate(row):
            attrs = " class='num'" if j in table.numeric else ""
            if cell.value is not None and cell.value == cell.value:  # not NaN
                attrs += f" data-value='{cell.value!r}'"
            text = verdict_html(cell.verdict) if cell.verdict else inline(cell.text)
            cells.append(f"<td{attrs}>{text}</td>")
        mark = " class='recommended'" if i in table.highlight else ""
        rows.append(f"<tr{mark}>{''.join(cells)}</tr>")
    label = html.escape(_plain(table.caption))
    return (
        f"<div class='scroll-box' role='region' tabindex='0' aria-label='{label}'>"
        f"<table class='sortable'><caption>{inline(table.caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _png_width(data: bytes) -> int:
    """A PNG's width in pixels, from its IHDR chunk."""
    return int.from_bytes(data[16:20], "big") if data[:8] == b"\x89PNG\r\n\x1a\n" else 0
