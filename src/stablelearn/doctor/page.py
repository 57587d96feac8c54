"""The doctor's report.html and report.md, in the shared report design (stablelearn.report).

The headline comes first: the cause, the fix and how sure as the callout's title, the
chain's "why" and the recommended change in concrete values under it, then the change
as Keras or PyTorch code. "What was run" states the command, the data, the user's own
configuration, the seeds and the budget. Then the findings under the cause chain (the
evidence in drill-downs), the repairs tried (sorted, the recommendation highlighted,
each with its concrete values), the scores per seed, and the learning curves and
gradient norms of the user's configuration and the recommendation, with per-seed
drill-downs. A figure that would be empty (every run diverged before its first
recorded epoch) is replaced by a sentence that says so.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn import figures
from stablelearn.diagnostics import Finding, Observation
from stablelearn.doctor.diagnose import Diagnosis, Score
from stablelearn.doctor.lr_find import figure as range_figure
from stablelearn.doctor.range_test import format_rate
from stablelearn.doctor.repairs import repair_name
from stablelearn.doctor.search import Trial
from stablelearn.optim import clipping_of
from stablelearn.report import (
    Alert,
    Block,
    Callout,
    Cell,
    Chart,
    Code,
    Details,
    Facts,
    Image,
    Report,
    Section,
    Table,
    Text,
    Verdict,
    blocks,
    charts,
)
from stablelearn.report.facts import run_facts
from stablelearn.results import TrainResult

# --- concrete values ----------------------------------------------------------------------


def number(value: Any) -> str:
    """A setting as users write it: 0.001, 0.9, 32, 1e-05."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:g}"


def _scaler(value: Any) -> str:
    if isinstance(value, Mapping):
        low, high = value.get("feature_range", (0, 1))
        return f"{value['kind']} to [{number(low)}, {number(high)}]"
    return str(value)


def _init(value: Any) -> str:
    if isinstance(value, Mapping):
        name = value.get("name") or value.get("kind") or "initializer"
        rest = ", ".join(f"{k} {number(v)}" for k, v in value.items() if k not in ("name", "kind"))
        return f"{name} ({rest})" if rest else str(name)
    return str(value)


OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
                   "adagrad": "Adagrad", "adadelta": "Adadelta", "adamax": "Adamax",
                   "nadam": "Nadam"}  # fmt: skip


def optimizer_text(table: Mapping[str, Any]) -> str:
    """SGD, learning rate 0.01, momentum 0.9 (clipping said apart)."""
    name = OPTIMIZER_NAMES.get(table["name"], table["name"])
    clip = clipping_of(table)
    rest = [
        f"{k.replace('_', ' ')} {number(v)}"
        for k, v in table.items()
        if k != "name" and k not in clip and v is not False
    ]
    return ", ".join([name, *rest])


def clipping_text(table: Mapping[str, Any]) -> str:
    clip = clipping_of(table)
    return ", ".join(f"{k} {number(v)}" for k, v in clip.items()) or "none"


def _layer(layer: Mapping[str, Any]) -> str:
    parts = [str(layer["units"]), layer["activation"], _init(layer["kernel_initializer"])]
    extras = [label for key, label in (("batch_norm", "batch norm"), ("residual", "skip"))
              if layer.get(key)]  # fmt: skip
    return f"Dense({', '.join(parts)})" + "".join(f" + {e}" for e in extras)


def model_text(model: Mapping[str, Any]) -> str:
    """Dense(25, relu, he_uniform) → Dense(1, linear, glorot_uniform); repeated layers as
    '4 x Dense(...)'."""
    groups: list[list[Any]] = []
    for layer in model["hidden"]:
        text = _layer(layer)
        if groups and groups[-1][0] == text:
            groups[-1][1] += 1
        else:
            groups.append([text, 1])
    hidden = [f"{n} x {text}" if n > 1 else text for text, n in groups]
    return " → ".join([*hidden, _layer(model["output"])])


def _same(layers: Sequence[Mapping[str, Any]], key: str) -> str:
    return ", ".join(dict.fromkeys(_init(layer[key]) for layer in layers)) or "none"


def changes(base: Mapping[str, Any], tables: Mapping[str, Any]) -> list[str]:
    """What a repair changed in the user's tables, in concrete values: 'learning rate
    0.001 (yours: 0.01)', 'target scaler standard (yours: none)', ..."""
    out = []
    for key, label in (("input_scaler", "input scaler"), ("target_scaler", "target scaler")):
        a, b = base["data"][key], tables["data"][key]
        if a != b:
            out.append(f"{label} {_scaler(b)} (yours: {_scaler(a)})")
    oa, ob = base["optimizer"], tables["optimizer"]
    if oa["name"] != ob["name"]:
        out.append(f"optimizer {optimizer_text(ob)} (yours: {optimizer_text(oa)})")
    else:
        for key in dict.fromkeys([*oa, *ob]):
            if key in ("name", *clipping_of(oa), *clipping_of(ob)) or oa.get(key) == ob.get(key):
                continue
            label, was = key.replace("_", " "), oa.get(key)
            out.append(f"{label} {number(ob.get(key))} (yours: {number(was)})")
    if clipping_of(oa) != clipping_of(ob):
        was = clipping_text(oa) if clipping_of(oa) else "no clipping"
        out.append(f"{clipping_text(ob) if clipping_of(ob) else 'no clipping'} (yours: {was})")
    ha, hb = base["model"]["hidden"], tables["model"]["hidden"]
    if len(ha) != len(hb):
        out.append(f"{len(hb)} hidden layers (yours: {len(ha)})")
    for key, label in (("activation", "activation"), ("kernel_initializer", "initializer")):
        a, b = _same(ha, key), _same(hb, key)
        if a != b:
            out.append(f"{label} {b} (yours: {a})")
    for key, label in (("batch_norm", "batch normalization"), ("residual", "skip connections")):
        a, b = sum(bool(h.get(key)) for h in ha), sum(bool(h.get(key)) for h in hb)
        if a != b:
            out.append(f"{label} on {b} of {len(hb)} hidden layers (yours: {a or 'none'})")
    return out


# --- charts -------------------------------------------------------------------------------


def diverged_sentence(name: str, result: TrainResult) -> str:
    """'your configuration: all 10 runs diverged at epoch 1: no curve to draw.'"""
    bad = result.diverged_epoch[result.diverged]
    when = figures.span("epoch", bad) if bad.size else "before its first recorded epoch"
    when = when.replace("epoch ", "at epoch ", 1).replace("epochs ", "in epochs ", 1)
    runs = f"all {result.n_models} runs" if bad.size == result.n_models else f"{bad.size} runs"
    return f"{name.capitalize()}: {runs} diverged {when}: no curve to draw."


def gradient_bands(name: str, obs: Observation) -> list[charts.Band]:
    """One band per layer (median and p10-p90 over the models) of the gradient L2 norm."""
    grad = np.asarray(obs.telemetry.get("grad_norm", np.empty((0, 0, 0))), float)
    if grad.size == 0:
        return []
    epochs = obs.epochs if obs.epochs is not None else np.arange(1, grad.shape[1] + 1)
    out = []
    for j, layer in enumerate(obs.layer_names[: grad.shape[2]]):
        values = np.where(grad[:, :, j] > 0, grad[:, :, j], np.nan)
        b = charts.Band.over_models(layer, name, values, epochs)
        if b is not None:
            out.append(b)
    return out


def gradient_chart(name: str, obs: Observation, unit: str = "epoch") -> Chart | None:
    bands = gradient_bands(name, obs)
    if not bands:
        return None
    spec = charts.curves(bands, f"{name}: gradient norm per layer", "gradient L2 norm", unit,
                         log=True)  # fmt: skip
    many = obs.telemetry["grad_norm"].shape[0] > 1
    return Chart(
        spec,
        f"Gradient L2 norm of each layer per {unit} for {name}, log axis",
        f"{name}: " + (f"median over {obs.telemetry['grad_norm'].shape[0]} models, p10-p90 "
                       "band; " if many else "")
        + "before clipping; click a layer in the legend to pick it out",
    )  # fmt: skip


# --- the report ---------------------------------------------------------------------------


def _finding_alert(f: Finding) -> Alert:
    evidence = tuple((k.replace("_", " "), evidence_value(v)) for k, v in f.evidence.items())
    repairs = ", ".join(repair_name(r) for r in f.repairs)
    if repairs:
        evidence += (("repairs it calls for", repairs),)
    return Alert(f.severity, f.title, f.message, (Facts(evidence),) if evidence else ())


def evidence_value(value: Any) -> str:
    """A piece of a finding's evidence as a reader reads it: 4 significant digits, lists
    of at most 12 items."""
    if isinstance(value, float):
        return number(float(f"{value:.4g}"))
    if isinstance(value, list | tuple):
        items = [evidence_value(v) for v in value]
        shown = ", ".join(items[:12]) + (f", ... ({len(items)} in all)" if len(items) > 12 else "")
        return shown or "none"
    if isinstance(value, Mapping):
        return "; ".join(f"{k.replace('_', ' ')} {evidence_value(v)}" for k, v in value.items())
    return str(value)


def _score_text(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else "diverged"


def _spread_text(s: Score) -> str:
    if not np.isfinite(s.median) and not np.isfinite(s.p10):
        return "diverged"
    return f"{_score_text(s.median)} ({_score_text(s.p10)} to {_score_text(s.p90)})"


def _headline(d: Diagnosis, target: Path, toml_name: str) -> tuple[Block, ...]:
    from stablelearn.doctor.report import headline, summary_lines

    chain = d.cause
    critical = any(f.severity == "critical" for f in d.findings)
    kind = "good" if chain.headline is None and d.recommended is None else (
        "problem" if critical else "warning")  # fmt: skip
    lines = []
    if chain.explained:
        lines.append(f"Why: {chain.sentence()}")
    if d.recommended is not None:
        best, base = _recommended(d), d.scores[0]
        change = changes(d.baseline_tables, d.recommended.tables)
        lines.append("Recommended change: " + "; ".join(change) + ".")
        lines.append(
            f"Median {d.score_name} {_score_text(best.median)} (p10 {_score_text(best.p10)}, "
            f"p90 {_score_text(best.p90)}) against {_score_text(base.median)} for yours; "
            f"{best.diverged}/{best.n} runs diverged against {base.diverged}/{base.n}."
        )
        lines.append(f"Run it: `stablelearn run {(target / toml_name).as_posix()}`")
    else:
        lines += [
            line
            for line in summary_lines(d)
            if line.startswith(("No repair measurably beat your configuration (", "With at most"))
        ]
    if d.sample is not None and d.sample.sampled:
        lines.append(d.sample.describe())
    code = d.code()
    return blocks(
        Callout(kind, headline(d), tuple(lines)),
        Code(tuple(code), f"The recommended change in {d.framework}") if code else None,
    )


def _recommended(d: Diagnosis) -> Score:
    return next(s for s in d.scores if s.recommended)


def configuration_facts(d: Diagnosis) -> list[tuple[str, str]]:
    """The user's own configuration, in concrete values."""
    e, tables = d.experiment, d.baseline_tables
    config = e.config
    model_file = e.raw.get("model_file")
    pairs = []
    if model_file:
        pairs.append(("model file", f"`{Path(model_file).name}` ({d.framework})"))
    pairs += [
        ("model", model_text(tables["model"])),
        ("optimizer", optimizer_text(tables["optimizer"])),
        ("gradient clipping", clipping_text(tables["optimizer"])),
        ("batch size", str(config.batch_size)),
        ("epochs", str(config.epochs)),
        ("loss", config.loss),
        ("scalers", f"inputs {_scaler(tables['data']['input_scaler'])}, "
                    f"target {_scaler(tables['data']['target_scaler'])}"),
    ]  # fmt: skip
    return pairs


def _what_was_run(d: Diagnosis) -> tuple[Block, ...]:
    e, data, spend = d.experiment, d.experiment.data, d.search.spend
    facts = run_facts()
    command = [p for p in facts if p[0] == "command"]
    names = list(data.feature_names)
    shown = ", ".join(f"`{n}`" for n in names[:8]) + (
        f", ... ({len(names)} in all)" if len(names) > 8 else ""
    )
    rows = []
    if d.sample is not None:
        s = d.sample
        used = (
            f"{len(s.train_rows):,} of {s.train_total:,} training rows and {len(s.test_rows):,} "
            f"of {s.test_total:,} held-out rows (a random sample, seed {s.seed})"
            if s.sampled
            else f"every row: {s.train_total:,} training, {s.test_total:,} held out"
        )
        rows = [("rows trained and scored", used)]
    split = f"{e.test_fraction:g} held out" if e.test_fraction else "the data's own split"
    pairs = [
        *command,
        ("data", f"`{Path(e.dataset).name}`"),
        ("rows", f"{len(data.y):,} ({split}, split seed {e.split_seed})"),
        *rows,
        ("features", f"{len(names)}: {shown}" if names else "none"),
        ("target", f"`{e.raw.get('target', 'target')}` ({data.task})"),
        *configuration_facts(d),
        ("seeds", f"{e.repeats} per configuration (seeds {e.seed}-{e.seed + e.repeats - 1}), the "
                  "same for every repair, so comparisons are paired"
                  + (f"; up to {spend.most_seeds} for close calls"
                     if spend.most_seeds > e.repeats else "")),
        ("search", spend.describe()),
        *[p for p in facts if p[0] != "command"],
    ]  # fmt: skip
    if e.dropped_columns:
        pairs.insert(5, ("dropped columns", ", ".join(f"`{c}`" for c in e.dropped_columns)))
    return (Facts(tuple(pairs)),)


def _findings(d: Diagnosis) -> Section:
    chain = d.cause
    body: list[Block] = []
    if chain.headline is None and not chain.other:
        body.append(Text("No detector found a problem: your configuration trains normally."))
    if chain.headline is not None:
        body.append(Text("**The cause** (the most upstream problem found):"))
        body.append(_finding_alert(chain.headline))
        if chain.explained:
            body.append(Text("**What it explains** (its symptoms, in causal order):"))
            body += [_finding_alert(f) for f in chain.explained]
    if chain.other:
        body.append(Text("**Further findings** (not explained by the cause):" if
                         chain.headline is not None else "**Findings:**"))  # fmt: skip
        body += [_finding_alert(f) for f in chain.other]
    if d.recommended is not None:
        remaining = d.search.findings
        body.append(Text(f"**The recommendation's own diagnosis** ({d.recommended.name}):"
                         + (" clean." if not remaining else "")))  # fmt: skip
        body += [_finding_alert(f) for f in remaining]
    return Section("findings", "Findings", tuple(body))


def _verdict(s: Score, better: bool) -> Verdict:
    if s.step == 0:
        return Verdict("unmeasured", "baseline")
    if s.recommended:
        return Verdict("holds", "recommended")
    if s.beats:
        return Verdict("holds", "beats it")
    if better:
        return Verdict("partial", "not significant")
    return Verdict("fails", "no better")


def _sort_key(s: Score, higher: bool) -> tuple[int, float, str]:
    median = s.median if np.isfinite(s.median) else (-np.inf if higher else np.inf)
    return (s.step, -median if higher else median, s.name)


def repairs_table(d: Diagnosis) -> Table:
    """Every configuration trained, sorted by step then score, the recommendation
    highlighted, each repair with its concrete values."""
    tables = {t.name: t.tables for t in d.search.trials()}
    better = {c.trial.name: c.paired.better for step in d.search.steps for c in step.comparisons}
    ordered = sorted(d.scores, key=lambda s: _sort_key(s, d.higher_is_better))
    rows = []
    for s in ordered:
        finite = bool(np.isfinite(s.median))
        change = "; ".join(changes(d.baseline_tables, tables[s.name])) if s.step else "-"
        rows.append((
            Cell(str(s.step), s.step),
            Cell(s.name),
            Cell(change or "no change"),
            Cell(_spread_text(s), s.median if finite else None),
            Cell(f"{s.diverged}/{s.n}", s.diverged / s.n if s.n else None),
            Cell(s.versus or "-"),
            Cell("-" if s.wins is None else f"{s.wins}/{s.losses}/{s.ties}", s.wins),
            Cell("-" if s.p_holm is None else f"{s.p_holm:.2g}", s.p_holm),
            Cell("", verdict=_verdict(s, better.get(s.name, False))),
        ))  # fmt: skip
    highlight = frozenset(i for i, s in enumerate(ordered) if s.recommended)
    return Table(
        f"Configurations trained: {d.score_name} on the held-out split, by step then score",
        ("step", "configuration", "what it changes", "median (p10 to p90)", "diverged",
         "compared with", "better / worse / same seeds", "Holm p", "verdict"),
        tuple(rows),
        highlight=highlight,
        numeric=frozenset({0, 3, 4, 7}),
    )  # fmt: skip


def _repairs(d: Diagnosis, pngs: Mapping[str, Path]) -> Section:
    from stablelearn.doctor.report import _path_lines

    if len(d.scores) == 1:
        why = {"clean": "the diagnosis of your configuration is clean",
               "budget": "the first repairs would not fit in the budget",
               "nothing left to try": "no repair applies to what was found"}  # fmt: skip
        stopped = d.search.spend.stopped
        return Section(
            "repairs", "Repairs", (Text(f"No repair was tried: {why.get(stopped, stopped)}."),)
        )
    trials = d.search.trials()
    rec = d.recommended.name if d.recommended is not None else None
    strip = charts.scores_strip(
        [t.name for t in trials], [t.scores() for t in trials],
        [t.seeds().tolist() for t in trials], d.score_name,
        f"{d.score_name} per seed", highlight=rec,
    )  # fmt: skip
    explain = (
        "Each repair is compared with the configuration it was applied to on the same seeds "
        "(Wilcoxon signed-rank on the per-seed differences, Holm-corrected over the step's "
        "repairs); a diverged run scores worse than any finite one."
    )
    path = _path_lines(d)
    return Section(
        "repairs",
        "Repairs tried",
        blocks(
            Text(explain),
            [Text(line) for line in path],
            repairs_table(d),
            Chart(
                strip,
                f"{d.score_name} of every seed of every configuration tried",
                "one dot per seed, the tick at the median; diverged seeds are counted in the "
                "label" + (f"; {rec} in orange" if rec else ""),
                png=pngs.get("repairs"),
            ),
        ),
    )


def _drawn(d: Diagnosis) -> list[Trial]:
    """The user's configuration, then the recommendation (if any)."""
    out = [d.search.user]
    if d.recommended_trial is not None and d.recommended_trial is not d.search.user:
        out.append(d.recommended_trial)
    return out


def _loss_bands(trial: Trial, only_validation: bool = False) -> list[charts.Band]:
    result = trial.first.result
    out = []
    for key, split in (("loss", "train"), ("val_loss", "validation")):
        if key in result.history and not (only_validation and key == "loss"):
            b = charts.Band.over_models(
                trial.name, split, result.history[key], result.history_epochs
            )
            if b is not None:
                out.append(b)
    return out


def _seed_details(trial: Trial, score_name: str) -> Details:
    result = trial.first.result
    batch = trial.batches[0]
    inner: list[Block] = []
    values = result.history["loss"]
    if (np.isfinite(values).sum(axis=1) >= 2).any():
        spec = charts.seed_curves(trial.name, result.history_epochs, values,
                                  result.seeds.tolist(), result.diverged_epoch.tolist(),
                                  "training loss")  # fmt: skip
        inner.append(Chart(spec, f"Training loss of every seed of {trial.name}",
                           "diverged seeds in vermillion, up to their last finite value"))  # fmt: skip
    else:
        inner.append(Text(diverged_sentence(trial.name, result)))
    rows = tuple(
        (
            Cell(str(int(seed)), int(seed)),
            Cell(f"epoch {int(e)}" if e > 0 else "no", int(e) if e > 0 else None),
            Cell(_score_text(float(score)), float(score) if np.isfinite(score) else None),
        )
        for seed, e, score in zip(result.seeds, result.diverged_epoch, batch.scores, strict=True)
    )
    inner.append(Table(f"{trial.name}: each seed", ("seed", "diverged", score_name), rows,
                       numeric=frozenset({0, 2})))  # fmt: skip
    bad = int(result.diverged.sum())
    return Details(f"Per seed: {trial.name} ({bad} of {result.n_models} diverged)", tuple(inner))


def _curves(d: Diagnosis, pngs: Mapping[str, Path]) -> Section:
    drawn = _drawn(d)
    body: list[Block] = []
    bands = [b for t in drawn for b in _loss_bands(t)]
    for t in drawn:
        if not _loss_bands(t):
            body.append(Text(diverged_sentence(t.name, t.first.result)))
    if bands:
        scalers = {json.dumps(t.tables["data"]["target_scaler"]) for t in drawn}
        units = (
            "; each loss is in its configuration's training units (a scaled target's loss is "
            "on the scaled target)"
            if len(scalers) > 1
            else ""
        )
        names = " and ".join(t.name for t in drawn if _loss_bands(t))
        spec = charts.curves(bands, "Loss per epoch", f"{d.experiment.config.loss} loss")
        body.append(Chart(
            spec, f"Training and validation loss per epoch of {names}",
            f"median over seeds, p10-p90 band; click a legend entry to pick a configuration{units}",
            png=pngs.get("learning_curves"),
        ))  # fmt: skip
    body += [_seed_details(t, d.score_name) for t in drawn]
    others = [t for t in d.search.trials() if t not in drawn]
    every = [b for t in drawn + others for b in _loss_bands(t, only_validation=True)]
    if others and every:
        spec = charts.curves(every, "Validation loss of every configuration tried",
                             f"validation {d.experiment.config.loss} loss")  # fmt: skip
        body.append(Details(
            f"Every configuration's validation loss ({len(drawn) + len(others)} configurations)",
            (Chart(spec, "Validation loss per epoch of every configuration tried",
                   "median over the first seeds; click a legend entry to pick one out"),),
        ))  # fmt: skip
    return Section("curves", "Learning curves", tuple(body))


def _gradients(d: Diagnosis) -> Section | None:
    body: list[Block] = []
    for t in _drawn(d):
        result = t.first.result
        if not result.telemetry:
            continue
        obs = Observation.from_result(result)
        chart = gradient_chart(t.name, obs)
        if chart is None:
            body.append(Text(_no_gradient_curve(t.name, obs, result)))
        else:
            body.append(chart)
    if not body:
        return None
    return Section("gradients", "Gradient norms", tuple(body))


def _no_gradient_curve(name: str, obs: Observation, result: TrainResult) -> str:
    """Why there is no gradient chart, with the largest norm that was recorded."""
    grad = np.asarray(obs.telemetry["grad_norm"], float)
    finite = np.isfinite(grad)
    largest = ""
    if finite.any():
        j = int(np.nanargmax(np.where(finite, grad, -np.inf)) % grad.shape[2])
        value = float(np.max(grad[finite]))
        largest = f"; the largest gradient norm recorded was {value:.3g} ({obs.layer_names[j]})"
    when = diverged_sentence(name, result).removesuffix(": no curve to draw.")
    return f"{when}{largest}: no gradient curve to draw."


def write_figures(d: Diagnosis, folder: Path) -> dict[str, Path]:
    """The static PNG twins for report.md: no figure whose every panel would be empty."""
    pngs: dict[str, Path] = {}
    trials = d.search.trials()
    named = [(t.name, t.scores()) for t in trials]
    if len(trials) > 1:
        pngs["repairs"] = figures.score_box_plot(
            [n for n, _ in named], [v for _, v in named], d.score_name,
            "Repairs on your data, held-out split", folder / "repairs.png",
        )  # fmt: skip
    drawable = [(t.name, t.first.result) for t in _drawn(d) if _loss_bands(t)]
    if drawable:
        pngs["learning_curves"] = figures.learning_curves(
            drawable, d.experiment.title, folder / "learning_curves.png"
        )
    for step in d.search.steps:
        if step.range_test is not None:
            pngs[f"range_test_{step.number}"] = range_figure(
                step.range_test,
                f"Learning-rate range test, step {step.number}",
                folder / f"range_test_step{step.number}.png",
            )
    return pngs


def _range_tests(d: Diagnosis, pngs: dict[str, Path]) -> Section | None:
    """Each learning-rate range test the search ran: its answer, figure and rates."""
    parts: list = []
    for step in d.search.steps:
        test = step.range_test
        if test is None:
            continue
        parts.append(Text(f"**Step {step.number}** ({test.models} models): {test.summary()}"))
        parts.append(
            Image(
                pngs[f"range_test_{step.number}"],
                f"Held-out {test.loss_name} against the learning rate on a log axis, median "
                "over seeds with its spread, diverged rates marked",
            )
        )
        rows = []
        for i, r in enumerate(test.rates):
            spread = r.finite_spread()
            rows.append((
                Cell(format_rate(r.learning_rate), r.learning_rate),
                Cell(f"{r.median:.4g}" if np.isfinite(r.median) else "diverged",
                     r.median if np.isfinite(r.median) else None),
                Cell("-" if spread is None else f"{spread[1]:.4g} to {spread[2]:.4g}",
                     None if spread is None else spread[1]),
                Cell(f"{r.diverged}/{r.n}", float(r.diverged)),
                Cell("yes" if test.usable(i) else "no"),
            ))  # fmt: skip
        parts.append(
            Table(
                f"Range test, step {step.number}: held-out {test.loss_name} per learning rate",
                ("learning rate", "median", "p25 to p75", "diverged", "usable"),
                tuple(rows),
                numeric=frozenset({0, 1, 2, 3}),
            )
        )
    if not parts:
        return None
    return Section("range-test", "Learning-rate range test", tuple(parts))


def doctor_report(d: Diagnosis, folder: Path, target: Path, toml_name: str) -> Report:
    """The doctor's Report; its PNG twins are written into `folder`."""
    pngs = write_figures(d, folder)
    sections = [_findings(d), _range_tests(d, pngs), _repairs(d, pngs), _curves(d, pngs),
                _gradients(d)]  # fmt: skip
    return Report(
        f"stablelearn doctor: {d.experiment.data.name}",
        _headline(d, target, toml_name),
        _what_was_run(d),
        tuple(s for s in sections if s is not None),
        subtitle=d.experiment.title,
    )
