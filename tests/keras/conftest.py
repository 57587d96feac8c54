"""Keras runs on its JAX backend in these tests unless KERAS_BACKEND says otherwise;
without Keras installed the whole folder is skipped."""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")


@pytest.fixture(autouse=True)
def _fresh_keras_names():
    keras.backend.clear_session()
    yield
