"""watch()'s output folder: the doctor's diagnosis.json layout, report.html, report.md.

As the Keras Monitor's (stablelearn.keras.report): the doctor's keys, one run and no
repairs tried, plus `source`, `first_nonfinite` and `layers` (per layer and sampled
step). Its points are steps: `steps` is the number of training steps watched and
`epochs` is null, since a step-level watcher does not know the loop's epochs.
"""

from dataclasses import asdict
from pathlib import Path
from typing import Any

from stablelearn.doctor.report import SCHEMA_VERSION, finding_json
from stablelearn.io import json_safe
from stablelearn.keras.report import write_report


def watch_json(handle: Any) -> dict[str, Any]:
    bad = handle.first_nonfinite
    return json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "source": "stablelearn.torch.watch",
            "data": None,
            "configuration": {
                "model": type(handle.model).__name__,
                "layers": list(handle.names),
                "every": handle.every,
                "sync_every": handle.sync_every,
            },
            "repeats": 1,
            "epochs": None,
            "steps": handle.step,
            "findings": [finding_json(f) for f in handle.findings()],
            "score": {"name": "training loss", "higher_is_better": False},
            "candidates": [],
            "recommended": None,
            "first_nonfinite": asdict(bad) if bad else None,
            "nan_origin": None,  # the doctor's per-model section; one model: first_nonfinite
            "layers": handle.layer_table(),
            "summary": handle.summary(),
        }
    )


def write_watch_report(handle: Any, target: Path) -> Path:
    doc = watch_json(handle)
    title = f"stablelearn watch: {doc['configuration']['model']}"
    last = doc["layers"][-1]["step"] if doc["layers"] else 0
    return write_report(doc, handle.observation(), target, title, ("step", last, "training batch"))
