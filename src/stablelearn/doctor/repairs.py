"""The repairs the doctor can try, as a registry of typed objects.

Each repair has an id (what detectors point at, see stablelearn.diagnostics), the name
users see, a one-line description, and `apply`: the user's data/model/optimizer tables
in, the repaired tables out, or None where the repair does not apply (already in place,
or the wrong task). Adding a repair: one entry here, and its id in the detectors that
call for it.
"""

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stablelearn.diagnostics import Finding
from stablelearn.doctor.causes import upstream_rank
from stablelearn.optim import clipping_of, with_clipping

Tables = dict[str, Any]
MAX_CANDIDATES = 8
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
DATA_FINDINGS = ("unscaled_inputs", "target_spread")  # what scaling the data repairs


@dataclass(frozen=True)
class Repair:
    id: str
    name: str
    description: str
    apply: Callable[[Tables, str], Tables | None]


@dataclass(frozen=True)
class Candidate:
    """A repair applied to the user's configuration: its name and the tables it trains with."""

    name: str
    tables: dict[str, Any]
    repair_id: str = ""
    path: tuple[str, ...] = ()  # the repair ids applied to the user's configuration


def _scale(part: str, kind: str) -> Callable[[Tables, str], Tables | None]:
    key = f"{part}_scaler"

    def apply(tables: Tables, task: str) -> Tables | None:
        if tables["data"][key] == kind or (part == "target" and task != "regression"):
            return None
        tables["data"][key] = kind
        return tables

    return apply


def _clip(mode: str, threshold: float) -> Callable[[Tables, str], Tables | None]:
    def apply(tables: Tables, task: str) -> Tables | None:
        if tables["optimizer"].get(mode) == threshold:
            return None
        tables["optimizer"] = with_clipping(tables["optimizer"], mode, threshold)
        return tables

    return apply


def _lower_learning_rate(tables: Tables, task: str) -> Tables | None:
    tables["optimizer"]["learning_rate"] = tables["optimizer"]["learning_rate"] / 10
    return tables


def _adam(tables: Tables, task: str) -> Tables | None:
    if tables["optimizer"]["name"] == "adam":
        return None
    clip = clipping_of(tables["optimizer"])
    tables["optimizer"] = {"name": "adam", "learning_rate": 0.001, **clip}
    return tables


def _activation(activation: str) -> Callable[[Tables, str], Tables | None]:
    def apply(tables: Tables, task: str) -> Tables | None:
        hidden = tables["model"]["hidden"]
        if not hidden or all(
            (h["activation"], h["kernel_initializer"]) == (activation, "he_uniform") for h in hidden
        ):
            return None
        for layer in hidden:
            layer["activation"], layer["kernel_initializer"] = activation, "he_uniform"
        return tables

    return apply


def _fewer_layers(tables: Tables, task: str) -> Tables | None:
    hidden = tables["model"]["hidden"]
    if len(hidden) < 2:
        return None
    tables["model"]["hidden"] = hidden[: max(1, len(hidden) // 2)]
    return tables


DEEP = 4  # hidden layers from which normalization and skip connections are tried


def _deeper(batch_norm: bool, residual: bool) -> Callable[[Tables, str], Tables | None]:
    """Batch normalization and/or skip connections on a deep stack (DEEP or more hidden
    layers): a skip goes around every hidden layer whose input has its own width."""

    def apply(tables: Tables, task: str) -> Tables | None:
        hidden = tables["model"]["hidden"] = [dict(layer) for layer in tables["model"]["hidden"]]
        if len(hidden) < DEEP:
            return None
        width = None  # the first layer's input is the features: no skip there
        for layer in hidden:
            if batch_norm:
                layer["batch_norm"] = True
            if residual and width == layer["units"]:
                layer["residual"] = True
            width = layer["units"]
        return tables

    return apply


REPAIRS: dict[str, Repair] = {
    r.id: r
    for r in (
        Repair("scale_inputs_standard", "scale inputs (standard)", "standardize the inputs (fitted on the training rows)", _scale("input", "standard")),
        Repair("scale_inputs_minmax", "scale inputs (minmax)", "min-max scale the inputs to [0, 1]", _scale("input", "minmax")),
        Repair("scale_target_standard", "scale target (standard)", "standardize the regression target", _scale("target", "standard")),
        Repair("scale_target_minmax", "scale target (minmax)", "min-max scale the regression target", _scale("target", "minmax")),
        Repair("clipnorm_1", "clipnorm 1.0", "clip each weight tensor's gradient norm to 1 (Keras clipnorm)", _clip("clipnorm", 1.0)),
        Repair("clipvalue_5", "clipvalue 5.0", "clip every gradient entry to [-5, 5] (Keras clipvalue)", _clip("clipvalue", 5.0)),
        Repair("lower_learning_rate", "learning rate / 10", "a learning rate ten times smaller", _lower_learning_rate),
        Repair("adam", "adam", "Adam with Keras' defaults (learning rate 0.001), keeping any clipping", _adam),
        Repair("relu_he", "relu + he_uniform", "ReLU hidden layers with He initialization", _activation("relu")),
        Repair("leaky_relu_he", "leaky_relu + he_uniform", "leaky ReLU hidden layers with He initialization", _activation("leaky_relu")),
        Repair("elu_he", "elu + he_uniform", "ELU hidden layers with He initialization", _activation("elu")),
        Repair("fewer_layers", "fewer layers", "half as many hidden layers (at least one)", _fewer_layers),
        Repair("batch_norm", "batch normalization", "BatchNormalization between each hidden Dense and its activation (Keras defaults)", _deeper(True, False)),
        Repair("residual", "skip connections", "x + layer(x) around every hidden layer of equal width", _deeper(False, True)),
        Repair("batch_norm_residual", "batch normalization + skip connections", "both, as residual networks use them", _deeper(True, True)),
    )
}  # fmt: skip


def repair_name(repair_id: str) -> str:
    return REPAIRS[repair_id].name


def repair_tables(repair_id: str, base: Mapping[str, Any], task: str) -> dict[str, Any] | None:
    """The tables of a repair applied to the user's `base` tables, or None where it does
    not apply."""
    if repair_id not in REPAIRS:
        raise ValueError(f"unknown repair {repair_id!r}")
    return REPAIRS[repair_id].apply(copy.deepcopy(dict(base)), task)


def combined_scaling(
    base: Mapping[str, Any], task: str, findings: Sequence[Finding]
) -> Candidate | None:
    """Inputs and target scaled together, the first thing a practitioner tries when both
    are unscaled: each alone can fail where both work (the first scaling repair each
    data finding names, inputs first)."""
    tables = copy.deepcopy(dict(base))
    ids = []
    for finding_id in DATA_FINDINGS:
        finding = next((f for f in findings if f.id == finding_id), None)
        scaling = [r for r in finding.repairs if r.startswith("scale_")] if finding else []
        repaired = REPAIRS[scaling[0]].apply(copy.deepcopy(tables), task) if scaling else None
        if repaired is not None and repaired != tables:
            tables, ids = repaired, [*ids, scaling[0]]
    if len(ids) < 2:
        return None
    return Candidate(" + ".join(repair_name(r) for r in ids), tables, ids[0], tuple(ids))


def candidate_repairs(
    base: Mapping[str, Any], task: str, findings: Sequence[Finding]
) -> list[Candidate]:
    """The repairs the findings call for, most severe findings first and, among equally
    severe ones, causes before their symptoms (doctor.causes: dying ReLUs before the
    vanishing gradients and the flat loss they cause), at most 8; scaling inputs and
    target together first when both are unscaled. The order is what a tight budget
    keeps (doctor.search trains the first repairs that fit)."""
    ids: list[str] = []
    order = sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], upstream_rank(f)))
    for finding in order:
        ids += [repair_id for repair_id in finding.repairs if repair_id not in ids]
    combined = combined_scaling(base, task, findings)
    candidates = [combined] if combined is not None else []
    for repair_id in ids:
        tables = repair_tables(repair_id, base, task)
        if tables is not None and tables != base:
            candidates.append(Candidate(repair_name(repair_id), tables, repair_id, (repair_id,)))
        if len(candidates) == MAX_CANDIDATES:
            break
    return candidates
