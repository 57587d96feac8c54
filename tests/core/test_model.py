"""MLP specs, parameter initialization and the hidden-major forward pass."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stablelearn import model as m
from stablelearn.errors import ConfigError
from stablelearn.initializers import Initializer, random_uniform
from stablelearn.model import MLP, Dense, forward, forward_layers, init_params


def _lesson_mlp() -> MLP:
    return MLP(20, (Dense(25, "relu", "he_uniform"),), Dense(1))


def _circles_mlp(depth: int = 2) -> MLP:
    return MLP.stack(2, depth, 5, "tanh", output=Dense(1, "sigmoid"))


def _numpy_forward(model: MLP, params, x_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    acts = {
        "linear": lambda z: z,
        "relu": lambda z: np.maximum(z, 0),
        "tanh": np.tanh,
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    }
    h = np.asarray(x_t, np.float64)
    for layer, p in zip(model.layers, params, strict=True):
        z = np.asarray(p["kernel"], np.float64) @ h + np.asarray(p["bias"], np.float64)[:, None]
        h = acts[layer.activation](z)
    return z, h


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize("units", [0, -3, True, False, 2.0, "5", None])
def test_dense_units_must_be_a_positive_int(units):
    with pytest.raises(ConfigError, match="positive integer of units"):
        Dense(units)


def test_dense_unknown_activation():
    with pytest.raises(ConfigError, match="Unknown activation 'swish'"):
        Dense(4, "swish")


def test_dense_unknown_initializer():
    with pytest.raises(ConfigError, match="Unknown initializer 'xavier'"):
        Dense(4, "relu", "xavier")
    with pytest.raises(ConfigError, match="Unknown initializer 'one'"):
        Dense(4, bias_initializer="one")


def test_dense_keras_defaults_and_normalized_initializers():
    layer = Dense(3)
    assert layer.activation == "linear"
    assert layer.kernel_initializer == Initializer("glorot_uniform")
    assert layer.bias_initializer == Initializer("zeros")
    # a name, a table and an Initializer give equal (and equally hashed) specs
    a = Dense(3, "relu", "he_uniform")
    b = Dense(3, "relu", {"name": "he_uniform"})
    c = Dense(3, "relu", Initializer("he_uniform"))
    assert a == b == c
    assert len({a, b, c}) == 1
    assert MLP(4, (a,)) == MLP(4, [b])
    assert hash(MLP(4, (a,))) == hash(MLP(4, (c,)))


@pytest.mark.parametrize("input_dim", [0, -1, True, 2.5, "20"])
def test_mlp_input_dim_must_be_a_positive_int(input_dim):
    with pytest.raises(ConfigError, match="input_dim must be a positive integer"):
        MLP(input_dim)


def test_mlp_layers_must_be_dense_specs():
    with pytest.raises(ConfigError, match="Layers must be Dense specs"):
        MLP(3, (5,))
    with pytest.raises(ConfigError, match="Layers must be Dense specs"):
        MLP(3, (), "linear")


def test_mlp_default_output_is_keras_dense_1():
    model = MLP(3)
    assert model.hidden == ()
    assert model.output == Dense(1)
    assert model.depth == 0
    assert model.layers == (Dense(1),)


def test_stack_builds_identical_hidden_layers():
    model = MLP.stack(2, 5, 5, "relu", "he_uniform", output=Dense(1, "sigmoid"))
    assert model.depth == 5
    assert model.hidden == (Dense(5, "relu", "he_uniform"),) * 5
    assert model.output == Dense(1, "sigmoid")
    assert model.input_dim == 2
    default = MLP.stack(20, 1, 25)
    assert default.hidden == (Dense(25, "relu", "glorot_uniform"),)
    assert default.output == Dense(1, "linear")
    assert MLP.stack(3, 0, 8).layers == (Dense(1),)


@pytest.mark.parametrize("depth", [-1, True, 2.0])
def test_stack_depth_must_be_non_negative_int(depth):
    with pytest.raises(ConfigError, match="depth must be a non-negative integer"):
        MLP.stack(2, depth, 5)


def test_describe():
    assert _lesson_mlp().describe() == "20-25(relu)-1(linear)"
    assert MLP(3).describe() == "3-1(linear)"
    # runs of equal hidden layers are counted; the output layer is never merged into them
    assert _circles_mlp(2).describe() == "2-5(tanh)x2-1(sigmoid)"
    assert MLP.stack(2, 15, 5, "relu", "he_uniform").describe() == "2-5(relu)x15-1(linear)"
    assert MLP.stack(4, 2, 1, "linear").describe() == "4-1(linear)x2-1(linear)"
    mixed = MLP(3, (Dense(4, "relu"), Dense(4, "tanh"), Dense(4, "tanh"), Dense(4, "relu")))
    assert mixed.describe() == "3-4(relu)-4(tanh)x2-4(relu)-1(linear)"


def test_describe_when_output_is_the_hidden_layer_object():
    layer = Dense(4, "relu")
    assert MLP(3, (layer, layer, layer), layer).describe() == "3-4(relu)x3-4(relu)"


def test_layer_names():
    assert m.layer_names(_circles_mlp(2)) == ["hidden_1", "hidden_2", "output"]
    assert m.layer_names(MLP(3)) == ["output"]


def test_validate_widths():
    m.validate_widths(_lesson_mlp(), 20)
    with pytest.raises(ConfigError, match=r"expects 20 inputs but the data has 2.*input_dim=2"):
        m.validate_widths(_lesson_mlp(), 2)


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("model", "count"),
    [
        (_lesson_mlp(), 20 * 25 + 25 + 25 * 1 + 1),  # 551
        (_circles_mlp(2), 2 * 5 + 5 + 5 * 5 + 5 + 5 * 1 + 1),  # 51
        (MLP(7), 8),
    ],
)
def test_parameter_count_matches_initialized_sizes(model, count):
    assert model.parameter_count() == count
    params = init_params(model, jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(params)) == count


def test_init_params_shapes_are_units_by_fan_in():
    model = MLP(20, (Dense(25, "relu"), Dense(7, "tanh")), Dense(1))
    params = init_params(model, jax.random.key(0))
    assert isinstance(params, tuple) and len(params) == 3
    assert [set(p) for p in params] == [{"kernel", "bias"}] * 3
    assert [p["kernel"].shape for p in params] == [(25, 20), (7, 25), (1, 7)]
    assert [p["bias"].shape for p in params] == [(25,), (7,), (1,)]
    for p in params:
        assert p["kernel"].dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(p["bias"]), 0.0)  # Keras: zeros


def test_init_params_uses_each_layers_initializers():
    model = MLP(
        20,
        (Dense(400, "relu", "he_uniform", bias_initializer="ones"),),
        Dense(3, kernel_initializer=random_uniform(0.5, 0.6)),
    )
    hidden, output = init_params(model, jax.random.key(1))
    limit = math.sqrt(6 / 20)  # he_uniform with fan_in = 20 (the last axis)
    assert float(jnp.abs(hidden["kernel"]).max()) <= limit
    assert float(jnp.abs(hidden["kernel"]).max()) > 0.99 * limit
    np.testing.assert_array_equal(np.asarray(hidden["bias"]), 1.0)
    assert float(output["kernel"].min()) >= 0.5 and float(output["kernel"].max()) < 0.6
    np.testing.assert_array_equal(np.asarray(output["bias"]), 0.0)


def test_default_kernel_is_glorot_uniform():
    model = MLP(300, (), Dense(100))
    kernel = np.asarray(init_params(model, jax.random.key(2))[0]["kernel"])
    limit = math.sqrt(6 / (300 + 100))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.99 * limit


def test_same_key_same_params_different_key_different_params():
    model = _circles_mlp(3)
    a = init_params(model, jax.random.key(7))
    b = init_params(model, jax.random.key(7))
    c = init_params(model, jax.random.key(8))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    kernels_a = [np.asarray(p["kernel"]) for p in a]
    kernels_c = [np.asarray(p["kernel"]) for p in c]
    assert all(not np.array_equal(x, y) for x, y in zip(kernels_a, kernels_c, strict=True))
    # identical hidden layers still get different draws (keys are split per layer)
    assert not np.array_equal(kernels_a[1], kernels_a[2])


# --------------------------------------------------------------------------- forward


def test_forward_layers_shapes_are_hidden_major():
    model = _circles_mlp(2)
    params = init_params(model, jax.random.key(0))
    x_t = jax.random.normal(jax.random.key(1), (2, 9))  # [input_dim, batch]
    pre, act = forward_layers(model, params, x_t)
    assert [z.shape for z in pre] == [(5, 9), (5, 9), (1, 9)]
    assert [h.shape for h in act] == [(5, 9), (5, 9), (1, 9)]
    for z, h, layer in zip(pre, act, model.layers, strict=True):
        expected = np.tanh(z) if layer.activation == "tanh" else 1 / (1 + np.exp(-np.asarray(z)))
        np.testing.assert_allclose(np.asarray(h), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", [_lesson_mlp(), _circles_mlp(2), _circles_mlp(0)])
def test_forward_matches_numpy(model):
    params = init_params(model, jax.random.key(3))
    x_t = np.random.default_rng(0).normal(size=(model.input_dim, 16)).astype(np.float32)
    logits, output = forward(model, params, jnp.asarray(x_t))
    assert logits.shape == output.shape == (1, 16)
    ref_logits, ref_output = _numpy_forward(model, params, x_t)
    np.testing.assert_allclose(np.asarray(logits), ref_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(output), ref_output, rtol=1e-4, atol=1e-5)


def test_forward_returns_logits_and_sigmoid_output():
    model = MLP(2, (), Dense(1, "sigmoid", kernel_initializer="ones", bias_initializer="ones"))
    params = init_params(model, jax.random.key(0))
    x_t = jnp.array([[1.0, -2.0, 0.0], [2.0, 0.0, -1.0]])  # two features, three rows
    logits, output = forward(model, params, x_t)
    np.testing.assert_allclose(np.asarray(logits), [[4.0, -1.0, 0.0]])
    np.testing.assert_allclose(
        np.asarray(output), 1 / (1 + np.exp(-np.array([[4.0, -1.0, 0.0]]))), rtol=1e-6
    )


@pytest.mark.slow
def test_forward_is_jittable_and_vmappable_over_models():
    model = _lesson_mlp()
    keys = jax.random.split(jax.random.key(0), 3)
    params = jax.vmap(lambda k: init_params(model, k))(keys)
    assert params[0]["kernel"].shape == (3, 25, 20)
    x_t = jnp.ones((20, 4))
    out = jax.jit(jax.vmap(lambda p: forward(model, p, x_t)[1]))(params)
    assert out.shape == (3, 1, 4)
    single = forward(model, init_params(model, keys[1]), x_t)[1]
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(single), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_layer_without_bias_never_reads_or_moves_its_bias():
    import jax.numpy as jnp

    from stablelearn.model import forward, init_params

    model = MLP(3, (Dense(4, "relu", use_bias=False),), Dense(1, use_bias=False))
    params = init_params(model, jax.random.key(0))
    params = tuple({**p, "bias": jnp.ones_like(p["bias"])} for p in params)
    x_t = jnp.ones((3, 2))
    _, out = forward(model, params, x_t)
    no_bias = tuple({**p, "bias": jnp.zeros_like(p["bias"])} for p in params)
    np.testing.assert_array_equal(out, forward(model, no_bias, x_t)[1])
    grads = jax.grad(lambda p: jnp.sum(forward(model, p, x_t)[1]))(params)
    assert all(float(jnp.abs(g["bias"]).max()) == 0.0 for g in grads)
    assert model.parameter_count() == 3 * 4 + 4 * 1
    assert "no bias" in model.describe()
