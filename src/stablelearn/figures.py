"""Figures as the lesson draws them, with the spread over repeats made visible.

Learning curves show the median over repeats with a 10-90% band and every single run
faint behind it; box plots compare variants; the data figures redraw the lesson's
histograms, box plot and scatter. Built on `matplotlib.figure.Figure` (no pyplot),
so no global state and no display are involved.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from stablelearn.data import Dataset
from stablelearn.runner import ExperimentResult

TRAIN_COLOR, TEST_COLOR = "tab:blue", "tab:orange"
DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _band(ax, curves: np.ndarray, color: str, label: str) -> None:
    """Median line, 10-90% band, and faint single runs; epochs are numbered from 1."""
    epochs = np.arange(1, curves.shape[1] + 1)
    # one collection for all single runs: a line artist per run made figures 5x slower
    segments = np.stack([np.broadcast_to(epochs, curves.shape), curves], axis=-1)
    ax.add_collection(LineCollection(segments, colors=color, alpha=0.12, linewidths=0.6))
    finite = np.where(np.isfinite(curves), curves, np.nan)
    if np.isfinite(finite).any(axis=0).any():
        with np.errstate(all="ignore"):
            p10, median, p90 = np.nanpercentile(finite, [10, 50, 90], axis=0)
        ax.fill_between(epochs, p10, p90, color=color, alpha=0.25, linewidth=0)
        ax.plot(epochs, median, color=color, linewidth=1.8, label=f"{label} (median, 10-90%)")


def _use_log_scale(curves: Sequence[np.ndarray]) -> bool:
    values = np.concatenate([c[np.isfinite(c)].ravel() for c in curves])
    values = values[values > 0]
    return values.size > 0 and values.max() / max(values.min(), 1e-12) > 1e3


def learning_curves(result: ExperimentResult, path: Path) -> Path:
    """One row per variant: loss (and accuracy for classification), train and test."""
    names = ["loss", "accuracy"] if "accuracy" in result.variants[0].result.history else ["loss"]
    titles = {
        "loss": "Cross-Entropy Loss" if "accuracy" in names else "Mean Squared Error",
        "accuracy": "Accuracy",
    }
    rows = len(result.variants)
    fig = Figure(figsize=(6.5 * len(names), 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, len(names), squeeze=False)
    for row, variant in enumerate(result.variants):
        history = variant.result.history
        for col, name in enumerate(names):
            ax = axes[row][col]
            curves = [history[name]] + (
                [history[f"val_{name}"]] if f"val_{name}" in history else []
            )
            _band(ax, history[name], TRAIN_COLOR, "train")
            if len(curves) > 1:
                _band(ax, curves[1], TEST_COLOR, "test")
            if name == "loss" and _use_log_scale(curves):
                ax.set_yscale("log")
            diverged = int(variant.result.diverged.sum())
            title = f"{variant.name}: {titles[name]}" if rows > 1 else titles[name]
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            if diverged:
                epochs = variant.result.diverged_epoch[variant.result.diverged]
                when = (
                    f"epoch {epochs.min()}"
                    if epochs.min() == epochs.max()
                    else f"epochs {epochs.min()}-{epochs.max()}"
                )
                ax.text(
                    0.5, 0.5, f"{diverged}/{variant.result.n_models} runs diverged to NaN ({when})",
                    transform=ax.transAxes, ha="center", va="center", color="tab:red", fontsize=9,
                )  # fmt: skip
            if not np.isfinite(history[name]).any():
                ax.set_xlim(1, history[name].shape[1])
                ax.set_yticks([])
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.suptitle(result.experiment.title, fontsize=11)
    return _save(fig, path)


def box_plot(result: ExperimentResult, path: Path) -> Path:
    """Test scores per variant, as the lesson's comparison box plot; diverged runs are
    left out of the box and counted under its label."""
    metric = result.metric
    values, labels = [], []
    for variant in result.variants:
        scores = variant.result.test_scores[metric]
        finite = scores[np.isfinite(scores)]
        values.append(finite if finite.size else np.array([np.nan]))
        diverged = scores.size - finite.size
        labels.append(variant.name + (f"\n({diverged} diverged)" if diverged else ""))
    fig = Figure(figsize=(max(6.0, 2.2 * len(values)), 4.2), layout="constrained")
    ax = fig.subplots()
    ax.boxplot(values, tick_labels=labels)
    ax.set_ylabel(f"test {'MSE' if metric == 'loss' else metric}")
    if metric == "loss" and _use_log_scale([np.concatenate(values)]):
        ax.set_yscale("log")
    ax.set_title(
        f"{result.experiment.title} ({result.experiment.repeats} repeats each)", fontsize=10
    )
    return _save(fig, path)


def histograms(dataset: Dataset, path: Path) -> Path:
    """The lesson's three histograms: features 0 and 1, and the target."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    axes = fig.subplots(3, 1)
    for ax, values, label in zip(
        axes,
        (dataset.x[:, 0], dataset.x[:, 1], dataset.y),
        ("Feature 0", "Feature 1", "Output"),
        strict=True,
    ):
        ax.hist(values, bins=20)
        ax.set_ylabel(label)
    return _save(fig, path)


def target_plot(dataset: Dataset, path: Path) -> Path:
    """Histogram and box plot of the target, as in the lesson's clipping section."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.hist(dataset.y, bins=20)
    left.set_title("target histogram", fontsize=10)
    right.boxplot(dataset.y)
    right.set_title("target box plot", fontsize=10)
    return _save(fig, path)


def scatter(dataset: Dataset, path: Path) -> Path:
    """The circles, coloured by class."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    for label in (0, 1):
        rows = dataset.y == label
        ax.scatter(dataset.x[rows, 0], dataset.x[rows, 1], s=8, label=str(label))
    ax.legend()
    ax.set_aspect("equal")
    return _save(fig, path)


def experiment_figures(result: ExperimentResult, folder: Path) -> list[Path]:
    """Every figure the experiment asks for, written into `folder`."""
    makers = {
        "histograms": lambda p: histograms(result.dataset, p),
        "target": lambda p: target_plot(result.dataset, p),
        "scatter": lambda p: scatter(result.dataset, p),
        "learning_curves": lambda p: learning_curves(result, p),
        "box": lambda p: box_plot(result, p),
    }
    return [makers[name](folder / f"{name}.png") for name in result.experiment.figures]
