"""A PyTorch MLP as stablelearn's spec: `from_torch(module, optimizer)`.

Supported: an `nn.Sequential` of `nn.Linear` layers (float32, with or without bias), each
optionally followed by one activation module: ReLU, Tanh, Sigmoid, LeakyReLU (its
negative_slope), ELU (its alpha), GELU (the exact erf form), SELU. Layers start with
PyTorch's default Linear initialization (stablelearn.initializers: `torch_linear` and
`torch_linear_bias`). An optional `torch.optim` optimizer with one parameter group and
a constant learning rate: SGD (momentum, dampening, nesterov), Adam, RMSprop, in
PyTorch's forms (stablelearn.optim). `clip_grad_norm` (clip_grad_norm_'s max_norm, one
global L2 norm) maps to global_clipnorm and `clip_grad_value` to clipvalue.

Losses, PyTorch's reduction="mean" only:
- MSELoss: mse.
- BCEWithLogitsLoss after a linear output: a sigmoid output trained from its logits,
  exactly the loss and gradients PyTorch computes.
- BCELoss after a Sigmoid: the probability form ("clipped"). Both agree with PyTorch
  while 1e-7 < p < 1 - 1e-7; past that PyTorch clamps log(p) at -100 and keeps a
  gradient down to p ~ 1e-12 where stablelearn's clipped form has none.
- CrossEntropyLoss after a linear output: a softmax output trained from its logits.
Without a loss, a Sigmoid output means BCELoss and a linear one MSELoss (a linear output
on a classification task needs its loss named).

Anything else (a Conv, Dropout, BatchNorm, weight decay, several parameter groups, a
learning-rate tensor...) is a ConfigError naming it: nothing is silently dropped.
"""

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stablelearn.activations import with_argument
from stablelearn.errors import ConfigError
from stablelearn.initializers import Initializer, torch_linear_bias
from stablelearn.model import MLP, Dense, Params
from stablelearn.optim import SGD, Adam, Optimizer, RMSprop

ACTIVATION_MODULES = ("ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "GELU", "SELU")
SUPPORTED_MODULES = ("Linear", *ACTIVATION_MODULES)
SUPPORTED = "an nn.Sequential of Linear layers, each followed by at most one of " + ", ".join(
    ACTIVATION_MODULES
)
KERNEL_INITIALIZER = Initializer("torch_linear")
LOSSES = ("MSELoss", "BCEWithLogitsLoss", "BCELoss", "CrossEntropyLoss")
# a setting of each optimizer and the value under which stablelearn trains the same way
_NEUTRAL = {
    "weight_decay": (0, 0.0),
    "maximize": (False,),
    "amsgrad": (False,),
    "centered": (False,),
    "decoupled_weight_decay": (False,),
}


@dataclass(frozen=True)
class TorchModule:
    """One module of the Sequential as the converter reads it: its class name and the
    arguments its repr shows (a module object and an architecture string agree)."""

    kind: str
    args: Mapping[str, Any]
    index: int


@dataclass(frozen=True, eq=False)
class TorchSpec:
    """A PyTorch model as stablelearn trains it.

    `optimizer` is None without a torch optimizer and `loss` None without a loss; `params`
    holds the module's weights (kernels [out, in], PyTorch's own layout) when converted
    with `weights=True`. `layer_names` are the Sequential's indices of the Linear layers.
    """

    model: MLP
    optimizer: Optimizer | None
    loss: str | None
    bce_form: str
    params: Params | None
    name: str
    layer_names: tuple[str, ...]

    def train_config(self, task: str, **overrides: Any) -> Any:
        """The TrainConfig for `task` with this model's loss (checked against the task)."""
        from stablelearn.runs import TrainConfig

        config = TrainConfig.for_task(task, **{"bce_form": self.bce_form, **overrides})
        if self.loss is not None and self.loss != config.loss:
            raise ConfigError(
                f"PyTorch model {self.name!r} trains with loss {self.loss!r}, but a {task} "
                f"target needs {config.loss!r}."
            )
        if self.loss is None and task != "regression" and self.model.output.activation == "linear":
            raise ConfigError(
                f"PyTorch model {self.name!r} ends in a linear layer; name its loss "
                "(BCEWithLogitsLoss or CrossEntropyLoss) for a classification target."
            )
        return config

    def fit(self, data: Any, seeds: Sequence[int] | int = 1, **config: Any) -> Any:
        """Train this model once per seed on `data` (a PreparedData), as `stablelearn.fit`;
        with `weights=True` every seed starts from the module's weights."""
        from stablelearn.engine import fit

        if self.optimizer is None:
            raise ConfigError(
                f"PyTorch model {self.name!r} has no optimizer; pass one to from_torch."
            )
        settings = {"bce_form": self.bce_form, **config}
        self.train_config(data.task, **settings)
        return fit(self.model, self.optimizer, data, seeds, initial_params=self.params, **settings)


def _unsupported(what: str, supported: str = SUPPORTED) -> ConfigError:
    return ConfigError(f"{what} is not supported; stablelearn converts {supported}.")


def module_of(index: int, module: Any) -> TorchModule:
    """A module object as the converter reads it."""
    kind = type(module).__name__
    names = {
        "Linear": ("in_features", "out_features"),
        "LeakyReLU": ("negative_slope",),
        "ELU": ("alpha",),
        "GELU": ("approximate",),
    }
    args = {name: getattr(module, name) for name in names.get(kind, ())}
    if kind == "Linear":
        args["bias"] = module.bias is not None
        args["dtype"] = str(module.weight.dtype).removeprefix("torch.")
        args["trainable"] = all(p.requires_grad for p in module.parameters())
    return TorchModule(kind, args, index)


_LINE = re.compile(r"^\s*\((\w+)\):\s*(\w+)\((.*)\)\s*$")


def parse_architecture(text: str) -> list[TorchModule]:
    """The modules of `str(sequential)`, e.g. '(0): Linear(in_features=2, out_features=8,
    bias=True)' per line; anything else is a ConfigError."""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    if not lines or not lines[0].strip().startswith("Sequential(") or lines[-1].strip() != ")":
        raise ConfigError("The architecture string is not str() of an nn.Sequential.")
    modules = []
    for i, line in enumerate(lines[1:-1]):
        match = _LINE.match(line)
        if match is None:
            raise ConfigError(f"The architecture line {line.strip()!r} is not a module.")
        _, kind, inner = match.groups()
        try:
            call = ast.parse(f"f({inner})", mode="eval").body
            args = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            positional = [ast.literal_eval(a) for a in call.args]
        except (SyntaxError, ValueError):
            raise ConfigError(f"The architecture line {line.strip()!r} cannot be read.") from None
        if kind == "LeakyReLU" and positional:
            args["negative_slope"] = positional[0]
        if kind == "Linear":
            args.setdefault("dtype", "float32")
            args.setdefault("trainable", True)
        modules.append(TorchModule(kind, args, i))
    return modules


def _where(module: TorchModule) -> str:
    return f"module ({module.index}) {module.kind}"


def _activation(module: TorchModule) -> str:
    args = module.args
    if module.kind == "LeakyReLU":
        return with_argument("leaky_relu", float(args.get("negative_slope", 0.01)))
    if module.kind == "ELU":
        return with_argument("elu", float(args.get("alpha", 1.0)))
    if module.kind == "GELU" and args.get("approximate", "none") != "none":
        raise _unsupported(f"{_where(module)} with approximate='tanh'", "GELU's exact form")
    return module.kind.lower()


def _dense_layers(modules: Sequence[TorchModule]) -> tuple[int, list[Dense], list[int]]:
    """(input width, Dense specs, the modules' indices of the Linear layers)."""
    specs: list[dict[str, Any]] = []
    indices: list[int] = []
    width = input_dim = None
    for module in modules:
        if module.kind not in SUPPORTED_MODULES:
            raise _unsupported(f"{_where(module)}")
        if module.kind == "Linear":
            args = module.args
            if args["dtype"] != "float32":
                raise _unsupported(f"{_where(module)} in {args['dtype']}", "float32 layers")
            if not args["trainable"]:
                raise _unsupported(f"{_where(module)} with frozen parameters", "trainable layers")
            fan_in, units = int(args["in_features"]), int(args["out_features"])
            if width is not None and fan_in != width:
                raise ConfigError(
                    f"{_where(module)} takes {fan_in} inputs but the layer before gives {width}."
                )
            use_bias = bool(args.get("bias", True))
            specs.append(
                {
                    "units": units,
                    "activation": "linear",
                    "kernel_initializer": KERNEL_INITIALIZER,
                    "bias_initializer": torch_linear_bias(fan_in) if use_bias else "zeros",
                    "use_bias": use_bias,
                }
            )
            indices.append(module.index)
            input_dim = fan_in if width is None else input_dim
            width = units
        elif not specs:
            raise _unsupported(f"{_where(module)} before the first Linear layer")
        elif specs[-1]["activation"] != "linear":
            raise _unsupported(f"{_where(module)} after another activation")
        else:
            specs[-1]["activation"] = _activation(module)
    if not specs:
        raise ConfigError("The PyTorch model has no Linear layer.")
    return int(input_dim), [Dense(**spec) for spec in specs], indices


def _number(kind: str, name: str, value: Any) -> float:
    if hasattr(value, "item") and not isinstance(value, float | int):  # a tensor setting
        raise _unsupported(f"{kind}: {name} as a tensor", "plain numbers")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{kind}: {name} must be a number, got {value!r}.")
    return float(value)


def torch_optimizer(
    kind: str,
    group: Mapping[str, Any],
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
) -> Optimizer:
    """A torch optimizer's class name and its parameter group's settings as stablelearn's
    optimizer; clip_grad_norm / clip_grad_value are what the training loop clips with."""
    if kind not in ("SGD", "Adam", "RMSprop"):
        raise _unsupported(f"Optimizer {kind}", "SGD, Adam and RMSprop")
    for key, neutral in _NEUTRAL.items():
        if key in group and group[key] not in neutral:
            raise _unsupported(f"{kind}: {key}={group[key]!r}", f"{kind} without {key}")
    if clip_grad_norm is not None and clip_grad_value is not None:
        raise ConfigError("Give one of clip_grad_norm and clip_grad_value, as one loop clips once.")
    clipping = {"global_clipnorm": clip_grad_norm, "clipvalue": clip_grad_value}
    number = {k: _number(kind, k, v) for k, v in group.items() if k in ("lr", "momentum",
              "dampening", "eps", "alpha")}  # fmt: skip
    try:
        if kind == "SGD":
            return SGD(
                learning_rate=number.get("lr", 1e-3),
                momentum=number.get("momentum", 0.0),
                nesterov=bool(group.get("nesterov", False)),
                dampening=number.get("dampening", 0.0),
                **clipping,
            )
        if kind == "Adam":
            beta_1, beta_2 = (_number(kind, "betas", b) for b in group.get("betas", (0.9, 0.999)))
            return Adam(
                learning_rate=number.get("lr", 1e-3),
                beta_1=beta_1,
                beta_2=beta_2,
                epsilon=number.get("eps", 1e-8),
                **clipping,
            )
        return RMSprop(
            learning_rate=number.get("lr", 1e-2),
            rho=number.get("alpha", 0.99),
            momentum=number.get("momentum", 0.0),
            epsilon=number.get("eps", 1e-8),
            epsilon_in_sqrt=False,
            **clipping,
        )
    except ConfigError as err:
        raise ConfigError(f"PyTorch optimizer {kind}: {err}") from None


def optimizer_settings(optimizer: Any, parameters: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """(class name, settings) of a torch optimizer that trains exactly `parameters`."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        raise ConfigError(
            f"from_torch needs a torch.optim optimizer, got {type(optimizer).__name__}."
        )
    if len(groups) != 1:
        raise _unsupported(f"An optimizer with {len(groups)} parameter groups", "one group")
    trained = {id(p) for p in groups[0]["params"]}
    if trained != {id(p) for p in parameters}:
        raise ConfigError("The optimizer does not train exactly the module's parameters.")
    return type(optimizer).__name__, {k: v for k, v in groups[0].items() if k != "params"}


_OPTIMIZER_REPR = re.compile(r"^\s*(\w+)\s*\(\s*Parameter Group 0\s*$")


def parse_optimizer(text: str) -> tuple[str, dict[str, Any]]:
    """(class name, settings) of `str(optimizer)`: 'SGD (', 'Parameter Group 0', then one
    'name: value' per line."""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    head = _OPTIMIZER_REPR.match(" ".join(lines[:2])) if len(lines) >= 2 else None
    if head is None or "Parameter Group 1" in text:
        raise ConfigError("The optimizer string is not str() of a torch optimizer with one group.")
    settings = {}
    for line in lines[2:-1]:
        key, _, value = line.partition(":")
        try:
            settings[key.strip()] = ast.literal_eval(value.strip())
        except (SyntaxError, ValueError):
            settings[key.strip()] = value.strip()
    return head.group(1), settings


def torch_loss(loss: Any, output: str) -> tuple[str, str, str]:
    """(stablelearn loss, output activation, bce_form) of a torch loss (module or its str())
    after an output layer applying `output`."""
    if isinstance(loss, str):
        match = re.fullmatch(r"\s*(\w+)\((.*)\)\s*", loss)
        kind, inner = (match.group(1), match.group(2)) if match else (loss.strip(), "")
        if inner.strip():
            raise _unsupported(f"Loss {loss.strip()!r}", f"{', '.join(LOSSES)} with their defaults")
        settings: dict[str, Any] = {}
    else:
        kind = type(loss).__name__
        settings = {k: getattr(loss, k, None) for k in ("reduction", "label_smoothing")}
        for name in ("weight", "pos_weight"):
            if getattr(loss, name, None) is not None:
                raise _unsupported(f"Loss {kind} with {name}", "unweighted losses")
    if kind not in LOSSES:
        raise _unsupported(f"Loss {kind}", ", ".join(LOSSES))
    if settings.get("reduction", "mean") not in (None, "mean"):
        raise _unsupported(f"Loss {kind} with reduction={settings['reduction']!r}", "the mean")
    if settings.get("label_smoothing"):
        raise _unsupported(f"Loss {kind} with label smoothing", "losses without it")
    wanted = {"MSELoss": "linear", "BCEWithLogitsLoss": "linear", "BCELoss": "sigmoid",
              "CrossEntropyLoss": "linear"}[kind]  # fmt: skip
    if output != wanted:
        raise ConfigError(
            f"{kind} reads a {wanted} output, but the model's last layer applies {output!r}."
        )
    return {
        "MSELoss": ("mse", "linear", "logits"),
        "BCEWithLogitsLoss": ("binary_crossentropy", "sigmoid", "logits"),
        "BCELoss": ("binary_crossentropy", "sigmoid", "clipped"),
        "CrossEntropyLoss": ("sparse_categorical_crossentropy", "softmax", "logits"),
    }[kind]


def _params(module: Any, indices: Sequence[int], specs: Sequence[Dense]) -> Params:
    layers = list(module)
    params = []
    for index, spec in zip(indices, specs, strict=True):
        linear = layers[index]
        kernel = linear.weight.detach().cpu().numpy().astype(np.float32)
        bias = (
            linear.bias.detach().cpu().numpy().astype(np.float32)
            if linear.bias is not None
            else np.zeros(spec.units, np.float32)
        )
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            raise ConfigError(
                f"Linear layer ({index}) has NaN or Inf weights; nothing to start from."
            )
        params.append({"kernel": kernel, "bias": bias})
    return tuple(params)


def spec_of_modules(
    modules: Sequence[TorchModule],
    optimizer: tuple[str, Mapping[str, Any]] | None = None,
    loss: Any = None,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    name: str = "model",
) -> TorchSpec:
    """The spec of a Sequential read as modules, with optimizer settings and a loss."""
    input_dim, specs, indices = _dense_layers(modules)
    output = specs[-1].activation
    if loss is not None:
        loss_name, activation, bce_form = torch_loss(loss, output)
    else:
        loss_name = "binary_crossentropy" if output == "sigmoid" else None
        activation, bce_form = output, "clipped" if output == "sigmoid" else "logits"
    last = specs[-1]
    specs[-1] = Dense(
        last.units, activation, last.kernel_initializer, last.bias_initializer, last.use_bias
    )
    if optimizer is None and (clip_grad_norm is not None or clip_grad_value is not None):
        raise ConfigError("Clipping is part of the training; give the optimizer too.")
    converted = torch_optimizer(*optimizer, clip_grad_norm, clip_grad_value) if optimizer else None
    return TorchSpec(
        model=MLP(input_dim, tuple(specs[:-1]), specs[-1]),
        optimizer=converted,
        loss=loss_name,
        bce_form=bce_form,
        params=None,
        name=name,
        layer_names=tuple(str(i) for i in indices),
    )


def from_torch(
    module: Any,
    optimizer: Any = None,
    *,
    loss: Any = None,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    weights: bool = False,
) -> TorchSpec:
    """Convert an nn.Sequential MLP (and optionally its torch optimizer, loss and the
    clipping its loop applies) into stablelearn's spec; `weights=True` also copies the
    module's current weights. Unsupported modules or settings raise a ConfigError."""
    kind = type(module).__name__
    if kind != "Sequential":
        raise _unsupported(f"A {kind} module (a custom nn.Module)")
    modules = [module_of(i, m) for i, m in enumerate(module)]
    settings = optimizer_settings(optimizer, list(module.parameters())) if optimizer else None
    spec = spec_of_modules(modules, settings, loss, clip_grad_norm, clip_grad_value, kind)
    if not weights:
        return spec
    params = _params(module, [int(i) for i in spec.layer_names], spec.model.layers)
    return TorchSpec(**{**spec.__dict__, "params": params})
