"""The repair search on a fake trainer: scores per (repair path, seed) are given, so
the tests check the decisions (paired tests, looks, composition, budget), not training."""

import copy

import numpy as np
import pytest

from stablelearn.diagnostics import Finding
from stablelearn.doctor import search as search_module
from stablelearn.doctor.repairs import Candidate, candidate_repairs
from stablelearn.doctor.search import (
    ALPHA,
    LOOKS,
    USER,
    Batch,
    Budget,
    Planned,
    Trial,
    search_repairs,
)
from stablelearn.engine.budget import Estimate

TABLES = {
    "data": {"input_scaler": "none", "target_scaler": "none"},
    "model": {"hidden": [{"units": 5, "activation": "relu", "kernel_initializer": "he_uniform"}],
              "output": {"units": 1, "activation": "linear"}},
    "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9},
}  # fmt: skip
TARGET = Finding("target_spread", "Target spread", "warning", "m", {},
                 ("scale_target_standard", "clipnorm_1"))  # fmt: skip
INPUTS = Finding("unscaled_inputs", "Unscaled inputs", "warning", "m", {},
                 ("scale_inputs_standard",))  # fmt: skip
REPEATS = 10


class FakeTrainer:
    """RMSE per seed = the level of the candidate's repair path + a small seed effect;
    `noisy` paths lose on some seeds; each path has the findings `diagnosis` gives it."""

    def __init__(self, levels, diagnosis=None, noisy=(), seconds_per_model=0.0):
        self.levels, self.diagnosis, self.noisy = levels, diagnosis or {}, set(noisy)
        self.seconds_per_model = seconds_per_model
        self.trained: list[tuple[str, int, int]] = []

    def plan(self, candidates, first_seed, repeats):
        models = len(candidates) * repeats
        estimate = Estimate(models=models, train_s=models * self.seconds_per_model)
        return Planned(tuple(candidates), first_seed, repeats, estimate)

    def train(self, planned, what):
        first_seed, repeats = planned.first_seed, planned.repeats
        seeds = np.arange(first_seed, first_seed + repeats)
        batches = []
        for c in planned.candidates:
            self.trained.append((c.name, first_seed, repeats))
            level = self.levels.get(c.path, 10.0)
            scores = level + 0.01 * seeds
            if c.path in self.noisy:  # better on 2 of every 3 seeds
                scores = np.where(seeds % 3 == 0, 10.5 + 0.01 * seeds, scores)
            batches.append(Batch(seeds, scores, np.zeros(repeats, bool)))
        return batches

    def split(self, planned):
        return [planned]

    def diagnose(self, trial):
        return tuple(self.diagnosis.get(trial.candidate.path, ()))


def user_trial(trainer):
    user = Trial(Candidate(USER, copy.deepcopy(TABLES)))
    user.batches += trainer.train(trainer.plan([user.candidate], 0, REPEATS), "yours")
    return user


def run(trainer, findings, budget_s=60.0):
    user = user_trial(trainer)
    return search_repairs(trainer, user, findings, "regression", False, REPEATS, Budget(budget_s))


def test_a_clear_winner_is_recommended_and_a_clean_diagnosis_ends_the_search():
    trainer = FakeTrainer({("scale_target_standard",): 1.0})
    result = run(trainer, [TARGET])
    assert [s.winner.name for s in result.path] == ["scale target (standard)"]
    step = result.steps[0]
    assert step.looks == 1
    winner = next(c for c in step.comparisons if c.trial is step.winner)
    assert winner.paired.wins == REPEATS and winner.p_holm < ALPHA / LOOKS
    assert result.spend.stopped == "clean"
    assert result.best.candidate.path == ("scale_target_standard",)


def test_repairs_compose_on_top_of_the_last_winner():
    """Clipping wins step 1 but leaves the target's spread; scaling it on top wins step 2."""
    trainer = FakeTrainer(
        {("clipnorm_1",): 5.0, ("clipnorm_1", "scale_target_standard"): 1.0},
        diagnosis={("clipnorm_1",): [TARGET]},
    )
    result = run(
        trainer, [Finding("exploding_gradients", "E", "critical", "m", {}, ("clipnorm_1",))]
    )
    assert [s.winner.name for s in result.path] == [
        "clipnorm 1.0", "clipnorm 1.0 + scale target (standard)",
    ]  # fmt: skip
    assert result.best.candidate.path == ("clipnorm_1", "scale_target_standard")
    assert result.steps[1].reference is result.steps[0].winner
    assert result.spend.stopped == "clean"


def test_inputs_and_target_are_also_scaled_together():
    candidates = candidate_repairs(TABLES, "regression", [TARGET, INPUTS])
    assert candidates[0].name == "scale inputs (standard) + scale target (standard)"
    assert candidates[0].path == ("scale_inputs_standard", "scale_target_standard")
    assert candidates[0].tables["data"] == {"input_scaler": "standard", "target_scaler": "standard"}
    assert "scale target (standard)" in [c.name for c in candidates[1:]]
    alone = candidate_repairs(TABLES, "regression", [TARGET])
    assert " + " not in alone[0].name


def test_a_close_call_gets_more_seeds_for_the_leader_and_its_reference():
    """Better on 2 of 3 seeds: undecided at 10 seeds, decided with more."""
    path = ("scale_target_standard",)
    trainer = FakeTrainer({path: 1.0}, noisy=[path])
    result = run(trainer, [TARGET])
    step = result.steps[0]
    assert step.looks > 1 and step.winner is not None and step.winner.candidate.path == path
    assert result.user.n == step.winner.n == step.looks * REPEATS
    more = [(name, first) for name, first, _ in trainer.trained if first > 0]
    assert {name for name, _ in more} == {USER, "scale target (standard)"}
    assert result.user.seeds().tolist() == list(range(step.looks * REPEATS))


def test_nothing_better_means_no_recommendation():
    result = run(FakeTrainer({}), [TARGET])
    assert result.path == () and result.best is result.user
    assert result.spend.stopped == "no repair beat it"
    assert all(not c.beats for c in result.steps[0].comparisons)
    assert all(c.paired.ties == REPEATS for c in result.steps[0].comparisons)


def test_a_search_that_would_overrun_its_budget_trains_nothing_more():
    trainer = FakeTrainer({("scale_target_standard",): 1.0}, seconds_per_model=1.0)
    result = run(trainer, [TARGET], budget_s=5.0)
    assert result.steps == () and result.spend.stopped == "budget"
    assert [name for name, _, _ in trainer.trained] == [USER]
    assert result.spend.models == REPEATS


def test_a_healthy_diagnosis_searches_nothing():
    info = Finding("clipping_active", "C", "info", "m", {}, ("scale_target_standard",))
    result = run(FakeTrainer({}), [info])
    assert result.steps == () and result.spend.stopped == "clean"


@pytest.mark.parametrize("steps", [1, 2])
def test_the_search_stops_after_max_steps(monkeypatch, steps):
    monkeypatch.setattr(search_module, "MAX_STEPS", steps)
    trainer = FakeTrainer(
        {("clipnorm_1",): 5.0, ("clipnorm_1", "scale_target_standard"): 1.0},
        diagnosis={("clipnorm_1",): [TARGET], ("clipnorm_1", "scale_target_standard"): [TARGET]},
    )
    result = run(
        trainer, [Finding("exploding_gradients", "E", "critical", "m", {}, ("clipnorm_1",))]
    )
    assert len(result.steps) == steps
