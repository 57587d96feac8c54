"""Typed reading of experiment tables: every error names the file and the field, e.g.
"input-scaling.toml: optimizer.learning_rate must be in (0, inf), got -1"."""

from collections.abc import Iterable, Mapping
from typing import Any

from stablelearn.data import Scaler, as_scaler
from stablelearn.errors import ConfigError
from stablelearn.model import MLP, Dense, skips_where_widths_match
from stablelearn.optim import Optimizer, make_optimizer

DATA_KEYS = {"input_scaler", "target_scaler"}
LAYER_KEYS = (
    "units",
    "activation",
    "kernel_initializer",
    "bias_initializer",
    "use_bias",
    "batch_norm",
    "residual",
)
MODEL_KEYS = {"hidden", "depth", *LAYER_KEYS, "output"}


class Fields:
    """Typed access to one TOML table that names the offending field in every error."""

    def __init__(self, source: str, table: Mapping[str, Any], prefix: str, allowed: Iterable[str]):
        allowed = set(allowed)
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"{source}: {prefix.rstrip('.') or 'the file'} must be a table, got {table!r}."
            )
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ConfigError(
                f"{source}: unknown field {prefix}{unknown[0]}; expected one of: {', '.join(sorted(allowed))}."
            )
        self.source, self.table, self.prefix = source, table, prefix

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.prefix}{key} {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.table:
            if default is ...:
                raise self.error(key, "is required.")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.error(key, f"must be {type_name(kind)}, got {value!r}.")
        return value

    def positive_int(self, key: str, default: Any = ...) -> int:
        value = self.get(key, int, default)
        if value is not None and value < 1:
            raise self.error(key, f"must be a positive integer, got {value!r}.")
        return value


def type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def parse_layer(source: str, table: Any, prefix: str) -> Dense:
    fields = Fields(source, table, prefix, LAYER_KEYS)
    kwargs = {
        "units": fields.get("units", int),
        "activation": fields.get("activation", str, "linear"),
        "kernel_initializer": fields.get("kernel_initializer", (str, dict), "glorot_uniform"),
        "bias_initializer": fields.get("bias_initializer", (str, dict), "zeros"),
        "use_bias": fields.get("use_bias", bool, True),
        "batch_norm": fields.get("batch_norm", bool, False),
        "residual": fields.get("residual", bool, False),
    }
    try:
        return Dense(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.')}: {err}") from None


def parse_model(source: str, table: Any, n_features: int, prefix: str) -> MLP:
    fields = Fields(source, table, prefix, MODEL_KEYS)
    if "hidden" in table and "depth" in table:
        raise fields.error("hidden", "and depth are alternatives; give one of them.")
    if "depth" in table:
        depth = fields.get("depth", int)
        if depth < 0:
            raise fields.error("depth", f"must be zero or more, got {depth}.")
        layer = parse_layer(
            source, {k: table[k] for k in LAYER_KEYS if k in table}, f"{prefix}(depth layer)."
        )
        # residual on a stack: around every layer whose input has its width
        hidden = skips_where_widths_match(n_features, [layer] * depth, layer.residual)
    else:
        extra = sorted(set(table) & set(LAYER_KEYS))
        if extra:
            raise fields.error(
                extra[0], "only applies together with depth; put it inside each hidden layer."
            )
        layers = fields.get("hidden", list, [])
        hidden = [
            parse_layer(source, layer, f"{prefix}hidden[{i}].") for i, layer in enumerate(layers)
        ]
    output = parse_layer(source, fields.get("output", dict), f"{prefix}output.")
    try:
        return MLP(n_features, tuple(hidden), output)
    except ConfigError as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.')}: {err}") from None


def parse_optimizer(source: str, table: Any, prefix: str) -> Optimizer:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.')} must be a table, got {table!r}.")
    kwargs = dict(table)
    name = kwargs.pop("name", "sgd")
    try:
        return make_optimizer(name, **kwargs)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.')}: {err}") from None


def parse_scalers(source: str, table: Any, prefix: str) -> tuple[Scaler, Scaler]:
    fields = Fields(source, table, prefix, DATA_KEYS)
    try:
        return (
            as_scaler(fields.get("input_scaler", (str, dict), "none")),
            as_scaler(fields.get("target_scaler", (str, dict), "none")),
        )
    except ConfigError as err:
        raise ConfigError(f"{source}: {prefix.rstrip('.')}: {err}") from None
