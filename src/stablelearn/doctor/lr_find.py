"""`stablelearn lr-find`: the learning-rate range test (stablelearn.doctor.range_test) on
the user's data and configuration, as the doctor reads them (stablelearn.doctor.config),
with its files: lr_find.json and a figure of held-out loss against learning rate.

Every rate and seed trains in one compiled program; the rows are the doctor's (a seeded
sample of large splits, stablelearn.doctor.sample).
"""

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from stablelearn.doctor.range_test import USABLE_SHARE, RangeTest, format_rate
from stablelearn.doctor.sample import MAX_ROWS, RowSample, row_sample
from stablelearn.doctor.search import Planned, Trainer
from stablelearn.engine.budget import Estimate
from stablelearn.experiments import Experiment, variant_tables
from stablelearn.figures import log_ticks, save, use_log_scale
from stablelearn.io import json_safe, write_json

SCHEMA_VERSION = 1
JSON_NAME, FIGURE_NAME = "lr_find.json", "lr_find.png"


@dataclass(frozen=True, eq=False)
class LrFind:
    experiment: Experiment  # the user's configuration (one variant)
    sample: RowSample
    test: RangeTest


@dataclass(frozen=True, eq=False)
class LrFindPlan:
    """The range test planned, with its estimate (`planned.estimate`), before training."""

    experiment: Experiment
    sample: RowSample
    trainer: Trainer
    planned: Planned

    def train(self, on_training: Callable[[str, int, Estimate], None] | None = None) -> LrFind:
        trainer = self.trainer
        if on_training is not None:
            trainer = dataclasses.replace(trainer, on_training=on_training)
        user_rate = self.experiment.variants[0].optimizer.learning_rate
        test = trainer.train_rates(self.planned, "the range test", user_rate)
        return LrFind(self.experiment, self.sample, test)


def plan_lr_find(
    experiment: Experiment, rates: Sequence[float], max_rows: int = MAX_ROWS
) -> LrFindPlan:
    """Every rate x the experiment's repeats (seeds seed, seed + 1, ...) on the doctor's
    rows; `experiment` is the user's configuration as the doctor reads it (doctor.config)."""
    sample = row_sample(experiment, max_rows)
    trainer = Trainer(experiment, sample)
    tables = variant_tables(experiment.variants[0])
    return LrFindPlan(
        experiment, sample, trainer, trainer.plan_rates(tables, rates, 0, experiment.repeats)
    )


def run_lr_find(experiment: Experiment, rates: Sequence[float], max_rows: int = MAX_ROWS) -> LrFind:
    """Plan, train and summarize the range test."""
    return plan_lr_find(experiment, rates, max_rows).train()


def lr_find_json(found: LrFind) -> dict[str, Any]:
    e = found.experiment
    return {
        "schema_version": SCHEMA_VERSION,
        "data": {
            "dataset": e.dataset,
            "task": e.data.task,
            "rows": len(e.data.y),
            "rows_used": found.sample.to_json(),
        },
        "configuration": variant_tables(e.variants[0]),
        **found.test.to_json(),
        "figure": FIGURE_NAME,
    }


def figure(test: RangeTest, title: str, path: Path) -> Path:
    """Median held-out loss against learning rate (log axis), the p25-p75 band and the
    min-max range over the seeds, every seed a dot, diverged seeds marked at the top,
    the usable range shaded and the recommended rate drawn."""
    rates = np.array([r.learning_rate for r in test.rates])
    losses = np.stack([r.losses for r in test.rates])  # [rates, seeds]
    finite = np.isfinite(losses)
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    ax.set_xscale("log")
    span = test.usable_range
    if span is not None:
        low, high = rates[span[0]], rates[span[1]]
        ax.axvspan(low, high, color="tab:green", alpha=0.1, label="usable range")
    spreads = [r.finite_spread() for r in test.rates]
    has = np.array([s is not None for s in spreads])
    if has.any():
        lo, p25, p75, hi = (np.array([s[k] if s else np.nan for s in spreads]) for k in range(4))
        ax.fill_between(rates[has], lo[has], hi[has], color="tab:blue", alpha=0.1,
                        linewidth=0, label="min-max over seeds")  # fmt: skip
        ax.fill_between(rates[has], p25[has], p75[has], color="tab:blue", alpha=0.3,
                        linewidth=0, label="p25-p75 over seeds")  # fmt: skip
        seed_x = np.broadcast_to(rates[:, None], losses.shape)[finite]
        ax.scatter(seed_x, losses[finite], s=6, color="tab:blue", alpha=0.35, linewidths=0)
        medians = np.array([r.median for r in test.rates])
        shown = np.isfinite(medians)
        ax.plot(rates[shown], medians[shown], "o-", color="tab:blue", linewidth=1.8,
                markersize=4, label="median")  # fmt: skip
    ax.axhline(test.baseline_loss, color="grey", linestyle=":", linewidth=1,
               label="constant prediction")  # fmt: skip
    if test.recommended is not None:
        ax.axvline(test.recommended, color="tab:green", linewidth=1.5,
                   label=f"recommended {format_rate(test.recommended)}")  # fmt: skip
    values = losses[finite]
    if values.size and use_log_scale([np.append(values, test.baseline_loss)]):
        ax.set_yscale("log")
    diverged = np.array([r.diverged for r in test.rates])
    for rate, k, n in zip(rates, diverged, [r.n for r in test.rates], strict=True):
        if k:
            ax.annotate(f"{k}/{n}\ndiverged", (rate, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=7, color="tab:red")  # fmt: skip
    locator, formatter = log_ticks(rates)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlim(rates[0] / 1.5, rates[-1] * 1.5)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final held-out {test.loss_name} ({test.epochs} epochs)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.text(0.01, 0.01, f"usable: no seed diverged, median closes {USABLE_SHARE:.0%} of the gap "
             "from the constant prediction to the best rate", fontsize=7, color="grey")  # fmt: skip
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save(fig, path)


def write_lr_find_files(found: LrFind, folder: Path) -> list[Path]:
    """lr_find.json and lr_find.png into `folder` (the partial folder of
    stablelearn.io.atomic_folder, so that the whole folder appears at once)."""
    title = (
        f"Learning-rate range test: {found.experiment.data.name}, "
        f"{len(found.test.seeds)} seeds per rate"
    )
    png = figure(found.test, title, folder / FIGURE_NAME)
    write_json(folder / JSON_NAME, json_safe(lr_find_json(found)))
    return [folder / JSON_NAME, png]
