"""The experiment commands: list, show, run and reproduce, with one-line errors.

Runs use 2 repeats and 2-3 epochs, the shapes test_report and test_reproduce compile, so
a full test session compiles them once.
"""

import json
import tomllib

import pytest
from typer.testing import CliRunner

from stablelearn.cli import app
from stablelearn.lesson import catalog as lesson_catalog
from stablelearn.lesson import claims

pytestmark = pytest.mark.slow  # trains whole case studies; see the quick suite in README

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def assert_one_line_error(result, *parts: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for part in parts:
        assert part in lines[0], (part, result.output)
    assert "Traceback" not in result.output


def test_list_shows_every_experiment_in_lesson_order():
    result = invoke("list", env=WIDE)
    assert result.exit_code == 0, result.output
    ids = [e.id for e in lesson_catalog.catalog()]
    positions = [result.output.find(f" {i} ") for i in ids]
    assert all(p > 0 for p in positions), result.output
    assert positions == sorted(positions)
    assert "1 x 10 x 500 epochs" in result.output  # relu-5
    assert "4 x 30 x 100 epochs" in result.output  # gradient-clipping


def test_list_shows_full_ids_on_an_80_column_terminal():
    result = invoke("list", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for e in lesson_catalog.catalog():
        assert e.id in result.output, e.id


def test_show_prints_the_shipped_toml():
    result = invoke("show", "relu-5")
    assert result.exit_code == 0, result.output
    parsed = tomllib.loads(result.output)
    assert parsed["id"] == "relu-5"
    assert parsed["model"]["depth"] == 5 and parsed["epochs"] == 500
    assert result.output == lesson_catalog.catalog_text("relu-5")


def test_show_of_an_unknown_id_is_one_line():
    assert_one_line_error(invoke("show", "nope"), "No shipped experiment or sweep 'nope'", "list")


def test_run_writes_the_run_folder_and_prints_the_lesson_format(tmp_path):
    out = tmp_path / "std"
    result = invoke(
        "run", "standardized-target", "--repeats", "2", "--epochs", "3", "--out", str(out), "--quiet"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Train: " in result.output and ", Test: " in result.output
    assert "diverged 0/2" in result.output
    assert "The lesson's claims, checked" in result.output
    assert f"Wrote {out}" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experiment"]["repeats"] == 2 and summary["experiment"]["epochs"] == 3
    assert len(summary["models"]) == 2
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page
    config = json.loads((out / "config.json").read_text())
    assert (config["source"]["repeats"], config["source"]["epochs"]) == (2, 3)
    assert "fit_scalers_on" not in config["source"]  # no --leak-free: nothing overridden


def test_run_leak_free_fits_scalers_on_the_training_rows(tmp_path):
    out = tmp_path / "tanh1"
    result = invoke(
        "run", "tanh-1", "--repeats", "2", "--epochs", "3", "--out", str(out), "--quiet", "--leak-free"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experiment"]["fit_scalers_on"] == "train"  # the catalog says "all"
    assert summary["metric"] == "accuracy"


def test_run_of_an_edited_copy(tmp_path):
    text = lesson_catalog.catalog_text("unscaled-mlp").replace("repeats = 10", "repeats = 2")
    path = tmp_path / "mine.toml"
    path.write_text(text.replace("epochs = 100", "epochs = 3"))
    out = tmp_path / "out"
    result = invoke("run", str(path), "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert "Train: nan, Test: nan" in result.output
    assert "diverged 2/2" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"][0]["diverged"] == 2


def test_run_of_a_missing_or_broken_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("run", "missing.toml"), "missing.toml")
    broken = lesson_catalog.catalog_text("standardized-target").replace(
        "repeats = 10", 'repeats = "ten"'
    )
    (tmp_path / "broken.toml").write_text(broken)
    assert_one_line_error(invoke("run", "broken.toml"), "broken.toml", "repeats", "'ten'")
    (tmp_path / "syntax.toml").write_text('id = "x\n')
    assert_one_line_error(invoke("run", "syntax.toml"), "syntax.toml", "not valid TOML")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.toml", "syntax.toml"]


def test_run_refuses_a_full_output_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = invoke("run", "standardized-target", "--out", str(tmp_path), "--quiet")
    assert_one_line_error(result, "not empty", "--out")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_run_with_a_file_as_output_folder_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = invoke(
        "run", "standardized-target", "--repeats", "2", "--epochs", "3",
        "--out", str(tmp_path / "afile"), "--quiet",
    )  # fmt: skip
    assert_one_line_error(result, "afile")


@pytest.mark.parametrize("command", ["run", "reproduce"])
@pytest.mark.parametrize("option", ["--repeats", "--epochs"])
def test_non_positive_overrides_exit_2(command, option, tmp_path):
    args = [command, "standardized-target"] if command == "run" else [command]
    result = invoke(*args, option, "0", "--out", str(tmp_path / "never"))
    assert_one_line_error(result, f"{option} must be at least 1, got 0")
    assert not (tmp_path / "never").exists()


def test_reproduce_runs_every_experiment_and_prints_the_claims_table(tmp_path):
    out = tmp_path / "all"
    result = invoke(
        "reproduce", "--repeats", "2", "--epochs", "2", "--out", str(out), "--quiet", env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "The lesson's claims, checked" in result.output
    for claim in claims.CLAIMS:
        assert claim.text in result.output, claim.id
    assert "Train: " not in result.output  # --quiet leaves out the per-experiment printout
    index = json.loads((out / "index.json").read_text())
    assert [e["id"] for e in index["experiments"]] == [e.id for e in lesson_catalog.catalog()]
    assert len(json.loads((out / "claims.json").read_text())["claims"]) == len(claims.CLAIMS)
    assert (out / "report.html").stat().st_size > 10_000
