"""Figures as the lesson draws them, with the spread over repeats made visible.

Learning curves show the median over repeats with a 10-90% band and every single run
faint behind it; box plots compare configurations; the data figures redraw the
lesson's histograms, box plot and scatter. Built on `matplotlib.figure.Figure` (no
pyplot), so no global state and no display are involved. The shared helpers here
(save, note, log ticks...) serve every figure module.
"""

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator

from stablelearn.data import Dataset
from stablelearn.results import TrainResult

TRAIN_COLOR, TEST_COLOR = "tab:blue", "tab:orange"
DPI = 100


def save(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG. Its layout engine (constrained layout) runs once here and
    is then switched off: left on, savefig draws the whole figure once without
    rendering only to run it, which was a sixth of the figures' time."""
    fig.set_dpi(DPI)
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        # None, not "none" (a placeholder engine, for which savefig still draws twice);
        # with the rc settings that would make None mean an engine again turned off
        with rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)
    fig.savefig(path, dpi=DPI)
    return path


def band(ax, curves: np.ndarray, color: str, label: str, epochs: np.ndarray | None = None) -> None:
    """Median line, 10-90% band, and faint single runs; `epochs` numbers the columns
    (1, 2, ... when not given)."""
    epochs = np.arange(1, curves.shape[1] + 1) if epochs is None else np.asarray(epochs)
    # one collection for all single runs: a line artist per run made figures 5x slower
    segments = np.stack([np.broadcast_to(epochs, curves.shape), curves], axis=-1)
    ax.add_collection(LineCollection(segments, colors=color, alpha=0.12, linewidths=0.6))
    measured = np.isfinite(curves).any(axis=0)
    if measured.any():
        p10, median, p90 = epoch_percentiles(curves, measured)
        ax.fill_between(epochs, p10, p90, color=color, alpha=0.25, linewidth=0)
        ax.plot(epochs, median, color=color, linewidth=1.8, label=f"{label} (median, 10-90%)")


def epoch_percentiles(curves: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """p10, median and p90 over the finite runs of each epoch [3, epochs]; NaN (a gap in
    the line) at epochs where every run has diverged, which np.nanpercentile would warn
    about as an all-NaN slice."""
    out = np.full((3, curves.shape[1]), np.nan)
    out[:, measured] = finite_percentiles(curves[:, measured], (10, 50, 90))
    return out


def finite_percentiles(values: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """np.nanpercentile(values, percentiles, axis=0) over each column's finite values
    (every column has one), vectorized: with a NaN present NumPy takes one column at a
    time, which was most of a learning-curve figure's time. Same linear interpolation
    and rounding as NumPy's."""
    finite = np.isfinite(values)
    ordered = np.sort(np.where(finite, values, np.inf), axis=0)  # the finite ones first
    count = finite.sum(axis=0)
    out = np.empty((len(percentiles), values.shape[1]))
    for i, q in enumerate(percentiles):
        position = q / 100 * (count - 1)
        below = np.floor(position).astype(int)
        above = np.minimum(below + 1, count - 1)
        a = np.take_along_axis(ordered, below[None], axis=0)[0]
        b = np.take_along_axis(ordered, above[None], axis=0)[0]
        t = position - below
        step = b - a
        # NumPy's _lerp: from the nearer end, so that t = 1 gives b exactly
        out[i] = np.where(t >= 0.5, b - step * (1 - t), a + step * t)
    return out


def use_log_scale(curves: Sequence[np.ndarray], ratio: float = 1e3) -> bool:
    """Whether the positive finite values span more than `ratio` (largest / smallest)."""
    values = np.concatenate([c[np.isfinite(c)].ravel() for c in curves])
    values = values[values > 0]
    return values.size > 0 and values.max() / max(values.min(), 1e-12) > ratio


SCORE_LOG_RATIO = 100.0  # scores spanning two decades: a linear axis squashes the best ones


def learning_curves(variants: Sequence[tuple[str, TrainResult]], title: str, path: Path) -> Path:
    """One row per (name, result): loss (and accuracy for classification), train and test."""
    names = ["loss", "accuracy"] if "accuracy" in variants[0][1].history else ["loss"]
    titles = {
        "loss": "Cross-Entropy Loss" if "accuracy" in names else "Mean Squared Error",
        "accuracy": "Accuracy",
    }
    rows = len(variants)
    fig = Figure(figsize=(6.5 * len(names), 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, len(names), squeeze=False)
    for row, (variant_name, result) in enumerate(variants):
        history = result.history
        for col, name in enumerate(names):
            ax = axes[row][col]
            curves = [history[name]] + (
                [history[f"val_{name}"]] if f"val_{name}" in history else []
            )
            band(ax, history[name], TRAIN_COLOR, "train", result.history_epochs)
            if len(curves) > 1:
                band(ax, curves[1], TEST_COLOR, "test", result.history_epochs)
            if name == "loss" and use_log_scale(curves):
                ax.set_yscale("log")
            diverged = diverged_note(result)
            ax.set_title(
                f"{variant_name}: {titles[name]}" if rows > 1 else titles[name], fontsize=10
            )
            ax.set_xlabel("epoch")
            if diverged:
                ax.text(
                    0.5, 0.5, diverged, transform=ax.transAxes, ha="center", va="center",
                    color="tab:red", fontsize=9,
                )  # fmt: skip
            if not np.isfinite(history[name]).any():
                ax.set_xlim(1, result.epochs)
                ax.set_yticks([])
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    return save(fig, path)


def score_box_plot(
    names: Sequence[str], values: Sequence[np.ndarray], ylabel: str, title: str, path: Path
) -> Path:
    """Box plots of one score per configuration; non-finite scores (diverged runs) are
    left out of the box and counted under its label. Positive scores that span more than
    two decades get a log axis, where the best of them would be squashed on a linear one."""
    boxes, labels = [], []
    for name, scores in zip(names, values, strict=True):
        scores = np.asarray(scores, np.float64)
        finite = scores[np.isfinite(scores)]
        boxes.append(finite if finite.size else np.array([np.nan]))
        lost = scores.size - finite.size
        labels.append(name + (f"\n({lost} diverged)" if lost else ""))
    fig = Figure(figsize=(max(6.0, 1.8 * len(boxes)), 4.4), layout="constrained")
    ax = fig.subplots()
    ax.boxplot(boxes, tick_labels=labels)
    if len(boxes) > 4:
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    finite = np.concatenate([b[np.isfinite(b)] for b in boxes])
    if finite.size and (finite > 0).all() and use_log_scale([finite], SCORE_LOG_RATIO):
        ax.set_yscale("log")
        locator, formatter = log_ticks(finite)
        ax.yaxis.set_major_locator(locator)
        ax.yaxis.set_major_formatter(formatter)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def histograms(dataset: Dataset, path: Path) -> Path:
    """The lesson's histograms: the first two features (as many as exist) and the target."""
    panels = [
        (dataset.x[:, i], dataset.feature_names[i]) for i in range(min(2, dataset.n_features))
    ]
    panels.append((dataset.y, f"target ({dataset.target_name})"))
    fig = Figure(figsize=(10, 2.2 * len(panels)), layout="constrained")
    for ax, (values, label) in zip(
        fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels, strict=True
    ):
        ax.hist(values, bins=20)
        ax.set_title(f"Histogram of {label}", fontsize=10)
        ax.set_xlabel(f"{label} value")
        ax.set_ylabel("rows")
    return save(fig, path)


def target_plot(dataset: Dataset, path: Path) -> Path:
    """Histogram and box plot of the target, as in the lesson's clipping section."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    name = f"target ({dataset.target_name})"
    left.hist(dataset.y, bins=20)
    left.set(title=f"Histogram of the {name}", xlabel=f"{name} value", ylabel="rows")
    right.boxplot(dataset.y)
    right.set(title=f"Box plot of the {name}", ylabel=f"{name} value", xticks=[])
    return save(fig, path)


def scatter(dataset: Dataset, path: Path) -> Path:
    """The first two features, coloured by class (the lesson's circles)."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    for label in np.unique(dataset.y).astype(int):
        rows = dataset.y == label
        ax.scatter(dataset.x[rows, 0], dataset.x[rows, 1], s=8, label=f"class {label}")
    ax.legend(title=dataset.target_name)
    names = dataset.feature_names or ("x0", "x1")
    ax.set(xlabel=names[0], ylabel=names[1], title=f"{names[0]} against {names[1]}, by class")
    ax.set_aspect("equal")
    return save(fig, path)


def nanmedian(values: np.ndarray) -> np.ndarray:
    """Median over the repeat axis; all-NaN slices stay NaN, without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=0)


def span(word: str, values: np.ndarray) -> str:
    low, high = values.min(), values.max()
    return f"{word} {low}" if low == high else f"{word}s {low}-{high}"


def diverged_note(result: TrainResult) -> str | None:
    diverged = int(result.diverged.sum())
    if not diverged:
        return None
    when = span("epoch", result.diverged_epoch[result.diverged])
    return f"{diverged}/{result.n_models} runs diverged to NaN ({when})"


def note(ax, text: str, y: float = 0.5) -> None:
    ax.text(
        0.5, y, text, transform=ax.transAxes, ha="center", va="center", color="tab:red",
        fontsize=9, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
    )  # fmt: skip


def layer_ticks(ax, names: Sequence[str], axis: str) -> None:
    """Every layer up to 12 layers, else every k-th counted back from the last one."""
    step = max(1, int(np.ceil(len(names) / 12)))
    ticks = list(range(len(names) - 1, -1, -step))[::-1]
    labels = [names[i] for i in ticks]
    if axis == "y":
        ax.set_yticks(ticks, labels, fontsize=7)
    else:
        ax.set_xticks(ticks, labels, fontsize=7, rotation=45, ha="right", rotation_mode="anchor")


def log_ticks(values: np.ndarray) -> tuple[LogLocator, LogFormatterSciNotation]:
    """Labelled decades, or 1-2-5 / 1-3 steps when the values span few decades (a log
    axis otherwise labels only the decades, which may leave one label or none)."""
    values = values[np.isfinite(values) & (values > 0)]
    decades = np.log10(values.max() / values.min()) if values.size else 0.0
    subs = (1.0, 2.0, 5.0) if decades < 1.2 else (1.0, 3.0) if decades < 2.5 else (1.0,)
    formatter = LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf))
    return LogLocator(subs=subs), formatter
