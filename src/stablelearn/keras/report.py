"""The Monitor's output folder: the doctor's diagnosis.json layout, report.html, report.md.

diagnosis.json keeps the doctor's keys (schema_version, data, configuration, repeats,
epochs, findings, score, candidates, recommended, summary) so tools that read one read
both; a watched model has one run and no repairs tried, so `candidates` is empty and
`recommended` null, and `nan_origin` null: where its one model's first NaN/Inf came
from is `first_nonfinite`. It adds `source`, `first_nonfinite` and `layers` (the per-layer,
per-epoch statistics).
"""

import html
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from stablelearn.diagnostics import Observation
from stablelearn.doctor.report import SCHEMA_VERSION, finding_json
from stablelearn.figures import note, save
from stablelearn.io import atomic_folder, json_safe, write_json
from stablelearn.rendering import embedded_image, format_number, html_page


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


def write_monitor_report(monitor: Any, target: Path) -> Path:
    doc = monitor_json(monitor)
    title = f"stablelearn Monitor: {doc['configuration']['model']}"
    obs = monitor.observation()
    return write_report(doc, obs, target, title, ("epoch", doc["epochs"], "probe batch"))


def write_report(
    doc: dict[str, Any], obs: Observation, target: Path, title: str, last: tuple[str, int, str]
) -> Path:
    """diagnosis.json (`doc`), report.html and report.md; `last` is (the unit of the
    recorded points, the last point, where gradients were measured) for the layer table."""
    unit, point, where = last
    with atomic_folder(target) as folder:
        write_json(folder / "diagnosis.json", doc)
        figure = _curves(obs, folder / "training.png", unit, where)
        findings = "".join(
            f"<li><b>{html.escape(f['title'])}</b> ({f['severity']}): {html.escape(f['message'])}</li>"
            for f in doc["findings"]
        )
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(format_number(row.get(k), digits=3))}</td>" for k in _COLUMNS
            )
            + "</tr>"
            for row in doc["layers"]
            if row[unit] == point
        )
        body = [
            f"<h1>{html.escape(title)}</h1>",
            "<pre>" + html.escape("\n".join(doc["summary"])) + "</pre>",
            f"<h2>Findings</h2><ul>{findings or '<li>none</li>'}</ul>",
            embedded_image(figure),
            f"<h2>Layers at {unit} {point}</h2>",
            "<table><tr>" + "".join(f"<th>{c}</th>" for c in _COLUMNS) + f"</tr>{rows}</table>",
        ]
        (folder / "report.html").write_text(html_page(title, "\n".join(body)), encoding="utf-8")
        md = [f"# {title}", "", "```", *doc["summary"], "```", "", f"![training]({figure.name})"]
        (folder / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return target


_COLUMNS = ("layer", "activation", "grad_norm", "grad_abs_max", "weight_norm", "update_ratio",
            "dead_fraction", "saturated_fraction")  # fmt: skip
