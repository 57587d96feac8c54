"""A change of configuration as the Keras (and scikit-learn) code to write.

The doctor recommends a configuration; a Keras user wants the lines to change in their
own script: `keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, clipnorm=1.0)`, a
`StandardScaler` on the target, the hidden layers to use. Only what differs is written,
and arguments equal to Keras' defaults are left out (the learning rate is always shown).
"""

import dataclasses
from dataclasses import fields
from typing import Any

from stablelearn.activations import PARAMETRIC_ARGUMENTS, parse_activation
from stablelearn.data import Scaler
from stablelearn.initializers import Initializer
from stablelearn.keras.convert import INITIALIZER_CLASSES
from stablelearn.model import MLP, Dense
from stablelearn.optim import CLIP_MODES, Optimizer

# the initializers that take arguments, by their Keras class (the inverse of from_keras' map)
_INITIALIZER_CLASSES = {
    name: cls
    for cls, name in INITIALIZER_CLASSES.items()
    if name in ("random_uniform", "random_normal")
}
_PARAMETRIC_LAYERS = {"leaky_relu": "LeakyReLU", "elu": "ELU"}
_SCALERS = {"standard": "StandardScaler", "minmax": "MinMaxScaler", "robust": "RobustScaler"}


def _number(value: float) -> str:
    """A float as Python writes it (1.0, 0.01, 1e-07), so the code reads as typed."""
    return repr(float(value))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float | int):
        return _number(float(value))
    if isinstance(value, tuple):  # one clip threshold per layer: Keras takes one number
        return repr(list(value))
    return repr(value)


def optimizer_code(optimizer: Optimizer) -> str:
    """The Keras constructor of `optimizer`, e.g. 'keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)'."""
    defaults = type(optimizer)()
    args = []
    for field in fields(optimizer):
        value = getattr(optimizer, field.name)
        if value is None or (
            field.name != "learning_rate" and value == getattr(defaults, field.name)
        ):
            continue
        args.append(f"{field.name}={_value(value)}")
    order = {name: i for i, name in enumerate(("learning_rate", *type(optimizer).CONSTRAINTS))}
    args.sort(key=lambda a: (a.split("=")[0] in CLIP_MODES, order.get(a.split("=")[0], 99)))
    return f"keras.optimizers.{type(optimizer).__name__}({', '.join(args)})"


def initializer_code(init: Initializer) -> str:
    if init.name in _INITIALIZER_CLASSES:
        args = ", ".join(f"{k}={_number(v)}" for k, v in init.kwargs.items())
        return f"keras.initializers.{_INITIALIZER_CLASSES[init.name]}({args})"
    return repr(init.name)


def layer_code(layer: Dense) -> str:
    """The Keras layer(s) of one Dense spec; an activation with an argument becomes its
    layer, batch norm sits between the Dense and its activation, and a residual layer is
    the functional `x = Add()([x, block(x)])`."""
    if layer.batch_norm or layer.residual:
        return _block_code(layer)
    base, value = parse_activation(layer.activation)
    args = [str(layer.units)]
    if value is None and base != "linear":
        args.append(f"activation={base!r}")
    if layer.kernel_initializer != Initializer("glorot_uniform"):
        args.append(f"kernel_initializer={initializer_code(layer.kernel_initializer)}")
    if not layer.use_bias:
        args.append("use_bias=False")
    elif layer.bias_initializer != Initializer("zeros"):
        args.append(f"bias_initializer={initializer_code(layer.bias_initializer)}")
    code = f"keras.layers.Dense({', '.join(args)})"
    if value is not None:
        argument = PARAMETRIC_ARGUMENTS[base][0]
        code += f", keras.layers.{_PARAMETRIC_LAYERS[base]}({argument}={_number(value)})"
    return code


def _activation_layer(name: str) -> str | None:
    """The Keras layer that applies activation `name` on its own (None for linear)."""
    base, value = parse_activation(name)
    if base == "linear":
        return None
    if value is None:
        return f"keras.layers.Activation({base!r})"
    argument = PARAMETRIC_ARGUMENTS[base][0]
    return f"keras.layers.{_PARAMETRIC_LAYERS[base]}({argument}={_number(value)})"


def _block_code(layer: Dense) -> str:
    """Dense (linear) -> BatchNormalization() -> activation, applied to x, inside an Add
    for a residual layer."""
    plain = layer_code(
        dataclasses.replace(layer, activation="linear", batch_norm=False, residual=False)
    )
    calls = [plain] + ["keras.layers.BatchNormalization()"] * layer.batch_norm
    activation = _activation_layer(layer.activation)
    calls += [activation] if activation else []
    applied = "x"
    for call in calls:
        applied = f"{call}({applied})"
    return f"x = keras.layers.Add()([x, {applied}])" if layer.residual else f"x = {applied}"


def hidden_code(model: MLP) -> str:
    """The hidden layers as Keras code: a comprehension when they are all equal."""
    if not model.hidden:
        return "no hidden layers"
    layers = [layer_code(layer) for layer in model.hidden]
    if len(set(layers)) == 1 and len(layers) > 1:
        return f"{len(layers)} x {layers[0]}"
    return ", ".join(layers)


def scaler_code(scaler: Scaler, part: str) -> str:
    """How to scale the inputs or the target with scikit-learn, fitted on the training rows."""
    if scaler.kind == "none":
        return f"no scaler on the {part}"
    args = ""
    if scaler.kind == "minmax" and tuple(scaler.feature_range) != (0.0, 1.0):
        low, high = scaler.feature_range
        args = f"feature_range=({_number(low)}, {_number(high)})"
    cls = f"sklearn.preprocessing.{_SCALERS[scaler.kind]}({args})"
    if part == "inputs":
        return f"scaler = {cls}.fit(x_train); train and predict on scaler.transform(x)"
    return (
        f"y_scaler = {cls}.fit(y_train.reshape(-1, 1)); train on y_scaler.transform(y.reshape(-1, 1)) "
        "and map predictions back with y_scaler.inverse_transform"
    )


def scaler_changes(before: Any, after: Any) -> list[str]:
    """The scikit-learn lines for the scalers that differ (whatever the framework)."""
    lines = []
    if after.input_scaler != before.input_scaler:
        lines.append(f"inputs: {scaler_code(after.input_scaler, 'inputs')}")
    if after.target_scaler != before.target_scaler:
        lines.append(f"target: {scaler_code(after.target_scaler, 'target')}")
    return lines


def keras_changes(before: Any, after: Any) -> list[str]:
    """The code lines that turn configuration `before` into `after` (both have a model,
    an optimizer, an input scaler and a target scaler, as experiments.Variant)."""
    lines = scaler_changes(before, after)
    if after.model.hidden != before.model.hidden:
        lines.append(f"hidden layers: {hidden_code(after.model)}")
    if after.model.output != before.model.output:
        lines.append(f"output layer: {layer_code(after.model.output)}")
    if after.optimizer != before.optimizer:
        lines.append(f"model.compile(optimizer={optimizer_code(after.optimizer)}, ...)")
    return lines
