"""Per-epoch history gathered chunk by chunk, bounded in memory however long a run is.

Up to HISTORY_POINTS epochs every epoch is kept. A longer run keeps the first epoch,
every k-th (k = ceil(epochs / HISTORY_POINTS)) and the last, the values at those, as
TensorBoard keeps a bounded sample of a long scalar series: 100,000 epochs of 90
models with telemetry would otherwise hold about 1 GB on the host, and the figures and
files made from them would grow alike. What must stay exact is computed from every
epoch before thinning: the epoch a model diverged in and its first non-finite step,
with the layer and kind of value it came from (stablelearn.telemetry.origin).
"""

from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

HISTORY_POINTS = 10_000


def recorded_epochs(epochs: int, points: int | None = None) -> np.ndarray:
    """The 1-based epochs a history of `epochs` epochs keeps (at most points + 2;
    points defaults to HISTORY_POINTS)."""
    stride = max(1, -(-epochs // (points or HISTORY_POINTS)))
    every_kth = np.arange(stride, epochs + 1, stride, dtype=np.int64)
    return np.union1d(every_kth, np.asarray([1, epochs], np.int64)) if epochs else every_kth


@dataclass
class HistoryRecorder:
    """Collects a group's chunks of history [chunk epochs, models, ...] (see module
    docstring). `finite` [epochs, models] and telemetry's `first_bad_step` (the step
    within the epoch, -1 if none) are reduced to exact per-model first epochs/steps;
    `first_bad_layer` and `first_bad_kind` are taken from the same epoch as the step."""

    epochs: int
    n_models: int
    steps_per_epoch: int
    kept: np.ndarray = field(init=False)
    diverged_epoch: np.ndarray = field(init=False)  # [models] 1-based, -1 if never
    first_nonfinite_step: np.ndarray = field(init=False)  # [models] 1-based, -1 if never
    # [models] where that step's first NaN/Inf came from (the program's layer or slot,
    # -1 if never; an index into stablelearn.telemetry.ORIGIN_KINDS, 0 if never)
    first_nonfinite_layer: np.ndarray = field(init=False)
    first_nonfinite_kind: np.ndarray = field(init=False)
    _parts: list[Any] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.kept = recorded_epochs(self.epochs)
        self.diverged_epoch = np.full(self.n_models, -1, np.int64)
        self.first_nonfinite_step = np.full(self.n_models, -1, np.int64)
        self.first_nonfinite_layer = np.full(self.n_models, -1, np.int64)
        self.first_nonfinite_kind = np.zeros(self.n_models, np.int64)

    def add(self, first_epoch: int, chunk: dict[str, Any]) -> None:
        """One chunk's history, starting at 0-based epoch `first_epoch`, with only its
        real (not padding) epochs."""
        n = chunk["finite"].shape[0]
        self._note_divergence(first_epoch, np.asarray(chunk["finite"]))
        telemetry = chunk.get("telemetry")
        if telemetry is not None:
            self._note_first_bad_step(first_epoch, telemetry)
        numbers = np.arange(first_epoch + 1, first_epoch + n + 1)
        keep = np.isin(numbers, self.kept)
        self._parts.append(jax.tree.map(lambda a: np.asarray(a)[keep], chunk))

    def _note_divergence(self, first_epoch: int, finite: np.ndarray) -> None:
        new = (self.diverged_epoch < 0) & ~finite.all(axis=0)
        self.diverged_epoch[new] = first_epoch + np.argmax(~finite[:, new], axis=0) + 1

    def _note_first_bad_step(self, first_epoch: int, telemetry: dict[str, Any]) -> None:
        first_bad = np.asarray(telemetry["first_bad_step"])
        bad = first_bad >= 0  # [epochs, models]
        new = (self.first_nonfinite_step < 0) & bad.any(axis=0)
        epoch = np.argmax(bad[:, new], axis=0)
        models = np.flatnonzero(new)
        step_in_epoch = first_bad[epoch, models]
        self.first_nonfinite_step[new] = (
            (first_epoch + epoch) * self.steps_per_epoch + step_in_epoch + 1
        )
        if "first_bad_layer" in telemetry:
            layer, kind = telemetry["first_bad_layer"], telemetry["first_bad_kind"]
            self.first_nonfinite_layer[new] = np.asarray(layer)[epoch, models]
            self.first_nonfinite_kind[new] = np.asarray(kind)[epoch, models]

    def history(self) -> dict[str, Any]:
        """The kept epochs of every array, [kept epochs, models, ...]."""
        return jax.tree.map(lambda *parts: np.concatenate(parts), *self._parts)
