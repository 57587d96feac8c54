"""The Monitor's output folder: the doctor's diagnosis.json layout, report.html, report.md
(in the shared report design, stablelearn.report).

diagnosis.json keeps the doctor's keys (schema_version, data, configuration, repeats,
epochs, findings, score, candidates, recommended, summary) so tools that read one read
both; a watched model has one run and no repairs tried, so `candidates` is empty and
`recommended` null, and `nan_origin` null: where its one model's first NaN/Inf came
from is `first_nonfinite`. It adds `source`, `first_nonfinite` and `layers` (the per-layer,
per-epoch statistics).
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from stablelearn.diagnostics import Observation
from stablelearn.doctor.report import SCHEMA_VERSION, finding_json
from stablelearn.figures import note, save
from stablelearn.io import atomic_folder, json_safe, write_json
from stablelearn.report import (
    Alert,
    Block,
    Callout,
    Cell,
    Chart,
    Facts,
    Report,
    Section,
    Table,
    Text,
    blocks,
    charts,
)
from stablelearn.report import write_report as write_page
from stablelearn.report.document import format_number
from stablelearn.report.facts import run_facts


def monitor_json(monitor: Any) -> dict[str, Any]:
    model = monitor.model
    return json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "source": "stablelearn.keras.Monitor",
            "data": {
                "probe_rows": len(monitor.probe_y),
                "probe_shape": list(monitor.probe_x.shape),
            },
            "configuration": {
                "model": str(getattr(model, "name", "model")),
                "layers": [layer.name for layer in monitor._layers],
                "optimizer": type(model.optimizer).__name__ if model.optimizer else None,
                "backend": _backend(),
            },
            "repeats": 1,
            "epochs": monitor.epochs_run,
            "findings": [finding_json(f) for f in monitor.findings()],
            "score": {"name": "training loss", "higher_is_better": False},
            "candidates": [],
            "recommended": None,
            "first_nonfinite": asdict(monitor.first_nonfinite) if monitor.first_nonfinite else None,
            "nan_origin": None,  # the doctor's per-model section; one model: first_nonfinite
            "layers": monitor.layer_table(),
            "summary": monitor.summary(),
        }
    )


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _curves(obs: Observation, path: Path, unit: str, where: str) -> Path:
    """Training loss and each layer's gradient norm per recorded `unit` (epoch or step)."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2)
    loss = obs.loss[0]
    epochs = obs.epochs if obs.epochs is not None else np.arange(1, loss.size + 1)
    if np.isfinite(loss).any():
        ax_loss.plot(epochs, loss, color="#1f77b4")
        if np.nanmin(loss) > 0 and np.nanmax(loss) / np.nanmin(loss) > 100:
            ax_loss.set_yscale("log")
    else:
        note(ax_loss, "the loss was never finite")
    ax_loss.set(title="Training loss", xlabel=unit, ylabel="loss")
    grad = obs.telemetry["grad_norm"][0]
    for j, name in enumerate(obs.layer_names):
        values = grad[:, j]
        mask = np.isfinite(values) & (values > 0)
        if mask.any():
            ax_grad.plot(epochs[mask], values[mask], marker=".", label=name)
    if ax_grad.lines:
        ax_grad.set_yscale("log")
        ax_grad.legend(fontsize=7, ncols=2 if len(obs.layer_names) > 8 else 1)
    else:
        note(ax_grad, "no finite gradient recorded")
    ax_grad.set(title=f"Gradient norm per layer ({where})", xlabel=unit, ylabel="L2 norm")
    return save(fig, path)


def _keras_facts(monitor: Any) -> list[tuple[str, str]]:
    """The model's own settings the monitor can read: its layers, optimizer and loss."""
    from stablelearn.doctor.page import number

    model, pairs = monitor.model, []
    layers = [f"{layer.name} ({layer.kind})" for layer in monitor._layers]
    if layers:
        pairs.append(("layers", f"{len(layers)}: " + ", ".join(layers)))
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        parts = [type(optimizer).__name__]
        for key in ("learning_rate", "momentum", "clipnorm", "clipvalue", "global_clipnorm"):
            try:
                value = getattr(optimizer, key, None)
                value = None if value is None else float(np.asarray(value))
            except (TypeError, ValueError):  # a schedule, not a number
                value = None
            if value is not None:
                parts.append(f"{key.replace('_', ' ')} {number(value)}")
        pairs.append(("optimizer", ", ".join(parts)))
    loss = getattr(model, "loss", None)
    if loss is not None:
        pairs.append(("loss", str(getattr(loss, "__name__", loss))))
    return pairs


def write_monitor_report(monitor: Any, target: Path) -> Path:
    doc = monitor_json(monitor)
    title = f"stablelearn Monitor: {doc['configuration']['model']}"
    obs = monitor.observation()
    return write_report(
        doc, obs, target, title, ("epoch", doc["epochs"], "probe batch"), _keras_facts(monitor)
    )


def write_report(
    doc: dict[str, Any],
    obs: Observation,
    target: Path,
    title: str,
    last: tuple[str, int, str],
    facts: Sequence[tuple[str, str]] = (),
) -> Path:
    """diagnosis.json (`doc`), report.html and report.md; `last` is (the unit of the
    recorded points, the last point, where gradients were measured) for the layer table;
    `facts` are further (label, value) pairs of what was run (the model's settings)."""
    unit, _, where = last
    with atomic_folder(target) as folder:
        write_json(folder / "diagnosis.json", doc)
        figure = _curves(obs, folder / "training.png", unit, where)
        write_page(build_report(doc, obs, title, last, facts, figure), folder)
    return target


def build_report(
    doc: dict[str, Any],
    obs: Observation,
    title: str,
    last: tuple[str, int, str],
    facts: Sequence[tuple[str, str]] = (),
    figure: Path | None = None,
) -> Report:
    """The Monitor's or watch()'s report: the first critical finding (or that none was
    found) first, what was run, the findings, where the first non-finite value came
    from, the loss and each layer's gradient norm, and the layers' statistics."""
    unit, point, where = last
    return Report(
        title,
        _headline(doc),
        _what_was_run(doc, unit, facts),
        tuple(
            s
            for s in (
                _findings(doc),
                _nonfinite(doc),
                _charts(doc, obs, unit, where, figure),
                _layers(doc, unit, point),
            )
            if s is not None
        ),
    )


def _finding_lines(doc: dict[str, Any]) -> list[str]:
    """The summary's lines that are not findings (the first non-finite value, a stop)."""
    return [
        line
        for line in doc["summary"]
        if not line.startswith("[") and not line.startswith("No problem found")
    ]


def _headline(doc: dict[str, Any]) -> tuple[Block, ...]:
    """The first critical finding (else the first warning) as the title, or that none was
    found; the first non-finite value and any stop under it."""
    findings, lines = doc["findings"], _finding_lines(doc)
    first = next((f for f in findings if f["severity"] == "critical"), None)
    first = first or next((f for f in findings if f["severity"] == "warning"), None)
    if first is None:
        title = next((line for line in doc["summary"] if line.startswith("No problem")), None)
        return (Callout("good", title or "No problem found.", tuple(lines)),)
    if len(findings) > 1:
        lines.append(f"{len(findings) - 1} more finding(s) below.")
    kind = "problem" if first["severity"] == "critical" else "warning"
    return (Callout(kind, f"{first['title']}: {first['message']}", tuple(lines)),)


_CONFIG_LABELS = {"model": "model", "optimizer": "optimizer", "backend": "Keras backend",
                  "every": "statistics every", "sync_every": "loss read every"}  # fmt: skip


def _what_was_run(
    doc: dict[str, Any], unit: str, facts: Sequence[tuple[str, str]]
) -> tuple[Block, ...]:
    config, given = doc["configuration"], dict(facts)
    pairs = [("source", f"`{doc['source']}`")]
    for key, label in _CONFIG_LABELS.items():
        value = config.get(key)
        if value is None or label in given:
            continue
        if key in ("every", "sync_every"):
            value = f"{value} steps"
        pairs.append((label, str(value)))
    if "layers" not in given and config.get("layers"):
        pairs.append(("layers", f"{len(config['layers'])}: " + ", ".join(config["layers"])))
    pairs += list(facts)
    if doc.get("data"):
        data = doc["data"]
        shape = " x ".join(str(n) for n in data.get("probe_shape", []))
        pairs.append(("probe batch", f"{data.get('probe_rows')} rows ({shape})"))
    if doc.get("epochs") is not None:
        pairs.append(("epochs", str(doc["epochs"])))
    if doc.get("steps") is not None:
        pairs.append(("steps", str(doc["steps"])))
    return (Facts(tuple(pairs + list(run_facts()))),)


def _alert(f: dict[str, Any]) -> Alert:
    from stablelearn.doctor.page import evidence_value

    evidence = [(k.replace("_", " "), evidence_value(v)) for k, v in f["evidence"].items()]
    if f.get("repairs"):
        evidence.append(("repairs it calls for", ", ".join(f["repairs"])))
    return Alert(
        f["severity"], f["title"], f["message"], (Facts(tuple(evidence)),) if evidence else ()
    )


def _findings(doc: dict[str, Any]) -> Section:
    body: list[Block] = [_alert(f) for f in doc["findings"]]
    if not body:
        body = [Text("The detectors found no problem.")]
    return Section("findings", "Findings", tuple(body))


def _nonfinite(doc: dict[str, Any]) -> Section | None:
    bad = doc.get("first_nonfinite")
    if not bad:
        return None
    sentence = next((line for line in doc["summary"] if "non-finite" in line), "")
    pairs = tuple((k.replace("_", " "), str(v)) for k, v in bad.items() if v not in (None, ""))
    return Section(
        "first-nonfinite",
        "First non-finite value",
        blocks(Text(sentence) if sentence else None, Facts(pairs)),
    )


def _charts(
    doc: dict[str, Any], obs: Observation, unit: str, where: str, figure: Path | None
) -> Section:
    from stablelearn.doctor.page import gradient_chart

    name = str(doc["configuration"]["model"])
    loss = obs.loss[:1]
    points = obs.epochs if obs.epochs is not None else np.arange(1, loss.shape[1] + 1)
    body: list[Block] = []
    curve = charts.Band.over_models(name, "train", loss, points)
    if curve is None:
        body.append(Text(f"The training loss was finite at fewer than two recorded {unit}s: "
                         "no curve to draw."))  # fmt: skip
    else:
        spec = charts.curves([curve], "Training loss", "loss", unit)
        body.append(Chart(spec, f"Training loss per {unit}", f"the loss Keras or your loop "
                          f"reported at each recorded {unit}", png=figure))  # fmt: skip
    chart = gradient_chart(name, obs, unit)
    if chart is None:
        body.append(Text(f"No layer's gradient norm was finite at two recorded {unit}s or "
                         "more: no gradient curve to draw."))  # fmt: skip
    else:
        body.append(
            dataclasses.replace(chart, caption=f"measured on the {where}; " + chart.caption)
        )
    return Section("training", "Loss and gradient norms", tuple(body))


def _layers(doc: dict[str, Any], unit: str, point: int) -> Section | None:
    rows = [row for row in doc["layers"] if row[unit] == point]
    if not rows:
        return None
    numeric = frozenset(range(2, len(_COLUMNS)))
    cells = tuple(
        tuple(
            Cell(format_number(row.get(k), digits=3), _value(row.get(k)) if j in numeric else None)
            for j, k in enumerate(_COLUMNS)
        )
        for row in rows
    )
    columns = tuple(c.replace("_", " ") for c in _COLUMNS)
    table = Table(f"Each layer at {unit} {point}", columns, cells, numeric=numeric)
    return Section("layers", f"Layers at {unit} {point}", (table,))


def _value(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


_COLUMNS = ("layer", "activation", "grad_norm", "grad_abs_max", "weight_norm", "update_ratio",
            "dead_fraction", "saturated_fraction")  # fmt: skip
