"""Run folders: every file a run writes, checked against the results that produced it.

One combined run (a data-only experiment, a diverging one, a learning one, a
three-variant one and a classification one, 2 repeats x 3 epochs) and one single-
experiment run are written once per module and inspected by every test.
"""

import base64
import csv
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from stablelearn.errors import ConfigError
from stablelearn.experiments.outputs import lesson_lines
from stablelearn.io import atomic_folder
from stablelearn.lesson import catalog as lesson_catalog
from stablelearn.lesson.reproduce import run_and_write

pytestmark = pytest.mark.slow  # trains whole case studies; see the quick suite in README

COMBINED = ["regression-data", "unscaled-mlp", "standardized-target", "input-scaling", "tanh-1"]
REPEATS, EPOCHS = 2, 3


def strict_json(path: Path):
    """Parse JSON, refusing the NaN/Infinity tokens that strict readers reject."""

    def refuse(token: str):
        raise ValueError(f"{path.name} contains the non-JSON token {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.fixture(scope="module")
def schema() -> dict:
    text = (resources.files("stablelearn") / "schemas" / "summary.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    catalog = {e.id: e for e in lesson_catalog.catalog()}
    specs = [catalog[i].override(repeats=REPEATS, epochs=EPOCHS) for i in COMBINED]
    folder = tmp_path_factory.mktemp("combined") / "run"
    results, claims, wall_s = run_and_write(specs, folder)
    return folder, {r.experiment.id: r for r in results}, claims, wall_s


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    spec = lesson_catalog.resolve("standardized-target").override(repeats=REPEATS, epochs=EPOCHS)
    folder = tmp_path_factory.mktemp("single") / "run"
    (result,), claims, _ = run_and_write([spec], folder, combined=False)
    return folder, result, claims


def summaries(folder: Path) -> dict[str, dict]:
    return {i: strict_json(folder / i / "summary.json") for i in COMBINED}


def test_the_combined_folder_holds_one_subfolder_per_experiment(combined):
    folder, results, _, _ = combined
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*COMBINED, "claims.json", "index.json", "report.html", "report.md"]
    )
    assert sorted(p.name for p in (folder / "regression-data").iterdir()) == [
        "config.json",
        "histograms.png",
        "summary.json",
    ]
    assert sorted(p.name for p in (folder / "input-scaling").iterdir()) == [
        "box.png",
        "config.json",
        "gradients.png",
        "history.npz",
        "learning_curves.png",
        "models.csv",
        "summary.json",
    ]
    assert not list(folder.parent.glob(".*partial*"))
    assert list(results) == COMBINED


def test_summaries_validate_against_the_shipped_schema(combined, single, schema):
    validator = jsonschema.Draft202012Validator(schema)
    docs = [*summaries(combined[0]).values(), strict_json(single[0] / "summary.json")]
    for doc in docs:
        errors = [e.message for e in validator.iter_errors(doc)]
        assert errors == [], (doc["experiment"]["id"], errors)
    tampered = {**docs[1], "extra": 1}
    assert not validator.is_valid(tampered)


def test_summary_records_the_overridden_settings_and_every_model(combined):
    docs = summaries(combined[0])
    data = docs["regression-data"]
    assert (data["metric"], data["variants"], data["models"]) == (None, [], [])
    assert data["experiment"]["epochs"] is None and data["figures"] == ["histograms.png"]
    scaling = docs["input-scaling"]
    assert scaling["experiment"]["epochs"] == EPOCHS
    assert scaling["experiment"]["repeats"] == REPEATS
    assert scaling["metric"] == "mse"
    assert [v["name"] for v in scaling["variants"]] == ["unscaled", "normalized", "standardized"]
    assert [(m["variant"], m["repeat"], m["seed"]) for m in scaling["models"]] == [
        (name, r, r) for name in ("unscaled", "normalized", "standardized") for r in range(2)
    ]
    assert [v["model"] for v in scaling["variants"]] == ["20-25(relu)-1(linear)"] * 3
    assert scaling["variants"][0]["optimizer"] == "SGD(lr=0.01, momentum=0.9)"
    assert all(v["test_rmse_original"]["n"] == REPEATS for v in scaling["variants"])
    assert docs["tanh-1"]["metric"] == "accuracy"
    assert "test_rmse_original" not in docs["tanh-1"]["variants"][0]
    assert docs["tanh-1"]["experiment"]["fit_scalers_on"] == "all"


def test_summary_statistics_match_the_trained_scores(combined):
    _, results, _, _ = combined
    doc = summaries(combined[0])["input-scaling"]
    for entry, variant in zip(doc["variants"], results["input-scaling"].variants, strict=True):
        test = variant.result.test_scores["loss"]
        assert entry["test"]["median"] == pytest.approx(float(np.median(test)))
        assert entry["test"]["mean"] == pytest.approx(float(np.mean(test)))
        assert entry["n"] == REPEATS and entry["diverged"] == 0
    models = [m["test_metric"] for m in doc["models"]]
    trained = np.concatenate(
        [v.result.test_scores["loss"] for v in results["input-scaling"].variants]
    )
    np.testing.assert_allclose(models, trained)


def test_nan_scores_are_written_as_json_null(combined):
    folder = combined[0]
    doc = strict_json(folder / "unscaled-mlp" / "summary.json")  # every model diverges
    (variant,) = doc["variants"]
    assert variant["diverged"] == REPEATS
    assert variant["test"] == {
        "n": REPEATS,
        "non_finite": REPEATS,
        "median": None,
        "mean": None,
        "std": None,
        "p10": None,
        "p90": None,
    }
    for model in doc["models"]:
        assert model["diverged"] is True and model["diverged_epoch"] == 1
        assert model["test_metric"] is None and model["train_loss"] is None
    for path in folder.rglob("*.json"):
        strict_json(path)  # raises on NaN/Infinity anywhere in the run folder
    assert "NaN" not in (folder / "unscaled-mlp" / "summary.json").read_text()


def test_models_csv_has_one_row_per_model_in_summary_order(combined):
    folder = combined[0]
    for experiment_id in ("unscaled-mlp", "input-scaling", "tanh-1"):
        doc = strict_json(folder / experiment_id / "summary.json")
        with (folder / experiment_id / "models.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == len(doc["models"]) == REPEATS * len(doc["variants"])
        for row, model in zip(rows, doc["models"], strict=True):
            assert row["variant"] == model["variant"]
            assert int(row["seed"]) == model["seed"]
            assert row["diverged"] == str(model["diverged"])
            if model["test_metric"] is None:
                assert row["test_metric"] == "" and row["diverged_epoch"] == "1"
            else:
                assert float(row["test_metric"]) == model["test_metric"]
                assert row["diverged_epoch"] == ""


def test_history_npz_has_one_curve_per_model_and_epoch(combined):
    folder, results, _, _ = combined
    with np.load(folder / "input-scaling" / "history.npz") as h:
        assert sorted(h.files) == ["diverged_epoch", "epoch", "loss", "repeat", "seed", "variant"]
        assert h["loss"].shape == (3 * REPEATS, EPOCHS)  # validation = false: no val_loss
        assert h["epoch"].tolist() == list(range(1, EPOCHS + 1))  # every epoch: a short run
        assert list(h["variant"]) == [n for n in ("unscaled", "normalized", "standardized")
                                      for _ in range(REPEATS)]  # fmt: skip
        assert list(h["seed"]) == [0, 1] * 3 and list(h["repeat"]) == [0, 1] * 3
        np.testing.assert_array_equal(
            h["loss"][2:4], results["input-scaling"].variant("normalized").result.history["loss"]
        )
    with np.load(folder / "tanh-1" / "history.npz") as h:
        curves = ["accuracy", "loss", "val_accuracy", "val_loss"]
        labels = {"diverged_epoch", "epoch", "repeat", "seed", "variant"}
        assert sorted(set(h.files) - labels) == curves
        assert all(h[name].shape == (REPEATS, EPOCHS) for name in curves)
        assert np.all((h["accuracy"] >= 0) & (h["accuracy"] <= 1))
    with np.load(folder / "unscaled-mlp" / "history.npz") as h:
        assert list(h["diverged_epoch"]) == [1, 1]
        assert np.isnan(h["loss"]).all()


def test_config_json_records_the_source_and_the_resolved_settings(combined):
    config = strict_json(combined[0] / "tanh-1" / "config.json")
    assert config["source"]["id"] == "tanh-1"
    assert (config["source"]["repeats"], config["source"]["epochs"]) == (REPEATS, EPOCHS)
    assert config["source"]["model"]["depth"] == 1
    resolved = config["resolved"]
    assert resolved["seeds"] == [0, 1]
    assert resolved["train"]["epochs"] == EPOCHS
    assert resolved["train"]["loss"] == "binary_crossentropy"
    (variant,) = resolved["variants"]
    assert variant["name"] == "tanh-1"
    assert [layer["activation"] for layer in variant["layers"]] == ["tanh", "sigmoid"]
    assert variant["optimizer"]["name"] == "SGD"
    assert variant["optimizer"]["learning_rate"] == 0.01
    assert variant["optimizer"]["momentum"] == 0.9


def test_claims_and_index_of_a_combined_run(combined):
    folder, _, claims, wall_s = combined
    doc = strict_json(folder / "claims.json")
    assert doc["schema_version"] == 1
    assert [c["id"] for c in doc["claims"]] == [
        "unscaled-target-nan",
        "standardized-target-learns",
        "normalized-inputs-best",
        "unscaled-vs-standardized-inputs-similar",
        "tanh1-reaches-80",
    ]
    assert [c["verdict"] for c in doc["claims"]] == [c.verdict for c in claims]
    assert doc["claims"][0]["verdict"] == "holds"  # the unscaled target diverges at once
    assert doc["claims"][0]["measured"]["diverged"] == f"{REPEATS}/{REPEATS}"
    index = strict_json(folder / "index.json")
    assert [(e["id"], e["folder"]) for e in index["experiments"]] == [(i, i) for i in COMBINED]
    assert index["wall_s"] == pytest.approx(wall_s)
    assert all(e["timing"]["compile_s"] >= 0 for e in index["experiments"])


STATIC_FIGURES = {"gradients", "histograms", "target", "scatter"}


def test_reports_embed_and_reference_every_figure(combined):
    folder = combined[0]
    page = (folder / "report.html").read_text(encoding="utf-8")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "The lesson's claims, each checked" in page
    static = charts = 0
    for experiment_id, doc in summaries(folder).items():
        assert doc["figures"], experiment_id
        for name in doc["figures"]:
            png = (folder / experiment_id / name).read_bytes()
            assert png.startswith(b"\x89PNG\r\n\x1a\n")
            all_diverged = all(v["diverged"] == v["n"] for v in doc["variants"])
            if name == "learning_curves.png" and all_diverged:  # a sentence instead
                assert "No loss curve to draw: every run diverged" in markdown
            else:
                assert f"]({experiment_id}/{name})" in markdown  # the PNGs, in the Markdown
            if Path(name).stem in STATIC_FIGURES:  # inlined; the others are drawn as charts
                assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page, name
                static += 1
            else:
                charts += 1
        assert f"id='{experiment_id}'" in page and f"#{experiment_id})" in markdown
    assert page.count("<img alt=") == static and static + charts == 10
    assert page.count("class='vega-chart'") >= charts
    assert "src='http" not in page and "src='/" not in page  # self-contained


def test_single_experiment_run_writes_into_the_folder_itself(single):
    folder, _, claims = single
    assert {"summary.json", "report.html", "report.md", "claims.json", "index.json"} <= {
        p.name for p in folder.iterdir()
    }
    index = strict_json(folder / "index.json")
    assert [(e["id"], e["folder"]) for e in index["experiments"]] == [("standardized-target", ".")]
    assert [c.id for c in claims] == ["standardized-target-learns"]
    page = (folder / "report.html").read_text(encoding="utf-8")
    png = (folder / "gradients.png").read_bytes()
    assert base64.b64encode(png).decode() in page
    assert "](learning_curves.png)" in (folder / "report.md").read_text()
    assert "<title>MLP with a standardized target</title>" in page


def test_lesson_lines_formats(combined, single):
    _, results, _, _ = combined
    lines = lesson_lines(single[1])
    assert re.fullmatch(r"Train: \d+\.\d{3}, Test: \d+\.\d{3}", lines[0]), lines
    train = single[1].variants[0].result.train_scores["loss"]
    test = single[1].variants[0].result.test_scores["loss"]
    assert lines[0] == f"Train: {np.mean(train):.3f}, Test: {np.mean(test):.3f}"
    assert re.fullmatch(
        r"  standardized-target: test mse median \S+ \(p10 \S+, p90 \S+\); diverged 0/2", lines[1]
    ), lines
    scaling = lesson_lines(results["input-scaling"])
    assert len(scaling) == 6
    for line, name in zip(scaling[:3], ("unscaled", "normalized", "standardized"), strict=True):
        assert re.fullmatch(rf"{name}: \d+\.\d{{3}} \(\d+\.\d{{3}}\)", line), line
    assert scaling[4].startswith("  normalized: test mse median ")
    assert lesson_lines(results["unscaled-mlp"]) == [
        "Train: nan, Test: nan",
        "  unscaled-mlp: test mse all diverged; diverged 2/2",
    ]
    tanh = lesson_lines(results["tanh-1"])
    assert re.fullmatch(r"Train: [01]\.\d{3}, Test: [01]\.\d{3}", tanh[0]), tanh
    assert "test accuracy median" in tanh[1]
    assert lesson_lines(results["regression-data"]) == []


# --- atomic_folder --------------------------------------------------------------------------


def test_atomic_folder_renames_into_place_on_success(tmp_path):
    target = tmp_path / "runs" / "a"
    with atomic_folder(target) as partial:
        assert partial.parent == target.parent and partial.name.startswith(".a.partial-")
        assert not target.exists()
        (partial / "x.txt").write_text("done")
    assert (target / "x.txt").read_text() == "done"
    assert [p.name for p in target.parent.iterdir()] == ["a"]


def test_atomic_folder_leaves_nothing_behind_on_error(tmp_path):
    target = tmp_path / "b"
    with pytest.raises(RuntimeError, match="boom"), atomic_folder(target) as partial:
        (partial / "half.json").write_text("{")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), atomic_folder(target):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_accepts_an_empty_target_and_refuses_a_full_one(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_folder(empty) as partial:
        (partial / "x").write_text("1")
    assert [p.name for p in empty.iterdir()] == ["x"]
    full = pytest.raises(
        ConfigError, match=r"already exists and is not empty; choose another --out"
    )
    with full, atomic_folder(empty):
        pytest.fail("must not be entered")
    assert [p.name for p in empty.iterdir()] == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_run_and_write_into_a_full_folder_fails_before_training(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    spec = lesson_catalog.resolve("standardized-target").override(repeats=REPEATS, epochs=EPOCHS)
    with pytest.raises(ConfigError, match="not empty"):
        run_and_write([spec], tmp_path, combined=False)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_atomic_folder_refuses_a_file_as_target(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"results\.txt"), atomic_folder(target):
        pass
