"""The command line: lesson-format output, JSON results, one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from stablelearn.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.slow
def test_train_prints_the_lesson_format_and_writes_json(tmp_path):
    out = tmp_path / "result.json"
    result = invoke(
        "train",
        "--target-scaler",
        "standard",
        "--epochs",
        "5",
        "--repeats",
        "4",
        "--json",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "Train: " in result.output and ", Test: " in result.output
    assert "diverged 0/4" in result.output
    data = json.loads(out.read_text())
    assert [m["seed"] for m in data["models"]] == [0, 1, 2, 3]
    assert data["optimizer"] == "SGD(lr=0.01, momentum=0.9)"
    assert all(m["test_loss"] is not None for m in data["models"])


@pytest.mark.slow
def test_train_reports_divergence_as_a_result():
    result = invoke("train", "--epochs", "5", "--repeats", "4")
    assert result.exit_code == 0, result.output
    assert "diverged 4/4" in result.output
    assert "Train: nan, Test: nan" in result.output


def test_bad_values_give_one_line_and_exit_2():
    for args, message in [
        (("--activation", "foo"), "Unknown activation 'foo'"),
        (("--lr", "-1"), "learning_rate must be in (0, inf)"),
        (("--clipnorm", "1", "--clipvalue", "5"), "only one clipping mode"),
        (("--data", "nope"), "Unknown dataset 'nope'"),
        (("--input-scaler", "log"), "Unknown scaler 'log'"),
        (("--init", "he_unifrom"), "Unknown initializer 'he_unifrom'"),
        (("--units", "0"), "positive integer of units"),
        (("--repeats", "0"), "--repeats must be at least 1"),
    ]:
        result = invoke("train", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
