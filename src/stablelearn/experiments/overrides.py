"""Experiment tables as data: how a variant's tables override the base (the rules a
user means), and resolved specs written back as tables that parse into the same specs."""

import copy
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from stablelearn.data import Scaler
from stablelearn.experiments.parse import LAYER_KEYS
from stablelearn.initializers import Initializer
from stablelearn.model import MLP, Dense
from stablelearn.optim import CLIP_MODES, FORM_DEFAULTS, Optimizer, without_clipping

if TYPE_CHECKING:
    from stablelearn.experiments.spec import Variant

TABLES = ("data", "model", "optimizer", "variants")


def merge_variant(base: Mapping[str, Any], variant: Mapping[str, Any]) -> dict[str, Any]:
    """A variant's tables over the base, with the replacements a user means: `depth` and
    `hidden` replace each other, another optimizer `name` replaces the whole optimizer,
    and a clip mode replaces the base's clip mode (Keras takes only one)."""
    base = copy.deepcopy(dict(base))
    model, optimizer = variant.get("model"), variant.get("optimizer")
    if isinstance(model, Mapping) and isinstance(base.get("model"), Mapping):
        for mine, other in (("depth", "hidden"), ("hidden", "depth")):
            if mine in model:
                base["model"].pop(other, None)
                if other == "depth":
                    for key in LAYER_KEYS:
                        base["model"].pop(key, None)
    if isinstance(optimizer, Mapping) and isinstance(base.get("optimizer"), Mapping):
        if (
            str(optimizer.get("name", base["optimizer"].get("name", "sgd"))).lower()
            != str(base["optimizer"].get("name", "sgd")).lower()
        ):
            base["optimizer"] = {}
        elif any(mode in optimizer for mode in CLIP_MODES):
            base["optimizer"] = without_clipping(base["optimizer"])
    return merge(base, variant)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base`, tables merged key by key, everything else replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def initializer_table(init: Initializer) -> str | dict[str, Any]:
    """The TOML form of an initializer: its name, or a table with its arguments."""
    return init.name if not init.args else {"name": init.name, **init.kwargs}


def layer_table(layer: Dense) -> dict[str, Any]:
    table = {
        "units": layer.units,
        "activation": layer.activation,
        "kernel_initializer": initializer_table(layer.kernel_initializer),
        "bias_initializer": initializer_table(layer.bias_initializer),
    }
    if not layer.use_bias:
        table["use_bias"] = False
    return table | {name: True for name in ("batch_norm", "residual") if getattr(layer, name)}


def model_table(model: MLP) -> dict[str, Any]:
    """The [model] table that parses back into `model` (the inverse of _model)."""
    return {
        "hidden": [layer_table(layer) for layer in model.hidden],
        "output": layer_table(model.output),
    }


def optimizer_table(optimizer: Optimizer) -> dict[str, Any]:
    """The [optimizer] table that parses back into `optimizer` (unset clipping left out)."""
    fields = {
        k: v
        for k, v in asdict(optimizer).items()
        if v is not None and not (k in FORM_DEFAULTS and v == FORM_DEFAULTS[k])
    }
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return {"name": type(optimizer).__name__.lower(), **fields}


def variant_tables(variant: "Variant") -> dict[str, Any]:
    """data, model and optimizer tables of a resolved variant."""
    return {
        "data": {
            "input_scaler": scaler_value(variant.input_scaler),
            "target_scaler": scaler_value(variant.target_scaler),
        },
        "model": model_table(variant.model),
        "optimizer": optimizer_table(variant.optimizer),
    }


def scaler_value(scaler: Scaler) -> str | dict[str, Any]:
    if scaler.kind == "minmax" and scaler.feature_range != (0.0, 1.0):
        return {"kind": "minmax", "feature_range": list(scaler.feature_range)}
    return scaler.kind


def settings_only(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An experiment table without its data/model/optimizer tables, variants and model file."""
    return {k: v for k, v in raw.items() if k not in (*TABLES, "model_file")}
