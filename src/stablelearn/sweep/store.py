"""A trained sweep group as plain arrays, saved atomically and loaded back on resume.

Each finished group is written to `<folder>/groups/<group id>.npz`; a rerun of the same
sweep loads those files and trains only the groups that are missing, so an interrupted
sweep (Ctrl-C, a kill, a lost node) resumes where it stopped and never reads a
half-written file. A group file that cannot be read (truncated by a full disk, copied
half-way) is retrained with a notice, and one from another version silently.
"""

import dataclasses
import json
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stablelearn.diagnostics import diagnose
from stablelearn.engine import train
from stablelearn.errors import ConfigError
from stablelearn.io import locked_folder, write_atomic
from stablelearn.results import TrainResult
from stablelearn.sweep.plan import FORMAT_VERSION, Group

GROUPS_FOLDER = "groups"
FIGURES_PARTIAL = ".figures-partial"  # where the sweep's figures are drawn before a rename
# what reading a damaged .npz can raise: a truncated zip, a missing or mangled member...
_UNREADABLE = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    zipfile.BadZipFile,
)


class UnreadableGroupFile(Exception):
    """A saved group file that cannot be read back: truncated, overwritten, not an .npz."""


@dataclass(frozen=True, eq=False)
class GroupRecord:
    """What a trained group leaves behind, as plain arrays with a leading model axis.

    findings maps a cell index to {detector id: models it fired on} (see
    stablelearn.diagnostics; gradient and unit detectors need telemetry on).
    """

    group_id: str
    cells: np.ndarray
    repeats: np.ndarray
    seeds: np.ndarray
    diverged_epoch: np.ndarray
    train_scores: dict[str, np.ndarray]
    test_scores: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    findings: dict[int, dict[str, int]] = field(default_factory=dict)
    prepare_s: float = 0.0
    compile_s: float = 0.0
    train_s: float = 0.0
    history_epochs: np.ndarray | None = None  # 1-based epoch of each history column; None: 1..n


def _finding_counts(result: TrainResult) -> dict[str, int]:
    counts = {}
    for finding in diagnose(result):
        models = finding.evidence.get("models")
        counts[finding.id] = len(models) if models is not None else result.n_models
    return counts


def record_from_result(group: Group, result: TrainResult) -> GroupRecord:
    cells = np.asarray(group.cells, np.int64)
    findings = {
        int(c): _finding_counts(result.select(cells == c)) for c in sorted(set(group.cells))
    }
    return GroupRecord(
        group_id=group.id,
        cells=cells,
        repeats=np.asarray(group.repeats, np.int64),
        seeds=result.seeds.astype(np.int64),
        diverged_epoch=result.diverged_epoch.astype(np.int64),
        train_scores={k: np.asarray(v, np.float64) for k, v in result.train_scores.items()},
        test_scores={k: np.asarray(v, np.float64) for k, v in result.test_scores.items()},
        history={k: np.asarray(v, np.float32) for k, v in result.history.items()},
        findings=findings,
        prepare_s=result.timing.prepare_s,
        compile_s=result.timing.compile_s,
        train_s=result.timing.train_s,
        history_epochs=np.asarray(result.history_epochs, np.int64),
    )


def train_group(group: Group, stop: threading.Event | None = None) -> GroupRecord:
    """Compile and train one group: what a local loop's threads or a Ray worker run
    (`stop`: see stablelearn.engine.train). One thread: the sweep trains its groups
    side by side already."""
    return record_from_result(group, train(group.runs, stop=stop, workers=1))


# --- saving and loading groups ------------------------------------------------------------


def save_record(record: GroupRecord, folder: Path) -> Path:
    """Write a group atomically: a temporary file in the same folder, then a rename."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT_VERSION,
        "group_id": record.group_id,
        "findings": {str(k): v for k, v in record.findings.items()},
        "prepare_s": record.prepare_s,
        "compile_s": record.compile_s,
        "train_s": record.train_s,
    }
    arrays = {
        "cells": record.cells,
        "repeats": record.repeats,
        "seeds": record.seeds,
        "diverged_epoch": record.diverged_epoch,
        "meta": np.asarray(json.dumps(meta)),
    }
    if record.history_epochs is not None:
        arrays["history_epochs"] = record.history_epochs
    for prefix, table in (
        ("train_score", record.train_scores),
        ("test_score", record.test_scores),
        ("history", record.history),
    ):
        arrays |= {f"{prefix}/{name}": values for name, values in table.items()}
    return write_atomic(folder / f"{record.group_id}.npz", lambda h: np.savez(h, **arrays))


def load_record(path: Path) -> GroupRecord | None:
    """A saved group, or None when it was saved in another format version; raises
    UnreadableGroupFile when the file cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            if meta.get("format") != FORMAT_VERSION:
                return None
            tables: dict[str, dict[str, np.ndarray]] = {
                "train_score": {},
                "test_score": {},
                "history": {},
            }
            for key in saved.files:
                prefix, _, name = key.partition("/")
                if prefix in tables:
                    tables[prefix][name] = saved[key]
            return GroupRecord(
                group_id=meta["group_id"],
                cells=saved["cells"],
                repeats=saved["repeats"],
                seeds=saved["seeds"],
                diverged_epoch=saved["diverged_epoch"],
                train_scores=tables["train_score"],
                test_scores=tables["test_score"],
                history=tables["history"],
                findings={int(k): v for k, v in meta["findings"].items()},
                prepare_s=meta["prepare_s"],
                compile_s=meta["compile_s"],
                train_s=meta["train_s"],
                history_epochs=saved.get("history_epochs"),
            )
    except _UNREADABLE as err:
        raise UnreadableGroupFile(path) from err


def saved_records(
    groups: Sequence[Group],
    folder: Path,
    on_unreadable: Callable[[Path], None] | None = None,
) -> dict[str, GroupRecord]:
    """Saved groups that match the planned ones exactly; `on_unreadable(path)` hears of
    each planned group whose file cannot be read (it is then trained again).

    The id hashes every run's cell label, tables, config, seed and data in order, so an
    equal id means the same runs; only the cells' positions in the sweep may differ (a
    value added to an axis renumbers the cells), and they are taken from the plan.
    """
    found = {}
    for group in groups:
        path = folder / f"{group.id}.npz"
        if not path.is_file():
            continue
        try:
            record = load_record(path)
        except UnreadableGroupFile:
            if on_unreadable is not None:
                on_unreadable(path)
            continue
        if (
            record is not None
            and record.group_id == group.id
            and record.repeats.tolist() == list(group.repeats)
        ):
            found[group.id] = dataclasses.replace(
                record,
                cells=np.asarray(group.cells, np.int64),
                findings=_renumber(record, group),
            )
    return found


def _renumber(record: GroupRecord, group: Group) -> dict[int, dict[str, int]]:
    """Findings keyed by the plan's cell indices instead of the saved ones."""
    mapping = dict(zip(record.cells.tolist(), group.cells, strict=True))
    return {mapping[old]: counts for old, counts in record.findings.items()}


# --- the sweep folder ------------------------------------------------------------------------


@contextmanager
def open_sweep_folder(folder: Path) -> Iterator[Path]:
    """Hold the sweep folder's lock (see stablelearn.io.locked_folder) for a whole run:
    training, saving groups and writing the reports. A second sweep into the same folder
    fails at once instead of crashing half-way; what a killed run left half-written is
    removed first, which is safe only under the lock."""
    with locked_folder(folder):
        _check_holds_a_sweep(folder)
        for leftover in (folder / GROUPS_FOLDER).glob(".*.tmp"):  # see write_atomic
            leftover.unlink(missing_ok=True)
        yield folder


def _check_holds_a_sweep(folder: Path) -> None:
    """A non-empty folder is resumed only if a sweep wrote it: its reports would be
    written over the user's files otherwise."""
    names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    if names and not names & {GROUPS_FOLDER, "sweep.json"}:
        raise ConfigError(
            f"Output folder {folder} is not empty and holds no sweep; choose another --out."
        )


# --- backends -------------------------------------------------------------------------------
