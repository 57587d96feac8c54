"""`stablelearn doctor`: diagnose a user's own data and model, and prove which fix works.

1. Check the data (constant columns, unscaled inputs, target spread, class imbalance).
2. Train the user's configuration over several seeds with telemetry; run the detectors.
3. Build the repairs that the findings call for and train them side by side (one
   ensemble per shape, the same seeds as the user's runs, so comparisons are paired).
4. Rank every configuration on the held-out split: regression by test RMSE in the
   target's own units (comparable whatever the target scaler), classification by test
   accuracy; a diverged model scores worst. Each repair is compared with the user's
   configuration by a two-sided Mann-Whitney U test, Holm-corrected over all repairs.
5. Recommend the best repair only if it measurably beats the user's configuration:
   better median and Holm-adjusted p < 0.05. Otherwise say that none did.

Steps 2 and 3 train on at most MAX_ROWS rows of each split, a random sample of the
user's split on large tables (stablelearn.doctor.sample); step 1 reads every row.
"""

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stablelearn.diagnostics import Finding, check_data, diagnose
from stablelearn.doctor.repairs import MAX_CANDIDATES, Candidate, candidate_repairs
from stablelearn.doctor.sample import MAX_ROWS, RowSample, on_sample, row_sample
from stablelearn.engine.budget import Estimate, format_seconds
from stablelearn.experiments import Experiment, load_mapping, settings_only, variant_tables
from stablelearn.experiments.runner import (
    ExperimentResult,
    VariantResult,
    estimate_experiments,
    run_experiment,
)
from stablelearn.keras.code import keras_changes
from stablelearn.stats import compare, holm
from stablelearn.tasks import held_out_metric, is_classification

ALPHA = 0.05


def smallest_adjusted_p(repeats: int, candidates: int) -> float:
    """The smallest Holm-adjusted p-value that `repeats` seeds per configuration allow:
    a two-sided Mann-Whitney test of n against n runs cannot go below 2 / C(2n, n)."""
    return min(1.0, candidates * 2.0 / math.comb(2 * repeats, repeats))


@dataclass(frozen=True)
class Score:
    """One configuration's held-out scores over repeats, compared with the user's."""

    name: str
    n: int
    diverged: int
    median: float
    p10: float
    p90: float
    p_value: float | None
    p_holm: float | None
    prob_better: float | None  # P(a run of this config beats a run of the user's)
    beats_baseline: bool

    def to_json(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in self.__dict__.items()
        }


@dataclass(frozen=True, eq=False)
class Diagnosis:
    experiment: Experiment
    findings: tuple[Finding, ...]
    baseline: ExperimentResult
    candidates: ExperimentResult | None
    scores: tuple[Score, ...]  # the user's configuration first
    score_name: str
    higher_is_better: bool
    recommended: Candidate | None
    tried: tuple[Candidate, ...] = ()
    sample: RowSample | None = None  # the rows trained and scored on

    @property
    def baseline_tables(self) -> dict[str, Any]:
        return variant_tables(self.experiment.variants[0])

    def keras_code(self) -> list[str]:
        """The recommended change as the Keras / scikit-learn code to write."""
        if self.recommended is None or self.candidates is None:
            return []
        after = next(
            v.variant for v in self.candidates.variants if v.variant.name == self.recommended.name
        )
        return keras_changes(self.experiment.variants[0], after)


# --- scoring ----------------------------------------------------------------------------------


def held_out_scores(variant: VariantResult) -> np.ndarray:
    """Test RMSE in the target's units (regression) or test accuracy; diverged = worst."""
    result = variant.result
    if held_out_metric(result.runs[0].data.task) == "rmse_original":
        return np.where(
            result.diverged, np.inf, np.nan_to_num(result.test_scores["rmse_original"], nan=np.inf)
        )
    return np.where(result.diverged, 0.0, np.nan_to_num(result.test_scores["accuracy"], nan=0.0))


def _spread(values: np.ndarray, worst: float) -> tuple[float, float, float]:
    """p10, median, p90 with diverged runs (inf) ranked worst: a percentile that reaches
    into the diverged runs is inf, never an interpolated NaN."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return (float("inf"),) * 3
    quantiles = np.percentile(np.where(np.isfinite(values), values, worst), [10, 50, 90])
    top = finite.max()
    return tuple(float(q) if q <= top else float("inf") for q in quantiles)  # type: ignore[return-value]


def rank(
    named_scores: Sequence[tuple[str, np.ndarray, np.ndarray]], higher_is_better: bool
) -> list[Score]:
    """Scores of every configuration as (name, scores, diverged mask); the first is the
    user's, the rest are compared with it.

    Diverged runs score inf (RMSE) or 0 (accuracy), so the rank test (stats.compare)
    ranks a diverged run worst instead of dropping it.
    """
    finite = np.concatenate([v[np.isfinite(v)] for _, v, _ in named_scores] + [np.zeros(1)])
    worst = float(np.max(np.abs(finite))) * 2 + 1
    user_scores = named_scores[0][1]
    tests = [compare(values, user_scores, higher_is_better) for _, values, _ in named_scores[1:]]
    adjusted = holm([t["p_value"] for t in tests])
    reference = _spread(named_scores[0][1], worst)[1]
    rows = []
    for i, (name, values, diverged) in enumerate(named_scores):
        p10, median, p90 = _spread(values, worst)
        test = tests[i - 1] if i else {"p_value": None, "p_better": None}
        p_holm = adjusted[i - 1] if i else None
        prob_better = test["p_better"]
        better = median > reference if higher_is_better else median < reference
        beats = bool(i and better and p_holm is not None and p_holm < ALPHA)
        score = Score(
            name,
            values.size,
            int(diverged.sum()),
            median,
            p10,
            p90,
            test["p_value"],
            p_holm,
            prob_better,
            beats,
        )
        rows.append(score)
    return rows


def _to_experiment(experiment: Experiment, candidates: Sequence[Candidate]) -> Experiment:
    raw = settings_only(experiment.raw)
    # variants merge into the top-level tables, so only the (required) model stays on
    # top; each candidate carries complete tables whose lists replace the model's
    raw["model"] = variant_tables(experiment.variants[0])["model"]
    raw["id"] = f"{experiment.id}-repairs"
    raw["variants"] = [{"name": c.name, **c.tables} for c in candidates]
    return load_mapping(raw, experiment.id, experiment.base_dir)


def _data_findings(experiment: Experiment) -> list[Finding]:
    """Data checks, less what the user's own scalers already handle; columns the loader
    dropped as constant are reported as such."""
    user = experiment.variants[0]
    handled = {
        "unscaled_inputs": user.input_scaler.kind != "none",
        "target_spread": user.target_scaler.kind != "none",
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


@dataclass(frozen=True)
class Stage:
    """A stage of the doctor's training, announced as it starts (for a progress display)."""

    name: str  # "your configuration" or "repairs"
    configurations: int
    estimate: Estimate

    @property
    def what(self) -> str:
        if self.name == "your configuration":
            return self.name
        return f"{self.configurations} repair{'s' if self.configurations != 1 else ''}"

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
) -> Diagnosis:
    """Diagnose the user's configuration (its first variant) and try the repairs,
    training on at most `max_rows` rows of each split (0: every row); `on_stage` hears
    of each training stage as it starts."""
    experiment = _users_configuration(experiment)
    sample = row_sample(experiment, max_rows)
    data_findings = _data_findings(experiment)
    users = on_sample(experiment, sample)
    announce = on_stage or (lambda stage: None)
    announce(Stage("your configuration", 1, estimate_experiments([users])))
    baseline = run_experiment(users)
    findings = tuple(data_findings + diagnose(baseline.variants[0].result))
    candidates = candidate_repairs(
        variant_tables(experiment.variants[0]), experiment.data.task, findings
    )
    repaired = None
    if candidates:
        repairs = on_sample(_to_experiment(experiment, candidates), sample)
        announce(Stage("repairs", len(candidates), estimate_experiments([repairs])))
        repaired = run_experiment(repairs)
    higher = is_classification(experiment.data.task)
    variants = [("your configuration", baseline.variants[0])]
    if repaired is not None:
        variants += [(v.name, v) for v in repaired.variants]
    named = [(name, held_out_scores(v), v.result.diverged) for name, v in variants]
    scores = rank(named, higher)
    winners = [s for s in scores[1:] if s.beats_baseline]
    best = max(winners, key=lambda s: s.median if higher else -s.median) if winners else None
    recommended = next((c for c in candidates if best is not None and c.name == best.name), None)
    return Diagnosis(
        experiment,
        findings,
        baseline,
        repaired,
        tuple(scores),
        "test accuracy" if higher else "test RMSE (target units)",
        higher,
        recommended,
        tuple(candidates),
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
