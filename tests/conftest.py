"""Shared, session-scoped fixtures: JAX compilation dominates small tests, so tests
reuse a handful of datasets, model specs and ensemble sizes to hit the same compiled
programs."""

import pytest

import stablelearn as sl


@pytest.fixture(scope="session")
def regression() -> sl.Dataset:
    return sl.lesson_regression()


@pytest.fixture(scope="session")
def scaled_target(regression: sl.Dataset) -> sl.PreparedData:
    """The lesson's data with a standardized target (section 2.1.2.2)."""
    return sl.prepare(regression, target_scaler="standard", n_train=500)


@pytest.fixture(scope="session")
def unscaled(regression: sl.Dataset) -> sl.PreparedData:
    """The lesson's raw data: the target's spread is in the hundreds."""
    return sl.prepare(regression, n_train=500)


@pytest.fixture(scope="session")
def lesson_mlp() -> sl.MLP:
    """The lesson's regression MLP: 20 inputs, Dense(25, relu, he_uniform), Dense(1)."""
    return sl.MLP(20, (sl.Dense(25, "relu", "he_uniform"),), sl.Dense(1))


@pytest.fixture(scope="session")
def lesson_sgd() -> sl.SGD:
    return sl.SGD(learning_rate=0.01, momentum=0.9)
