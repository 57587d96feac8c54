"""A sweep's files: sweep.json, cells.csv, models.csv, figures and reports, each
written atomically; the group files stay where the runner saved them, so outputs can
be rebuilt from them at any time."""

import csv
import io
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.io import write_json_atomic, write_text_atomic
from stablelearn.report import (
    Block,
    Bullets,
    Callout,
    Cell,
    Chart,
    Details,
    Facts,
    Report,
    Section,
    Table,
    Text,
    Verdict,
    blocks,
    charts,
    write_report,
)
from stablelearn.report.facts import run_facts
from stablelearn.results import divergence_record
from stablelearn.stats import describe_comparison, format_p, p_number
from stablelearn.sweep.figures import cell_series, log_x_axis, sweep_figures, sweep_layout
from stablelearn.sweep.names import axis_titles, cell_title, success_title
from stablelearn.sweep.run import SweepResult
from stablelearn.sweep.statistics import ALPHA, sweep_summary
from stablelearn.sweep.store import FIGURES_PARTIAL


def _csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buffer.getvalue()


def cells_csv(summary: dict[str, Any]) -> str:
    axes = [a["name"] for a in summary["axes"]]
    stats = ["median", "ci_low", "ci_high", "mean", "std", "p10", "p90"]
    compared = {c["cell"]: c for c in summary["comparisons"]}
    rows = []
    for cell in summary["cells"]:
        comparison = compared.get(cell["label"], {})
        rows.append(
            {
                "cell": cell["label"],
                **cell["labels"],
                "n": cell["n"],
                "diverged": cell["diverged"],
                "success_k": cell["success"]["k"],
                "success_rate": cell["success"]["rate"],
                "success_ci_low": cell["success"]["ci_low"],
                "success_ci_high": cell["success"]["ci_high"],
                **{f"{summary['metric']['name']}_{s}": cell["metric"][s] for s in stats},
                "p_holm_vs_baseline": comparison.get("p_holm"),
                "p_better_vs_baseline": comparison.get("p_better"),
            }
        )
    columns = ["cell", *axes, "n", "diverged", "success_k", "success_rate", "success_ci_low",
               "success_ci_high", *(f"{summary['metric']['name']}_{s}" for s in stats),
               "p_holm_vs_baseline", "p_better_vs_baseline"]  # fmt: skip
    return _csv_text(columns, rows)


def models_csv(result: SweepResult) -> str:
    sweep = result.sweep
    score_columns = [f"train_{n}" for n in result.train_scores] + [
        f"test_{n}" for n in result.test_scores
    ]
    rows = []
    for i, c in enumerate(result.cells):
        cell = sweep.cells[int(c)]
        row = {
            "cell": cell.label,
            **{a.name: a.labels[list(a.values).index(cell.values[a.name])] for a in sweep.axes},
            "repeat": int(result.repeats[i]),
            "seed": int(result.seeds[i]),
            **divergence_record(result.diverged_epoch[i]),
        }
        for column in score_columns:
            value = float(result.scores(column)[i])
            row[column] = value if np.isfinite(value) else None
        rows.append(row)
    columns = ["cell", *(a.name for a in sweep.axes), "repeat", "seed", "diverged",
               "diverged_epoch", *score_columns]  # fmt: skip
    return _csv_text(columns, rows)


def timing_line(summary: dict[str, Any]) -> str:
    t = summary["timing"]
    resumed = f", {t['groups_resumed']} loaded from an earlier run" if t["groups_resumed"] else ""
    return (
        f"{len(summary['cells'])} cells x {summary['repeats']} repeats = {t['models']} models in "
        f"{t['groups']} compiled groups{resumed}; backend {t['backend']}; wall {t['wall_s']:.1f} s, "
        f"compile {t['compile_s']:.1f} s, train {t['train_s']:.1f} s "
        f"({t['train_s_per_cell']:.2f} s of training per cell)."
    )


def notable_sentences(summary: dict[str, Any]) -> list[str]:
    significant = [c for c in summary["comparisons"] if c["significant"]]
    return [c["sentence"] for c in significant] or [
        "No cell differs detectably from the baseline after Holm correction."
    ]


# --- the report: a headline that answers, what was run, then the evidence ----------------------

SENTENCES = 3  # comparison sentences written out; the table holds them all
STRIP_CELLS = 40  # cells in the per-run score chart
CURVE_CELLS = 6  # cells whose every seed's training curve is drawn


def outcome(comparison: dict[str, Any]) -> str:
    """ "better", "worse" or "no difference": the Holm-corrected verdict of a comparison
    with the baseline (as its sentence words it)."""
    if comparison["significant"] and comparison["p_better"] not in (None, 0.5):
        return "better" if comparison["p_better"] > 0.5 else "worse"
    return "no difference"


_VERDICTS = {
    "better": (Verdict("holds", "better"), 1.0),
    "worse": (Verdict("fails", "worse"), -1.0),
    "no difference": (Verdict("unmeasured", "no difference"), 0.0),
}


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _median_ci(cell: dict[str, Any]) -> str:
    m = cell["metric"]
    if m["median"] is None:
        return "- (every run diverged)"
    return f"{_number(m['median'])} [{_number(m['ci_low'])}, {_number(m['ci_high'])}]"


def _success(cell: dict[str, Any]) -> str:
    s = cell["success"]
    if s["ci_low"] is None:
        return "-"
    return f"{s['k']}/{s['n']} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"


def success_rule(summary: dict[str, Any]) -> str:
    """The success rule in words, with the metric's display name."""
    return success_title(summary["metric"])


def _names(summary: dict[str, Any]) -> dict[str, str]:
    """Every cell's display name by its label."""
    titles = axis_titles(summary["axes"])
    return {c["label"]: cell_title(c["labels"], titles) for c in summary["cells"]}


def best_cell(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The cell with the best median (ties: the higher success rate, then the earlier
    cell); None when every run of every cell diverged."""
    scored = [c for c in summary["cells"] if c["metric"]["median"] is not None]
    if not scored:
        return None
    sign = 1.0 if summary["metric"]["higher_is_better"] else -1.0
    return max(scored, key=lambda c: (sign * c["metric"]["median"], c["success"]["rate"]))


def runs_needed(comparisons: int, alpha: float = ALPHA) -> int:
    """The fewest runs per cell with which a Mann-Whitney test (exact, n runs against n)
    can reach p < alpha after Holm correction over `comparisons` tests: its smallest
    two-sided p is 2 / C(2n, n), and Holm's smallest bar is alpha / comparisons."""
    n = 2
    while 2 / math.comb(2 * n, n) >= alpha / max(comparisons, 1):
        n += 1
    return n


def _list(names: Sequence[str], limit: int = 4) -> str:
    """Cell names in bold, separated by semicolons (a name holds commas)."""
    shown = "; ".join(f"**{name}**" for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def headline(summary: dict[str, Any]) -> Callout:
    """The answer first: which cells are better or worse than the baseline (Holm-
    corrected), the best cell with its median and CI, or that no cell differs."""
    names = _names(summary)
    label = summary["metric"]["label"]
    cells = {c["label"]: c for c in summary["cells"]}
    base = cells[summary["baseline"]]
    base_name = names[base["label"]]
    by_outcome: dict[str, list[dict[str, Any]]] = {"better": [], "worse": [], "no difference": []}
    for comparison in summary["comparisons"]:
        by_outcome[outcome(comparison)].append(comparison)
    sign = 1.0 if summary["metric"]["higher_is_better"] else -1.0

    def rank(c: dict[str, Any]) -> float:
        median = cells[c["cell"]]["metric"]["median"]
        return -math.inf if median is None else sign * median

    better = sorted(by_outcome["better"], key=rank, reverse=True)
    worse = by_outcome["worse"]
    n_compared = len(summary["comparisons"])
    base_line = (
        f"The baseline, {base_name}: median {label} {_median_ci(base)}, success {_success(base)}."
    )
    lines: list[str] = []
    if better:
        top = better[0]
        top_cell = cells[top["cell"]]
        kind = "good"
        count = f"{len(better)} of {n_compared} cells beat" + ("s" if len(better) == 1 else "")
        against = (
            f"the baseline's {_number(base['metric']['median'])}"
            if base["metric"]["median"] is not None
            else "the baseline, whose every run diverged"
        )
        title = (
            f"{count} the baseline ({base_name}) on {label}, Holm-corrected. "
            f"Best: {names[top['cell']]}, median {_median_ci(top_cell)} against {against} "
            f"(Holm {format_p(top['p_holm'])})."
        )
        lines.append(f"Better than the baseline: {_list([names[c['cell']] for c in better])}.")
        if worse:
            lines.append(f"Worse than the baseline: {_list([names[c['cell']] for c in worse])}.")
        lines.append(base_line)
    elif worse:
        kind = "warning"
        title = (
            f"No cell beats the baseline ({base_name}) on {label}; {len(worse)} of {n_compared} "
            f"{'is' if len(worse) == 1 else 'are'} worse, Holm-corrected."
        )
        lines.append(f"Worse than the baseline: {_list([names[c['cell']] for c in worse])}.")
        lines.append(base_line)
    else:
        kind = "neutral"
        title = (
            f"No cell differs detectably from the baseline ({base_name}) on {label} after "
            f"Holm correction ({summary['repeats']} runs per cell)."
        )
        lines.append(base_line)
    best = best_cell(summary)
    if best is not None and not better and best["label"] != base["label"]:
        against = next(c for c in summary["comparisons"] if c["cell"] == best["label"])
        if outcome(against) == "no difference":
            lines.append(
                f"Best median: {names[best['label']]}, {_median_ci(best)}; within chance of "
                f"the baseline (Holm {format_p(against['p_holm'])})."
            )
    if n_compared and not better and not worse:
        needed = runs_needed(n_compared)
        if summary["repeats"] < needed:
            lines.append(
                f"With {summary['repeats']} runs per cell no difference could be detected: "
                f"{n_compared} comparisons need at least {needed} runs per cell (`--repeats {needed}`)."
            )
    diverged = sum(c["diverged"] for c in summary["cells"])
    if diverged:
        hit = sum(c["diverged"] > 0 for c in summary["cells"])
        lines.append(
            f"{diverged} of {summary['timing']['models']} runs diverged, in {hit} of "
            f"{len(summary['cells'])} cells (see the per-seed detail)."
        )
    return Callout(kind, title, tuple(line for line in lines if line))


def what_was_run(summary: dict[str, Any], figures: Sequence[str]) -> tuple[Block, ...]:
    m, t = summary["metric"], summary["timing"]
    titles = axis_titles(summary["axes"])
    facts = list(run_facts())
    command = [f for f in facts if f[0] == "command"]
    versions = [f for f in facts if f[0] != "command"]
    seeds = f"seeds {summary['seed']}-{summary['seed'] + summary['repeats'] - 1}"
    resumed = f" ({t['groups_resumed']} loaded from an earlier run)" if t["groups_resumed"] else ""
    pairs = [
        *command,
        ("sweep", f"{summary['title']} (`{summary['id']}`)"),
        ("sweep file", f"`{summary['source']}`"),
        ("dataset", f"`{summary['dataset']}` ({summary['task']})"),
        *(
            (f"axis: {titles[a['name']]}",
             ", ".join(a["labels"]) + (f" (`{a['field']}`)" if a["field"] else " (named axis)"))
            for a in summary["axes"]
        ),
        ("runs", f"{len(summary['cells'])} cells x {summary['repeats']} repeats = {t['models']} "
                 f"models; repeat r of every cell uses seed {summary['seed']} + r ({seeds})"),
        ("baseline", _names(summary)[summary["baseline"]]),
        ("metric", f"{m['label']} ({'higher' if m['higher_is_better'] else 'lower'} is better)"),
        ("success", success_rule(summary)),
        ("compiled", f"{t['groups']} compiled groups{resumed}"),
        ("backend", t["backend"]),
        ("time", f"wall {t['wall_s']:.1f} s, compile {t['compile_s']:.1f} s, train "
                 f"{t['train_s']:.1f} s ({t['train_s_per_cell']:.2f} s of training per cell)"),
        *versions,
        ("files", ", ".join(f"`{n}`" for n in ("sweep.json", "cells.csv", "models.csv", *figures))),
    ]  # fmt: skip
    return (
        (Text(summary["description"]), Facts(tuple(pairs)))
        if summary["description"]
        else (Facts(tuple(pairs)),)
    )


def comparison_table(summary: dict[str, Any]) -> Table:
    """Every cell against the baseline: medians, difference, Holm p, P(better), verdict."""
    names = _names(summary)
    cells = {c["label"]: c for c in summary["cells"]}
    rows = []
    for c in summary["comparisons"]:
        verdict, order = _VERDICTS[outcome(c)]
        cell = cells[c["cell"]]
        rows.append(
            (
                Cell(names[c["cell"]]),
                Cell(_median_ci(cell), cell["metric"]["median"]),
                Cell(_number(c["median_baseline"]), c["median_baseline"]),
                Cell(_signed(c["median_difference"]), c["median_difference"]),
                Cell(_p(c["p_holm"]), c["p_holm"]),
                Cell("-" if c["p_better"] is None else f"{c['p_better']:.2f}", c["p_better"]),
                Cell(f"{c['diverged'][0]}/{c['n_candidate']} vs {c['diverged'][1]}/{c['n_baseline']}",
                     c["diverged"][0]),
                Cell(verdict.label, order, verdict),
            )
        )  # fmt: skip
    base = names[summary["baseline"]]
    return Table(
        f"Every cell against the baseline ({base}): median {summary['metric']['label']}, "
        "two-sided Mann-Whitney U, Holm-corrected",
        ("cell", "median [95% CI]", "baseline median", "difference", "Holm p",
         "P(better)", "diverged (cell vs baseline)", "verdict"),
        tuple(rows),
        numeric=frozenset({1, 2, 3, 4, 5}),
    )  # fmt: skip


def _p(p: float | None) -> str:
    return "-" if p is None else p_number(p)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4g}"


def comparison_sentences(summary: dict[str, Any], limit: int = SENTENCES) -> list[str]:
    """The significant comparisons in words, display names, better ones first."""
    names = _names(summary)
    label = summary["metric"]["label"]
    significant = sorted(
        (c for c in summary["comparisons"] if outcome(c) != "no difference"),
        key=lambda c: (outcome(c) != "better", c["p_holm"]),
    )
    sentences = [
        describe_comparison(names[c["cell"]], names[c["baseline"]], label, c, c["p_holm"],
                            ALPHA, tuple(c["diverged"]))
        for c in significant[:limit]
    ]  # fmt: skip
    if len(significant) > limit:
        sentences.append(f"... and {len(significant) - limit} more in the table.")
    return sentences


def cells_table(summary: dict[str, Any]) -> Table:
    """Every cell: its axis values, runs, divergence, success rate and median with their
    intervals; the baseline row highlighted."""
    titles = axis_titles(summary["axes"])
    label = summary["metric"]["label"]
    compared = {c["cell"]: c for c in summary["comparisons"]}
    axes = summary["axes"]
    rows, highlight = [], set()
    for i, cell in enumerate(summary["cells"]):
        m, s = cell["metric"], cell["success"]
        comparison = compared.get(cell["label"])
        if comparison is None:
            highlight.add(i)
            against = Cell("baseline", 2.0)  # sorts above "better" (1)
        else:
            verdict, order = _VERDICTS[outcome(comparison)]
            against = Cell(verdict.label, order, verdict)
        findings = ", ".join(f"{k} {v}/{cell['n']}" for k, v in sorted(cell["findings"].items()))
        rows.append(
            (
                *(Cell(cell["labels"][a["name"]],
                       float(cell["values"][a["name"]]) if a["numeric"] else None)
                  for a in axes),
                Cell(f"{cell['diverged']}/{cell['n']}", cell["diverged"]),
                Cell(_success(cell), s["rate"]),
                Cell(_median_ci(cell), m["median"]),
                Cell("-" if m["mean"] is None else f"{_number(m['mean'])} ({_number(m['std'])})",
                     m["mean"]),
                Cell("-" if m["p10"] is None else f"{_number(m['p10'])} to {_number(m['p90'])}",
                     m["p10"]),
                against,
                Cell(findings or "-"),
            )
        )  # fmt: skip
    first = len(axes)
    return Table(
        f"Every cell (the highlighted row is the baseline): success with its Wilson 95% "
        f"interval, median {label} with its bootstrap 95% CI",
        (*(titles[a["name"]] for a in axes), "diverged", "success [95% CI]",
         "median [95% CI]", "mean (std)", "10-90%", "vs baseline", "detectors fired"),
        tuple(rows),
        highlight=frozenset(highlight),
        numeric=frozenset({i for i, a in enumerate(axes) if a["numeric"]}
                          | set(range(first, first + 5))),
    )  # fmt: skip


def _line_rows(summary: dict[str, Any], value, low, high) -> list[dict[str, Any]]:
    titles = axis_titles(summary["axes"])
    x_axis, others = sweep_layout(summary["cells"], summary["axes"])
    rows = []
    for name, cells in cell_series(summary["cells"], x_axis, others, titles).items():
        for cell in cells:
            rows.append(
                {
                    "x": float(cell["values"][x_axis["name"]]) if x_axis["numeric"]
                    else cell["labels"][x_axis["name"]],
                    "series": name,
                    "median": value(cell),
                    "low": low(cell),
                    "high": high(cell),
                    "n": cell["n"],
                    "diverged": cell["diverged"],
                }
            )  # fmt: skip
    return rows


def axis_charts(summary: dict[str, Any], folder: Path, figures: Sequence[str]) -> list[Block]:
    """The metric and the success rate along the x axis (a line per series), and heat
    maps of two-axis grids, each with its PNG twin for the Markdown report."""
    titles = axis_titles(summary["axes"])
    x_axis, others = sweep_layout(summary["cells"], summary["axes"])
    x_title = titles[x_axis["name"]]
    series_title = ", ".join(titles[o] for o in others) or None
    label = summary["metric"]["label"]
    log_x = log_x_axis(x_axis)

    def png(name: str) -> Path | None:
        return folder / name if name in figures else None

    metric_rows = _line_rows(summary, lambda c: c["metric"]["median"],
                             lambda c: c["metric"]["ci_low"], lambda c: c["metric"]["ci_high"])  # fmt: skip
    success_rows = _line_rows(summary, lambda c: c["success"]["rate"],
                              lambda c: c["success"]["ci_low"], lambda c: c["success"]["ci_high"])  # fmt: skip
    blocks_: list[Block] = [
        Chart(
            charts.axis_lines(metric_rows, x_title, label, f"Median {label} by {x_title}",
                              log_x=log_x, series_title=series_title, distinguish=True),
            f"Median {label} of each cell against {x_title}, with its 95% confidence interval"
            + (f", one line per {series_title}" if series_title else ""),
            "Median over the runs that did not diverge, with its bootstrap 95% CI. Hover a point "
            "for the cell; click a legend entry to highlight its line.",
            png=png("metric.png"),
        ),
        Chart(
            charts.axis_lines(success_rows, x_title, "success rate",
                              f"Success rate by {x_title}", log_x=log_x,
                              series_title=series_title, value_title="success rate",
                              distinguish=True, y_domain=(0.0, 1.0)),
            f"Success rate of each cell against {x_title}, with its Wilson 95% interval",
            f"Success: {success_rule(summary)}. Wilson 95% intervals.",
            png=png("success.png"),
        ),
    ]  # fmt: skip
    varying = [a for a in summary["axes"] if len(a["values"]) > 1]
    if len(varying) == 2:
        rows_axis, cols_axis = varying
        if len(cols_axis["values"]) > len(rows_axis["values"]):
            rows_axis, cols_axis = cols_axis, rows_axis
        grid = [
            {
                "x": c["labels"][cols_axis["name"]],
                "y": c["labels"][rows_axis["name"]],
                "median": c["metric"]["median"],
                "rate": c["success"]["rate"],
                "detail": f"success {_success(c)}, diverged {c['diverged']}/{c['n']}",
            }
            for c in summary["cells"]
        ]
        axes_ = ("x", titles[cols_axis["name"]]), ("y", titles[rows_axis["name"]])
        blocks_ += [
            Chart(
                charts.heat_map(grid, *axes_, ("median", "median"),
                                f"Median {label}", text="detail",
                                higher_is_better=summary["metric"]["higher_is_better"],
                                missing="all diverged"),
                f"Heat map of the median {label} over {axes_[0][1]} and {axes_[1][1]}",
                "The better end of the scale is bright; hover a cell for its success rate.",
                png=png("heat_map.png"),
            ),
            Chart(
                charts.heat_map(grid, *axes_, ("rate", "success rate"), "Success rate",
                                text="detail", domain=(0.0, 1.0)),
                f"Heat map of the success rate over {axes_[0][1]} and {axes_[1][1]}",
                f"Success: {success_rule(summary)}.",
            ),
        ]  # fmt: skip
    return blocks_


def _chosen_cells(summary: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """All cells, or at most `limit`: the baseline and those that differ most from it."""
    cells = summary["cells"]
    if len(cells) <= limit:
        return list(cells)
    distance = {c["cell"]: abs((c["p_better"] or 0.5) - 0.5) for c in summary["comparisons"]}
    keep = {summary["baseline"]}
    keep |= set(sorted(distance, key=distance.get, reverse=True)[: limit - 1])
    return [c for c in cells if c["label"] in keep]


def diverged_seeds(seeds: Sequence[int], epochs: Sequence[int]) -> str:
    """Diverged seeds grouped by the epoch they diverged at: "0, 3 (epoch 1); 5 (epoch 12)"."""
    by_epoch: dict[int, list[str]] = {}
    for seed, epoch in zip(seeds, epochs, strict=True):
        if epoch >= 1:
            by_epoch.setdefault(int(epoch), []).append(str(seed))
    return "; ".join(f"{', '.join(s)} (epoch {e})" for e, s in sorted(by_epoch.items()))


def per_seed(result: SweepResult, summary: dict[str, Any]) -> list[Block]:
    """The drill-downs: which seeds diverged or missed the success bar in each cell, every
    run's score, and every seed's training curve for the cells that diverged most."""
    sweep = result.sweep
    names = _names(summary)
    label = summary["metric"]["label"]
    scores = result.scores(sweep.metric)
    passed = sweep.success.passed(scores)
    rows = []
    for cell in summary["cells"]:
        mask = result.cell_mask(cell["index"])
        seeds, epochs = result.seeds[mask], result.diverged_epoch[mask]
        missed = seeds[(epochs < 1) & ~passed[mask]]
        if cell["diverged"] or missed.size:
            diverged = diverged_seeds(seeds, epochs)
            rows.append((Cell(names[cell["label"]]), Cell(diverged or "-", cell["diverged"]),
                         Cell(", ".join(str(s) for s in missed) or "-", int(missed.size))))  # fmt: skip
    failed: list[Block] = [
        Table(
            f"Seeds that diverged (with the epoch) or finished short of the success bar "
            f"({success_rule(summary)}), per cell; cells where every seed succeeded "
            "are left out",
            ("cell", "diverged seeds", "seeds that missed the success bar"),
            tuple(rows),
        )
        if rows
        else Text("Every run of every cell finished and passed the success bar.")
    ]
    chosen = _chosen_cells(summary, STRIP_CELLS)
    strip_note = (
        f" ({len(chosen)} of {len(summary['cells'])} cells: the baseline and those that "
        "differ most from it)"
        if len(chosen) < len(summary["cells"])
        else ""
    )
    # rows named by their values alone ("minmax / standard"), the axes in the title: full
    # names leave a phone's chart no room
    titles = axis_titles(summary["axes"])
    varying = [a["name"] for a in summary["axes"] if len(a["values"]) > 1] or [
        a["name"] for a in summary["axes"]
    ]
    short = {c["label"]: " / ".join(c["labels"][a] for a in varying) for c in summary["cells"]}
    strip = Chart(
        charts.scores_strip(
            [short[c["label"]] for c in chosen],
            [scores[result.cell_mask(c["index"])] for c in chosen],
            [result.seeds[result.cell_mask(c["index"])] for c in chosen],
            label, f"Every run's {label}",
            highlight=short[summary["baseline"]],
        ),
        f"Every run's {label}, one row per cell{strip_note}",
        f"Rows: {' / '.join(titles[a] for a in varying)}. One dot per seed, a tick at the "
        "median; the baseline's dots are orange. Diverged runs are counted in the row's label. "
        "Hover a dot for its seed.",
    )  # fmt: skip
    out: list[Block] = [
        Details("Which seeds diverged or missed the success bar, per cell", tuple(failed)),
        Details(f"Every run's {label}, per cell{strip_note}", (strip,)),
    ]
    history = result.history.get("loss")
    if history is not None and history.size:

        def drawable(cell: dict[str, Any]) -> bool:  # a seed has a finite recorded value
            return bool(np.isfinite(history[result.cell_mask(cell["index"])]).any())

        ranked = sorted(summary["cells"], key=lambda c: -c["diverged"])
        picks = [c for c in ranked if c["diverged"] and drawable(c)][:CURVE_CELLS]
        for extra in (summary["baseline"], (best_cell(summary) or {}).get("label")):
            cell = next((c for c in summary["cells"] if c["label"] == extra), None)
            if cell and cell not in picks and len(picks) < CURVE_CELLS and drawable(cell):
                picks.append(cell)
        curves = []
        for cell in picks:
            mask = result.cell_mask(cell["index"])
            curves.append(
                Chart(
                    charts.seed_curves(names[cell["label"]], result.history_epochs,
                                       history[mask], result.seeds[mask].tolist(),
                                       result.diverged_epoch[mask].tolist(), "training loss"),
                    f"Training loss of every seed of {names[cell['label']]}",
                    f"{cell['diverged']}/{cell['n']} diverged (vermillion).",
                )
            )  # fmt: skip
        if curves:
            which = "the cells with the most diverged runs, " if picks[0]["diverged"] else ""
            out.append(
                Details(
                    f"Every seed's training loss: {which}the baseline and the best cell",
                    tuple(curves),
                )
            )
    return out


METHOD = (
    "Per cell: the median, mean, standard deviation and 10-90% range of the metric over the "
    "runs that did not diverge, with a bootstrap (BCa, seeded) 95% CI of the median, and the "
    "success rate (not diverged and past the success bar) with a Wilson 95% interval. Every "
    "cell is compared with the baseline by a two-sided Mann-Whitney U test on all its runs, "
    "diverged runs ranked worst (never dropped), Holm-corrected over all comparisons at "
    f"alpha = {ALPHA}. P(better) is the probability that a random run of the cell scores better "
    "than a random run of the baseline (0.5: no difference)."
)


def sweep_report(
    result: SweepResult, summary: dict[str, Any], folder: Path, figures: Sequence[str]
) -> Report:
    """The sweep's report: the answer, what was run, comparisons, cells, charts, seeds."""
    sentences = comparison_sentences(summary)
    sections = (
        Section("comparisons", "Cells against the baseline",
                blocks(comparison_table(summary), Bullets(tuple(sentences)) if sentences else None)),
        Section("cells", "Every cell", (cells_table(summary),)),
        Section("charts", "Along the axes", tuple(axis_charts(summary, folder, figures))),
        Section("per-seed", "Per-seed detail", tuple(per_seed(result, summary))),
        Section("method", "How the cells are compared", (Text(METHOD),)),
    )  # fmt: skip
    cells, repeats = len(summary["cells"]), summary["repeats"]
    return Report(
        title=summary["title"],
        subtitle=f"Sweep `{summary['id']}`: {cells} cells x {repeats} repeats on "
        f"`{summary['dataset']}`, compared on {summary['metric']['label']}.",
        headline=(headline(summary),),
        what_was_run=what_was_run(summary, figures),
        sections=sections,
    )


def write_sweep_outputs(result: SweepResult, folder: Path) -> dict[str, Any]:
    """sweep.json, cells.csv, models.csv, figures and reports, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = sweep_summary(result)
    figures_folder = folder / FIGURES_PARTIAL
    # a killed run's half-drawn figures (the caller holds the lock: see open_sweep_folder)
    shutil.rmtree(figures_folder, ignore_errors=True)
    figures_folder.mkdir()
    names = []
    for path in sweep_figures(summary, figures_folder):
        path.replace(folder / path.name)  # a rename within one folder: atomic
        names.append(path.name)
    figures_folder.rmdir()
    summary["figures"] = names
    write_text_atomic(folder / "cells.csv", cells_csv(summary))
    write_text_atomic(folder / "models.csv", models_csv(result))
    write_report(sweep_report(result, summary, folder, names), folder, atomic=True)
    write_json_atomic(folder / "sweep.json", summary)
    return summary
