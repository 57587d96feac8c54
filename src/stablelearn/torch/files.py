"""A saved PyTorch model (`model.pt`) as stablelearn's spec, for `doctor --model model.pt`.

Two layouts:
- `torch.save(model, "model.pt")`: a whole nn.Sequential;
- `torch.save({"architecture": str(model), "state_dict": model.state_dict()}, "model.pt")`:
  a state dict with the Sequential's printed architecture.
A dict may add what the training loop uses: `"optimizer": str(optimizer)`, `"loss":
str(loss_fn)` (e.g. "BCEWithLogitsLoss()"), `"clip_grad_norm": 1.0` or `"clip_grad_value": 5.0`,
and may hold the Sequential itself under "model" instead of an architecture.

Files are read with `torch.load(weights_only=True)`, allowing only the module classes
stablelearn converts: reading a file never runs code from it, and a module of another
class is named in the error.
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stablelearn.errors import ConfigError
from stablelearn.torch.convert import (
    SUPPORTED,
    SUPPORTED_MODULES,
    TorchSpec,
    from_torch,
    module_of,
    parse_architecture,
    parse_optimizer,
    spec_of_modules,
)

SUFFIXES = (".pt", ".pth")
_KEYS = ("model", "architecture", "state_dict", "optimizer", "loss", "clip_grad_norm",
         "clip_grad_value")  # fmt: skip
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def import_torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise ConfigError(
            f"Reading a PyTorch model needs PyTorch ({err}); install it with "
            "pip install 'stablelearn[torch]'."
        ) from None
    return torch


def _allowed(torch: Any) -> list[Any]:
    nn = torch.nn
    return [nn.Sequential, *(getattr(nn, name) for name in SUPPORTED_MODULES)]


def load_file(path: str | Path) -> Any:
    """The object saved in a .pt file, loaded without running code from it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No PyTorch model file at {path}.")
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(
            f"{path.name} is not a PyTorch model file; save your model with "
            "torch.save(model, 'model.pt')."
        )
    torch = import_torch()
    try:
        with torch.serialization.safe_globals(_allowed(torch)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad or foreign file
        found = _GLOBAL.search(str(err))
        if found:
            raise ConfigError(
                f"{path.name} holds {found.group(1).rsplit('.', 1)[-1]}, which is not supported; "
                f"stablelearn converts {SUPPORTED}."
            ) from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{path.name} could not be read as a PyTorch file ({reason[:200]})."
        ) from None


def _check_state_dict(spec: TorchSpec, state: Any) -> None:
    """A state dict saved with an architecture must have that architecture's weights."""
    if not isinstance(state, Mapping):
        raise ConfigError("state_dict must be model.state_dict().")
    for index, layer in zip(spec.layer_names, spec.model.layers, strict=True):
        weight = state.get(f"{index}.weight")
        if weight is None or len(weight.shape) != 2 or weight.shape[0] != layer.units:
            raise ConfigError(
                f"state_dict has no {index}.weight of {layer.units} rows for Linear ({index})."
            )


def spec_of_saved(saved: Any) -> TorchSpec:
    """The spec of what a .pt file holds (either layout of the module docstring)."""
    if not isinstance(saved, Mapping):
        return from_torch(saved)
    unknown = sorted(set(map(str, saved)) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)}; a model file takes {', '.join(_KEYS)}."
        )
    if ("model" in saved) == ("architecture" in saved):
        raise ConfigError("give the Sequential as 'model' or its str() as 'architecture'.")
    if "model" in saved:
        model = saved["model"]
        if type(model).__name__ != "Sequential":
            raise ConfigError(f"'model' must be an nn.Sequential, got {type(model).__name__}.")
        modules = [module_of(i, m) for i, m in enumerate(model)]
    else:
        modules = parse_architecture(saved["architecture"])
    optimizer = parse_optimizer(saved["optimizer"]) if "optimizer" in saved else None
    spec = spec_of_modules(
        modules,
        optimizer,
        saved.get("loss"),
        saved.get("clip_grad_norm"),
        saved.get("clip_grad_value"),
    )
    if "architecture" in saved and "state_dict" in saved:
        _check_state_dict(spec, saved["state_dict"])
    return spec


def spec_from_file(path: str | Path, input_dim: int | None = None) -> TorchSpec:
    """The spec of a saved PyTorch model file; every error names the file."""
    saved = load_file(path)
    try:
        spec = spec_of_saved(saved)
    except ConfigError as err:
        raise ConfigError(f"{Path(path).name}: {err}") from None
    if input_dim is not None and spec.model.input_dim != input_dim:
        raise ConfigError(
            f"{Path(path).name} takes {spec.model.input_dim} input features, not {input_dim}."
        )
    return spec
