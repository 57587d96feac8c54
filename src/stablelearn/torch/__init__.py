"""Your own PyTorch model in stablelearn (the `stablelearn[torch]` extra).

- `from_torch(module, optimizer)`: an nn.Sequential MLP, with its torch optimizer, loss
  and clipping, as stablelearn's spec, to train over seeds, diagnose and repair.
- `watch(model)`: module hooks for any nn.Module in your own training loop, recording
  the engine's telemetry per layer and running stablelearn's detectors.

Importing this package does not import PyTorch; `watch` and reading a file do. Inside
this package `import torch` is the real PyTorch: imports are absolute.
"""

from typing import Any

from stablelearn.torch.convert import TorchSpec, from_torch

__all__ = ["TorchSpec", "from_torch", "spec_from_file", "watch"]


def __getattr__(name: str) -> Any:
    if name == "watch":
        from stablelearn.torch.hooks import watch

        return watch
    if name == "spec_from_file":
        from stablelearn.torch.files import spec_from_file

        return spec_from_file
    raise AttributeError(f"module 'stablelearn.torch' has no attribute {name!r}")
