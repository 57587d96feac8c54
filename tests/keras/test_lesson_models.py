"""Fidelity on the lesson's own Keras models: converted with from_keras, they train in
stablelearn to the same distributions as in Keras (small repeats and epochs)."""

import keras
import numpy as np
import pytest
from keras.layers import Dense
from keras.models import Sequential
from keras.optimizers import SGD

import stablelearn as sl

pytestmark = pytest.mark.slow
SEEDS = 4


def lesson_model():
    """The lesson's regression MLP, written as the lesson writes it."""
    model = Sequential()
    model.add(Dense(25, input_dim=20, activation="relu", kernel_initializer="he_uniform"))
    model.add(Dense(1, activation="linear"))
    model.compile(loss="mean_squared_error", optimizer=SGD(learning_rate=0.01, momentum=0.9))
    return model


def _keras_scores(data, epochs):
    scores = []
    for seed in range(SEEDS):
        keras.utils.set_random_seed(seed)
        model = lesson_model()
        model.fit(data.train_x, data.train_y, epochs=epochs, batch_size=32, verbose=0)
        scores.append(model.evaluate(data.test_x, data.test_y, verbose=0))
    return np.asarray(scores, float)


def test_standardized_target_trains_to_the_keras_distribution():
    data = sl.prepare(sl.lesson_regression(), target_scaler="standard", n_train=500)
    theirs = _keras_scores(data, epochs=15)
    spec = sl.from_keras(lesson_model())
    ours = spec.fit(data, seeds=SEEDS, epochs=15).test_scores["loss"]
    assert np.isfinite(theirs).all() and np.isfinite(ours).all()
    ratio = np.median(ours) / np.median(theirs)
    assert 0.5 < ratio < 2.0, (ours, theirs)
    assert ours.max() > theirs.min() and theirs.max() > ours.min()  # the spreads overlap


def test_unscaled_target_diverges_in_both():
    data = sl.prepare(sl.lesson_regression(), n_train=500)
    theirs = _keras_scores(data, epochs=2)
    result = sl.from_keras(lesson_model()).fit(data, seeds=SEEDS, epochs=2)
    assert not np.isfinite(theirs).any()
    assert result.diverged.all()
