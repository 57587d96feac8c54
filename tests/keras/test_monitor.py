"""Monitor: a Keras callback that records the engine's telemetry on any Keras model and
diagnoses it with the doctor's detectors."""

import json

import keras
import numpy as np
import pytest

from stablelearn.errors import ConfigError
from stablelearn.keras import Monitor

L = keras.layers


def _regression(n=256, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x @ rng.normal(size=8) * scale + scale).astype("float32")
    return x, y


def _mlp(optimizer=None, depth=1, activation="relu", units=16):
    keras.utils.set_random_seed(0)
    layers = [
        L.Dense(units, activation=activation, kernel_initializer="he_uniform") for _ in range(depth)
    ]
    model = keras.Sequential([keras.Input((8,)), *layers, L.Dense(1)])
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    return model


def test_healthy_model_records_every_layer_and_finds_nothing(tmp_path):
    x, y = _regression()
    monitor = Monitor(probe=(x, y), out=tmp_path / "run")
    _mlp().fit(x, y, epochs=4, batch_size=32, callbacks=[monitor], verbose=0)
    obs = monitor.observation()
    assert obs.loss.shape == (1, 4) and np.isfinite(obs.loss).all()
    assert obs.telemetry["grad_norm"].shape == (1, 4, 2)
    assert (obs.telemetry["grad_norm"] > 0).all() and (obs.telemetry["update_ratio"] > 0).all()
    assert obs.telemetry["dead_fraction"].shape == (1, 4, 1)
    assert monitor.first_nonfinite is None
    assert [f.severity for f in monitor.findings()] == []
    doc = json.loads((tmp_path / "run" / "diagnosis.json").read_text())
    assert {"schema_version", "findings", "candidates", "recommended", "summary", "layers"} <= set(
        doc
    )
    assert doc["source"] == "stablelearn.keras.Monitor" and doc["epochs"] == 4
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<p class='callout-title'>No problem found: the model trains normally" in page
    assert page.count("class='vega-chart'") == 2  # the loss, each layer's gradient norm
    assert "<dd>SGD, learning rate 0.01, momentum 0.9</dd>" in page
    assert "<caption>Each layer at epoch 4</caption>" in page
    assert (
        "![Training loss per epoch](training.png)" in (tmp_path / "run" / "report.md").read_text()
    )


@pytest.mark.slow
def test_the_gradient_is_the_one_keras_computes_before_clipping():
    import jax

    x, y = _regression(n=64)
    model = _mlp(keras.optimizers.SGD(0.01, clipnorm=1e-3))
    monitor = Monitor(probe=(x, y), probe_size=64)
    model.fit(x, y, epochs=1, batch_size=64, callbacks=[monitor], verbose=0)
    trainable = [v.value for v in model.trainable_variables]

    def loss(values):
        pred, _ = model.stateless_call(values, [v.value for v in model.non_trainable_variables], x)
        return keras.ops.mean((pred[:, 0] - y) ** 2)

    grads = jax.grad(loss)(trainable)
    expected = [
        float(np.sqrt(sum(np.sum(np.asarray(g) ** 2) for g in grads[i : i + 2]))) for i in (0, 2)
    ]
    recorded = monitor.observation().telemetry["grad_norm"][0, 0]
    np.testing.assert_allclose(recorded, expected, rtol=1e-4)
    assert recorded.max() > 1e-3  # clipping did not shrink what was recorded


@pytest.mark.slow
def test_weight_norms_and_update_ratios_are_those_of_the_weights_keras_trained():
    """The probe's device-side statistics equal NumPy's on the weights at each epoch's end."""

    class Weights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seen = [[np.array(v) for v in self.model.get_weights()]]

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append([np.array(v) for v in self.model.get_weights()])

    x, y = _regression(n=64)
    weights, monitor = Weights(), Monitor(probe=(x, y))
    _mlp().fit(x, y, epochs=3, batch_size=32, callbacks=[weights, monitor], verbose=0)
    telemetry = monitor.observation().telemetry

    def norm(arrays):
        return np.sqrt(sum(np.sum(np.square(a.astype(np.float64))) for a in arrays))

    for epoch in range(3):
        now, before = weights.seen[epoch + 1], weights.seen[epoch]
        for layer, (k, b) in enumerate([(0, 1), (2, 3)]):
            moved = norm([now[k] - before[k], now[b] - before[b]])
            expected = moved / norm([before[k], before[b]])
            recorded = telemetry["update_ratio"][0, epoch, layer]
            np.testing.assert_allclose(recorded, expected, rtol=1e-4)
            np.testing.assert_allclose(
                telemetry["weight_norm"][0, epoch, layer], norm([now[k], now[b]]), rtol=1e-5
            )


def test_the_default_probe_is_a_sixteenth_of_the_rows_within_bounds():
    x, y = np.zeros((1600, 2), "float32"), np.zeros(1600, "float32")
    assert len(Monitor(probe=(x, y)).probe_x) == 100
    assert len(Monitor(probe=(x[:100], y[:100])).probe_x) == 32
    assert len(Monitor(probe=(x[:10], y[:10])).probe_x) == 10
    assert len(Monitor(probe=(np.zeros((9000, 2)), np.zeros(9000))).probe_x) == 256


@pytest.mark.slow
def test_exploding_model_is_stopped_with_the_layer_named(capsys):
    x, y = _regression(scale=1e4)
    monitor = Monitor(probe=(x, y), stop_on="critical")
    history = _mlp().fit(x, y, epochs=20, batch_size=32, callbacks=[monitor], verbose=0)
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    bad = monitor.first_nonfinite
    assert bad is not None and bad.epoch == 1 and bad.layer is not None
    assert bad.direction in ("forward", "backward")
    ids = [f.id for f in monitor.findings()]
    assert ids[0] == "exploding_gradients"
    printed = capsys.readouterr().out
    assert "stopped training" in printed and "Exploding gradients" in printed


@pytest.mark.slow
def test_dead_relus_in_a_convolutional_model_are_found():
    """Any model: a CNN whose ReLUs all die (a large negative bias) is flagged."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Conv2D(4, 3, activation="relu", bias_initializer=keras.initializers.Constant(-50.0)),
        L.Flatten(),
        L.Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    monitor = Monitor(probe=(x, y))
    model.fit(x, y, epochs=2, batch_size=32, callbacks=[monitor], verbose=0)
    dead = monitor.observation().telemetry["dead_fraction"]
    assert dead.shape == (1, 2, 1) and dead[0, -1, 0] == 1.0
    assert "dying_relu" in [f.id for f in monitor.findings()]


@pytest.mark.slow
def test_subclassed_model_gets_weight_and_gradient_statistics():
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = L.Dense(4, activation="tanh"), L.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

    x, y = _regression(n=64)
    model = Tiny()
    model.compile(optimizer="adam", loss="mse")
    monitor = Monitor(probe=(x, y), every=3)
    model.fit(x, y, epochs=4, batch_size=32, callbacks=[monitor], verbose=0)
    grad = monitor.observation().telemetry["grad_norm"][0]
    assert np.isfinite(grad[[0, 2, 3]]).all() and np.isnan(grad[1]).all()  # 1, 3 and the last
    assert np.isnan(monitor.observation().telemetry["saturated_fraction"]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probe": "x"}, "probe=\\(x_train, y_train\\)"),
        ({"probe": (np.zeros((3, 2)), np.zeros(2))}, "same number of rows"),
        ({"probe": (np.zeros((3, 2)), np.zeros(3)), "every": 0}, "every"),
        ({"probe": (np.zeros((3, 2)), np.zeros(3)), "stop_on": "nan"}, "stop_on"),
    ],
)
def test_bad_arguments_are_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Monitor(**kwargs)
