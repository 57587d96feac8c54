"""`stablelearn lr-find` on the command line: a small range test on the shipped CSV (the
table, the one-line answer and the files), and bad input in one line with exit 2."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stablelearn.cli import app

CSV = Path(__file__).resolve().parents[2] / "examples" / "lesson_regression.csv"
WIDE = {"COLUMNS": "200"}
runner = CliRunner()
# 4 rates x 2 seeds x 3 epochs: one small program, the shapes of tests/doctor/test_lr_find.py
SMALL = ("--target-scaler", "standard", "--epochs", "3", "--repeats", "2", "--min", "0.001",
         "--max", "1", "--points", "4")  # fmt: skip


def invoke(*args: str):
    return runner.invoke(app, ["lr-find", *map(str, args)], env=WIDE)


def test_lr_find_prints_a_row_per_rate_the_answer_and_writes_its_files(tmp_path):
    out = tmp_path / "lr"
    result = invoke(CSV, "--target", "target", *SMALL, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [line for line in lines if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["0.001", "0.01", "0.1", "1"]
    assert "yours" in rows[1]  # the user's 0.01 (the lesson's SGD)
    answer = lines[-2]
    assert answer.startswith(("Usable learning rates ", "No usable learning rate in 0.001 .. 1"))
    assert lines[-1] == f"Wrote {out} (lr_find.json, lr_find.png)"
    doc = json.loads((out / "lr_find.json").read_text())
    assert doc["schema_version"] == 1 and doc["summary"] == answer
    assert doc["timing"]["programs"] == 1 and doc["timing"]["models"] == 8
    assert (out / "lr_find.png").is_file()


def test_dry_run_prints_one_program_and_trains_nothing(tmp_path):
    result = invoke(CSV, "--target", "target", *SMALL, "--out", tmp_path / "lr", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Would train 8 models, ")
    assert "in 1 compiled program:" in result.output
    assert not (tmp_path / "lr").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--min", "0"), "Error: --min must be a positive learning rate, got 0."),
        (("--min", "0.1", "--max", "0.01"), "Error: --max must be a learning rate above --min (0.1), got 0.01."),
        (("--points", "1"), "Error: --points must be at least 2, got 1."),
        (("--repeats", "0"), "Error: --repeats must be at least 1, got 0."),
        (("--target", "nope"), "Error: "),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_leaves_no_folder(tmp_path, args, message):
    target = () if "--target" in args else ("--target", "target")
    out = tmp_path / "lr"
    result = invoke(CSV, *target, *args, "--out", out, "--quiet")
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_missing_file_is_one_line(tmp_path):
    result = invoke(tmp_path / "missing.csv", "--target", "y", "--quiet")
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1 and result.output.startswith("Error: ")
