"""`watch(model)`: stablelearn's telemetry and detectors for any nn.Module trained in the
user's own loop.

    with stablelearn.torch.watch(model, stop_on="critical") as w:
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            w.loss(loss)               # optional: the learning detectors read it
    w.report("runs/my-model")          # diagnosis.json, report.html, report.md

A step is a forward pass of `model` in training mode with gradients enabled (evaluation
under torch.no_grad is not counted). What is recorded:
- every step, the largest |entry| of the model's output (one reduction, kept on its
  device). The first non-finite one is localized: the deepest module whose weights the
  previous update made non-finite (backward), else the first module whose output on
  that batch is non-finite (forward; the batch is run again under no_grad to find it);
- every `every` steps (step 1, 1 + every, ...; 100 by default), per module with parameters of its own (a
  Linear, a Conv...), with hooks registered for that step only: the gradient's L2 norm
  and largest |entry| (as accumulated, before any clipping), the weight norm, the
  update/weight ratio ||w_after - w_before|| / ||w_before|| of that step's update, and
  dead / saturated unit fractions of the activation module that runs next (a ReLU unit,
  or a convolution channel, is dead when it outputs zero for the whole batch; tanh and
  sigmoid saturate beyond |tanh| > 0.99 / outside [0.01, 0.99], as the engine measures).
Values stay on the tensors' device and are read back every `sync_every` steps and at
`report`, so the loop is not synchronised each step; on the CPU, where reading a value
costs no synchronisation, the output check is read at once, which is what lets the
first non-finite value be localized with its batch. On an accelerator the step is exact
and the module is the model's output. `stop_on="critical"` raises TrainingProblem, with
the diagnosis, from the first forward pass after a read-back with a critical finding.

Without `loss(...)` only the gradient detectors run; with it and `baseline_loss` (the best
constant prediction's loss, stablelearn.diagnostics.baseline_loss) every detector runs.
"""

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stablelearn.diagnostics import Finding, Observation, detect_exploding, diagnose
from stablelearn.errors import ConfigError, StablelearnError

ACTIVATIONS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ReLU6": "relu", "ELU": "elu",
               "GELU": "gelu", "SELU": "selu", "SiLU": "silu", "Tanh": "tanh",
               "Sigmoid": "sigmoid"}  # fmt: skip
STOP_ON = (None, "critical", "warning")
_RANK = {"critical": 0, "warning": 1, "info": 2}
_KEYS = ("grad_norm", "grad_abs_max", "weight_norm", "update_ratio")


class TrainingProblem(StablelearnError):
    """Raised by watch(stop_on=...) with the findings that stopped training."""

    def __init__(self, lines: list[str], findings: list[Finding]):
        super().__init__("stablelearn stopped training: " + " ".join(lines))
        self.findings = findings


@dataclass(frozen=True)
class NonFinite:
    """Where training first produced a non-finite value."""

    step: int  # 1-based
    module: str
    direction: str  # "forward" (an output) or "backward" (a gradient)

    def sentence(self) -> str:
        what = "output" if self.direction == "forward" else "gradient"
        return (
            f"The first non-finite value was module {self.module!r}'s {what} ({self.direction}) "
            f"at step {self.step}."
        )


@dataclass
class _Sample:
    """One sampled step's device tensors, read back at the next sync."""

    step: int
    weight_norm: list[Any]
    grad_sq: list[list[Any]]  # per layer, each parameter's squared gradient norm
    update_ratio: list[Any] = field(default_factory=list)
    units: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # layer -> (dead, saturated)
    loss: Any = None


def _norm(tensors: list[Any]) -> Any:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def unit_fractions(kind: str, out: Any) -> tuple[Any, Any]:
    """(dead, saturated) fractions of an activation's output [batch, units, ...]."""
    nan = torch.full((), math.nan, device=out.device)
    if kind == "relu":
        axes = [d for d in range(out.dim()) if d != 1]
        alive = (out > 0).float().amax(dim=axes)
        return 1.0 - alive.float().mean(), nan
    if kind == "tanh":
        return nan, (out.abs() > 0.99).float().mean()
    if kind == "sigmoid":
        return nan, ((out < 0.01) | (out > 0.99)).float().mean()
    return nan, nan


class Watch:
    """The handle `watch` returns; see the module docstring."""

    def __init__(self, model: Any, every: int, sync_every: int, stop_on: str | None,
                 baseline_loss: float | None):  # fmt: skip
        self.model, self.every, self.sync_every = model, every, sync_every
        self.stop_on, self.baseline_loss = stop_on, baseline_loss
        self.layers = [(name, m) for name, m in model.named_modules()
                       if any(True for _ in m.parameters(recurse=False))]  # fmt: skip
        if not self.layers:
            raise ConfigError("watch found no module with parameters in the model.")
        self.names = [name or type(m).__name__ for name, m in self.layers]
        self.kinds = [""] * len(self.layers)
        self.step = 0
        self.first_nonfinite: NonFinite | None = None
        self.stopped_by: Finding | None = None
        self._pending: list[tuple[int, int, str, Any]] = []  # (step, layer, direction, |max|)
        self._samples: list[_Sample] = []
        self._read: list[dict[str, Any]] = []
        self._current: _Sample | None = None
        self._before: list[list[Any]] | None = None
        self._last_layer = -1
        self._losses: list[Any] = []  # since the last sample, detached, on their device
        self._localizing = False
        self._handles = [
            model.register_forward_pre_hook(self._on_step),
            model.register_forward_hook(self._model_output),
        ]
        self._sample_handles: list[Any] = []

    def _watch_layers(self) -> None:
        """Hooks for one sampled step: layer outputs, activations and gradients."""
        handles = self._sample_handles
        for j, (_, module) in enumerate(self.layers):
            handles.append(module.register_forward_hook(self._output_hook(j)))
            for p in module.parameters(recurse=False):
                if p.requires_grad:
                    handles.append(p.register_post_accumulate_grad_hook(self._grad_hook(j)))
        for module in self.model.modules():
            if type(module).__name__ in ACTIVATIONS:
                handles.append(module.register_forward_hook(self._activation_hook))

    def _unwatch_layers(self) -> None:
        for handle in self._sample_handles:
            handle.remove()
        self._sample_handles = []

    # --- hooks ------------------------------------------------------------------------------

    def _training(self) -> bool:
        return self.model.training and torch.is_grad_enabled()

    def _on_step(self, module: Any, args: Any) -> None:
        if not self._training() or self._localizing:
            return
        self._finish_sample()
        if self.step and self.step % self.sync_every == 0:
            self.sync()
            self._check_stop()
        self.step += 1
        self._last_layer = -1
        if (self.step - 1) % self.every == 0:
            with torch.no_grad():
                weights = [[p.detach().clone() for p in m.parameters(recurse=False)]
                           for _, m in self.layers]  # fmt: skip
                norms = [_norm(w) for w in weights]
            self._before = weights
            self._current = _Sample(self.step, norms, [[] for _ in self.layers])
            self._watch_layers()

    def _model_output(self, module: Any, args: Any, out: Any) -> None:
        """Every step: the output's largest |entry|. On the CPU reading it costs nothing, so
        a non-finite output is localized at once; elsewhere it waits for the next sync."""
        if not self._training() or self._localizing or not isinstance(out, torch.Tensor):
            return
        largest = torch.linalg.vector_norm(out.detach(), math.inf)  # detached: no graph
        if out.device.type != "cpu":
            self._pending.append((self.step, -1, "forward", largest))
        elif self.first_nonfinite is None and not math.isfinite(float(largest)):
            self.first_nonfinite = self._localize(args)

    def _localize(self, args: Any) -> NonFinite:
        """Where this step's non-finite output came from: the deepest layer whose weights
        the previous update made non-finite (backward), else the first layer whose output
        on this batch is non-finite (forward, found by running the batch again)."""
        broken = [j for j, (_, m) in enumerate(self.layers)
                  if not all(torch.isfinite(p).all() for p in m.parameters(recurse=False))]  # fmt: skip
        if broken:
            return NonFinite(max(self.step - 1, 1), self.names[broken[-1]], "backward")
        outputs: list[tuple[int, Any]] = []
        handles = [
            m.register_forward_hook(lambda _m, _a, o, j=j: outputs.append((j, o)))
            for j, (_, m) in enumerate(self.layers)
        ]
        self._localizing = True
        try:
            with torch.no_grad():
                self.model(*args)
        finally:
            self._localizing = False
            for handle in handles:
                handle.remove()
        bad = [j for j, o in outputs if isinstance(o, torch.Tensor) and not torch.isfinite(o).all()]
        return NonFinite(self.step, self.names[bad[0]] if bad else "input", "forward")

    def _output_hook(self, j: int) -> Any:
        def hook(module: Any, args: Any, out: Any) -> None:
            if not self._training() or self._localizing or not isinstance(out, torch.Tensor):
                return
            self._last_layer = j
            with torch.no_grad():
                largest = torch.linalg.vector_norm(out.detach(), math.inf)
            self._pending.append((self.step, j, "forward", largest))

        return hook

    def _grad_hook(self, j: int) -> Any:
        def hook(p: Any) -> None:
            with torch.no_grad():
                self._pending.append(
                    (self.step, j, "backward", torch.linalg.vector_norm(p.grad, math.inf))
                )
                if self._current is not None:
                    self._current.grad_sq[j].append(torch.linalg.vector_norm(p.grad) ** 2)

        return hook

    def _activation_hook(self, module: Any, args: Any, out: Any) -> None:
        j = self._last_layer
        if self._current is None or j < 0 or not self._training() or j in self._current.units:
            return
        self.kinds[j] = self.kinds[j] or ACTIVATIONS[type(module).__name__]
        with torch.no_grad():
            self._current.units[j] = unit_fractions(self.kinds[j], out.detach())

    def loss(self, value: Any) -> None:
        """Record this step's training loss (a tensor: kept on its device, not read back;
        summed once per sample, which costs less than adding every step)."""
        self._losses.append(value.detach() if isinstance(value, torch.Tensor) else float(value))

    # --- between steps ------------------------------------------------------------------------

    def _finish_sample(self) -> None:
        """Close the sampled step: its update ratio (weights moved by the optimizer since)
        and the mean loss recorded since the previous sample."""
        sample, before = self._current, self._before
        if sample is None:
            return
        with torch.no_grad():
            for (_, m), old in zip(self.layers, before, strict=True):
                now = [p.detach() for p in m.parameters(recurse=False)]
                moved = _norm([a - b for a, b in zip(now, old, strict=True)])
                sample.update_ratio.append(moved / torch.clamp(_norm(old), min=1e-12))
        if self._losses:
            means = [torch.as_tensor(v, dtype=torch.float32).mean() for v in self._losses]
            sample.loss = torch.stack(means).mean()
            self._losses = []
        self._samples.append(sample)
        self._current = self._before = None
        self._unwatch_layers()

    def sync(self) -> None:
        """Read the recorded values back to the host (the only synchronisation)."""
        pending, self._pending = self._pending, []
        values = np.zeros(0)
        if pending:
            values = torch.stack([v.float() for *_, v in pending]).cpu().numpy()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size and self.first_nonfinite is None:
            step, j, direction, _ = pending[bad[0]]
            self.first_nonfinite = NonFinite(step, "output" if j < 0 else self.names[j], direction)
        sampled = {s.step for s in self._samples}
        largest: dict[tuple[int, int], float] = {}
        for (step, j, direction, _), value in zip(pending, values, strict=True):
            if direction == "backward" and step in sampled:
                largest[step, j] = max(largest.get((step, j), -math.inf), float(value))
        for sample in self._samples:
            self._read.append(self._host(sample, largest))
        self._samples = []

    def _host(self, sample: _Sample, largest: dict[tuple[int, int], float]) -> dict[str, Any]:
        n = len(self.layers)
        grad = [math.sqrt(sum(float(g) for g in sq)) if sq else math.nan for sq in sample.grad_sq]
        units = [sample.units.get(j, (math.nan, math.nan)) for j in range(n - 1)]
        return {
            "step": sample.step,
            "grad_norm": np.asarray(grad),
            "grad_abs_max": np.asarray([largest.get((sample.step, j), math.nan) for j in range(n)]),
            "weight_norm": np.asarray([float(w) for w in sample.weight_norm]),
            "update_ratio": np.asarray([float(r) for r in sample.update_ratio] or [math.nan] * n),
            "dead_fraction": np.asarray([float(d) for d, _ in units]),
            "saturated_fraction": np.asarray([float(s) for _, s in units]),
            "loss": math.nan if sample.loss is None else float(sample.loss),
        }

    # --- the diagnosis ----------------------------------------------------------------------

    def observation(self) -> Observation:
        """What was read back so far, as the detectors read it: one model, one column per
        sampled step (`epochs` holds the step numbers)."""
        rows = self._read
        n, hidden = len(self.layers), len(self.layers) - 1
        shapes = {**dict.fromkeys(_KEYS, n), "dead_fraction": hidden, "saturated_fraction": hidden}
        telemetry = {k: np.stack([r[k] for r in rows]).reshape(1, len(rows), w)
                     for k, w in shapes.items()}  # fmt: skip
        bad = self.first_nonfinite
        telemetry["first_nonfinite_step"] = np.asarray([bad.step if bad else -1])
        return Observation(
            loss=np.asarray([[r["loss"] for r in rows]], np.float64),
            telemetry=telemetry,
            diverged_epoch=np.asarray([bad.step if bad else -1]),
            seeds=(0,),
            layer_names=tuple(self.names),
            hidden_names=tuple(self.names[:-1]),
            baseline_loss=math.nan if self.baseline_loss is None else float(self.baseline_loss),
            epochs=np.asarray([r["step"] for r in rows]),
        )

    def findings(self) -> list[Finding]:
        """stablelearn's detectors on what was read back so far."""
        if not self._read:
            return []
        obs = self.observation()
        learning = self.baseline_loss is not None and np.isfinite(obs.loss).any()
        if learning:
            return diagnose(obs)
        with warnings.catch_warnings():  # layers never measured (NaN columns)
            warnings.simplefilter("ignore", RuntimeWarning)
            found = detect_exploding(obs)
        return [found] if found else []

    def summary(self) -> list[str]:
        lines = [f"[{f.severity}] {f.title}: {f.message}" for f in self.findings()]
        if self.first_nonfinite is not None:
            lines.append(self.first_nonfinite.sentence())
        if not lines:
            lines.append(f"No problem found in {self.step} steps.")
        if self.baseline_loss is None:
            lines.append(
                "Only the gradient detectors ran; give loss(...) and baseline_loss for all."
            )
        return lines

    def _check_stop(self) -> None:
        if self.stop_on is None or self.stopped_by is not None:
            return
        severe = [f for f in self.findings() if _RANK[f.severity] <= _RANK[self.stop_on]]
        if severe:
            self.stopped_by = severe[0]
            raise TrainingProblem(self.summary(), severe)

    def layer_table(self) -> list[dict[str, Any]]:
        """Per layer and sampled step: the recorded statistics."""
        rows = []
        for r in self._read:
            for j, name in enumerate(self.names):
                row = {"step": r["step"], "layer": name, "activation": self.kinds[j]}
                row |= {k: float(r[k][j]) for k in _KEYS}
                if j < len(self.names) - 1:
                    row["dead_fraction"] = float(r["dead_fraction"][j])
                    row["saturated_fraction"] = float(r["saturated_fraction"][j])
                rows.append(row)
        return rows

    def report(self, out: str | Path) -> Path:
        """Read back, then write diagnosis.json, report.html and report.md to `out`."""
        from stablelearn.torch.report import write_watch_report

        self._finish_sample()
        self.sync()
        return write_watch_report(self, Path(out))

    def close(self) -> None:
        """Remove the hooks (the recorded values stay)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._unwatch_layers()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
        self._finish_sample()
        self.sync()


def watch(
    model: Any,
    *,
    every: int = 100,
    sync_every: int = 100,
    stop_on: str | None = None,
    baseline_loss: float | None = None,
) -> Watch:
    """Watch `model` train in your own loop (a context manager or a handle; see the module
    docstring)."""
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"watch needs a torch nn.Module, got {type(model).__name__}.")
    for name, value in (("every", every), ("sync_every", sync_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"watch {name} must be a positive integer, got {value!r}.")
    if stop_on not in STOP_ON:
        raise ConfigError(f"watch stop_on must be None, 'critical' or 'warning', got {stop_on!r}.")
    return Watch(model, every, sync_every, stop_on, baseline_loss)
