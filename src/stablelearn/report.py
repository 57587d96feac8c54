"""Run folders: summary.json, models.csv, history.npz, config.json, figures and reports.

A run folder is written under a temporary name and renamed into place when complete,
so an interrupted run leaves no half-written folder behind (and no corrupt files).
The layout and the summary.json schema are documented in the README; the schema file
ships as stablelearn/schemas/summary.schema.json.
"""

import base64
import csv
import html
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.claims import ClaimResult
from stablelearn.errors import ConfigError
from stablelearn.figures import experiment_figures
from stablelearn.io import json_safe
from stablelearn.optim import describe
from stablelearn.runner import ExperimentResult
from stablelearn.stats import summarize

SCHEMA_VERSION = 1


def default_folder(name: str, root: Path = Path("runs")) -> Path:
    return root / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{name}"


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; rename it to `target` on success and
    delete it on any error or interrupt."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"Output path {target} is a file; choose a folder with --out.")
    if target.exists() and any(target.iterdir()):
        raise ConfigError(
            f"Output folder {target} already exists and is not empty; choose another --out."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        yield partial
        if target.exists():
            target.rmdir()
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _metric_name(result: ExperimentResult) -> str:
    return "accuracy" if result.metric == "accuracy" else "mse"


def lesson_lines(result: ExperimentResult) -> list[str]:
    """The lesson's printout (mean over repeats where it printed one run), then the
    median and 10-90% range that a distribution deserves."""
    metric = result.metric
    lines = []
    for v in result.variants:
        train, test = v.result.train_scores[metric], v.result.test_scores[metric]
        if len(result.variants) == 1:
            lines.append(f"Train: {np.mean(train):.3f}, Test: {np.mean(test):.3f}")
        else:
            lines.append(f"{v.name}: {np.mean(test):.3f} ({np.std(test):.3f})")
    for v in result.variants:
        s = summarize(v.result.test_scores[metric])
        spread = (
            "all diverged"
            if s["median"] is None
            else f"median {s['median']:.4g} (p10 {s['p10']:.4g}, p90 {s['p90']:.4g})"
        )
        lines.append(
            f"  {v.name}: test {_metric_name(result)} {spread}; diverged {int(v.result.diverged.sum())}/{v.result.n_models}"
        )
    return lines


def experiment_summary(result: ExperimentResult, figures: Sequence[str] = ()) -> dict[str, Any]:
    """The summary.json document (schema version 1)."""
    e = result.experiment
    metric = result.metric
    variants, models = [], []
    for v in result.variants:
        r = v.result
        entry: dict[str, Any] = {
            "name": v.name,
            "n": r.n_models,
            "diverged": int(r.diverged.sum()),
            "metric": _metric_name(result),
            "train": summarize(r.train_scores[metric]),
            "test": summarize(r.test_scores[metric]),
            "model": v.variant.model.describe(),
            "optimizer": describe(v.variant.optimizer),
            "input_scaler": str(v.variant.input_scaler),
            "target_scaler": str(v.variant.target_scaler),
        }
        if "rmse_original" in r.test_scores:
            entry["test_rmse_original"] = summarize(r.test_scores["rmse_original"])
        variants.append(entry)
        for i, run in enumerate(r.runs):
            epoch = int(r.diverged_epoch[i])
            models.append(
                {
                    "variant": v.name,
                    "repeat": int(run.tags["repeat"]),
                    "seed": int(run.seed),
                    "diverged": epoch >= 1,
                    "diverged_epoch": epoch if epoch >= 1 else None,
                    "train_metric": float(r.train_scores[metric][i]),
                    "test_metric": float(r.test_scores[metric][i]),
                    "train_loss": float(r.train_scores["loss"][i]),
                    "test_loss": float(r.test_scores["loss"][i]),
                }
            )
    return json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "experiment": {
                "id": e.id,
                "title": e.title,
                "section": e.section,
                "description": e.description,
                "kind": e.kind,
                "dataset": e.dataset,
                "epochs": e.config.epochs if e.kind == "train" else None,
                "repeats": e.repeats if e.kind == "train" else None,
                "fit_scalers_on": e.fit_scalers_on,
            },
            "metric": _metric_name(result) if e.kind == "train" else None,
            "variants": variants,
            "models": models,
            "lesson_format": lesson_lines(result) if e.kind == "train" else [],
            "timing": {
                "compile_s": result.compile_s,
                "train_s": result.train_s,
                "wall_s": result.wall_s,
            },
            "figures": list(figures),
        }
    )


def _write_models_csv(result: ExperimentResult, path: Path, summary: dict[str, Any]) -> None:
    columns = [
        "variant",
        "repeat",
        "seed",
        "diverged",
        "diverged_epoch",
        "train_metric",
        "test_metric",
        "train_loss",
        "test_loss",
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in summary["models"]:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in columns})


def _write_history(result: ExperimentResult, path: Path) -> None:
    if not result.variants:
        return
    arrays: dict[str, np.ndarray] = {}
    for name in result.variants[0].result.history:
        arrays[name] = np.concatenate([v.result.history[name] for v in result.variants])
    arrays["variant"] = np.asarray(
        [v.name for v in result.variants for _ in range(v.result.n_models)]
    )
    arrays["repeat"] = np.concatenate([np.asarray(v.result.tag("repeat")) for v in result.variants])
    arrays["seed"] = np.concatenate([v.result.seeds for v in result.variants])
    arrays["diverged_epoch"] = np.concatenate([v.result.diverged_epoch for v in result.variants])
    np.savez_compressed(path, **arrays)


def _config(result: ExperimentResult) -> dict[str, Any]:
    e = result.experiment
    return json_safe(
        {
            "source": dict(e.raw),
            "resolved": {
                "train": asdict(e.config),
                "seeds": [e.seed + r for r in range(e.repeats)],
                "variants": [
                    {
                        "name": v.variant.name,
                        "model": v.variant.model.describe(),
                        "layers": [
                            {
                                "units": layer.units,
                                "activation": layer.activation,
                                "kernel_initializer": str(layer.kernel_initializer),
                                "bias_initializer": str(layer.bias_initializer),
                            }
                            for layer in v.variant.model.layers
                        ],
                        "optimizer": {
                            "name": type(v.variant.optimizer).__name__,
                            **asdict(v.variant.optimizer),
                        },
                        "input_scaler": str(v.variant.input_scaler),
                        "target_scaler": str(v.variant.target_scaler),
                    }
                    for v in result.variants
                ],
            },
        }
    )


def _variant_table_md(summary: dict[str, Any]) -> list[str]:
    metric = summary["metric"]
    lines = [
        f"| variant | n | diverged | train {metric} median | test {metric} median | test p10 | test p90 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v in summary["variants"]:
        t, s = v["train"], v["test"]
        lines.append(
            f"| {v['name']} | {v['n']} | {v['diverged']} | {_fmt(t['median'])} | {_fmt(s['median'])} | {_fmt(s['p10'])} | {_fmt(s['p90'])} |"
        )
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _claims_md(claims: Sequence[ClaimResult]) -> list[str]:
    lines = ["| claim | verdict | measured |", "|---|---|---|"]
    for c in claims:
        measured = ", ".join(
            f"{k}={_fmt(v)}" for k, v in c.measured.items() if not isinstance(v, dict)
        )
        lines.append(f"| {c.claim} | **{c.verdict}** | {measured} |")
    return lines


def _experiment_md(summary: dict[str, Any], prefix: str = "") -> list[str]:
    e = summary["experiment"]
    lines = [f"## {e['title']} (`{e['id']}`, lesson {e['section']})", "", e["description"], ""]
    if summary["variants"]:
        lines += ["```", *summary["lesson_format"], "```", "", *_variant_table_md(summary), ""]
        t = summary["timing"]
        lines += [f"Compile {t['compile_s']:.2f} s, train {t['train_s']:.2f} s.", ""]
    lines += [f"![{name}]({prefix}{name})" for name in summary["figures"]]
    return [*lines, ""]


def _html_page(title: str, body: str) -> str:
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "pre{background:#f5f5f5;padding:8px}img{max-width:100%}.holds{color:#1a7f37}.fails{color:#b42318}"
    )
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{body}</body></html>\n"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<p><img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'></p>"


def _experiment_html(summary: dict[str, Any], folder: Path) -> str:
    e = summary["experiment"]
    parts = [f"<h2>{html.escape(e['title'])} <small>({html.escape(e['id'])}, lesson {html.escape(e['section'])})</small></h2>",
             f"<p>{html.escape(e['description'])}</p>"]  # fmt: skip
    if summary["variants"]:
        parts.append("<pre>" + html.escape("\n".join(summary["lesson_format"])) + "</pre>")
        metric = summary["metric"]
        rows = "".join(
            f"<tr><td>{html.escape(v['name'])}</td><td>{v['n']}</td><td>{v['diverged']}</td><td>{_fmt(v['train']['median'])}</td>"
            f"<td>{_fmt(v['test']['median'])}</td><td>{_fmt(v['test']['p10'])}</td><td>{_fmt(v['test']['p90'])}</td></tr>"
            for v in summary["variants"]
        )
        parts.append(
            f"<table><tr><th>variant</th><th>n</th><th>diverged</th><th>train {metric} median</th><th>test {metric} median</th>"
            f"<th>test p10</th><th>test p90</th></tr>{rows}</table>"
        )
    parts += [_img(folder / name) for name in summary["figures"]]
    return "\n".join(parts)


def _claims_html(claims: Sequence[ClaimResult]) -> str:
    rows = []
    for c in claims:
        css = "holds" if c.verdict.startswith("holds") else "fails"
        measured = ", ".join(
            f"{k}={_fmt(v)}" for k, v in c.measured.items() if not isinstance(v, dict)
        )
        rows.append(
            f"<tr><td>{html.escape(c.claim)}</td><td class='{css}'><b>{html.escape(c.verdict)}</b></td><td>{html.escape(measured)}</td></tr>"
        )
    return (
        "<h2>The lesson's claims</h2><table><tr><th>claim</th><th>verdict</th><th>measured</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def write_experiment_files(result: ExperimentResult, folder: Path) -> dict[str, Any]:
    """Write one experiment's files into `folder`; returns its summary."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = [p.name for p in experiment_figures(result, folder)]
    summary = experiment_summary(result, figures)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (folder / "config.json").write_text(
        json.dumps(_config(result), indent=2) + "\n", encoding="utf-8"
    )
    if result.variants:
        _write_models_csv(result, folder / "models.csv", summary)
        _write_history(result, folder / "history.npz")
    return summary


def _write_reports(
    folder: Path,
    title: str,
    intro: str,
    claims: Sequence[ClaimResult],
    parts: Sequence[tuple[dict[str, Any], str]],
) -> None:
    """report.md and a self-contained report.html; parts are (summary, subfolder) pairs."""
    md = [f"# {title}", "", intro, ""]
    body = [f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    if claims:
        md += ["## The lesson's claims", "", *_claims_md(claims), ""]
        body.append(_claims_html(claims))
    for summary, subfolder in parts:
        md += _experiment_md(summary, prefix=f"{subfolder}/" if subfolder else "")
        body.append(_experiment_html(summary, folder / subfolder if subfolder else folder))
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")
    (folder / "report.html").write_text(_html_page(title, "\n".join(body)), encoding="utf-8")


def write_index(
    folder: Path,
    results: Sequence[ExperimentResult],
    summaries: Sequence[dict[str, Any]],
    claims: Sequence[ClaimResult],
    wall_s: float,
    combined: bool,
) -> None:
    """claims.json, index.json and the reports of a finished run folder."""
    claims_doc = json_safe(
        {"schema_version": SCHEMA_VERSION, "claims": [c.to_json() for c in claims]}
    )
    (folder / "claims.json").write_text(json.dumps(claims_doc, indent=2) + "\n", encoding="utf-8")
    index = {
        "schema_version": SCHEMA_VERSION,
        "experiments": [
            {
                "id": s["experiment"]["id"],
                "folder": s["experiment"]["id"] if combined else ".",
                "timing": s["timing"],
            }
            for s in summaries
        ],
        "wall_s": wall_s,
    }
    (folder / "index.json").write_text(
        json.dumps(json_safe(index), indent=2) + "\n", encoding="utf-8"
    )
    if combined:
        title = "stablelearn: the lesson reproduced"
        intro = f"Every case study of the lesson: {len(results)} experiments in {wall_s:.1f} s."
        parts = [(s, s["experiment"]["id"]) for s in summaries]
    else:
        title = summaries[0]["experiment"]["title"]
        intro = f"Run in {wall_s:.1f} s."
        parts = [(summaries[0], "")]
    _write_reports(folder, title, intro, claims, parts)
