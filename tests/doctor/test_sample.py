"""The doctor's row budget: a seeded, stratified sample of each of the user's splits,
never a held-out row in training, said in the summary and diagnosis.json.

A 300-row table with --max-rows 50 stands in for a large one; only the end-to-end test
trains (2 seeds, 2 epochs)."""

import inspect

import numpy as np
import pandas as pd
import pytest

from stablelearn.data import prepare, split_rows
from stablelearn.doctor.causes import cause_chain
from stablelearn.doctor.diagnose import Diagnosis, Score, run_doctor
from stablelearn.doctor.repairs import Candidate
from stablelearn.doctor.report import diagnosis_json, summary_lines
from stablelearn.doctor.sample import MAX_ROWS, on_sample, row_sample
from stablelearn.doctor.search import USER, Batch, SearchResult, Spend, Trial
from stablelearn.errors import ConfigError, DataError
from stablelearn.experiments import load_mapping, variant_tables

ROWS, MAX = 300, 50


def table(folder, task: str = "regression", rows: int = ROWS):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)) * 40 + 5, columns=["a", "b", "c"])
    if task == "regression":
        frame["y"] = frame["a"] * 3 + rng.normal(size=rows)
    else:  # a 4:1 imbalance, so that an unstratified sample would wander
        frame["y"] = np.where(np.arange(rows) % 5 == 0, "rare", "common")
    path = folder / f"{task}.csv"
    frame.to_csv(path, index=False)
    return path


def experiment(path, **fields):
    raw = {
        "id": "doctor-test",
        "dataset": str(path),
        "target": "y",
        "model": {"hidden": [{"units": 4}], "output": {"units": 1, "activation": "linear"}},
        "optimizer": {"name": "sgd", "learning_rate": 0.01},
        "repeats": 2,
        "epochs": 2,
        **fields,
    }
    if "task" in fields and fields["task"] == "binary":
        raw["model"]["output"]["activation"] = "sigmoid"
    return load_mapping(raw, "doctor")


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    return experiment(table(tmp_path_factory.mktemp("sample")))


def test_each_split_is_capped_by_a_sample_of_that_split_alone(regression):
    train, test = split_rows(regression.data, None, 0.3, 0)
    sample = row_sample(regression, MAX)
    assert (len(sample.train_rows), len(sample.test_rows)) == (MAX, MAX)
    assert (sample.train_total, sample.test_total) == (len(train), len(test)) == (210, 90)
    assert sample.sampled
    assert set(sample.train_rows) <= set(train) and set(sample.test_rows) <= set(test)
    assert not set(sample.train_rows) & set(test)  # no held-out row ever trains
    assert len(set(sample.train_rows)) == MAX  # without replacement


def test_the_sample_is_seeded_by_the_split_seed(tmp_path, regression):
    again = row_sample(regression, MAX)
    first = row_sample(regression, MAX)
    np.testing.assert_array_equal(first.train_rows, again.train_rows)
    np.testing.assert_array_equal(first.test_rows, again.test_rows)
    other = row_sample(experiment(table(tmp_path), split_seed=7), MAX)
    assert other.seed == 7
    assert not np.array_equal(first.train_rows, other.train_rows)


def test_no_sample_below_the_cap_or_with_max_rows_0(regression):
    for max_rows in (0, 210, MAX_ROWS):
        sample = row_sample(regression, max_rows)
        assert not sample.sampled
        assert len(sample.train_rows) == 210 and len(sample.test_rows) == 90
        assert on_sample(regression, sample) is regression


def test_the_command_line_default_is_max_rows():
    # the command spells the number out: importing this module would import JAX at startup
    from stablelearn.cli.doctor import doctor_command

    assert inspect.signature(doctor_command).parameters["max_rows"].default == MAX_ROWS


def test_a_cap_too_small_to_train_is_one_sentence(regression):
    with pytest.raises(
        ConfigError, match=r"^--max-rows must be 0 \(every row\) or at least 20, got 5\.$"
    ):
        row_sample(regression, 5)


def test_the_sampled_experiment_trains_on_the_sampled_training_rows_only(regression):
    sample = row_sample(regression, MAX)
    sampled = on_sample(regression, sample)
    assert sampled.n_train == MAX and sampled.test_fraction is None
    assert sampled.raw == regression.raw  # recommended.toml keeps the user's split
    prepared = prepare(sampled.data, n_train=sampled.n_train, test_fraction=None)
    np.testing.assert_array_equal(
        prepared.train_x, regression.data.x[sample.train_rows].astype("f4")
    )
    np.testing.assert_array_equal(prepared.test_x, regression.data.x[sample.test_rows].astype("f4"))


def test_scalers_are_fitted_on_the_sampled_training_rows(regression):
    sampled = on_sample(regression, row_sample(regression, MAX))
    prepared = prepare(sampled.data, "standard", "standard", n_train=MAX)
    np.testing.assert_allclose(prepared.train_x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(prepared.train_y.mean(), 0, atol=1e-5)
    assert abs(prepared.test_x.mean()) > 1e-3  # the held-out rows were not fitted on


def test_classification_samples_are_stratified(tmp_path):
    binary = experiment(table(tmp_path, "binary"), task="binary")
    train, test = split_rows(binary.data, None, 0.3, 0)
    sample = row_sample(binary, MAX)
    y = binary.data.y
    for rows, whole in ((sample.train_rows, train), (sample.test_rows, test)):
        assert abs(y[rows].mean() - y[whole].mean()) <= 1 / MAX


def test_a_column_that_only_varies_outside_the_sample_is_one_sentence(tmp_path, regression):
    train, _ = split_rows(regression.data, None, 0.3, 0)
    outside = sorted(set(train) - set(row_sample(regression, 20).train_rows))[0]
    path = table(tmp_path)
    frame = pd.read_csv(path)
    frame["flag"] = 0.0
    frame.loc[outside, "flag"] = 1.0  # one training row, not in the sample of 20
    frame.to_csv(path, index=False)
    flagged = experiment(path)
    assert not row_sample(flagged, 210).sampled  # a cap at the split samples nothing
    with pytest.raises(
        DataError,
        match=r"^The doctor's random 20 of the 210 training rows lack column\(s\) flag varying, .*--max-rows 0 to use every row",
    ):
        row_sample(flagged, 20)


def _diagnosis(experiment, sample) -> Diagnosis:
    """A diagnosis of nothing found, nothing tried, on `sample`."""
    tables = variant_tables(experiment.variants[0])
    user = Trial(Candidate(USER, tables), [Batch(np.arange(2), np.ones(2), np.zeros(2, bool))])
    spend = Spend(
        models=2, seconds=1.0, configurations=1, most_seeds=2, budget_s=60.0, stopped="clean"
    )
    search = SearchResult(user, (), user, (), spend)
    score = Score(USER, 0, None, 2, 0, 1.0, 1.0, 1.0, None, None, None, None, None, False)
    return Diagnosis(
        experiment, (), cause_chain(()), None, search, (score,), "test RMSE (target units)",
        False, None, None, sample,
    )  # fmt: skip


SAMPLED = (
    "The diagnosis trains on 50 of the 210 training rows and scores on 50 of the 90 "
    "held-out rows, a random sample (at most 50 of each, split seed 0) that keeps the "
    "doctor to minutes; pass --max-rows 0 to use every row."
)


def test_the_summary_and_diagnosis_json_say_that_the_diagnosis_sampled(regression):
    diagnosis = _diagnosis(regression, row_sample(regression, MAX))
    lines = summary_lines(diagnosis)
    assert lines[0].startswith("No problem found")  # the headline stays first
    assert lines[1] == SAMPLED
    rows = diagnosis_json(diagnosis, "recommended.toml")["data"]
    assert rows["rows"] == ROWS
    assert rows["rows_used"] == {
        "sampled": True, "max_rows": 50, "seed": 0, "train_rows": 50, "train_total": 210,
        "test_rows": 50, "test_total": 90,
    }  # fmt: skip
    everything = _diagnosis(regression, row_sample(regression, 0))
    assert SAMPLED not in summary_lines(everything)


@pytest.mark.slow
def test_the_doctor_trains_and_scores_every_configuration_on_the_sample(regression):
    stages = []
    diagnosis = run_doctor(regression, MAX, stages.append)
    assert diagnosis.sample.sampled
    assert [s.what for s in stages][:1] == ["your configuration"]
    assert stages[0].estimate.models == 2
    for trial in diagnosis.search.trials():
        variant = trial.first
        assert len(variant.data.train_y) == MAX and len(variant.data.test_y) == MAX
    if diagnosis.tried:
        # after any learning-rate range test, the step's programs, one stage each
        step = [s for s in stages if s.what.startswith("repairs, step 1")]
        assert step
        assert sum(s.configurations for s in step) == len(diagnosis.search.steps[0].comparisons)
    lines = summary_lines(diagnosis)
    assert any(line.startswith("The diagnosis trains on 50 of the 210") for line in lines)
