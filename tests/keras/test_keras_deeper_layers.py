"""Fidelity of batch normalization and skip connections against Keras itself.

The same initial weights, no shuffling, batches of 12 rows with a smaller last batch of 8
(which the engine pads to 12 with zero-weight rows): stablelearn's epoch losses, final
weights, moving statistics and evaluation scores equal Keras' to float tolerance. The
Keras models are written as Keras users write them: Dense -> BatchNormalization() ->
Activation, and the functional x = Add()([x, Dense(units, activation)(x)]).
"""

import keras
import numpy as np
import pytest
from keras import layers as L

import stablelearn as sl

pytestmark = pytest.mark.slow
EPOCHS, BATCH = 4, 12


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)) * [1.0, 3.0, 0.5]
    y = np.tanh(x @ rng.normal(size=3)) * 2 + 1
    return sl.prepare(sl.Dataset(x, y), n_train=32)


def _keras_model(batch_norm: bool, residual: bool):
    """Input(3) -> Dense(4, relu) -> [Add] Dense(4, relu) -> Dense(1), with batch norm
    before each hidden activation and a skip connection around the second layer."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((3,))
    dense = []

    def block(x):
        layer = L.Dense(4, kernel_initializer="he_uniform")
        dense.append(layer)
        h = layer(x)
        if batch_norm:
            h = L.BatchNormalization()(h)
        return L.Activation("relu")(h)

    x = block(inputs)
    x = L.Add()([x, block(x)]) if residual else block(x)
    output = L.Dense(1)
    dense.append(output)
    model = keras.Model(inputs, output(x))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    return model, dense


def _ours(model: sl.MLP, dense) -> tuple:
    params = []
    for spec, layer in zip(model.layers, dense, strict=True):
        kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
        params.append({"kernel": kernel.T.copy(), "bias": bias})
        if spec.batch_norm:
            params[-1] |= {"gamma": np.ones(4, np.float32), "beta": np.zeros(4, np.float32)}
    return tuple(params)


@pytest.mark.parametrize(
    "batch_norm, residual", [(True, False), (False, True), (True, True)], ids=["bn", "res", "both"]
)
def test_losses_weights_moving_statistics_and_scores_equal_keras(batch_norm, residual):
    data = _data()
    theirs, dense = _keras_model(batch_norm, residual)
    model = sl.MLP.stack(3, 2, 4, "relu", "he_uniform", batch_norm=batch_norm, residual=residual)
    start = _ours(model, dense)
    history = theirs.fit(
        data.train_x, data.train_y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0
    )
    settings = {"epochs": EPOCHS, "batch_size": BATCH, "shuffle": False, "telemetry": False}
    result = sl.fit(model, sl.SGD(0.01, momentum=0.9), data, [0], initial_params=start, **settings)

    np.testing.assert_allclose(result.history["loss"][0], history.history["loss"], rtol=1e-5)
    final = result.final_params[0]
    for ours, layer in zip(final, dense, strict=True):
        kernel, bias = layer.get_weights()
        np.testing.assert_allclose(ours["kernel"].T, kernel, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours["bias"], bias, rtol=1e-4, atol=1e-6)
    norms = [layer for layer in theirs.layers if isinstance(layer, L.BatchNormalization)]
    for ours, norm in zip((layer for layer in final if "gamma" in layer), norms, strict=True):
        gamma, beta, mean, variance = norm.get_weights()
        for key, want in (
            ("gamma", gamma),
            ("beta", beta),
            ("moving_mean", mean),
            ("moving_variance", variance),
        ):
            np.testing.assert_allclose(ours[key], want, rtol=1e-4, atol=1e-6, err_msg=key)
    assert len(norms) == (2 if batch_norm else 0)
    # evaluate() normalizes with the moving statistics, as ours does
    for split, x, y in (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
        scores = getattr(result, f"{split}_scores")["loss"][0]
        np.testing.assert_allclose(scores, theirs.evaluate(x, y, verbose=0), rtol=1e-4)
