"""Statistics over repeats, checked against NumPy and SciPy on fixed samples."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from stablelearn.stats import iqr, mann_whitney, summarize

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


def test_mann_whitney_matches_scipy_two_sided():
    got = mann_whitney(A, B)
    want = scipy_stats.mannwhitneyu(A, B, alternative="two-sided")
    assert got["u"] == pytest.approx(want.statistic)
    assert got["p_value"] == pytest.approx(want.pvalue)
    assert got["p_value"] < 0.001
    assert got["u"] == 0.5  # one tie (0.016) and no a > b pairs
    assert got["p_a_less"] == pytest.approx(1 - 0.5 / (8 * 9))


def test_mann_whitney_effect_size_direction():
    assert mann_whitney(A, B)["p_a_less"] > 0.95  # a clearly smaller
    assert mann_whitney(B, A)["p_a_less"] < 0.05
    flipped = mann_whitney(B, A)
    assert flipped["p_value"] == pytest.approx(mann_whitney(A, B)["p_value"])
    assert flipped["u"] == pytest.approx(8 * 9 - 0.5)
    same = mann_whitney([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["p_a_less"] == pytest.approx(0.5) and same["p_value"] == pytest.approx(1.0)


def test_mann_whitney_uses_finite_values_only():
    with_nan = mann_whitney([*A, np.nan, np.inf], [np.nan, *B])
    assert with_nan == mann_whitney(A, B)


@pytest.mark.parametrize(
    ("a", "b"),
    [([1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0], [np.nan, 3.0]), ([], []), ([np.nan] * 5, B)],
)
def test_mann_whitney_needs_two_finite_values_per_side(a, b):
    assert mann_whitney(a, b) == {"u": None, "p_value": None, "p_a_less": None}


def test_iqr_matches_numpy_and_ignores_non_finite_values():
    assert (
        iqr(SAMPLE)
        == pytest.approx(np.percentile(SAMPLE, 75) - np.percentile(SAMPLE, 25))
        == pytest.approx(0.5)
    )
    assert iqr([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, np.inf]) == pytest.approx(2.0)
    assert iqr([7.0]) == 0.0
    assert math.isnan(iqr([np.nan, -np.inf]))
