"""A sweep's statistics against hand computation, and its files against the schema."""

import csv
import dataclasses
import json
import os
import re
import stat
from importlib import resources

import jsonschema
import numpy as np
import pytest
from conftest import TWO_GROUPS, small_sweep

from stablelearn.report.html import render_html
from stablelearn.stats import bootstrap_median_ci, compare, holm, wilson_interval
from stablelearn.sweep.figures import series_style, text_colour
from stablelearn.sweep.names import axis_titles, cell_title, field_title, metric_title
from stablelearn.sweep.report import (
    comparison_table,
    diverged_seeds,
    headline,
    runs_needed,
    sweep_report,
    write_sweep_outputs,
)
from stablelearn.sweep.run import run_sweep
from stablelearn.sweep.spec import load_sweep_mapping
from stablelearn.sweep.statistics import cell_statistics, comparisons, sweep_summary


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    raw = small_sweep(axes=TWO_GROUPS, sweep={"success": {"max": 200.0}})
    sweep = load_sweep_mapping(raw, "s.toml")
    return run_sweep(sweep, tmp_path_factory.mktemp("sweep"), workers=2)


@pytest.fixture(scope="module")
def schema():
    text = (resources.files("stablelearn") / "schemas" / "sweep.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def with_divergence(result):
    """The same sweep with cell 1's first two runs marked diverged (NaN scores)."""
    scores = {k: v.copy() for k, v in result.test_scores.items()}
    epochs = result.diverged_epoch.copy()
    rows = np.flatnonzero(result.cells == 1)[:2]
    for values in scores.values():
        values[rows] = np.nan
    epochs[rows] = [2, 3]
    return dataclasses.replace(result, test_scores=scores, diverged_epoch=epochs)


@pytest.mark.slow
def test_cell_statistics_match_hand_computation(result):
    result = with_divergence(result)
    cells = cell_statistics(result)
    assert [c["label"] for c in cells] == [c.label for c in result.sweep.cells]
    rmse = result.test_scores["rmse_original"]
    for cell in cells:
        values = rmse[result.cells == cell["index"]]
        finite = values[np.isfinite(values)]
        assert cell["n"] == 3
        assert cell["metric"]["median"] == pytest.approx(np.median(finite))
        assert cell["metric"]["mean"] == pytest.approx(np.mean(finite))
        assert cell["metric"]["std"] == pytest.approx(np.std(finite))
        low, high = bootstrap_median_ci(values, seed=result.sweep.seed)
        assert (cell["metric"]["ci_low"], cell["metric"]["ci_high"]) == (low, high)
        k = int((finite <= 200.0).sum())
        assert cell["success"]["k"] == k and cell["success"]["rate"] == k / 3
        ci = wilson_interval(k, 3)
        assert (cell["success"]["ci_low"], cell["success"]["ci_high"]) == ci
    assert cells[1]["diverged"] == 2 and cells[1]["diverged_epoch_median"] == 2.5
    assert cells[0]["diverged"] == 0 and cells[0]["diverged_epoch_median"] is None
    assert cells[3]["values"] == {"units": 8, "learning_rate": 0.001}
    assert cells[3]["labels"] == {"units": "8", "learning_rate": "0.001"}


@pytest.mark.slow
def test_comparisons_are_against_the_baseline_and_holm_corrected(result):
    result = with_divergence(result)
    cells = cell_statistics(result)
    entries = comparisons(result, cells)
    assert [e["cell"] for e in entries] == [c.label for c in result.sweep.cells[1:]]
    rmse = result.test_scores["rmse_original"]
    raw_p = []
    for entry, index in zip(entries, (1, 2, 3), strict=True):
        expected = compare(rmse[result.cells == index], rmse[result.cells == 0])
        assert entry["p_value"] == expected["p_value"]
        assert entry["p_better"] == expected["p_better"]
        raw_p.append(expected["p_value"])
        assert entry["sentence"].startswith(entry["cell"])
        assert "3 runs each" in entry["sentence"]
    assert [e["p_holm"] for e in entries] == holm(raw_p)
    assert "2/3 vs 0/3 diverged" in entries[0]["sentence"]
    assert entries[0]["diverged"] == [2, 0]


def test_outputs_are_written_and_valid(result, schema, tmp_path):
    summary = write_sweep_outputs(result, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"sweep.json", "cells.csv", "models.csv", "report.html", "report.md",
                     "metric.png", "success.png", "heat_map.png"}  # fmt: skip
    saved = json.loads((tmp_path / "sweep.json").read_text())
    jsonschema.validate(saved, schema)
    assert saved["figures"] == ["metric.png", "success.png", "heat_map.png"]
    assert saved["baseline"] == "units=4, learning_rate=0.01"
    assert saved["timing"]["models"] == 12 and saved["timing"]["groups"] == 2
    assert summary["cells"][0]["label"] == saved["cells"][0]["label"]
    with (tmp_path / "cells.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["cell"] for r in rows] == [c.label for c in result.sweep.cells]
    assert rows[3]["units"] == "8" and rows[3]["learning_rate"] == "0.001"
    assert float(rows[0]["test_rmse_original_median"]) == saved["cells"][0]["metric"]["median"]
    with (tmp_path / "models.csv").open() as handle:
        models = list(csv.DictReader(handle))
    assert len(models) == 12 and models[4]["cell"] == "units=4, learning_rate=0.001"
    assert float(models[4]["test_rmse_original"]) == result.test_scores["rmse_original"][4]
    page = (tmp_path / "report.html").read_text()
    order = [page.index(s) for s in ("id='headline'", "id='what-was-run'", "id='comparisons'",
                                     "id='cells'", "id='charts'", "id='per-seed'")]  # fmt: skip
    assert order == sorted(order)
    assert "units = 8, learning rate = 0.001" in page  # display names, not field names
    assert "test_rmse_original" not in page and "learning_rate=" not in page
    assert page.count("class='vega-chart'") >= 6  # 2 lines, 2 heat maps, scores, seed curves
    assert page.count("<details class='drilldown'>") == 3
    text = (tmp_path / "report.md").read_text()
    assert "Holm" in text and "test_rmse_original" not in text
    for name in ("metric.png", "success.png", "heat_map.png"):
        assert f"]({name})" in text  # the charts' static twins


def test_figures_left_half_drawn_by_a_killed_run_are_replaced(result, tmp_path):
    leftover = tmp_path / ".figures-partial"
    leftover.mkdir()
    (leftover / "metric.png").write_bytes(b"half a png")
    (leftover / "old-figure.png").write_bytes(b"from an earlier version")
    write_sweep_outputs(result, tmp_path)
    assert not leftover.exists() and not (tmp_path / "old-figure.png").exists()
    assert (tmp_path / "metric.png").read_bytes().startswith(b"\x89PNG")


def test_an_all_diverged_sweep_still_reports(result, schema, tmp_path):
    nan = {k: np.full_like(v, np.nan) for k, v in result.test_scores.items()}
    diverged = dataclasses.replace(
        result, test_scores=nan, diverged_epoch=np.ones_like(result.diverged_epoch)
    )
    summary = sweep_summary(diverged)
    assert all(c["metric"]["median"] is None for c in summary["cells"])
    assert all(c["success"]["k"] == 0 for c in summary["cells"])
    assert all("do not differ detectably" in c["sentence"] for c in summary["comparisons"])
    write_sweep_outputs(diverged, tmp_path)
    jsonschema.validate(json.loads((tmp_path / "sweep.json").read_text()), schema)


def _significant(summary, index, p_better):
    """The summary with comparison `index` made significant in the direction of p_better."""
    summary = json.loads(json.dumps(summary))
    entry = summary["comparisons"][index]
    entry.update(significant=True, p_holm=0.004, p_better=p_better)
    return summary


def test_headline_says_no_cell_differs_and_how_many_runs_would_be_needed(result):
    callout = headline(sweep_summary(result))
    assert callout.kind == "neutral"
    assert callout.title.startswith(
        "No cell differs detectably from the baseline (units = 4, learning rate = 0.01) on "
        "test RMSE (target units) after Holm correction (3 runs per cell)."
    )
    assert any("`--repeats 5`" in line for line in callout.lines)
    assert any(line.startswith("Best median: ") for line in callout.lines)


def test_headline_names_the_better_cells_and_the_best_with_its_ci(result):
    summary = sweep_summary(result)
    best = min(summary["cells"][1:], key=lambda c: c["metric"]["median"])
    index = [c["cell"] for c in summary["comparisons"]].index(best["label"])
    callout = headline(_significant(summary, index, 1.0))
    m = best["metric"]
    assert callout.kind == "good"
    name = cell_title(best["labels"], axis_titles(summary["axes"]))
    assert callout.title == (
        "1 of 3 cells beats the baseline (units = 4, learning rate = 0.01) on test RMSE "
        f"(target units), Holm-corrected. Best: {name}, median {m['median']:.4g} "
        f"[{m['ci_low']:.4g}, {m['ci_high']:.4g}] against the baseline's "
        f"{summary['cells'][0]['metric']['median']:.4g} (Holm p = 0.004)."
    )
    assert callout.lines[0] == f"Better than the baseline: **{name}**."


def test_headline_warns_when_cells_are_only_worse(result):
    callout = headline(_significant(sweep_summary(result), 0, 0.0))
    assert callout.kind == "warning"
    assert callout.title.startswith("No cell beats the baseline (units = 4, learning rate = 0.01)")
    assert "1 of 3 is worse, Holm-corrected." in callout.title
    assert callout.lines[0] == "Worse than the baseline: **units = 4, learning rate = 0.001**."


def test_comparison_table_has_a_sortable_row_and_verdict_per_cell(result):
    summary = _significant(sweep_summary(result), 0, 0.0)
    table = comparison_table(summary)
    assert len(table.rows) == 3 and table.columns[-1] == "verdict"
    assert [row[-1].verdict.label for row in table.rows] == [
        "worse",
        "no difference",
        "no difference",
    ]
    assert table.rows[0][4].text == "0.004" and table.rows[0][4].value == 0.004
    first = summary["comparisons"][0]
    assert table.rows[0][3].value == first["median_difference"]
    assert table.rows[0][3].text.startswith("+")  # a smaller learning rate: a higher RMSE


def test_report_page_follows_the_contract(result, tmp_path):
    summary = sweep_summary(with_divergence(result))
    page = render_html(sweep_report(with_divergence(result), summary, tmp_path, []))
    comparisons = page[page.index("id='comparisons'") : page.index("id='cells'")]
    assert "<caption>Every cell against the baseline" in comparisons
    assert comparisons.count("<tr>") == 1 + 3  # the header and one row per compared cell
    assert "verdict verdict-unmeasured'>\u2013 no difference" in comparisons
    cells = page[page.index("id='cells'") : page.index("id='charts'")]
    assert cells.count("<tr class='recommended'>") == 1  # the baseline
    assert re.search(r"<td class='num' data-value='0'>0/3</td>", cells)
    seeds = page[page.index("id='per-seed'") :]
    assert "0 (epoch 2); 1 (epoch 3)" in seeds  # cell 1's two diverged seeds
    assert "(2/3 diverged)" in page  # in the per-run scores chart
    assert "Training loss of every seed of units = 4, learning rate = 0.001" in seeds


def test_report_files_are_readable_by_everyone(result, tmp_path):
    old = os.umask(0o022)
    try:
        write_sweep_outputs(result, tmp_path / "out")
    finally:
        os.umask(old)
    for name in ("report.html", "report.md", "cells.csv", "models.csv", "sweep.json", "metric.png"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644, name


def test_display_names():
    assert field_title("optimizer.clip_threshold") == "clip threshold"
    assert field_title("model.residual") == "skip connections"
    assert field_title("activation") == "activation"
    assert metric_title("test_rmse_original") == "test RMSE (target units)"
    axes = [{"name": "model.activation", "field": "model.activation"},
            {"name": "activation", "field": None}, {"name": "learning_rate",
            "field": "optimizer.learning_rate"}]  # fmt: skip
    titles = axis_titles(axes)
    assert titles == {"model.activation": "model activation", "activation": "activation",
                      "learning_rate": "learning rate"}  # fmt: skip
    assert cell_title({"learning_rate": "0.01", "activation": "relu"}, titles) == (
        "learning rate = 0.01, activation = relu"
    )


def test_small_helpers():
    assert runs_needed(1) == 4 and runs_needed(3) == 5 and runs_needed(20) == 6
    assert diverged_seeds([0, 1, 2, 3], [1, -1, 5, 1]) == "0, 3 (epoch 1); 2 (epoch 5)"
    assert text_colour((0.99, 0.9, 0.14, 1)) == "black"  # viridis' yellow end
    assert text_colour((0.27, 0.0, 0.33, 1)) == "white"  # viridis' purple end
    styles = [series_style(i) for i in range(8)]
    assert len({s["color"] for s in styles}) == 8 and len({s["marker"] for s in styles}) == 8
    assert styles[0]["linestyle"] != styles[1]["linestyle"]
