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


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["doctor", "data.csv", "--target", "y", "--epochs", "abc"],
            "Error: Invalid value for '--epochs': ",
        ),
        (["doctor", "data.csv", "--target", "y", "--bogus"], "Error: No such option: --bogus"),
        (["doctor", "data.csv"], "Error: Missing option '--target'."),
        (["train", "--repeats", "x"], "Error: Invalid value for '--repeats': "),
        (["frob"], "Error: No such command 'frob'."),
        (["--bogus"], "Error: No such option: --bogus."),
    ],
    ids=["bad-int", "unknown-option", "missing-option", "train-bad-int", "command", "top-level"],
)
def test_a_mistyped_flag_or_value_is_one_line_on_stderr_and_exit_2(args, line):
    """Not typer's usage line, hint and boxed panel: the same one line as any bad input."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr
    assert lines[0].endswith(".")
    assert "Traceback" not in result.output and "Usage:" not in result.output


def test_help_and_no_arguments_still_print_the_help():
    for args in (["--help"], ["doctor", "--help"], []):
        result = invoke(*args)
        assert "Usage: " in result.output, (args, result.output)
        assert "Error:" not in result.output, (args, result.output)
    assert invoke("--help").exit_code == 0
    assert "--encoding" in invoke("doctor", "--help").output
