"""One experiment's part of a report (stablelearn.report): what it trained, its scores per
variant, interactive learning curves and scores, the gradient-flow and data figures, and
a per-seed drill-down (which seeds diverged, every seed's curve)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.experiments.runner import ExperimentResult, VariantResult
from stablelearn.optim import describe
from stablelearn.report import (
    Cell,
    Chart,
    Code,
    Details,
    Facts,
    Image,
    Section,
    Table,
    Text,
    blocks,
    charts,
)
from stablelearn.report.document import format_number

FIGURE_ALT = {
    "histograms": "Histograms of the first two input features and of the target",
    "target": "Histogram and box plot of the regression target",
    "scatter": "Scatter plot of the two input features, coloured by class",
    "gradients": "Gradient norm per layer and epoch (median over repeats), its depth profile, "
    "and the fraction of dead or saturated units per layer",
}
_LOSS_TITLE = {"mse": "mean squared error", "binary_crossentropy": "binary cross-entropy",
               "sparse_categorical_crossentropy": "cross-entropy"}  # fmt: skip


def metric_title(result: ExperimentResult) -> str:
    return "test MSE" if result.metric == "loss" else f"test {result.metric}"


def experiment_section(result: ExperimentResult, summary: dict[str, Any], folder: Path) -> Section:
    """The section; `folder` holds the experiment's PNG figures (summary["figures"])."""
    e = result.experiment
    figures = {Path(name).stem: folder / name for name in summary["figures"]}
    parts = [Text(e.description)] if e.description else []
    if result.variants:
        parts += [
            Facts(_what_was_trained(result)),
            Code(
                tuple(summary["lesson_format"]),
                "The lesson's printout: the mean over repeats "
                "where the lesson printed one run, then median and 10-90% range per variant",
            ),
            _scores_table(result, summary),
            *_curve_charts(result, figures.get("learning_curves")),
            _scores_chart(result, figures.get("box")),
            _drilldown(result),
        ]
        t = summary["timing"]
        parts.append(Text(f"Compile {t['compile_s']:.2f} s, train {t['train_s']:.2f} s."))
    for name in ("gradients", "histograms", "target", "scatter"):
        if name in figures:
            parts.append(Image(figures[name], FIGURE_ALT[name], f"`{figures[name].name}`"))
    return Section(e.id, f"{e.title} (lesson {e.section})", blocks(parts))


def _what_was_trained(result: ExperimentResult) -> tuple[tuple[str, str], ...]:
    e = result.experiment
    first = result.variants[0].variant
    config = e.config
    pairs = [
        ("data", f"{e.dataset}: {result.dataset.n_rows} rows, {result.dataset.n_features} features"),
        ("model", f"`{first.model.describe()}`" + _differs(result, lambda v: v.model.describe())),
        ("optimizer", describe(first.optimizer) + _differs(result, lambda v: describe(v.optimizer))),
        ("loss", _LOSS_TITLE.get(config.loss, config.loss)),
        ("fit", f"{config.epochs} epochs, batch size {config.batch_size}, "
                f"{e.repeats} repeats (seeds {e.seed}-{e.seed + e.repeats - 1})"),
        ("scaling", f"inputs {first.input_scaler}, target {first.target_scaler}, fitted on "
                    f"{e.fit_scalers_on} rows"),
        ("variants", ", ".join(f"`{v.name}`" for v in result.variants)),
    ]  # fmt: skip
    return tuple(pairs)


def _differs(result: ExperimentResult, key) -> str:
    values = {key(v.variant) for v in result.variants}
    return " (varies by variant)" if len(values) > 1 else ""


def _scores_table(result: ExperimentResult, summary: dict[str, Any]) -> Table:
    """summary.json's medians and 10-90% ranges per variant (the same numbers)."""
    title = metric_title(result)
    rows = []
    for v, entry in zip(result.variants, summary["variants"], strict=True):
        train, test = entry["train"], entry["test"]
        rows.append((
            Cell(v.name),
            Cell(f"{entry['diverged']}/{entry['n']}", float(entry["diverged"])),
            _number(train["median"]), _number(test["median"]), _number(test["p10"]),
            _number(test["p90"]), Cell(_describe_variant(v)),
        ))  # fmt: skip
    columns = ("variant", "diverged", f"train {title[5:]} median", f"{title} median",
               f"{title} p10", f"{title} p90", "configuration")  # fmt: skip
    return Table(f"{result.experiment.title}: scores over {result.experiment.repeats} repeats (median and 10-90% range)",
                 columns, tuple(rows), numeric=frozenset({1, 2, 3, 4, 5}))  # fmt: skip


def _describe_variant(v: VariantResult) -> str:
    x = v.variant
    return (
        f"`{x.model.describe()}`, {describe(x.optimizer)}, inputs {x.input_scaler}, "
        f"target {x.target_scaler}"
    )


def _number(value: float | None) -> Cell:
    """A score cell; None (JSON's NaN: every run diverged) shows '-' and sorts last."""
    return Cell("-", None) if value is None else Cell(format_number(float(value)), float(value))


def _bands(result: ExperimentResult, name: str) -> list[charts.Band]:
    """Train and validation bands per variant, where a variant has a line to draw."""
    bands = []
    for v in result.variants:
        r = v.result
        for key, split in ((name, "train"), (f"val_{name}", "validation")):
            if key in r.history:
                b = charts.Band.over_models(v.name, split, r.history[key], r.history_epochs)
                if b is not None:
                    bands.append(b)
    return bands


def _curve_charts(result: ExperimentResult, png: Path | None) -> list:
    """A loss chart (and an accuracy chart for classification): train and validation
    medians with their 10-90% bands per variant."""
    history = result.variants[0].result.history
    loss_title = _LOSS_TITLE.get(result.experiment.config.loss, "loss")
    out = []
    for name, y_title in (("loss", f"loss ({loss_title})"), ("accuracy", "accuracy")):
        if name not in history:
            continue
        bands = _bands(result, name)
        if not bands:
            finite = any(np.isfinite(v.result.history[name]).any() for v in result.variants)
            when = "after one recorded epoch" if finite else "before its first recorded epoch ended"
            out.append(Text(f"No {name} curve to draw: every run diverged {when}."))
            continue
        title = f"{result.experiment.title}: {name} per epoch"
        splits = {b.split for b in bands}
        which = "solid train, dashed validation" if len(splits) > 1 else f"{bands[0].split} only"
        out.append(
            Chart(
                charts.curves(bands, title, y_title),
                f"{name.capitalize()} per epoch, median over repeats with 10-90% band, for "
                + ", ".join(v.name for v in result.variants),
                f"Median over repeats, 10-90% band; {which}. Hover for values; click a legend "
                "entry to highlight a variant.",
                png=png if name == "loss" else None,
            )
        )
    return out


def _scores_chart(result: ExperimentResult, png: Path | None) -> Chart | Text:
    title = metric_title(result)
    names = [v.name for v in result.variants]
    if not any(np.isfinite(v.result.test_scores[result.metric]).any() for v in result.variants):
        return Text(f"No {title} to plot: every seed diverged.")
    return Chart(
        charts.scores_strip(
            names,
            [v.result.test_scores[result.metric] for v in result.variants],
            [v.result.seeds for v in result.variants],
            title,
            f"{result.experiment.title}: {title} per seed",
        ),
        f"{title} of every seed for {', '.join(names)}, with the median marked",
        "One dot per seed, the bar marks the median; diverged seeds are counted in the label.",
        png=png,
    )


def _drilldown(result: ExperimentResult) -> Details:
    """Which seeds diverged and every seed's validation (else training) loss curve."""
    inner: list = []
    for v in result.variants:
        r = v.result
        key = "val_loss" if "val_loss" in r.history else "loss"
        inner.append(Text(f"**{v.name}**: {_diverged_seeds(r.seeds, r.diverged_epoch)}"))
        if not np.isfinite(np.asarray(r.history[key], float)).any():
            continue
        inner.append(
            Chart(
                charts.seed_curves(
                    v.name,
                    np.asarray(r.history_epochs),
                    np.asarray(r.history[key]),
                    [int(s) for s in r.seeds],
                    [int(d) for d in r.diverged_epoch],
                    "validation loss" if key == "val_loss" else "training loss",
                ),
                f"{v.name}: the {'validation' if key == 'val_loss' else 'training'} loss of every seed",
                "One line per seed; diverged seeds in vermillion, up to their last finite value. "
                "Hover a line for its seed.",
            )
        )
    return Details("Every seed: which diverged, and their curves", blocks(inner))


def _diverged_seeds(seeds: Sequence[int], diverged_epoch: Sequence[int]) -> str:
    bad = [(int(s), int(d)) for s, d in zip(seeds, diverged_epoch, strict=True) if d > 0]
    if not bad:
        return f"no seed diverged (of {len(seeds)})."
    listed = ", ".join(f"{s} (epoch {d})" for s, d in bad[:30])
    more = f" and {len(bad) - 30} more" if len(bad) > 30 else ""
    return f"{len(bad)} of {len(seeds)} seeds diverged: seed {listed}{more}."
