"""A change of configuration as the PyTorch (and scikit-learn) code to write.

The PyTorch counterpart of stablelearn.keras.code, for users whose model came from a
.pt file: `torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)`, the line that
clips the gradients after `loss.backward()`, the layers of an `nn.Sequential`. Only what
differs is written. Importing this module does not import torch.
"""

from typing import Any

from stablelearn.activations import parse_activation
from stablelearn.initializers import Initializer
from stablelearn.keras.code import scaler_changes
from stablelearn.model import MLP, Dense
from stablelearn.optim import SGD, Adam, Optimizer, RMSprop

_ACTIVATIONS = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()",
                "gelu": "nn.GELU()", "selu": "nn.SELU()"}  # fmt: skip
_PARAMETRIC = {"leaky_relu": "nn.LeakyReLU", "elu": "nn.ELU"}
_INITIALIZERS = {
    "he_uniform": 'nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")',
    "he_normal": 'nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")',
    "glorot_uniform": "nn.init.xavier_uniform_(layer.weight)",
    "glorot_normal": "nn.init.xavier_normal_(layer.weight)",
}
TORCH_ADAM_EPS, TORCH_RMSPROP_EPS = 1e-8, 1e-8


def _number(value: float) -> str:
    return repr(float(value))


def optimizer_code(optimizer: Optimizer) -> str:
    """The torch.optim constructor of `optimizer` (its hyperparameters in PyTorch's names)."""
    args = [f"lr={_number(optimizer.learning_rate)}"]
    if isinstance(optimizer, SGD):
        args += [f"momentum={_number(optimizer.momentum)}"] * bool(optimizer.momentum)
        args += [f"dampening={_number(optimizer.dampening)}"] * bool(optimizer.dampening)
        args += ["nesterov=True"] * optimizer.nesterov
        return f"torch.optim.SGD(model.parameters(), {', '.join(args)})"
    if isinstance(optimizer, Adam):
        if (optimizer.beta_1, optimizer.beta_2) != (0.9, 0.999):
            args.append(f"betas=({_number(optimizer.beta_1)}, {_number(optimizer.beta_2)})")
        args += [f"eps={optimizer.epsilon!r}"] * (optimizer.epsilon != TORCH_ADAM_EPS)
        return f"torch.optim.Adam(model.parameters(), {', '.join(args)})"
    if isinstance(optimizer, RMSprop):
        args += [f"alpha={_number(optimizer.rho)}"] * (optimizer.rho != 0.99)
        args += [f"eps={optimizer.epsilon!r}"] * (optimizer.epsilon != TORCH_RMSPROP_EPS)
        args += [f"momentum={_number(optimizer.momentum)}"] * bool(optimizer.momentum)
        code = f"torch.optim.RMSprop(model.parameters(), {', '.join(args)})"
        if optimizer.epsilon_in_sqrt:
            code += "  # Keras' form adds eps inside the square root"
        return code
    raise ValueError(f"no PyTorch code for {type(optimizer).__name__}")


def clipping_code(optimizer: Optimizer) -> str | None:
    """The clipping line that goes between loss.backward() and optimizer.step()."""
    if optimizer.global_clipnorm is not None:
        return f"torch.nn.utils.clip_grad_norm_(model.parameters(), {_number(optimizer.global_clipnorm)})"
    if optimizer.clipnorm is not None:  # Keras' clipnorm: each tensor on its own
        return (
            "for p in model.parameters(): "
            f"torch.nn.utils.clip_grad_norm_(p, {_number(_first(optimizer.clipnorm))})"
        )
    if optimizer.clipvalue is not None:
        return f"torch.nn.utils.clip_grad_value_(model.parameters(), {_number(_first(optimizer.clipvalue))})"
    return None


def _first(threshold: Any) -> float:
    return threshold[0] if isinstance(threshold, tuple) else threshold


def activation_code(name: str) -> str | None:
    base, value = parse_activation(name)
    if base == "linear":
        return None
    if base in _PARAMETRIC:
        default = {"leaky_relu": 0.2, "elu": 1.0}[base]  # stablelearn's (Keras') defaults
        return f"{_PARAMETRIC[base]}({_number(default if value is None else value)})"
    return _ACTIVATIONS.get(base, f"<{base}>")


def layer_code(layer: Dense, inputs: int) -> str:
    """One hidden layer as nn modules, with its initialization when not PyTorch's own."""
    modules = [f"nn.Linear({inputs}, {layer.units})"]
    if layer.batch_norm:  # PyTorch's momentum weighs the new batch: 1 - Keras' 0.99
        modules.append(f"nn.BatchNorm1d({layer.units}, momentum=0.01, eps=0.001)")
    activation = activation_code(layer.activation)
    modules += [activation] if activation else []
    code = ", ".join(modules)
    if layer.residual:
        code = f"x = x + nn.Sequential({code})(x)"
    init = layer.kernel_initializer
    if init != Initializer("torch_linear") and init.name in _INITIALIZERS:
        bias = (
            "; nn.init.zeros_(layer.bias)" if layer.bias_initializer == Initializer("zeros") else ""
        )
        code += f" (then {_INITIALIZERS[init.name]}{bias})"
    return code


def hidden_code(model: MLP) -> str:
    if not model.hidden:
        return "no hidden layers"
    widths = [model.input_dim] + [layer.units for layer in model.hidden]
    layers = [layer_code(layer, widths[i]) for i, layer in enumerate(model.hidden)]
    if len(layers) > 2 and len(set(layers[1:])) == 1:
        return f"{layers[0]}, then {len(layers) - 1} x {layers[1]}"
    return ", ".join(layers)


def torch_changes(before: Any, after: Any) -> list[str]:
    """The code lines that turn configuration `before` into `after` (as
    stablelearn.keras.code.keras_changes, in PyTorch)."""
    lines = scaler_changes(before, after)
    if after.model.hidden != before.model.hidden:
        lines.append(f"hidden layers: {hidden_code(after.model)}")
    if after.optimizer != before.optimizer:
        if optimizer_code(after.optimizer) != optimizer_code(before.optimizer):
            lines.append(f"optimizer = {optimizer_code(after.optimizer)}")
        clip_before, clip_after = clipping_code(before.optimizer), clipping_code(after.optimizer)
        if clip_after != clip_before:
            lines.append(
                f"after loss.backward(): {clip_after}"
                if clip_after
                else "remove the gradient clipping"
            )
    return lines
