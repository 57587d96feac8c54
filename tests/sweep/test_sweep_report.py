"""A sweep's statistics against hand computation, and its files against the schema."""

import csv
import dataclasses
import json
from importlib import resources

import jsonschema
import numpy as np
import pytest
from conftest import TWO_GROUPS, small_sweep

from stablelearn.stats import bootstrap_median_ci, compare, holm, wilson_interval
from stablelearn.sweep.report import write_sweep_outputs
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
    assert page.count("data:image/png;base64,") == 3
    assert "units=8, learning_rate=0.001" in page
    assert "Holm" in (tmp_path / "report.md").read_text()


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
