"""The report design's page (stablelearn.report): structure, tables, charts, Markdown."""

import json
import re

import numpy as np
import pytest

from stablelearn.report import (
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
    charts,
    write_report,
)
from stablelearn.report.html import render_html
from stablelearn.report.markdown import render_markdown


def _report(tmp_path, figure=None):
    e = np.arange(1, 401)
    band = charts.Band(
        "relu", "validation", e, np.exp(-e / 50), np.exp(-e / 50) / 2, np.exp(-e / 50) * 2
    )
    table = Table(
        "Scores per configuration",
        ("configuration", "median", "verdict"),
        (
            (Cell("yours"), Cell("3.0", 3.0), Cell("", verdict=Verdict("fails", "does not hold"))),
            (Cell("fixed"), Cell("1.0", 1.0), Cell("", verdict=Verdict("holds", "holds"))),
            (
                Cell("missing"),
                Cell("-", None),
                Cell("", verdict=Verdict("partial", "holds in 7 of 10")),
            ),
        ),
        highlight=frozenset({1}),
        numeric=frozenset({1}),
    )
    evidence = Section(
        "evidence",
        "Evidence",
        (
            Text("Scaled with `StandardScaler` <script>"),
            table,
            Chart(
                charts.curves([band], "Loss </script>", "loss"),
                "Validation loss per epoch",
                "median and p10-p90",
                png=figure,
            ),
            Details(
                "Per seed",
                (
                    Chart(
                        charts.seed_curves("relu", e, np.ones((2, e.size)), [0, 1], [0, 3], "loss"),
                        "every seed",
                    ),
                ),
            ),
            Code(("Train: 0.1, Test: 0.2",), "the lesson's printout"),
        ),
        subsections=(Section("more", "More", (Text("x"),)),),
    )
    return Report(
        "A **report**",
        (Callout("problem", "Cause: X. Fix: Y."),),
        (Facts((("command", "`stablelearn run`"),)),),
        (evidence,),
    )


def test_page_has_language_viewport_contents_and_the_fixed_sections_in_order(tmp_path):
    page = render_html(_report(tmp_path))
    assert page.startswith("<!DOCTYPE html>") and "<html lang='en'>" in page
    assert "name='viewport' content='width=device-width, initial-scale=1'" in page
    order = [
        page.index(s)
        for s in ("id='headline'", "class='toc'", "id='what-was-run'", "id='evidence'")
    ]
    assert order == sorted(order)
    toc = page[page.index("class='toc'") : page.index("</nav>")]
    assert "href='#what-was-run'" in toc and "href='#evidence'" in toc and "href='#more'" in toc
    assert "<code>StandardScaler</code>" in page and "&lt;script&gt;" in page  # Markdown, escaped


def test_tables_have_caption_header_buttons_sort_values_and_highlight(tmp_path):
    page = render_html(_report(tmp_path))
    table = page[page.index("<table") : page.index("</table>")]
    assert "<caption>Scores per configuration</caption>" in table and "<thead>" in table
    assert table.count("<button type='button' class='sort'>") == 3
    assert "data-value='3.0'" in table and "data-value='1.0'" in table
    assert table.count("<tr class='recommended'>") == 1
    assert "verdict-fails" in table and "verdict-partial" in table and "✗ does not hold" in table


def test_chart_specs_are_inlined_as_json_that_cannot_close_the_script(tmp_path):
    page = render_html(_report(tmp_path))
    specs = re.findall(r"<script type='application/json' id='(c\d)'>(.*?)</script>", page)
    assert [i for i, _ in specs] == ["c0", "c1"]
    first = json.loads(specs[0][1])
    assert first["title"] == "Loss </script>"  # escaped as <\/ in the page
    assert "window.vegaEmbed" in page or "vegaEmbed" in page
    assert page.count("class='vega-chart'") == 2 and "aria-label='every seed'" in page
    assert "<details class='drilldown'>" in page


def test_markdown_has_the_same_sections_and_png_twins(tmp_path):
    figure = tmp_path / "curves.png"
    figure.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    text = render_markdown(_report(tmp_path, figure), tmp_path)
    assert text.startswith("# A **report**")
    assert "> **Cause: X. Fix: Y.**" in text and "## What was run" in text
    assert "![Validation loss per epoch](curves.png)" in text
    assert "| fixed ★ | 1.0 | ✓ holds |" in text and "|---|---:|---|" in text
    assert "(interactive chart in report.html)" in text  # the seed chart has no PNG twin


def test_write_report_writes_both_files(tmp_path):
    write_report(_report(tmp_path), tmp_path, atomic=True)
    assert (tmp_path / "report.html").stat().st_size > 100_000  # the Vega bundle inlined
    assert (tmp_path / "report.md").read_text().startswith("# ")


def test_static_images_are_inlined_with_their_alt_text(tmp_path):
    png = tmp_path / "wide.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(8) + (2400).to_bytes(4, "big") + bytes(8))
    report = Report(
        "t",
        (Text("x"),),
        (Text("y"),),
        (Section("f", "F", (Image(png, "Gradient norms per layer"),)),),
    )
    page = render_html(report)
    assert "<figure class='static wide'>" in page and "style='width:2400px'" in page
    assert "alt='Gradient norms per layer'" in page and "src='data:image/png;base64," in page


def test_table_rows_must_match_columns():
    with pytest.raises(ValueError, match="a row of 1 cells"):
        Table("t", ("a", "b"), ((Cell("x"),),))


def test_long_curves_are_thinned_and_log_axes_chosen_for_decades():
    e = np.arange(1, 10_001)
    spec = charts.curves(
        [
            charts.Band(
                "a", "train", e, 10.0 ** (-e / 2000), 10.0 ** (-e / 2000), 10.0 ** (-e / 2000)
            )
        ],
        "t",
        "loss",
    )
    rows = spec["datasets"][charts.DATA]
    assert len(rows) == charts.MAX_POINTS and rows[0]["epoch"] == 1 and rows[-1]["epoch"] == 10_000
    assert '"type": "log"' in json.dumps(spec)
    flat = charts.curves(
        [charts.Band("a", "train", e[:5], np.ones(5), np.ones(5), np.ones(5))], "t", "loss"
    )
    assert '"type": "log"' not in json.dumps(flat)


def test_scores_strip_counts_diverged_seeds_in_the_label():
    spec = charts.scores_strip(["yours", "fix"], [np.array([np.nan, np.nan, 1.0]), np.array([1.0, 2.0, 3.0])],
                               [[0, 1, 2]] * 2, "test MSE", "Repairs", highlight="fix")  # fmt: skip
    labels = {r["configuration"] for r in spec["datasets"][charts.DATA]}
    assert labels == {"yours (2/3 diverged)", "fix"}
    assert [r["recommended"] for r in spec["datasets"][charts.DATA]].count(True) == 3


def test_alerts_show_a_severity_badge_and_their_evidence_in_a_drill_down(tmp_path):
    from stablelearn.report import Alert

    alert = Alert(
        "critical",
        "Exploding gradients",
        "10 of 10 models blew up",
        (Facts((("largest gradient entry", "4.28e+36"),)),),
    )
    report = Report("t", (Text("x"),), (Text("y"),), (Section("f", "Findings", (alert,)),))
    page = render_html(report)
    assert "<span class='severity severity-critical'>✖ critical</span>" in page
    assert "<strong>Exploding gradients</strong>: 10 of 10 models blew up" in page
    drill = page[page.index("<details class='drilldown'>") : page.index("</details>")]
    assert "<summary>Evidence</summary>" in drill and "<dd>4.28e+36</dd>" in drill
    text = render_markdown(report, tmp_path)
    assert "- ✖ **critical: Exploding gradients:** 10 of 10 models blew up" in text
    assert "  - **largest gradient entry:** 4.28e+36" in text


def test_curves_can_force_a_log_axis_and_leave_out_values_it_cannot_draw():
    e = np.arange(1, 6)
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    spec = charts.curves([charts.Band("a", "train", e, values, values, values)], "t", "g", log=True)
    assert '"type": "log"' in json.dumps(spec)
    assert [r["epoch"] for r in spec["datasets"][charts.DATA]] == [2, 3, 4, 5]


def test_scores_strip_keeps_a_row_for_a_configuration_whose_every_seed_diverged():
    spec = charts.scores_strip(["yours", "fix"], [np.array([np.inf, np.inf]), np.array([1.0, 2.0])],
                               [[0, 1]] * 2, "test RMSE", "Repairs")  # fmt: skip
    assert "yours (2/2 diverged)" in json.dumps(spec)  # in the axis's domain, with no dot
    assert {r["configuration"] for r in spec["datasets"][charts.DATA]} == {"fix"}


def _layers(spec):
    return spec.get("layer", [])


def test_axis_lines_can_tell_overlapping_series_apart():
    rows = [{"x": x, "series": s, "median": None if (s, x) == ("a", "none") else 1.0,
             "low": 0.5, "high": 1.0, "n": 3, "diverged": 0}
            for s in ("a", "b") for x in ("none", "minmax", "standard")]  # fmt: skip
    spec = charts.axis_lines(rows, "scaler", "success rate", "t", value_title="success rate",
                             distinguish=True, y_domain=(0.0, 1.0))  # fmt: skip
    encodings = [layer["encoding"] for layer in _layers(spec)]
    assert any("shape" in e for e in encodings) and any("strokeDash" in e for e in encodings)
    assert encodings[0]["x"]["sort"] == ["none", "minmax", "standard"]  # "none" has no a-value
    assert encodings[0]["y"]["scale"]["domain"] == [0.0, 1.0]
    assert "success rate" in json.dumps(spec["layer"][0]["encoding"]["tooltip"])
    plain = charts.axis_lines(rows, "scaler", "y", "t")  # the default is unchanged
    assert not any("shape" in layer["encoding"] for layer in _layers(plain))


def test_heat_map_text_is_white_on_dark_cells_and_missing_cells_are_grey():
    rows = [{"x": "a", "y": "1", "v": 0.0}, {"x": "b", "y": "1", "v": 1.0},
            {"x": "a", "y": "2", "v": None}, {"x": "b", "y": "2", "v": 0.25}]  # fmt: skip
    spec = charts.heat_map(rows, ("x", "x"), ("y", "y"), ("v", "rate"), "t", domain=(0.0, 1.0))
    text = json.dumps(spec)
    assert '"domain": [0.0, 1.0]' in text and "#e6e6e6" in text and '"n/a"' in text
    labels = [layer for layer in _layers(spec) if layer["mark"]["type"] == "text"][-1]
    test = labels["encoding"]["color"]["condition"]["test"]
    assert f"< {charts.VIRIDIS_DARK_BELOW}" in test  # dark: the low end of viridis
    reverse = charts.heat_map(
        rows, ("x", "x"), ("y", "y"), ("v", "rmse"), "t", higher_is_better=False
    )
    labels = [layer for layer in _layers(reverse) if layer["mark"]["type"] == "text"][-1]
    assert f"> {1 - charts.VIRIDIS_DARK_BELOW}" in labels["encoding"]["color"]["condition"]["test"]
