"""Engine behaviour: Keras fit() semantics, ensembles, divergence, determinism.

Most tests share one shape (the lesson's 20-25-1 MLP on 500/500 rows, 4 models, 5
epochs) so they reuse one compiled program; the lesson outcome tests share another.
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stablelearn as sl
from stablelearn import losses
from stablelearn.engine import batch_schedule
from stablelearn.model import forward, init_params

SHORT = sl.TrainConfig(epochs=5)


def make_runs(model, data, optimizers, seeds, config=SHORT):
    return [
        sl.Run(model, opt, d, seed, config)
        for opt, d, seed in zip(optimizers, data, seeds, strict=True)
    ]


def test_batch_schedule_draws_a_fresh_permutation_each_epoch_with_a_smaller_last_batch():
    rows, weights = batch_schedule([7, 8], n_rows=500, epochs=3, batch_size=32)
    assert rows.shape == (3, 16, 2, 32)
    assert weights.shape == (16, 32)
    np.testing.assert_array_equal(weights[:15], 1.0)
    assert weights[15].sum() == 20  # 500 = 15 x 32 + 20, as Keras
    for epoch in range(3):
        for model in range(2):
            real = rows[epoch, :, model, :].reshape(-1)[:500]
            np.testing.assert_array_equal(np.sort(real), np.arange(500))
    assert not np.array_equal(rows[0, :, 0], rows[1, :, 0])  # reshuffled every epoch
    assert not np.array_equal(rows[0, :, 0], rows[0, :, 1])  # each seed its own order


def test_batch_schedule_of_a_model_depends_on_its_seed_alone():
    alone, _ = batch_schedule([8], n_rows=500, epochs=2, batch_size=32)
    together, _ = batch_schedule([3, 8, 5], n_rows=500, epochs=2, batch_size=32)
    np.testing.assert_array_equal(alone[:, :, 0], together[:, :, 1])


def test_batch_schedule_without_shuffle_keeps_row_order_and_caps_batch_at_rows():
    rows, weights = batch_schedule([0], n_rows=10, epochs=2, batch_size=32, shuffle=False)
    assert rows.shape == (2, 1, 1, 10)
    np.testing.assert_array_equal(rows[1, 0, 0], np.arange(10))
    np.testing.assert_array_equal(weights, 1.0)


def _mse(model, params, x, y):
    _, out = forward(model, params, jnp.asarray(x.T))
    return jnp.mean((out[0] - y) ** 2)


@pytest.mark.slow
def test_full_batch_steps_follow_the_keras_sgd_momentum_formula(lesson_mlp, scaled_target):
    """Two epochs of one full batch each: compare with v <- m v - lr g; w <- w + v."""
    lr, momentum = 0.01, 0.9
    config = sl.TrainConfig(epochs=2, batch_size=500)
    result = sl.train(
        [sl.Run(lesson_mlp, sl.SGD(learning_rate=lr, momentum=momentum), scaled_target, 3, config)]
    )
    params = jax.tree.map(lambda a: a[0], sl.init_ensemble(lesson_mlp, [3]))
    x, y = scaled_target.train_x, scaled_target.train_y
    velocity = jax.tree.map(jnp.zeros_like, params)
    expected_losses = []
    for _ in range(2):
        loss, grads = jax.value_and_grad(_mse, argnums=1)(lesson_mlp, params, x, y)
        expected_losses.append(float(loss))
        velocity = jax.tree.map(lambda v, g: momentum * v - lr * g, velocity, grads)
        params = jax.tree.map(lambda w, v: w + v, params, velocity)
    np.testing.assert_allclose(result.history["loss"][0], expected_losses, rtol=1e-5)
    for got, want in zip(
        jax.tree.leaves(result.final_params[0]), jax.tree.leaves(params), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        result.train_scores["loss"][0], _mse(lesson_mlp, params, x, y), rtol=1e-4
    )


def test_epoch_loss_is_the_batch_size_weighted_mean_of_batch_losses(lesson_mlp, scaled_target):
    """With a vanishing learning rate every batch sees the initial weights, so the epoch
    loss must equal the mean over all 500 rows, not the plain mean of 16 batch means."""
    frozen = sl.SGD(learning_rate=1e-12)
    runs = make_runs(lesson_mlp, [scaled_target] * 4, [frozen] * 4, [0, 1, 2, 3])
    result = sl.train(runs)
    init = sl.init_ensemble(lesson_mlp, [0, 1, 2, 3])
    for i in range(4):
        params = jax.tree.map(lambda a, i=i: a[i], init)
        full = _mse(lesson_mlp, params, scaled_target.train_x, scaled_target.train_y)
        np.testing.assert_allclose(result.history["loss"][i], float(full), rtol=2e-5)
        val = _mse(lesson_mlp, params, scaled_target.test_x, scaled_target.test_y)
        np.testing.assert_allclose(result.history["val_loss"][i], float(val), rtol=2e-5)


@pytest.mark.slow
def test_model_trained_alone_equals_the_same_model_inside_an_ensemble(
    lesson_mlp, scaled_target, unscaled
):
    optimizers = [sl.SGD(learning_rate=lr, momentum=0.9) for lr in (0.01, 0.02, 0.005, 0.01)]
    runs = make_runs(lesson_mlp, [scaled_target] * 4, optimizers, [11, 12, 13, 14])
    together = sl.train(runs)
    alone = sl.train([runs[2]])
    np.testing.assert_allclose(alone.history["loss"][0], together.history["loss"][2], rtol=1e-5)
    np.testing.assert_allclose(
        alone.test_scores["loss"][0], together.test_scores["loss"][2], rtol=1e-5
    )


def test_training_is_deterministic(lesson_mlp, scaled_target):
    runs = make_runs(lesson_mlp, [scaled_target] * 4, [sl.SGD(0.01, 0.9)] * 4, [0, 1, 2, 3])
    first, second = sl.train(runs), sl.train(runs)
    for name in first.history:
        np.testing.assert_array_equal(first.history[name], second.history[name])
    np.testing.assert_array_equal(first.test_scores["loss"], second.test_scores["loss"])
    assert second.timing.compile_s == 0.0  # the compiled program was reused


@pytest.mark.slow
def test_a_diverging_model_leaves_its_neighbours_bit_for_bit_unchanged(
    lesson_mlp, scaled_target, unscaled
):
    """Slot 1 holds a model on the unscaled target (diverges) or a healthy one; the
    other three models must get identical numbers either way."""
    sgd = sl.SGD(learning_rate=0.01, momentum=0.9)
    with_bad = sl.train(
        make_runs(
            lesson_mlp,
            [scaled_target, unscaled, scaled_target, scaled_target],
            [sgd] * 4,
            [0, 1, 2, 3],
        )
    )
    with_good = sl.train(make_runs(lesson_mlp, [scaled_target] * 4, [sgd] * 4, [0, 1, 2, 3]))
    assert with_bad.diverged.tolist() == [False, True, False, False]
    assert with_bad.timing.programs == 1
    keep = [0, 2, 3]
    for name in with_bad.history:
        np.testing.assert_array_equal(with_bad.history[name][keep], with_good.history[name][keep])
    for name in with_bad.test_scores:
        np.testing.assert_array_equal(
            with_bad.test_scores[name][keep], with_good.test_scores[name][keep]
        )


@pytest.fixture(scope="module")
def lesson_outcomes(lesson_mlp, lesson_sgd, scaled_target, unscaled):
    """The lesson's sections 2.1.2.1/2.1.2.2 at its settings: 100 epochs, 5 seeds each."""
    config = sl.TrainConfig(epochs=100)
    runs = [
        sl.Run(lesson_mlp, lesson_sgd, unscaled, s, config, {"target": "raw"}) for s in range(5)
    ]
    runs += [
        sl.Run(lesson_mlp, lesson_sgd, scaled_target, s, config, {"target": "standard"})
        for s in range(5)
    ]
    return sl.train(runs)


@pytest.mark.slow
def test_unscaled_target_diverges_and_is_reported_not_raised(lesson_outcomes):
    raw = lesson_outcomes.select(np.array(lesson_outcomes.tag("target")) == "raw")
    assert raw.diverged.all()
    assert (raw.diverged_epoch <= 3).all()  # "almost immediately" (lesson 2.1.2.1)
    assert np.isnan(raw.test_scores["loss"]).all()
    epoch = raw.diverged_epoch[0]
    assert np.isnan(raw.history["loss"][0, epoch - 1 :]).all()
    record = raw.records()[0]
    assert record["diverged"] is True
    assert record["diverged_epoch"] == epoch
    assert record["test_loss"] is None


def test_standardized_target_learns_the_lesson_problem(lesson_outcomes):
    scaled = lesson_outcomes.select(np.array(lesson_outcomes.tag("target")) == "standard")
    assert not scaled.diverged.any()
    assert np.median(scaled.test_scores["loss"]) < 0.03  # lesson: Test 0.007
    assert scaled.test_scores["loss"].max() < 0.1
    assert (scaled.history["loss"][:, -1] < scaled.history["loss"][:, 0] / 20).all()


def test_original_unit_scores_invert_the_target_scaler(lesson_outcomes, scaled_target):
    scaled = lesson_outcomes.select(np.array(lesson_outcomes.tag("target")) == "standard")
    scale = scaled_target.fitted_target_scaler.scale_[0]
    np.testing.assert_allclose(
        scaled.test_scores["mse_original"], scaled.test_scores["loss"] * scale**2, rtol=1e-3
    )
    np.testing.assert_allclose(
        scaled.test_scores["rmse_original"], np.sqrt(scaled.test_scores["mse_original"])
    )


@pytest.mark.slow
def test_clip_modes_mix_in_one_ensemble_and_match_training_apart(lesson_mlp, unscaled):
    """Thresholds are per-model arrays (inf = off), so a clipnorm model, a clipvalue
    model and an unclipped one share a program; each equals its solo run."""
    optimizers = [
        sl.SGD(0.01, 0.9, clipnorm=1.0),
        sl.SGD(0.01, 0.9, clipvalue=5.0),
        sl.SGD(0.01, 0.9),
        sl.SGD(0.01, 0.9, clipnorm=(1.0, 5.0)),
    ]
    together = sl.train(make_runs(lesson_mlp, [unscaled] * 4, optimizers, [0, 1, 2, 3]))
    assert together.timing.programs == 1
    assert together.diverged.tolist() == [False, False, True, False]
    apart = sl.train(
        make_runs(lesson_mlp, [unscaled] * 4, optimizers[:2] + optimizers[:2], [0, 1, 0, 1])
    )
    np.testing.assert_allclose(together.history["loss"][:2], apart.history["loss"][:2], rtol=1e-4)


@pytest.mark.slow
def test_runs_with_different_shapes_are_grouped_and_returned_in_order(lesson_mlp, scaled_target):
    small = sl.MLP(20, (sl.Dense(10, "tanh"),), sl.Dense(1))
    sgd = sl.SGD(0.01, 0.9)
    runs = [
        sl.Run(lesson_mlp, sgd, scaled_target, 0, SHORT),
        sl.Run(small, sgd, scaled_target, 0, SHORT),
        sl.Run(lesson_mlp, sgd, scaled_target, 1, SHORT),
    ]
    mixed = sl.train(runs)
    assert mixed.timing.programs == 2
    alone = sl.train([runs[1]])
    np.testing.assert_allclose(mixed.history["loss"][1], alone.history["loss"][0], rtol=1e-5)
    assert mixed.final_params[1][0]["kernel"].shape == (10, 20)


@pytest.mark.slow
def test_binary_task_reports_accuracy_like_keras():
    circles = sl.prepare(sl.lesson_circles(), input_scaler="minmax(-1,1)", n_train=500)
    model = sl.MLP(2, (sl.Dense(5, "relu", "he_uniform"),), sl.Dense(1, "sigmoid"))
    result = sl.fit(model, sl.SGD(0.01, 0.9), circles, seeds=2, epochs=3)
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert ((result.history["accuracy"] >= 0) & (result.history["accuracy"] <= 1)).all()
    assert "mse_original" not in result.test_scores
    accuracy = result.test_scores["accuracy"]
    expected = [np.mean((p > 0.5) == circles.test_y) for p in result.test_predictions]
    np.testing.assert_allclose(accuracy, expected, rtol=1e-6)


@pytest.mark.slow
def test_bce_logits_and_clipped_forms_agree_on_healthy_models():
    circles = sl.prepare(sl.lesson_circles(), input_scaler="minmax(-1,1)", n_train=500)
    model = sl.MLP(2, (sl.Dense(5, "relu", "he_uniform"),), sl.Dense(1, "sigmoid"))
    logits = sl.fit(model, sl.SGD(0.01, 0.9), circles, seeds=2, epochs=3)
    clipped = sl.fit(model, sl.SGD(0.01, 0.9), circles, seeds=2, epochs=3, bce_form="clipped")
    # float32 rounding of 1 - p in the probability form limits the agreement
    np.testing.assert_allclose(logits.history["loss"], clipped.history["loss"], rtol=1e-3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda m, d: sl.Run(sl.MLP(3, (), sl.Dense(1)), sl.SGD(), d), "expects 3 inputs"),
        (
            lambda m, d: sl.Run(sl.MLP(20, (), sl.Dense(2)), sl.SGD(), d),
            "output layer must have 1 unit",
        ),
        (lambda m, d: sl.Run(m, sl.SGD(), d, seed=-1), "integer from 0 to 2\\*\\*32 - 1"),
        (
            lambda m, d: sl.Run(m, sl.SGD(), d, config=sl.TrainConfig(loss="bce")),
            "regression target needs",
        ),
        (lambda m, d: sl.TrainConfig(epochs=0), "epochs must be a positive integer"),
        (lambda m, d: sl.TrainConfig(batch_size=2.5), "batch_size must be a positive integer"),
        (lambda m, d: sl.TrainConfig(metrics=("accuracy",)), "does not fit loss"),
        (lambda m, d: sl.train([]), "Nothing to train"),
        (
            lambda m, d: sl.train(
                [sl.Run(m, sl.SGD(), d), sl.Run(m, sl.SGD(), d, config=sl.TrainConfig(epochs=3))]
            ),
            "share epochs",
        ),
    ],
)
def test_invalid_training_requests_raise_one_clear_error(lesson_mlp, scaled_target, make, message):
    with pytest.raises(sl.ConfigError, match=message):
        make(lesson_mlp, scaled_target)


def test_the_weighted_loss_masks_padding_rows():
    per_row = jnp.array([1.0, 2.0, 100.0])
    assert float(losses.weighted_mean(per_row, jnp.array([1.0, 1.0, 0.0]))) == 1.5


@pytest.mark.slow
def test_a_diverged_classifier_scores_nan_not_the_share_of_class_zero(lesson_mlp, unscaled):
    """A NaN output is never > 0.5, so its accuracy would look like a guess; it is NaN."""
    circles = sl.prepare(sl.lesson_circles(), n_train=500)
    model = sl.MLP(2, (sl.Dense(5, "relu", "he_uniform"),), sl.Dense(1, "sigmoid"))
    result = sl.fit(model, sl.SGD(learning_rate=1e30), circles, seeds=2, epochs=3)
    assert result.diverged.all()
    assert np.isnan(result.test_scores["accuracy"]).all()
    epoch = result.diverged_epoch[0]
    assert np.isnan(result.history["accuracy"][0, epoch - 1 :]).all()


def test_a_binary_model_needs_a_sigmoid_output(scaled_target):
    circles = sl.prepare(sl.lesson_circles(), n_train=500)
    linear = sl.MLP(2, (sl.Dense(5, "relu"),), sl.Dense(1, "linear"))
    with pytest.raises(sl.ConfigError, match="needs a sigmoid output layer"):
        sl.Run(linear, sl.SGD(), circles, config=sl.TrainConfig.for_task("binary"))


@pytest.mark.slow
def test_init_ensemble_draws_what_init_params_draws_for_each_seed():
    """Compiled per layer shape rather than per architecture, the weights stay those of
    init_params(model, key(seed)); normal draws scaled by a stddev may differ in the last
    bit (a multiply-add fused differently), uniform and variance-scaling draws are exact."""
    deep = sl.MLP.stack(2, 9, 5, "tanh", "he_uniform", sl.Dense(1, "sigmoid"))
    odd = sl.MLP(
        3,
        (sl.Dense(4, "relu", {"name": "random_normal", "stddev": 0.3}, "random_uniform"),),
        sl.Dense(2, "softmax", "lecun_normal", "ones"),
    )
    seeds = [0, 5, 2**32 - 1]
    for model, exact in ((deep, True), (odd, False)):
        stacked = sl.init_ensemble(model, seeds)
        for i, seed in enumerate(seeds):
            reference = init_params(model, jax.random.key(seed))
            for got, want in zip(stacked, reference, strict=True):
                for name in ("kernel", "bias"):
                    if exact:
                        np.testing.assert_array_equal(got[name][i], want[name])
                    else:
                        np.testing.assert_allclose(got[name][i], want[name], rtol=1e-6)


@pytest.mark.slow
def test_models_that_differ_only_in_initializers_share_one_program(scaled_target, lesson_sgd):
    he = sl.MLP(20, (sl.Dense(25, "relu", "he_uniform"),), sl.Dense(1))
    glorot = sl.MLP(20, (sl.Dense(25, "relu", "glorot_normal"),), sl.Dense(1))
    config = sl.TrainConfig(epochs=2)
    runs = [
        sl.Run(m, lesson_sgd, scaled_target, s, config) for m, s in ((he, 0), (glorot, 1), (he, 2))
    ]
    together = sl.train(runs)
    assert together.timing.programs == 1
    for i, run in enumerate(runs):
        alone = sl.train([run])
        np.testing.assert_allclose(together.history["loss"][i], alone.history["loss"][0], rtol=1e-5)
        np.testing.assert_array_equal(
            together.final_params[i][0]["kernel"].shape, alone.final_params[0][0]["kernel"].shape
        )
    start = sl.init_ensemble(glorot, [1])[0]["kernel"][0]
    assert not np.allclose(start, sl.init_ensemble(he, [1])[0]["kernel"][0])


# --- training in chunks of epochs -----------------------------------------------------------


def _assert_same_training(a, b):
    for key in a.history:
        np.testing.assert_array_equal(a.history[key], b.history[key], err_msg=key)
    for key in a.test_scores:
        np.testing.assert_array_equal(a.test_scores[key], b.test_scores[key], err_msg=key)
        np.testing.assert_array_equal(a.train_scores[key], b.train_scores[key], err_msg=key)
    for key in a.telemetry:
        np.testing.assert_array_equal(a.telemetry[key], b.telemetry[key], err_msg=key)
    np.testing.assert_array_equal(a.diverged_epoch, b.diverged_epoch)
    for pa, pb in zip(a.final_params, b.final_params, strict=True):
        jax.tree.map(np.testing.assert_array_equal, pa, pb)


@pytest.mark.slow
def test_training_in_chunks_of_epochs_is_bit_identical_to_one_chunk(
    lesson_mlp, lesson_sgd, scaled_target, unscaled, monkeypatch
):
    """Chunks of 2 epochs (the last one padded) give the numbers of one chunk of 5: the
    optimizer state carries over, padding epochs change nothing, and dead-unit
    statistics are sampled at the same epochs. One model diverges, so non-finite values
    cross chunk boundaries too."""
    chunk = 2
    engine_train = importlib.import_module("stablelearn.engine.train")

    runs = make_runs(lesson_mlp, [scaled_target] * 3 + [unscaled], [lesson_sgd] * 4, [0, 1, 2, 3])
    whole = sl.train(runs)
    monkeypatch.setattr(engine_train, "chunk_epochs", lambda runs: chunk)
    chunked = sl.train(runs)
    _assert_same_training(whole, chunked)
    assert whole.telemetry and whole.diverged.sum() == 1


@pytest.mark.slow
def test_a_packed_adam_program_trains_the_same_in_chunks(regression, monkeypatch):
    """Depths and activations packed into one program, with Adam's two moments and its
    step count carried from chunk to chunk."""
    engine_train = importlib.import_module("stablelearn.engine.train")

    data = sl.prepare(regression, "standard", "standard", n_train=200)
    models = [sl.MLP.stack(20, depth, 5, act) for depth, act in [(1, "relu"), (3, "tanh")]]
    config = sl.TrainConfig(epochs=7, batch_size=64)
    runs = [sl.Run(m, sl.Adam(0.01), data, s, config) for m in models for s in (0, 1)]
    assert len(sl.engine.plan_programs(runs)) == 1
    whole = sl.train(runs)
    monkeypatch.setattr(engine_train, "chunk_epochs", lambda runs: 3)
    _assert_same_training(whole, sl.train(runs))


def test_a_stop_request_ends_training_between_chunks(lesson_mlp, lesson_sgd, scaled_target):
    import threading

    from stablelearn.interrupts import Stopped

    stop = threading.Event()
    stop.set()
    runs = make_runs(lesson_mlp, [scaled_target] * 4, [lesson_sgd] * 4, [0, 1, 2, 3])
    with pytest.raises(Stopped, match="stopped at epoch 0 of 5"):
        sl.train(runs, stop=stop)


def test_a_long_run_draws_its_batches_a_chunk_at_a_time(lesson_mlp, lesson_sgd, scaled_target):
    """100,000 epochs would be 14 GB of batch indices for 90 models drawn at once; the
    group holds a stream and trains in chunks of a fraction of a second."""
    from stablelearn.engine.budget import CHUNK_S, step_seconds
    from stablelearn.engine.program import Program
    from stablelearn.engine.train import group_inputs

    config = sl.TrainConfig(epochs=100_000)
    runs = [sl.Run(lesson_mlp, lesson_sgd, scaled_target, s, config) for s in range(4)]
    inputs, _ = group_inputs(runs, Program.for_runs(runs), None)
    assert inputs.chunk_epochs < 100_000
    epoch_s = inputs.steps_per_epoch * step_seconds(4, lesson_mlp, 32)
    assert inputs.chunk_epochs * epoch_s <= CHUNK_S
    assert inputs.compile_args()[10].shape == (inputs.chunk_epochs, 16, 4, 32)
