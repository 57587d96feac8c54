"""`Monitor`: a Keras callback that watches any Keras 3 model train, as stablelearn's
engine watches its own models, and says what went wrong.

    monitor = Monitor(probe=(x_train, y_train), out="runs/my-model")
    model.fit(x_train, y_train, epochs=50, callbacks=[monitor])
    monitor.summary()          # the diagnosis, one line per finding

What it records, per layer with trainable weights (a Dense, a Conv, an LSTM, a nested
model...), at the end of epoch 1, then every `every` epochs and at the last epoch, on a
fixed probe batch of `probe_size` training rows (seeded; by default 1/16 of the rows
given, between 32 and 256, so that a probe costs a few percent of an epoch):
- the gradient's L2 norm and largest entry, before any clipping (computed on the probe);
- the weight norm, and the update/weight ratio ||w - w_before|| / ||w_before|| since the
  previous probe;
- dead and saturated unit fractions from the layer's activation (the layer's own
  activation, or a ReLU/Activation layer right after it): a ReLU unit (a channel of a
  convolution) is dead when it outputs zero for every probe example; tanh/sigmoid
  outputs are saturated beyond |tanh| > 0.99 / outside [0.01, 0.99];
- the first non-finite training loss (epoch and batch) and where it came from: the
  deepest layer whose weights the bad step made non-finite (backward), or else the
  first layer whose output on the probe is non-finite (forward), or else the deepest
  layer with a non-finite probe gradient (backward).

The training loss per epoch comes from Keras' logs. At the end (or on demand) the same
detectors as the doctor's run on one model (stablelearn.diagnostics), and `report(out)`
writes diagnosis.json, report.html and report.md as the doctor does. `stop_on="critical"`
stops training at the first critical finding (a non-finite loss stops it at that batch)
and prints the diagnosis: a TerminateOnNaN that says why.

The per-batch hook only reads the loss that Keras already computes, and is declared
async-safe so Keras need not wait for it; probes run between epochs.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stablelearn.diagnostics import Finding, Observation, diagnose
from stablelearn.errors import ConfigError
from stablelearn.keras import convert, probe

ACTIVATION_LAYERS = (*convert.ACTIVATION_LAYERS, "PReLU")
STOP_ON = (None, "critical", "warning")
MIN_PROBE_ROWS, MAX_PROBE_ROWS = 32, 256
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass
class NonFinite:
    """Where training first went non-finite."""

    epoch: int  # 1-based
    batch: int  # 0-based, as Keras counts batches
    step: int  # 1-based optimizer step
    layer: str | None = None
    direction: str | None = None  # "forward" (an output) or "backward" (a gradient)
    how: str = ""

    def sentence(self) -> str:
        where = f"epoch {self.epoch}, batch {self.batch}"
        if self.layer is None:
            return f"The training loss first became NaN/Inf at {where}. {self.how}".strip()
        return (
            f"The training loss first became NaN/Inf at {where}; layer {self.layer!r} first "
            f"produced a non-finite {'output' if self.direction == 'forward' else 'gradient'} "
            f"({self.direction}). {self.how}"
        ).strip()


@dataclass
class _Layer:
    """A layer with trainable weights and where its activation is read."""

    name: str
    variables: list[int]  # indices into model.trainable_variables
    kind: str  # the activation's family: relu, tanh, sigmoid, ... ("" if unknown)
    channels_axis: int = -1


@dataclass
class _Records:
    loss: list[float] = field(default_factory=list)  # per epoch
    points: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # epoch -> stats


def _activation_name(layer: Any) -> str:
    kind = type(layer).__name__
    if kind == "ReLU":
        return "relu" if not getattr(layer, "negative_slope", 0) else "leaky_relu"
    if kind in ("LeakyReLU", "ELU", "PReLU"):
        return {"LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "prelu"}[kind]
    if kind == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "") if activation is not None else ""


def _baseline_loss(model: Any, x: Any, y: np.ndarray) -> float:
    """The compiled loss of the best constant prediction on the probe: the mean target,
    as a value or as logits (whichever the loss reads), or class frequencies for labels."""
    y_pred = np.asarray(keras.ops.convert_to_numpy(model(x[:2], training=False)))
    n = len(y)
    if y_pred.ndim == 2 and y_pred.shape[1] > 1 and (y.ndim == 1 or y.shape[-1] == 1):
        labels = y.reshape(-1).astype(int)
        mean = np.bincount(labels, minlength=y_pred.shape[1])[: y_pred.shape[1]] / n
    else:
        mean = np.mean(y.reshape(n, -1), axis=0).reshape(y_pred.shape[1:])
    constant = np.broadcast_to(mean, (n, *y_pred.shape[1:])).astype(np.float32)
    candidates = [constant, np.log(np.clip(constant, 1e-7, None))]
    losses = []
    for prediction in candidates:
        try:
            value = model.compute_loss(
                x=None,
                y=keras.ops.convert_to_tensor(y),
                y_pred=keras.ops.convert_to_tensor(prediction),
                training=False,
            )
            losses.append(float(keras.ops.convert_to_numpy(value)))
        except Exception:  # a custom loss that rejects the constant; fall back to the other
            continue
    finite = [v for v in losses if math.isfinite(v)]
    return min(finite) if finite else math.nan


class Monitor(keras.callbacks.Callback):
    """Watch a Keras 3 model train; see the module docstring for what is recorded.

    probe: (x, y) training data; a fixed subset of `probe_size` rows is the probe batch
        (default: len(x) / 16, at least 32 and at most 256 rows).
    every: probe every this many epochs (epoch 1 and the last are always probed).
    stop_on: None, "critical" or "warning": stop training at the first finding that severe.
    out: a folder to write the diagnosis to at the end of training.
    """

    # on_train_batch_end only reads the loss, so Keras may run it off the training loop;
    # not when it may stop training (setting stop_training from Keras' worker thread
    # raced with buffer donation on the JAX backend)
    async_safe = True

    def __init__(
        self,
        probe: tuple[Any, Any],
        *,
        every: int = 1,
        probe_size: int | None = None,
        stop_on: str | None = None,
        out: str | Path | None = None,
        seed: int = 0,
        verbose: bool = True,
    ):
        super().__init__()
        if not isinstance(probe, tuple | list) or len(probe) != 2:
            raise ConfigError(
                "Monitor needs probe=(x_train, y_train), the data the model trains on."
            )
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"Monitor every must be a positive integer, got {every!r}.")
        if probe_size is not None and (not isinstance(probe_size, int) or probe_size < 1):
            raise ConfigError(f"Monitor probe_size must be a positive integer, got {probe_size!r}.")
        if stop_on not in STOP_ON:
            raise ConfigError(
                f"Monitor stop_on must be None, 'critical' or 'warning', got {stop_on!r}."
            )
        x, y = np.asarray(probe[0]), np.asarray(probe[1])
        if len(x) != len(y) or len(x) == 0:
            raise ConfigError(
                f"Monitor probe x and y need the same number of rows (at least one), got {len(x)} and {len(y)}."
            )
        if probe_size is None:
            probe_size = min(MAX_PROBE_ROWS, max(MIN_PROBE_ROWS, math.ceil(len(x) / 16)))
        rows = np.sort(np.random.default_rng(seed).permutation(len(x))[:probe_size])
        self.probe_x, self.probe_y = x[rows], y[rows]
        self.every, self.stop_on, self.out, self.verbose = every, stop_on, out, verbose
        self.async_safe = stop_on is None
        self.first_nonfinite: NonFinite | None = None
        self.epochs_run = 0
        self.stopped_by: Finding | None = None
        self._records = _Records()
        self._layers: list[_Layer] = []
        self._epoch = 0
        self._steps_per_epoch = 0
        self._seen_nonfinite = False
        self._localized = False

    # --- Keras hooks ----------------------------------------------------------------------

    def on_train_begin(self, logs: Any = None) -> None:
        model = self.model
        if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
            raise ConfigError("Monitor needs a compiled model (model.compile(optimizer, loss)).")
        self._records = _Records()
        self.first_nonfinite, self.stopped_by, self._seen_nonfinite = None, None, False
        self._localized = False
        self._variables = list(model.trainable_variables)
        if getattr(self, "_compiled_for", None) is not model:  # compile once per model
            self._layers, outputs_of = self._layer_map(model)
            plan = probe.ProbePlan(
                layer_variables=tuple(tuple(layer.variables) for layer in self._layers),
                output_kinds=tuple((layer.kind, layer.channels_axis) for layer in self._layers),
            )
            self._prober = probe.probe_function(model, plan, outputs_of)
            self._output_names = [layer.name for layer in outputs_of]
            self._compiled_for = model
        self._before = probe.snapshot(model)
        self.baseline = _baseline_loss(model, self.probe_x, self.probe_y)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._steps_per_epoch = max(self._steps_per_epoch, batch + 1)
        if self._seen_nonfinite or not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            self._seen_nonfinite = True
            step = self._epoch * self._steps_per_epoch + batch + 1
            self.first_nonfinite = NonFinite(self._epoch + 1, batch, step)
            if self.stop_on is not None:  # a non-finite loss is critical: exploding
                self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epochs_run = epoch + 1
        loss = float((logs or {}).get("loss", math.nan))
        self._records.loss.append(loss)
        bad_now = self.first_nonfinite is not None and not self._localized
        if epoch == 0 or (epoch + 1) % self.every == 0 or bad_now:
            self._probe(epoch + 1)
        if bad_now:
            self._localize()
        if self.stop_on is not None and not self.stopped_by:
            self._check_stop()

    def on_train_end(self, logs: Any = None) -> None:
        if self.epochs_run and self.epochs_run not in self._records.points:
            self._probe(self.epochs_run)
        if self.out is not None:
            self.report(self.out)

    # --- what was recorded ------------------------------------------------------------------

    def _layer_map(self, model: Any) -> tuple[list[_Layer], list[Any]]:
        """Layers with trainable weights, and the layers whose outputs the probe reads."""
        index = {id(v): i for i, v in enumerate(self._variables)}
        layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
        weighted, outputs_of = [], []
        for i, layer in enumerate(layers):
            variables = [index[id(v)] for v in layer.trainable_weights if id(v) in index]
            if not variables:
                continue
            reader, kind = layer, _activation_name(layer)
            following = layers[i + 1] if i + 1 < len(layers) else None
            if (
                kind in ("", "linear")
                and following is not None
                and type(following).__name__ in ACTIVATION_LAYERS
            ):
                reader, kind = following, _activation_name(following)
            axis = 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1
            outputs_of.append(reader)
            weighted.append(_Layer(layer.name, variables, kind, axis))
        if not weighted:
            raise ConfigError("Monitor found no layer with trainable weights in the model.")
        return weighted, outputs_of

    def _probe(self, epoch: int) -> None:
        numbers, self._before = self._prober(self.probe_x, self.probe_y, self._before)
        self._last_probe = numbers
        # a probe through non-finite weights or gradients measures nothing: NaN
        finite = numbers.weights_finite & numbers.grads_finite
        with np.errstate(all="ignore"):
            ratio = numbers.moved_norm / np.maximum(numbers.before_norm, 1e-12)
        hidden = len(self._layers) - 1
        point = {
            "grad_norm": np.where(finite, numbers.grad_norm, np.nan),
            "grad_abs_max": np.where(finite, numbers.grad_abs_max, np.nan),
            "weight_norm": numbers.weight_norm,
            "update_ratio": np.where(finite, ratio, np.nan),
            "dead_fraction": numbers.dead_fraction[:hidden],
            "saturated_fraction": numbers.saturated_fraction[:hidden],
        }
        self._records.points[epoch] = point

    def _localize(self) -> None:
        """Name the layer where the first non-finite value came from (see the module docstring)."""
        self._localized = True
        bad, numbers = self.first_nonfinite, self._last_probe
        names = [layer.name for layer in self._layers]
        broken = np.flatnonzero(~numbers.weights_finite)
        if broken.size:
            bad.layer, bad.direction = names[broken[-1]], "backward"
            bad.how = (
                f"Its update made the weights of {broken.size} layer(s) non-finite, from "
                f"{names[broken[-1]]!r} back to {names[broken[0]]!r}."
            )
            return
        overflowing = np.flatnonzero(~numbers.outputs_finite)
        if overflowing.size:
            bad.layer, bad.direction = self._output_names[overflowing[0]], "forward"
            bad.how = "Its output on the probe batch overflows with the current weights."
            return
        deepest = np.flatnonzero(~numbers.grads_finite)
        if deepest.size:
            bad.layer, bad.direction = names[deepest[-1]], "backward"
            bad.how = "Its gradient on the probe batch is non-finite."
        else:
            bad.how = "The weights and the probe batch stay finite; the bad values came from that batch's data."

    def observation(self) -> Observation:
        """What was recorded, as the detectors read it (one model)."""
        epochs = len(self._records.loss)
        per_layer, hidden = len(self._layers), max(len(self._layers) - 1, 0)
        shapes = {"grad_norm": per_layer, "grad_abs_max": per_layer, "weight_norm": per_layer,
                  "update_ratio": per_layer, "dead_fraction": hidden, "saturated_fraction": hidden}  # fmt: skip
        telemetry = {k: np.full((1, epochs, n), np.nan) for k, n in shapes.items()}
        for epoch, point in self._records.points.items():
            if 1 <= epoch <= epochs:
                for key in shapes:
                    telemetry[key][0, epoch - 1] = point[key]
        bad = self.first_nonfinite
        telemetry["first_nonfinite_step"] = np.asarray([bad.step if bad else -1])
        diverged = bad.epoch if bad else -1
        names = tuple(layer.name for layer in self._layers)
        return Observation(
            loss=np.asarray([self._records.loss], np.float64).reshape(1, epochs),
            telemetry=telemetry,
            diverged_epoch=np.asarray([diverged]),
            seeds=(0,),
            layer_names=names,
            hidden_names=names[:-1],
            baseline_loss=getattr(self, "baseline", math.nan),
        )

    def findings(self) -> list[Finding]:
        """stablelearn's detectors on what was recorded so far."""
        if not self._records.loss:
            return []
        return diagnose(self.observation())

    def summary(self) -> list[str]:
        """The diagnosis in lines: each finding, then where the first NaN came from."""
        lines = [f"[{f.severity}] {f.title}: {f.message}" for f in self.findings()]
        if self.first_nonfinite is not None:
            lines.append(self.first_nonfinite.sentence())
        if self.stopped_by is not None:
            lines.append(
                f"Training was stopped at epoch {self.epochs_run} by stop_on={self.stop_on!r}."
            )
        if not lines:
            lines.append("No problem found: the model trains normally on this data.")
        return lines

    def _check_stop(self) -> None:
        limit = _SEVERITY_RANK[self.stop_on]
        severe = [f for f in self.findings() if _SEVERITY_RANK[f.severity] <= limit]
        if not severe:
            return
        self.stopped_by = severe[0]
        self.model.stop_training = True
        if self.verbose:
            print("stablelearn Monitor stopped training:")
            for line in self.summary():
                print(f"  {line}")

    def layer_table(self) -> list[dict[str, Any]]:
        """Per layer and probed epoch: the recorded statistics (for reports and notebooks)."""
        rows = []
        for epoch, point in sorted(self._records.points.items()):
            for j, layer in enumerate(self._layers):
                row = {"epoch": epoch, "layer": layer.name, "activation": layer.kind}
                for key in ("grad_norm", "grad_abs_max", "weight_norm", "update_ratio"):
                    row[key] = float(point[key][j])
                if j < len(self._layers) - 1:
                    row["dead_fraction"] = float(point["dead_fraction"][j])
                    row["saturated_fraction"] = float(point["saturated_fraction"][j])
                rows.append(row)
        return rows

    def report(self, out: str | Path) -> Path:
        """Write diagnosis.json, report.html and report.md to `out` (atomically)."""
        from stablelearn.keras.report import write_monitor_report

        return write_monitor_report(self, Path(out))
