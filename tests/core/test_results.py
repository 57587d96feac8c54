"""TrainResult: selection, records, layer names; and the multiclass path through the engine."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

import stablelearn as sl


@pytest.fixture(scope="module")
def blobs_result() -> sl.TrainResult:
    x, y = make_blobs(n_samples=300, centers=3, n_features=2, cluster_std=0.6, random_state=0)
    data = sl.prepare(sl.Dataset(x, y, "multiclass", "blobs"), input_scaler="standard", n_train=200)
    model = sl.MLP(2, (sl.Dense(8, "relu", "he_uniform"),), sl.Dense(3, "softmax"))
    runs = [
        sl.Run(
            model,
            sl.SGD(0.05, 0.9),
            data,
            seed,
            sl.TrainConfig.for_task("multiclass", epochs=20),
            {"arm": arm},
        )
        for seed, arm in enumerate(["a", "b", "a", "b"])
    ]
    return sl.train(runs)


@pytest.mark.slow
def test_a_softmax_model_learns_three_separable_classes(blobs_result):
    assert set(blobs_result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert (blobs_result.test_scores["accuracy"] > 0.9).all()
    assert blobs_result.test_predictions[0].shape == (100, 3)  # class probabilities
    np.testing.assert_allclose(blobs_result.test_predictions[0].sum(axis=1), 1.0, rtol=1e-5)
    predicted = blobs_result.test_predictions[0].argmax(axis=1)
    truth = blobs_result.runs[0].data.test_y
    np.testing.assert_allclose(
        blobs_result.test_scores["accuracy"][0], np.mean(predicted == truth), rtol=1e-6
    )


@pytest.mark.slow
def test_select_keeps_every_array_aligned(blobs_result):
    picked = blobs_result.select(np.array(blobs_result.tag("arm")) == "b")
    assert picked.n_models == 2
    assert [r.seed for r in picked.runs] == [1, 3]
    np.testing.assert_array_equal(picked.history["loss"], blobs_result.history["loss"][[1, 3]])
    np.testing.assert_array_equal(
        picked.telemetry["grad_norm"], blobs_result.telemetry["grad_norm"][[1, 3]]
    )
    assert picked.final_params[0][0]["kernel"].shape == (8, 2)


def test_records_are_json_ready_rows(blobs_result):
    rows = blobs_result.records()
    assert [row["seed"] for row in rows] == [0, 1, 2, 3]
    assert (
        rows[1]["arm"] == "b" and rows[1]["diverged"] is False and rows[1]["diverged_epoch"] is None
    )
    assert rows[0]["test_accuracy"] == pytest.approx(blobs_result.test_scores["accuracy"][0])
    assert blobs_result.layer_names(0) == ["hidden_1", "output"]


def test_a_multiclass_target_needs_as_many_softmax_units_as_classes():
    x, y = make_blobs(n_samples=60, centers=3, n_features=2, random_state=0)
    data = sl.prepare(sl.Dataset(x, y, "multiclass"), n_train=40)
    two = sl.MLP(2, (), sl.Dense(2, "softmax"))
    with pytest.raises(sl.ConfigError, match="must have 3 unit"):
        sl.Run(two, sl.SGD(), data, config=sl.TrainConfig.for_task("multiclass"))


def test_original_unit_scores_of_a_diverged_model_are_nan_not_an_error(scaled_target):
    """scikit-learn's inverse transform refuses inf; a diverged model predicts it."""
    from stablelearn.results import _original_unit_scores

    predictions = np.full(len(scaled_target.test_y), np.inf)
    scores = _original_unit_scores(scaled_target, predictions, scaled_target.test_y)
    assert all(np.isnan(v) for v in scores.values())
