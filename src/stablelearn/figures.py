"""Figures as the lesson draws them, with the spread over repeats made visible.

Learning curves show the median over repeats with a 10-90% band and every single run
faint behind it; box plots compare variants; the data figures redraw the lesson's
histograms, box plot and scatter. Built on `matplotlib.figure.Figure` (no pyplot),
so no global state and no display are involved.
"""

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps, transforms
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator, NullLocator

from stablelearn.data import Dataset
from stablelearn.results import TrainResult
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
            diverged = _diverged_note(variant.result)
            title = f"{variant.name}: {titles[name]}" if rows > 1 else titles[name]
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            if diverged:
                ax.text(
                    0.5, 0.5, diverged, transform=ax.transAxes, ha="center", va="center",
                    color="tab:red", fontsize=9,
                )  # fmt: skip
            if not np.isfinite(history[name]).any():
                ax.set_xlim(1, history[name].shape[1])
                ax.set_yticks([])
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.suptitle(result.experiment.title, fontsize=11)
    return _save(fig, path)


def box_plot(result: ExperimentResult, path: Path) -> Path:
    """Test scores per variant, as the lesson's comparison box plot."""
    metric = result.metric
    return score_box_plot(
        [v.name for v in result.variants],
        [v.result.test_scores[metric] for v in result.variants],
        f"test {'MSE' if metric == 'loss' else metric}",
        f"{result.experiment.title} ({result.experiment.repeats} repeats each)",
        path,
    )


def score_box_plot(
    names: Sequence[str], values: Sequence[np.ndarray], ylabel: str, title: str, path: Path
) -> Path:
    """Box plots of one score per configuration; non-finite scores (diverged runs) are
    left out of the box and counted under its label."""
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
    if finite.size and _use_log_scale([finite]):
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def histograms(dataset: Dataset, path: Path) -> Path:
    """The lesson's histograms: the first two features (as many as exist) and the target."""
    panels = [
        (dataset.x[:, i], dataset.feature_names[i]) for i in range(min(2, dataset.n_features))
    ]
    panels.append((dataset.y, "Output"))
    fig = Figure(figsize=(10, 2 * len(panels)), layout="constrained")
    for ax, (values, label) in zip(
        fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels, strict=True
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
    """The first two features, coloured by class (the lesson's circles)."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    for label in np.unique(dataset.y).astype(int):
        rows = dataset.y == label
        ax.scatter(dataset.x[rows, 0], dataset.x[rows, 1], s=8, label=str(label))
    ax.legend()
    ax.set_aspect("equal")
    return _save(fig, path)


# --- gradient flow ------------------------------------------------------------------

HEAT_CMAP = colormaps["viridis"].with_extremes(under="black", over="tab:red", bad="0.85")
FRACTION_CMAP = colormaps["magma_r"].with_extremes(bad="0.85")
FRACTION_LINES_MAX = 6  # more hidden layers than this: a heat map instead of lines
MAX_DECADES = 10  # the colour scale spans at most this many powers of ten


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median over the repeat axis; all-NaN slices stay NaN, without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=0)


def _clean_telemetry(result: TrainResult) -> dict[str, np.ndarray]:
    """[models, epochs, ...] telemetry with what was measured on NaN weights set to NaN.

    Gradient norms are kept up to the epoch a run diverged in (they show how large they
    grew), then dropped: on NaN weights a ReLU layer's gradient reads exactly 0. The
    activation fractions (measured at the epoch's end) and the clip rate lose that epoch
    too: with NaN weights no ReLU looks dead and no unit looks saturated.
    """
    t = {k: np.array(v, dtype=float) for k, v in result.telemetry.items() if v.ndim >= 2}
    epochs = np.arange(1, t["grad_norm"].shape[1] + 1)[None, :]
    start = np.where(result.diverged, result.diverged_epoch, epochs.shape[1] + 1)[:, None]
    for key, values in t.items():
        per_step = key.startswith(("grad_", "update_", "weight_"))
        values[(epochs > start) if per_step else (epochs >= start)] = np.nan
    return t


def _span(word: str, values: np.ndarray) -> str:
    low, high = values.min(), values.max()
    return f"{word} {low}" if low == high else f"{word}s {low}-{high}"


def _diverged_note(result: TrainResult) -> str | None:
    diverged = int(result.diverged.sum())
    if not diverged:
        return None
    when = _span("epoch", result.diverged_epoch[result.diverged])
    return f"{diverged}/{result.n_models} runs diverged to NaN ({when})"


def _note(ax, text: str, y: float = 0.5) -> None:
    ax.text(
        0.5, y, text, transform=ax.transAxes, ha="center", va="center", color="tab:red",
        fontsize=9, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
    )  # fmt: skip


def _layer_ticks(ax, names: Sequence[str], axis: str) -> None:
    """Every layer up to 12 layers, else every k-th counted back from the last one."""
    step = max(1, int(np.ceil(len(names) / 12)))
    ticks = list(range(len(names) - 1, -1, -step))[::-1]
    labels = [names[i] for i in ticks]
    if axis == "y":
        ax.set_yticks(ticks, labels, fontsize=7)
    else:
        ax.set_xticks(ticks, labels, fontsize=7, rotation=45, ha="right", rotation_mode="anchor")


def _log_ticks(values: np.ndarray) -> tuple[LogLocator, LogFormatterSciNotation]:
    """Labelled decades, or 1-2-5 / 1-3 steps when the values span few decades (a log
    axis otherwise labels only the decades, which may leave one label or none)."""
    values = values[np.isfinite(values) & (values > 0)]
    decades = np.log10(values.max() / values.min()) if values.size else 0.0
    subs = (1.0, 2.0, 5.0) if decades < 1.2 else (1.0, 3.0) if decades < 2.5 else (1.0,)
    formatter = LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf))
    return LogLocator(subs=subs), formatter


def _profile_epochs(n_epochs: int) -> list[int]:
    """1-based epochs for the depth profile: the first, ~10%, ~50% and the last."""
    picks = (1, round(0.1 * n_epochs), round(0.5 * n_epochs), n_epochs)
    return sorted({min(max(1, e), n_epochs) for e in picks})


def _grad_norm_scale(medians: Sequence[np.ndarray]) -> LogNorm | None:
    """A log colour scale shared by all variants; None when no norm is finite and > 0."""
    values = np.concatenate([m[np.isfinite(m) & (m > 0)] for m in medians] + [np.zeros(0)])
    if not values.size:
        return None
    vmax = float(values.max())
    vmin = max(float(values.min()), vmax * 10.0**-MAX_DECADES)
    return LogNorm(vmin / 10, vmax * 10) if vmin >= vmax else LogNorm(vmin, vmax)


def _grad_heat_map(ax, median: np.ndarray, names: Sequence[str], norm: LogNorm):
    """Layers (input at the bottom) x epochs. Exactly 0 is drawn in the colour map's
    'under' colour (black), Inf in its 'over' colour (red), NaN (no run left) in grey."""
    z = median.T.copy()  # [layers, epochs]
    positive = np.isfinite(z) & (z > 0)
    z[positive] = np.maximum(z[positive], norm.vmin)  # tiny but not zero: the lowest colour
    z[np.isfinite(z) & (z <= 0)] = norm.vmin / 10
    z[np.isposinf(z)] = norm.vmax * 10
    image = ax.imshow(
        np.ma.masked_invalid(z), aspect="auto", origin="lower", interpolation="nearest",
        cmap=HEAT_CMAP, norm=norm,
        extent=(0.5, z.shape[1] + 0.5, -0.5, z.shape[0] - 0.5),
    )  # fmt: skip
    _layer_ticks(ax, names, "y")
    ax.set_ylabel("layer (input at bottom)", fontsize=8)
    ax.set_xlabel("epoch")
    return image


def _depth_profile(ax, median: np.ndarray, names: Sequence[str]) -> None:
    """Median gradient norm per layer at a few epochs; 0 and Inf as markers on the
    bottom and top edges, which a log axis cannot show."""
    layers = np.arange(median.shape[1])
    chosen = _profile_epochs(median.shape[0])
    colors = colormaps["plasma"](np.linspace(0.0, 0.85, len(chosen)))
    edge = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    marked: set[str] = set()
    for epoch, color in zip(chosen, colors, strict=True):
        values = median[epoch - 1]
        shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
        if np.isfinite(shown).any():
            ax.plot(layers, shown, "o-", color=color, markersize=3.5, linewidth=1.4,
                    label=f"epoch {epoch}")  # fmt: skip
        for hit, y, marker, label in (
            (values == 0, 0.03, "v", "0 (no gradient)"),
            (np.isposinf(values), 0.97, "^", "Inf"),
        ):
            if hit.any():
                ax.scatter(
                    layers[hit], np.full(hit.sum(), y), marker=marker, color=color, s=30,
                    transform=edge, clip_on=False, zorder=3, edgecolors="black",
                    linewidths=0.4, label=None if label in marked else label,
                )  # fmt: skip
                marked.add(label)
    ax.set_yscale("log")
    finite = median[np.asarray(chosen) - 1]
    if np.isfinite(finite).any() and (finite[np.isfinite(finite)] > 0).any():
        locator, formatter = _log_ticks(finite)
        ax.yaxis.set_major_locator(locator)
        ax.yaxis.set_major_formatter(formatter)
    else:
        ax.set_ylim(1, 10)
        ax.set_yticks([])
    ax.yaxis.set_minor_locator(NullLocator())  # minor ticks: a third of the drawing time
    ax.set_xlim(-0.4, len(names) - 0.6)
    _layer_ticks(ax, names, "x")
    ax.set_ylabel("gradient norm (median)", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("epoch"))
        ax.legend(
            [handles[i] for i in order], [labels[i] for i in order], fontsize=7,
            loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.0,
        )  # fmt: skip


def _hold(values: np.ndarray) -> np.ndarray:
    """Carry each finite value forward over the NaN epochs after it."""
    index = np.where(np.isfinite(values), np.arange(values.size), 0)
    return values[np.maximum.accumulate(index)]


def _hidden_fractions(ax, result: TrainResult, t: dict[str, np.ndarray]):
    """Median dead-ReLU / saturated-unit fraction per hidden layer, and the clip rate.

    Lines for up to FRACTION_LINES_MAX hidden layers, else a heat map, which is returned
    (None otherwise) so the caller can give it a colour bar.
    """
    dead, saturated = _nanmedian(t["dead_fraction"]), _nanmedian(t["saturated_fraction"])
    has_dead = np.isfinite(result.telemetry["dead_fraction"]).any(axis=(0, 1))
    has_saturated = np.isfinite(result.telemetry["saturated_fraction"]).any(axis=(0, 1))
    names = result.layer_names(0)
    rows = [
        (names[i], "dead", dead[:, i]) if has_dead[i] else (names[i], "saturated", saturated[:, i])
        for i in range(dead.shape[1])
        if has_dead[i] or has_saturated[i]
    ]
    clip = _nanmedian(t["clip_rate"])
    show_clip = bool(np.nan_to_num(t["clip_rate"]).max() > 0)
    epochs = np.arange(1, clip.shape[0] + 1)
    kinds = {kind for _, kind, _ in rows}
    parts = [w for k, w in (("dead", "Dead ReLUs"), ("saturated", "saturated units")) if k in kinds]
    title = " / ".join(parts) + (" and clip rate" if show_clip else "")
    ax.set_title((title[:1].upper() + title[1:]) or "Hidden units", fontsize=10)
    ax.set_xlabel("epoch")
    if not rows and not show_clip:
        ax.text(0.5, 0.5, "no ReLU, tanh or sigmoid hidden layer\nand no clipping",
                transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        return None
    if len(rows) > FRACTION_LINES_MAX:
        # long runs measure units every few epochs: hold each value until the next one
        z = np.stack([_hold(values) for _, _, values in rows])
        image = ax.imshow(
            np.ma.masked_invalid(z), aspect="auto", origin="lower", interpolation="nearest",
            cmap=FRACTION_CMAP, vmin=0.0, vmax=1.0,
            extent=(0.5, z.shape[1] + 0.5, -0.5, z.shape[0] - 0.5),
        )  # fmt: skip
        _layer_ticks(ax, [name for name, _, _ in rows], "y")
        ax.set_ylabel("hidden layer (input at bottom)", fontsize=8)
        if show_clip:
            twin = ax.twinx()
            twin.plot(epochs, clip, color="white", linewidth=2.6)
            twin.plot(epochs, clip, color="black", linewidth=1.2)
            twin.set_ylim(-0.03, 1.03)
            twin.set_ylabel("clip rate (black line)", fontsize=8)
        return image
    for n, (name, kind, values) in enumerate(rows):
        measured = np.isfinite(values)  # units are measured every few epochs in long runs
        if measured.any():  # not after every run diverged
            style = "-" if kind == "dead" else "--"
            ax.plot(
                epochs[measured],
                values[measured],
                style,
                color=f"C{n}",
                linewidth=1.4,
                label=f"{name} {kind}",
            )
    if show_clip:
        ax.plot(epochs, clip, ":", color="black", linewidth=1.8, label="clip rate (steps)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(1, max(2, epochs[-1]))
    ax.set_ylabel("fraction (median)", fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.0)
    return None


def gradient_figure(result: ExperimentResult, path: Path) -> Path:
    """One row per variant: (1) the median gradient norm per layer and epoch on a log
    colour scale, (2) its depth profile at the first, ~10%, ~50% and last epoch, (3) the
    dead-ReLU / saturated tanh-sigmoid fraction per hidden layer and the clip rate.

    Medians are over repeats; a diverged run counts up to the epoch it diverged in.
    Gradient norms are the mean over each epoch's steps, measured before clipping.
    """
    rows = len(result.variants)
    layers = max(len(v.result.layer_names(0)) for v in result.variants)
    row_height = max(3.3, 0.8 + 0.17 * layers)
    fig = Figure(
        figsize=(16, row_height * rows + (0.4 if rows == 1 else 0.0)), layout="constrained"
    )
    fig.get_layout_engine().set(w_pad=0.08)  # keeps colour-bar and y labels apart
    axes = fig.subplots(rows, 3, squeeze=False, width_ratios=[1.25, 1.0, 1.0])
    cleaned = [_clean_telemetry(v.result) if v.result.telemetry else None for v in result.variants]
    medians = [_nanmedian(t["grad_norm"]) if t else None for t in cleaned]
    scale = _grad_norm_scale([m for m in medians if m is not None])
    norm = scale or LogNorm(1e-3, 1.0)  # no finite norm at all: only 0 / Inf / NaN to show
    any_zero = any_inf = False
    heat_axes, fractions = [], []
    for row, (variant, t, median) in enumerate(zip(result.variants, cleaned, medians, strict=True)):
        heat_ax, profile_ax, fraction_ax = axes[row]
        prefix = f"{variant.name}: " if rows > 1 else ""
        heat_ax.set_title(f"{prefix}gradient norm per layer and epoch", fontsize=10)
        profile_ax.set_title("Depth profile (input on the left)", fontsize=10)
        if t is None or median is None:
            for ax in axes[row]:
                ax.set_axis_off()
            _note(heat_ax, "no telemetry recorded (telemetry switched off)")
            continue
        names = variant.result.layer_names(0)
        median = median[:, : len(names)]
        any_zero |= bool((median == 0).any())
        any_inf |= bool(np.isposinf(median).any())
        image = _grad_heat_map(heat_ax, median, names, norm)
        heat_axes.append(heat_ax)
        _depth_profile(profile_ax, median, names)
        fraction_image = _hidden_fractions(fraction_ax, variant.result, t)
        if fraction_image is not None:
            fractions.append((fraction_image, fraction_ax))
        note = _diverged_note(variant.result)
        if note:
            steps = variant.result.telemetry["first_nonfinite_step"]
            steps = steps[steps > 0]
            first = f"\nfirst NaN/Inf at {_span('step', steps)}" if steps.size else ""
            everything = bool(variant.result.diverged.all())  # else keep the data visible
            _note(heat_ax, note + first, y=0.5 if everything else 0.85)
            _note(profile_ax, note, y=0.8)
            _note(fraction_ax, note, y=0.5 if everything else 0.85)
    if heat_axes:
        many = rows > 1
        extend = {(True, True): "both", (True, False): "min", (False, True): "max"}
        bar = fig.colorbar(
            image, ax=heat_axes, extend=extend.get((any_zero, any_inf), "neither"), pad=0.01,
            fraction=0.03 if many else 0.05, aspect=40 if many else 20,
        )  # fmt: skip
        bar.minorticks_off()
        if scale is None:
            bar.set_ticks([])
        else:
            bar.locator, bar.formatter = _log_ticks(np.array([norm.vmin, norm.vmax]))
        extremes = ["black: 0"] * any_zero + ["red: Inf"] * any_inf
        label = "median gradient norm" + (f" ({', '.join(extremes)})" if extremes else "")
        bar.set_label(label, fontsize=8)
    if fractions:
        bar = fig.colorbar(fractions[0][0], ax=[ax for _, ax in fractions], pad=0.08)
        bar.set_label("dead / saturated fraction", fontsize=8)
    fig.suptitle(
        f"{result.experiment.title}: gradient flow (medians over {result.experiment.repeats} "
        "repeats; gradient norms: RMS over each epoch's steps, before clipping)",
        fontsize=11,
    )
    return _save(fig, path)


def experiment_figures(result: ExperimentResult, folder: Path) -> list[Path]:
    """Every figure the experiment asks for, written into `folder`."""
    makers = {
        "histograms": lambda p: histograms(result.dataset, p),
        "target": lambda p: target_plot(result.dataset, p),
        "scatter": lambda p: scatter(result.dataset, p),
        "learning_curves": lambda p: learning_curves(result, p),
        "box": lambda p: box_plot(result, p),
        "gradients": lambda p: gradient_figure(result, p),
    }
    return [makers[name](folder / f"{name}.png") for name in result.experiment.figures]


# --- sweeps -----------------------------------------------------------------------------


def _sweep_layout(cells: Sequence[dict], axes: Sequence[dict]) -> tuple[dict, list[str]]:
    """The axis drawn along x (the first numeric one with several values, else the first
    with several values) and the series: one per combination of the other axes."""
    varying = [a for a in axes if len(a["values"]) > 1] or list(axes)
    x_axis = next((a for a in varying if a["numeric"]), varying[0])
    others = [a["name"] for a in axes if a is not x_axis and len(a["values"]) > 1]
    return x_axis, others


def _series(cells: Sequence[dict], x_axis: dict, others: Sequence[str]) -> dict[str, list[dict]]:
    series: dict[str, list[dict]] = {}
    for cell in cells:
        name = ", ".join(f"{o}={cell['labels'][o]}" for o in others) or "all runs"
        series.setdefault(name, []).append(cell)
    order = {label: i for i, label in enumerate(x_axis["labels"])}
    return {
        name: sorted(members, key=lambda c: order[c["labels"][x_axis["name"]]])
        for name, members in series.items()
    }


def _x_positions(cells: Sequence[dict], x_axis: dict) -> np.ndarray:
    if x_axis["numeric"]:
        return np.asarray([float(c["values"][x_axis["name"]]) for c in cells])
    order = {label: i for i, label in enumerate(x_axis["labels"])}
    return np.asarray([order[c["labels"][x_axis["name"]]] for c in cells], float)


def _x_scale(ax, x_axis: dict) -> None:
    if x_axis["numeric"]:
        values = np.asarray(x_axis["values"], float)
        if values.min() > 0 and values.max() / values.min() >= 100:
            ax.set_xscale("log")
        elif np.all(values == np.round(values)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xticks(range(len(x_axis["labels"])), x_axis["labels"], rotation=20)
    ax.set_xlabel(x_axis["field"] or x_axis["name"])


def _none_to_nan(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], float)


def sweep_metric_figure(summary: dict, path: Path) -> Path:
    """Median metric per cell with its bootstrap 95% CI, along one axis, a line per series."""
    x_axis, others = _sweep_layout(summary["cells"], summary["axes"])
    metric = summary["metric"]["name"]
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    medians = []
    for name, cells in _series(summary["cells"], x_axis, others).items():
        x = _x_positions(cells, x_axis)
        median = _none_to_nan([c["metric"]["median"] for c in cells])
        low = _none_to_nan([c["metric"]["ci_low"] for c in cells])
        high = _none_to_nan([c["metric"]["ci_high"] for c in cells])
        (line,) = ax.plot(x, median, marker="o", markersize=3, label=name)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        medians.append(median)
    finite = np.concatenate(medians)
    finite = finite[np.isfinite(finite)]
    spans_decades = finite.size and finite.min() > 0 and finite.max() / finite.min() > 100
    if not summary["metric"]["higher_is_better"] and spans_decades:
        ax.set_yscale("log")
    _x_scale(ax, x_axis)
    ax.set_ylabel(f"{metric} (median of finite runs, 95% CI)")
    ax.set_title(f"{summary['title']}: {metric}")
    if len(medians) > 1:
        ax.legend(fontsize="small")
    if finite.size == 0:
        _note(ax, "every run diverged")
    return _save(fig, path)


def sweep_success_figure(summary: dict, path: Path) -> Path:
    """Success rate per cell with its Wilson 95% interval, along one axis."""
    x_axis, others = _sweep_layout(summary["cells"], summary["axes"])
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    series = _series(summary["cells"], x_axis, others)
    for name, cells in series.items():
        x = _x_positions(cells, x_axis)
        rate = np.asarray([c["success"]["rate"] for c in cells], float)
        low = _none_to_nan([c["success"]["ci_low"] for c in cells])
        high = _none_to_nan([c["success"]["ci_high"] for c in cells])
        (line,) = ax.plot(x, rate, marker="o", markersize=3, label=name)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    _x_scale(ax, x_axis)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("success rate (Wilson 95% interval)")
    ax.set_title(f"Success: {summary['metric']['success']}", fontsize="medium")
    if len(series) > 1:
        ax.legend(fontsize="small")
    return _save(fig, path)


def sweep_heat_map(summary: dict, path: Path) -> Path:
    """Two axes as a grid: median metric and success rate, each cell annotated."""
    rows_axis, cols_axis = [a for a in summary["axes"] if len(a["values"]) > 1][:2]
    if len(cols_axis["values"]) > len(rows_axis["values"]):  # the longer axis runs down
        rows_axis, cols_axis = cols_axis, rows_axis
    shape = (len(rows_axis["labels"]), len(cols_axis["labels"]))
    median, rate = np.full(shape, np.nan), np.full(shape, np.nan)
    for cell in summary["cells"]:
        i = rows_axis["labels"].index(cell["labels"][rows_axis["name"]])
        j = cols_axis["labels"].index(cell["labels"][cols_axis["name"]])
        median[i, j] = np.nan if cell["metric"]["median"] is None else cell["metric"]["median"]
        rate[i, j] = cell["success"]["rate"]
    width = min(20.0, max(8.0, 2.4 * shape[1]))
    height = min(20.0, max(3.5, 0.35 * shape[0] + 1.5))
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, 2)
    metric = summary["metric"]["name"]
    better_high = summary["metric"]["higher_is_better"]
    positive = median[np.isfinite(median)]
    norm = None
    if (
        not better_high
        and positive.size
        and positive.min() > 0
        and positive.max() / positive.min() > 100
    ):
        norm = LogNorm(positive.min(), positive.max())
    panels = (
        (axes[0], median, f"median {metric}", "viridis" if better_high else "viridis_r", norm),
        (axes[1], rate, "success rate", "RdYlGn", None),
    )
    for ax, values, title, cmap, panel_norm in panels:
        image = ax.imshow(
            np.ma.masked_invalid(values), cmap=cmap, aspect="auto", norm=panel_norm,
            **({"vmin": 0, "vmax": 1} if title == "success rate" else {}),
        )  # fmt: skip
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(range(shape[1]), cols_axis["labels"], rotation=30, fontsize="small")
        ax.set_yticks(range(shape[0]), rows_axis["labels"], fontsize="small")
        ax.set_xlabel(cols_axis["field"] or cols_axis["name"])
        ax.set_ylabel(rows_axis["field"] or rows_axis["name"])
        ax.set_title(title)
        if values.size <= 150:
            for (i, j), value in np.ndenumerate(values):
                text = "div." if not np.isfinite(value) else f"{value:.3g}"
                ax.text(j, i, text, ha="center", va="center", fontsize="x-small")
    return _save(fig, path)


def sweep_figures(summary: dict, folder: Path) -> list[Path]:
    paths = [
        sweep_metric_figure(summary, folder / "metric.png"),
        sweep_success_figure(summary, folder / "success.png"),
    ]
    if sum(len(a["values"]) > 1 for a in summary["axes"]) == 2:
        paths.append(sweep_heat_map(summary, folder / "heat_map.png"))
    return paths
