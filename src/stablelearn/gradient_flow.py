"""The gradient-flow figure: where gradients vanish, explode or stop, layer by layer.

Per configuration: (1) the median gradient norm per layer and epoch on a log colour
scale, (2) its depth profile at the first, ~10%, ~50% and last epoch, (3) the
dead-ReLU / saturated tanh-sigmoid fraction per hidden layer and the clip rate.
Medians are over repeats; a diverged run counts up to the epoch it diverged in.
Gradient norms are the mean over each epoch's steps, measured before clipping.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps, transforms
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from stablelearn.figures import diverged_note, layer_ticks, log_ticks, nanmedian, note, save, span
from stablelearn.results import TrainResult

HEAT_CMAP = colormaps["viridis"].with_extremes(under="black", over="tab:red", bad="0.85")
FRACTION_CMAP = colormaps["magma_r"].with_extremes(bad="0.85")
FRACTION_LINES_MAX = 6  # more hidden layers than this: a heat map instead of lines
MAX_DECADES = 10  # the colour scale spans at most this many powers of ten


def _clean_telemetry(result: TrainResult) -> dict[str, np.ndarray]:
    """[models, epochs, ...] telemetry with what was measured on NaN weights set to NaN.

    Gradient norms are kept up to the epoch a run diverged in (they show how large they
    grew), then dropped: on NaN weights a ReLU layer's gradient reads exactly 0. The
    activation fractions (measured at the epoch's end) and the clip rate lose that epoch
    too: with NaN weights no ReLU looks dead and no unit looks saturated.
    """
    t = {k: np.array(v, dtype=float) for k, v in result.telemetry.items() if v.ndim >= 2}
    epochs = np.asarray(result.history_epochs)[None, :]
    start = np.where(result.diverged, result.diverged_epoch, result.epochs + 1)[:, None]
    for key, values in t.items():
        per_step = key.startswith(("grad_", "update_", "weight_"))
        values[(epochs > start) if per_step else (epochs >= start)] = np.nan
    return t


def _profile_epochs(n_epochs: int) -> list[int]:
    """1-based columns for the depth profile: the first, ~10%, ~50% and the last."""
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


def _grad_heat_map(ax, median: np.ndarray, epochs: np.ndarray, names: Sequence[str], norm: LogNorm):
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
        extent=(0.5, epochs[-1] + 0.5, -0.5, z.shape[0] - 0.5),
    )  # fmt: skip
    layer_ticks(ax, names, "y")
    ax.set_ylabel("layer (input at bottom)", fontsize=8)
    ax.set_xlabel("epoch")
    return image


def _depth_profile(ax, median: np.ndarray, epochs: np.ndarray, names: Sequence[str]) -> None:
    """Median gradient norm per layer at a few epochs; 0 and Inf as markers on the
    bottom and top edges, which a log axis cannot show."""
    layers = np.arange(median.shape[1])
    chosen = _profile_epochs(median.shape[0])
    colors = colormaps["plasma"](np.linspace(0.0, 0.85, len(chosen)))
    edge = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    marked: set[str] = set()
    for column, color in zip(chosen, colors, strict=True):
        values, epoch = median[column - 1], int(epochs[column - 1])
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
        locator, formatter = log_ticks(finite)
        ax.yaxis.set_major_locator(locator)
        ax.yaxis.set_major_formatter(formatter)
    else:
        ax.set_ylim(1, 10)
        ax.set_yticks([])
    ax.yaxis.set_minor_locator(NullLocator())  # minor ticks: a third of the drawing time
    ax.set_xlim(-0.4, len(names) - 0.6)
    layer_ticks(ax, names, "x")
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


def _fraction_rows(
    result: TrainResult, t: dict[str, np.ndarray]
) -> list[tuple[str, str, np.ndarray]]:
    """(layer name, "dead" or "saturated", median fraction per epoch) for each hidden
    layer where one of the two applies (ReLU: dead; tanh/sigmoid: saturated)."""
    dead, saturated = nanmedian(t["dead_fraction"]), nanmedian(t["saturated_fraction"])
    has_dead = np.isfinite(result.telemetry["dead_fraction"]).any(axis=(0, 1))
    has_saturated = np.isfinite(result.telemetry["saturated_fraction"]).any(axis=(0, 1))
    names = result.layer_names(0)
    return [
        (names[i], "dead", dead[:, i]) if has_dead[i] else (names[i], "saturated", saturated[:, i])
        for i in range(dead.shape[1])
        if has_dead[i] or has_saturated[i]
    ]


def _fraction_heat_map(ax, rows, epochs: np.ndarray, clip: np.ndarray, show_clip: bool):
    # long runs measure units every few epochs: hold each value until the next one
    z = np.stack([_hold(values) for _, _, values in rows])
    image = ax.imshow(
        np.ma.masked_invalid(z), aspect="auto", origin="lower", interpolation="nearest",
        cmap=FRACTION_CMAP, vmin=0.0, vmax=1.0,
        extent=(0.5, epochs[-1] + 0.5, -0.5, z.shape[0] - 0.5),
    )  # fmt: skip
    layer_ticks(ax, [name for name, _, _ in rows], "y")
    ax.set_ylabel("hidden layer (input at bottom)", fontsize=8)
    if show_clip:
        twin = ax.twinx()
        twin.plot(epochs, clip, color="white", linewidth=2.6)
        twin.plot(epochs, clip, color="black", linewidth=1.2)
        twin.set_ylim(-0.03, 1.03)
        twin.set_ylabel("clip rate (black line)", fontsize=8)
    return image


def _fraction_lines(ax, rows, epochs: np.ndarray, clip: np.ndarray, show_clip: bool) -> None:
    for n, (name, kind, values) in enumerate(rows):
        measured = np.isfinite(values)  # units are measured every few epochs in long runs
        if measured.any():  # not after every run diverged
            style = "-" if kind == "dead" else "--"
            ax.plot(epochs[measured], values[measured], style, color=f"C{n}", linewidth=1.4,
                    label=f"{name} {kind}")  # fmt: skip
    if show_clip:
        ax.plot(epochs, clip, ":", color="black", linewidth=1.8, label="clip rate (steps)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(1, max(2, epochs[-1]))
    ax.set_ylabel("fraction (median)", fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.0)


def _hidden_fractions(ax, result: TrainResult, t: dict[str, np.ndarray]):
    """Median dead-ReLU / saturated-unit fraction per hidden layer, and the clip rate.

    Lines for up to FRACTION_LINES_MAX hidden layers, else a heat map, which is returned
    (None otherwise) so the caller can give it a colour bar.
    """
    rows = _fraction_rows(result, t)
    clip = nanmedian(t["clip_rate"])
    show_clip = bool(np.nan_to_num(t["clip_rate"]).max() > 0)
    epochs = np.asarray(result.history_epochs)
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
        return _fraction_heat_map(ax, rows, epochs, clip, show_clip)
    _fraction_lines(ax, rows, epochs, clip, show_clip)
    return None


def _divergence_notes(axes, result: TrainResult) -> None:
    """Say on each panel how many runs diverged, and from which step."""
    text = diverged_note(result)
    if not text:
        return
    heat_ax, profile_ax, fraction_ax = axes
    steps = result.telemetry["first_nonfinite_step"]
    steps = steps[steps > 0]
    first = f"\nfirst NaN/Inf at {span('step', steps)}" if steps.size else ""
    everything = bool(result.diverged.all())  # else keep the data visible
    note(heat_ax, text + first, y=0.5 if everything else 0.85)
    note(profile_ax, text, y=0.8)
    note(fraction_ax, text, y=0.5 if everything else 0.85)


def _grad_colour_bar(
    fig, image, heat_axes, norm: LogNorm, scaled: bool, zero: bool, inf: bool, many: bool
) -> None:
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}
    bar = fig.colorbar(
        image, ax=heat_axes, extend=extend.get((zero, inf), "neither"), pad=0.01,
        fraction=0.03 if many else 0.05, aspect=40 if many else 20,
    )  # fmt: skip
    bar.minorticks_off()
    if not scaled:
        bar.set_ticks([])
    else:
        bar.locator, bar.formatter = log_ticks(np.array([norm.vmin, norm.vmax]))
    extremes = ["black: 0"] * zero + ["red: Inf"] * inf
    label = "median gradient norm" + (f" ({', '.join(extremes)})" if extremes else "")
    bar.set_label(label, fontsize=8)


def gradient_figure(
    variants: Sequence[tuple[str, TrainResult]], title: str, repeats: int, path: Path
) -> Path:
    """One row of three panels per (name, result); see the module docstring."""
    rows = len(variants)
    layers = max(len(result.layer_names(0)) for _, result in variants)
    row_height = max(3.3, 0.8 + 0.17 * layers)
    fig = Figure(
        figsize=(16, row_height * rows + (0.4 if rows == 1 else 0.0)), layout="constrained"
    )
    fig.get_layout_engine().set(w_pad=0.08)  # keeps colour-bar and y labels apart
    axes = fig.subplots(rows, 3, squeeze=False, width_ratios=[1.25, 1.0, 1.0])
    cleaned = [_clean_telemetry(result) if result.telemetry else None for _, result in variants]
    medians = [nanmedian(t["grad_norm"]) if t else None for t in cleaned]
    scale = _grad_norm_scale([m for m in medians if m is not None])
    norm = scale or LogNorm(1e-3, 1.0)  # no finite norm at all: only 0 / Inf / NaN to show
    any_zero = any_inf = False
    heat_axes, fractions, image = [], [], None
    for row, ((name, result), t, median) in enumerate(zip(variants, cleaned, medians, strict=True)):
        heat_ax, profile_ax, fraction_ax = axes[row]
        heat_ax.set_title(
            f"{name + ': ' if rows > 1 else ''}gradient norm per layer and epoch", fontsize=10
        )
        profile_ax.set_title("Depth profile (input on the left)", fontsize=10)
        if t is None or median is None:
            for ax in axes[row]:
                ax.set_axis_off()
            note(heat_ax, "no telemetry recorded (telemetry switched off)")
            continue
        names = result.layer_names(0)
        median = median[:, : len(names)]
        any_zero |= bool((median == 0).any())
        any_inf |= bool(np.isposinf(median).any())
        epochs = np.asarray(result.history_epochs)
        image = _grad_heat_map(heat_ax, median, epochs, names, norm)
        heat_axes.append(heat_ax)
        _depth_profile(profile_ax, median, epochs, names)
        fraction_image = _hidden_fractions(fraction_ax, result, t)
        if fraction_image is not None:
            fractions.append((fraction_image, fraction_ax))
        _divergence_notes(axes[row], result)
    if heat_axes:
        _grad_colour_bar(
            fig, image, heat_axes, norm, scale is not None, any_zero, any_inf, many=rows > 1
        )
    if fractions:
        bar = fig.colorbar(fractions[0][0], ax=[ax for _, ax in fractions], pad=0.08)
        bar.set_label("dead / saturated fraction", fontsize=8)
    fig.suptitle(
        f"{title}: gradient flow (medians over {repeats} "
        "repeats; gradient norms: RMS over each epoch's steps, before clipping)",
        fontsize=11,
    )
    return save(fig, path)
