"""stablelearn: make neural-network training problems visible, measurable and fixable.

The simple path::

    import stablelearn as sl

    data = sl.prepare(sl.lesson_regression(), target_scaler="standard", n_train=500)
    model = sl.MLP(20, (sl.Dense(25, "relu", "he_uniform"),), sl.Dense(1))
    result = sl.fit(model, sl.SGD(learning_rate=0.01, momentum=0.9), data, seeds=30)
    result.test_scores["loss"]  # test MSE of each of the 30 models
"""

from stablelearn.data import (
    Dataset,
    PreparedData,
    Scaler,
    lesson_circles,
    lesson_regression,
    prepare,
)
from stablelearn.engine import Run, TrainConfig, fit, init_ensemble, train
from stablelearn.errors import ConfigError, DataError, StablelearnError
from stablelearn.initializers import Initializer, random_normal, random_uniform
from stablelearn.keras.convert import KerasSpec, from_keras
from stablelearn.model import MLP, Dense
from stablelearn.optim import SGD, Adam, RMSprop, make_optimizer
from stablelearn.results import Timing, TrainResult

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "SGD",
    "Adam",
    "ConfigError",
    "DataError",
    "Dataset",
    "Dense",
    "Initializer",
    "KerasSpec",
    "PreparedData",
    "RMSprop",
    "Run",
    "Scaler",
    "StablelearnError",
    "Timing",
    "TrainConfig",
    "TrainResult",
    "fit",
    "from_keras",
    "init_ensemble",
    "lesson_circles",
    "lesson_regression",
    "make_optimizer",
    "prepare",
    "random_normal",
    "random_uniform",
    "train",
]
