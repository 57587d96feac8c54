"""A saved model file as stablelearn's spec, by its suffix: a Keras model (.keras, .h5)
or a PyTorch one (.pt, .pth). The experiment file's `model_file`, `train --model` and
`doctor --model` all read a file through `spec_from_file`."""

from pathlib import Path
from typing import Any

from stablelearn.keras.convert import check_input_width

__all__ = ["check_input_width", "framework", "spec_from_file"]

TORCH_SUFFIXES = (".pt", ".pth")


def framework(path: str | Path) -> str:
    """'PyTorch' or 'Keras': whose model the file is, by its suffix."""
    return "PyTorch" if Path(path).suffix.lower() in TORCH_SUFFIXES else "Keras"


def spec_from_file(path: str | Path, input_dim: int | None = None) -> Any:
    """The spec (KerasSpec or TorchSpec) of a saved model file; every error names the file."""
    if framework(path) == "PyTorch":
        from stablelearn.torch.files import spec_from_file as torch_spec

        return torch_spec(path, input_dim)
    from stablelearn.keras.convert import spec_from_file as keras_spec

    return keras_spec(path, input_dim)
