"""A sweep's figures: the metric and the success rate along an axis, and a heat map
for two axes. They read the sweep summary (sweep.json's content) and show display names
(stablelearn.sweep.names), not the internal field names.

Lines that lie on top of each other stay visible: every series has its own colour
(Okabe-Ito, colour-blind safe), marker and dash pattern, is drawn half transparent and
shifted sideways by a small offset. Heat maps use viridis and cividis (readable in grey
and with every common colour-vision deficiency), with each cell's number in black or
white by the luminance of the colour behind it.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from stablelearn.figures import note, save
from stablelearn.sweep.names import axis_titles, cell_title, success_title

# Okabe-Ito, as stablelearn.report.charts.PALETTE
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
DASHES = ["-", "--", "-.", ":"]
OFFSET = 0.012  # a series' sideways shift per step, as a fraction of the x span


def series_style(i: int) -> dict:
    """Colour, marker and line style of the i-th series: no two of the first 8 share a
    colour or a marker, and neighbours differ in dash pattern."""
    return {
        "color": COLOURS[i % len(COLOURS)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": DASHES[i % len(DASHES)],
    }


def sweep_layout(cells: Sequence[dict], axes: Sequence[dict]) -> tuple[dict, list[str]]:
    """The axis drawn along x (the first numeric one with several values, else the first
    with several values) and the series: one per combination of the other axes."""
    varying = [a for a in axes if len(a["values"]) > 1] or list(axes)
    x_axis = next((a for a in varying if a["numeric"]), varying[0])
    others = [a["name"] for a in axes if a is not x_axis and len(a["values"]) > 1]
    return x_axis, others


def cell_series(
    cells: Sequence[dict], x_axis: dict, others: Sequence[str], titles: dict[str, str]
) -> dict[str, list[dict]]:
    series: dict[str, list[dict]] = {}
    for cell in cells:
        # one other axis: its value alone (the legend's title names the axis)
        name = (
            cell["labels"][others[0]]
            if len(others) == 1
            else cell_title({o: cell["labels"][o] for o in others}, titles) or "all runs"
        )
        series.setdefault(name, []).append(cell)
    order = {label: i for i, label in enumerate(x_axis["labels"])}
    return {
        name: sorted(members, key=lambda c: order[c["labels"][x_axis["name"]]])
        for name, members in series.items()
    }


def log_x_axis(x_axis: dict) -> bool:
    if not x_axis["numeric"]:
        return False
    values = np.asarray(x_axis["values"], float)
    return bool(values.min() > 0 and values.max() / values.min() >= 100)


def _x_positions(cells: Sequence[dict], x_axis: dict) -> np.ndarray:
    if x_axis["numeric"]:
        return np.asarray([float(c["values"][x_axis["name"]]) for c in cells])
    order = {label: i for i, label in enumerate(x_axis["labels"])}
    return np.asarray([order[c["labels"][x_axis["name"]]] for c in cells], float)


def offset_positions(x: np.ndarray, i: int, n: int, x_axis: dict) -> np.ndarray:
    """Series i of n shifted sideways by a small step (multiplied on a log axis), the
    series centred on the true positions, so equal values do not hide each other."""
    step = i - (n - 1) / 2
    if n < 2:
        return x
    if log_x_axis(x_axis):
        values = np.asarray(x_axis["values"], float)
        decades = np.log10(values.max() / values.min())
        return x * 10 ** (OFFSET * step * decades)
    span = float(np.ptp(np.asarray(x_axis["values"], float))) if x_axis["numeric"] else None
    span = span or max(len(x_axis["labels"]) - 1, 1)
    return x + OFFSET * step * span


def _x_scale(ax, x_axis: dict, title: str) -> None:
    if x_axis["numeric"]:
        values = np.asarray(x_axis["values"], float)
        if log_x_axis(x_axis):
            ax.set_xscale("log")
        elif np.all(values == np.round(values)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xticks(range(len(x_axis["labels"])), x_axis["labels"], rotation=20)
    ax.set_xlabel(title)


def _none_to_nan(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], float)


def _lines(ax, summary: dict, value, low, high) -> tuple[dict, int, list[np.ndarray]]:
    """One line per series with its interval band; returns the x axis, the number of
    series and the plotted values."""
    titles = axis_titles(summary["axes"])
    x_axis, others = sweep_layout(summary["cells"], summary["axes"])
    series = cell_series(summary["cells"], x_axis, others, titles)
    plotted = []
    for i, (name, cells) in enumerate(series.items()):
        x = offset_positions(_x_positions(cells, x_axis), i, len(series), x_axis)
        y = _none_to_nan([value(c) for c in cells])
        style = series_style(i)
        ax.fill_between(x, _none_to_nan([low(c) for c in cells]),
                        _none_to_nan([high(c) for c in cells]), color=style["color"],
                        alpha=0.12, linewidth=0)  # fmt: skip
        ax.plot(x, y, label=name, markersize=5, linewidth=1.6, alpha=0.85, **style)
        plotted.append(y)
    _x_scale(ax, x_axis, titles[x_axis["name"]])
    if len(series) > 1:
        ax.legend(fontsize="small", title=", ".join(titles[o] for o in others) or None,
                  title_fontsize="small")  # fmt: skip
    return x_axis, len(series), plotted


def sweep_metric_figure(summary: dict, path: Path) -> Path:
    """Median metric per cell with its bootstrap 95% CI, along one axis, a line per series."""
    label = summary["metric"]["label"]
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    _, _, medians = _lines(
        ax, summary, lambda c: c["metric"]["median"], lambda c: c["metric"]["ci_low"],
        lambda c: c["metric"]["ci_high"],
    )  # fmt: skip
    finite = np.concatenate(medians)
    finite = finite[np.isfinite(finite)]
    spans_decades = finite.size and finite.min() > 0 and finite.max() / finite.min() > 100
    if not summary["metric"]["higher_is_better"] and spans_decades:
        ax.set_yscale("log")
    ax.set_ylabel(f"{label}\n(median of the runs that did not diverge, 95% CI)")
    ax.set_title(f"{summary['title']}: {label}", fontsize="medium")
    if finite.size == 0:
        note(ax, "every run diverged")
    return save(fig, path)


def sweep_success_figure(summary: dict, path: Path) -> Path:
    """Success rate per cell with its Wilson 95% interval, along one axis."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.add_subplot()
    _lines(
        ax, summary, lambda c: c["success"]["rate"], lambda c: c["success"]["ci_low"],
        lambda c: c["success"]["ci_high"],
    )  # fmt: skip
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("success rate (Wilson 95% interval)")
    ax.set_title(f"Success: {success_title(summary['metric'])}", fontsize="medium")
    return save(fig, path)


def text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a background colour (its WCAG relative
    luminance against the 0.179 crossover where both contrast ratios are equal)."""
    channels = np.asarray(rgba[:3], float)
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    luminance = float(linear @ [0.2126, 0.7152, 0.0722])
    return "black" if luminance > 0.179 else "white"


def sweep_heat_map(summary: dict, path: Path) -> Path:
    """Two axes as a grid: median metric and success rate, each cell annotated."""
    titles = axis_titles(summary["axes"])
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
    label = summary["metric"]["label"]
    better_high = summary["metric"]["higher_is_better"]
    positive = median[np.isfinite(median)]
    norm = Normalize()
    if (
        not better_high
        and positive.size
        and positive.min() > 0
        and positive.max() / positive.min() > 100
    ):
        norm = LogNorm(positive.min(), positive.max())
    # the better end is bright in both panels
    panels = (
        (axes[0], median, f"median {label}", "viridis" if better_high else "viridis_r", norm),
        (axes[1], rate, "success rate", "cividis", Normalize(0, 1)),
    )
    for ax, values, title, cmap, panel_norm in panels:
        colours = colormaps[cmap].with_extremes(bad="#eeeeee")  # all diverged: light grey
        image = ax.imshow(
            np.ma.masked_invalid(values), cmap=colours, aspect="auto", norm=panel_norm
        )
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xticks(range(shape[1]), cols_axis["labels"], rotation=30, fontsize="small")
        ax.set_yticks(range(shape[0]), rows_axis["labels"], fontsize="small")
        ax.set_xlabel(titles[cols_axis["name"]])
        ax.set_ylabel(titles[rows_axis["name"]])
        ax.set_title(title, fontsize="medium")
        if values.size <= 150:
            for (i, j), value in np.ndenumerate(values):
                finite = np.isfinite(value)
                colour = text_colour(image.cmap(image.norm(value))) if finite else "black"
                text = f"{value:.3g}" if finite else "div."
                ax.text(j, i, text, ha="center", va="center", fontsize="small", color=colour)
    return save(fig, path)


def sweep_figures(summary: dict, folder: Path) -> list[Path]:
    paths = [
        sweep_metric_figure(summary, folder / "metric.png"),
        sweep_success_figure(summary, folder / "success.png"),
    ]
    if sum(len(a["values"]) > 1 for a in summary["axes"]) == 2:
        paths.append(sweep_heat_map(summary, folder / "heat_map.png"))
    return paths
