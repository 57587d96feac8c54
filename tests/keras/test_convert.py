"""from_keras: Keras models, optimizers and losses as stablelearn specs, and the proof
that a converted model trains as Keras trains it (same weights, same steps)."""

import keras
import numpy as np
import pytest

import stablelearn as sl
from stablelearn.initializers import Initializer
from stablelearn.keras.convert import keras_initializer, load_model_file, spec_from_file
from stablelearn.model import forward

L = keras.layers


def _sequential(*layers, inputs=3):
    return keras.Sequential([keras.Input((inputs,)), *layers])


def test_sequential_with_activation_layers_becomes_the_same_mlp():
    model = _sequential(
        L.Dense(4, kernel_initializer="he_uniform"), L.ReLU(),
        L.Dense(4), L.LeakyReLU(),
        L.Dense(4), L.LeakyReLU(negative_slope=0.01),
        L.Dense(4), L.ELU(alpha=0.5),
        L.Dense(4), L.Activation("tanh"),
        L.Dense(4, activation="swish", use_bias=False),
        L.Dense(2), L.Softmax(),
    )  # fmt: skip
    spec = sl.from_keras(model)
    activations = [layer.activation for layer in spec.model.layers]
    assert activations == [
        "relu", "leaky_relu(negative_slope=0.3)", "leaky_relu(negative_slope=0.01)",
        "elu(alpha=0.5)", "tanh", "silu", "softmax",
    ]  # fmt: skip
    assert spec.model.input_dim == 3
    assert spec.model.hidden[0].kernel_initializer == Initializer("he_uniform")
    assert not spec.model.hidden[5].use_bias
    assert spec.optimizer is None and spec.loss is None
    assert len(spec.layer_names) == 7


def test_functional_chain_equals_the_sequential_model():
    inputs = keras.Input((3,))
    hidden = L.Dense(5, activation="relu", kernel_initializer="he_normal")(inputs)
    outputs = L.Dense(1, activation="sigmoid")(hidden)
    functional = sl.from_keras(keras.Model(inputs, outputs))
    sequential = sl.from_keras(
        _sequential(L.Dense(5, "relu", kernel_initializer="he_normal"), L.Dense(1, "sigmoid"))
    )
    assert functional.model == sequential.model


@pytest.mark.parametrize(
    ("initializer", "expected"),
    [
        ("glorot_uniform", Initializer("glorot_uniform")),
        (keras.initializers.HeNormal(seed=3), Initializer("he_normal")),
        (keras.initializers.VarianceScaling(2.0, "fan_in", "uniform"), Initializer("he_uniform")),
        (keras.initializers.Constant(1.0), Initializer("ones")),
        (keras.initializers.RandomUniform(-0.1, 0.2), sl.random_uniform(-0.1, 0.2)),
        (keras.initializers.RandomNormal(0.5, 2.0), sl.random_normal(0.5, 2.0)),
    ],
)
def test_initializers_by_name_or_object(initializer, expected):
    layer = L.Dense(2, kernel_initializer=initializer)
    assert keras_initializer(layer.get_config()["kernel_initializer"], "here") == expected


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        (keras.optimizers.SGD(0.01, momentum=0.9, clipnorm=1.0), sl.SGD(0.01, 0.9, clipnorm=1.0)),
        (keras.optimizers.SGD(0.1, momentum=0.5, nesterov=True, clipvalue=5.0),
         sl.SGD(0.1, 0.5, True, clipvalue=5.0)),
        (keras.optimizers.Adam(0.003, beta_1=0.8, global_clipnorm=2.0),
         sl.Adam(0.003, 0.8, global_clipnorm=2.0)),
        (keras.optimizers.RMSprop(0.002, rho=0.8, momentum=0.1), sl.RMSprop(0.002, 0.8, 0.1)),
    ],
)  # fmt: skip
def test_compiled_optimizer_and_learning_rate_as_written(optimizer, expected):
    model = _sequential(L.Dense(1))
    model.compile(optimizer=optimizer, loss="mse")
    spec = sl.from_keras(model)
    assert spec.optimizer == expected
    assert spec.loss == "mse"


@pytest.mark.parametrize(
    ("loss", "output", "expected", "form"),
    [
        ("mean_squared_error", "linear", "mse", None),
        (keras.losses.MeanSquaredError(), "linear", "mse", None),
        ("binary_crossentropy", "sigmoid", "binary_crossentropy", "clipped"),
        (keras.losses.BinaryCrossentropy(from_logits=True), "linear", "binary_crossentropy", "logits"),
    ],
)  # fmt: skip
def test_losses_and_logits(loss, output, expected, form):
    model = _sequential(L.Dense(1, activation=output))
    model.compile(optimizer="sgd", loss=loss)
    spec = sl.from_keras(model)
    assert spec.loss == expected
    if form:  # Keras' JAX backend clips probabilities; from logits there is nothing to clip
        assert spec.bce_form == form
        assert spec.model.output.activation == "sigmoid"


def test_sparse_categorical_from_logits_gets_a_softmax_output():
    model = _sequential(L.Dense(3))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    assert sl.from_keras(model).model.output.activation == "softmax"


class _Custom(L.Layer):
    def call(self, x):
        return x


def _compiled(optimizer="sgd", loss="mse", layers=None):
    model = _sequential(*(layers or [L.Dense(1)]))
    model.compile(optimizer=optimizer, loss=loss)
    return model


def _branching():
    inputs = keras.Input((3,))
    return keras.Model(inputs, L.Add()([L.Dense(2)(inputs), L.Dense(2)(inputs)]))


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: _sequential(L.Dense(4), L.Dropout(0.5), L.Dense(1)), "Dropout"),
        (lambda: keras.Sequential([keras.Input((5, 2)), L.Conv1D(2, 2)]), "input shape"),
        (lambda: _sequential(L.Dense(4), L.Reshape((2, 2)), L.Conv1D(2, 2)), "Reshape"),
        (lambda: _sequential(L.Dense(4), L.BatchNormalization(), L.Dense(1)), "BatchNormalization"),
        (lambda: _sequential(L.Dense(4), _Custom(), L.Dense(1)), "_Custom"),
        (lambda: _sequential(L.Dense(4, kernel_regularizer="l2")), "kernel_regularizer"),
        (lambda: _sequential(L.Dense(4, activation="relu"), L.ReLU()), "already applies 'relu'"),
        (lambda: _sequential(L.ReLU(), L.Dense(1)), "before the first Dense"),
        (lambda: _sequential(L.Dense(4, activation="hard_sigmoid")), "hard_sigmoid"),
        (lambda: _sequential(L.Dense(4, kernel_initializer="orthogonal")), "Orthogonal"),
        (lambda: _sequential(L.Dense(4), L.ReLU(max_value=1.0)), "max_value"),
        (_branching, "branch"),
        (lambda: _compiled(keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9))), "schedule"),
        (lambda: _compiled(keras.optimizers.AdamW()), "AdamW"),
        (lambda: _compiled(keras.optimizers.SGD(weight_decay=0.01)), "weight_decay"),
        (lambda: _compiled(keras.optimizers.Adam(amsgrad=True)), "amsgrad"),
        (lambda: _compiled(loss="mae"), "'mae'"),
        (lambda: _compiled(loss=keras.losses.BinaryCrossentropy(label_smoothing=0.1), layers=[L.Dense(1, "sigmoid")]), "label smoothing"),
        (lambda: _compiled(loss=keras.losses.BinaryCrossentropy(from_logits=True), layers=[L.Dense(1, "sigmoid")]), "from_logits"),
        (lambda: keras.Sequential([L.Dense(1)]), "not built"),
    ],
)  # fmt: skip
def test_unsupported_parts_are_named_never_dropped(build, named):
    with pytest.raises(sl.ConfigError, match="(?i)" + named.replace("(", r"\(")) as err:
        sl.from_keras(build())
    assert "\n" not in str(err.value)


def _regression_data(n=40, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)) * [1.0, 3.0, 0.5][:features]
    y = x @ rng.normal(size=features) * 5 + 1
    return sl.prepare(sl.Dataset(x, y), n_train=n - 8)


@pytest.mark.slow
def test_copied_weights_give_keras_predictions():
    model = _sequential(L.Dense(6, activation="tanh"), L.Dense(4), L.LeakyReLU(), L.Dense(1))
    spec = sl.from_keras(model, weights=True)
    x = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    _, ours = forward(spec.model, spec.params, x.T)
    np.testing.assert_allclose(
        np.asarray(ours)[0], model.predict(x, verbose=0)[:, 0], rtol=1e-5, atol=1e-6
    )


def _keras_fit(model, data, epochs, batch_size):
    model.fit(
        data.train_x, data.train_y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0
    )
    return [layer.get_weights() for layer in model.layers if isinstance(layer, L.Dense)]


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.SGD(0.01, momentum=0.9, clipnorm=1.0),
        pytest.param(
            lambda: keras.optimizers.SGD(0.005, momentum=0.5, nesterov=True, clipvalue=0.5),
            marks=pytest.mark.slow,
        ),
        pytest.param(
            lambda: keras.optimizers.RMSprop(0.001, momentum=0.2, global_clipnorm=1.0),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_first_steps_match_keras_with_the_same_weights(optimizer):
    """Fidelity: same initial weights, no shuffling, three epochs of 4 batches (the last
    one partial): stablelearn's weights equal Keras' to float tolerance."""
    data = _regression_data()
    model = _sequential(
        L.Dense(5, activation="relu", kernel_initializer="he_uniform"),
        L.Dense(4, use_bias=False), L.ELU(),
        L.Dense(1),
    )  # fmt: skip
    model.compile(optimizer=optimizer(), loss="mse")
    spec = sl.from_keras(model, weights=True)
    expected = _keras_fit(model, data, epochs=3, batch_size=10)
    result = spec.fit(data, seeds=1, epochs=3, batch_size=10, shuffle=False, telemetry=False)
    for ours, theirs in zip(result.final_params[0], expected, strict=True):
        np.testing.assert_allclose(ours["kernel"].T, theirs[0], rtol=2e-5, atol=1e-6)
        if len(theirs) > 1:
            np.testing.assert_allclose(ours["bias"], theirs[1], rtol=2e-5, atol=1e-6)
        else:
            assert not ours["bias"].any()  # use_bias=False stays bias-free


@pytest.mark.slow
def test_binary_cross_entropy_steps_match_keras_on_its_backend():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 2))
    data = sl.prepare(sl.Dataset(x, (x[:, 0] * x[:, 1] > 0).astype(float), "binary"), n_train=32)
    model = _sequential(L.Dense(6, activation="tanh"), L.Dense(1, activation="sigmoid"), inputs=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="binary_crossentropy")
    spec = sl.from_keras(model, weights=True)
    expected = _keras_fit(model, data, epochs=2, batch_size=8)
    result = spec.fit(data, seeds=1, epochs=2, batch_size=8, shuffle=False, telemetry=False)
    for ours, theirs in zip(result.final_params[0], expected, strict=True):
        np.testing.assert_allclose(ours["kernel"].T, theirs[0], rtol=2e-5, atol=1e-6)


@pytest.mark.slow
def test_saved_model_file_round_trip(tmp_path):
    model = _compiled(
        keras.optimizers.Adam(0.01, clipnorm=1.0), layers=[L.Dense(3, "relu"), L.Dense(1)]
    )
    model.save(tmp_path / "m.keras")
    spec = spec_from_file(tmp_path / "m.keras")
    assert spec.model == sl.from_keras(model).model
    assert spec.optimizer == sl.Adam(0.01, clipnorm=1.0)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.keras", None, "No Keras model file"),
        ("data.csv", b"a,b\n1,2\n", "not a Keras model file"),
        ("broken.keras", b"not a zip file", "could not be read as a Keras model"),
    ],
)
def test_bad_model_files_get_one_sentence(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(sl.ConfigError, match=message) as err:
        load_model_file(tmp_path / name)
    assert "\n" not in str(err.value)


def test_input_width_mismatch_is_one_sentence():
    with pytest.raises(sl.ConfigError, match="takes 3 input features, not 5"):
        sl.from_keras(_sequential(L.Dense(1)), input_dim=5)
