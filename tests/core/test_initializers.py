"""Keras initializers: bounds, variances, defaults and configuration errors.

Kernels are [units, fan_in]: fan_in is the last axis and fan_out the one before it.
Shapes below are deliberately non-square so that swapping the two axes would change the
variance of the fan_in-mode initializers by a factor of four.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stablelearn import initializers
from stablelearn.errors import ConfigError
from stablelearn.initializers import Initializer, as_initializer, sample

UNITS, FAN_IN = 200, 800  # kernel [units, fan_in]: 160,000 draws
TRUNCATION_CORRECTION = 0.87962566  # stddev of a standard normal truncated at +-2


def _draw(name_or_init, shape=(UNITS, FAN_IN), seed=0) -> np.ndarray:
    init = name_or_init if isinstance(name_or_init, Initializer) else Initializer(name_or_init)
    return np.asarray(sample(init, jax.random.key(seed), shape), np.float64)


# name -> (Keras scale, the n of scale / n, distribution)
VARIANCE_SCALING = {
    "he_uniform": (2.0, FAN_IN, "uniform"),
    "he_normal": (2.0, FAN_IN, "truncated_normal"),
    "glorot_uniform": (1.0, (FAN_IN + UNITS) / 2, "uniform"),
    "glorot_normal": (1.0, (FAN_IN + UNITS) / 2, "truncated_normal"),
    "lecun_uniform": (1.0, FAN_IN, "uniform"),
    "lecun_normal": (1.0, FAN_IN, "truncated_normal"),
    "torch_linear": (1.0 / 3.0, FAN_IN, "uniform"),  # PyTorch nn.Linear: U(+-1/sqrt(fan_in))
}


def test_variance_scaling_table_covers_every_keras_name():
    assert set(VARIANCE_SCALING) == set(initializers.INITIALIZERS) - {
        "random_uniform",
        "random_normal",
        "zeros",
        "ones",
        "torch_linear_bias",
    }


@pytest.mark.parametrize("name", sorted(VARIANCE_SCALING))
def test_variance_scaling_bounds_and_variance(name):
    scale, n, distribution = VARIANCE_SCALING[name]
    w = _draw(name)
    assert w.shape == (UNITS, FAN_IN)
    target_variance = scale / n
    if distribution == "uniform":
        bound = math.sqrt(3.0 * scale / n)
        # the uniform draw fills its interval: the extremes come close to the limit
        assert np.abs(w).max() > 0.999 * bound
    else:
        bound = 2.0 * math.sqrt(scale / n) / TRUNCATION_CORRECTION
        # truncated at two (corrected) standard deviations, and the tails reach there
        assert np.abs(w).max() > 0.99 * bound
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert w.var() == pytest.approx(target_variance, rel=0.02)
    assert abs(w.mean()) < 4 * math.sqrt(target_variance / w.size)


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("he_uniform", math.sqrt(6 / FAN_IN)),
        ("glorot_uniform", math.sqrt(6 / (FAN_IN + UNITS))),
        ("lecun_uniform", math.sqrt(3 / FAN_IN)),
    ],
)
def test_uniform_limits_match_keras_formulas(name, limit):
    w = _draw(name)
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() > 0.999 * limit
    # U(-l, l) has variance l^2 / 3
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.02)


@pytest.mark.parametrize("name", ["he_uniform", "he_normal", "lecun_uniform", "lecun_normal"])
def test_fan_in_is_the_last_axis(name):
    """Transposing the kernel shape changes fan_in from 800 to 200: variance x4."""
    scale = VARIANCE_SCALING[name][0]
    w = _draw(name, shape=(FAN_IN, UNITS))
    assert w.var() == pytest.approx(scale / UNITS, rel=0.02)


def test_truncated_normal_is_not_uniform():
    """Normal draws pile up near zero: more mass within one stddev than U(-l, l)."""
    w = _draw("he_normal")
    std = math.sqrt(2 / FAN_IN)
    # |w| < std <=> |z| < 0.8796 for the base normal z, which is truncated at |z| < 2
    expected = math.erf(TRUNCATION_CORRECTION / math.sqrt(2)) / math.erf(2 / math.sqrt(2))
    assert expected == pytest.approx(0.6505, abs=1e-3)
    assert np.mean(np.abs(w) < std) == pytest.approx(expected, abs=0.01)
    # a uniform of the same variance puts only 1/sqrt(3) = 0.577 there
    assert np.mean(np.abs(_draw("he_uniform")) < std) == pytest.approx(1 / math.sqrt(3), abs=0.01)


def test_variance_scaling_same_key_same_draw_and_keys_differ():
    a = _draw("glorot_uniform", shape=(5, 7), seed=3)
    b = _draw("glorot_uniform", shape=(5, 7), seed=3)
    c = _draw("glorot_uniform", shape=(5, 7), seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_variance_scaling_rejects_bias_shape():
    with pytest.raises(ConfigError, match="rank 2"):
        sample(Initializer("he_uniform"), jax.random.key(0), (5,))


def test_samples_are_float32():
    for name in initializers.INITIALIZERS:
        shape = (3, 4)
        assert sample(Initializer(name), jax.random.key(0), shape).dtype == jnp.float32


def test_random_uniform_bounds_and_mean():
    init = initializers.random_uniform(-0.3, 0.7)
    w = _draw(init)
    assert w.min() >= -0.3
    assert w.max() < 0.7
    assert w.min() < -0.299 and w.max() > 0.699
    assert w.mean() == pytest.approx(0.2, abs=0.005)
    assert w.var() == pytest.approx(1.0 / 12.0, rel=0.02)


def test_random_uniform_keras_defaults():
    init = Initializer("random_uniform")
    assert init.kwargs == {"minval": -0.05, "maxval": 0.05}
    w = _draw(init)
    assert w.min() >= -0.05 and w.max() < 0.05
    assert abs(w.mean()) < 1e-3


def test_random_normal_mean_and_std():
    init = initializers.random_normal(mean=1.5, stddev=0.2)
    w = _draw(init)
    assert w.mean() == pytest.approx(1.5, abs=0.002)
    assert w.std() == pytest.approx(0.2, rel=0.01)
    # not truncated (Keras' RandomNormal): values beyond 3 sd exist in 160,000 draws
    assert np.abs(w - 1.5).max() > 3 * 0.2


def test_random_normal_keras_defaults():
    assert Initializer("random_normal").kwargs == {"mean": 0.0, "stddev": 0.05}
    w = _draw("random_normal")
    assert w.std() == pytest.approx(0.05, rel=0.01)


@pytest.mark.parametrize(("name", "value"), [("zeros", 0.0), ("ones", 1.0)])
def test_constant_initializers(name, value):
    for shape in [(4,), (3, 5)]:
        w = _draw(name, shape=shape)
        assert w.shape == shape
        np.testing.assert_array_equal(w, np.full(shape, value))


def test_str_shows_arguments():
    assert str(Initializer("he_uniform")) == "he_uniform"
    assert str(initializers.random_uniform(-0.5, 0.5)) == "random_uniform(minval=-0.5, maxval=0.5)"
    # defaults are filled in when only some arguments are given
    assert (
        str(Initializer("random_normal", (("stddev", 0.1),))) == "random_normal(mean=0, stddev=0.1)"
    )


def test_as_initializer_from_str_mapping_and_instance():
    assert as_initializer("he_normal") == Initializer("he_normal")
    init = initializers.random_uniform(0.0, 1.0)
    assert as_initializer(init) is init
    from_table = as_initializer({"name": "random_uniform", "minval": -1.0, "maxval": 2.0})
    assert from_table.name == "random_uniform"
    assert from_table.kwargs == {"minval": -1.0, "maxval": 2.0}
    assert as_initializer({"name": "zeros"}) == Initializer("zeros")
    # equal specs compare and hash equal (they key compiled programs)
    assert hash(as_initializer("zeros")) == hash(Initializer("zeros"))


def test_as_initializer_mapping_without_name():
    with pytest.raises(ConfigError, match="'name' key"):
        as_initializer({"minval": 0.0})


@pytest.mark.parametrize("value", [3, None, ["he_uniform"]])
def test_as_initializer_rejects_other_types(value):
    with pytest.raises(ConfigError, match="name or a table"):
        as_initializer(value)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="Unknown initializer 'xavier'") as err:
        Initializer("xavier")
    for name in initializers.INITIALIZERS:
        assert name in str(err.value)


def test_unknown_name_in_mapping():
    with pytest.raises(ConfigError, match="Unknown initializer 'kaiming'"):
        as_initializer({"name": "kaiming"})


def test_unknown_argument_for_parametric_initializer():
    with pytest.raises(ConfigError, match=r"unknown argument 'stddev'.*minval, maxval"):
        Initializer("random_uniform", (("stddev", 0.1),))


def test_variance_scaling_initializers_take_no_arguments():
    with pytest.raises(ConfigError, match=r"unknown argument 'scale'.*no arguments"):
        as_initializer({"name": "he_uniform", "scale": 3.0})


@pytest.mark.parametrize(("minval", "maxval"), [(0.5, 0.5), (1.0, -1.0)])
def test_random_uniform_needs_minval_below_maxval(minval, maxval):
    with pytest.raises(ConfigError, match="minval < maxval"):
        initializers.random_uniform(minval, maxval)


@pytest.mark.parametrize("stddev", [0.0, -0.1])
def test_random_normal_needs_positive_stddev(stddev):
    with pytest.raises(ConfigError, match="stddev > 0"):
        initializers.random_normal(stddev=stddev)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "0.1"])
def test_arguments_must_be_finite_numbers(bad):
    with pytest.raises(ConfigError, match="finite number"):
        Initializer("random_normal", (("mean", bad),))
    with pytest.raises(ConfigError, match="finite number"):
        as_initializer({"name": "random_uniform", "maxval": bad})


def test_bool_arguments_are_rejected():
    with pytest.raises(ConfigError, match="finite number"):
        Initializer("random_uniform", (("minval", False),))
