"""Optimizers and gradient clipping against Keras' formulas.

The whole chain is exercised as the engine builds it:
the clipping stage then the optimizer stage (`build_clipping`, `build_optimizer`, as the
engine applies them) for `optimizer_structure([opt])`, with `hp` taken from
`stack_hyperparameters` at one model index. With `SGD(learning_rate=1, momentum=0)`
the update is exactly minus the clipped gradient, which isolates the clipping stage.
"""

import functools
import math

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from stablelearn import optim
from stablelearn.errors import ConfigError

# A 2-layer MLP's parameter tree: 4 inputs -> 3 hidden units -> 1 output.
SHAPES = (((3, 4), (3,)), ((1, 3), (1,)))
N_LAYERS = len(SHAPES)
RNG = np.random.default_rng(0)


def _tree(k0, b0, k1, b1):
    """A params-like pytree: one {"kernel", "bias"} dict per layer."""
    return (
        {"kernel": jnp.asarray(k0, jnp.float32), "bias": jnp.asarray(b0, jnp.float32)},
        {"kernel": jnp.asarray(k1, jnp.float32), "bias": jnp.asarray(b1, jnp.float32)},
    )


def _random_tree(rng=RNG, scale=1.0):
    return _tree(*(scale * rng.normal(size=s) for layer in SHAPES for s in layer))


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def _hyperparameters(optimizers, model=0, n_layers=N_LAYERS):
    """(structure, hp of one model) exactly as the engine derives them."""
    structure = optim.optimizer_structure(optimizers)
    stacked = optim.stack_hyperparameters(optimizers, structure, n_layers)
    return structure, {name: jnp.asarray(value[model]) for name, value in stacked.items()}


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run(structure, n_layers, hp, params, grad_seq):
    """Apply the chain for each gradient in `grad_seq` (a tree with a leading step axis).

    Returns the params after every step and every step's updates.
    """
    tx = optax.chain(
        optim.build_clipping(structure, hp, n_layers), optim.build_optimizer(structure, hp)
    )

    def step(carry, grads):
        params, state = carry
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, updates)

    _, (params_seq, updates_seq) = jax.lax.scan(step, (params, tx.init(params)), grad_seq)
    return params_seq, updates_seq


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _clipped(optimizers, grads, model=0):
    """The gradient after the clipping stage of model `model` (SGD lr=1, no momentum)."""
    structure, hp = _hyperparameters(optimizers, model)
    params = jax.tree.map(jnp.zeros_like, grads)
    _, updates = _run(structure, N_LAYERS, hp, params, _stack([grads]))
    return jax.tree.map(lambda u: -u[0], updates)


def _sgd1(**clipping):
    return optim.SGD(learning_rate=1.0, momentum=0.0, **clipping)


def _norm(a: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64)))


# --------------------------------------------------------------------------- (a) by hand


@pytest.mark.slow
def test_clip_by_tensor_norm_by_hand():
    k0 = np.array([[3.0, 4.0, 0.0, 0.0]] * 3)  # norm sqrt(75) = 8.66 > 2
    b0 = np.array([0.3, 0.4, 0.0])  # norm 0.5 < 2: untouched
    k1 = np.array([[6.0, 8.0, 0.0]])  # norm 10 > 5
    b1 = np.array([-7.0])  # norm 7 > 5
    grads = _tree(k0, b0, k1, b1)
    thresholds = jnp.array([2.0, 5.0])
    tx = optim.clip_by_tensor_norm(thresholds, N_LAYERS)
    clipped, _ = tx.update(grads, tx.init(grads))

    def by_hand(g, c):
        return g * c / max(np.linalg.norm(g), c)

    expected = [by_hand(k0, 2.0), by_hand(b0, 2.0), by_hand(k1, 5.0), by_hand(b1, 5.0)]
    got = [clipped[0]["kernel"], clipped[0]["bias"], clipped[1]["kernel"], clipped[1]["bias"]]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(clipped[1]["kernel"]), [[3.0, 4.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(clipped[1]["bias"]), [-5.0], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(clipped[0]["bias"]), np.asarray(b0, np.float32))


def test_clip_by_tensor_norm_inf_leaves_gradients_alone():
    grads = _random_tree(scale=1e3)
    tx = optim.clip_by_tensor_norm(jnp.array([jnp.inf, jnp.inf]), N_LAYERS)
    clipped, _ = tx.update(grads, tx.init(grads))
    for a, b in zip(_leaves(clipped), _leaves(grads), strict=True):
        np.testing.assert_array_equal(a, b)


def test_clip_by_layer_value_by_hand():
    grads = _tree([[-3.0, 0.5, 2.0, -0.1]] * 3, [1.5, -1.5, 0.2], [[10.0, -10.0, 4.0]], [-0.01])
    tx = optim.clip_by_layer_value(jnp.array([1.0, 5.0]), N_LAYERS)
    clipped, _ = tx.update(grads, tx.init(grads))
    f32 = np.float32
    np.testing.assert_array_equal(clipped[0]["kernel"], f32([[-1.0, 0.5, 1.0, -0.1]] * 3))
    np.testing.assert_array_equal(clipped[0]["bias"], f32([1.0, -1.0, 0.2]))
    np.testing.assert_array_equal(clipped[1]["kernel"], f32([[5.0, -5.0, 4.0]]))
    np.testing.assert_array_equal(clipped[1]["bias"], f32([-0.01]))


# --------------------------------------------------------------------------- (b) properties

ELEMENT = st.floats(-1e3, 1e3, width=32, allow_subnormal=False)
THRESHOLD = st.floats(1e-2, 1e3, allow_subnormal=False)
GRADS = st.tuples(*(arrays(np.float32, s, elements=ELEMENT) for layer in SHAPES for s in layer))
PROPERTY = settings(max_examples=50, deadline=None)


@PROPERTY
@given(arrays_=GRADS, c0=THRESHOLD, c1=THRESHOLD, per_layer=st.booleans())
def test_clipnorm_bounds_norm_and_keeps_direction(arrays_, c0, c1, per_layer):
    grads = _tree(*arrays_)
    clipnorm = (c0, c1) if per_layer else c0
    clipped = _clipped([_sgd1(clipnorm=clipnorm)], grads)
    limits = [c0, c0, c1, c1] if per_layer else [c0] * 4
    for g, out, c in zip(_leaves(grads), _leaves(clipped), limits, strict=True):
        c32 = float(np.float32(c))
        norm_in, norm_out = _norm(g), _norm(out)
        assert norm_out <= c32 * (1 + 1e-5)
        if norm_in > 1e-3:
            cosine = float(np.sum(g * out)) / (norm_in * norm_out)
            assert cosine == pytest.approx(1.0, abs=1e-5)
        if norm_in < c32 * (1 - 1e-5):
            np.testing.assert_array_equal(out, g)  # under the threshold: untouched
        elif norm_in > c32 * (1 + 1e-5):
            assert norm_out == pytest.approx(c32, rel=1e-5)  # over it: exactly on it


@PROPERTY
@given(arrays_=GRADS, c=THRESHOLD)
def test_global_clipnorm_scales_all_tensors_together(arrays_, c):
    grads = _tree(*arrays_)
    clipped = _clipped([_sgd1(global_clipnorm=c)], grads)
    before, after = _leaves(grads), _leaves(clipped)
    global_before = math.sqrt(sum(_norm(g) ** 2 for g in before))
    global_after = math.sqrt(sum(_norm(g) ** 2 for g in after))
    c32 = float(np.float32(c))
    assert global_after <= c32 * (1 + 1e-5)
    factor = 1.0 if global_before < c32 else c32 / global_before
    for g, out in zip(before, after, strict=True):
        np.testing.assert_allclose(out, g * factor, rtol=2e-5, atol=1e-6 * c32)


@PROPERTY
@given(arrays_=GRADS, c0=THRESHOLD, c1=THRESHOLD, per_layer=st.booleans())
def test_clipvalue_bounds_every_element(arrays_, c0, c1, per_layer):
    grads = _tree(*arrays_)
    clipvalue = (c0, c1) if per_layer else c0
    clipped = _clipped([_sgd1(clipvalue=clipvalue)], grads)
    limits = [c0, c0, c1, c1] if per_layer else [c0] * 4
    for g, out, c in zip(_leaves(grads), _leaves(clipped), limits, strict=True):
        c32 = float(np.float32(c))
        np.testing.assert_array_equal(out, np.clip(g, -c32, c32))
        assert np.all(np.abs(out) <= c32)


def test_per_tensor_and_global_clipnorm_differ():
    """One large tensor and small ones: per-tensor leaves the small ones alone."""
    big = np.full((3, 4), 10.0)  # norm sqrt(1200) = 34.6
    small_bias = np.array([0.1, -0.2, 0.2])  # norm 0.3
    grads = _tree(big, small_bias, [[0.1, 0.0, 0.0]], [0.05])
    per_tensor = _clipped([_sgd1(clipnorm=1.0)], grads)
    global_ = _clipped([_sgd1(global_clipnorm=1.0)], grads)

    # per-tensor (Keras clipnorm): the big kernel lands on norm 1, the rest is untouched
    assert _norm(per_tensor[0]["kernel"]) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_array_equal(np.asarray(per_tensor[0]["bias"]), small_bias.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(per_tensor[1]["bias"]), np.float32([0.05]))

    # global (Keras global_clipnorm): everything shrinks by 1 / global norm
    global_norm = math.sqrt(1200 + 0.09 + 0.01 + 0.0025)
    np.testing.assert_allclose(np.asarray(global_[0]["bias"]), small_bias / global_norm, rtol=1e-5)
    assert _norm(global_[0]["bias"]) == pytest.approx(0.3 / global_norm, rel=1e-5)
    assert _norm(global_[0]["bias"]) < _norm(per_tensor[0]["bias"]) / 30
    total = math.sqrt(sum(_norm(x) ** 2 for x in _leaves(global_)))
    assert total == pytest.approx(1.0, rel=1e-5)


def test_per_layer_thresholds_apply_per_layer():
    grads = _tree(np.full((3, 4), 10.0), np.full(3, 10.0), np.full((1, 3), 10.0), [10.0])
    clipped = _clipped([_sgd1(clipnorm=(0.5, 3.0))], grads)
    norms = [_norm(x) for x in _leaves(clipped)]
    np.testing.assert_allclose(norms, [0.5, 0.5, 3.0, 3.0], rtol=1e-6)

    clipped = _clipped([_sgd1(clipvalue=(0.5, 3.0))], grads)
    values = [np.unique(x) for x in _leaves(clipped)]
    assert [v.tolist() for v in values] == [[0.5], [0.5], [3.0], [3.0]]


@pytest.mark.parametrize("mode", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_inf_thresholds_of_unclipped_ensemble_members_leave_gradients_unchanged(mode):
    """In an ensemble where only model 0 clips, model 1 gets inf thresholds: no clipping."""
    ensemble = [_sgd1(**{mode: 0.5}), _sgd1()]
    structure = optim.optimizer_structure(ensemble)
    stacked = optim.stack_hyperparameters(ensemble, structure, N_LAYERS)
    assert np.all(np.isinf(stacked[mode][1]))
    grads = _random_tree(np.random.default_rng(1), scale=100.0)
    untouched = _clipped(ensemble, grads, model=1)
    for a, b in zip(_leaves(untouched), _leaves(grads), strict=True):
        np.testing.assert_array_equal(a, b)
    clipped = _clipped(ensemble, grads, model=0)
    assert max(np.abs(x).max() for x in _leaves(clipped)) <= 0.5 * (1 + 1e-6)


def test_no_clipping_by_default():
    grads = _random_tree(np.random.default_rng(2), scale=1e4)
    out = _clipped([_sgd1()], grads)
    for a, b in zip(_leaves(out), _leaves(grads), strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- (c) optimizers


def _grad_sequence(steps=5, seed=3, scale=1.0):
    rng = np.random.default_rng(seed)
    return [_random_tree(rng, scale) for _ in range(steps)]


def _chain_params(optimizer, params, grads):
    """Params after each step, as lists of float64 leaves."""
    structure, hp = _hyperparameters([optimizer])
    params_seq, _ = _run(structure, N_LAYERS, hp, params, _stack(grads))
    return [
        [np.asarray(leaf[t], np.float64) for leaf in jax.tree.leaves(params_seq)]
        for t in range(len(grads))
    ]


def _keras_sgd(params, grads, lr, momentum, nesterov, clipnorm=None):
    """Keras 3 SGD.update_step in NumPy (float64), after Keras' per-variable clipnorm."""
    w = _leaves(params)
    v = [np.zeros_like(x) for x in w]
    out = []
    for step in grads:
        g = _leaves(step)
        if clipnorm is not None:
            g = [x * clipnorm / max(np.linalg.norm(x), clipnorm) for x in g]
        for i in range(len(w)):
            v[i] = momentum * v[i] - lr * g[i]
            if nesterov:
                w[i] = w[i] + momentum * v[i] - lr * g[i]
            else:
                w[i] = w[i] + v[i]
        out.append([x.copy() for x in w])
    return out


def _assert_trajectories_close(got, expected, rtol=1e-5, atol=1e-6):
    assert len(got) == len(expected)
    for step_got, step_expected in zip(got, expected, strict=True):
        for a, b in zip(step_got, step_expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    ("lr", "momentum", "nesterov"),
    [(0.01, 0.9, False), (0.1, 0.5, True), (0.05, 0.0, False), (0.01, 0.99, True)],
)
def test_sgd_matches_keras_update(lr, momentum, nesterov):
    params = _random_tree(np.random.default_rng(4))
    grads = _grad_sequence()
    got = _chain_params(
        optim.SGD(learning_rate=lr, momentum=momentum, nesterov=nesterov), params, grads
    )
    _assert_trajectories_close(got, _keras_sgd(params, grads, lr, momentum, nesterov))


def test_sgd_first_steps_by_hand():
    """Scalar check of v <- m v - lr g; w <- w + v, from v = 0."""
    params = _tree(np.ones((3, 4)), np.zeros(3), np.ones((1, 3)), np.zeros(1))
    grads = [_tree(np.ones((3, 4)), np.zeros(3), np.zeros((1, 3)), np.zeros(1))] * 3
    got = _chain_params(optim.SGD(learning_rate=0.1, momentum=0.9), params, grads)
    # v1 = -0.1, w1 = 0.9; v2 = -0.19, w2 = 0.71; v3 = -0.271, w3 = 0.439
    np.testing.assert_allclose([step[1][0, 0] for step in got], [0.9, 0.71, 0.439], rtol=1e-6)
    got = _chain_params(optim.SGD(learning_rate=0.1, momentum=0.9, nesterov=True), params, grads)
    # nesterov: w1 = 1 + 0.9 * -0.1 - 0.1 = 0.81; w2 = 0.81 + 0.9 * -0.19 - 0.1 = 0.539
    np.testing.assert_allclose([step[1][0, 0] for step in got][:2], [0.81, 0.539], rtol=1e-6)


def test_clipnorm_applies_to_raw_gradients_before_momentum():
    params = _random_tree(np.random.default_rng(5))
    grads = _grad_sequence(scale=5.0)
    got = _chain_params(optim.SGD(learning_rate=0.1, momentum=0.9, clipnorm=1.0), params, grads)
    expected = _keras_sgd(params, grads, 0.1, 0.9, False, clipnorm=1.0)
    _assert_trajectories_close(got, expected)


def _keras_rmsprop(params, grads, lr, rho, momentum, eps):
    """Keras 3 RMSprop.update_step (centered=False) in NumPy."""
    w = _leaves(params)
    v = [np.zeros_like(x) for x in w]
    mom = [np.zeros_like(x) for x in w]
    out = []
    for step in grads:
        g = _leaves(step)
        for i in range(len(w)):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            increment = lr * g[i] / np.sqrt(v[i] + eps)
            if momentum > 0:
                mom[i] = momentum * mom[i] + increment
                w[i] = w[i] - mom[i]
            else:
                w[i] = w[i] - increment
        out.append([x.copy() for x in w])
    return out


@pytest.mark.parametrize(
    ("rho", "momentum", "scale"),
    [(0.9, 0.0, 1.0), (0.5, 0.0, 1.0), (0.9, 0.5, 1.0), (0.9, 0.0, 1e-4)],
)
def test_rmsprop_matches_keras_update(rho, momentum, scale):
    """scale=1e-4 makes v ~ epsilon, where epsilon inside vs outside the root differ."""
    params = _random_tree(np.random.default_rng(6))
    grads = _grad_sequence(scale=scale)
    opt = optim.RMSprop(learning_rate=0.01, rho=rho, momentum=momentum)
    got = _chain_params(opt, params, grads)
    _assert_trajectories_close(got, _keras_rmsprop(params, grads, 0.01, rho, momentum, 1e-7))


def test_rmsprop_keras_docstring_example():
    """Keras' RMSprop docstring: lr=0.1, var=10, grad=var -> 9.683772 after one step."""
    params = _tree(np.full((3, 4), 10.0), np.zeros(3), np.zeros((1, 3)), np.zeros(1))
    grads = [_tree(np.full((3, 4), 10.0), np.zeros(3), np.zeros((1, 3)), np.zeros(1))]
    got = _chain_params(optim.RMSprop(learning_rate=0.1), params, grads)
    np.testing.assert_allclose(got[0][1], np.full((3, 4), 9.683772), rtol=1e-6)


def _keras_adam(params, grads, lr, b1, b2, eps):
    """Keras 3 Adam.update_step (epsilon added to sqrt(v) before bias correction)."""
    w = _leaves(params)
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    out = []
    for t, step in enumerate(grads, start=1):
        g = _leaves(step)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        for i in range(len(w)):
            m[i] += (g[i] - m[i]) * (1 - b1)
            v[i] += (g[i] ** 2 - v[i]) * (1 - b2)
            w[i] = w[i] - m[i] * alpha / (np.sqrt(v[i]) + eps)
        out.append([x.copy() for x in w])
    return out


@pytest.mark.slow
def test_adam_is_optax_adam_with_keras_epsilon():
    assert optim.Adam().epsilon == 1e-7
    params = _random_tree(np.random.default_rng(7))
    grads = _grad_sequence()
    got = _chain_params(optim.Adam(learning_rate=0.01), params, grads)

    tx = optax.adam(0.01, b1=0.9, b2=0.999, eps=1e-7)
    state, p, expected = tx.init(params), params, []
    for g in grads:
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        expected.append(_leaves(p))
    _assert_trajectories_close(got, expected, rtol=1e-5, atol=1e-6)
    # and close to Keras' own formula while gradients are far above epsilon
    _assert_trajectories_close(got, _keras_adam(params, grads, 0.01, 0.9, 0.999, 1e-7), rtol=1e-4)


def test_adam_epsilon_placement_differs_from_keras_for_tiny_gradients():
    """The documented difference: with |g| ~ epsilon, Optax's eps (after bias correction)
    and Keras' epsilon hat (before it) give different first steps."""
    params = _tree(np.zeros((3, 4)), np.zeros(3), np.zeros((1, 3)), np.zeros(1))
    grads = [_tree(np.full((3, 4), 1e-7), np.zeros(3), np.zeros((1, 3)), np.zeros(1))]
    got = _chain_params(optim.Adam(learning_rate=1.0), params, grads)[0][1]
    # Optax: -lr * g / (|g| + eps) = -0.5; Keras: -lr * sqrt(1e-3) g / (sqrt(1e-3) g + eps)
    np.testing.assert_allclose(got, -0.5, rtol=1e-4)
    keras = _keras_adam(params, grads, 1.0, 0.9, 0.999, 1e-7)[0][1]
    np.testing.assert_allclose(keras, -math.sqrt(1e-3) / (math.sqrt(1e-3) + 1), rtol=1e-6)


def test_stack_hyperparameters_has_model_axis():
    ensemble = [
        optim.SGD(learning_rate=0.01, momentum=0.9, clipnorm=1.0),
        optim.SGD(learning_rate=0.1, clipnorm=(2.0, 3.0)),
        optim.SGD(),
    ]
    structure = optim.optimizer_structure(ensemble)
    assert structure == optim.OptimizerStructure(optim.SGD, False, ("clipnorm",))
    hp = optim.stack_hyperparameters(ensemble, structure, N_LAYERS)
    assert set(hp) == {"learning_rate", "momentum", "dampening", "clipnorm"}
    np.testing.assert_allclose(hp["learning_rate"], [0.01, 0.1, 0.01])
    np.testing.assert_allclose(hp["momentum"], [0.9, 0.0, 0.0])
    np.testing.assert_array_equal(hp["clipnorm"], [[1.0, 1.0], [2.0, 3.0], [np.inf, np.inf]])
    assert all(v.dtype == np.float32 for v in hp.values())


def test_describe():
    assert optim.describe(optim.SGD(momentum=0.9, clipnorm=1.0)) == (
        "SGD(lr=0.01, momentum=0.9, clipnorm=1.0)"
    )
    assert optim.describe(optim.SGD(momentum=0.9, nesterov=True)) == (
        "SGD(lr=0.01, momentum=0.9, nesterov)"
    )
    assert optim.describe(optim.Adam()).startswith("Adam(lr=0.001, beta_1=0.9, beta_2=0.999")


def test_make_optimizer_builds_by_keras_name():
    assert optim.make_optimizer("sgd", learning_rate=0.1, momentum=0.9) == optim.SGD(
        learning_rate=0.1, momentum=0.9
    )
    assert optim.make_optimizer("Adam") == optim.Adam()
    assert optim.make_optimizer("RMSPROP", rho=0.8) == optim.RMSprop(rho=0.8)


def test_single_threshold_in_a_list_is_per_layer():
    assert optim.SGD(clipnorm=[1.0, 2.0]).clipnorm == (1.0, 2.0)
    assert optim.SGD(clipnorm=2).clipnorm == 2.0
    np.testing.assert_array_equal(optim.SGD(clipnorm=2).clip_thresholds("clipnorm", 3), [2, 2, 2])


# --------------------------------------------------------------------------- (d) errors


@pytest.mark.parametrize("lr", [-0.1, 0.0, math.nan, math.inf, True, "0.01"])
def test_learning_rate_must_be_positive_finite(lr):
    with pytest.raises(ConfigError, match="learning_rate"):
        optim.SGD(learning_rate=lr)
    with pytest.raises(ConfigError, match="learning_rate"):
        optim.Adam(learning_rate=lr)


@pytest.mark.parametrize("nesterov", ["yes", 1, [], None])
def test_nesterov_must_be_true_or_false(nesterov):
    with pytest.raises(ConfigError, match="nesterov must be true or false"):
        optim.SGD(momentum=0.9, nesterov=nesterov)


@pytest.mark.parametrize("momentum", [1.01, 2.0, -0.1])
def test_momentum_must_be_in_unit_interval(momentum):
    with pytest.raises(ConfigError, match=r"momentum must be in \[0, 1\]"):
        optim.SGD(momentum=momentum)
    with pytest.raises(ConfigError, match="momentum"):
        optim.RMSprop(momentum=momentum)


@pytest.mark.parametrize(("name", "value"), [("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", -1e-7)])
def test_adam_hyperparameter_ranges(name, value):
    with pytest.raises(ConfigError, match=name):
        optim.Adam(**{name: value})


def test_rmsprop_rho_range():
    with pytest.raises(ConfigError, match="rho"):
        optim.RMSprop(rho=1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clipnorm": 1.0, "clipvalue": 1.0},
        {"clipnorm": 1.0, "global_clipnorm": 1.0},
        {"clipvalue": (1.0, 2.0), "global_clipnorm": 1.0},
    ],
)
def test_only_one_clipping_mode(kwargs):
    with pytest.raises(ConfigError, match="only one clipping mode"):
        optim.SGD(**kwargs)


def test_global_clipnorm_is_a_single_threshold():
    with pytest.raises(ConfigError, match="global_clipnorm takes one threshold"):
        optim.SGD(global_clipnorm=(1.0, 2.0))


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, (1.0, -1.0), ()])
def test_clip_thresholds_must_be_positive_finite(bad):
    with pytest.raises(ConfigError, match="clipnorm"):
        optim.SGD(clipnorm=bad)


def test_unknown_optimizer():
    with pytest.raises(ConfigError, match=r"Unknown optimizer 'adagrad'.*sgd, adam, rmsprop"):
        optim.make_optimizer("adagrad")


def test_unknown_keyword_argument_names_it():
    """The lesson's SGD(lr=0.01) fails on Keras 3; here it gets a clear message."""
    with pytest.raises(ConfigError, match=r"unknown argument.*lr; it takes.*learning_rate"):
        optim.make_optimizer("sgd", lr=0.01)


def test_wrong_number_of_per_layer_thresholds():
    opt = optim.SGD(clipnorm=(1.0, 2.0, 3.0))
    with pytest.raises(ConfigError, match="lists 3 thresholds but the model has 2 layers"):
        opt.clip_thresholds("clipnorm", 2)
    structure = optim.optimizer_structure([opt])
    with pytest.raises(ConfigError, match="3 thresholds"):
        optim.stack_hyperparameters([opt], structure, 2)


@pytest.mark.parametrize(
    "ensemble",
    [
        [optim.SGD(), optim.Adam()],
        [optim.Adam(), optim.RMSprop()],
        [optim.SGD(momentum=0.9), optim.SGD(momentum=0.9, nesterov=True)],
        [optim.RMSprop(), optim.RMSprop(epsilon_in_sqrt=False)],
    ],
)
def test_optimizer_structure_rejects_mixed_ensembles(ensemble):
    with pytest.raises(ConfigError, match="same optimizer type, nesterov flag"):
        optim.optimizer_structure(ensemble)


def test_dampened_momentum_is_pytorchs_buffer():
    """PyTorch: b1 = g1, then b = mu * b + (1 - d) * g; w -= lr * b. Without momentum
    dampening does nothing, as PyTorch keeps no buffer then."""
    g1, g2, g3 = 1.0, 2.0, -1.0
    for momentum, dampening in ((0.9, 0.3), (0.0, 0.5)):
        opt = optim.SGD(learning_rate=0.1, momentum=momentum, dampening=dampening)
        structure, hp = _hyperparameters([opt])
        assert structure.dampened
        tx = optim.build_optimizer(structure, hp)
        state, steps, b = tx.init(jnp.zeros(1)), [], None
        for g in (g1, g2, g3):
            update, state = tx.update(jnp.asarray([g]), state)
            b = g if b is None or momentum == 0 else momentum * b + (1 - dampening) * g
            steps.append((float(update[0]), -0.1 * b))
        np.testing.assert_allclose(*zip(*steps, strict=True), rtol=1e-6)


def test_rmsprop_epsilon_outside_the_square_root():
    opt = optim.RMSprop(learning_rate=1.0, rho=0.0, epsilon=1.0, epsilon_in_sqrt=False)
    structure, hp = _hyperparameters([opt])
    tx = optim.build_optimizer(structure, hp)
    update, _ = tx.update(jnp.asarray([3.0]), tx.init(jnp.zeros(1)))
    np.testing.assert_allclose(update, [-3.0 / (3.0 + 1.0)], rtol=1e-6)  # Keras: 3 / sqrt(10)


def test_hyperparameters_beyond_float32_are_refused_in_one_sentence():
    """Training runs in float32: a learning rate of 1e300 would silently become inf."""
    with pytest.raises(ConfigError, match=r"SGD learning_rate must be within float32's range"):
        optim.SGD(1e300)
    assert optim.SGD(1e30).learning_rate == 1e30  # large, but a float32
