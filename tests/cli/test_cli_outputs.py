"""Every command's output folder or file: checked before any training, written by one
process at a time, and cleaned of what killed runs left half-written.

Nothing here trains: each command fails at its output, which it opens before training
(the small --epochs and --repeats only bound the cost if one wrongly went on).
"""

from pathlib import Path

import pytest
import tomli_w
from conftest import another_writer, small_sweep
from typer.testing import CliRunner

from stablelearn.cli import app
from stablelearn.io import lock_path

CSV = Path(__file__).resolve().parents[2] / "examples" / "lesson_regression.csv"
UNWRITABLE = Path("/proc/stablelearn-test")  # not even root may create files in /proc
QUICK = ["--epochs", "2", "--repeats", "2", "--quiet"]
COMMANDS = ["run", "reproduce", "doctor", "sweep"]

runner = CliRunner()


def command_line(command: str, out: Path, sweep_file: Path) -> list[str]:
    inputs = {
        "run": ["standardized-target"],
        "reproduce": [],
        "doctor": [str(CSV), "--target", "target"],
        "sweep": [str(sweep_file)],
    }[command]
    return [command, *inputs, *QUICK, "--out", str(out)]


@pytest.fixture
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "small.toml"
    path.write_text(tomli_w.dumps(small_sweep()), encoding="utf-8")
    return path


def error_line(args: list[str]) -> str:
    """The single line a command printed on stderr, having exited with status 2."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == "", result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_that_cannot_be_created_fails_before_training(command, tmp_path, sweep_file):
    line = error_line(command_line(command, UNWRITABLE, sweep_file))
    assert line == f"Error: Cannot write to {UNWRITABLE}: No such file or directory."
    (tmp_path / "afile").write_text("x")
    line = error_line(command_line(command, tmp_path / "afile" / "out", sweep_file))
    assert line.endswith("out: " + f"{tmp_path / 'afile'} is a file, not a folder.")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


def test_train_checks_its_json_file_before_training(tmp_path):
    args = ["train", "--epochs", "2", "--repeats", "2", "--json"]
    assert error_line([*args, str(tmp_path)]).endswith("is a folder; give a file name to write to.")
    line = error_line([*args, str(UNWRITABLE / "result.json")])
    assert line == f"Error: Cannot write to {UNWRITABLE}/result.json: No such file or directory."
    (tmp_path / "afile").write_text("x")
    line = error_line([*args, str(tmp_path / "afile" / "result.json")])
    assert line.endswith("afile is a file, not a folder.")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_second_command_writing_the_same_out_fails_at_once(command, tmp_path, sweep_file):
    out = tmp_path / "out"
    with another_writer(out) as partial:
        line = error_line(command_line(command, out, sweep_file))
        assert line == (
            f"Error: Another stablelearn process is writing to {out}; "
            "wait for it or choose another --out."
        )
        assert (partial / "half.json").is_file()  # the other writer's work is untouched
        assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", partial.name]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_partial_folders_of_killed_runs_are_cleaned_but_not_a_live_ones(
    command, tmp_path, sweep_file
):
    with another_writer(tmp_path / "live") as live:
        killed = tmp_path / ".killed.partial-abcd1234"  # as a kill -9 leaves it
        killed.mkdir()
        (killed / "summary.json").write_text("{")
        lock_path(tmp_path / "killed").touch()
        error_line(command_line(command, tmp_path / "live", sweep_file))  # busy, but cleans
        assert sorted(p.name for p in tmp_path.iterdir()) == [".live.lock", live.name]
