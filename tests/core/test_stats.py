"""Statistics over repeats, checked against NumPy and SciPy on fixed samples."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from stablelearn.stats import iqr, summarize

SAMPLE = np.array([0.9, 0.1, 0.4, 0.7, 0.3, 0.8, 0.2, 0.6, 0.5, 1.0, 3.5])


def test_summarize_matches_numpy_on_finite_values():
    s = summarize(SAMPLE)
    assert (s["n"], s["non_finite"]) == (11, 0)
    assert s["median"] == pytest.approx(np.median(SAMPLE)) == pytest.approx(0.6)
    assert s["mean"] == pytest.approx(SAMPLE.mean())
    assert s["std"] == pytest.approx(np.std(SAMPLE))  # population std, ddof=0
    assert s["std"] != pytest.approx(np.std(SAMPLE, ddof=1))
    assert s["p10"] == pytest.approx(np.percentile(SAMPLE, 10)) == pytest.approx(0.2)
    assert s["p90"] == pytest.approx(np.percentile(SAMPLE, 90)) == pytest.approx(1.0)
    assert all(type(s[k]) is float for k in ("median", "mean", "std", "p10", "p90"))
    assert type(s["n"]) is int and type(s["non_finite"]) is int


def test_summarize_describes_finite_values_and_counts_the_rest():
    values = [1.0, np.nan, 3.0, np.inf, -np.inf, 2.0]
    s = summarize(values)
    assert (s["n"], s["non_finite"]) == (6, 3)
    assert (s["median"], s["mean"]) == (2.0, 2.0)
    assert s["std"] == pytest.approx(math.sqrt(2 / 3))
    assert s["p10"] == pytest.approx(1.2) and s["p90"] == pytest.approx(2.8)


def test_summarize_of_all_diverged_models_has_no_statistics():
    s = summarize([np.nan, np.nan, np.inf])
    assert s == {
        "n": 3,
        "non_finite": 3,
        "median": None,
        "mean": None,
        "std": None,
        "p10": None,
        "p90": None,
    }
    assert summarize([])["n"] == 0 and summarize([])["median"] is None


def test_summarize_of_one_value():
    assert summarize([0.25]) == {
        "n": 1,
        "non_finite": 0,
        "median": 0.25,
        "mean": 0.25,
        "std": 0.0,
        "p10": 0.25,
        "p90": 0.25,
    }


A = [0.011, 0.013, 0.009, 0.015, 0.012, 0.010, 0.014, 0.016]
B = [0.021, 0.016, 0.030, 0.025, 0.019, 0.028, 0.022, 0.024, 0.027]


def test_iqr_matches_numpy_and_ignores_non_finite_values():
    assert (
        iqr(SAMPLE)
        == pytest.approx(np.percentile(SAMPLE, 75) - np.percentile(SAMPLE, 25))
        == pytest.approx(0.5)
    )
    assert iqr([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, np.inf]) == pytest.approx(2.0)
    assert iqr([7.0]) == 0.0
    assert math.isnan(iqr([np.nan, -np.inf]))


# --- sweep statistics -------------------------------------------------------------------

from stablelearn.stats import (  # noqa: E402
    bootstrap_median_ci,
    compare,
    describe_comparison,
    format_p,
    wilson_interval,
    worst_filled,
)


def test_bootstrap_ci_of_the_median_matches_scipy_and_is_reproducible():
    values = np.r_[SAMPLE, np.nan]  # the NaN (a diverged run) is left out
    low, high = bootstrap_median_ci(values, seed=3)
    expected = scipy_stats.bootstrap(
        (SAMPLE,), np.median, n_resamples=9999, method="BCa", rng=np.random.default_rng(3)
    ).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert low <= np.median(SAMPLE) <= high
    assert bootstrap_median_ci(values, seed=3) == (low, high)
    assert bootstrap_median_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert bootstrap_median_ci([5.0]) == (5.0, 5.0)
    assert bootstrap_median_ci([np.nan, np.inf]) == (None, None)


def test_wilson_interval_matches_the_formula():
    k, n, z = 7, 20, scipy_stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert wilson_interval(k, n) == pytest.approx((centre - half, centre + half))
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2  # not zero-width at 0/n
    assert wilson_interval(20, 20)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (None, None)


def test_compare_ranks_diverged_runs_worst_and_reports_effect_sizes():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([3.5, 5.0, 6.0, np.nan])  # one diverged run
    c = compare(a, b)  # lower is better
    expected = scipy_stats.mannwhitneyu(a, [3.5, 5.0, 6.0, np.inf], alternative="two-sided")
    assert c["u"] == expected.statistic and c["p_value"] == pytest.approx(expected.pvalue)
    # 15 of the 16 pairs have a below b: P(a better) = 15/16
    assert c["p_better"] == pytest.approx(15 / 16)
    assert c["rank_biserial"] == pytest.approx(2 * 15 / 16 - 1)
    assert (c["median_candidate"], c["median_baseline"]) == (2.5, 5.0)
    assert c["median_difference"] == -2.5
    flipped = compare(a, b, higher_is_better=True)
    # the NaN now ranks lowest: a beats it 4 times, and 4 beats 3.5 once
    assert flipped["p_better"] == pytest.approx(5 / 16)
    assert worst_filled([1.0, np.nan], True).tolist() == [1.0, -np.inf]
    assert compare([1.0], [2.0, 3.0])["p_value"] is None
    tied = compare([np.nan, np.nan], [np.nan, np.nan])
    assert tied["p_value"] == 1.0 and tied["p_better"] == 0.5 and tied["median_candidate"] is None


def test_plain_sentences():
    c = compare(np.full(30, 0.0012) + np.arange(30) * 1e-6, np.full(30, 0.008))
    sentence = describe_comparison("normalized inputs", "standardized", "test MSE", c)
    assert sentence == (
        "normalized inputs beats standardized: median test MSE 0.001214 vs 0.008, p < 0.001, "
        "30 runs each."
    )
    worse = describe_comparison("b", "a", "test MSE", compare([2.0] * 5, [1.0] * 5), 0.01)
    assert worse.startswith("b is worse than a:") and "p = 0.010" in worse
    same = describe_comparison("b", "a", "x", compare([1.0, 2.0, 3.0], [2.0, 1.0, 3.0]))
    assert same.startswith("b and a do not differ detectably") and "p = 1.00" in same
    diverged = describe_comparison(
        "u", "s", "x", compare([np.nan] * 3, [1.0] * 3), 0.04, 0.05, (3, 0)
    )
    assert "n/a (all diverged) vs 1" in diverged and "3/3 vs 0/3 diverged" in diverged
    assert format_p(None).startswith("p not computed")


# --- paired comparisons -------------------------------------------------------------------

from stablelearn.stats import compare_paired  # noqa: E402


def test_a_candidate_better_on_every_seed_gets_the_exact_signed_rank_p_value():
    baseline = np.linspace(1.0, 2.0, 10)
    better = compare_paired(baseline / 2, baseline)  # lower RMSE is better
    assert (better.n, better.wins, better.losses, better.ties) == (10, 10, 0, 0)
    assert better.p_value == pytest.approx(2 / 2**10)  # all 1024 sign flips enumerated
    assert better.better and better.median_improvement == pytest.approx(np.median(baseline) / 2)
    worse = compare_paired(baseline * 2, baseline)
    assert worse.losses == 10 and not worse.better and worse.p_value == pytest.approx(2 / 2**10)


def test_paired_p_values_agree_with_scipy_wilcoxon_exact():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=12), rng.normal(size=12) + 0.8
    ours = compare_paired(b, a, higher_is_better=True)
    assert ours.p_value == pytest.approx(scipy_stats.wilcoxon(b - a, method="exact").pvalue)


def test_identical_runs_tie_and_one_signed_pair_decides_nothing():
    same = compare_paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.ties, same.p_value, same.better) == (3, 1.0, False)
    one = compare_paired([1.0, 2.0, 2.5], [1.0, 2.0, 3.0])
    assert (one.wins, one.ties, one.p_value) == (1, 2, 1.0)


def test_diverged_runs_lose_to_every_finite_run_and_tie_with_each_other():
    """Accuracy: the user's runs all diverged (NaN); the candidate diverged on seed 0
    only. Seed 0 is a tie; seeds 1-7 are wins larger than any finite difference."""
    user = np.full(8, np.nan)
    fix = np.array([np.nan, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96])
    c = compare_paired(fix, user, higher_is_better=True)
    assert (c.wins, c.losses, c.ties) == (7, 0, 1)
    assert c.median_improvement is None  # no pair where both stayed finite
    assert c.better and c.p_value == pytest.approx(2 / 2**7)
    rmse = compare_paired([np.inf, 1.0], [2.0, np.inf])  # one loss, one win, both maximal
    assert (rmse.wins, rmse.losses) == (1, 1) and not rmse.better


def test_many_pairs_draw_seeded_sign_flips():
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + rng.normal(0.3, 1.0, size=30)
    first, again = compare_paired(b, a, True), compare_paired(b, a, True)
    assert first == again  # seeded: the same numbers give the same p
    assert 0 < first.p_value < 1
    with pytest.raises(ValueError, match="equal lengths"):
        compare_paired([1.0], [1.0, 2.0])
