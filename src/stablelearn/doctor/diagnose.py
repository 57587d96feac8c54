"""`stablelearn doctor`: diagnose a user's own data and model, and prove which fix works.

1. Check the data (constant columns, unscaled inputs, target spread, class imbalance).
2. Train the user's configuration over several seeds with telemetry; run the detectors
   and order the findings into a causal chain with one headline cause
   (stablelearn.doctor.causes).
3. Search for a fix (stablelearn.doctor.search): the repairs the findings call for,
   trained on the user's seeds, compared paired (Wilcoxon signed-rank), with more seeds
   for close calls; the winner is diagnosed again and repairs compose on top of it,
   within a time budget.
4. Rank on the held-out split: regression by test RMSE in the target's own units
   (comparable whatever the target scaler), classification by test accuracy; a diverged
   model scores worst.
5. Recommend the last winner of the search, with its path of repairs and its paired
   comparison with the user's configuration; or say that no repair measurably beat it.

Steps 2 and 3 train on at most MAX_ROWS rows of each split, a random sample of the
user's split on large tables (stablelearn.doctor.sample); step 1 reads every row.
"""

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from stablelearn.diagnostics import Finding, Observation, nan_origin_summary
from stablelearn.doctor.causes import CauseChain, cause_chain
from stablelearn.doctor.repairs import MAX_CANDIDATES, Candidate
from stablelearn.doctor.sample import MAX_ROWS, RowSample, on_sample, row_sample
from stablelearn.doctor.search import (
    ALPHA,
    DEFAULT_BUDGET_S,
    USER,
    Batch,
    Budget,
    Comparison,
    SearchResult,
    Trainer,
    Trial,
    held_out_scores,
    search_repairs,
)
from stablelearn.engine.budget import Estimate, format_seconds
from stablelearn.experiments import Experiment, load_mapping, settings_only, variant_tables
from stablelearn.experiments.runner import ExperimentResult, estimate_experiments, run_experiment
from stablelearn.keras.code import keras_changes
from stablelearn.model_file import framework
from stablelearn.stats import PairedComparison, compare_paired
from stablelearn.tasks import is_classification
from stablelearn.torch.code import torch_changes

__all__ = ["ALPHA", "Diagnosis", "Score", "Stage", "held_out_scores", "run_doctor"]


# seconds of the budget kept for what follows the search (scaled by the budget's
# slowdown, like the estimates): the report's figures (learning curves and gradient flow
# of the user's configuration, the repairs' box plot), HTML and JSON, and leaving the
# process (JAX's clean-up at exit); deep-relu-30x5 on the 2-core machine with other jobs
# running (estimates x2-3 slow): report 2.0-3.4 s, exit about 5 s
REPORT_S = 3.0


def smallest_adjusted_p(repeats: int, candidates: int) -> float:
    """The smallest Holm-adjusted p-value `repeats` paired seeds allow: a two-sided
    signed-rank test of n pairs cannot go below 2 / 2^n."""
    return min(1.0, candidates * 2.0 / 2.0**repeats)


@dataclass(frozen=True)
class Score:
    """One configuration's held-out scores over its seeds; every repair is compared
    (paired, on the shared seeds) with the configuration it was applied to, `versus`."""

    name: str
    step: int  # 0: the user's configuration
    versus: str | None
    n: int
    diverged: int
    median: float
    p10: float
    p90: float
    wins: int | None
    losses: int | None
    ties: int | None
    p_value: float | None
    p_holm: float | None
    beats: bool  # beats `versus` (see stablelearn.doctor.search)
    recommended: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in self.__dict__.items()
        }


@dataclass(frozen=True, eq=False)
class Diagnosis:
    experiment: Experiment
    findings: tuple[Finding, ...]  # the user's configuration's
    cause: CauseChain
    baseline: ExperimentResult  # the user's configuration, trained
    search: SearchResult
    scores: tuple[Score, ...]  # one per configuration trained, the user's first
    score_name: str
    higher_is_better: bool
    recommended: Candidate | None
    verdict: PairedComparison | None  # the recommendation against the user's, paired
    sample: RowSample | None = None  # the rows trained and scored on

    @property
    def baseline_tables(self) -> dict[str, Any]:
        return variant_tables(self.experiment.variants[0])

    @property
    def tried(self) -> tuple[Candidate, ...]:
        return tuple(t.candidate for t in self.search.trials()[1:])

    @property
    def recommended_trial(self) -> Trial | None:
        return self.search.best if self.recommended is not None else None

    @property
    def framework(self) -> str:
        """Whose code the user writes: PyTorch for a .pt model file, else Keras (the lesson's)."""
        model_file = self.experiment.raw.get("model_file")
        return framework(model_file) if model_file else "Keras"

    def nan_origin(self) -> dict[str, Any] | None:
        """Where each of the user's models first went NaN/Inf (see
        stablelearn.diagnostics.NanOrigin), with the most common origin: diagnosis.json's
        `nan_origin`; None when the user's configuration was not trained."""
        if self.baseline is None:
            return None
        result = self.baseline.variants[0].result
        origins = Observation.from_result(result).nan_origins()
        return {
            "models": [
                {"model": i, "seed": int(seed), "origin": None if o is None else o.to_json()}
                for i, (seed, o) in enumerate(zip(result.seeds, origins, strict=True))
            ],
            "summary": nan_origin_summary(origins),
        }

    def code(self) -> list[str]:
        """The recommended change as the Keras or PyTorch (and scikit-learn) code to write."""
        trial = self.recommended_trial
        if trial is None:
            return []
        changes = torch_changes if self.framework == "PyTorch" else keras_changes
        return changes(self.experiment.variants[0], trial.first.variant)


# --- scoring ----------------------------------------------------------------------------------


def _spread(values: np.ndarray, worst: float) -> tuple[float, float, float]:
    """p10, median, p90 with diverged runs (inf) ranked worst: a percentile that reaches
    into the diverged runs is inf, never an interpolated NaN."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return (float("inf"),) * 3
    quantiles = np.percentile(np.where(np.isfinite(values), values, worst), [10, 50, 90])
    top = finite.max()
    return tuple(float(q) if q <= top else float("inf") for q in quantiles)  # type: ignore[return-value]


def score_rows(search: SearchResult, recommended: Trial | None) -> list[Score]:
    """A Score per configuration trained, the user's first."""
    trials = search.trials()
    finite = np.concatenate([t.scores()[np.isfinite(t.scores())] for t in trials] + [np.zeros(1)])
    worst = float(np.max(np.abs(finite))) * 2 + 1
    found = {id(c.trial): (step.number, c) for step in search.steps for c in step.comparisons}
    return [
        _score(trial, *found.get(id(trial), (0, None)), worst, trial is recommended)
        for trial in trials
    ]


def _score(trial: Trial, step: int, c: Comparison | None, worst: float, recommended: bool) -> Score:
    p10, median, p90 = _spread(trial.scores(), worst)
    paired = c.paired if c is not None else None
    return Score(
        name=trial.name,
        step=step,
        versus=c.versus.name if c is not None else None,
        n=trial.n,
        diverged=int(trial.diverged().sum()),
        median=median,
        p10=p10,
        p90=p90,
        wins=paired.wins if paired else None,
        losses=paired.losses if paired else None,
        ties=paired.ties if paired else None,
        p_value=paired.p_value if paired else None,
        p_holm=c.p_holm if c is not None else None,
        beats=bool(c is not None and c.beats),
        recommended=recommended,
    )


def verdict(user: Trial, best: Trial, higher_is_better: bool) -> PairedComparison:
    """The recommendation against the user's configuration on every seed both have."""
    a, b = best.scores(), user.scores()
    n = min(len(a), len(b))
    return compare_paired(a[:n], b[:n], higher_is_better)


@dataclass(frozen=True)
class Stage:
    """A stage of the doctor's training, announced as it starts (for a progress display)."""

    what: str  # "your configuration", "3 repairs, step 1", ...
    configurations: int
    estimate: Estimate

    def describe(self) -> str:
        return (
            f"Training {self.what}: {self.estimate.models:,} models, about "
            f"{format_seconds(self.estimate.seconds)}"
        )


def doctor_estimate(experiment: Experiment, max_rows: int = MAX_ROWS) -> Estimate:
    """What the doctor will cost at most: the user's configuration on its rows (see
    stablelearn.doctor.sample), then up to MAX_CANDIDATES repairs of about the same size."""
    users = _users_configuration(experiment)
    baseline = estimate_experiments([on_sample(users, row_sample(users, max_rows))])
    # the repairs mostly train as one packed program of all their models, whose working
    # memory is that of MAX_CANDIDATES of the user's programs at once
    together = baseline.in_parallel(MAX_CANDIDATES).peak_bytes
    repairs = dataclasses.replace(baseline.repeated(MAX_CANDIDATES), peak_bytes=together)
    return baseline.then(repairs)


def _users_configuration(experiment: Experiment) -> Experiment:
    """The experiment reduced to its first variant, the configuration diagnosed."""
    if len(experiment.variants) == 1:
        return experiment
    return load_mapping(
        {
            **{k: v for k, v in experiment.raw.items() if k != "variants"},
            **variant_tables(experiment.variants[0]),
        },
        experiment.id,
        experiment.base_dir,
    )


def run_doctor(
    experiment: Experiment,
    max_rows: int = MAX_ROWS,
    on_stage: Callable[[Stage], None] | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    started: float | None = None,
) -> Diagnosis:
    """Diagnose the user's configuration (its first variant) and search for a fix,
    training on at most `max_rows` rows of each split (0: every row) and starting no
    training that would end past `budget_s` seconds counted from `started` (a
    time.perf_counter() reading: the command's start; default now), REPORT_S of them
    (scaled as the estimates are) kept for writing the report and exiting (the user's own configuration always trains);
    `on_stage` hears of each training stage as it starts."""
    budget = Budget(budget_s, reserve_s=REPORT_S)
    if started is not None:
        budget.start = started
    experiment = _users_configuration(experiment)
    sample = row_sample(experiment, max_rows)
    announce = on_stage or (lambda stage: None)
    users = on_sample(experiment, sample)
    estimate = estimate_experiments([users])
    announce(Stage(USER, 1, estimate))
    began = time.perf_counter()
    baseline = run_experiment(users)
    budget.record(estimate, time.perf_counter() - began)
    user_tables = variant_tables(experiment.variants[0])
    user = Trial(Candidate(USER, user_tables), [Batch.of(baseline.variants[0])])
    higher = is_classification(experiment.data.task)
    trainer = Trainer(
        experiment, sample, lambda what, n, estimate: announce(Stage(what, n, estimate))
    )
    findings = trainer.diagnose(user)
    search = search_repairs(
        trainer, user, findings, experiment.data.task, higher, experiment.repeats, budget
    )
    best = search.best if search.path else None
    return Diagnosis(
        experiment,
        findings,
        cause_chain(findings),
        baseline,
        search,
        tuple(score_rows(search, best)),
        "test accuracy" if higher else "test RMSE (target units)",
        higher,
        best.candidate if best else None,
        verdict(user, best, higher) if best else None,
        sample,
    )


def recommended_experiment(diagnosis: Diagnosis, dataset_path: str) -> dict[str, Any]:
    """The recommended configuration as an experiment table `stablelearn run` accepts."""
    e = diagnosis.experiment
    raw = settings_only(e.raw)
    tables = diagnosis.recommended.tables if diagnosis.recommended else diagnosis.baseline_tables
    name = diagnosis.recommended.name if diagnosis.recommended else "your configuration"
    raw |= {"id": f"{e.id}-recommended", "title": f"{e.title}: {name}", "dataset": dataset_path}
    raw["description"] = f"Written by stablelearn doctor: {name}."
    return raw | copy.deepcopy(tables)
