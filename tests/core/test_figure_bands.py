"""The learning-curve band on curves that training produces: runs that diverge part-way
leave epochs where no run is finite, which must draw as a gap without a warning.

No training here: the curves are hand-made (tests/experiments/test_figures.py draws
figures from real runs)."""

import warnings

import numpy as np
from matplotlib.figure import Figure

from stablelearn import figures

# 3 runs x 4 epochs: every run diverged after epoch 2, one already at epoch 2
CURVES = np.array(
    [
        [4.0, 2.0, np.nan, np.nan],
        [6.0, np.inf, np.nan, np.nan],
        [5.0, 3.0, np.inf, np.nan],
    ]
)


def test_epoch_percentiles_over_the_finite_runs_and_nan_where_none_is_finite():
    measured = np.isfinite(CURVES).any(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p10, median, p90 = figures.epoch_percentiles(CURVES, measured)
    np.testing.assert_allclose(median[:2], [5.0, 2.5])
    np.testing.assert_allclose(p10[:2], [4.2, 2.1])
    np.testing.assert_allclose(p90[:2], [5.8, 2.9])
    assert np.isnan([p10[2:], median[2:], p90[2:]]).all()


def test_band_draws_partly_diverged_runs_without_a_warning():
    ax = Figure().subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures.band(ax, CURVES, figures.TRAIN_COLOR, "train")
    (median_line,) = ax.get_lines()
    np.testing.assert_allclose(median_line.get_ydata()[:2], [5.0, 2.5])


def test_score_box_plot_takes_a_log_axis_when_scores_span_two_decades(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path: drawn.append(fig) or path)
    wide = [np.array([1.2, 1.5, 2.0]), np.array([120.0, 130.0]), np.array([np.inf, np.inf])]
    figures.score_box_plot(["a", "b", "c"], wide, "RMSE", "t", tmp_path / "w.png")
    narrow = [np.array([1.2, 1.5]), np.array([20.0, 30.0])]
    figures.score_box_plot(["a", "b"], narrow, "RMSE", "t", tmp_path / "n.png")
    signed = [np.array([-1.0, 1.0]), np.array([300.0, 400.0])]
    figures.score_box_plot(["a", "b"], signed, "RMSE", "t", tmp_path / "s.png")
    assert [fig.axes[0].get_yscale() for fig in drawn] == ["log", "linear", "linear"]


def test_finite_percentiles_equal_numpys_nanpercentile_bit_for_bit():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for runs in (1, 2, 7, 30):
            values = (rng.normal(size=(runs, 50)) * 10.0 ** rng.integers(-3, 4)).astype(dtype)
            values[rng.random(values.shape) < 0.3] = np.nan
            values[rng.random(values.shape) < 0.05] = np.inf
            values[0] = np.where(np.isfinite(values[0]), values[0], 1.0)  # one finite a column
            expected = np.nanpercentile(
                np.where(np.isfinite(values), values, np.nan), [10, 50, 90], axis=0
            )
            np.testing.assert_array_equal(
                figures.finite_percentiles(values, (10, 50, 90)), expected
            )
