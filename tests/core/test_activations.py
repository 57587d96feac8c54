"""Activations by their Keras names, checked against NumPy reference formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stablelearn import activations
from stablelearn.activations import ACTIVATIONS, check_activation, get_activation
from stablelearn.errors import ConfigError

X = np.linspace(-4.0, 4.0, 81)  # includes 0 and both signs
_erf = np.vectorize(math.erf)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

REFERENCE = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),  # Keras 3 negative_slope=0.2
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),  # exact erf form
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    # across units, the first axis of the engine's [units, batch] activations
    "softmax": lambda x: np.exp(x - x.max(axis=0)) / np.exp(x - x.max(axis=0)).sum(axis=0),
}


def _evaluate(name: str, x: np.ndarray) -> np.ndarray:
    return np.asarray(get_activation(name)(jnp.asarray(x, jnp.float32)), np.float64)


def test_reference_covers_every_activation():
    assert set(REFERENCE) == set(ACTIVATIONS)


def test_names_known_without_jax_are_those_of_the_tables():
    assert tuple(ACTIVATIONS) == activations.ACTIVATION_NAMES
    parametric = activations.PARAMETRIC
    assert {k: v[:2] for k, v in parametric.items()} == activations.PARAMETRIC_ARGUMENTS
    assert activations.PARAMETRIC is parametric  # the tables are built once
    with pytest.raises(AttributeError):
        activations.NO_SUCH_TABLE  # noqa: B018


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_reference(name):
    out = _evaluate(name, X)
    assert out.shape == X.shape
    np.testing.assert_allclose(out, REFERENCE[name](X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_keeps_shape_of_hidden_major_batches(name):
    z = jax.random.normal(jax.random.key(0), (5, 7))
    out = get_activation(name)(z)
    assert out.shape == (5, 7)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(
        np.asarray(out), REFERENCE[name](np.asarray(z, np.float64)), rtol=1e-5, atol=1e-6
    )


def test_leaky_relu_slope_is_keras3_default():
    out = _evaluate("leaky_relu", np.array([-10.0, -1.0, 0.0, 3.0]))
    np.testing.assert_allclose(out, [-2.0, -0.2, 0.0, 3.0], rtol=1e-6)
    # JAX's own default slope (0.01) would give -0.1 at -10
    assert out[0] != pytest.approx(-0.1)


def test_gelu_is_exact_erf_form_not_tanh_approximation():
    exact = REFERENCE["gelu"](X)
    tanh_approx = np.asarray(jax.nn.gelu(jnp.asarray(X, jnp.float32), approximate=True))
    out = _evaluate("gelu", X)
    np.testing.assert_allclose(out, exact, atol=2e-6)
    # the two forms differ by ~5e-4 around |x| = 2.7: far above the tolerance above
    assert np.abs(tanh_approx - exact).max() > 1e-4
    assert np.abs(out - exact).max() < np.abs(tanh_approx - exact).max() / 50


def test_gelu_known_values():
    # gelu(1) = 0.5 * (1 + erf(1/sqrt 2)) = Phi(1) = 0.8413447...
    out = _evaluate("gelu", np.array([1.0, -1.0]))
    np.testing.assert_allclose(out, [0.8413447460685429, -0.15865525393145707], rtol=1e-6)


def test_check_activation_returns_name():
    for name in ACTIVATIONS:
        assert check_activation(name) == name
        assert get_activation(name) is ACTIVATIONS[name]


@pytest.mark.parametrize("bad", ["swish", "ReLU", "", "Softmax"])
def test_unknown_activation_lists_known_names(bad):
    with pytest.raises(ConfigError, match=f"Unknown activation {bad!r}") as err:
        check_activation(bad)
    for name in ACTIVATIONS:
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="expected one of"):
        get_activation(bad)


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("leaky_relu(negative_slope=0.3)", lambda x: np.where(x > 0, x, 0.3 * x)),
        ("leaky_relu(0.01)", lambda x: np.where(x > 0, x, 0.01 * x)),
        ("elu(alpha=0.5)", lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    ],
)
def test_parametric_activation_uses_its_argument(name, reference):
    np.testing.assert_allclose(_evaluate(name, X), reference(X), rtol=1e-5, atol=1e-6)


def test_parametric_activation_has_one_canonical_name():
    assert check_activation("leaky_relu(negative_slope=0.2)") == "leaky_relu"
    assert check_activation("leaky_relu( 0.30 )") == "leaky_relu(negative_slope=0.3)"
    assert check_activation("elu(alpha=1)") == "elu"


@pytest.mark.parametrize(
    "name", ["relu(0.1)", "leaky_relu(alpha=0.1)", "elu(alpha=x)", "elu(alpha=inf)", "swish"]
)
def test_bad_activation_arguments_are_config_errors(name):
    with pytest.raises(ConfigError):
        check_activation(name)
