"""Honest statistics over repeats: distributions, not single runs.

Diverged models have NaN scores; summaries describe the finite values and always say
how many models diverged, so a mean is never silently computed over fewer runs.
"""

from collections.abc import Sequence
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


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> dict[str, float | None]:
    """Two-sided Mann-Whitney U test on the finite values, with the common-language
    effect size P(a < b) (0.5 = no difference)."""
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2:
        return {"u": None, "p_value": None, "p_a_less": None}
    result = scipy_stats.mannwhitneyu(x, y, alternative="two-sided")
    return {
        "u": float(result.statistic),
        "p_value": float(result.pvalue),
        "p_a_less": float(1.0 - result.statistic / (x.size * y.size)),
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
