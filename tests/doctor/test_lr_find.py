"""The learning-rate range test: its rule on given losses, one compiled program for every
rate and seed, its files, and its use in the doctor's search (on a fake trainer)."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from stablelearn.diagnostics import Finding
from stablelearn.doctor.config import DoctorFlags, doctor_experiment
from stablelearn.doctor.lr_find import plan_lr_find, write_lr_find_files
from stablelearn.doctor.range_test import (
    REPAIR_ID,
    RangeTest,
    RateScores,
    constant_loss,
    rate_grid,
)
from stablelearn.doctor.search import Budget, Planned, search_repairs
from stablelearn.engine.budget import Estimate
from stablelearn.engine.plan import plan_programs
from stablelearn.errors import ConfigError
from stablelearn.experiments.runner import experiment_runs, prepare_variant_data

CSV = Path(__file__).resolve().parents[2] / "examples" / "lesson_regression.csv"
INF = np.inf


def range_test(*losses_per_rate, rates=None, baseline=1.0, user_rate=None) -> RangeTest:
    rates = rates or [10.0**k for k in range(-len(losses_per_rate), 0)]
    scores = tuple(
        RateScores(r, np.asarray(v, float)) for r, v in zip(rates, losses_per_rate, strict=True)
    )
    n = len(losses_per_rate[0])
    return RangeTest(scores, baseline, "mse", tuple(range(n)), 10, user_rate)


# --- the grid and the rule ---------------------------------------------------------------------


def test_the_default_grid_is_half_decades_from_1e5_to_1_as_a_user_would_type_them():
    grid = rate_grid()
    assert grid.tolist() == [1e-5, 3.2e-5, 1e-4, 3.2e-4, 1e-3, 3.2e-3, 0.01, 0.032, 0.1, 0.32, 1.0]
    assert rate_grid(1e-3, 1e-1, 3).tolist() == [1e-3, 0.01, 0.1]


@pytest.mark.parametrize(
    ("low", "high", "points", "message"),
    [
        (0.0, 1.0, 5, "--min must be a positive learning rate, got 0."),
        (0.1, 0.01, 5, "--max must be a learning rate above --min (0.1), got 0.01."),
        (1e-4, 1.0, 1, "--points must be at least 2, got 1."),
    ],
)
def test_a_bad_grid_is_one_sentence(low, high, points, message):
    with pytest.raises(ConfigError) as err:
        rate_grid(low, high, points)
    assert str(err.value) == message


def test_the_usable_range_is_the_consecutive_rates_around_the_best_that_close_90_percent():
    # constant prediction 1.0; best median 0.1 at 1e-2: usable up to 0.1 + 0.1 x 0.9 = 0.19
    test = range_test(
        [0.5, 0.6, 0.55],  # 1e-6: learns, too slowly
        [0.15, 0.18, 0.2],  # 1e-5: median 0.18, usable
        [0.12, 0.1, 0.11],  # 1e-4: usable
        [0.1, 0.09, 0.12],  # 1e-3: best (median 0.1)
        [0.1, INF, 0.1],  # 1e-2: one seed diverged: not usable
        [INF, INF, INF],  # 1e-1
    )
    assert test.best == 3
    assert [test.usable(i) for i in range(6)] == [False, True, True, True, False, False]
    assert test.usable_range == (1, 3)
    # the best is the range's top (the next rate up diverged on a seed): one step lower
    assert test.recommended == pytest.approx(1e-4)
    assert test.rates[4].diverged == 1 and test.rates[4].median == 0.1
    assert test.rates[5].median == INF
    summary = test.summary()
    assert summary.startswith("Usable learning rates 1e-05 .. 0.001 (median best at 0.001: ")
    assert (
        "recommended 0.0001; 0.01 and above diverge in 4/6 seeds; 1e-06 and below learn too slowly."
        in summary
    )


def test_the_best_rate_is_recommended_when_a_usable_rate_lies_above_it():
    test = range_test([0.3, 0.3], [0.1, 0.1], [0.12, 0.12], [INF, 0.5], user_rate=1e-4)
    assert test.best == 1 and test.usable_range == (1, 2)
    assert test.recommended == pytest.approx(1e-3)
    assert test.summary().endswith("Your learning rate 0.0001 is below the usable range.")


def test_a_usable_rate_cut_off_from_the_best_is_outside_the_range():
    test = range_test([0.1, 0.1], [0.9, 0.9], [0.1, 0.11], [0.1, 0.1])
    assert test.best in (0, 3)
    low, high = test.usable_range
    assert not (low <= 1 <= high)


def test_no_usable_rate_when_every_rate_diverges_or_learns_nothing():
    assert range_test([INF, 0.1], [INF, INF]).usable_range is None
    nothing = range_test([1.2, 1.3], [1.1, 1.05], baseline=1.0)  # worse than the constant
    assert nothing.usable_range is None and nothing.recommended is None
    assert nothing.summary().startswith("No usable learning rate in 0.01 .. 0.1: ")


def test_the_constant_prediction_loss():
    assert constant_loss(np.array([0.0, 2.0]), np.array([1.0, 3.0]), "mse") == pytest.approx(2.0)
    ce = constant_loss(np.array([0, 0, 0, 1]), np.array([1]), "binary_crossentropy")
    assert ce == pytest.approx(-np.log(0.25))


# --- training: every rate and seed in one program ----------------------------------------------


@pytest.fixture(scope="module")
def small_experiment():
    flags = DoctorFlags(target_scaler="standard", epochs=3, repeats=2)
    return doctor_experiment(CSV, "target", None, None, flags)


def test_every_rate_and_seed_trains_in_one_compiled_program(small_experiment, tmp_path):
    rates = rate_grid(1e-3, 1.0, 4)
    plan = plan_lr_find(small_experiment, rates)
    experiment = plan.planned.experiment
    runs = experiment_runs(experiment, prepare_variant_data(experiment, experiment.data))
    assert len(runs) == 8 and len(plan_programs(runs)) == 1  # the planner's decision
    assert plan.planned.estimate.programs == 1 and plan.planned.estimate.models == 8
    found = plan.train()
    test = found.test
    assert test.programs == 1 and test.models == 8  # what trained
    assert [r.learning_rate for r in test.rates] == rates.tolist()
    assert test.seeds == (0, 1) and test.epochs == 3 and test.user_rate == 0.01
    assert all(r.n == 2 for r in test.rates)
    assert 0 < test.baseline_loss < 2  # a standardized target: about its variance, 1
    written = write_lr_find_files(found, tmp_path)
    assert [p.name for p in written] == ["lr_find.json", "lr_find.png"]
    doc = json.loads((tmp_path / "lr_find.json").read_text(), parse_constant=_no_constants)
    assert doc["schema_version"] == 1
    assert doc["data"]["task"] == "regression" and doc["epochs"] == 3
    assert [r["learning_rate"] for r in doc["rates"]] == rates.tolist()
    assert set(doc["rates"][0]) >= {"median", "p25", "p75", "min", "max", "diverged", "usable"}
    assert doc["summary"] == test.summary() and doc["timing"]["programs"] == 1
    assert doc["configuration"]["optimizer"]["learning_rate"] == 0.01  # the user's, as given
    assert (tmp_path / "lr_find.png").stat().st_size > 10_000


def _no_constants(token):
    raise AssertionError(f"non-strict JSON token {token}")


# --- in the doctor's search --------------------------------------------------------------------

TABLES = {
    "data": {"input_scaler": "standard", "target_scaler": "standard"},
    "model": {"hidden": [{"units": 5, "activation": "relu", "kernel_initializer": "he_uniform"}],
              "output": {"units": 1, "activation": "linear"}},
    "optimizer": {"name": "sgd", "learning_rate": 0.5, "momentum": 0.9},
}  # fmt: skip
EXPLODING = Finding("exploding_gradients", "Exploding", "critical", "m", {},
                    ("clipnorm_1", "lower_learning_rate", "adam"))  # fmt: skip


class RangeFakeTrainer:
    """Scores by learning rate: 0.032 is best, 0.05 (a tenth of 0.5) still diverges."""

    def __init__(self, seconds_per_model=0.0):
        self.seconds_per_model = seconds_per_model
        self.trained: list[tuple[str, int, int]] = []

    def plan(self, candidates, first_seed, repeats, telemetry=True):
        models = len(candidates) * repeats
        estimate = Estimate(models=models, train_s=models * self.seconds_per_model)
        return Planned(tuple(candidates), first_seed, repeats, estimate)

    def _score(self, tables, seeds):
        rate = tables["optimizer"]["learning_rate"]
        if tables["optimizer"].get("clipnorm") or rate >= 0.05:
            return np.full(len(seeds), np.inf)
        return 1.0 + abs(np.log10(rate / 0.032)) + 0.01 * seeds

    def train(self, planned, what):
        from stablelearn.doctor.search import Batch

        seeds = np.arange(planned.first_seed, planned.first_seed + planned.repeats)
        out = []
        for c in planned.candidates:
            self.trained.append((c.name, planned.first_seed, planned.repeats))
            scores = self._score(c.tables, seeds)
            out.append(Batch(seeds, scores, ~np.isfinite(scores)))
        return out

    def split(self, planned):
        return [planned]

    def diagnose(self, trial):
        return ()

    def plan_rates(self, tables, rates, first_seed, repeats):
        from stablelearn.doctor.range_test import rate_candidates

        return self.plan(rate_candidates(tables, rates), first_seed, repeats, telemetry=False)

    def train_rates(self, planned, what, user_rate):
        seeds = np.arange(planned.first_seed, planned.first_seed + planned.repeats)
        scores = []
        for c in planned.candidates:
            self.trained.append((c.name, planned.first_seed, planned.repeats))
            scores.append(RateScores(c.tables["optimizer"]["learning_rate"],
                                     self._score(c.tables, seeds) / 10))  # fmt: skip
        return RangeTest(tuple(scores), 1.0, "mse", tuple(seeds), 10, user_rate,
                         models=planned.estimate.models)  # fmt: skip


def _search(trainer, budget_s=60.0):
    from stablelearn.doctor.repairs import Candidate
    from stablelearn.doctor.search import USER, Trial

    user = Trial(Candidate(USER, copy.deepcopy(TABLES)))
    user.batches += trainer.train(trainer.plan([user.candidate], 0, 10), "yours")
    budget = Budget(budget_s)
    return search_repairs(trainer, user, [EXPLODING], "regression", False, 10, budget)


def test_a_suspected_learning_rate_is_range_tested_and_its_recommendation_tried():
    trainer = RangeFakeTrainer()
    result = _search(trainer)
    step = result.steps[0]
    assert step.range_test is not None
    # the range test's seeds are not the comparisons' (0..29): choosing and proving differ
    assert step.range_test.seeds == (30, 31, 32)
    # 0.032 is the best rate but the range's top (0.1 diverges): one grid step lower
    assert step.range_test.rates[step.range_test.best].learning_rate == 0.032
    names = [c.trial.name for c in step.comparisons]
    assert names == [
        "clipnorm 1.0",
        "learning rate 0.01 (range test)",
        "learning rate 0.032 (range test best)",
        "adam",
    ]
    # the paired comparison on the step's seeds decides between the two (here the best)
    assert step.winner.name == "learning rate 0.032 (range test best)"
    assert step.winner.candidate.path == (REPAIR_ID,)
    assert step.winner.tables["optimizer"]["learning_rate"] == 0.032
    # honest spend: the range test's 11 rates x 3 seeds count among the models
    assert result.spend.range_test_models == 33
    assert result.spend.models == 10 + 4 * 10 + 33


def test_without_budget_for_the_range_test_the_blind_tenth_stays():
    trainer = RangeFakeTrainer(seconds_per_model=1.0)
    result = _search(trainer, budget_s=40.0)  # the step's 30 models fit; 33 more do not
    step = result.steps[0]
    assert step.range_test is None
    assert [c.trial.name for c in step.comparisons] == [
        "clipnorm 1.0",
        "learning rate / 10",
        "adam",
    ]


# --- the budget ----------------------------------------------------------------------------------


def test_the_budget_scales_estimates_by_how_much_slower_training_ran():
    fresh = Budget(60.0)
    assert fresh.slowdown == 1.0
    fresh.record(Estimate(train_s=2.0), 6.0)
    assert fresh.slowdown == 3.0
    assert fresh.allows(Estimate(train_s=19.0)) and not fresh.allows(Estimate(train_s=21.0))
    fast = Budget(60.0)
    fast.record(Estimate(train_s=10.0), 1.0)  # faster than estimated: no optimism
    assert fast.slowdown == 1.0
    reserved = Budget(60.0, reserve_s=3.0)
    assert reserved.allows(Estimate(train_s=56.0)) and not reserved.allows(Estimate(train_s=58.0))
    reserved.record(Estimate(train_s=1.0), 2.0)  # the reserve slows down too: 6 s now
    assert reserved.allows(Estimate(train_s=26.0)) and not reserved.allows(Estimate(train_s=27.5))


def test_a_step_trains_the_repairs_that_fit_most_severe_first():
    trainer = RangeFakeTrainer(seconds_per_model=1.0)
    result = _search(trainer, budget_s=15.0)  # room for one repair of 10 models, not three
    step = result.steps[0]
    assert [c.trial.name for c in step.comparisons] == ["clipnorm 1.0"]
    assert step.untried == ("learning rate / 10", "adam")


class SlowRangeFakeTrainer(RangeFakeTrainer):
    """Each candidate its own program, each program 0.5 s: ten times its estimate."""

    def split(self, planned):
        return [self.plan([c], planned.first_seed, planned.repeats) for c in planned.candidates]

    def plan_rates(self, tables, rates, first_seed, repeats):  # free: it does not dilute
        planned = super().plan_rates(tables, rates, first_seed, repeats)
        return Planned(planned.candidates, first_seed, repeats, Estimate(models=33))

    def train(self, planned, what):
        import time

        if what != "yours":
            time.sleep(0.5)
        return super().train(planned, what)


def test_the_budget_is_checked_before_every_program_of_a_step():
    trainer = SlowRangeFakeTrainer(seconds_per_model=0.005)  # 0.05 s a program, estimated
    result = _search(trainer, budget_s=1.2)
    step = result.steps[0]
    # all four fit the estimate; after the first program the budget knows it runs 10x
    # slow, and a third program cannot fit however the machine is loaded
    assert 1 <= len(step.comparisons) <= 2
    assert step.comparisons[0].trial.name == "clipnorm 1.0"
    assert len(step.untried) == 4 - len(step.comparisons)
    assert result.spend.slowdown >= 5  # learned from the programs it trained
