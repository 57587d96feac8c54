"""Budgets on the command line: --dry-run prints the estimate and writes nothing; a
plan that cannot fit is refused in one sentence before any work; Ctrl-C exits 130."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stablelearn.cli import app
from stablelearn.lesson.catalog import catalog_text

runner = CliRunner()


def _experiment(tmp_path: Path, **replace: str) -> Path:
    text = catalog_text("unscaled-mlp")
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "input-scaling", "--dry-run"], "Would train 90 models, 144,000 model-steps"),
        (["reproduce", "--dry-run"], "Would train 310 models"),
        (["sweep", "scalers", "--dry-run", "--epochs", "2"], "Would train"),
    ],
)
def test_dry_run_prints_the_estimate_and_writes_nothing(tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert expected in result.output and "peak memory about" in result.output
    assert list(tmp_path.iterdir()) == []


def _lesson_csv(tmp_path: Path) -> Path:
    from stablelearn.data import lesson_regression

    data = lesson_regression()
    csv = tmp_path / "d.csv"
    header = ",".join([f"x{i}" for i in range(20)] + ["y"])
    rows = [",".join(map(str, [*x, y])) for x, y in zip(data.x[:200], data.y[:200], strict=True)]
    csv.write_text("\n".join([header, *rows]) + "\n")
    return csv


def test_the_doctor_dry_run_counts_the_repairs_it_may_try(tmp_path):
    csv = _lesson_csv(tmp_path)
    result = runner.invoke(app, ["doctor", str(csv), "--target", "y", "--dry-run"])
    assert result.exit_code == 0, result.output
    # 10 seeds, then up to 8 repairs; 140 training rows are 5 steps an epoch
    assert "Would train 90 models, 45,000 model-steps" in result.output
    assert "The diagnosis trains on" not in result.output  # 200 rows: no sample
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_the_doctor_dry_run_says_it_samples_and_estimates_the_sample(tmp_path):
    csv = _lesson_csv(tmp_path)
    args = ["doctor", str(csv), "--target", "y", "--dry-run", "--max-rows", "50"]
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "The diagnosis trains on 50 of the 140 training rows and scores on 50 of the 60 "
        "held-out rows, a random sample (at most 50 of each, split seed 0)"
    )
    assert lines[0].endswith("pass --max-rows 0 to use every row.")
    assert lines[1].startswith("Would train 90 models, 18,000 model-steps")  # 2 steps an epoch


def test_a_model_that_cannot_fit_in_memory_is_refused_before_any_work(tmp_path):
    exp = _experiment(tmp_path, **{"units = 25": "units = 100000"})
    exp.write_text(exp.read_text().replace("hidden = [", "hidden = [{units = 100000}, "))
    result = runner.invoke(app, ["run", str(exp), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "GiB of memory but" in lines[0], result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml"]


def test_a_long_run_says_how_long_before_it_starts(tmp_path):
    exp = _experiment(tmp_path, **{"epochs = 100": "epochs = 100000"})
    result = runner.invoke(app, ["run", str(exp), "--dry-run"])
    assert "16,000,000 model-steps" in result.output and "min" in result.output


@pytest.mark.slow
def test_ctrl_c_stops_a_long_run_within_two_seconds_and_leaves_nothing(tmp_path):
    exp = _experiment(
        tmp_path,
        **{
            "epochs = 100": "epochs = 100000",
            'target_scaler = "none"': 'target_scaler = "standard"',
        },
    )
    env = {**os.environ, "STABLELEARN_COMPILE_CACHE": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "stablelearn", "run", str(exp), "--out", str(tmp_path / "out"),
         "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    # the estimate is printed before compiling, then training takes minutes
    assert "This will train" in process.stdout.readline()
    time.sleep(2)
    assert process.poll() is None
    os.kill(process.pid, signal.SIGINT)
    start = time.perf_counter()
    _, err = process.communicate(timeout=30)
    assert time.perf_counter() - start < 2.0
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "Interrupted; nothing was written."
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml"]
