"""`stablelearn sweep`: trains, prints the cells and the comparisons, resumes, and turns
bad input into one line."""

import json
import sys

import pytest
import tomli_w
from conftest import TWO_GROUPS, small_sweep
from test_cli_experiments import WIDE, assert_one_line_error, invoke


def write_sweep(tmp_path, **changes):
    path = tmp_path / "small.toml"
    path.write_text(tomli_w.dumps(small_sweep(**changes)), encoding="utf-8")
    return path


@pytest.mark.slow
def test_sweep_trains_writes_and_resumes(tmp_path):
    path = write_sweep(tmp_path, axes=TWO_GROUPS)
    out = tmp_path / "out"
    result = invoke("sweep", str(path), "--out", str(out), "--quiet", "--workers", "2", env=WIDE)
    assert result.exit_code == 0, result.output
    assert "units=8, learning_rate=0.001" in result.output
    assert "Baseline: units=4, learning_rate=0.01" in result.output
    assert "12 models in 2 compiled groups" in result.output
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["timing"]["groups_resumed"] == 0
    again = invoke("sweep", str(path), "--out", str(out), "--quiet", "--workers", "2", env=WIDE)
    assert again.exit_code == 0, again.output
    assert "2 loaded from an earlier run" in again.output
    cut = sorted((out / "groups").glob("*.npz"))[0]
    cut.write_bytes(cut.read_bytes()[:100])  # a full disk or a copy cut short
    healed = invoke("sweep", str(path), "--out", str(out), "--quiet", "--workers", "2", env=WIDE)
    assert healed.exit_code == 0, healed.output
    assert f"{cut} is unreadable (truncated?); retraining it." in healed.output
    assert "1 loaded from an earlier run" in healed.output
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    fresh = invoke(
        "sweep", str(path), "--out", str(out), "--quiet", "--fresh", "--workers", "2", env=WIDE
    )
    assert "2 loaded" not in fresh.output
    assert json.loads((out / "sweep.json").read_text())["cells"] == summary["cells"]


def test_dry_run_lists_cells_and_groups(tmp_path):
    path = write_sweep(tmp_path)
    result = invoke("sweep", str(path), "--dry-run", "--repeats", "5", "--workers", "1", env=WIDE)
    assert result.exit_code == 0, result.output
    assert "4 cells x 5 repeats in 1 compiled groups" in result.output
    deep = write_sweep(tmp_path, axes={"model.depth": [1, 2], "optimizer.learning_rate": [0.1]})
    two = invoke("sweep", str(deep), "--dry-run", env=WIDE)
    assert "in 2 compiled groups" in two.output  # packed, then split in two
    assert "learning_rate=0.001, input_scaler=standard" in result.output
    assert not (tmp_path / "runs").exists()


def test_list_and_show_include_shipped_sweeps():
    listed = invoke("list", env=WIDE)
    assert "depth-activation" in listed.output and "model.depth x activation" in listed.output
    shown = invoke("show", "clip-thresholds")
    assert shown.exit_code == 0 and shown.output.startswith('id = "clip-thresholds"')


def test_bad_input_is_one_line(tmp_path, monkeypatch):
    assert_one_line_error(invoke("sweep", str(tmp_path / "nope.toml")), "No sweep file at")
    assert_one_line_error(invoke("sweep", "nope"), "No shipped sweep 'nope'")
    path = write_sweep(tmp_path, axes={"model.depth": []})
    assert_one_line_error(invoke("sweep", str(path)), "axes.model.depth is empty")
    good = write_sweep(tmp_path)
    assert_one_line_error(invoke("sweep", str(good), "--backend", "dask"), "--backend must be")
    assert_one_line_error(invoke("sweep", str(good), "--repeats", "0"), "--repeats must be")
    assert_one_line_error(
        invoke("sweep", str(good), "--address", "auto", "--out", str(tmp_path / "o")),
        "--address applies to --backend ray only",
    )
    assert_one_line_error(invoke("sweep", str(good), "--workers", "0"), "--workers must be")
    assert_one_line_error(
        invoke("sweep", str(good), "--workers", "2", "--backend", "ray"),
        "--workers applies to the local backend",
    )
    (tmp_path / "file").write_text("x")
    assert_one_line_error(invoke("sweep", str(good), "--out", str(tmp_path / "file")), "is a file")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the ray extra were not installed
    assert_one_line_error(
        invoke("sweep", str(good), "--backend", "ray", "--out", str(tmp_path / "r")),
        "pip install 'stablelearn[ray]'",
    )
