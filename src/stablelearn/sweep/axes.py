"""A sweep's axes: which fields an axis may vary, how each value overrides the base
experiment's tables, and the clip_mode/clip_threshold pseudo-fields."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stablelearn.checks import is_number
from stablelearn.errors import ConfigError
from stablelearn.experiments.overrides import merge_variant, settings_only
from stablelearn.experiments.parse import LAYER_KEYS
from stablelearn.optim import CLIP_MODES, SGD, Adam, RMSprop, with_clipping

TOP_LEVEL_AXES = ("batch_size", "epochs", "bce_form")
DATA_AXES = ("input_scaler", "target_scaler")
MODEL_AXES = ("depth", *LAYER_KEYS)
CLIP_AXES = ("clip_mode", "clip_threshold")
OPTIMIZER_AXES = tuple(
    sorted(
        {"name", *CLIP_AXES}
        | {f.name for cls in (SGD, Adam, RMSprop) for f in dataclasses.fields(cls)}
    )
)


@dataclass(frozen=True)
class Axis:
    """One axis: a field path (e.g. "model.depth") or a named axis of overrides."""

    name: str
    field: str | None  # None for a named axis
    labels: tuple[str, ...]
    overrides: tuple[dict[str, Any], ...]  # per value, the tables it sets
    values: tuple[Any, ...]  # per value, what the figures put on an axis

    @property
    def numeric(self) -> bool:
        return all(is_number(v) and not isinstance(v, bool) for v in self.values)


def value_label(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={value_label(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value_label(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _field_override(path: str, value: Any) -> dict[str, Any]:
    """{"model": {"depth": 5}} for ("model.depth", 5); top-level fields stay top-level."""
    if "." not in path:
        return {path: value}
    table, key = path.split(".", 1)
    return {table: {key: value}}


AXIS_FIELDS = {
    "": TOP_LEVEL_AXES,
    "data": DATA_AXES,
    "model": MODEL_AXES,
    "optimizer": OPTIMIZER_AXES,
}


def _check_field(source: str, path: str) -> None:
    table, _, key = path.rpartition(".")
    if key not in AXIS_FIELDS.get(table, ()):
        every = [f"{t}.{k}" if t else k for t, keys in AXIS_FIELDS.items() for k in keys]
        raise ConfigError(
            f"{source}: unknown field axes.{path!r}; an axis can vary: {', '.join(every)}."
        )


def axis_keys(raw: Mapping[str, Any]) -> list[str]:
    """The axes of a parsed sweep file by field or name, without validating it."""
    table = raw.get("axes", {})
    return [key for key, _ in flatten_axes(table)] if isinstance(table, Mapping) else []


def flatten_axes(table: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """[(path or name, values)] in file order. `model.depth = [...]` written without
    quotes parses as a nested table; it is read as the field "model.depth"."""
    entries: list[tuple[str, Any]] = []
    for key, value in table.items():
        if key in ("data", "model", "optimizer") and isinstance(value, Mapping):
            for sub, values in value.items():
                entries.append((f"{key}.{sub}", values))
        else:
            entries.append((key, value))
    return entries


def parse_axis(source: str, key: str, value: Any) -> Axis:
    where = f"{source}: axes.{key}"
    if isinstance(value, list):
        if "." not in key and key not in TOP_LEVEL_AXES:
            raise ConfigError(
                f"{where}: a list of values needs a field such as 'model.depth'; a named axis "
                "is a table of label = {overrides}."
            )
        _check_field(source, key)
        if not value:
            raise ConfigError(f"{where} is empty; give at least one value.")
        labels = tuple(value_label(v) for v in value)
        overrides = tuple(_field_override(key, v) for v in value)
        name = key.rpartition(".")[2]
        return Axis(name, key, labels, overrides, tuple(value))
    if isinstance(value, Mapping):
        if not value:
            raise ConfigError(f"{where} is empty; give at least one value.")
        overrides = []
        for label, override in value.items():
            if not isinstance(override, Mapping):
                raise ConfigError(
                    f"{where}.{label} must be a table of overrides such as "
                    f'{{model = {{activation = "tanh"}}}}, got {override!r}.'
                )
            for table, fields in override.items():
                if table in TOP_LEVEL_AXES:
                    continue
                if table not in ("data", "model", "optimizer") or not isinstance(fields, Mapping):
                    raise ConfigError(
                        f"{where}.{label}: unknown field {table!r}; an override sets data, model, "
                        f"optimizer tables or {', '.join(TOP_LEVEL_AXES)}."
                    )
                for name in fields:
                    _check_field(f"{where}.{label}", f"{table}.{name}")
            overrides.append(dict(override))
        labels = tuple(value)
        return Axis(key, None, labels, tuple(overrides), labels)
    raise ConfigError(
        f"{where} must be a list of values or a table of label = {{overrides}}, got {value!r}."
    )


def depth_form(source: str, model: Mapping[str, Any], axes: Sequence[Axis]) -> dict[str, Any]:
    """The base model with identical hidden layers rewritten as depth/units/..., so that
    an axis over depth or a per-layer field applies to every hidden layer."""
    model = dict(model)
    touched = {
        name
        for axis in axes
        for override in axis.overrides
        for name in override.get("model", {})
        if name in ("depth", *LAYER_KEYS)
    }
    if not touched or "hidden" not in model:
        return model
    layers = model["hidden"]
    if not isinstance(layers, list) or not layers:
        return model  # the experiment's validation reports it
    if any(layer != layers[0] for layer in layers):
        raise ConfigError(
            f"{source}: axes vary model.{sorted(touched)[0]}, which needs a base [model] with "
            "depth = ... or identical hidden layers."
        )
    model.pop("hidden")
    first = layers[0] if isinstance(layers[0], Mapping) else {}
    return {"depth": len(layers), **first, **model}


def _resolve_clipping(source: str, optimizer: dict[str, Any]) -> dict[str, Any]:
    """Turn the pseudo-fields clip_mode/clip_threshold into the optimizer's own field."""
    if not any(key in optimizer for key in CLIP_AXES):
        return optimizer
    optimizer = dict(optimizer)
    base_modes = [mode for mode in CLIP_MODES if optimizer.get(mode) is not None]
    mode = optimizer.pop("clip_mode", base_modes[0] if base_modes else None)
    threshold = optimizer.pop("clip_threshold", None)
    if mode is not None and mode != "none" and mode not in CLIP_MODES:
        raise ConfigError(
            f"{source}: optimizer.clip_mode must be one of none, {', '.join(CLIP_MODES)}, got {mode!r}."
        )
    if threshold is None and mode not in (None, "none"):
        threshold = optimizer.get(mode)
    if mode is None:
        raise ConfigError(
            f"{source}: optimizer.clip_threshold needs a clip mode: add an optimizer.clip_mode "
            "axis or set clipnorm/clipvalue/global_clipnorm in the base [optimizer]."
        )
    if mode != "none" and threshold is None:
        raise ConfigError(f"{source}: optimizer.clip_mode {mode!r} needs a clip_threshold.")
    return with_clipping(optimizer, mode, threshold)


def cell_raw(base: Mapping[str, Any], override: Mapping[str, Any], source: str) -> dict[str, Any]:
    tables = {key: base.get(key, {}) for key in ("data", "model", "optimizer")}
    merged = merge_variant(tables, {k: v for k, v in override.items() if k in tables})
    merged["optimizer"] = _resolve_clipping(source, merged["optimizer"])
    top = {k: v for k, v in override.items() if k not in tables}
    return {**settings_only(base), **top, **merged}


def axis_names_unique(axes: list[Axis]) -> list[Axis]:
    counts: dict[str, int] = {}
    for axis in axes:
        counts[axis.name] = counts.get(axis.name, 0) + 1
    return [
        dataclasses.replace(axis, name=axis.field) if counts[axis.name] > 1 and axis.field else axis
        for axis in axes
    ]
