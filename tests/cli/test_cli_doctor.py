"""`stablelearn doctor` on the command line: a full run on the shipped CSV, and every bad
input ending in one line, exit status 2 and no output folder.

The full run uses 3 repeats of 20 epochs. The search adds seeds to its leaders up to 3 x 3,
and with 9 paired seeds no repair can be significant after Holm's correction over six
repairs (the smallest two-sided signed-rank p for 9 pairs is 2 / 2^9, times 6 = 0.023,
above the 0.05 / 3 a look needs), so the doctor says that no repair measurably beat the
user's configuration and recommended.toml holds that configuration.
"""

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stablelearn.cli import app
from stablelearn.experiments import load_file

pytestmark = pytest.mark.slow  # trains whole case studies; see the quick suite in README

CSV = Path(__file__).resolve().parents[2] / "examples" / "lesson_regression.csv"
WIDE = {"COLUMNS": "200"}
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["doctor", *map(str, args)], env=WIDE)


def no_constants(token):
    raise AssertionError(f"non-strict JSON token {token}")


@pytest.fixture(scope="module")
def doctor_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "diag"
    result = invoke(
        CSV, "--target", "target", "--repeats", "3", "--epochs", "20", "--out", out, "--quiet",
        "--budget", "600",  # what is printed, not what a loaded machine's 60 s allow
    )  # fmt: skip
    return result, out


def test_doctor_exits_0_and_prints_the_findings_and_the_verdict(doctor_run):
    result, out = doctor_run
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "Cause: regression target with a large spread. No repair measurably beat your configuration."
    )
    assert lines[1].startswith("Why: The target's spread (std 153) makes the gradients large; ")
    assert lines[2].startswith("[warning] Regression target with a large spread: ")
    assert "standard deviation of 153" in lines[2]
    assert lines[3].startswith(
        "  [critical] Exploding gradients: 3 of 3 models blew up (from epoch 1;"
    )
    # exploding gradients suspect the learning rate: a range test runs before the repairs
    assert lines[4].startswith("Range test, step 1 (33 models, 3 seeds per rate): ")
    assert lines[5].startswith("No repair measurably beat your configuration (a paired improvement")
    assert lines[6].startswith("With at most 9 seeds per configuration and ")
    assert lines[7].startswith("Search: ")
    table = result.output
    assert "test RMSE (target units)" in table
    for name in ("your configuration", "scale target (standard)", "clipnorm 1.0", "adam"):
        assert name in table, name
    assert "9/9" in table  # your configuration: 9 of 9 diverged (seeds added for the leaders)
    assert f"Wrote {out} (diagnosis.json, report.html, recommended.toml)" in result.output
    assert "Traceback" not in result.output


def test_doctor_writes_strict_json_and_a_report(doctor_run):
    result, out = doctor_run
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "diagnosis.json").read_text(), parse_constant=no_constants)
    assert [f["id"] for f in doc["findings"]] == ["target_spread", "exploding_gradients"]
    assert doc["repeats"] == 3 and doc["epochs"] == 20
    assert doc["data"]["dataset"] == str(CSV)
    assert doc["data"]["task"] == "regression"
    assert doc["recommended"] is None
    yours = doc["candidates"][0]
    assert yours["name"] == "your configuration"
    assert (yours["n"], yours["diverged"], yours["median"]) == (9, 9, None)
    repairs = doc["candidates"][1:]
    assert len(repairs) == 6
    for repair in repairs:
        assert repair["diverged"] == 0 and np.isfinite(repair["median"]), repair["name"]
        assert repair["p_holm"] >= 0.05 / 3 and repair["beats"] is False
        assert repair["versus"] == "your configuration" and repair["step"] == 1
        assert repair["tables"]["model"]["hidden"][0]["units"] == 25
    page = (out / "report.html").read_text()
    assert "<html" in page.lower()
    assert "Exploding gradients" in page and "class='vega-chart'" in page
    headline = page[page.index("id='headline'") : page.index("class='toc'")]
    assert "No repair measurably beat your configuration" in headline
    assert "class='callout callout-problem'" in headline
    assert "<pre>" not in headline  # no recommended change, no code
    # nothing recommended: no highlighted row, every repair row says why
    assert "<tr class='recommended'>" not in page and "◐ not significant" in page
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


def test_doctor_writes_the_users_configuration_as_the_recommended_toml(doctor_run):
    _, out = doctor_run
    raw = tomllib.loads((out / "recommended.toml").read_text())
    assert raw["title"].endswith(": your configuration")
    assert raw["optimizer"] == {
        "name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": False,
    }  # fmt: skip
    assert raw["data"] == {"input_scaler": "none", "target_scaler": "none"}
    assert raw["model"]["hidden"][0]["activation"] == "relu"
    experiment = load_file(out / "recommended.toml")
    assert experiment.data.x.shape == (1000, 20)
    assert experiment.repeats == 3 and experiment.config.epochs == 20


# --- bad inputs -------------------------------------------------------------------------------


def lesson_frame() -> pd.DataFrame:
    return pd.read_csv(CSV)


def write(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def missing_file(folder):
    return [folder / "nope.csv", "--target", "target"], ["No such file", "nope.csv"]


def garbage_file(folder):
    path = folder / "garbage.csv"
    path.write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)))
    return [path, "--target", "target"], ["Could not read garbage.csv as a table"]


def empty_file(folder):
    (folder / "empty.csv").write_text("")
    return [folder / "empty.csv", "--target", "target"], ["Could not read empty.csv as a table"]


def missing_target(folder):
    path = write(folder, "small.csv", lesson_frame()[["x0", "x1", "target"]])
    return [path, "--target", "price"], ["small.csv has no column 'price'", "x0, x1, target"]


def text_feature(folder):
    frame = lesson_frame()
    frame["city"] = ["Oslo", "Rome"] * 500
    path = write(folder, "text.csv", frame)
    return [path, "--target", "target"], ["Feature column(s) city are not numeric", "get_dummies"]


def nan_target(folder):
    frame = lesson_frame()
    frame.loc[[3, 400], "target"] = np.nan
    path = write(folder, "holes.csv", frame)
    return [path, "--target", "target"], ["The target 'target' is missing in 2 row(s)"]


def nan_feature(folder):
    frame = lesson_frame()
    frame.loc[10, "x7"] = np.nan
    path = write(folder, "gap.csv", frame)
    return [path, "--target", "target"], ["Feature column(s) x7 contain missing or infinite"]


def too_few_rows(folder):
    path = write(folder, "few.csv", lesson_frame().head(10))
    return [path, "--target", "target"], ["few.csv has 10 rows; at least 20 are needed"]


def wrong_task(folder):
    return [CSV, "--target", "target", "--task", "binary"], [
        "A binary task needs a target with 2 values; 'target' has 1000."
    ]


def unknown_task(folder):
    return [CSV, "--target", "target", "--task", "ranking"], ["Unknown task 'ranking'"]


def zero_repeats(folder):
    return [CSV, "--target", "target", "--repeats", "0"], ["--repeats must be at least 1, got 0."]


def tiny_max_rows(folder):
    return [CSV, "--target", "target", "--max-rows", "5"], [
        "--max-rows must be 0 (every row) or at least 20, got 5."
    ]


def zero_epochs(folder):
    return [CSV, "--target", "target", "--epochs", "0"], ["--epochs must be at least 1, got 0."]


def repeated_target(folder):
    frame = lesson_frame()[["x0", "target", "x1"]].copy()
    frame.columns = ["x0", "target", "target"]
    path = write(folder, "twice.csv", frame)
    return [path, "--target", "target"], [
        "twice.csv has more than one column named 'target'; give each column its own name."
    ]


def huge_feature(folder):
    frame = lesson_frame()
    frame["x3"] *= 1e300
    path = write(folder, "huge.csv", frame)
    return [path, "--target", "target"], [
        "Feature column(s) x3 hold values beyond float32's range",
        "rescale or log-transform them first.",
    ]


def infinite_feature(folder):
    frame = lesson_frame()
    frame.loc[5, "x2"] = -np.inf
    path = write(folder, "inf.csv", frame)
    return [path, "--target", "target"], ["Feature column(s) x2 contain missing or infinite"]


def latin1_file(folder):
    frame = lesson_frame().rename(columns={"x0": "größe"})
    path = folder / "latin.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    return [path, "--target", "target"], [
        "latin.csv does not decode as utf-8 (byte 0xf6);",
        "for example --encoding latin-1.",
    ]


def unknown_encoding(folder):
    return [CSV, "--target", "target", "--encoding", "klingon"], [
        "'klingon' is not a text encoding; give one such as utf-8, latin-1 or cp1252."
    ]


def spreadsheet(folder):
    (folder / "book.xlsx").write_bytes(b"PK\x03\x04")
    return [folder / "book.xlsx", "--target", "target"], [
        "book.xlsx: expected a .csv, .tsv, .txt or .parquet file"
    ]


def missing_config(folder):
    return [CSV, "--target", "target", "--config", folder / "mine.toml"], [
        "No configuration file at",
        "mine.toml",
    ]


BAD_INPUTS = [
    missing_file, garbage_file, empty_file, missing_target, text_feature, nan_target,
    nan_feature, too_few_rows, wrong_task, unknown_task, zero_repeats, zero_epochs, tiny_max_rows,
    missing_config,
    repeated_target, huge_feature, infinite_feature, latin1_file, unknown_encoding, spreadsheet,
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.__name__)
def test_bad_input_is_one_line_exit_2_and_leaves_no_folder(tmp_path, case):
    args, parts = case(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "diag"
    # small settings in case the input were (wrongly) accepted and trained
    quick = [] if {"--repeats", "--epochs"} & set(args) else ["--repeats", "2", "--epochs", "2"]
    result = invoke(*args, *quick, "--out", out, "--quiet")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert result.stderr.splitlines() == lines
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .diag.partial-* left


def test_a_file_named_and_written_as_people_do_is_diagnosed(tmp_path):
    """A space and an accent in the name, gzip, semicolons and latin-1: read as written,
    and the experiment id is derived from the name (the name itself stays on display)."""
    frame = lesson_frame().head(60)[["x0", "x1", "x2", "target"]]
    frame = frame.rename(columns={"x2": "température"})
    path = tmp_path / "my données.csv.gz"
    frame.to_csv(path, sep=";", index=False, encoding="latin-1")
    out = tmp_path / "diag"
    result = invoke(
        path, "--target", "target", "--encoding", "latin-1", "--repeats", "2", "--epochs", "2",
        "--out", out, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    raw = tomllib.loads((out / "recommended.toml").read_text())
    assert raw["id"] == "doctor-my-donnees-recommended"
    assert raw["title"].startswith("Your configuration on my données.csv.gz")
    assert raw["encoding"] == "latin-1"
    experiment = load_file(out / "recommended.toml")
    assert experiment.data.feature_names == ("x0", "x1", "température")
    np.testing.assert_allclose(experiment.data.y, frame["target"].to_numpy())


def test_a_table_over_max_rows_is_diagnosed_on_a_sample_and_says_so(tmp_path):
    """Progress (the plan, each stage as it ends) and the sample, said before training
    and again with the verdict, in diagnosis.json and in the report."""
    path = write(tmp_path, "big.csv", lesson_frame().head(100))
    out = tmp_path / "diag"
    result = invoke(path, "--target", "target", "--repeats", "2", "--epochs", "2",
                    "--max-rows", "30", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    said = (
        "The diagnosis trains on 30 of the 70 training rows and scores on 30 of the 30 "
        "held-out rows, a random sample (at most 30 of each, split seed 0) that keeps the "
        "doctor to minutes; pass --max-rows 0 to use every row."
    )
    lines = result.output.splitlines()
    assert lines[0] == said
    assert lines[1].startswith("This will train 18 models, ")
    assert lines[2].startswith("Trained your configuration (2 models) in ")
    # the step's repairs train program by program (the budget is checked before each)
    assert lines[3].startswith("Trained repairs, step 1, program 1 of 2 (10 models) in ")
    assert said in lines[4:]  # with the verdict
    doc = json.loads((out / "diagnosis.json").read_text(), parse_constant=no_constants)
    assert doc["data"]["rows"] == 100
    assert doc["data"]["rows_used"] == {
        "sampled": True, "max_rows": 30, "seed": 0, "train_rows": 30, "train_total": 70,
        "test_rows": 30, "test_total": 30,
    }  # fmt: skip
    assert said in doc["summary"]
    assert said in (out / "report.html").read_text()
    raw = tomllib.loads((out / "recommended.toml").read_text())
    assert "n_train" not in raw  # the recommendation trains on every row
