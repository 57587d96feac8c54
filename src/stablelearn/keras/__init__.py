"""Your own Keras 3 model in stablelearn (the `stablelearn[keras]` extra).

- `from_keras(model)`: a Sequential or functional chain of Dense layers, with its compiled
  optimizer and loss, as stablelearn's spec, to train over seeds, diagnose and repair.
- `Monitor`: a Keras callback for any Keras 3 model (JAX, TensorFlow or PyTorch backend)
  that records the engine's telemetry per layer and runs stablelearn's detectors.

Importing this package does not import Keras; `Monitor` does, when first used.
"""

from typing import Any

from stablelearn.keras.convert import KerasSpec, from_keras, load_model_file, spec_from_file

__all__ = ["KerasSpec", "Monitor", "from_keras", "load_model_file", "spec_from_file"]


def __getattr__(name: str) -> Any:
    if name == "Monitor":
        from stablelearn.keras.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'stablelearn.keras' has no attribute {name!r}")
