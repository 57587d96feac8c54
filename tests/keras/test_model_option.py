"""A saved Keras model in the CLI (doctor --model, train --model) and in experiment files
(model_file), and the doctor's recommendation as Keras code."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stablelearn.cli import app
from stablelearn.experiments import load_mapping
from stablelearn.keras.code import keras_changes, optimizer_code
from stablelearn.optim import SGD, Adam

L = keras.layers
runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    frame = pd.DataFrame(x, columns=list("abcd")).assign(y=x @ [3.0, -2.0, 1.0, 0.5] * 100)
    frame.to_csv(folder / "data.csv", index=False)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            L.Dense(8, activation="relu", kernel_initializer="he_uniform"),
            L.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    model.save(folder / "model.keras")
    wide = keras.Sequential([keras.Input((7,)), L.Dense(1)])
    wide.save(folder / "wide.keras")
    return folder


@pytest.mark.slow
def test_doctor_with_a_keras_model_prints_the_keras_fix(files):
    out = files / "doctor"
    result = runner.invoke(app, [
        "doctor", str(files / "data.csv"), "--target", "y", "--model", str(files / "model.keras"),
        "--repeats", "4", "--epochs", "8", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "diagnosis.json").read_text())
    assert doc["configuration"]["model"]["hidden"][0]["units"] == 8
    assert doc["configuration"]["optimizer"] == {
        "name": "sgd",
        "learning_rate": 0.01,
        "momentum": 0.9,
        "nesterov": False,
    }
    assert "exploding_gradients" in [f["id"] for f in doc["findings"]]
    if doc["recommended"] is not None:
        assert doc["recommended"]["keras_code"]
        assert "In Keras:" in result.output


@pytest.mark.slow
def test_train_with_a_keras_model(files):
    model = keras.Sequential(
        [keras.Input((2,)), L.Dense(4, activation="tanh"), L.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.save(files / "circles.keras")
    result = runner.invoke(app, ["train", "--data", "lesson-circles", "--model", str(files / "circles.keras"),
                                 "--repeats", "2", "--epochs", "3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2-4(tanh)-1(sigmoid)" in result.output and "Adam(lr=0.01" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["doctor", "{d}/data.csv", "--target", "y", "--model", "{d}/wide.keras"], "takes 7 input features but the data"),
        (["doctor", "{d}/data.csv", "--target", "y", "--model", "{d}/data.csv"], "not a Keras model file"),
        (["doctor", "{d}/data.csv", "--target", "y", "--model", "{d}/none.keras"], "No Keras model file"),
        (["train", "--model", "{d}/model.keras", "--depth", "3"], "drop --depth"),
        (["train", "--model", "{d}/model.keras"], "takes 4 input features but lesson-regression has 20"),
    ],
)  # fmt: skip
def test_bad_model_options_exit_2_with_one_line(files, args, message):
    result = runner.invoke(app, [a.format(d=files) for a in args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_experiment_file_takes_a_model_file_and_its_optimizer(files):
    raw = {
        "id": "k",
        "dataset": "data.csv",
        "target": "y",
        "model_file": "model.keras",
        "epochs": 2,
    }
    experiment = load_mapping(raw, "k.toml", files)
    variant = experiment.variants[0]
    assert variant.model.describe() == "4-8(relu)-1(linear)"
    assert variant.optimizer == SGD(0.01, 0.9)
    own = load_mapping({**raw, "optimizer": {"name": "adam"}}, "k.toml", files)
    assert own.variants[0].optimizer == Adam()
    with pytest.raises(Exception, match="alternatives"):
        load_mapping({**raw, "model": {"output": {"units": 1}}}, "k.toml", files)


def test_keras_code_names_only_what_changed():
    assert optimizer_code(SGD(0.01, 0.9, clipnorm=1.0)) == (
        "keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, clipnorm=1.0)"
    )
    assert optimizer_code(Adam()) == "keras.optimizers.Adam(learning_rate=0.001)"
    raw = {"id": "c", "dataset": "lesson-regression", "model": {"depth": 3, "units": 5, "activation": "tanh",
           "output": {"units": 1}}}  # fmt: skip
    before = load_mapping(raw, "c").variants[0]
    after = load_mapping(
        {**raw, "model": {**raw["model"], "activation": "leaky_relu(negative_slope=0.3)",
                          "kernel_initializer": "he_uniform"},
         "data": {"target_scaler": "standard"}}, "c",
    ).variants[0]  # fmt: skip
    lines = keras_changes(before, after)
    assert lines[0].startswith("target: y_scaler = sklearn.preprocessing.StandardScaler()")
    assert lines[1] == (
        "hidden layers: 3 x keras.layers.Dense(5, kernel_initializer='he_uniform'), "
        "keras.layers.LeakyReLU(negative_slope=0.3)"
    )
    assert len(lines) == 2
