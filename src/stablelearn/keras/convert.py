"""A Keras 3 model as stablelearn's spec: `from_keras(model)`.

Supported: a `Sequential` or a functional chain (one input, one output, each layer fed
by the one before) of `Dense` layers, with the activation as an argument or as an
`Activation`, `ReLU`, `LeakyReLU`, `ELU` or `Softmax` layer after a linear `Dense`;
built-in initializers by name or object (`RandomUniform`/`RandomNormal` with their
arguments, a `VarianceScaling` equal to a named one, `Constant` 0 or 1); `use_bias`.
When the model is compiled: its optimizer (SGD with momentum/nesterov, Adam, RMSprop;
a constant learning rate; `clipnorm`, `clipvalue` or `global_clipnorm`) and its loss
(mean squared error, binary or (sparse) categorical cross-entropy, `from_logits` too).

Anything else (a Conv layer, dropout, a regularizer, a schedule, weight decay...) is a
ConfigError naming the layer or setting: nothing is silently dropped. Two things are
deliberately not copied: an initializer's own `seed` (stablelearn seeds each repeat;
`weights=True` copies the exact weights instead) and compiled metrics (stablelearn
computes its task's metrics).

This module only reads the model object; it never imports Keras itself, except to load a
model file (`load_model_file`).
"""

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.activations import ACTIVATION_NAMES, with_argument
from stablelearn.errors import ConfigError
from stablelearn.initializers import VARIANCE_SCALING, Initializer
from stablelearn.model import MLP, Dense, Params
from stablelearn.optim import SGD, Adam, Optimizer, RMSprop

SUPPORTED_LAYERS = ("InputLayer", "Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax")
ACTIVATION_LAYERS = SUPPORTED_LAYERS[2:]
SUPPORTED_OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "RMSprop": RMSprop}
# Keras activation names -> stablelearn's (Keras serializes swish as silu)
_KERAS_ACTIVATIONS = {**{name: name for name in ACTIVATION_NAMES}, "swish": "silu"}
INITIALIZER_CLASSES = {
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeUniform": "he_uniform",
    "HeNormal": "he_normal",
    "LecunUniform": "lecun_uniform",
    "LecunNormal": "lecun_normal",
    "Zeros": "zeros",
    "Ones": "ones",
    "RandomUniform": "random_uniform",
    "RandomNormal": "random_normal",
}
_LOSSES = {
    "mean_squared_error": "mse",
    "mse": "mse",
    "MeanSquaredError": "mse",
    "binary_crossentropy": "binary_crossentropy",
    "BinaryCrossentropy": "binary_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    # the same loss on one-hot targets; stablelearn's targets are class labels
    "categorical_crossentropy": "sparse_categorical_crossentropy",
    "CategoricalCrossentropy": "sparse_categorical_crossentropy",
}
_LOGIT_OUTPUTS = {"binary_crossentropy": "sigmoid", "sparse_categorical_crossentropy": "softmax"}
# base-optimizer settings stablelearn does not train with, and their neutral values
_NEUTRAL_OPTIMIZER_SETTINGS = {
    "weight_decay": (None, 0.0),
    "use_ema": (False,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None, 1),
    "amsgrad": (False,),
    "centered": (False,),
}
_NEUTRAL_DENSE_SETTINGS = (
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "quantization_config",
)


@dataclass(frozen=True, eq=False)
class KerasSpec:
    """A Keras model as stablelearn trains it.

    `optimizer` and `loss` are None when the Keras model was not compiled; `params` holds
    the model's current weights (kernels as [units, inputs]) when converted with
    `weights=True`. `bce_form` is the binary cross-entropy Keras computes on `backend`.
    """

    model: MLP
    optimizer: Optimizer | None
    loss: str | None
    bce_form: str
    params: Params | None
    name: str
    backend: str
    layer_names: tuple[str, ...]  # the Keras names of the Dense layers, output last

    def train_config(self, task: str, **overrides: Any) -> Any:
        """The TrainConfig for `task` with this model's loss (checked against the task)."""
        from stablelearn.runs import TrainConfig

        settings = {"bce_form": self.bce_form, **overrides}
        config = TrainConfig.for_task(task, **settings)
        if self.loss is not None and self.loss != config.loss:
            raise ConfigError(
                f"Keras model {self.name!r} is compiled with loss {self.loss!r}, but a {task} "
                f"target needs {config.loss!r}."
            )
        return config

    def fit(self, data: Any, seeds: Sequence[int] | int = 1, **config: Any) -> Any:
        """Train this model once per seed on `data` (a PreparedData), as `stablelearn.fit`.

        With weights copied (`weights=True`) every seed starts from them and seeds differ
        only in the shuffling; otherwise each seed draws its own weights.
        """
        from stablelearn.engine import fit

        if self.optimizer is None:
            raise ConfigError(
                f"Keras model {self.name!r} is not compiled; compile it with an optimizer "
                "(or build the runs yourself with stablelearn.fit and an optimizer)."
            )
        settings = {"bce_form": self.bce_form, **config}
        self.train_config(data.task, **settings)  # the compiled loss must fit the task
        return fit(self.model, self.optimizer, data, seeds, initial_params=self.params, **settings)


def _class_name(obj: Any) -> str:
    return type(obj).__name__


def _describe(layer: Any) -> str:
    return f"layer {getattr(layer, 'name', '?')!r} ({_class_name(layer)})"


def _unsupported(what: str, supported: str) -> ConfigError:
    return ConfigError(f"{what} is not supported; stablelearn converts {supported}.")


LAYERS_SUPPORTED = (
    "Dense layers with the activation as an argument or as Activation, ReLU, LeakyReLU, "
    "ELU or Softmax layers"
)


def _float(value: Any) -> float:
    """A Keras float32 setting as the decimal the user wrote (0.009999999776 -> 0.01)."""
    return float(str(np.float32(value)))


def keras_activation(name: Any, where: str) -> str:
    """A Keras activation name as stablelearn's."""
    if isinstance(name, str) and name in _KERAS_ACTIVATIONS:
        return _KERAS_ACTIVATIONS[name]
    if name is None:
        return "linear"
    known = ", ".join(_KERAS_ACTIVATIONS)
    raise _unsupported(f"{where}: activation {name!r}", f"these activations: {known}")


def _activation_of_layer(layer: Any) -> str:
    """The activation an activation layer applies."""
    kind, config, where = _class_name(layer), layer.get_config(), _describe(layer)
    if kind == "Activation":
        return keras_activation(config.get("activation"), where)
    if kind == "ReLU":
        max_value = config.get("max_value")
        slope, threshold = config.get("negative_slope", 0.0), config.get("threshold", 0.0)
        if threshold:
            raise _unsupported(f"{where}: threshold={threshold}", "ReLU with threshold 0")
        if max_value is not None:
            if max_value == 6 and not slope:
                return "relu6"
            raise _unsupported(f"{where}: max_value={max_value}", "ReLU without max_value or 6")
        return "relu" if not slope else with_argument("leaky_relu", _float(slope))
    if kind == "LeakyReLU":
        slope = config.get("negative_slope", config.get("alpha", 0.3))
        return with_argument("leaky_relu", _float(slope))
    if kind == "ELU":
        return with_argument("elu", _float(config.get("alpha", 1.0)))
    axis = config.get("axis", -1)
    if axis not in (-1, [-1], 1, [1]):
        raise _unsupported(f"{where}: axis={axis}", "Softmax over the last axis")
    return "softmax"


def keras_initializer(config: Any, where: str) -> Initializer:
    """A serialized Keras initializer (name or {class_name, config}) as stablelearn's."""
    if isinstance(config, str):
        name = INITIALIZER_CLASSES.get(config, config)
        args: dict[str, Any] = {}
    elif isinstance(config, Mapping) and "class_name" in config:
        kind, args = config["class_name"], dict(config.get("config") or {})
        args.pop("seed", None)
        if kind == "VarianceScaling":
            signature = (float(args["scale"]), args["mode"], args["distribution"])
            name = next((n for n, s in VARIANCE_SCALING.items() if s == signature), kind)
            args = {}
        elif kind == "Constant" and args.get("value") in (0, 0.0, 1, 1.0):
            name, args = ("ones" if args["value"] == 1 else "zeros"), {}
        else:
            name = INITIALIZER_CLASSES.get(kind, kind)
            for key in ("input_axes", "output_axes"):
                if args.get(key) is None:
                    args.pop(key, None)
    else:
        name = repr(config)
    known = (*INITIALIZER_CLASSES, "VarianceScaling matching one of them", "Constant 0 or 1")
    if name not in INITIALIZER_CLASSES.values():
        raise _unsupported(
            f"{where}: initializer {name}", f"these initializers: {', '.join(known)}"
        )
    try:
        return Initializer(name, tuple((k, float(v)) for k, v in args.items()))
    except (ConfigError, TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_dense(layer: Any) -> dict[str, Any]:
    config, where = layer.get_config(), _describe(layer)
    for key in _NEUTRAL_DENSE_SETTINGS:
        if config.get(key) is not None:
            raise _unsupported(
                f"{where}: {key}", "Dense layers without regularizers or constraints"
            )
    if config.get("lora_rank"):
        raise _unsupported(f"{where}: lora_rank", "Dense layers without LoRA")
    dtype = config.get("dtype")
    dtype_name = dtype.get("config", {}).get("name") if isinstance(dtype, Mapping) else dtype
    if dtype_name not in (None, "float32"):
        raise _unsupported(f"{where}: dtype {dtype_name!r}", "float32 layers")
    if not getattr(layer, "trainable", True):
        raise _unsupported(f"{where}: a frozen layer (trainable=False)", "trainable layers")
    return config


def _chain(model: Any) -> list[Any]:
    """The model's layers in order, checking that a functional model is a chain."""
    kind = _class_name(model)
    if kind == "Sequential":
        return [layer for layer in model.layers if _class_name(layer) != "InputLayer"]
    if not hasattr(model, "layers") or not hasattr(model, "inputs"):
        raise ConfigError(
            f"from_keras needs a Keras 3 model (Sequential or functional), got {kind}."
        )
    if kind not in ("Functional", "Model") or not model.inputs:
        raise _unsupported(f"A subclassed Keras model ({kind})", "Sequential or functional models")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise _unsupported(
            f"Model {model.name!r} with {len(model.inputs)} inputs and {len(model.outputs)} outputs",
            "models with one input and one output",
        )
    layers = [layer for layer in model.layers if _class_name(layer) != "InputLayer"]
    previous = model.inputs[0]
    for layer in layers:
        try:
            fed_by_previous = layer.input is previous
        except (AttributeError, ValueError):  # a layer used at several places
            fed_by_previous = False
        if not fed_by_previous:
            raise _unsupported(
                f"Model {model.name!r}: {_describe(layer)} is not fed by the layer before it "
                "(a branch, a merge or a shared layer)",
                "chains of layers",
            )
        previous = layer.output
    return layers


def _input_dim(model: Any, input_dim: int | None) -> int:
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        shape = None
    if shape is None:
        if input_dim is None:
            raise ConfigError(
                f"Keras model {model.name!r} is not built, so its input width is unknown; start it "
                "with keras.Input((n_features,)) or pass input_dim."
            )
        return int(input_dim)
    if len(shape) != 2 or shape[1] is None:
        raise _unsupported(
            f"Model {model.name!r} with input shape {shape}", "models on flat feature vectors"
        )
    if input_dim is not None and input_dim != shape[1]:
        raise ConfigError(
            f"Keras model {model.name!r} takes {shape[1]} input features, not {input_dim}."
        )
    return int(shape[1])


def _dense_specs(layers: Sequence[Any]) -> tuple[list[Dense], list[Any]]:
    specs: list[dict[str, Any]] = []
    dense_layers = []
    for layer in layers:
        kind, where = _class_name(layer), _describe(layer)
        if kind == "Dense":
            config = _check_dense(layer)
            specs.append(
                {
                    "units": int(config["units"]),
                    "activation": keras_activation(config.get("activation"), where),
                    "kernel_initializer": keras_initializer(config["kernel_initializer"], where),
                    "bias_initializer": keras_initializer(config["bias_initializer"], where),
                    "use_bias": bool(config.get("use_bias", True)),
                }
            )
            dense_layers.append(layer)
        elif kind in ACTIVATION_LAYERS:
            activation = _activation_of_layer(layer)
            if not specs:
                raise _unsupported(f"{where} before the first Dense layer", LAYERS_SUPPORTED)
            if specs[-1]["activation"] != "linear":
                raise _unsupported(
                    f"{where} after {_describe(dense_layers[-1])}, which already applies "
                    f"{specs[-1]['activation']!r}",
                    "one activation per Dense layer",
                )
            specs[-1]["activation"] = activation
        else:
            raise _unsupported(where, LAYERS_SUPPORTED)
    if not specs:
        raise ConfigError("The Keras model has no Dense layer.")
    return [Dense(**spec) for spec in specs], dense_layers


def keras_optimizer(optimizer: Any) -> Optimizer:
    """A compiled Keras optimizer as stablelearn's, or a ConfigError naming what is not supported."""
    kind = _class_name(optimizer)
    if kind not in SUPPORTED_OPTIMIZERS:
        raise _unsupported(f"Optimizer {kind}", "SGD, Adam and RMSprop")
    config = optimizer.get_config()
    learning_rate = config.get("learning_rate")
    if isinstance(learning_rate, Mapping) or not isinstance(learning_rate, int | float):
        schedule = learning_rate.get("class_name") if isinstance(learning_rate, Mapping) else None
        raise _unsupported(
            f"{kind}: a learning-rate schedule ({schedule or learning_rate!r})",
            "a constant learning rate",
        )
    for key, neutral in _NEUTRAL_OPTIMIZER_SETTINGS.items():
        if key in config and config[key] not in neutral:
            raise _unsupported(f"{kind}: {key}={config[key]!r}", f"{kind} without {key}")
    cls = SUPPORTED_OPTIMIZERS[kind]
    wanted = set(cls.CONSTRAINTS) | {"nesterov", "clipnorm", "clipvalue", "global_clipnorm"}
    kwargs = {k: v for k, v in config.items() if k in wanted and v is not None}
    kwargs = {k: v if isinstance(v, bool) else _float(v) for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"Keras optimizer {kind}: {err}") from None


def keras_loss(loss: Any) -> tuple[str, bool]:
    """(stablelearn loss, from_logits) of a compiled Keras loss."""
    if isinstance(loss, list | tuple | Mapping):
        raise _unsupported("A loss per output", "one loss")
    if isinstance(loss, str):
        name, config = loss, {}
    elif hasattr(loss, "get_config"):
        config = loss.get_config()
        name = config.get("name") or _class_name(loss)
        if _class_name(loss) in _LOSSES:
            name = _class_name(loss)
    else:
        name, config = getattr(loss, "__name__", repr(loss)), {}
    if name not in _LOSSES:
        raise _unsupported(
            f"Loss {name!r}", "mean squared error and (binary, sparse) cross-entropy"
        )
    if config.get("reduction", "sum_over_batch_size") != "sum_over_batch_size":
        raise _unsupported(
            f"Loss {name!r} with reduction {config['reduction']!r}", "the mean over the batch"
        )
    if config.get("label_smoothing"):
        raise _unsupported(f"Loss {name!r} with label smoothing", "losses without label smoothing")
    if config.get("ignore_class") is not None:
        raise _unsupported(f"Loss {name!r} with ignore_class", "losses without ignore_class")
    return _LOSSES[name], bool(config.get("from_logits", False))


def _params(dense_layers: Sequence[Any], specs: Sequence[Dense]) -> Params:
    params = []
    for layer, spec in zip(dense_layers, specs, strict=True):
        weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
        if not weights:
            raise ConfigError(f"{_describe(layer)} has no weights yet; build the model first.")
        kernel = weights[0].T.copy()
        bias = weights[1] if spec.use_bias else np.zeros(spec.units, np.float32)
        params.append({"kernel": kernel, "bias": np.asarray(bias, np.float32)})
    return tuple(params)


def _backend() -> str:
    try:
        import keras

        return keras.backend.backend()
    except ImportError:  # pragma: no cover - a model object implies Keras is importable
        return os.environ.get("KERAS_BACKEND", "tensorflow")


def from_keras(model: Any, *, weights: bool = False, input_dim: int | None = None) -> KerasSpec:
    """Convert a Keras 3 Sequential or functional chain of Dense layers (and, when
    compiled, its optimizer and loss) into stablelearn's spec; `weights=True` also copies
    the current weights. Unsupported layers or settings raise a ConfigError naming them."""
    layers = _chain(model)
    dims = _input_dim(model, input_dim)
    specs, dense_layers = _dense_specs(layers)
    optimizer = getattr(model, "optimizer", None)
    compiled = optimizer is not None and getattr(model, "compiled", True)
    converted_optimizer = keras_optimizer(optimizer) if compiled else None
    loss, from_logits = (None, False)
    if compiled and getattr(model, "loss", None) is not None:
        loss, from_logits = keras_loss(model.loss)
    backend = _backend()
    if from_logits:
        if specs[-1].activation != "linear":
            raise ConfigError(
                f"Keras model {model.name!r} computes its loss from logits but its output layer "
                f"applies {specs[-1].activation!r}; an output layer for from_logits=True is linear."
            )
        wanted = _LOGIT_OUTPUTS.get(loss)
        if wanted is None:
            raise _unsupported(f"Loss {loss!r} with from_logits", "cross-entropy from logits")
        # the same loss and gradients: stablelearn's cross-entropies read the logits
        last = specs[-1]
        specs[-1] = Dense(
            last.units, wanted, last.kernel_initializer, last.bias_initializer, last.use_bias
        )
    bce_form = "logits" if from_logits or backend == "tensorflow" else "clipped"
    mlp = MLP(dims, tuple(specs[:-1]), specs[-1])
    params = _params(dense_layers, specs) if weights else None
    if params is not None and not all(
        np.isfinite(p).all() for layer in params for p in layer.values()
    ):
        raise ConfigError(
            f"Keras model {model.name!r} has NaN or Inf weights; nothing to start from."
        )
    return KerasSpec(
        model=mlp,
        optimizer=converted_optimizer,
        loss=loss,
        bce_form=bce_form,
        params=params,
        name=str(getattr(model, "name", "model")),
        backend=backend,
        layer_names=tuple(str(layer.name) for layer in dense_layers),
    )


def check_input_width(
    spec: KerasSpec, file_name: str, n_features: int, data: str, note: str = ""
) -> None:
    """A saved model must take as many inputs as the data has feature columns."""
    if spec.model.input_dim != n_features:
        raise ConfigError(
            f"{file_name} takes {spec.model.input_dim} input features but {data} has "
            f"{n_features} feature columns{note}."
        )


def import_keras() -> Any:
    """Keras 3, on the JAX backend unless the user chose one (JAX is always installed)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as err:
        raise ConfigError(
            f"Reading a Keras model needs Keras 3 ({err}); install it with "
            "pip install 'stablelearn[keras]'."
        ) from None
    if not str(getattr(keras, "__version__", "3")).startswith("3"):
        raise ConfigError(f"stablelearn needs Keras 3, found Keras {keras.__version__}.")
    return keras


def load_model_file(path: str | Path) -> Any:
    """Load a saved Keras model (.keras, or legacy .h5), with one clear sentence if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No Keras model file at {path}.")
    if path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise ConfigError(
            f"{path.name} is not a Keras model file; save your model with model.save('model.keras')."
        )
    keras = import_keras()
    try:
        with warnings.catch_warnings():  # e.g. optimizer variables that are not restored
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, compile=True)
    except Exception as err:  # Keras raises many types for a bad or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{path.name} could not be read as a Keras model ({reason[:200]})."
        ) from None


def spec_from_file(path: str | Path, input_dim: int | None = None) -> KerasSpec:
    """The spec of a saved Keras model file; every error names the file."""
    model = load_model_file(path)
    try:
        return from_keras(model, input_dim=input_dim)
    except ConfigError as err:
        raise ConfigError(f"{Path(path).name}: {err}") from None
