"""Honest statistics over repeats: distributions, not single runs.

Diverged models have NaN scores; summaries describe the finite values and always say
how many models diverged, so a mean is never silently computed over fewer runs.
"""

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats


def summarize(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """n, count of non-finite values, and median/mean/std/p10/p90 of the finite ones."""
    array = np.asarray(values, np.float64)
    finite = array[np.isfinite(array)]
    summary: dict[str, Any] = {"n": int(array.size), "non_finite": int(array.size - finite.size)}
    if finite.size == 0:
        return summary | dict.fromkeys(("median", "mean", "std", "p10", "p90"))
    p10, median, p90 = np.percentile(finite, [10, 50, 90])
    return summary | {
        "median": float(median),
        "mean": float(finite.mean()),
        "std": float(finite.std()),  # population std, as the lesson's np.std
        "p10": float(p10),
        "p90": float(p90),
    }


def iqr(values: Sequence[float]) -> float:
    """Interquartile range of the finite values: the spread a box plot shows."""
    array = np.asarray(values, np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return float("nan")
    q1, q3 = np.percentile(array, [25, 75])
    return float(q3 - q1)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None): controls the chance of any
    false 'this repair is better' across all candidates compared with one baseline."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(indexed)
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def bootstrap_median_ci(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Bootstrap confidence interval of the median of the finite values (BCa, seeded so
    the same values always give the same interval).

    BCa corrects the percentile interval for bias and skew; on small or heavily tied
    samples it can be undefined, and then the plain percentile interval is returned.
    One value, or all equal, gives a zero-width interval; no finite value gives None.
    """
    array = np.asarray(values, np.float64)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return None, None
    if finite.size == 1 or np.ptp(finite) == 0:
        return float(finite[0]), float(finite[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning: handled by the fallback
            result = scipy_stats.bootstrap(
                (finite,),
                np.median,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high)
    return float(np.min(finite)), float(np.max(finite))


def wilson_interval(
    successes: int, n: int, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Wilson score interval of a rate k/n: unlike the normal approximation it stays
    inside [0, 1] and is not zero-width at 0/n or n/n, which small sweeps hit often."""
    if n == 0:
        return None, None
    interval = scipy_stats.binomtest(int(successes), int(n)).proportion_ci(
        confidence, method="wilson"
    )
    return float(interval.low), float(interval.high)


def worst_filled(values: Sequence[float] | np.ndarray, higher_is_better: bool) -> np.ndarray:
    """The values with non-finite ones (diverged models) replaced by the worst possible
    score, so that rank tests count a divergence as a loss instead of dropping it."""
    array = np.asarray(values, np.float64)
    return np.where(np.isfinite(array), array, -np.inf if higher_is_better else np.inf)


def compare(
    candidate: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    higher_is_better: bool = False,
) -> dict[str, Any]:
    """Candidate against baseline: two-sided Mann-Whitney U with diverged models ranked
    worst, and effect sizes.

    `p_better` is the probability that a random candidate run scores better than a
    random baseline run (ties count half; 0.5 = no difference); `rank_biserial` is
    2 * p_better - 1, in [-1, 1]; `median_difference` is candidate minus baseline over
    the finite values, in the metric's units.
    """
    x = worst_filled(candidate, higher_is_better)
    y = worst_filled(baseline, higher_is_better)
    comparison: dict[str, Any] = {
        "n_candidate": int(x.size),
        "n_baseline": int(y.size),
        "median_candidate": _finite_median(x),
        "median_baseline": _finite_median(y),
    }
    medians = comparison["median_candidate"], comparison["median_baseline"]
    comparison["median_difference"] = None if None in medians else float(medians[0] - medians[1])
    if x.size < 2 or y.size < 2:
        return comparison | dict.fromkeys(("u", "p_value", "p_better", "rank_biserial"))
    result = scipy_stats.mannwhitneyu(x, y, alternative="two-sided")
    p_greater = float(result.statistic) / (x.size * y.size)
    p_better = p_greater if higher_is_better else 1.0 - p_greater
    p_value = float(result.pvalue)
    return comparison | {
        "u": float(result.statistic),
        "p_value": 1.0 if np.isnan(p_value) else p_value,  # all values tied
        "p_better": p_better,
        "rank_biserial": 2.0 * p_better - 1.0,
    }


def _finite_median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def p_number(p: float) -> str:
    """A p-value's digits as a reader wants them: '< 0.001', '0.042' or '0.42'."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def format_p(p: float | None) -> str:
    """p-values as a reader wants them: 'p < 0.001' or 'p = 0.042'."""
    if p is None:
        return "p not computed (fewer than 2 runs)"
    number = p_number(p)
    return f"p {number}" if number.startswith("<") else f"p = {number}"


def _fmt_value(value: float | None) -> str:
    return "n/a (all diverged)" if value is None else f"{value:.4g}"


def describe_comparison(
    candidate: str,
    baseline: str,
    metric: str,
    comparison: Mapping[str, Any],
    p_value: float | None = None,
    alpha: float = 0.05,
    diverged: tuple[int, int] = (0, 0),
) -> str:
    """One plain-language sentence, e.g. "normalized beats standardized: median test MSE
    0.0012 vs 0.008, p < 0.001, 30 runs each". `p_value` (e.g. Holm-adjusted) replaces
    the comparison's own; `diverged` counts diverged runs in candidate and baseline."""
    p = comparison.get("p_value") if p_value is None else p_value
    medians = (
        f"median {metric} {_fmt_value(comparison['median_candidate'])} vs "
        f"{_fmt_value(comparison['median_baseline'])}"
    )
    n_a, n_b = comparison["n_candidate"], comparison["n_baseline"]
    runs = f"{n_a} runs each" if n_a == n_b else f"{n_a} vs {n_b} runs"
    if any(diverged):
        runs += f", {diverged[0]}/{n_a} vs {diverged[1]}/{n_b} diverged"
    if p is not None and p < alpha and comparison["p_better"] != 0.5:
        verb = "beats" if comparison["p_better"] > 0.5 else "is worse than"
        return f"{candidate} {verb} {baseline}: {medians}, {format_p(p)}, {runs}."
    return f"{candidate} and {baseline} do not differ detectably: {medians}, {format_p(p)}, {runs}."


PERMUTATIONS = 9999  # sign flips drawn when 2^n is more; below that all are enumerated


@dataclass(frozen=True)
class PairedComparison:
    """A candidate against a baseline run on the same seeds (see compare_paired).

    `wins`/`losses`/`ties` count seeds where the candidate scored better / worse / the
    same; `median_improvement` is the median over seeds of how much better it scored
    (in the metric's units, diverged pairs left out; None if no pair stayed finite)."""

    n: int
    wins: int
    losses: int
    ties: int
    median_improvement: float | None
    p_value: float

    @property
    def better(self) -> bool:
        return self.wins > self.losses and (self.median_improvement or 0.0) >= 0.0


def compare_paired(
    candidate: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    higher_is_better: bool = False,
    seed: int = 0,
) -> PairedComparison:
    """Candidate against baseline where run i of both used seed i (same initial weights
    and batch order where the architectures match): the Wilcoxon signed-rank test on
    the per-seed improvements, two-sided, its null distribution by sign flips (exact up
    to 13 pairs, 9,999 seeded draws beyond), so ties and zeros are handled exactly.

    Diverged runs (non-finite scores) rule: a diverged run scores worse than every finite
    run; a pair where only one diverged counts as an improvement (or a loss) larger than
    any finite pair's; a pair where both diverged is a tie, and ties (zero improvement)
    carry no sign, as in Wilcoxon's own treatment of zeros."""
    x = np.asarray(candidate, np.float64)
    y = np.asarray(baseline, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired scores need equal lengths, got {x.size} and {y.size}")
    sign = 1.0 if higher_is_better else -1.0
    finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)], [0.0]])
    worst = (
        finite.max() + 2 * np.ptp(finite) + 1 if sign < 0 else finite.min() - 2 * np.ptp(finite) - 1
    )
    improvement = sign * (np.where(np.isfinite(x), x, worst) - np.where(np.isfinite(y), y, worst))
    both_finite = np.isfinite(x) & np.isfinite(y)
    wins, losses = int((improvement > 0).sum()), int((improvement < 0).sum())
    median = float(np.median(improvement[both_finite])) if both_finite.any() else None
    nonzero = improvement[improvement != 0]
    p_value = 1.0  # one signed pair: both signs are as extreme, p = 1
    if nonzero.size >= 2:
        method = scipy_stats.PermutationMethod(
            n_resamples=PERMUTATIONS, rng=np.random.default_rng(seed)
        )
        p_value = float(scipy_stats.wilcoxon(nonzero, method=method).pvalue)
    return PairedComparison(x.size, wins, losses, x.size - wins - losses, median, min(1.0, p_value))
