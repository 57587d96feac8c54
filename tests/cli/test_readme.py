"""The README's doctor walkthrough is what the doctor prints today.

Every word, name and row of the README's block must match the command's output; the
numbers must match too, within a tolerance: the doctor's numbers are deterministic on
one machine but move between CPUs (the recommended median test RMSE read 1.287 on the
development machine and 1.506 on another machine of the same kind). The seconds each
training stage took ("Trained ... in 3.8 s.") and the search's seconds ("... 6.9 s (budget
60 s)") are not compared: they follow the machine's load.
"""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stablelearn.cli import app

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
COMMAND = "$ stablelearn doctor examples/lesson_regression.csv --target target"
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
RELATIVE_TOLERANCE = 0.35
SECONDS = re.compile(r"[\d.]+ (?:s|min) \(budget")  # the search's time, before its budget


def readme_block() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(COMMAND) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("Wrote "))
    return lines[start:end]


def comparable(lines: list[str]) -> list[str]:
    """Lines as the README shows them: no table borders, white space folded."""
    kept = [" ".join(line.split()) for line in lines if line.strip()]
    return [line for line in kept if line[0] not in "┏┡└" and not line.startswith("Wrote ")]


def test_the_doctor_walkthrough_matches_what_the_doctor_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        app,
        ["doctor", "examples/lesson_regression.csv", "--target", "target",
         "--out", str(tmp_path / "doctor")],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed, documented = comparable(result.output.splitlines()), comparable(readme_block())
    skeleton = [NUMBER.sub("#", line) for line in printed]
    assert skeleton == [NUMBER.sub("#", line) for line in documented], "\n".join(printed)
    for got_line, want_line in zip(printed, documented, strict=True):
        if got_line.startswith("Trained "):
            continue
        got_line, want_line = SECONDS.sub("(budget", got_line), SECONDS.sub("(budget", want_line)
        for got, want in zip(NUMBER.findall(got_line), NUMBER.findall(want_line), strict=True):
            assert float(got) == pytest.approx(float(want), rel=RELATIVE_TOLERANCE), got_line
