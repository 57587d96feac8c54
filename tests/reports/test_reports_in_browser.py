"""Each kind of report, opened in headless Chromium on a laptop screen (1366 x 900) and on a
phone (390 x 844, 3x), against the page contract of issue 14 (the report design's DOM
contract): it loads offline without errors and becomes interactive within 2 s, fits the
screen, follows the page structure, renders every chart as it comes into view and every
drill-down's charts as it opens, shows a value on hovering a chart's mark, and sorts
its tables. Without Playwright or a Chromium the module skips with one message.

A test collects every violation it finds and fails once, listing them all.
"""
# The fixtures come from browser_reports (see why there) and arrive as arguments, which
# ruff takes for redefinitions of the imported names.
# ruff: noqa: F401, F811

import math

import pytest
from browser_reports import (
    KINDS,
    browser,
    browser_missing,
    open_report,
    report_folder,
    shared_page,
)

if (reason := browser_missing()) is not None:
    pytest.skip(reason, allow_module_level=True)  # one line, not one per test

SCREENS = ["desktop", "phone"]
INTERACTIVE_BUDGET_MS = 2000  # issue 14: a report opens and is interactive in under 2 s
MIN_PHONE_FONT_PX = 14

# What each kind's report must hold; whatever else a report holds is checked where present.
MUST = {
    "design": {"chart", "table", "verdict", "drilldown"},
    "run": {"chart", "table", "verdict", "drilldown"},
    "doctor": {"chart", "table"},
    "sweep": {"chart", "table"},
    "reproduce": {"chart", "table", "verdict", "drilldown"},
    "keras-monitor": set(),
    "torch-watch": set(),
}

RENDERED = "d => d.dataset.rendered === 'true' && d.querySelector('svg') !== null"
TOOLTIP_SHOWN = """() => {
  const t = document.getElementById("vg-tooltip-element");
  return t !== null && t.classList.contains("visible") && /\\d/.test(t.textContent);
}"""
TOOLTIP_HIDDEN = """() => {
  const t = document.getElementById("vg-tooltip-element");
  return t === null || !t.classList.contains("visible");
}"""

PAGE_FACTS = """() => ({
  lang: document.documentElement.getAttribute("lang"),
  viewport: document.querySelector("meta[name=viewport]")?.getAttribute("content") ?? null,
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  bodyFontPx: parseFloat(getComputedStyle(document.body).fontSize),
})"""

# Problems with the page's structure, and what it holds.
STRUCTURE = r"""() => {
  const problems = [];
  const count = {chart: 0, table: 0, verdict: 0, drilldown: 0, image: 0};
  const main = document.querySelector("main");
  if (!main) return {problems: ["no <main>"], count};
  const kids = Array.from(main.children);
  const order = ["h1", "section#headline.headline", "nav.toc[aria-label='Contents']",
                 "section#what-was-run"];
  const at = order.map(s => kids.findIndex(e => e.matches(s)));
  order.forEach((s, i) => { if (at[i] < 0) problems.push(`<main> has no child ${s}`); });
  const found = at.filter(i => i >= 0);
  if (found.some((v, i) => i > 0 && v < found[i - 1]))
    problems.push(`<main>'s children are not in the order ${order.join(", ")}`);
  const nav = main.querySelector("nav.toc");
  if (nav) {
    const links = Array.from(nav.querySelectorAll("a[href^='#']"))
      .map(a => decodeURIComponent(a.getAttribute("href").slice(1)));
    const after = Array.from(main.querySelectorAll("section[id]"))
      .filter(s => nav.compareDocumentPosition(s) & Node.DOCUMENT_POSITION_FOLLOWING)
      .map(s => s.id);
    const unlinked = after.filter(id => !links.includes(id));
    const dangling = links.filter(id => !document.getElementById(id));
    if (unlinked.length) problems.push(`the contents do not link to sections ${unlinked.join(", ")}`);
    if (dangling.length) problems.push(`contents links to missing ids ${dangling.join(", ")}`);
  }
  main.querySelectorAll("table").forEach((t, i) => {
    count.table++;
    const name = `table ${i + 1} ("${(t.caption?.textContent ?? "").trim().slice(0, 50)}")`;
    if (!t.classList.contains("sortable")) problems.push(`${name} is not class="sortable"`);
    const box = t.parentElement;
    if (!box.matches("div.scroll-box[role=region][tabindex='0']") ||
        !(box.getAttribute("aria-label") ?? "").trim())
      problems.push(`${name} is not directly in <div class="scroll-box" role="region" tabindex="0" aria-label=...>`);
    if (!t.caption || !t.caption.textContent.trim()) problems.push(`${name} has no <caption>`);
    const ths = t.tHead ? Array.from(t.tHead.querySelectorAll("th")) : [];
    if (!ths.length) problems.push(`${name} has no <thead> <th>`);
    const plain = ths.filter(th => th.getAttribute("scope") !== "col" ||
      !th.querySelector("button.sort[type=button]")?.textContent.trim());
    if (plain.length)
      problems.push(`${name}: ${plain.length} <th> lack scope="col" or a labelled <button type="button" class="sort">`);
    if (!t.tBodies.length || !t.tBodies[0].rows.length) problems.push(`${name} has no body rows`);
    const odd = Array.from(t.querySelectorAll("tbody td[data-value]"))
      .filter(td => td.dataset.value.trim() === "" || !Number.isFinite(Number(td.dataset.value)));
    if (odd.length) problems.push(`${name}: data-value "${odd[0].dataset.value}" is not a finite number`);
  });
  main.querySelectorAll(".vega-chart").forEach((d, i) => {
    count.chart++;
    const label = (d.getAttribute("aria-label") ?? "").trim();
    const name = `chart ${i + 1} ("${label.slice(0, 50)}")`;
    const figure = d.closest("figure.chart");
    if (!figure) problems.push(`${name} is not in <figure class="chart">`);
    else if (!figure.querySelector("figcaption")?.textContent.trim())
      problems.push(`${name} has no <figcaption>`);
    if (d.getAttribute("role") !== "img" || !label) problems.push(`${name} lacks role="img" or aria-label`);
    const spec = d.dataset.spec ? document.getElementById(d.dataset.spec) : null;
    if (!spec || spec.tagName !== "SCRIPT" || spec.type !== "application/json")
      problems.push(`${name}: data-spec="${d.dataset.spec}" names no <script type="application/json">`);
    else try { JSON.parse(spec.textContent); } catch (e) { problems.push(`${name}: its spec is not JSON`); }
  });
  main.querySelectorAll("img").forEach((img, i) => {
    count.image++;
    const alt = (img.getAttribute("alt") ?? "").trim();
    const name = `image ${i + 1} (alt "${alt.slice(0, 50)}")`;
    if (!img.closest("figure.static")?.querySelector("figcaption"))
      problems.push(`${name} is not in <figure class="static"> with a <figcaption>`);
    if (!(img.getAttribute("src") ?? "").startsWith("data:image/"))
      problems.push(`${name} is not inlined (src="${(img.getAttribute("src") ?? "").slice(0, 60)}")`);
    if (alt.split(/\s+/).length < 3 || /\.(png|jpe?g|svg|gif|webp)\b/i.test(alt))
      problems.push(`${name}: alt text is not a description`);
  });
  main.querySelectorAll("details").forEach((d, i) => {
    count.drilldown++;
    if (!d.classList.contains("drilldown")) problems.push(`details ${i + 1} is not class="drilldown"`);
    if (!d.querySelector(":scope > summary")?.textContent.trim()) problems.push(`details ${i + 1} has no <summary>`);
  });
  const kinds = ["verdict-holds", "verdict-partial", "verdict-fails", "verdict-unmeasured"];
  document.querySelectorAll(".verdict").forEach((v, i) => {
    count.verdict++;
    const text = v.textContent.trim();
    const name = `verdict ${i + 1} ("${text.slice(0, 40)}")`;
    if (kinds.filter(k => v.classList.contains(k)).length !== 1)
      problems.push(`${name} has not exactly one of the classes ${kinds.join(", ")}`);
    if (!/\p{L}{2,}/u.test(text)) problems.push(`${name} has no words`);
    if (!/[^\p{L}\p{N}\s.,;:()]/u.test(text)) problems.push(`${name} has no symbol`);
  });
  return {problems, count};
}"""

# Points (client coordinates) on up to 8 of a rendered chart's data marks, points and bars
# before lines: each spread over the marks, inside the viewport, hit by the mouse.
MARK_POINTS = """(div) => {
  const svg = div.querySelector("svg");
  if (!svg) return [];
  const groups = [
    Array.from(svg.querySelectorAll(
      "g.role-mark.mark-symbol > path, g.role-mark.mark-rect > path, g.role-mark.mark-arc > path")),
    Array.from(svg.querySelectorAll(
      "g.role-mark.mark-line > path, g.role-mark.mark-trail > path, g.role-mark.mark-area > path, g.role-mark.mark-rule > line")),
  ];
  const points = [];
  for (const marks of groups) {
    const step = Math.max(1, Math.floor(marks.length / 4));
    for (let i = 0; i < marks.length && points.length < 8; i += step) {
      const el = marks[i], m = el.getScreenCTM();
      if (!m) continue;
      let p;
      if (el.closest(".mark-line, .mark-trail, .mark-rule")) {
        p = el.getPointAtLength(el.getTotalLength() / 2);
      } else {
        const b = el.getBBox();
        p = {x: b.x + b.width / 2, y: b.y + b.height / 2};
      }
      const q = new DOMPoint(p.x, p.y).matrixTransform(m);
      if (q.x < 1 || q.y < 1 || q.x > innerWidth - 1 || q.y > innerHeight - 1) continue;
      const hit = document.elementFromPoint(q.x, q.y);
      if (hit && svg.contains(hit)) points.push([q.x, q.y]);
    }
  }
  return points;
}"""

# Each column of a table: numeric (some cell has data-value), its values in row order.
COLUMNS = """(table) => {
  const rows = Array.from(table.tBodies[0]?.rows ?? []);
  const width = table.tHead ? table.tHead.rows[0].cells.length : 0;
  return Array.from({length: width}, (_, c) => {
    const cells = rows.map(r => r.cells[c]).filter(Boolean);
    const numeric = cells.some(td => td.dataset.value !== undefined);
    return {numeric, values: cells.map(td => numeric
      ? (td.dataset.value === undefined ? null : Number(td.dataset.value))
      : td.textContent.trim())};
  });
}"""


def chart_name(div) -> str:
    """The chart's spec id and caption (vega-embed overwrites its aria-label when drawn)."""
    caption = div.evaluate(
        "d => d.closest('figure')?.querySelector('figcaption')?.textContent ?? ''"
    )
    return f"{div.get_attribute('data-spec')} ({caption.strip()[:60]!r})"


def missing(kind: str, count: dict) -> list[str]:
    names = {"chart": "charts", "table": "tables", "verdict": "verdict badges",
             "drilldown": "drill-downs"}  # fmt: skip
    return [f"a {kind} report must hold {names[k]}; this one has none" for k in
            sorted(MUST[kind]) if not count.get(k)]  # fmt: skip


def wait(page, expression: str, arg=None, timeout: float = 5000) -> bool:
    """Whether `expression` came true within `timeout` ms."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # skipped without it

    try:
        page.wait_for_function(expression, arg=arg, timeout=timeout)
    except PlaywrightTimeout:
        return False
    return True


def in_closed_details(div) -> bool:
    return div.evaluate("d => d.closest('details:not([open])') !== null")


# --- loading --------------------------------------------------------------------------------


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("kind", KINDS)
def test_opens_offline_without_errors_and_is_interactive_within_2_s(
    browser, open_report, shared_page, report_folder, kind, screen
):
    # the shared page's load was timed from its navigation, whichever test opened it
    opened = shared_page(report_folder(kind), screen)
    times = [opened.interactive_ms()]
    facts = opened.page.evaluate(PAGE_FACTS)
    problems = list(opened.errors)
    problems += [f"requested {url} (a report is one offline file)" for url in opened.requests]
    # a busy machine slows a load down, never speeds it up: the best of three loads
    while times[-1] is not None and min(times) > INTERACTIVE_BUDGET_MS and len(times) < 3:
        again = open_report(report_folder(kind), screen)
        times.append(again.interactive_ms())
        again.close()
    if times[-1] is None:
        problems.append("never set <html data-interactive='true'> (waited 5 s)")
    elif min(times) > INTERACTIVE_BUDGET_MS:
        shown = ", ".join(f"{ms:.0f}" for ms in times)
        problems.append(f"interactive after {shown} ms (budget {INTERACTIVE_BUDGET_MS} ms)")
    if facts["lang"] != "en":
        problems.append(f'<html lang="{facts["lang"]}">, not lang="en"')
    viewport = (facts["viewport"] or "").replace(" ", "").split(",")
    if not {"width=device-width", "initial-scale=1"} <= set(viewport):
        problems.append(f"viewport meta is {facts['viewport']!r}")
    if facts["scrollWidth"] > facts["innerWidth"]:
        problems.append(
            f"scrolls sideways: {facts['scrollWidth']} px wide in {facts['innerWidth']}"
        )
    if screen == "phone" and facts["bodyFontPx"] < MIN_PHONE_FONT_PX:
        problems.append(f"body font {facts['bodyFontPx']} px on the phone (< {MIN_PHONE_FONT_PX})")
    assert not problems, f"{kind} on the {screen}:\n" + "\n".join(problems)


# --- charts, images, drill-downs ------------------------------------------------------------


def charts_scrolled_into_view(page):
    """Each chart outside a closed drill-down (test_drilldowns_render_their_charts_when_opened
    opens those), scrolled into view, with whether it then rendered."""
    charts = page.locator("main .vega-chart")
    for i in range(charts.count()):
        div = charts.nth(i)
        if in_closed_details(div):
            continue
        div.scroll_into_view_if_needed()
        yield div, wait(page, RENDERED, div.element_handle())


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_chart_and_image_renders_in_view(browser, shared_page, report_folder, kind, screen):
    opened = shared_page(report_folder(kind), screen)
    opened.require_interactive()
    page, start, problems = opened.page, len(opened.errors), []
    for div, rendered in charts_scrolled_into_view(page):
        if not rendered:
            problems.append(
                f"chart {chart_name(div)} did not render (data-rendered, <svg>) in view"
            )
    images = page.locator("main img")
    for i in range(images.count()):
        img = images.nth(i)
        if in_closed_details(img):
            continue
        img.scroll_into_view_if_needed()
        if not wait(page, "i => i.complete && i.naturalWidth > 0", img.element_handle()):
            problems.append(f"image {(img.get_attribute('alt') or '')[:60]!r} did not load")
    facts = page.evaluate(PAGE_FACTS)
    if facts["scrollWidth"] > facts["innerWidth"]:
        problems.append(
            f"with its charts drawn it scrolls sideways: {facts['scrollWidth']} px wide in "
            f"{facts['innerWidth']}"
        )
    problems += opened.errors[start:]
    assert not problems, f"{kind} on the {screen}:\n" + "\n".join(problems)


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("kind", KINDS)
def test_drilldowns_render_their_charts_when_opened(
    browser, shared_page, report_folder, kind, screen
):
    opened = shared_page(report_folder(kind), screen)
    opened.require_interactive()
    page, start, problems = opened.page, len(opened.errors), []
    drilldowns = page.locator("main details.drilldown")
    charts_inside = 0
    for i in range(drilldowns.count()):  # in page order: an outer one opens before its inner
        details = drilldowns.nth(i)
        for _ in range(3):  # a chart drawn above while scrolling may move the summary once
            if details.evaluate("d => d.open"):
                break
            details.locator(":scope > summary").click()
            wait(page, "d => d.open", details.element_handle(), timeout=700)
        if not wait(page, "d => d.open", details.element_handle(), timeout=2000):
            problems.append(f"drill-down {i + 1} did not open on a click on its summary")
            continue
        divs = details.locator(".vega-chart")
        for j in range(divs.count()):
            charts_inside += 1
            if not wait(page, RENDERED, divs.nth(j).element_handle()):
                problems.append(
                    f"drill-down {i + 1}: chart {chart_name(divs.nth(j))} did not render"
                )
    if "drilldown" in MUST[kind] and not charts_inside:
        problems.append(
            f"{drilldowns.count()} drill-downs and no chart inside them (per-seed curves)"
        )
    problems += opened.errors[start:]
    assert not problems, f"{kind} on the {screen}:\n" + "\n".join(problems)


@pytest.mark.parametrize("kind", KINDS)
def test_hovering_a_charts_mark_shows_its_value(browser, shared_page, report_folder, kind):
    opened = shared_page(report_folder(kind), "desktop")
    opened.require_interactive()
    page, start, problems = opened.page, len(opened.errors), []
    for div, rendered in charts_scrolled_into_view(page):
        if not rendered:
            continue  # test_every_chart_and_image_renders_in_view
        shown = False
        for x, y in div.evaluate(MARK_POINTS):
            page.mouse.move(0, 0)
            wait(page, TOOLTIP_HIDDEN, timeout=1000)
            page.mouse.move(x, y)
            if shown := wait(page, TOOLTIP_SHOWN, timeout=1000):
                break
        if not shown:
            problems.append(f"chart {chart_name(div)}: no mark showed a tooltip with a value")
    problems += opened.errors[start:]
    assert not problems, f"{kind}:\n" + "\n".join(problems)


# --- tables ---------------------------------------------------------------------------------


def sorted_problem(values: list, direction: str | None, numeric: bool) -> str | None:
    """Why `values` (one column, in row order) is not sorted `direction`, or None."""
    if direction not in ("ascending", "descending"):
        return f'aria-sort is {direction!r}, not "ascending" or "descending"'
    if not numeric:
        return None  # text order is the browser's collation; checked by reversal
    known = [v for v in values if v is not None]
    if values[: len(known)] != known:
        return f"cells without a data-value do not sort last: {values}"
    want = sorted(known, reverse=direction == "descending")
    if not all(math.isclose(a, b) for a, b in zip(known, want, strict=True)):
        return f"not sorted {direction} by data-value: {values}"
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_clicking_a_header_sorts_the_rows_and_sets_aria_sort(
    browser, shared_page, report_folder, kind
):
    opened = shared_page(report_folder(kind), "desktop")
    opened.require_interactive()
    page, start, problems, sorted_columns = opened.page, len(opened.errors), [], 0
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    tables = page.locator("main table.sortable")  # drill-downs' tables too, now shown
    for t in range(tables.count()):
        table = tables.nth(t)
        name = f"table {t + 1} ({(table.locator('caption').first.text_content() or '')[:40]!r})"
        columns = table.evaluate(COLUMNS)
        numeric = next((c for c, col in enumerate(columns) if col["numeric"]
                        and len({v for v in col["values"] if v is not None}) > 1), None)  # fmt: skip
        text = next((c for c, col in enumerate(columns) if not col["numeric"]
                     and len(set(col["values"])) > 1), None)  # fmt: skip
        for column in (numeric, text):
            if column is None:
                continue
            header = table.locator("thead th").nth(column)
            label = f"{name}, column {(header.text_content() or '').strip()!r}"
            orders = []
            for _ in range(2):
                header.locator("button.sort").click()
                values = table.evaluate(COLUMNS)[column]["values"]
                direction = header.get_attribute("aria-sort")
                orders.append((direction, values))
                if why := sorted_problem(values, direction, column == numeric):
                    problems.append(f"{label}: {why}")
            (first, before), (second, after) = orders
            if first == second:
                problems.append(f"{label}: a second click left aria-sort {second!r}")
            if column == text and after != before[::-1]:
                problems.append(f"{label}: a second click did not reverse the rows: {after}")
            sorted_columns += 1
    if "table" in MUST[kind] and not sorted_columns:
        problems.append(f"{tables.count()} sortable tables and no column with two distinct values")
    problems += opened.errors[start:]
    assert not problems, f"{kind}:\n" + "\n".join(problems)


# --- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_follows_the_page_structure(browser, shared_page, report_folder, kind):
    """On the page as a reader ends up with it: every chart drawn, every drill-down open
    (last in this file: it opens the drill-downs of the page the tests above share)."""
    opened = shared_page(report_folder(kind), "desktop")
    opened.require_interactive()
    page = opened.page
    page.evaluate(
        "() => document.querySelectorAll('main details').forEach(d => { d.open = true; })"
    )
    charts = page.locator("main .vega-chart")
    for i in range(charts.count()):
        charts.nth(i).scroll_into_view_if_needed()
        wait(page, RENDERED, charts.nth(i).element_handle())
    found = page.evaluate(STRUCTURE)
    problems = found["problems"] + missing(kind, found["count"])
    assert not problems, f"{kind} ({found['count']}):\n" + "\n".join(problems)
