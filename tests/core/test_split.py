"""A program's models split across cores: the parts share one compiled program, train
side by side, and every model trains bit for bit as in one piece. Only a loss averaged
over many rows (an epoch's mean loss, val_loss, the final losses) can differ, by an ulp:
XLA vectorizes that reduction differently for a different number of models."""

import threading

import jax
import numpy as np
import pytest

import stablelearn as sl
from stablelearn.engine import prepare_training
from stablelearn.engine.train import MIN_PART_MODELS, split_models

CONFIG = sl.TrainConfig(epochs=3, loss="binary_crossentropy", metrics=("accuracy",))


@pytest.mark.parametrize("count", [1, 7, 8, 9, 10, 20, 23])
@pytest.mark.parametrize("parts", [1, 2, 3, 16])
def test_parts_cover_every_model_with_one_size(count, parts):
    indices = list(range(100, 100 + count))
    split = split_models(indices, parts)
    assert sorted(set().union(*split)) == indices
    assert len({len(part) for part in split}) == 1  # one shape: one compiled program
    assert len(split) <= parts
    if len(split) > 1:
        assert min(len(part) for part in split) >= MIN_PART_MODELS
    for part in split:  # consecutive models
        assert list(part) == list(range(part[0], part[0] + len(part)))
    assert sum(len(part) for part in split) - count < len(split[0])  # overlap below a part


@pytest.fixture(scope="module")
def circles():
    return sl.prepare(sl.lesson_circles(), input_scaler="minmax(-1,1)", n_train=200)


def _runs(circles, models, depths=(2,), batch_norm=False):
    """`models` runs, one of them diverging (a learning rate that overflows)."""
    runs = []
    for i in range(models):
        depth = depths[i % len(depths)]
        hidden = tuple(
            sl.Dense(4, "relu", "he_uniform", batch_norm=batch_norm) for _ in range(depth)
        )
        model = sl.MLP(2, hidden, sl.Dense(1, "sigmoid"))
        rate = 1e30 if i == 3 else 0.05
        runs.append(sl.Run(model, sl.SGD(rate, momentum=0.9), circles, i, CONFIG))
    return runs


def _assert_same(a: np.ndarray, b: np.ndarray, name: str) -> None:
    if "loss" in name:
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=name)
    else:
        np.testing.assert_array_equal(a, b, err_msg=name)


def _assert_identical(a: sl.TrainResult, b: sl.TrainResult) -> None:
    for name in a.history:
        _assert_same(a.history[name], b.history[name], name)
    for name in a.test_scores:
        _assert_same(a.train_scores[name], b.train_scores[name], name)
        _assert_same(a.test_scores[name], b.test_scores[name], name)
    np.testing.assert_array_equal(a.diverged_epoch, b.diverged_epoch)
    for key in a.telemetry:
        np.testing.assert_array_equal(a.telemetry[key], b.telemetry[key], err_msg=key)
    for pa, pb in zip(a.test_predictions, b.test_predictions, strict=True):
        np.testing.assert_array_equal(pa, pb)
    jax.tree.map(np.testing.assert_array_equal, a.final_params, b.final_params)


@pytest.mark.parametrize(
    "depths, batch_norm",
    [((2,), False), ((1, 3, 2), False), ((2,), True)],
    ids=["plain", "packed", "batch-norm"],
)
def test_a_split_program_trains_every_model_as_one_piece(circles, depths, batch_norm):
    runs = _runs(circles, 9, depths, batch_norm)
    whole = sl.train(runs, workers=1)
    split = prepare_training(runs, workers=2)
    assert [len(g.indices) for g in split.groups] == [5, 5]  # one model in both parts
    assert split.groups[0].executable is split.groups[1].executable
    together = sl.train(runs, prepared=split)
    assert whole.timing.programs == together.timing.programs == 1
    assert whole.diverged_epoch[3] > 0  # the diverging model stays isolated in its part
    _assert_identical(whole, together)


def test_a_stop_ends_every_part(circles):
    runs = _runs(circles, 8)
    stop = threading.Event()
    stop.set()
    with pytest.raises(sl.engine.Stopped):
        sl.train(runs, stop=stop, workers=2)
