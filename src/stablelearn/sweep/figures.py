"""A sweep's figures: the metric and the success rate along an axis, and a heat map
for two axes. They read the sweep summary (sweep.json's content)."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from stablelearn.figures import note, save


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
        note(ax, "every run diverged")
    return save(fig, path)


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
    return save(fig, path)


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
    return save(fig, path)


def sweep_figures(summary: dict, folder: Path) -> list[Path]:
    paths = [
        sweep_metric_figure(summary, folder / "metric.png"),
        sweep_success_figure(summary, folder / "success.png"),
    ]
    if sum(len(a["values"]) > 1 for a in summary["axes"]) == 2:
        paths.append(sweep_heat_map(summary, folder / "heat_map.png"))
    return paths
