"""Batch normalization and skip connections: specs, the forward pass, and training.

The engine tests share one shape (3 inputs, two hidden layers of 4 units, 40 training
rows in batches of 32 so the last batch of 8 is padded, 5 epochs) so that they reuse a
few compiled programs. Fidelity against Keras itself is in tests/keras/test_keras_deeper_layers.py.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stablelearn as sl
from stablelearn.engine import plan_programs
from stablelearn.errors import ConfigError
from stablelearn.model import (
    BN_EPSILON,
    batch_moments,
    forward,
    init_params,
    init_state,
    run_layers,
)


def _data(n=48, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)) * [1.0, 3.0, 0.5]
    y = np.tanh(x @ rng.normal(size=features)) * 2 + 1
    return sl.prepare(sl.Dataset(x, y), n_train=40)


def _model(batch_norm=False, residual=False):
    return sl.MLP.stack(3, 2, 4, "relu", "he_uniform", batch_norm=batch_norm, residual=residual)


# --------------------------------------------------------------------------- specs


def test_options_are_checked_and_described():
    with pytest.raises(ConfigError, match="batch_norm must be true or false"):
        sl.Dense(4, batch_norm="yes")
    with pytest.raises(ConfigError, match="the output layer takes neither"):
        sl.MLP(3, (sl.Dense(4),), sl.Dense(1, batch_norm=True))
    assert (
        _model(True, True).describe()
        == "3-4(relu, batch norm)-4(relu, batch norm, residual)-1(linear)"
    )


def test_a_skip_connection_needs_equal_widths():
    with pytest.raises(
        ConfigError, match="Hidden layer 1 has residual=true but its input has 3 units"
    ):
        sl.MLP(3, (sl.Dense(4, residual=True),))
    # a stack projects its inputs first: every later layer gets the skip connection
    stacked = sl.MLP.stack(3, 3, 4, residual=True)
    assert [layer.residual for layer in stacked.hidden] == [False, True, True]
    assert all(layer.residual for layer in sl.MLP.stack(4, 2, 4, residual=True).hidden)


def test_repairs_are_model_methods_that_change_only_their_option():
    plain = _model()
    assert plain.with_batch_norm() == _model(batch_norm=True)
    assert plain.with_residual() == _model(residual=True)
    assert plain.with_batch_norm().with_batch_norm(False) == plain
    assert dataclasses.replace(plain.hidden[0], batch_norm=True).batch_norm
    with pytest.raises(ConfigError, match="no hidden layer whose input has its own width"):
        sl.MLP(3, (sl.Dense(4), sl.Dense(2))).with_residual()


def test_parameter_count_is_keras_count_params():
    # Dense(4) 3*4+4, BN(4) 4*4 (gamma, beta, moving mean and variance), Dense(4) 20 + 16, Dense(1) 5
    assert _model(batch_norm=True).parameter_count() == 16 + 16 + 20 + 16 + 5


# --------------------------------------------------------------------------- forward


def test_batch_statistics_ignore_padding_rows():
    z = jax.random.normal(jax.random.key(0), (4, 32))
    weights = (jnp.arange(32) < 20).astype(jnp.float32)
    mean, variance = batch_moments(z.at[:, 20:].set(1e6), weights)
    np.testing.assert_allclose(mean, jnp.mean(z[:, :20], axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(variance, jnp.var(z[:, :20], axis=1), rtol=1e-5)


def test_forward_by_hand():
    """Training mode normalizes with the batch statistics and moves the moving ones by
    1 - 0.99; evaluation normalizes with the moving statistics; a residual layer adds
    its input after the activation."""
    model = _model(batch_norm=True, residual=True)
    params = init_params(model, jax.random.key(1))
    params = (
        params[0] | {"gamma": jnp.full(4, 1.5), "beta": jnp.full(4, 0.25)},
        *params[1:],
    )
    x = np.random.default_rng(2).normal(size=(3, 10)).astype(np.float32)
    relu = lambda v: np.maximum(v, 0)  # noqa: E731

    def by_hand(training, state):
        h, new_state = x, []
        for i, (layer, p) in enumerate(zip(model.layers, params, strict=True)):
            p = jax.tree.map(np.asarray, p)
            z = p["kernel"] @ h + p["bias"][:, None]
            if layer.batch_norm:
                if training:
                    mean, var = z.mean(axis=1), z.var(axis=1)
                    stats = {
                        "moving_mean": 0.99 * state[i]["moving_mean"] + 0.01 * mean,
                        "moving_variance": 0.99 * state[i]["moving_variance"] + 0.01 * var,
                    }
                else:
                    mean, var = state[i]["moving_mean"], state[i]["moving_variance"]
                    stats = state[i]
                z = p["gamma"][:, None] * (z - mean[:, None]) / np.sqrt(var[:, None] + BN_EPSILON)
                z = z + p["beta"][:, None]
                new_state.append(stats)
            else:
                new_state.append({})
            a = relu(z) if i < model.depth else z
            h = h + a if layer.residual else a
        return h, new_state

    fresh = jax.tree.map(np.asarray, init_state(model))
    _, activations, state = run_layers(model, params, jnp.asarray(x), fresh, training=True)
    want_out, want_state = by_hand(True, fresh)
    np.testing.assert_allclose(activations[-1], want_out, rtol=1e-5, atol=1e-6)
    for got, want in zip(state, want_state, strict=True):
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-7)
    _, out = forward(model, params, jnp.asarray(x), state)
    np.testing.assert_allclose(out, by_hand(False, want_state)[0], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def data():
    return _data()


def _by_hand(model, data, optimizer_lr, epochs):
    """Plain SGD, no shuffling, batches of 32 then 8 (Keras' smaller last batch), the
    moving statistics carried from each batch's training-mode pass."""
    params = jax.tree.map(lambda a: a[0], sl.init_ensemble(model, [0]))
    state = init_state(model)
    x, y = data.train_x.astype(np.float32), data.train_y.astype(np.float32)

    def loss_fn(p, s, x_t, y):
        _, out, s = run_layers(model, p, x_t, s, training=True)
        return jnp.mean((out[-1][0] - y) ** 2), s

    step = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    epoch_losses = []
    for _ in range(epochs):
        total = 0.0
        for rows in (slice(0, 32), slice(32, 40)):
            (loss, state), grads = step(params, state, x[rows].T, y[rows])
            params = jax.tree.map(lambda w, g: w - optimizer_lr * g, params, grads)
            total += float(loss) * len(y[rows])
        epoch_losses.append(total / 40)
    return params, state, epoch_losses


@pytest.mark.parametrize(
    "batch_norm, residual", [(True, False), pytest.param(False, True, marks=pytest.mark.slow)]
)
def test_training_equals_the_hand_written_loop_with_a_smaller_last_batch(
    data, batch_norm, residual
):
    model = _model(batch_norm, residual)
    result = sl.fit(model, sl.SGD(0.05), data, seeds=[0, 1, 2, 3], epochs=5, shuffle=False)
    assert result.telemetry["grad_norm"].shape == (4, 5, 3)  # gamma and beta in their layer
    assert np.isfinite(result.telemetry["grad_norm"]).all()
    params, state, losses = _by_hand(model, data, 0.05, epochs=5)
    np.testing.assert_allclose(result.history["loss"][0], losses, rtol=2e-5)
    final = result.final_params[0]
    for got, p, s in zip(final, params, state, strict=True):
        assert set(got) == set(p) | set(s)  # moving statistics come back with their layer
        for key, want in (p | s).items():
            np.testing.assert_allclose(got[key], want, rtol=2e-5, atol=1e-6)
    # evaluation uses the moving statistics
    _, out = forward(model, params, jnp.asarray(data.test_x.T, jnp.float32), state)
    mse = float(jnp.mean((out[0] - data.test_y) ** 2))
    np.testing.assert_allclose(result.test_scores["loss"][0], mse, rtol=2e-5)


@pytest.mark.slow
def test_clipnorm_clips_gamma_and_beta_each_on_its_own(data):
    """Keras' clipnorm is per variable: one full-batch step with a tiny threshold moves
    every tensor, gamma and beta included, by exactly learning_rate x threshold. The
    bias before a batch norm is the exception: the batch mean cancels it, so its
    gradient is zero up to rounding (in Keras too) and nothing is clipped."""
    model = _model(batch_norm=True)
    config = {"epochs": 1, "batch_size": 40, "shuffle": False, "telemetry": False}
    result = sl.fit(model, sl.SGD(0.1, clipnorm=1e-3), data, seeds=[0], **config)
    start = jax.tree.map(lambda a: a[0], sl.init_ensemble(model, [0]))
    for layer, got, before in zip(model.layers, result.final_params[0], start, strict=True):
        for key, value in before.items():
            moved = np.linalg.norm(got[key] - value)
            if key == "bias" and layer.batch_norm:
                assert moved < 1e-7
            else:
                np.testing.assert_allclose(moved, 0.1 * 1e-3, rtol=1e-3, err_msg=key)


def test_batch_norm_and_residual_models_train_in_programs_of_their_own(data):
    sgd = sl.SGD(0.05)
    models = [sl.MLP.stack(3, d, 4, "relu") for d in (2, 3)]
    models += [m.with_batch_norm() for m in models] + [m.with_residual() for m in models]
    runs = [sl.Run(m, sgd, data) for m in models]
    assert plan_programs(runs) == [[0, 1], [2], [3], [4], [5]]
