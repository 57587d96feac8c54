"""The lesson's claims, decided on synthetic results with hand-computed answers.

No model is trained here: each ExperimentResult is built from a catalog experiment and
a TrainResult whose scores and curves are written out by hand.
"""

import numpy as np
import pytest

from stablelearn import experiments
from stablelearn.data import builtin_dataset, prepare
from stablelearn.experiments.runner import ExperimentResult, VariantResult
from stablelearn.lesson import catalog as lesson_catalog
from stablelearn.lesson import claims
from stablelearn.lesson.claims import (
    _convergence_epoch,
    _first_epoch_below,
    check_claims,
    count_verdict,
)
from stablelearn.results import Timing, TrainResult
from stablelearn.runs import Run

NAN = np.nan


@pytest.fixture(scope="module")
def catalog() -> dict[str, experiments.Experiment]:
    return {e.id: e for e in lesson_catalog.catalog()}


def fake_result(experiment: experiments.Experiment, **variants: dict) -> ExperimentResult:
    """An ExperimentResult whose variant `name` has the given history, test/train scores
    and diverged_epoch; keyword names use '_' for spaces (no_clipping)."""
    dataset = builtin_dataset(experiment.dataset)
    by_name = {v.name.replace(" ", "_"): v for v in experiment.variants}
    results = []
    for key, measured in variants.items():
        variant = by_name[key]
        data = prepare(dataset, variant.input_scaler, variant.target_scaler, n_train=500)
        n = len(measured["diverged_epoch"])
        runs = tuple(
            Run(variant.model, variant.optimizer, data, seed, experiment.config, {"repeat": seed})
            for seed in range(n)
        )
        history = {k: np.asarray(v, np.float32) for k, v in measured.get("history", {}).items()}
        epochs = next(iter(history.values())).shape[1] if history else 1
        result = TrainResult(
            runs=runs,
            epochs=epochs,
            history=history,
            train_scores={k: np.asarray(v, float) for k, v in measured.get("train", {}).items()},
            test_scores={k: np.asarray(v, float) for k, v in measured.get("test", {}).items()},
            diverged_epoch=np.asarray(measured["diverged_epoch"], np.int64),
            train_predictions=(),
            test_predictions=(),
            final_params=(),
            timing=Timing(0.0, 0.0, 0.0, 0, n),
        )
        results.append(VariantResult(variant, data, result))
    return ExperimentResult(experiment, dataset, tuple(results))


def verdicts(results: dict[str, ExperimentResult]) -> dict[str, claims.ClaimResult]:
    return {c.id: c for c in check_claims(results)}


# --- small helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "verdict"),
    [
        (10, 10, "holds"),
        (1, 1, "holds"),
        (0, 10, "does not hold"),
        (7, 10, "holds in 7 of 10 repeats"),
        (1, 30, "holds in 1 of 30 repeats"),
    ],
)
def test_count_verdict(k, n, verdict):
    assert count_verdict(k, n) == verdict


def test_first_epoch_below_is_one_based_strict_and_skips_non_finite_values():
    curves = np.array(
        [
            [5.0, 3.0, 1.0, 0.5],  # 1.0 is not below 1.0: epoch 4
            [NAN, 0.1, 2.0, 2.0],  # NaN is never below: epoch 2
            [9.0, 9.0, 9.0, 9.0],  # never: 0
            [0.2, NAN, NAN, NAN],  # epoch 1, then diverged
            [-np.inf, 0.5, 0.5, 0.5],  # -inf does not count: epoch 2
        ]
    )
    np.testing.assert_array_equal(_first_epoch_below(curves, 1.0), [4, 2, 0, 1, 2])


def step_curve(jump_at: int, epochs: int, low: float = 0.5, high: float = 1.0) -> np.ndarray:
    """`low` for epochs 1..jump_at-1, `high` from epoch jump_at (1-based)."""
    return np.where(np.arange(1, epochs + 1) < jump_at, low, high)


def test_convergence_epoch_of_step_curves():
    # With window 20 the first 20-epoch mean within 0.02 of 1.0 is the first window made
    # only of epochs >= the jump: epochs 81..100 for a jump at 81, 261..280 for 261.
    curves = np.stack([step_curve(81, 500), step_curve(261, 500), step_curve(1, 500)])
    np.testing.assert_array_equal(_convergence_epoch(curves), [100, 280, 20])
    # the final level is the mean of the last 50 epochs: a jump at 261 of 300 epochs
    # leaves 10 low epochs in it (level 0.9), so 4 low epochs in a window are close enough
    np.testing.assert_array_equal(_convergence_epoch(step_curve(261, 300)[None]), [276])
    # a 3-epoch window: epochs 11..13
    np.testing.assert_array_equal(_convergence_epoch(step_curve(11, 60)[None], window=3), [13])


def test_convergence_epoch_tolerates_noise_within_tolerance():
    noisy = step_curve(31, 120, low=0.5, high=0.85) + np.tile([0.01, -0.01], 60)
    # final level 0.85; 0.85 +- 0.01 stays above 0.83 once the window holds no low epoch
    np.testing.assert_array_equal(_convergence_epoch(noisy[None], window=5), [35])


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
def test_a_diverged_run_never_converges():
    curves = np.full((1, 80), NAN)
    np.testing.assert_array_equal(_convergence_epoch(curves), [np.inf])


# --- single-experiment claims -----------------------------------------------------------------


def test_unscaled_target_claim_counts_diverged_repeats(catalog):
    e = catalog["unscaled-mlp"]
    loss = {"loss": [NAN, NAN, NAN]}
    all_nan = fake_result(e, **{"unscaled-mlp": {"diverged_epoch": [1, 1, 3], "test": loss}})
    (c,) = check_claims({"unscaled-mlp": all_nan})
    assert (c.id, c.verdict) == ("unscaled-target-nan", "holds")
    assert c.measured == {
        "k": 3,
        "n": 3,
        "diverged": "3/3",
        "diverged_epoch_median": 1.0,
        "diverged_epoch_max": 3,
    }
    some = fake_result(e, **{"unscaled-mlp": {"diverged_epoch": [-1, 2, -1]}})
    (c,) = check_claims({"unscaled-mlp": some})
    assert c.verdict == "holds in 1 of 3 repeats"
    assert (c.measured["diverged"], c.measured["diverged_epoch_median"]) == ("1/3", 2.0)
    none = fake_result(e, **{"unscaled-mlp": {"diverged_epoch": [-1, -1]}})
    (c,) = check_claims({"unscaled-mlp": none})
    assert c.verdict == "does not hold"
    assert c.measured["diverged_epoch_median"] is None and c.measured["diverged_epoch_max"] is None


def test_standardized_target_learns_below_the_bar(catalog):
    measured = {
        "diverged_epoch": [-1, -1, -1, 4],
        "test": {"loss": [0.01, 0.049, 0.05, NAN], "rmse_original": [8.0, 10.0, 12.0, NAN]},
        "train": {"loss": [0.002, 0.003, 0.004, NAN]},
    }
    result = fake_result(catalog["standardized-target"], **{"standardized-target": measured})
    (c,) = check_claims({"standardized-target": result})
    assert c.id == "standardized-target-learns"
    assert c.verdict == "holds in 2 of 4 repeats"  # 0.05 is not below the 0.05 bar; NaN fails
    assert c.measured["test_mse_median"] == pytest.approx(0.049)
    assert c.measured["train_mse_median"] == pytest.approx(0.003)
    assert c.measured["test_rmse_original_median"] == pytest.approx(10.0)
    assert c.measured["diverged"] == 1
    assert c.to_json() == {
        "id": "standardized-target-learns",
        "claim": c.claim,
        "experiments": ["standardized-target"],
        "verdict": "holds in 2 of 4 repeats",
        "measured": c.measured,
    }


def test_circles_accuracy_claims_use_their_bars(catalog):
    acc = [0.75, 0.9, 0.7499, NAN, 0.59, 0.6]
    measured = {
        "diverged_epoch": [-1, -1, -1, 7, -1, -1],
        "test": {"accuracy": acc},
        "train": {"accuracy": [0.8] * 6},
    }
    relu5 = fake_result(
        catalog["relu-5"],
        **{"relu-5": {**measured, "history": {"accuracy": np.full((6, 300), 0.8)}}},
    )
    tanh5 = fake_result(catalog["tanh-5"], **{"tanh-5": measured})
    got = verdicts({"relu-5": relu5, "tanh-5": tanh5})
    assert list(got) == ["tanh5-fails", "relu5-learns", "relu5-converges-200"]
    assert got["relu5-learns"].verdict == "holds in 2 of 6 repeats"  # 0.75 and 0.9
    assert got["tanh5-fails"].verdict == "holds in 2 of 6 repeats"  # NaN and 0.59
    assert got["relu5-learns"].measured["test_accuracy_median"] == pytest.approx(0.7499)
    assert got["tanh5-fails"].measured["train_accuracy_median"] == pytest.approx(0.8)
    assert got["relu5-converges-200"].verdict == "holds"  # flat curves: converged at 20
    assert got["relu5-converges-200"].measured["convergence_epoch_median"] == 20.0


def test_relu5_convergence_claim_counts_runs_by_epoch_250(catalog):
    curves = np.stack([step_curve(81, 500), step_curve(261, 500), step_curve(151, 500)])
    measured = {
        "diverged_epoch": [-1, -1, -1],
        "test": {"accuracy": [0.84] * 3},
        "train": {"accuracy": [0.84] * 3},
        "history": {"accuracy": curves},
    }
    result = fake_result(catalog["relu-5"], **{"relu-5": measured})
    c = verdicts({"relu-5": result})["relu5-converges-200"]
    assert c.verdict == "holds in 2 of 3 repeats"  # converged at 100, 280, 170
    assert c.measured["convergence_epoch_median"] == 170.0
    assert c.measured["convergence_epoch_p10_p90"] == pytest.approx([114.0, 258.0])


def test_relu5_convergence_is_not_claimed_from_runs_shorter_than_the_window(catalog):
    rising = np.array([[0.50, 0.55], [0.48, 0.60]])
    measured = {
        "diverged_epoch": [-1, -1],
        "test": {"accuracy": [0.55, 0.6]},
        "train": {"accuracy": [0.55, 0.6]},
        "history": {"accuracy": rising},
    }
    result = fake_result(catalog["relu-5"], **{"relu-5": measured})
    assert verdicts({"relu-5": result})["relu5-converges-200"].verdict != "holds"


def clipping_measured(loss_curves, diverged_epoch=None, test=None) -> dict:
    curves = np.asarray(loss_curves, float)
    n = curves.shape[0]
    return {
        "diverged_epoch": diverged_epoch if diverged_epoch is not None else [-1] * n,
        "test": {"loss": test if test is not None else curves[:, -1]},
        "history": {"loss": curves},
    }


def descending(start: float, below_100_at: int, epochs: int = 25) -> np.ndarray:
    """Geometric descent from `start` that first drops below 100 at epoch `below_100_at`."""
    curve = np.geomspace(start, 150.0, below_100_at - 1).tolist()
    return np.asarray(curve + np.linspace(99.0, 50.0, epochs - below_100_at + 1).tolist())


def test_gradient_clipping_claims(catalog):
    diverging = np.full((3, 25), NAN)
    diverging[:, 0] = 3e6
    per_tensor = [
        descending(25_000, 10),  # holds: starts above 20,000, below 100 at epoch 10
        descending(15_000, 5),  # starts too low
        descending(30_000, 21),  # too slow
        np.r_[30_000.0, np.full(24, NAN)],  # diverged
    ]
    result = fake_result(
        catalog["gradient-clipping"],
        no_clipping=clipping_measured(diverging, diverged_epoch=[1, 2, 1]),
        **{
            "clipnorm_1.0_(per_tensor)": clipping_measured(
                per_tensor, diverged_epoch=[-1, -1, -1, 2]
            ),
            "clipnorm_1.0_(global)": clipping_measured([descending(25_000, 20)] * 2),
            "clipvalue_5.0": clipping_measured(
                [descending(5_000, 5), descending(5_000, 6), descending(5_000, 2)]
            ),
        },
    )
    got = verdicts({"gradient-clipping": result})
    assert list(got) == [
        "clipping-none-diverges",
        "clipnorm-per-tensor-20000-to-100",
        "clipnorm-global-20000-to-100",
        "clipvalue-sub100-fast",
        "clipnorm-keeps-finite",
        "clipvalue-keeps-finite",
    ]
    assert got["clipping-none-diverges"].verdict == "holds"
    assert got["clipping-none-diverges"].measured["diverged_epoch_max"] == 2
    drop = got["clipnorm-per-tensor-20000-to-100"]
    assert drop.verdict == "holds in 1 of 4 repeats"
    assert drop.measured["first_epoch_loss_median"] == pytest.approx(27_500.0)
    assert drop.measured["epoch_below_100_median"] == 15.5  # of 10, 5, 21 and never
    assert drop.measured["diverged"] == 1
    assert got["clipnorm-global-20000-to-100"].verdict == "holds"  # epoch 20 is in time
    fast = got["clipvalue-sub100-fast"]
    assert fast.verdict == "holds in 2 of 3 repeats"  # epochs 5 and 2, not 6
    assert fast.measured["epoch_below_100_median"] == 5.0
    assert got["clipnorm-keeps-finite"].verdict == "holds in 3 of 4 repeats"
    assert got["clipnorm-keeps-finite"].measured["diverged"] == "1/4"
    assert got["clipvalue-keeps-finite"].verdict == "holds"


# --- comparison claims ------------------------------------------------------------------------


def input_scaling(unscaled, normalized, standardized, catalog) -> ExperimentResult:
    def measured(scores):
        return {"diverged_epoch": [-1] * len(scores), "test": {"loss": scores}}

    return fake_result(
        catalog["input-scaling"],
        unscaled=measured(unscaled),
        normalized=measured(normalized),
        standardized=measured(standardized),
    )


SPREAD = np.linspace(-1.0, 1.0, 10)


def test_normalized_inputs_best_holds_when_lower_and_tighter(catalog):
    result = input_scaling(
        0.007 + 0.004 * SPREAD, 0.001 + 0.0002 * SPREAD, 0.008 + 0.004 * SPREAD, catalog
    )
    got = verdicts({"input-scaling": result})
    assert list(got) == ["normalized-inputs-best", "unscaled-vs-standardized-inputs-similar"]
    best = got["normalized-inputs-best"]
    assert best.verdict == "holds"
    assert best.measured["normalized"]["median"] == pytest.approx(0.001)
    assert best.measured["normalized"]["iqr"] == pytest.approx(0.0002)
    assert best.measured["unscaled"]["iqr"] == pytest.approx(0.004)
    assert best.measured["normalized_vs_unscaled"]["p_a_less"] == 1.0
    assert best.measured["normalized_vs_standardized"]["p_value"] < 0.001
    assert best.measured["normalized_vs_standardized"]["sentence"].startswith(
        "normalized inputs beats standardized: median test MSE 0.001 vs 0.008, p < 0.001, "
        "10 runs each"
    )
    assert best.measured["summary"].count(" beats ") == 2
    low, high = best.measured["normalized"]["median_ci95"]
    assert low < 0.001 < high
    similar = got["unscaled-vs-standardized-inputs-similar"]
    assert similar.verdict == "holds"
    assert similar.measured["median_ratio"] == pytest.approx(0.007 / 0.008)
    assert similar.measured["p_value"] > 0.05


def test_normalized_inputs_lower_but_not_tighter_holds_in_part(catalog):
    result = input_scaling(
        0.007 + 0.001 * SPREAD, 0.001 + 0.002 * SPREAD, 0.03 + 0.004 * SPREAD, catalog
    )
    got = verdicts({"input-scaling": result})
    assert got["normalized-inputs-best"].verdict == (
        "holds in part (lower than unscaled: yes, tighter: no; "
        "lower than standardized: yes, tighter: yes)"
    )
    similar = got["unscaled-vs-standardized-inputs-similar"]
    assert similar.verdict == "does not hold (the difference is significant)"
    assert similar.measured["p_value"] < 0.05 and similar.measured["p_a_less"] == 1.0


def test_normalized_inputs_worse_does_not_hold(catalog):
    result = input_scaling(
        0.007 + 0.001 * SPREAD, 0.5 + 0.1 * SPREAD, 0.007 + 0.001 * SPREAD, catalog
    )
    assert verdicts({"input-scaling": result})["normalized-inputs-best"].verdict == "does not hold"


# --- selection --------------------------------------------------------------------------------


def test_check_claims_returns_only_claims_of_present_experiments_in_lesson_order(catalog):
    assert check_claims({}) == []
    unscaled = fake_result(catalog["unscaled-mlp"], **{"unscaled-mlp": {"diverged_epoch": [1]}})
    measured = {"diverged_epoch": [-1], "test": {"accuracy": [0.4]}, "train": {"accuracy": [0.5]}}
    tanh5 = fake_result(catalog["tanh-5"], **{"tanh-5": measured})
    got = check_claims({"tanh-5": tanh5, "unscaled-mlp": unscaled})
    assert [c.id for c in got] == ["unscaled-target-nan", "tanh5-fails"]
    assert [c.experiments for c in got] == [("unscaled-mlp",), ("tanh-5",)]
    assert [c.verdict for c in got] == ["holds", "holds"]
    expected_ids = [c.id for c in claims.CLAIMS if c.experiment in {"tanh-5", "unscaled-mlp"}]
    assert [c.id for c in got] == expected_ids


def test_claims_that_a_short_run_cannot_decide_are_not_measured(catalog):
    loss = np.array([[25_000.0, 15_000.0]])
    measured = {
        "no_clipping": clipping_measured([[np.nan, np.nan]], diverged_epoch=[1]),
        "clipnorm_1.0_(per_tensor)": clipping_measured(loss),
        "clipnorm_1.0_(global)": clipping_measured(loss),
        "clipvalue_5.0": clipping_measured(loss),
    }
    result = fake_result(catalog["gradient-clipping"].override(epochs=2, repeats=1), **measured)
    verdicts_by_id = verdicts({"gradient-clipping": result})
    assert (
        verdicts_by_id["clipnorm-per-tensor-20000-to-100"].verdict
        == "not measured (needs 20 epochs or more)"
    )
    assert (
        verdicts_by_id["clipvalue-sub100-fast"].verdict == "not measured (needs 5 epochs or more)"
    )
    assert verdicts_by_id["clipping-none-diverges"].verdict == "holds"
