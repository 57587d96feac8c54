"""stablelearn: make neural-network training problems visible, measurable and fixable.

The simple path::

    import stablelearn as sl

    data = sl.prepare(sl.lesson_regression(), target_scaler="standard", n_train=500)
    model = sl.MLP(20, (sl.Dense(25, "relu", "he_uniform"),), sl.Dense(1))
    result = sl.fit(model, sl.SGD(learning_rate=0.01, momentum=0.9), data, seeds=30)
    result.test_scores["loss"]  # test MSE of each of the 30 models
"""

from typing import TYPE_CHECKING

# Names load on first use (PEP 562), so `import stablelearn` and the command line's
# --help, list and show start without importing JAX, scikit-learn, SciPy or matplotlib.
_SOURCES = {
    "stablelearn.compile_cache": ("enable_compile_cache",),
    "stablelearn.data": ("Dataset", "PreparedData", "Scaler", "lesson_circles",
                         "lesson_regression", "prepare"),
    "stablelearn.engine": ("Run", "TrainConfig", "fit", "init_ensemble", "train"),
    "stablelearn.errors": ("ConfigError", "DataError", "StablelearnError"),
    "stablelearn.initializers": ("Initializer", "random_normal", "random_uniform"),
    "stablelearn.keras.convert": ("KerasSpec", "from_keras"),
    "stablelearn.model": ("MLP", "Dense"),
    "stablelearn.optim": ("SGD", "Adam", "RMSprop", "make_optimizer"),
    "stablelearn.results": ("Timing", "TrainResult"),
    "stablelearn.torch.convert": ("TorchSpec", "from_torch"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

if TYPE_CHECKING:
    from stablelearn.compile_cache import enable_compile_cache
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
    from stablelearn.torch.convert import TorchSpec, from_torch


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'stablelearn' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


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
    "TorchSpec",
    "TrainConfig",
    "TrainResult",
    "enable_compile_cache",
    "fit",
    "from_keras",
    "from_torch",
    "init_ensemble",
    "lesson_circles",
    "lesson_regression",
    "make_optimizer",
    "prepare",
    "random_normal",
    "random_uniform",
    "train",
]
