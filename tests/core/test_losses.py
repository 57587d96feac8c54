"""Losses and metrics against scikit-learn and NumPy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error

from stablelearn import losses
from stablelearn.errors import ConfigError

RNG = np.random.default_rng(0)
EPS = 1e-7


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def _row(a) -> jax.Array:
    """The engine passes outputs as [units, batch]; these tests use one unit."""
    a = jnp.asarray(a)
    return a[None, :] if a.ndim == 1 else a


def _per_example_loss(loss, logits, output, y, form):
    return losses.per_example_loss(loss, _row(logits), _row(output), y, form)


def _per_example_metric(metric, output, y):
    return losses.per_example_metric(metric, _row(output), y)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _bce(form: str, logits, y) -> np.ndarray:
    logits = _f32(logits)
    out = _per_example_loss("binary_crossentropy", logits, jax.nn.sigmoid(logits), _f32(y), form)
    return np.asarray(out, np.float64)


def _numpy_clipped_bce(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_mse_matches_sklearn():
    y = RNG.normal(size=50)
    out = y + RNG.normal(size=50)
    per_row = _per_example_loss("mse", _f32(out), _f32(out), _f32(y), "logits")
    np.testing.assert_allclose(np.asarray(per_row), (out - y) ** 2, rtol=1e-5)
    mean = losses.weighted_mean(per_row, jnp.ones(50))
    assert float(mean) == pytest.approx(mean_squared_error(y, out), rel=1e-5)


def test_mse_ignores_logits_argument():
    y, out = _f32([1.0, 2.0]), _f32([1.5, 0.0])
    a = _per_example_loss("mse", _f32([100.0, -100.0]), out, y, "logits")
    b = _per_example_loss("mse", out, out, y, "clipped")
    np.testing.assert_array_equal(np.asarray(a), [0.25, 4.0])
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_clipped_bce_matches_numpy_including_the_clip():
    logits = np.concatenate([RNG.normal(scale=3, size=40), [-30.0, -20.0, 20.0, 30.0]])
    y = RNG.integers(0, 2, size=logits.size).astype(np.float64)
    y[-4:] = [1.0, 1.0, 0.0, 0.0]  # confidently wrong: the clip decides the loss
    p = np.asarray(jax.nn.sigmoid(_f32(logits)), np.float64)
    got = _bce("clipped", logits, y)
    np.testing.assert_allclose(got[:-4], _numpy_clipped_bce(p, y)[:-4], rtol=1e-4, atol=1e-6)
    # beyond the clip the loss saturates at -log(eps) (float32 rounding of 1 - eps aside)
    np.testing.assert_allclose(got[-4:], -math.log(EPS), rtol=0.02)


def test_clipped_bce_matches_sklearn_log_loss_away_from_clip():
    p = RNG.uniform(0.02, 0.98, size=200)
    y = RNG.integers(0, 2, size=200).astype(np.float64)
    logits = np.log(p / (1 - p))
    per_row = _per_example_loss("binary_crossentropy", _f32(logits), _f32(p), _f32(y), "clipped")
    mean = float(losses.weighted_mean(per_row, jnp.ones(200)))
    assert mean == pytest.approx(log_loss(y, p, labels=[0, 1]), rel=1e-5)


def test_logits_bce_equals_clipped_for_moderate_logits():
    logits = np.linspace(-5.0, 5.0, 41)
    for label in (0.0, 1.0):
        y = np.full_like(logits, label)
        np.testing.assert_allclose(
            _bce("logits", logits, y), _bce("clipped", logits, y), rtol=1e-4, atol=1e-6
        )
        expected = -(label * np.log(_sigmoid(logits)) + (1 - label) * np.log(1 - _sigmoid(logits)))
        np.testing.assert_allclose(_bce("logits", logits, y), expected, rtol=1e-5, atol=1e-6)


def test_logits_bce_is_finite_for_huge_logits_where_clipped_saturates():
    logits = np.array([-100.0, 100.0, 100.0, -100.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])  # two wrong, two right
    exact = _bce("logits", logits, y)
    assert np.all(np.isfinite(exact))
    assert np.all(exact >= 0.0)
    np.testing.assert_allclose(exact[:2], [100.0, 100.0], rtol=1e-6)
    np.testing.assert_allclose(exact[2:], [0.0, 0.0], atol=1e-30)
    clipped = _bce("clipped", logits, y)
    np.testing.assert_allclose(clipped[:2], -math.log(EPS), rtol=0.02)  # ~16, not 100
    assert np.all(clipped[2:] < 1e-6)


@pytest.mark.slow
def test_clipped_bce_has_zero_gradient_past_the_clip():
    """Why the logits form is the default: the clipped loss stops learning once saturated."""

    def loss(z, form):
        z = jnp.reshape(z, (1, 1))  # one unit, one row
        return _per_example_loss("binary_crossentropy", z, jax.nn.sigmoid(z), jnp.ones(1), form)[0]

    z = jnp.float32(-30.0)
    assert float(jax.grad(loss)(z, "clipped")) == 0.0
    # d/dz of the logits form is sigmoid(z) - y
    assert float(jax.grad(loss)(z, "logits")) == pytest.approx(-1.0, abs=1e-6)


def test_accuracy_uses_strict_threshold():
    output = _f32([0.5, 0.5, 0.50001, 0.49999, 0.9, 0.1])
    y = _f32([0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    got = _per_example_metric("accuracy", output, y)
    # 0.5 exactly predicts class 0 (Keras: output > threshold)
    np.testing.assert_array_equal(np.asarray(got), [1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    assert got.dtype == jnp.float32


def test_regression_metrics_match_sklearn():
    y = RNG.normal(size=30)
    out = y + RNG.normal(scale=0.5, size=30)
    weights = jnp.ones(30)
    values = {
        m: float(
            losses.finish_metric(
                m,
                losses.weighted_mean(_per_example_metric(m, _f32(out), _f32(y)), weights),
            )
        )
        for m in losses.REGRESSION_METRICS
    }
    assert values["mae"] == pytest.approx(mean_absolute_error(y, out), rel=1e-5)
    assert values["mse"] == pytest.approx(mean_squared_error(y, out), rel=1e-5)
    assert values["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, out)), rel=1e-5)


def test_weighted_mean_ignores_zero_weight_rows():
    values = _f32([1.0, 2.0, 3.0, 1000.0, -50.0])
    weights = _f32([1.0, 1.0, 1.0, 0.0, 0.0])
    assert float(losses.weighted_mean(values, weights)) == pytest.approx(2.0)
    # the same as the plain mean of the real rows, whatever the padding holds
    padded = _f32([1.0, 2.0, 3.0, 7.0, 7.0])
    assert float(losses.weighted_mean(padded, weights)) == pytest.approx(2.0)


def test_weighted_mean_with_partial_weights():
    values = _f32([1.0, 3.0])
    assert float(losses.weighted_mean(values, _f32([3.0, 1.0]))) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("mse", "mse"),
        ("mean_squared_error", "mse"),
        ("binary_crossentropy", "binary_crossentropy"),
        ("bce", "binary_crossentropy"),
    ],
)
def test_canonical_loss_aliases(name, canonical):
    assert losses.canonical_loss(name) == canonical


@pytest.mark.parametrize("bad", ["hinge", "MSE", "crossentropy", ""])
def test_unknown_loss(bad):
    with pytest.raises(ConfigError, match=rf"Unknown loss {bad!r}.*mse, binary_crossentropy"):
        losses.canonical_loss(bad)


def test_check_metrics_accepts_matching_metrics():
    assert losses.check_metrics("mse", ["mae", "rmse"]) == ("mae", "rmse")
    assert losses.check_metrics("binary_crossentropy", ("accuracy",)) == ("accuracy",)
    assert losses.check_metrics("mse", ()) == ()


def test_check_metrics_rejects_accuracy_for_mse():
    with pytest.raises(ConfigError, match=r"'accuracy' does not fit loss 'mse'.*mae, mse, rmse"):
        losses.check_metrics("mse", ("accuracy",))


def test_check_metrics_rejects_regression_metric_for_bce():
    with pytest.raises(ConfigError, match="'mae' does not fit loss 'binary_crossentropy'"):
        losses.check_metrics("binary_crossentropy", ("accuracy", "mae"))


def test_sparse_categorical_crossentropy_matches_sklearn_log_loss():
    logits = RNG.normal(size=(4, 50)).astype(np.float32)
    y = RNG.integers(0, 4, size=50)
    per_row = losses.per_example_loss(
        "sparse_categorical_crossentropy",
        _f32(logits),
        jax.nn.softmax(_f32(logits), axis=0),
        _f32(y),
        "logits",
    )
    probs = np.exp(logits) / np.exp(logits).sum(axis=0)
    np.testing.assert_allclose(
        float(jnp.mean(per_row)), log_loss(y, probs.T, labels=range(4)), rtol=1e-5
    )


def test_multiclass_accuracy_is_argmax():
    output = _f32([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.1, 0.2, 0.7]]).T  # [classes, batch]
    got = losses.per_example_metric("accuracy", output, _f32([1, 0, 1]))
    np.testing.assert_array_equal(got, [1.0, 1.0, 0.0])


def test_categorical_crossentropy_is_an_alias():
    assert losses.canonical_loss("categorical_crossentropy") == "sparse_categorical_crossentropy"
