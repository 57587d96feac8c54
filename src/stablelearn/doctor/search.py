"""The doctor's repair search: repairs that compose, compared on shared seeds, with
seeds added where a decision is close, within a time budget.

Greedy, one step at a time. A step trains the repairs the current findings call for,
each applied on top of the best configuration so far (the user's at first), and
compares every one with it on the same seeds (stats.compare_paired: Wilcoxon
signed-rank by sign flips). A repair beats it when its paired improvement is positive
and its Holm-adjusted p (over the step's repairs) is below ALPHA / LOOKS. When none
does yet but some lead (better, unadjusted p < LEAD_P), the LEADERS best of them and the
configuration they are compared with get `repeats` more seeds, up to LOOKS looks. Over
its looks a step wrongly declares a repair better with probability at most ALPHA
(Holm within a look, Bonferroni across looks). The winner becomes the configuration
to beat, it is diagnosed again, and the next step tries the repairs its own findings
call for, until the diagnosis is clean, nothing beats it, MAX_STEPS steps were taken,
or the next training would not fit in the budget.

A finding that calls for a lower learning rate makes the rate the suspect: where the
budget has room, a learning-rate range test (stablelearn.doctor.range_test) on seeds the
comparisons never use picks the rates to try instead of a blind tenth. The budget
(Budget) is checked before every compiled program and learns from each how much slower
than estimated training runs; a step trains the repairs that fit, most severe first.
"""

import copy
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from stablelearn.diagnostics import Finding, check_data, diagnose
from stablelearn.doctor.range_test import (
    REPAIR_ID,
    RangeTest,
    format_rate,
    range_test_of,
    rate_candidates,
    rate_grid,
)
from stablelearn.doctor.repairs import MAX_CANDIDATES, Candidate, candidate_repairs
from stablelearn.doctor.sample import RowSample, on_sample
from stablelearn.engine.budget import Estimate, format_seconds
from stablelearn.engine.plan import plan_programs
from stablelearn.experiments import Experiment, load_mapping, settings_only, variant_tables
from stablelearn.experiments.runner import (
    VariantResult,
    estimate_experiments,
    experiment_runs,
    prepare_variant_data,
    run_experiment,
)
from stablelearn.experiments.spec import DatasetCache
from stablelearn.stats import PairedComparison, compare_paired, holm
from stablelearn.tasks import held_out_metric

ALPHA = 0.05
LOOKS = 3  # seed batches a step may use: repeats, 2 x repeats, 3 x repeats
LEADERS = 2
LEAD_P = 0.5
MAX_STEPS = 3
DEFAULT_BUDGET_S = 60.0
USER = "your configuration"


def held_out_scores(variant: VariantResult) -> np.ndarray:
    """Test RMSE in the target's units (regression) or test accuracy; diverged = worst."""
    result = variant.result
    if held_out_metric(result.runs[0].data.task) == "rmse_original":
        return np.where(
            result.diverged, np.inf, np.nan_to_num(result.test_scores["rmse_original"], nan=np.inf)
        )
    return np.where(result.diverged, 0.0, np.nan_to_num(result.test_scores["accuracy"], nan=0.0))


@dataclass(frozen=True, eq=False)
class Batch:
    """One configuration trained on consecutive seeds: its held-out scores per seed."""

    seeds: np.ndarray
    scores: np.ndarray
    diverged: np.ndarray
    variant: VariantResult | None = None  # what was trained (None where not kept)

    @classmethod
    def of(cls, variant: VariantResult) -> "Batch":
        result = variant.result
        return cls(result.seeds, held_out_scores(variant), result.diverged, variant)


@dataclass(eq=False)
class Trial:
    """One configuration trained on seeds 0, 1, ... in one or more batches."""

    candidate: Candidate
    batches: list[Batch] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def tables(self) -> dict[str, Any]:
        return self.candidate.tables

    @property
    def first(self) -> VariantResult:
        """The first batch as trained (figures, the Keras code of the change)."""
        variant = self.batches[0].variant
        assert variant is not None, "a trial's first batch keeps what it trained"
        return variant

    @property
    def n(self) -> int:
        return sum(len(b.seeds) for b in self.batches)

    def scores(self) -> np.ndarray:
        return np.concatenate([b.scores for b in self.batches])

    def diverged(self) -> np.ndarray:
        return np.concatenate([b.diverged for b in self.batches])

    def seeds(self) -> np.ndarray:
        return np.concatenate([b.seeds for b in self.batches])


@dataclass(frozen=True, eq=False)
class Comparison:
    """A repair against the configuration it tried to improve, on their shared seeds."""

    trial: Trial
    versus: Trial
    paired: PairedComparison
    p_holm: float
    alpha: float

    @property
    def beats(self) -> bool:
        return self.paired.better and self.p_holm < self.alpha


@dataclass(frozen=True, eq=False)
class Step:
    """One round of the search: the repairs tried on `reference`, and the winner."""

    number: int
    reference: Trial
    comparisons: tuple[Comparison, ...]
    winner: Trial | None
    looks: int
    range_test: RangeTest | None = None  # run when a finding suspected the learning rate
    untried: tuple[str, ...] = ()  # repairs the findings called for that the budget left out


@dataclass(frozen=True)
class Spend:
    """What the search cost and why it stopped."""

    models: int
    seconds: float
    configurations: int
    most_seeds: int
    budget_s: float
    stopped: str  # "clean", "no repair beat it", "nothing left to try", "budget", "steps"
    range_test_models: int = 0  # included in models
    slowdown: float = 1.0  # how much slower than estimated training ran (Budget.slowdown)

    def describe(self) -> str:
        tests = (
            f" (of them {self.range_test_models} in learning-rate range tests)"
            if self.range_test_models
            else ""
        )
        return (
            f"{self.configurations} configurations, {self.models:,} models{tests}, up to "
            f"{self.most_seeds} seeds each, {format_seconds(self.seconds)} "
            f"(budget {format_seconds(self.budget_s)}); stopped: {self.stopped}"
        )


@dataclass(frozen=True, eq=False)
class SearchResult:
    user: Trial
    steps: tuple[Step, ...]
    best: Trial  # the user's configuration when no step found a winner
    findings: tuple[Finding, ...]  # the best configuration's own diagnosis
    spend: Spend

    @property
    def path(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.winner is not None)

    def trials(self) -> list[Trial]:
        """Every configuration trained, the user's first, in the order tried."""
        return [self.user] + [c.trial for s in self.steps for c in s.comparisons]


@dataclass
class Budget:
    """The doctor's seconds: counted from `start` (the command's start, so that start-up
    counts), with `reserve_s` (scaled like the estimates) kept for what follows the
    search: writing the report and leaving.

    A plan is allowed when the time spent plus its estimate, scaled by how much slower
    than estimated the trainings so far ran (`slowdown`, at least 1), fits. Estimates
    are made from shapes with constants measured on an idle machine (good to a factor of
    about two); a busy or slower machine shows in the first training (the user's
    configuration always trains), so the budget learns that factor instead of
    overrunning by it, and it learns it again after every program a step trains
    (search_repairs checks the budget before each), so an estimate that is off for one
    kind of program costs at most that program's error."""

    seconds: float
    start: float = field(default_factory=time.perf_counter)
    reserve_s: float = 0.0
    estimated_s: float = 0.0  # the estimates of the trainings recorded so far
    measured_s: float = 0.0  # and the seconds they took

    @property
    def spent(self) -> float:
        return time.perf_counter() - self.start

    @property
    def slowdown(self) -> float:
        """Measured over estimated seconds of the trainings so far, at least 1: a fast
        first training (a compilation-cache hit) must not make later estimates optimistic."""
        return max(1.0, self.measured_s / self.estimated_s) if self.estimated_s > 0 else 1.0

    def expected_s(self, estimate: Estimate) -> float:
        return estimate.seconds * self.slowdown

    def allows(self, estimate: Estimate) -> bool:
        room = self.seconds - self.reserve_s * self.slowdown
        return self.spent + self.expected_s(estimate) <= room

    def record(self, estimate: Estimate, seconds: float) -> None:
        """A training estimated at `estimate` took `seconds`."""
        self.estimated_s += estimate.seconds
        self.measured_s += seconds

    def timed(self, planned: "Planned", train: Callable[..., Any], *args: Any) -> Any:
        """`train(planned, *args)`, its time recorded against `planned`'s estimate."""
        began = time.perf_counter()
        try:
            return train(planned, *args)
        finally:
            self.record(planned.estimate, time.perf_counter() - began)


# --- training configurations ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Planned:
    """Candidates ready to train on seeds first_seed .. first_seed + repeats - 1, with
    what that will cost; `experiment` is what the trainer will run."""

    candidates: tuple[Candidate, ...]
    first_seed: int
    repeats: int
    estimate: Estimate
    experiment: Any = None


class Trains(Protocol):
    """What the search needs to plan, train and diagnose configurations."""

    def plan(self, candidates: Sequence[Candidate], first_seed: int, repeats: int) -> Planned: ...

    def train(self, planned: Planned, what: str) -> list[Batch]: ...

    def split(self, planned: Planned) -> list[Planned]: ...

    def diagnose(self, trial: Trial) -> tuple[Finding, ...]: ...

    def plan_rates(
        self, tables: dict[str, Any], rates: Sequence[float], first_seed: int, repeats: int
    ) -> Planned: ...

    def train_rates(self, planned: Planned, what: str, user_rate: float | None) -> RangeTest: ...


@dataclass(frozen=True, eq=False)
class Trainer:
    """Trains candidates on the user's data (its row sample) and settings (Trains)."""

    experiment: Experiment  # the user's configuration (one variant)
    sample: RowSample
    on_training: Callable[[str, int, Estimate], None] = lambda what, n, estimate: None
    datasets: DatasetCache = field(default_factory=dict)  # the user's table, read once

    def plan(
        self,
        candidates: Sequence[Candidate],
        first_seed: int,
        repeats: int,
        telemetry: bool = True,
    ) -> Planned:
        raw = settings_only(self.experiment.raw)
        if not telemetry:  # nothing will be diagnosed: cheaper to compile and train
            raw["telemetry"] = False
        # variants merge into the top-level tables, so only the (required) model stays on
        # top; each candidate carries complete tables whose lists replace the model's
        raw["model"] = variant_tables(self.experiment.variants[0])["model"]
        raw["id"] = f"{self.experiment.id}-repairs"
        raw["variants"] = [{"name": c.name, **c.tables} for c in candidates]
        raw["repeats"] = repeats
        raw["seed"] = self.experiment.seed + first_seed
        loaded = load_mapping(raw, self.experiment.id, self.experiment.base_dir, self.datasets)
        experiment = on_sample(loaded, self.sample)
        estimate = estimate_experiments([experiment])
        return Planned(tuple(candidates), first_seed, repeats, estimate, experiment)

    def train(self, planned: Planned, what: str) -> list[Batch]:
        self.on_training(what, len(planned.candidates), planned.estimate)
        return [Batch.of(v) for v in run_experiment(planned.experiment).variants]

    def split(self, planned: Planned) -> list[Planned]:
        """`planned` as one plan per compiled program the planner makes of it (the
        candidates it packs together stay together), in the order of their first
        candidate; each trains alone to the same numbers (same seeds, same programs)."""
        experiment = planned.experiment
        runs = experiment_runs(experiment, prepare_variant_data(experiment, experiment.data))
        names = [run.tags["variant"] for run in runs]
        order = [c.name for c in planned.candidates]
        programs = []
        for indices in plan_programs(runs):
            members = sorted({order.index(names[i]) for i in indices})
            programs.append([planned.candidates[i] for i in members])
        if len(programs) == 1:
            return [planned]
        return [self.plan(group, planned.first_seed, planned.repeats) for group in programs]

    def diagnose(self, trial: Trial) -> tuple[Finding, ...]:
        return tuple(data_findings(self.experiment, trial.tables) + diagnose(trial.first.result))

    def plan_rates(
        self, tables: dict[str, Any], rates: Sequence[float], first_seed: int, repeats: int
    ) -> Planned:
        """A learning-rate range test of `tables` (stablelearn.doctor.range_test): every
        rate on seeds first_seed.., one experiment, telemetry off."""
        return self.plan(rate_candidates(tables, rates), first_seed, repeats, telemetry=False)

    def train_rates(self, planned: Planned, what: str, user_rate: float | None) -> RangeTest:
        self.on_training(what, len(planned.candidates), planned.estimate)
        began = time.perf_counter()
        result = run_experiment(planned.experiment)
        rates = [c.tables["optimizer"]["learning_rate"] for c in planned.candidates]
        return range_test_of(
            result.variants, rates, user_rate, time.perf_counter() - began, planned.estimate.seconds
        )


# --- the search -------------------------------------------------------------------------------


def data_findings(experiment: Experiment, tables: dict[str, Any]) -> list[Finding]:
    """Data checks, less what the configuration's scalers already handle; columns the
    loader dropped as constant are reported as such."""
    scalers = {part: tables["data"][f"{part}_scaler"] for part in ("input", "target")}
    kinds = {part: s if isinstance(s, str) else s["kind"] for part, s in scalers.items()}
    handled = {
        "unscaled_inputs": kinds["input"] != "none",
        "target_spread": kinds["target"] != "none",
    }
    findings = [f for f in check_data(experiment.data) if not handled.get(f.id, False)]
    if experiment.dropped_columns:
        findings = [f for f in findings if f.id != "constant_columns"]
        findings.insert(0, Finding(
            "constant_columns", "Constant columns", "warning",
            f"{len(experiment.dropped_columns)} feature column(s) never change "
            f"({', '.join(experiment.dropped_columns[:8])}); they carry no signal and were dropped.",
            {"columns": list(experiment.dropped_columns)},
        ))  # fmt: skip
    return findings


def _is_clean(findings: Sequence[Finding]) -> bool:
    return all(f.severity == "info" for f in findings)


def compare_step(
    reference: Trial, trials: Sequence[Trial], higher_is_better: bool
) -> list[Comparison]:
    """Every trial against the reference on their shared seeds, Holm over the step."""
    paired = []
    ref_scores = reference.scores()
    for trial in trials:
        scores = trial.scores()
        n = min(len(scores), len(ref_scores))
        paired.append(compare_paired(scores[:n], ref_scores[:n], higher_is_better))
    adjusted = holm([p.p_value for p in paired])
    alpha = ALPHA / LOOKS
    return [
        Comparison(t, reference, p, float(a), alpha)
        for t, p, a in zip(trials, paired, adjusted, strict=True)
    ]


def _best(comparisons: Sequence[Comparison], higher_is_better: bool) -> Comparison:
    """The winner with the best median score (diverged runs worst), then fewest diverged."""

    def key(c: Comparison) -> tuple[float, int]:
        scores = c.trial.scores()
        worst = -np.inf if higher_is_better else np.inf
        median = float(np.median(np.where(np.isfinite(scores), scores, worst)))
        return (median if higher_is_better else -median, -int(c.trial.diverged().sum()))

    return max(comparisons, key=key)


def _add_seeds(trainer: Trains, trials: Sequence[Trial], target: int, budget: Budget) -> bool:
    """Train every trial up to `target` seeds; False (nothing trained) if over budget."""
    short = [t for t in trials if t.n < target]
    if not short:
        return True
    groups: dict[int, list[Trial]] = {}  # by first missing seed: usually one group
    for trial in short:
        groups.setdefault(trial.n, []).append(trial)
    plans = [
        (group, trainer.plan([t.candidate for t in group], start, target - start))
        for start, group in groups.items()
    ]
    if not budget.allows(functools.reduce(Estimate.then, (p.estimate for _, p in plans))):
        return False
    for group, planned in plans:
        batches = budget.timed(planned, trainer.train, "more seeds for the leaders")
        for trial, batch in zip(group, batches, strict=True):
            trial.batches.append(dataclasses.replace(batch, variant=None))  # scores suffice
    return True


def search_repairs(
    trainer: Trains,
    user: Trial,
    findings: Sequence[Finding],
    task: str,
    higher_is_better: bool,
    repeats: int,
    budget: Budget,
) -> SearchResult:
    """The greedy search of the module docstring, from the user's trained configuration."""
    current, current_findings = user, tuple(findings)
    steps: list[Step] = []
    seen = [user.tables]
    stopped = "steps"
    for number in range(1, MAX_STEPS + 1):
        if _is_clean(current_findings):
            stopped = "clean"
            break
        candidates = [
            c
            for c in _on_top(current, candidate_repairs(current.tables, task, current_findings))
            if c.tables not in seen
        ]
        if not candidates:
            stopped = "nothing left to try"
            break
        range_test = None
        if any(c.repair_id == "lower_learning_rate" for c in candidates):
            candidates, range_test = _range_tested(
                trainer, current, candidates, repeats, budget, number
            )
        planned = _affordable(trainer, candidates, repeats, budget)
        if planned is None:
            stopped = "budget"
            if range_test is not None:  # trained, so reported
                steps.append(Step(number, current, (), None, 0, range_test))
            break
        trials = _train_step(trainer, planned, budget, f"repairs, step {number}")
        if not trials:
            stopped = "budget"
            break
        trained = {id(t.candidate) for t in trials}
        untried = tuple(c.name for c in candidates if id(c) not in trained)
        seen += [t.tables for t in trials]
        comparisons, looks = compare_step(current, trials, higher_is_better), 1
        while not any(c.beats for c in comparisons) and looks < LOOKS:
            leaders = sorted(
                (c for c in comparisons if c.paired.better and c.paired.p_value < LEAD_P),
                key=lambda c: c.paired.p_value,
            )[:LEADERS]
            if not leaders or not _add_seeds(
                trainer, [current, *(c.trial for c in leaders)], (looks + 1) * repeats, budget
            ):
                break
            comparisons, looks = compare_step(current, trials, higher_is_better), looks + 1
        winners = [c for c in comparisons if c.beats]
        winner = _best(winners, higher_is_better).trial if winners else None
        steps.append(Step(number, current, tuple(comparisons), winner, looks, range_test, untried))
        if winner is None:
            stopped = "no repair beat it"
            break
        current = winner
        current_findings = trainer.diagnose(current)
    else:
        if _is_clean(current_findings):
            stopped = "clean"
    trials = [user] + [c.trial for s in steps for c in s.comparisons]
    range_models = sum(s.range_test.models for s in steps if s.range_test is not None)
    spend = Spend(
        models=sum(t.n for t in trials) + range_models,
        seconds=budget.spent,
        configurations=len(trials),
        most_seeds=max(t.n for t in trials),
        budget_s=budget.seconds,
        stopped=stopped,
        range_test_models=range_models,
        slowdown=round(budget.slowdown, 2),
    )
    return SearchResult(user, tuple(steps), current, current_findings, spend)


RANGE_SEEDS = 3  # seeds per rate of the doctor's range test: it picks a rate, the step proves it


def _range_tested(
    trainer: Trains,
    current: Trial,
    candidates: list[Candidate],
    repeats: int,
    budget: Budget,
    number: int,
) -> tuple[list[Candidate], RangeTest | None]:
    """A finding suspects the learning rate (it calls for a lower one): where the budget
    has room for a range test and the step after it, measure which rates train
    `current` and try the range test's recommended rate (and its best rate, where that
    differs) instead of a blind tenth.

    The range test trains on seeds the step's paired comparisons never use (from
    LOOKS x repeats on), so choosing the rate and proving it are independent."""
    tables = current.tables
    rate_plan = trainer.plan_rates(tables, rate_grid(), LOOKS * repeats, RANGE_SEEDS)
    step_plan = trainer.plan(candidates, 0, repeats)
    if not budget.allows(rate_plan.estimate.then(step_plan.estimate)):
        return candidates, None
    rate_now = tables["optimizer"]["learning_rate"]
    what = f"learning-rate range test, step {number}"
    test = budget.timed(rate_plan, trainer.train_rates, what, rate_now)
    rate = test.recommended
    if rate is None:
        return candidates, test  # nothing measured to propose: the blind tenth stays
    best = test.rates[test.best].learning_rate  # type: ignore[index]
    # the recommended (safe) rate, and the best where it differs: the range test saw each
    # on 3 seeds, the paired comparison decides on the step's seeds which one holds
    rates = [(rate, "range test")] + ([(best, "range test best")] if best != rate else [])
    measured = []
    for value, label in rates:
        if np.isclose(value, rate_now, rtol=1e-3):
            continue  # the current rate is no repair
        proposed = copy.deepcopy(tables)
        proposed["optimizer"]["learning_rate"] = float(value)
        name = f"learning rate {format_rate(value)} ({label})"
        measured += _on_top(current, [Candidate(name, proposed, REPAIR_ID, (REPAIR_ID,))])
    if not measured:
        return candidates, test
    at = next(i for i, c in enumerate(candidates) if c.repair_id == "lower_learning_rate")
    replaced = candidates[:at] + measured + candidates[at + 1 :]
    return replaced[:MAX_CANDIDATES], test


def _train_step(trainer: Trains, planned: Planned, budget: Budget, what: str) -> list[Trial]:
    """Train the step's candidates program by program, checking the budget (which learns
    from each program's time) before each; the programs that no longer fit are left out."""
    trials = []
    parts = trainer.split(planned)
    for number, part in enumerate(parts, 1):
        if not budget.allows(part.estimate):
            break
        label = what if len(parts) == 1 else f"{what}, program {number} of {len(parts)}"
        for candidate, batch in zip(
            part.candidates, budget.timed(part, trainer.train, label), strict=True
        ):
            trials.append(Trial(candidate, [batch]))
    order = [id(c) for c in planned.candidates]
    return sorted(trials, key=lambda t: order.index(id(t.candidate)))


def _affordable(
    trainer: Trains, candidates: Sequence[Candidate], repeats: int, budget: Budget
) -> Planned | None:
    """The step's plan: every candidate, or where that does not fit the budget, the
    most the budget allows in the findings' order (most severe first); None if not even
    the first fits."""
    for count in range(len(candidates), 0, -1):
        planned = trainer.plan(candidates[:count], 0, repeats)
        if budget.allows(planned.estimate):
            return planned
    return None


def _on_top(current: Trial, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates built on `current`: named and tracked as the path from the user's."""
    if current.candidate.name == USER:
        return list(candidates)
    return [
        Candidate(
            f"{current.name} + {c.name}", c.tables, c.repair_id, (*current.candidate.path, *c.path)
        )
        for c in candidates
    ]
