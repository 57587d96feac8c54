"""Detectors for training problems, each with documented thresholds and evidence.

Two kinds. Data checks look at a dataset before any training (NaN/Inf, constant
columns, inputs of very different scales, a regression target with a large spread,
class imbalance). Training detectors read a TrainResult's history and telemetry
(stablelearn.telemetry) for the models of one configuration trained over several seeds.

Following AUTOTRAINER (Zhang et al., ICSE 2021), gradient and unit symptoms count
only for models that also fail to learn: a few dead ReLUs in a model that fits the
data are not a problem. "Fails to learn" has a principled bar here: the final training
loss is at least 90% of the loss of the best constant prediction (the training mean
for regression, the class frequencies for classification).

Thresholds, with what the lesson's case studies measured (10-30 seeds each):
- exploding: loss or weights NaN/Inf, or the largest per-epoch gradient norm grows
  1000x above its first-epoch value. Unscaled regression: Inf gradient norm within
  the first 8-9 steps, NaN loss in epoch 1; scaled regression: max growth < 1.5x.
  Its evidence says where the first NaN/Inf came from (`nan_origin`: the most common
  step/layer/direction among the affected models, see NanOrigin); the unscaled
  regression's is the output layer, forward: its output or the loss overflows at
  step 8-9 after the weights grew large but finite.
- vanishing: the smallest hidden-layer gradient norm is at most 1/10 of the output
  layer's (median over epochs). Healthy runs measured 0.37-0.50 (scaled regression),
  1.1-2.1 (ReLU-5), 1.1-1.9 (tanh-1); ReLU-20 failures 0 (dead layers pass no
  gradient); tanh-5 failures 0.10-0.16: the tanh-5 runs fail without an
  order-of-magnitude gap and are caught by `not_learning` (and `saturation`).
- saturation: at least half of a tanh/sigmoid hidden layer's activations beyond
  |tanh| > 0.99 / sigmoid outside [0.01, 0.99] at the end of training (DeepDiagnosis,
  ICSE 2022, uses > 50% of pre-activations beyond +-5).
- dying ReLU: at least 70% of a hidden layer's units output zero for every training
  example at the end of training (AUTOTRAINER and DeepDiagnosis use 70%).
- oscillating: in the second half of training the loss rises by more than 10% from one
  epoch to the next in at least 30% of the epochs, while the final loss is still at
  least 10% of the constant prediction's (the lesson's runs: at most 9% of epochs; the
  clipped unscaled-target runs jump around at a loss 10^4 times below that level, which
  is noise, not a problem).
- clipping active (information): clipping changed the gradient in at least half of all
  steps: the clip threshold, not the data, sets the step size.
"""

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stablelearn.data import Dataset, varying_columns
from stablelearn.results import TrainResult

NOT_LEARNING_RATIO = 0.9
EXPLODING_GROWTH = 1e3
VANISHING_RATIO = 0.1
SATURATION_FRACTION = 0.5
DEAD_FRACTION = 0.7
OSCILLATION_RISE = 0.10
OSCILLATION_SHARE = 0.3
OSCILLATION_LEVEL = 0.1
CLIPPING_SHARE = 0.5
# data checks
SCALE_RATIO = 100.0  # feature spreads differing by two orders of magnitude
LARGE_SCALE = 100.0  # a feature or target whose values reach the hundreds
TARGET_SPREAD = 10.0  # a target std above 10 makes MSE gradients large
IMBALANCE_RATIO = 0.25  # smallest class / largest: a 20% minority of two classes


@dataclass(frozen=True)
class Finding:
    """One detected problem: what, how bad, the evidence, and which repairs fit it."""

    id: str
    title: str
    severity: str  # "critical", "warning" or "info"
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    repairs: tuple[str, ...] = ()  # ids of stablelearn.doctor.repairs.REPAIRS, best first

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "message": self.message,
            "evidence": self.evidence,
            "repairs": list(self.repairs),
        }


# --- data checks --------------------------------------------------------------------


def constant_columns(dataset: Dataset) -> list[str]:
    return list(dataset.column_names(~varying_columns(dataset.x)))


def check_data(dataset: Dataset) -> list[Finding]:
    """Problems visible in the data alone. (NaN/Inf never get here: Dataset rejects them
    with a message naming the columns.)"""
    findings = []
    constant = constant_columns(dataset)
    if constant:
        findings.append(
            Finding(
                "constant_columns", "Constant columns", "warning",
                f"{len(constant)} feature column(s) never change ({', '.join(constant[:8])}); they carry no signal and are dropped.",
                {"columns": constant},
            )
        )  # fmt: skip
    varying = [i for i, name in enumerate(dataset.feature_names) if name not in constant]
    if varying:
        x = dataset.x[:, varying]
        std = x.std(axis=0)
        scale = np.abs(x).max(axis=0)
        ratio = float(std.max() / std.min())
        if ratio >= SCALE_RATIO or scale.max() >= LARGE_SCALE:
            names = [dataset.feature_names[i] for i in varying]
            findings.append(
                Finding(
                    "unscaled_inputs", "Unscaled inputs", "warning",
                    f"Input spreads differ by {ratio:.0f}x and reach |x| = {scale.max():.3g}; large or uneven inputs "
                    "make large, unstable weights. Scale the inputs (fit the scaler on the training rows).",
                    {"std_min": float(std.min()), "std_max": float(std.max()), "spread_ratio": ratio,
                     "largest_feature": names[int(scale.argmax())], "max_abs": float(scale.max())},
                    ("scale_inputs_standard", "scale_inputs_minmax"),
                )
            )  # fmt: skip
    if dataset.task == "regression":
        std, peak = float(dataset.y.std()), float(np.abs(dataset.y).max())
        if std >= TARGET_SPREAD or peak >= LARGE_SCALE:
            findings.append(
                Finding(
                    "target_spread", "Regression target with a large spread", "warning",
                    f"The target has a standard deviation of {std:.3g} (|y| up to {peak:.3g}); squared errors and their "
                    "gradients scale with it, which can explode the weights. Scale the target.",
                    {"target_std": std, "target_max_abs": peak, "target_mean": float(dataset.y.mean())},
                    ("scale_target_standard", "scale_target_minmax", "clipnorm_1", "clipvalue_5"),
                )
            )  # fmt: skip
    else:
        counts = np.bincount(dataset.y.astype(int))
        counts = counts[counts > 0]
        share = float(counts.min() / counts.sum())
        ratio = float(counts.min() / counts.max())
        if ratio < IMBALANCE_RATIO:  # ten balanced classes hold 10% each: not imbalanced
            findings.append(
                Finding(
                    "class_imbalance", "Class imbalance", "warning",
                    f"The smallest class holds {share:.1%} of the rows, {ratio:.0%} as many as the largest; "
                    "accuracy can look good while that class is ignored.",
                    {"class_counts": [int(c) for c in counts], "minority_share": share,
                     "smallest_to_largest": ratio},
                )
            )  # fmt: skip
    return findings


# --- training detectors ---------------------------------------------------------------


def baseline_loss(y_train: np.ndarray, loss: str) -> float:
    """The training loss of the best constant prediction: what 'learning nothing' scores."""
    if loss == "mse":
        return float(np.var(y_train))
    counts = np.bincount(y_train.astype(int))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@dataclass(frozen=True, eq=False)
class Observation:
    """What the training detectors read about the models of one configuration, whether
    stablelearn's engine trained them (`from_result`) or a callback watched a Keras model.

    loss is the training loss [models, epochs]; telemetry holds stablelearn.telemetry's
    arrays (per-layer [models, epochs, layers], dead/saturated [models, epochs, hidden]);
    layer_names name the per-layer columns (the deepest model's; the output layer last)
    and hidden_names the dead/saturated ones. Models of different depths (packed in one
    program) are padded with NaN after their own output layer; `layers` says how many
    columns each model has (None: all of them).
    """

    loss: np.ndarray
    telemetry: Mapping[str, np.ndarray]
    diverged_epoch: np.ndarray  # [models], 1-based, -1 if never
    seeds: tuple[int, ...]
    layer_names: tuple[str, ...]
    hidden_names: tuple[str, ...]
    baseline_loss: float  # the best constant prediction's training loss
    layers: tuple[int, ...] | None = None  # per model, its per-layer columns
    epochs: np.ndarray | None = None  # the 1-based epoch of each column; None: 1..n

    @classmethod
    def from_result(cls, result: TrainResult) -> "Observation":
        run = result.runs[0]
        depths = [len(r.model.layers) for r in result.runs]
        names = tuple(result.layer_names(int(np.argmax(depths))))
        return cls(
            loss=result.history["loss"],
            telemetry=result.telemetry,
            diverged_epoch=result.diverged_epoch,
            seeds=tuple(int(r.seed) for r in result.runs),
            layer_names=names,
            hidden_names=names[:-1],
            baseline_loss=baseline_loss(run.data.train_y, run.config.loss),
            layers=tuple(depths),
            epochs=result.history_epochs,
        )

    def nan_origins(self) -> list["NanOrigin | None"]:
        """Per model, where its first NaN/Inf came from (None: never, or not recorded)."""
        t = self.telemetry or {}
        if "first_nonfinite_layer" not in t:
            return [None] * self.n_models
        depths = self.output_column() + 1
        origins: list[NanOrigin | None] = []
        for m in range(self.n_models):
            step, layer = int(t["first_nonfinite_step"][m]), int(t["first_nonfinite_layer"][m])
            if step < 1 or layer < 0:
                origins.append(None)
                continue
            n = int(depths[m])
            name = self.layer_names[layer] if layer < n - 1 else self.layer_names[-1]
            direction = str(t["first_nonfinite_direction"][m])
            kind = str(t["first_nonfinite_kind"][m])
            origins.append(NanOrigin(step, layer, n, name, direction, kind))
        return origins

    def output_column(self) -> np.ndarray:
        """Per model, the per-layer column of its output layer."""
        n = len(self.layer_names)
        return np.asarray(self.layers if self.layers is not None else [n] * self.n_models) - 1

    @property
    def n_models(self) -> int:
        return self.loss.shape[0]

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_epoch >= 1


Observed = TrainResult | Observation


@dataclass(frozen=True)
class NanOrigin:
    """Where a model's first NaN/Inf came from: the 1-based optimizer step, the layer
    (0-based among the model's `n_layers` layers, the output layer last) and the
    direction, "forward" (kind "output": the layer's output; "loss") or "backward"
    ("gradient"; "update": the weights after a finite gradient's update). The rule is
    stablelearn.telemetry.origin's."""

    step: int
    layer: int
    n_layers: int
    layer_name: str
    direction: str
    kind: str

    @property
    def where(self) -> str:
        """ "the output layer" or "layer 2 of 4" (1-based, as users count layers)."""
        if self.layer == self.n_layers - 1:
            return "the output layer"
        return f"layer {self.layer + 1} of {self.n_layers}"

    def describe(self) -> str:
        """ "step 3, layer 2 of 4, backward (gradient)"."""
        return f"step {self.step}, {self.where}, {self.direction} ({self.kind})"

    def phrase(self) -> str:
        """What went non-finite first, in a few words: "the gradient of layer 2 of 4"."""
        if self.kind == "loss":
            return "the loss"
        what = {"output": "the output", "gradient": "the gradient", "update": "the update"}
        return f"{what.get(self.kind, self.kind)} of {self.where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "layer": self.layer,
            "layers": self.n_layers,
            "layer_name": self.layer_name,
            "where": self.where,
            "direction": self.direction,
            "kind": self.kind,
            "description": self.describe(),
        }


def nan_origin_summary(origins: "list[NanOrigin | None]") -> dict[str, Any] | None:
    """The most common origin (place, direction and kind; the earliest step breaks a
    tie) among models that have one, how many share it and from which step; None when
    no model has one."""
    found = [o for o in origins if o is not None]
    if not found:
        return None
    groups: dict[tuple[str, str, str], list[NanOrigin]] = {}
    for o in found:
        groups.setdefault((o.where, o.direction, o.kind), []).append(o)
    shared = min(groups.values(), key=lambda g: (-len(g), min(o.step for o in g)))
    first = min(shared, key=lambda o: o.step)
    sentence = f"first non-finite value at {first.describe()}"
    if len(found) > 1:
        sentence += f", in {len(shared)} of {len(found)} models"
    return {
        **first.to_json(),
        "phrase": first.phrase(),
        "models": len(shared),
        "of": len(found),
        "origins": len(groups),
        "sentence": sentence,
    }


def observe(result: Observed) -> Observation:
    return result if isinstance(result, Observation) else Observation.from_result(result)


def _models(obs: Observation, mask: np.ndarray) -> dict[str, Any]:
    idx = np.flatnonzero(mask)
    return {
        "models": [int(i) for i in idx],
        "seeds": [obs.seeds[i] for i in idx],
        "affected": f"{idx.size}/{obs.n_models}",
    }


def _first_epoch(obs: Observation, condition: np.ndarray) -> int | None:
    """1-based first (recorded) epoch where `condition` [epochs] holds, or None."""
    if not condition.any():
        return None
    column = int(np.argmax(condition))
    return int(obs.epochs[column]) if obs.epochs is not None else column + 1


def _final_loss_ratio(obs: Observation) -> np.ndarray:
    """Final training loss over the constant prediction's loss, per model (NaN if diverged)."""
    with np.errstate(all="ignore"):
        return obs.loss[:, -1] / obs.baseline_loss


def not_learning_mask(result: Observed) -> np.ndarray:
    ratio = _final_loss_ratio(observe(result))
    return ~np.isfinite(ratio) | (ratio >= NOT_LEARNING_RATIO)


def detect_not_learning(result: Observed) -> Finding | None:
    obs = observe(result)
    mask = not_learning_mask(obs) & ~obs.diverged
    if not mask.any():
        return None
    base = obs.baseline_loss
    final = obs.loss[mask, -1]
    return Finding(
        "not_learning", "Loss not decreasing", "warning",
        f"{mask.sum()} of {obs.n_models} models end no better than a constant prediction "
        f"(final training loss {np.median(final):.4g} vs {base:.4g} for the best constant).",
        {**_models(obs, mask), "baseline_loss": base, "final_loss_median": float(np.median(final))},
        ("adam", "relu_he", "scale_inputs_standard", "fewer_layers", "batch_norm_residual"),
    )  # fmt: skip


def detect_exploding(result: Observed) -> Finding | None:
    obs = observe(result)
    t = obs.telemetry
    grad_max = np.nanmax(t["grad_norm"], axis=2) if t else None  # [models, epochs]
    growth = np.zeros(obs.n_models)
    if grad_max is not None:
        with np.errstate(all="ignore"):
            growth = np.nanmax(grad_max, axis=1) / grad_max[:, 0]
    growing = np.isfinite(growth) & (growth >= EXPLODING_GROWTH)
    mask = obs.diverged | growing
    if not mask.any():
        return None
    evidence = _models(obs, mask)
    diverged = obs.diverged_epoch[obs.diverged]
    if diverged.size:
        evidence["diverged_epoch_min"] = int(diverged.min())
    if t:
        steps = t["first_nonfinite_step"][mask]
        steps = steps[steps > 0]
        if steps.size:
            evidence["first_nonfinite_step_min"] = int(steps.min())
        largest = t["grad_abs_max"][mask]
        largest = largest[np.isfinite(largest)]
        if largest.size and largest.max() > 0:
            evidence["largest_gradient_entry"] = float(largest.max())
    origin = nan_origin_summary([o for o, m in zip(obs.nan_origins(), mask, strict=True) if m])
    if origin is not None:
        evidence["nan_origin"] = origin
    if diverged.size:
        entry = evidence.get("largest_gradient_entry")
        reached = f"; the largest gradient entry reached {entry:.3g}" if entry is not None else ""
        where = f"; {origin['sentence']}" if origin is not None else ""
        what = (
            f"blew up (from epoch {evidence['diverged_epoch_min']}{reached}); the loss became "
            f"NaN/Inf{where}."
        )
    else:
        what = f"have gradient norms growing {EXPLODING_GROWTH:.0f}x or more during training."
    return Finding(
        "exploding_gradients", "Exploding gradients", "critical",
        f"{mask.sum()} of {obs.n_models} models {what}",
        evidence,
        ("scale_target_standard", "clipnorm_1", "clipvalue_5", "lower_learning_rate", "adam"),
    )  # fmt: skip


def detect_vanishing(result: Observed) -> Finding | None:
    obs = observe(result)
    t = obs.telemetry
    if not t or len(obs.layer_names) < 2:
        return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # layers a model never measured
        per_layer = np.nanmedian(t["grad_norm"], axis=1)  # [models, layers]
        output = obs.output_column()
        hidden = np.where(np.arange(per_layer.shape[1]) < output[:, None], per_layer, np.nan)
        ratio = np.nanmin(hidden, axis=1) / per_layer[np.arange(len(output)), output]
    mask = not_learning_mask(obs) & ~obs.diverged & np.isfinite(ratio) & (ratio <= VANISHING_RATIO)
    if not mask.any():
        return None
    names = obs.layer_names
    weakest = np.nanargmin(hidden[mask], axis=1)
    return Finding(
        "vanishing_gradients", "Vanishing gradients", "warning",
        f"In {mask.sum()} of {obs.n_models} models that do not learn, a hidden layer's gradient is at most "
        f"1/{1 / VANISHING_RATIO:.0f} of the output layer's (median ratio {np.median(ratio[mask]):.2g}).",
        {**_models(obs, mask), "ratio_min_hidden_to_output": [float(r) for r in ratio[mask]],
         "weakest_layers": sorted({names[i] for i in weakest})},
        ("relu_he", "leaky_relu_he", "elu_he", "batch_norm_residual", "fewer_layers", "adam",
         "batch_norm", "residual"),
    )  # fmt: skip


def _unit_detector(
    obs: Observation, key: str, threshold: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Models (not learning) with a hidden layer at or above `threshold` at the end."""
    values = obs.telemetry.get(key) if obs.telemetry else None
    if values is None or values.shape[2] == 0:
        return np.zeros(obs.n_models, bool), {}
    final = values[:, -1, :]
    with np.errstate(invalid="ignore"):
        hit = np.nan_to_num(final, nan=-1.0) >= threshold
    mask = hit.any(axis=1) & not_learning_mask(obs) & ~obs.diverged
    if not mask.any():
        return mask, {}
    names = list(obs.hidden_names)
    layers = sorted(
        {names[j] for i in np.flatnonzero(mask) for j in np.flatnonzero(hit[i])}, key=names.index
    )
    epochs = [
        _first_epoch(obs, (np.nan_to_num(values[i], nan=-1.0) >= threshold).any(axis=1))
        for i in np.flatnonzero(mask)
    ]
    return mask, {"layers": layers, "from_epoch_min": min(e for e in epochs if e is not None)}


def detect_dying_relu(result: Observed) -> Finding | None:
    obs = observe(result)
    mask, extra = _unit_detector(obs, "dead_fraction", DEAD_FRACTION)
    if not mask.any():
        return None
    return Finding(
        "dying_relu", "Dying ReLU", "warning",
        f"In {mask.sum()} of {obs.n_models} models that do not learn, at least {DEAD_FRACTION:.0%} of a hidden "
        f"layer's ReLUs output zero for every training example (layers {', '.join(extra['layers'][:6])}); "
        "no gradient flows through them.",
        {**_models(obs, mask), **extra},
        ("leaky_relu_he", "elu_he", "batch_norm_residual", "fewer_layers", "lower_learning_rate"),
    )  # fmt: skip


def detect_saturation(result: Observed) -> Finding | None:
    obs = observe(result)
    mask, extra = _unit_detector(obs, "saturated_fraction", SATURATION_FRACTION)
    if not mask.any():
        return None
    return Finding(
        "saturation", "Saturated activations", "warning",
        f"In {mask.sum()} of {obs.n_models} models that do not learn, at least half of a tanh/sigmoid layer's "
        f"activations are saturated (layers {', '.join(extra['layers'][:6])}); their gradients are near zero.",
        {**_models(obs, mask), **extra},
        ("relu_he", "leaky_relu_he", "scale_inputs_standard"),
    )  # fmt: skip


def detect_oscillation(result: Observed) -> Finding | None:
    obs = observe(result)
    loss = obs.loss
    half = loss[:, loss.shape[1] // 2 :]
    if half.shape[1] < 4:
        return None
    with np.errstate(invalid="ignore"):
        rises = np.mean(half[:, 1:] > (1 + OSCILLATION_RISE) * half[:, :-1], axis=1)
    high = np.nan_to_num(_final_loss_ratio(obs), nan=np.inf) >= OSCILLATION_LEVEL
    mask = (rises >= OSCILLATION_SHARE) & high & ~obs.diverged
    if not mask.any():
        return None
    return Finding(
        "oscillating_loss", "Oscillating loss", "warning",
        f"In {mask.sum()} of {obs.n_models} models the loss rises by over 10% from one epoch to the next in "
        f"{np.median(rises[mask]):.0%} of the second half of training: the steps are too large.",
        {**_models(obs, mask), "share_of_rising_epochs": [float(r) for r in rises[mask]]},
        ("lower_learning_rate", "adam"),
    )  # fmt: skip


def detect_clipping_active(result: Observed) -> Finding | None:
    obs = observe(result)
    rate = obs.telemetry.get("clip_rate") if obs.telemetry else None
    if rate is None:
        return None
    with np.errstate(all="ignore"):
        share = np.nanmean(rate, axis=1)
    mask = np.nan_to_num(share) >= CLIPPING_SHARE
    if not mask.any():
        return None
    return Finding(
        "clipping_active", "Clipping is doing the work", "info",
        f"Clipping changed the gradient in {np.median(share[mask]):.0%} of steps in {mask.sum()} of {obs.n_models} "
        "models: the threshold, not the data, sets the step size; scaling the data usually works better.",
        {**_models(obs, mask), "clip_rate": [float(s) for s in share[mask]]},
        ("scale_target_standard", "scale_inputs_standard"),
    )  # fmt: skip


DETECTORS = (
    detect_exploding,
    detect_not_learning,
    detect_vanishing,
    detect_dying_relu,
    detect_saturation,
    detect_oscillation,
    detect_clipping_active,
)


def diagnose(result: Observed) -> list[Finding]:
    """Run every training detector on the models of one configuration."""
    obs = observe(result)
    with warnings.catch_warnings():  # all-NaN slices: layers or epochs that never measured
        warnings.simplefilter("ignore", RuntimeWarning)
        return [finding for detector in DETECTORS if (finding := detector(obs)) is not None]
