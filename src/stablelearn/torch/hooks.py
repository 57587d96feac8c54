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
- every step, whether the model's output is finite (one reduction: on the CPU the sum,
  read at once; elsewhere the largest |entry|, kept on its device). The first non-finite
  output is localized: the deepest module whose weights the previous update made
  non-finite (backward), else the first module whose output on that batch is non-finite
  (forward; the batch is run again under no_grad to find it);
- every `every` steps (step 1, 1 + every, ...; 100 by default), per module with
  parameters of its own (a Linear, a Conv...), with hooks registered for that step
  only: the gradient's L2 norm
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
    forward: list[tuple[int, Any]] = field(default_factory=list)  # (layer, largest |output|)
    units: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # layer -> (dead, saturated)
    owner: list[int] = field(default_factory=list)  # the layer of each parameter
    before: list[Any] = field(default_factory=list)  # each parameter before the update
    weight_norm: list[Any] = field(default_factory=list)  # per parameter, before the update
    update_norm: list[Any] = field(default_factory=list)  # per parameter, ||after - before||
    grad_norm: list[list[Any]] = field(default_factory=list)  # per layer, each gradient's L2 norm
    loss: Any = None


def _layer_norms(owner: list[int], norms: list[float], n: int) -> np.ndarray:
    """Per layer, the L2 norm over its parameters, from each parameter's norm (on the host,
    so the device does one norm per parameter and nothing per layer)."""
    squares = np.zeros(n)
    np.add.at(squares, owner, np.square(norms))
    return np.sqrt(squares)


def _mean_loss(values: list[Any]) -> Any:
    """The mean of the recorded losses: Python floats averaged on the host; device scalars
    stacked once (read back at the sync), or one by one where they do not stack."""
    if all(isinstance(v, float) for v in values):
        return math.fsum(values) / len(values)
    try:
        return torch.stack(values).float().mean()
    except (TypeError, RuntimeError):  # floats and tensors, or tensors on several devices
        return float(np.mean([float(v) for v in values]))


def unit_fractions(kind: str, out: Any) -> tuple[Any, Any]:
    """(dead, saturated) fractions of an activation's output [batch, units, ...]; NaN (a
    float, no device op) where the activation has no such state."""
    if kind == "relu":
        axes = [d for d in range(out.dim()) if d != 1]
        alive = (out > 0).float().amax(dim=axes)
        return 1.0 - alive.mean(), math.nan
    if kind == "tanh":
        return math.nan, (out.abs() > 0.99).float().mean()
    if kind == "sigmoid":
        return math.nan, ((out < 0.01) | (out > 0.99)).float().mean()
    return math.nan, math.nan


class Watch:
    """The handle `watch` returns; see the module docstring.

    One forward hook on the model runs every step (`_on_step`); everything per layer is
    registered for the sampled steps only, so an unsampled step costs that one hook and
    one reduction. A sampled step s is armed at the end of step s - 1 (layer output and
    activation hooks, which must be in place before its forward pass), begins in its own
    model hook (weights copied, gradient hooks registered, layer hooks removed) and is
    finished in the model hook of step s + 1, once the optimizer has updated the weights.
    """

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
        self._activations = [m for m in model.modules() if type(m).__name__ in ACTIVATIONS]
        self.step = 0
        self.first_nonfinite: NonFinite | None = None
        self.stopped_by: Finding | None = None
        self._pending: list[tuple[int, int, str, Any]] = []  # (step, layer, direction, |max|)
        self._samples: list[_Sample] = []
        self._read: list[dict[str, Any]] = []
        self._next: _Sample | None = None  # armed: its layer hooks wait for its forward pass
        self._current: _Sample | None = None  # begun: waits for its update
        self._last_layer = -1
        self._losses: list[Any] = []  # since the last sample: floats, or device scalars
        self._localizing = False
        self._handles = [model.register_forward_hook(self._on_step)]
        self._layer_handles: list[Any] = []  # the armed step's forward hooks
        self._grad_handles: list[Any] = []  # the begun step's gradient hooks
        self._arm(1)

    # --- the sampled step -------------------------------------------------------------------

    def _arm(self, step: int) -> None:
        """Hooks on the layers and activations for the forward pass of sampled step `step`."""
        self._next = _Sample(step)
        self._last_layer = -1
        handles = self._layer_handles
        for j, (_, module) in enumerate(self.layers):
            handles.append(module.register_forward_hook(self._output_hook(j)))
        for module in self._activations:
            handles.append(module.register_forward_hook(self._activation_hook))

    def _begin_sample(self) -> None:
        """In the sampled step's model hook (its forward pass done, the weights not yet
        updated): keep its layer outputs, copy the weights, hook the gradients."""
        sample, self._next = self._next, None
        _remove(self._layer_handles)
        self._pending.extend((sample.step, j, "forward", v) for j, v in sample.forward)
        params = [
            (j, p) for j, (_, m) in enumerate(self.layers) for p in m.parameters(recurse=False)
        ]
        sample.owner = [j for j, _ in params]
        sample.grad_norm = [[] for _ in self.layers]
        with torch.no_grad():
            sample.before = [p.detach().clone() for _, p in params]
            sample.weight_norm = list(torch._foreach_norm(sample.before))
        for j, p in params:
            if p.requires_grad:
                self._grad_handles.append(p.register_post_accumulate_grad_hook(self._grad_hook(j)))
        self._current = sample

    def _finish_sample(self) -> None:
        """Close the sampled step: how far the optimizer moved each parameter since, and the
        mean loss recorded since the previous sample."""
        sample = self._current
        if sample is None:
            return
        self._current = None
        _remove(self._grad_handles)
        params = [p.detach() for _, m in self.layers for p in m.parameters(recurse=False)]
        with torch.no_grad():
            sample.update_norm = list(
                torch._foreach_norm(torch._foreach_sub(params, sample.before))
            )
        sample.before = []
        if self._losses:
            sample.loss, self._losses = _mean_loss(self._losses), []
        self._samples.append(sample)

    def _disarm(self) -> None:
        _remove(self._layer_handles)
        self._next = None

    # --- hooks ------------------------------------------------------------------------------

    def _training(self) -> bool:
        return self.model.training and torch.is_grad_enabled()

    def _on_step(self, module: Any, args: Any, out: Any) -> None:
        """After every forward pass of the model in training: close the previous sampled
        step, read back every `sync_every` steps (and stop there if asked), count the step,
        check its output, and arm the next sampled step."""
        if self._localizing or not (module.training and torch.is_grad_enabled()):
            return
        if self._current is not None:
            self._finish_sample()
        if self.step and self.step % self.sync_every == 0:
            self.sync()
            self._check_stop_or_rearm()
        self.step += 1
        if self._next is not None and self._next.step == self.step:
            self._begin_sample()
        if isinstance(out, torch.Tensor):
            self._check_output(args, out.detach())
        if self.step % self.every == 0:
            self._arm(self.step + 1)

    def _check_stop_or_rearm(self) -> None:
        """Raise with the findings if `stop_on` asks; the step that raised is not counted,
        so a sampled step armed for it is armed again, with nothing recorded."""
        try:
            self._check_stop()
        except TrainingProblem:
            if self._next is not None:
                step = self._next.step
                self._disarm()
                self._arm(step)
            raise

    def _check_output(self, args: Any, out: Any) -> None:
        """Every step: is the model's output finite? On the CPU, reading a value costs no
        synchronisation, so one sum is read at once (finite exactly when every entry is,
        unless it overflows, which the exact test below rules out) and a non-finite output
        is localized with its batch; elsewhere the largest |entry| waits for the next sync."""
        if not out.is_cpu:
            self._pending.append(
                (self.step, -1, "forward", torch.linalg.vector_norm(out, math.inf))
            )
            return
        if self.first_nonfinite is not None:
            return
        if out.is_complex():
            out = torch.view_as_real(out)
        if not math.isfinite(torch.sum(out)) and not torch.isfinite(out).all():
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
            _remove(handles)
        bad = [j for j, o in outputs if isinstance(o, torch.Tensor) and not torch.isfinite(o).all()]
        return NonFinite(self.step, self.names[bad[0]] if bad else "input", "forward")

    def _output_hook(self, j: int) -> Any:
        def hook(module: Any, args: Any, out: Any) -> None:
            sample = self._next
            if sample is None or self._localizing or not self._training():
                return
            if isinstance(out, torch.Tensor):
                self._last_layer = j
                sample.forward.append((j, torch.linalg.vector_norm(out.detach(), math.inf)))

        return hook

    def _grad_hook(self, j: int) -> Any:
        def hook(p: Any) -> None:
            sample, grad = self._current, p.grad.detach()
            self._pending.append(
                (self.step, j, "backward", torch.linalg.vector_norm(grad, math.inf))
            )
            if sample is not None:
                sample.grad_norm[j].append(torch.linalg.vector_norm(grad))

        return hook

    def _activation_hook(self, module: Any, args: Any, out: Any) -> None:
        j, sample = self._last_layer, self._next
        if sample is None or j < 0 or j in sample.units or not self._training():
            return
        self.kinds[j] = self.kinds[j] or ACTIVATIONS[type(module).__name__]
        with torch.no_grad():
            sample.units[j] = unit_fractions(self.kinds[j], out.detach())

    def loss(self, value: Any) -> None:
        """Record this step's training loss. On the CPU it is read at once (that costs no
        synchronisation, and keeping a Python float costs less than keeping a tensor and
        stacking it later); elsewhere it is kept on its device, detached, and averaged once
        per sample."""
        if not isinstance(value, torch.Tensor):
            self._losses.append(float(value))
            return
        if value.dim():
            value = value.detach().float().mean()
        self._losses.append(value.item() if value.is_cpu else value.detach())

    # --- between steps ------------------------------------------------------------------------

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
        grad = [math.sqrt(sum(float(g) ** 2 for g in gs)) if gs else math.nan
                for gs in sample.grad_norm]  # fmt: skip
        weight = _layer_norms(sample.owner, [float(w) for w in sample.weight_norm], n)
        if sample.update_norm:
            moved = _layer_norms(sample.owner, [float(u) for u in sample.update_norm], n)
            update = moved / np.maximum(weight, 1e-12)
        else:
            update = np.full(n, math.nan)
        units = [sample.units.get(j, (math.nan, math.nan)) for j in range(n - 1)]
        return {
            "step": sample.step,
            "grad_norm": np.asarray(grad),
            "grad_abs_max": np.asarray([largest.get((sample.step, j), math.nan) for j in range(n)]),
            "weight_norm": weight,
            "update_ratio": update,
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
        _remove(self._handles)
        _remove(self._grad_handles)
        self._disarm()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
        self._finish_sample()
        self.sync()


def _remove(handles: list[Any]) -> None:
    """Remove hooks and empty the list that held them."""
    for handle in handles:
        handle.remove()
    handles.clear()


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
