"""Training results as plain data: NumPy arrays with a leading model axis, plus metadata.

Names follow Keras: history keys are `loss`, `val_loss`, `accuracy`, `val_accuracy`...;
final scores are what `model.evaluate` returns on each split with the final weights.
Regression scores also come in the target's original units (`mse_original`,
`rmse_original`, `mae_original`), computed by inverting the fitted target scaler on
targets and predictions (equal to the scaled ones when the target was not scaled).

The engine hands each compiled program's output over as a `GroupOutput`; this module
stitches them into one `TrainResult` in the order of the runs and knows nothing of
how they were computed.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stablelearn.model import layer_names
from stablelearn.runs import Run

PER_LAYER = ("grad_norm", "grad_abs_max", "update_ratio", "weight_norm")
PER_HIDDEN = ("dead_fraction", "saturated_fraction")
NONFINITE = (
    "first_nonfinite_step",
    "first_nonfinite_layer",
    "first_nonfinite_direction",
    "first_nonfinite_kind",
)


@dataclass(frozen=True)
class Timing:
    """Where the time went: host-side preparation, XLA compilation, and training itself."""

    prepare_s: float
    compile_s: float
    train_s: float
    programs: int
    models: int


@dataclass(frozen=True, eq=False)
class GroupOutput:
    """One compiled program's output for its models, in the group's model order.

    Score columns are the loss, then the metrics. history_train/history_val are
    [recorded epochs, models, scores] at the 1-based epochs `history_epochs` (every
    epoch unless the run is very long; see stablelearn.engine.history); telemetry holds
    the per-epoch arrays of stablelearn.telemetry as [recorded epochs, models, ...] and
    the NONFINITE arrays [models] (see TrainResult; empty when switched off).
    """

    indices: tuple[int, ...]  # positions of these models among all runs
    history_epochs: np.ndarray
    history_train: np.ndarray
    history_val: np.ndarray | None
    diverged_epoch: np.ndarray  # [models] 1-based epoch loss or weights became NaN/Inf, or -1
    train_scores: np.ndarray  # [models, scores]
    test_scores: np.ndarray
    train_predictions: np.ndarray  # [models, rows] or [models, rows, classes]
    test_predictions: np.ndarray
    params: tuple[dict[str, np.ndarray], ...]  # per layer, leading model axis
    telemetry: dict[str, np.ndarray]
    prepare_s: float
    compile_s: float
    train_s: float
    # models of different depths packed in one program: each model's layers among
    # `params` (None: every model has them all)
    model_layers: tuple[tuple[int, ...], ...] | None = None
    # a part of a program split across cores, after its first (stablelearn.engine.train)
    shared_program: bool = False


def divergence_record(diverged_epoch: int) -> dict[str, Any]:
    """The per-model divergence columns every table of models shares."""
    epoch = int(diverged_epoch)
    return {"diverged": epoch >= 1, "diverged_epoch": epoch if epoch >= 1 else None}


def _original_unit_scores(
    data: Any, predictions: np.ndarray, targets: np.ndarray
) -> dict[str, float]:
    # a diverged model predicts inf or NaN, which scikit-learn's inverse transform refuses
    finite = np.isfinite(predictions)
    y_hat = np.where(finite, data.target_to_original(np.where(finite, predictions, 0.0)), np.nan)
    y = data.target_to_original(targets)
    with np.errstate(over="ignore", invalid="ignore"):
        mse = float(np.mean((y_hat - y) ** 2))
        mae = float(np.mean(np.abs(y_hat - y)))
    return {"mse_original": mse, "rmse_original": float(np.sqrt(mse)), "mae_original": mae}


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Everything measured for a list of runs, in the order the runs were given.

    history[name] is [models, recorded epochs]: column j is the 1-based epoch
    history_epochs[j], every epoch unless a run is longer than
    stablelearn.engine.history.HISTORY_POINTS epochs (then a regular sample of them);
    train_scores/test_scores[name] are [models]; diverged_epoch is the 1-based epoch in
    which a model's loss or weights first became NaN/Inf, or -1 if they never did
    (exact, whatever the history keeps).

    telemetry (see stablelearn.telemetry; empty when switched off) holds per-layer
    arrays [models, recorded epochs, layers] (grad_norm: RMS over the epoch's steps of the
    layer's gradient L2 norm; grad_abs_max; update_ratio; weight_norm),
    per-hidden-layer arrays [models, epochs, hidden]
    (dead_fraction, saturated_fraction), clip_rate [models, epochs], and per model
    where training first met a NaN/Inf (stablelearn.telemetry.origin has the rule):
    first_nonfinite_step (the 1-based optimizer step whose loss, forward values,
    gradient or updated weights were first non-finite; -1 if never),
    first_nonfinite_layer (0-based among the model's own layers, the output layer
    last; -1 if never), first_nonfinite_direction ("forward" or "backward", "" if
    never) and first_nonfinite_kind ("output", "loss", "gradient" or "update"; "").
    Models of different depths are padded with NaN to the deepest one.
    """

    runs: tuple[Run, ...]
    epochs: int
    history: dict[str, np.ndarray]
    train_scores: dict[str, np.ndarray]
    test_scores: dict[str, np.ndarray]
    diverged_epoch: np.ndarray
    train_predictions: tuple[np.ndarray, ...]
    test_predictions: tuple[np.ndarray, ...]
    final_params: tuple[Any, ...]
    timing: Timing
    telemetry: dict[str, np.ndarray] = field(default_factory=dict)
    history_epochs: np.ndarray | None = None  # None: every epoch, 1..epochs

    def __post_init__(self) -> None:
        if self.history_epochs is None:
            object.__setattr__(self, "history_epochs", np.arange(1, self.epochs + 1))

    @property
    def n_models(self) -> int:
        return len(self.runs)

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_epoch >= 1

    @property
    def seeds(self) -> np.ndarray:
        return np.asarray([r.seed for r in self.runs])

    def tag(self, name: str) -> list[Any]:
        """The value of tag `name` for every model (None where a run lacks it)."""
        return [r.tags.get(name) for r in self.runs]

    def select(self, mask: Sequence[bool] | np.ndarray) -> "TrainResult":
        """The models where mask is True, e.g. result.select(np.array(result.tag('variant')) == 'a')."""
        keep = np.flatnonzero(np.asarray(mask, bool))
        return TrainResult(
            runs=tuple(self.runs[i] for i in keep),
            epochs=self.epochs,
            history={k: v[keep] for k, v in self.history.items()},
            train_scores={k: v[keep] for k, v in self.train_scores.items()},
            test_scores={k: v[keep] for k, v in self.test_scores.items()},
            diverged_epoch=self.diverged_epoch[keep],
            train_predictions=tuple(self.train_predictions[i] for i in keep),
            test_predictions=tuple(self.test_predictions[i] for i in keep),
            final_params=tuple(self.final_params[i] for i in keep),
            timing=self.timing,
            telemetry={k: v[keep] for k, v in self.telemetry.items()},
            history_epochs=self.history_epochs,
        )

    def layer_names(self, model: int = 0) -> list[str]:
        """Names of the layers along the last axis of the per-layer telemetry."""
        return layer_names(self.runs[model].model)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per model: seed, tags, divergence and final scores."""
        rows = []
        for i, run in enumerate(self.runs):
            row: dict[str, Any] = {"model": i, "seed": int(run.seed), **dict(run.tags)}
            row |= divergence_record(self.diverged_epoch[i])
            for split, scores in (("train", self.train_scores), ("test", self.test_scores)):
                for name, values in scores.items():
                    value = float(values[i])
                    row[f"{split}_{name}"] = value if np.isfinite(value) else None
            rows.append(row)
        return rows

    @classmethod
    def from_groups(
        cls,
        runs: Sequence[Run],
        groups: Sequence[GroupOutput],
        epochs: int,
        train_s: float,
    ) -> "TrainResult":
        """Stitch the outputs of each compiled group back into the order of `runs`
        (the engine checked that all runs share loss, metrics, validation and telemetry).
        `train_s`: the training's wall seconds (groups may have trained side by side)."""
        config = runs[0].config
        names = ["loss", *config.metrics]
        recorded = groups[0].history_epochs
        history, train_scores, test_scores, diverged_epoch = _stitch_scores(
            len(runs), recorded, names, config.validation, groups
        )
        train_pred, test_pred, params = _stitch_per_model(len(runs), groups)
        if config.loss == "mse":
            _add_original_units(runs, train_pred, test_pred, train_scores, test_scores)
        telemetry = _stitch_telemetry(len(runs), len(recorded), groups) if config.telemetry else {}
        timing = Timing(
            prepare_s=sum(g.prepare_s for g in groups),
            compile_s=sum(g.compile_s for g in groups),
            train_s=train_s,
            programs=sum(not g.shared_program for g in groups),
            models=len(runs),
        )
        return cls(
            tuple(runs), epochs, history, train_scores, test_scores, diverged_epoch,
            tuple(train_pred), tuple(test_pred), tuple(params), timing, telemetry, recorded,
        )  # fmt: skip


def _stitch_scores(
    n: int,
    recorded: np.ndarray,
    names: Sequence[str],
    validation: bool,
    groups: Sequence[GroupOutput],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """History (at the `recorded` epochs), final scores and divergence epochs in run
    order. A diverged model's scores and curves from its divergence on are NaN (a NaN
    output still "predicts" class 0, so its accuracy would otherwise stay finite)."""
    points = len(recorded)
    history = {name: np.full((n, points), np.nan, np.float32) for name in names}
    if validation:
        history |= {f"val_{name}": np.full((n, points), np.nan, np.float32) for name in names}
    train_scores = {name: np.full(n, np.nan) for name in names}
    test_scores = {name: np.full(n, np.nan) for name in names}
    diverged_epoch = np.full(n, -1, np.int64)
    for group in groups:
        idx = np.asarray(group.indices)
        for j, name in enumerate(names):
            history[name][idx] = group.history_train[:, :, j].T
            if validation:
                history[f"val_{name}"][idx] = group.history_val[:, :, j].T
            train_scores[name][idx] = group.train_scores[:, j]
            test_scores[name][idx] = group.test_scores[:, j]
        diverged_epoch[idx] = group.diverged_epoch
    for i in np.flatnonzero(diverged_epoch > 0):
        for curve in history.values():
            curve[i, recorded >= diverged_epoch[i]] = np.nan
        for scores in (train_scores, test_scores):
            for values in scores.values():
                values[i] = np.nan
    return history, train_scores, test_scores, diverged_epoch


def _stitch_per_model(n: int, groups: Sequence[GroupOutput]) -> tuple[list, list, list]:
    train_pred: list[Any] = [None] * n
    test_pred: list[Any] = [None] * n
    params: list[Any] = [None] * n
    for group in groups:
        for k, i in enumerate(group.indices):
            train_pred[i] = group.train_predictions[k]
            test_pred[i] = group.test_predictions[k]
            layers = group.params
            if group.model_layers is not None:
                layers = [group.params[slot] for slot in group.model_layers[k]]
            params[i] = [{name: leaf[k] for name, leaf in layer.items()} for layer in layers]
    return train_pred, test_pred, params


def _add_original_units(
    runs: Sequence[Run],
    train_pred: Sequence[np.ndarray],
    test_pred: Sequence[np.ndarray],
    train_scores: dict[str, np.ndarray],
    test_scores: dict[str, np.ndarray],
) -> None:
    extra = [
        (
            _original_unit_scores(run.data, train_pred[i], run.data.train_y),
            _original_unit_scores(run.data, test_pred[i], run.data.test_y),
        )
        for i, run in enumerate(runs)
    ]
    for key in extra[0][0]:
        train_scores[key] = np.asarray([e[0][key] for e in extra])
        test_scores[key] = np.asarray([e[1][key] for e in extra])


def _stitch_telemetry(n: int, epochs: int, groups: Sequence[GroupOutput]) -> dict[str, np.ndarray]:
    """Per-group telemetry [epochs, models, ...] into [models, epochs, ...] in run order
    (`epochs`: the recorded ones)."""
    layers = max(g.telemetry["grad_norm"].shape[2] for g in groups)
    stitched = {key: np.full((n, epochs, layers), np.nan, np.float32) for key in PER_LAYER}
    stitched |= {key: np.full((n, epochs, layers - 1), np.nan, np.float32) for key in PER_HIDDEN}
    stitched["clip_rate"] = np.full((n, epochs), np.nan, np.float32)
    stitched["first_nonfinite_step"] = np.full(n, -1, np.int64)
    stitched["first_nonfinite_layer"] = np.full(n, -1, np.int64)
    stitched["first_nonfinite_direction"] = np.full(n, "", "<U8")
    stitched["first_nonfinite_kind"] = np.full(n, "", "<U8")
    for group in groups:
        t = group.telemetry
        idx = np.asarray(group.indices)
        for key in (*PER_LAYER, *PER_HIDDEN):
            values = np.swapaxes(t[key], 0, 1)
            stitched[key][idx, :, : values.shape[2]] = values
        stitched["clip_rate"][idx] = t["clip_rate"].T
        for key in NONFINITE:
            stitched[key][idx] = t[key]
    return stitched
