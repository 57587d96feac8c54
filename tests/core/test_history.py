"""History kept chunk by chunk: every epoch of a normal run, a bounded sample of a very
long one, with divergence epochs and first non-finite steps exact either way."""

import importlib

import numpy as np

import stablelearn as sl
from stablelearn.engine.history import HISTORY_POINTS, HistoryRecorder, recorded_epochs


def test_a_run_up_to_the_limit_keeps_every_epoch():
    np.testing.assert_array_equal(recorded_epochs(7), np.arange(1, 8))
    np.testing.assert_array_equal(recorded_epochs(HISTORY_POINTS), np.arange(1, HISTORY_POINTS + 1))


def test_a_longer_run_keeps_the_first_every_kth_and_the_last_epoch():
    np.testing.assert_array_equal(
        recorded_epochs(25, points=10), [1, 3, 6, 9, 12, 15, 18, 21, 24, 25]
    )
    for epochs in (10_001, 99_999, 1_000_000):
        kept = recorded_epochs(epochs)
        assert kept[0] == 1 and kept[-1] == epochs
        assert len(kept) <= HISTORY_POINTS + 2
        assert np.all(np.diff(kept) > 0)


def _chunk(finite, first_bad=None, value=0.0, layer=None, kind=None):
    epochs, models = finite.shape
    chunk = {"train": np.full((epochs, models, 1), value), "finite": finite}
    if first_bad is not None:
        chunk["telemetry"] = {
            "first_bad_step": first_bad,
            "first_bad_layer": np.full((epochs, models), -1) if layer is None else layer,
            "first_bad_kind": np.zeros((epochs, models), int) if kind is None else kind,
            "grad_norm": np.ones((epochs, models, 2)),
        }
    return chunk


def test_divergence_and_the_first_bad_step_are_exact_in_epochs_the_history_drops(monkeypatch):
    """Epoch 5 is not kept (10 epochs, 4 points: 1, 3, 6, 9, 10); model 1 diverges in it,
    at its 3rd step (0-based 2) of 4 per epoch, in the second of two chunks."""
    monkeypatch.setattr(importlib.import_module("stablelearn.engine.history"), "HISTORY_POINTS", 4)
    recorder = HistoryRecorder(epochs=10, n_models=2, steps_per_epoch=4)
    np.testing.assert_array_equal(recorder.kept, [1, 3, 6, 9, 10])
    ok = np.ones((4, 2), bool)
    recorder.add(0, _chunk(ok, np.full((4, 2), -1), value=1.0))
    finite = np.ones((6, 2), bool)
    finite[0:, 1] = False  # epoch 5 on
    first_bad = np.full((6, 2), -1)
    first_bad[0, 1], first_bad[3, 1] = 2, 0
    # where it came from: taken from the epoch of the first bad step, not a later one
    layer, kind = np.full((6, 2), -1), np.zeros((6, 2), int)
    layer[0, 1], kind[0, 1] = 1, 3
    layer[3, 1], kind[3, 1] = 0, 1
    recorder.add(4, _chunk(finite, first_bad, value=2.0, layer=layer, kind=kind))
    np.testing.assert_array_equal(recorder.diverged_epoch, [-1, 5])
    np.testing.assert_array_equal(recorder.first_nonfinite_step, [-1, 4 * 4 + 2 + 1])
    np.testing.assert_array_equal(recorder.first_nonfinite_layer, [-1, 1])
    np.testing.assert_array_equal(recorder.first_nonfinite_kind, [0, 3])
    history = recorder.history()
    assert history["train"].shape == (5, 2, 1)
    np.testing.assert_array_equal(history["train"][:, 0, 0], [1, 1, 2, 2, 2])  # epochs 1 3 | 6 9 10
    assert history["telemetry"]["grad_norm"].shape == (5, 2, 2)


def test_a_thinned_history_is_the_full_one_at_the_kept_epochs(
    lesson_mlp, lesson_sgd, scaled_target, unscaled, monkeypatch
):
    """The same 4 models (one diverges in epoch 1) trained with a 2-point history limit:
    the kept columns equal the full history's, and what must be exact stays exact."""
    runs = [
        sl.Run(lesson_mlp, lesson_sgd, d, s, sl.TrainConfig(epochs=5))
        for s, d in enumerate([scaled_target] * 3 + [unscaled])
    ]
    full = sl.train(runs)
    monkeypatch.setattr(importlib.import_module("stablelearn.engine.history"), "HISTORY_POINTS", 2)
    thinned = sl.train(runs)
    np.testing.assert_array_equal(thinned.history_epochs, [1, 3, 5])
    columns = thinned.history_epochs - 1
    for key, curves in full.history.items():
        np.testing.assert_array_equal(thinned.history[key], curves[:, columns], err_msg=key)
    for key, values in full.telemetry.items():
        expected = values if values.ndim == 1 else values[:, columns]
        np.testing.assert_array_equal(thinned.telemetry[key], expected, err_msg=key)
    np.testing.assert_array_equal(thinned.diverged_epoch, full.diverged_epoch)
    assert full.diverged.sum() == 1
    for key in full.test_scores:
        np.testing.assert_array_equal(thinned.test_scores[key], full.test_scores[key])
    np.testing.assert_array_equal(full.history_epochs, np.arange(1, 6))


def test_the_first_nonfinite_origin_is_exact_across_chunk_boundaries():
    """Model 0 goes bad in the last epoch of chunk 1, model 1 in the first epoch of
    chunk 2: each keeps its own epoch's step, layer and kind; later chunks (where every
    step is bad) change nothing."""
    recorder = HistoryRecorder(epochs=6, n_models=2, steps_per_epoch=5)
    ok = np.ones((2, 2), bool)
    first_bad, layer, kind = np.full((2, 2), -1), np.full((2, 2), -1), np.zeros((2, 2), int)
    first_bad[1, 0], layer[1, 0], kind[1, 0] = 4, 2, 4  # epoch 2, its 5th step
    recorder.add(0, _chunk(ok, first_bad, layer=layer, kind=kind))
    first_bad, layer, kind = np.full((2, 2), 0), np.full((2, 2), 0), np.ones((2, 2), int)
    first_bad[0, 1], layer[0, 1], kind[0, 1] = 1, 1, 3  # epoch 3, its 2nd step
    recorder.add(2, _chunk(ok, first_bad, layer=layer, kind=kind))
    recorder.add(4, _chunk(ok, np.zeros((2, 2), int), layer=np.zeros((2, 2), int),
                           kind=np.ones((2, 2), int)))  # fmt: skip
    np.testing.assert_array_equal(recorder.first_nonfinite_step, [1 * 5 + 4 + 1, 2 * 5 + 1 + 1])
    np.testing.assert_array_equal(recorder.first_nonfinite_layer, [2, 1])
    np.testing.assert_array_equal(recorder.first_nonfinite_kind, [4, 3])
