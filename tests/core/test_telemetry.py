"""Gradient-flow telemetry against hand computation.

The end-to-end tests train a 3-2-1 MLP on 8 rows with batch_size = 8 (one full-batch step
per epoch) and SGD without momentum, so every number can be recomputed with jax.grad:
with one step per epoch the RMS over the epoch's steps is that step's norm. Most of them
share one compiled program (1 model, 3 epochs); the lesson's divergence uses the shape
test_engine compiles (4 models, 5 epochs).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stablelearn as sl
from stablelearn import telemetry
from stablelearn.data import PreparedData, Scaler
from stablelearn.engine import batch_schedule
from stablelearn.engine.program import ACTIVATION_SAMPLES
from stablelearn.model import forward, forward_layers

N_TRAIN = 8
EPOCHS = 3
LR = 0.1
SEED = 5
FULL_BATCH = sl.TrainConfig(epochs=EPOCHS, batch_size=N_TRAIN)


def tiny_data(target_scale: float = 1.0) -> PreparedData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_TRAIN, 3)).astype(np.float32)
    y = ((x @ np.array([1.0, -2.0, 0.5]) + 0.3) * target_scale).astype(np.float32)
    tx = rng.normal(size=(4, 3)).astype(np.float32)
    ty = ((tx @ np.array([1.0, -2.0, 0.5]) + 0.3) * target_scale).astype(np.float32)
    return PreparedData(x, y, tx, ty, "regression", Scaler(), Scaler(), name="tiny")


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return tiny_data()


@pytest.fixture(scope="module")
def relu_net() -> sl.MLP:
    return sl.MLP(3, (sl.Dense(2, "relu"),), sl.Dense(1))


def one(params, i: int = 0):
    """Model i of stacked parameters."""
    return jax.tree.map(lambda a: np.asarray(a[i]), params)


def stack(*params):
    return jax.tree.map(lambda *leaves: np.stack(leaves), *params)


def norms(tree) -> np.ndarray:
    """L2 norm per layer over kernel and bias together."""
    return np.asarray(
        [math.sqrt(sum(float(np.sum(np.square(v))) for v in layer.values())) for layer in tree]
    )


def abs_max(tree) -> np.ndarray:
    return np.asarray([max(float(np.max(np.abs(v))) for v in layer.values()) for layer in tree])


def batch_mse(model, params, x, y, weights=None):
    _, out = forward(model, params, jnp.asarray(x).T)
    per_row = (out[0] - y) ** 2
    if weights is None:
        return jnp.mean(per_row)
    return jnp.sum(per_row * weights) / jnp.sum(weights)


def hand_full_batch(model, params, data, epochs, lr=LR):
    """Full-batch SGD without momentum: per-epoch gradients, parameters before and after."""
    history = []
    for _ in range(epochs):
        grads = jax.grad(batch_mse, argnums=1)(model, params, data.train_x, data.train_y)
        grads = jax.tree.map(np.asarray, grads)
        new = jax.tree.map(lambda w, g: w - lr * g, params, grads)
        history.append({"start": params, "grads": grads, "end": new})
        params = new
    return history


@pytest.fixture(scope="module")
def full_batch(relu_net, data):
    run = sl.Run(relu_net, sl.SGD(LR, 0.0), data, SEED, FULL_BATCH)
    return sl.train([run])


# --- end to end against jax.grad -------------------------------------------------------------


def test_telemetry_has_the_documented_keys_and_shapes(full_batch):
    t = full_batch.telemetry
    assert set(t) == {
        "grad_norm", "grad_abs_max", "update_ratio", "weight_norm",
        "dead_fraction", "saturated_fraction", "clip_rate", "first_nonfinite_step",
        "first_nonfinite_layer", "first_nonfinite_direction", "first_nonfinite_kind",
    }  # fmt: skip
    for key in ("grad_norm", "grad_abs_max", "update_ratio", "weight_norm"):
        assert t[key].shape == (1, EPOCHS, 2), key
    assert t["dead_fraction"].shape == (1, EPOCHS, 1)
    assert t["saturated_fraction"].shape == (1, EPOCHS, 1)
    assert t["clip_rate"].shape == (1, EPOCHS)
    assert t["first_nonfinite_step"].tolist() == [-1]
    assert t["first_nonfinite_layer"].tolist() == [-1]
    assert t["first_nonfinite_direction"].tolist() == [""]
    assert t["first_nonfinite_kind"].tolist() == [""]
    assert full_batch.layer_names() == ["hidden_1", "output"]


@pytest.mark.slow
def test_full_batch_telemetry_equals_hand_computation(full_batch, relu_net, data):
    init = one(sl.init_ensemble(relu_net, [SEED]))
    hand = hand_full_batch(relu_net, init, data, EPOCHS)
    t = full_batch.telemetry
    for epoch, step in enumerate(hand):
        np.testing.assert_allclose(t["grad_norm"][0, epoch], norms(step["grads"]), rtol=1e-5)
        np.testing.assert_allclose(t["grad_abs_max"][0, epoch], abs_max(step["grads"]), rtol=1e-5)
        np.testing.assert_allclose(t["weight_norm"][0, epoch], norms(step["end"]), rtol=1e-5)
        moved = jax.tree.map(lambda a, b: b - a, step["start"], step["end"])
        np.testing.assert_allclose(
            t["update_ratio"][0, epoch], norms(moved) / norms(step["start"]), rtol=1e-4
        )
        # full batch, no momentum: the update is lr * gradient, so the ratio is lr*|g|/|w|
        np.testing.assert_allclose(
            t["update_ratio"][0, epoch],
            LR * norms(step["grads"]) / norms(step["start"]),
            rtol=1e-4,
        )
        _, activations = forward_layers(relu_net, step["end"], jnp.asarray(data.train_x.T))
        dead = np.mean(np.all(np.asarray(activations[0]) <= 0, axis=1))
        assert t["dead_fraction"][0, epoch, 0] == dead
    assert np.isnan(t["saturated_fraction"]).all()  # relu: saturation does not apply
    np.testing.assert_array_equal(t["clip_rate"], 0.0)
    for got, want in zip(
        jax.tree.leaves(full_batch.final_params[0]), jax.tree.leaves(hand[-1]["end"]), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_grad_norm_is_the_rms_over_steps_with_a_padded_last_batch(relu_net, data):
    """batch_size 3 on 8 rows: batches of 3, 3 and 2 (one padding row of weight 0)."""
    config = sl.TrainConfig(epochs=2, batch_size=3)
    result = sl.train([sl.Run(relu_net, sl.SGD(LR, 0.0), data, SEED, config)])
    rows, weights = batch_schedule([SEED], N_TRAIN, 2, 3)
    assert weights.sum(axis=1).tolist() == [3, 3, 2]
    params = one(sl.init_ensemble(relu_net, [SEED]))
    for epoch in range(2):
        start, step_norms, step_max = params, [], []
        for s in range(rows.shape[1]):
            idx = rows[epoch, s, 0]
            grads = jax.grad(batch_mse, argnums=1)(
                relu_net, params, data.train_x[idx], data.train_y[idx], jnp.asarray(weights[s])
            )
            grads = jax.tree.map(np.asarray, grads)
            step_norms.append(norms(grads))
            step_max.append(abs_max(grads))
            params = jax.tree.map(lambda w, g: w - LR * g, params, grads)
        step_norms = np.stack(step_norms)
        rms = np.sqrt(np.mean(step_norms**2, axis=0))
        np.testing.assert_allclose(result.telemetry["grad_norm"][0, epoch], rms, rtol=1e-5)
        assert not np.allclose(rms, step_norms.mean(axis=0), rtol=1e-6)  # RMS, not the mean
        np.testing.assert_allclose(
            result.telemetry["grad_abs_max"][0, epoch], np.max(step_max, axis=0), rtol=1e-5
        )
        np.testing.assert_allclose(
            result.telemetry["weight_norm"][0, epoch], norms(params), rtol=1e-5
        )
        moved = jax.tree.map(lambda a, b: b - a, start, params)
        np.testing.assert_allclose(
            result.telemetry["update_ratio"][0, epoch], norms(moved) / norms(start), rtol=1e-4
        )


def dead_unit_params(model, seed=SEED):
    """Seeded parameters whose second hidden unit is below zero for every input."""
    params = one(sl.init_ensemble(model, [seed]))
    params[0]["bias"] = np.array([0.0, -100.0], np.float32)
    return params


def test_a_hidden_unit_dead_for_every_example_gives_dead_fraction_one_half(relu_net, data):
    start = dead_unit_params(relu_net)
    z = start[0]["kernel"] @ data.train_x.T + start[0]["bias"][:, None]
    assert (z[1] < 0).all() and (z[0] > 0).any()  # unit 2 dead, unit 1 alive
    run = sl.Run(relu_net, sl.SGD(LR, 0.0), data, SEED, FULL_BATCH)
    result = sl.train([run], initial_params=stack(start))
    np.testing.assert_array_equal(result.telemetry["dead_fraction"], 0.5)
    # no gradient flows through a dead unit: its weights never move
    final = result.final_params[0][0]
    np.testing.assert_array_equal(final["kernel"][1], start[0]["kernel"][1])
    assert final["bias"][1] == -100.0
    assert not np.array_equal(final["kernel"][0], start[0]["kernel"][0])


def test_huge_tanh_weights_saturate_almost_every_activation(data):
    tanh_net = sl.MLP(3, (sl.Dense(2, "tanh"),), sl.Dense(1))
    start = one(sl.init_ensemble(tanh_net, [SEED]))
    start[0]["kernel"] = start[0]["kernel"] * 1000.0
    run = sl.Run(tanh_net, sl.SGD(LR, 0.0), data, SEED, FULL_BATCH)
    result = sl.train([run], initial_params=stack(start))
    # by hand: every pre-activation is far beyond atanh(0.99) = 2.65 (bias starts at 0)
    z = start[0]["kernel"] @ data.train_x.T
    assert np.abs(z).min() > 3 * np.arctanh(telemetry.TANH_SATURATION)
    np.testing.assert_array_equal(result.telemetry["saturated_fraction"], 1.0)
    assert np.isnan(result.telemetry["dead_fraction"]).all()  # tanh: no dead units
    # the same net at its seeded initialization: no activation beyond 0.99
    healthy = sl.train([run])
    np.testing.assert_array_equal(healthy.telemetry["saturated_fraction"], 0.0)


@pytest.mark.slow
def test_clip_rate_is_one_when_every_step_is_clipped_and_zero_otherwise(relu_net, data, full_batch):
    optimizers = [sl.SGD(LR, 0.0, clipnorm=1e-6), sl.SGD(LR, 0.0), sl.SGD(LR, 0.0, clipnorm=1e6)]
    runs = [sl.Run(relu_net, opt, data, SEED, FULL_BATCH) for opt in optimizers]
    result = sl.train(runs)
    t = result.telemetry
    np.testing.assert_array_equal(t["clip_rate"], [[1.0] * EPOCHS, [0.0] * EPOCHS, [0.0] * EPOCHS])
    # gradients are recorded before clipping: the clipped model's first-epoch norm is
    # the unclipped gradient of the shared initialization
    np.testing.assert_allclose(
        t["grad_norm"][0, 0], full_batch.telemetry["grad_norm"][0, 0], rtol=1e-5
    )
    np.testing.assert_allclose(t["grad_norm"][1], full_batch.telemetry["grad_norm"][0], rtol=1e-5)
    # each of the four tensors moves by at most lr * 1e-6
    assert (t["update_ratio"][0] * t["weight_norm"][0] < LR * 1e-6 * 2.01).all()
    assert (t["update_ratio"][1] > 1e-3).all()


def test_telemetry_switched_off_gives_an_empty_dict_and_the_same_training(
    relu_net, data, full_batch
):
    config = sl.TrainConfig(epochs=EPOCHS, batch_size=N_TRAIN, telemetry=False)
    off = sl.train([sl.Run(relu_net, sl.SGD(LR, 0.0), data, SEED, config)])
    assert off.telemetry == {}
    np.testing.assert_allclose(off.history["loss"], full_batch.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(off.test_scores["loss"], full_batch.test_scores["loss"], rtol=1e-6)
    mixed = [
        sl.Run(relu_net, sl.SGD(LR, 0.0), data, SEED, FULL_BATCH),
        sl.Run(sl.MLP(3, (), sl.Dense(1)), sl.SGD(LR, 0.0), data, SEED, config),
    ]
    with pytest.raises(sl.ConfigError, match="telemetry settings"):
        sl.train(mixed)


def test_long_runs_measure_units_every_few_epochs_and_always_at_the_last(relu_net, data):
    epochs = 2 * ACTIVATION_SAMPLES + 3
    stride = math.ceil(epochs / ACTIVATION_SAMPLES)
    assert stride > 1 and (epochs - 1) % stride != stride - 1  # the last epoch is off-stride
    config = sl.TrainConfig(epochs=epochs, batch_size=N_TRAIN)
    run = sl.Run(relu_net, sl.SGD(LR, 0.0), data, SEED, config)
    result = sl.train([run], initial_params=stack(dead_unit_params(relu_net)))
    dead = result.telemetry["dead_fraction"][0, :, 0]
    index = np.arange(epochs)
    measured = (index % stride == stride - 1) | (index == epochs - 1)
    np.testing.assert_array_equal(np.isfinite(dead), measured)
    np.testing.assert_array_equal(dead[measured], 0.5)
    assert measured.sum() <= ACTIVATION_SAMPLES + 1
    assert np.isnan(result.telemetry["saturated_fraction"]).all()
    for key in ("grad_norm", "grad_abs_max", "update_ratio", "weight_norm"):
        assert np.isfinite(result.telemetry[key]).all(), key  # per-step statistics every epoch


@pytest.mark.slow
def test_models_of_different_depths_are_padded_with_nan(relu_net, data, full_batch):
    deeper = sl.MLP(3, (sl.Dense(2, "relu"), sl.Dense(2, "relu")), sl.Dense(1))
    runs = [
        sl.Run(relu_net, sl.SGD(LR, 0.0), data, SEED, FULL_BATCH),
        sl.Run(deeper, sl.SGD(LR, 0.0), data, SEED, FULL_BATCH),
    ]
    result = sl.train(runs)
    assert result.timing.programs == 1  # packed: the shallow model skips the second slot
    t = result.telemetry
    assert t["grad_norm"].shape == (2, EPOCHS, 3)
    assert t["dead_fraction"].shape == (2, EPOCHS, 2)
    assert np.isnan(t["grad_norm"][0, :, 2]).all() and np.isnan(t["dead_fraction"][0, :, 1]).all()
    assert np.isfinite(t["grad_norm"][1]).all() and np.isfinite(t["dead_fraction"][1]).all()
    # the shallow model's numbers are those it gets when trained alone
    np.testing.assert_allclose(
        t["grad_norm"][0, :, :2], full_batch.telemetry["grad_norm"][0], rtol=1e-5
    )
    assert result.layer_names(1) == ["hidden_1", "hidden_2", "output"]
    assert t["first_nonfinite_step"].tolist() == [-1, -1]


@pytest.mark.slow
def test_the_lessons_unscaled_regression_reports_its_first_nonfinite_step(
    lesson_mlp, lesson_sgd, unscaled
):
    """Lesson 2.1.2.1 (4 models, 5 epochs): recompute each model's first step with a
    NaN/Inf (a layer's output, the loss, a gradient, the updated weights) and where it
    came from by replaying its batches with SGD momentum 0.9 (v <- m v - lr g;
    w <- w + v), reading the rule of telemetry.origin off the replayed values."""
    seeds = [0, 1, 2, 3]
    config = sl.TrainConfig(epochs=5)
    result = sl.train([sl.Run(lesson_mlp, lesson_sgd, unscaled, s, config) for s in seeds])
    first = result.telemetry["first_nonfinite_step"]
    steps_per_epoch = math.ceil(500 / 32)
    assert ((first >= 1) & (first <= steps_per_epoch)).all()  # within epoch 1
    assert result.diverged_epoch.tolist() == [1, 1, 1, 1]

    rows, weights = batch_schedule(seeds, 500, 1, 32)
    loss_and_grad = jax.jit(jax.value_and_grad(batch_mse, argnums=1), static_argnums=0)
    init = sl.init_ensemble(lesson_mlp, seeds)
    for m in range(len(seeds)):
        params = one(init, m)
        velocity = jax.tree.map(np.zeros_like, params)
        expected = (-1, -1, "", "")
        for s in range(steps_per_epoch):
            idx = rows[0, s, m]
            x, y = unscaled.train_x[idx], unscaled.train_y[idx]
            loss, grads = loss_and_grad(lesson_mlp, params, x, y, weights[s])
            velocity = jax.tree.map(lambda v, g: 0.9 * v - 0.01 * g, velocity, grads)
            new = jax.tree.map(lambda w, v: w + v, params, velocity)
            _, outputs = forward_layers(lesson_mlp, params, jnp.asarray(x).T)
            bad = {
                "output": [not np.isfinite(np.asarray(a)).all() for a in outputs],
                "loss": [not np.isfinite(float(loss))] * 2,
                "gradient": [not all(np.isfinite(v).all() for v in g.values()) for g in grads],
                "update": [not all(np.isfinite(v).all() for v in w.values()) for w in new],
            }
            kind = next((k for k, flags in bad.items() if any(flags)), None)
            if kind is not None:
                flags = bad[kind]
                layer = (
                    flags.index(True)
                    if kind == "output"
                    else len(flags) - 1 - flags[::-1].index(True)
                )
                direction = "forward" if kind in ("output", "loss") else "backward"
                expected = (s + 1, layer, direction, kind)
                break
            params = new
        t = result.telemetry
        got = tuple(t[k][m] for k in ("first_nonfinite_step", "first_nonfinite_layer",
                                      "first_nonfinite_direction", "first_nonfinite_kind"))  # fmt: skip
        assert got == expected, (m, got, expected)
    # the exploding epoch shows gradient entries far beyond anything healthy
    assert (result.telemetry["grad_abs_max"][:, 0].max(axis=1) > 1e15).all()


# --- where the first NaN/Inf came from ---------------------------------------------------------


def _scaled_data(x_scale: float, positive: bool = False) -> PreparedData:
    d = tiny_data()
    x = np.abs(d.train_x) if positive else d.train_x
    return PreparedData(
        (x * x_scale).astype(np.float32), d.train_y, d.test_x, d.test_y, "regression",
        Scaler(), Scaler(), name="tiny-scaled",
    )  # fmt: skip


def _origin(result) -> tuple:
    t = result.telemetry
    return tuple(
        t[k].tolist()
        for k in ("first_nonfinite_step", "first_nonfinite_layer", "first_nonfinite_direction",
                  "first_nonfinite_kind")
    )  # fmt: skip


def _with_weights(relu_net, kernels):
    """The seeded initial weights with the kernels' magnitudes replaced (signs kept)."""
    init = one(sl.init_ensemble(relu_net, [SEED]))
    return stack(
        tuple(
            {"kernel": (np.where(layer["kernel"] < 0, -1, 1) * k).astype(np.float32),
             "bias": layer["bias"]}
            for layer, k in zip(init, kernels, strict=True)
        )
    )  # fmt: skip


def test_a_forward_overflow_is_located_at_the_first_layer_whose_output_is_inf(relu_net):
    """Positive inputs of about 1e37 times hidden kernels above 100 overflow the hidden
    layer at step 1 (relu(inf) = inf): forward, layer 0, though the loss is NaN too."""
    init = one(sl.init_ensemble(relu_net, [SEED]))
    big = _scaled_data(1e37, positive=True)
    params = stack(({"kernel": np.abs(init[0]["kernel"]) + 100, "bias": init[0]["bias"]}, init[1]))
    result = sl.train([sl.Run(relu_net, sl.SGD(LR, 0.0), big, SEED, FULL_BATCH)], params)
    assert _origin(result) == ([1], [0], ["forward"], ["output"])
    assert result.diverged_epoch.tolist() == [1]


def test_a_gradient_overflow_with_a_finite_forward_pass_is_backward_at_its_deepest_layer(
    relu_net,
):
    """Inputs of 1e20, a hidden kernel of 1e-25 and an output kernel of 1e20: every
    activation and the loss are finite (output ~1e15, loss ~1e30), the output layer's
    gradient too (~1e10), but the hidden kernel's, delta (~1e35) times x (1e20),
    overflows: backward, the hidden layer (0), gradient, at step 1."""
    big = _scaled_data(1e20)
    params = _with_weights(relu_net, (1e-25, 1e20))
    result = sl.train([sl.Run(relu_net, sl.SGD(LR, 0.0), big, SEED, FULL_BATCH)], params)
    assert _origin(result) == ([1], [0], ["backward"], ["gradient"])


def test_weights_a_finite_gradient_times_the_learning_rate_overflows_are_backward_update(
    relu_net,
):
    """A learning rate of 1e38 on a target in the hundreds: the first step's gradients
    are finite (hundreds), its update is not."""
    run = sl.Run(relu_net, sl.SGD(1e38, 0.0), tiny_data(100.0), SEED, FULL_BATCH)
    result = sl.train([run])
    # the deepest layer whose weights became inf: the output layer
    assert _origin(result) == ([1], [1], ["backward"], ["update"])
    assert result.diverged_epoch.tolist() == [1]


@pytest.mark.slow
def test_a_packed_model_reports_its_own_layers_not_the_programs_slots(relu_net):
    """A depth-1 model packed with a depth-2 one (as in the test above): its output layer
    sits in the program's slot 2, which it reports as its own layer 1, as when trained
    alone; the depth-2 model's output layer is its layer 2."""
    deeper = sl.MLP(3, (sl.Dense(2, "relu"), sl.Dense(2, "relu")), sl.Dense(1))
    data = tiny_data(100.0)
    runs = [sl.Run(m, sl.SGD(1e38, 0.0), data, SEED, FULL_BATCH) for m in (relu_net, deeper)]
    result = sl.train(runs)
    assert result.timing.programs == 1
    assert _origin(result) == ([1, 1], [1, 2], ["backward"] * 2, ["update"] * 2)
    alone = sl.train(runs[:1])
    assert _origin(alone) == _origin(result.select([True, False]))


def test_origin_reads_forward_first_then_the_loss_then_gradients_then_updates():
    def flags(forward=(0, 0, 0), loss=False, gradient=(0, 0, 0), update=(0, 0, 0)):
        return {
            "forward": jnp.asarray(forward, bool), "loss": jnp.asarray(loss),
            "gradient": jnp.asarray(gradient, bool), "update": jnp.asarray(update, bool),
        }  # fmt: skip

    kinds = telemetry.ORIGIN_KINDS

    def origin(**kw):
        kind, layer = telemetry.origin(flags(**kw))
        return kinds[int(kind)], int(layer)

    assert origin() == ("", -1)
    # forward: the shallowest layer whose output is bad, whatever else is bad
    assert origin(forward=(0, 1, 1), loss=True, gradient=(1, 1, 1)) == ("output", 1)
    assert origin(loss=True, gradient=(1, 0, 0)) == ("loss", 2)  # the output layer
    # backward: the deepest layer, where backpropagation overflowed first
    assert origin(gradient=(1, 1, 0), update=(1, 1, 1)) == ("gradient", 1)
    assert origin(update=(1, 0, 1)) == ("update", 2)
    assert [telemetry.ORIGIN_DIRECTIONS[kinds.index(k)] for k in kinds[1:]] == [
        "forward", "forward", "backward", "backward",
    ]  # fmt: skip


# --- accumulate and epoch_stats on hand-made pytrees ---------------------------------------


def tree(k0, b0, k1, b1):
    return (
        {"kernel": jnp.asarray(k0, jnp.float32), "bias": jnp.asarray(b0, jnp.float32)},
        {"kernel": jnp.asarray(k1, jnp.float32), "bias": jnp.asarray(b1, jnp.float32)},
    )


def test_layer_norms_take_kernel_and_bias_together():
    params = tree([[3.0, 0.0]], [4.0], [[1.0, 2.0]], [2.0])
    np.testing.assert_allclose(telemetry.layer_norms(params), [5.0, 3.0])


def test_init_accumulator_starts_empty():
    params = tree([[3.0, 0.0]], [4.0], [[1.0, 2.0]], [2.0])
    acc = telemetry.init_accumulator(params)
    for sums in (acc["sq"], acc["abs"]):
        assert sums.shape == (6,)  # one entry per parameter
        np.testing.assert_array_equal(sums, 0.0)
    assert float(acc["clipped"]) == 0.0
    assert int(acc["first_bad"]) == -1


@pytest.mark.slow
def test_accumulate_sums_squares_keeps_the_largest_entry_and_skips_nonfinite_entries():
    params = tree([[1.0, 1.0]], [1.0], [[1.0]], [1.0])
    acc = telemetry.init_accumulator(params)
    g1 = tree([[1.0, -2.0]], [2.0], [[-3.0]], [0.0])
    g2 = tree([[np.nan, 1.0]], [-5.0], [[np.inf]], [4.0])
    g3 = tree([[1.0, 1.0]], [1.0], [[1.0]], [1.0])
    acc = telemetry.accumulate(acc, g1, None, jnp.float32(2.0), jnp.int32(0))
    assert int(acc["first_bad"]) == -1
    acc = telemetry.accumulate(acc, g2, None, jnp.float32(np.nan), jnp.int32(1))
    assert int(acc["first_bad"]) == 1
    acc = telemetry.accumulate(acc, g3, None, jnp.float32(np.inf), jnp.int32(2))
    assert int(acc["first_bad"]) == 1  # the first bad step stays recorded
    # one vector over every parameter (telemetry.flat): sums of squares, largest entries
    squares = tree([[1 + 0 + 1, 4 + 1 + 1]], [4 + 25 + 1], [[9 + 0 + 1]], [0 + 16 + 1])
    np.testing.assert_allclose(acc["sq"], telemetry.flat(squares))
    np.testing.assert_allclose(
        acc["abs"], telemetry.flat(tree([[1.0, 2.0]], [5.0], [[3.0]], [4.0]))
    )
    assert float(acc["clipped"]) == 0.0  # None: no model clips

    stats = telemetry.epoch_stats(acc, params, tree([[1.0, 3.0]], [1.0], [[4.0]], [5.0]), 3)
    np.testing.assert_allclose(
        stats["grad_norm"], [np.sqrt((2 + 6 + 30) / 3), np.sqrt((10 + 17) / 3)], rtol=1e-6
    )
    np.testing.assert_allclose(stats["grad_abs_max"], [5.0, 4.0])
    # moved: layer 0 (0, 2, 0) -> 2 over |(1, 1, 1)| = sqrt 3; layer 1 (3, 4) -> 5 over sqrt 2
    np.testing.assert_allclose(stats["update_ratio"], [2 / np.sqrt(3), 5 / np.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(stats["weight_norm"], [np.sqrt(11), np.sqrt(41)], rtol=1e-6)
    assert float(stats["clip_rate"]) == 0.0
    assert int(stats["first_bad_step"]) == 1


def test_accumulate_keeps_the_first_bad_steps_layer_and_kind():
    params = tree([[1.0]], [1.0], [[1.0]], [1.0])
    grads = tree([[3.0]], [4.0], [[0.5]], [0.5])
    clean = {"forward": jnp.zeros(2, bool), "loss": jnp.bool_(False),
             "gradient": jnp.zeros(2, bool), "update": jnp.zeros(2, bool)}  # fmt: skip
    acc = telemetry.init_accumulator(params)
    assert (int(acc["bad_layer"]), int(acc["bad_kind"])) == (-1, 0)
    acc = telemetry.accumulate(acc, grads, None, jnp.float32(1.0), jnp.int32(0), clean)
    assert int(acc["first_bad"]) == -1
    # step 1: the loss is finite, but the output layer's gradient is not
    bad_grad = clean | {"gradient": jnp.asarray([True, True])}
    acc = telemetry.accumulate(acc, grads, None, jnp.float32(1.0), jnp.int32(1), bad_grad)
    acc = telemetry.accumulate(
        acc, grads, None, jnp.float32(np.nan), jnp.int32(2), clean | {"forward": jnp.ones(2, bool)}
    )
    stats = telemetry.epoch_stats(acc, params, params, 3)
    assert int(stats["first_bad_step"]) == 1
    assert int(stats["first_bad_layer"]) == 1
    assert telemetry.ORIGIN_KINDS[int(stats["first_bad_kind"])] == "gradient"


def test_accumulate_counts_clipped_steps_only_when_clipping_changed_a_finite_step():
    params = tree([[1.0]], [1.0], [[1.0]], [1.0])
    grads = tree([[3.0]], [4.0], [[0.5]], [0.5])
    shrunk = tree([[0.6]], [0.8], [[0.5]], [0.5])  # one layer clipped
    acc = telemetry.init_accumulator(params)
    acc = telemetry.accumulate(acc, grads, shrunk, jnp.float32(1.0), jnp.int32(0))
    acc = telemetry.accumulate(acc, grads, grads, jnp.float32(1.0), jnp.int32(1))  # unchanged
    acc = telemetry.accumulate(acc, grads, shrunk, jnp.float32(np.nan), jnp.int32(2))  # NaN step
    acc = telemetry.accumulate(acc, grads, shrunk, jnp.float32(1.0), jnp.int32(3))
    assert float(acc["clipped"]) == 2.0
    stats = telemetry.epoch_stats(acc, params, params, 4)
    assert float(stats["clip_rate"]) == 0.5
    assert int(stats["first_bad_step"]) == 2
    np.testing.assert_allclose(
        stats["grad_norm"], [5.0, np.sqrt(0.5)], rtol=1e-6
    )  # before clipping
    np.testing.assert_array_equal(stats["update_ratio"], [0.0, 0.0])


def test_an_all_nonfinite_gradient_adds_nothing():
    params = tree([[1.0]], [1.0], [[1.0]], [1.0])
    bad = tree([[np.nan]], [np.inf], [[-np.inf]], [np.nan])
    acc = telemetry.accumulate(
        telemetry.init_accumulator(params), bad, None, jnp.float32(np.nan), jnp.int32(0)
    )
    stats = telemetry.epoch_stats(acc, params, params, 1)
    np.testing.assert_array_equal(stats["grad_norm"], [0.0, 0.0])
    np.testing.assert_array_equal(stats["grad_abs_max"], [0.0, 0.0])
    assert int(stats["first_bad_step"]) == 0


# --- activation_stats on hand-made parameters -----------------------------------------------


X_T = jnp.asarray([[-2.0, -1.0, 0.5, 1.0, 3.0]])  # one input feature, five rows


def layer(kernel, bias):
    return {"kernel": jnp.asarray(kernel, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}


def test_activation_stats_dead_relu_units():
    model = sl.MLP(1, (sl.Dense(4, "relu"),), sl.Dense(1))
    # unit 1 alive for x > 0; unit 2 never positive; unit 3 zero everywhere; unit 4 alive
    params = (
        layer([[1.0], [0.0], [0.0], [-1.0]], [0.0, -1.0, 0.0, 0.0]),
        layer([[1, 1, 1, 1]], [0.0]),
    )
    stats = telemetry.activation_stats(model, params, X_T)
    np.testing.assert_array_equal(stats["dead_fraction"], [0.5])
    assert np.isnan(stats["saturated_fraction"]).all()


def test_activation_stats_saturated_tanh_and_sigmoid():
    model = sl.MLP(1, (sl.Dense(2, "tanh"), sl.Dense(3, "sigmoid")), sl.Dense(1))
    params = (
        # tanh: unit 1 = tanh(10) for every row (saturated), unit 2 = tanh(0.1 x): |.| < 0.3
        layer([[0.0], [0.1]], [10.0, 0.0]),
        # sigmoid: +12 (above 0.99), -12 (below 0.01), 0 (0.5): 2 of 3 units saturated
        layer(np.zeros((3, 2)), [12.0, -12.0, 0.0]),
        layer(np.ones((1, 3)), [0.0]),
    )
    stats = telemetry.activation_stats(model, params, X_T)
    np.testing.assert_allclose(stats["saturated_fraction"], [0.5, 2 / 3], rtol=1e-6)
    assert np.isnan(stats["dead_fraction"]).all()


def test_activation_stats_tanh_threshold_is_strict_at_0_99():
    model = sl.MLP(1, (sl.Dense(2, "tanh"),), sl.Dense(1))
    x_t = jnp.asarray([[1.0]])
    below = float(np.arctanh(0.98))
    above = float(np.arctanh(0.995))
    params = (layer([[below], [-above]], [0.0, 0.0]), layer([[1.0, 1.0]], [0.0]))
    stats = telemetry.activation_stats(model, params, x_t)
    np.testing.assert_allclose(stats["saturated_fraction"], [0.5])


def test_activation_stats_of_a_linear_model_are_empty():
    model = sl.MLP(1, (), sl.Dense(1))
    stats = telemetry.activation_stats(model, (layer([[1.0]], [0.0]),), X_T)
    assert stats["dead_fraction"].shape == (0,)
    assert stats["saturated_fraction"].shape == (0,)


def test_maybe_nonfinite_finds_every_nan_and_inf():
    params = tree([[1.0, -2.0]], [3.0], [[4.0]], [5.0])
    assert not bool(telemetry.maybe_nonfinite(params))
    for bad in (np.nan, np.inf, -np.inf):
        assert bool(telemetry.maybe_nonfinite(tree([[1.0, bad]], [3.0], [[4.0]], [5.0])))
    # +Inf and -Inf together sum to NaN: still found
    assert bool(telemetry.maybe_nonfinite(tree([[np.inf, -np.inf]], [3.0], [[4.0]], [5.0])))
