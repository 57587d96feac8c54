"""Run a sweep group by group, saving each group as it finishes, on this machine or on Ray.

A group (see sweep.plan_groups) is trained by `train_group`, a pure function of the
group: the local backend calls it in this process, the Ray backend in Ray workers, so
both give the same numbers for the same seeds. Each finished group is written
atomically to `<folder>/groups/<group id>.npz`; a rerun of the same sweep loads those
files and trains only the groups that are missing, so an interrupted sweep (Ctrl-C, a
kill, a lost node) resumes where it stopped and never reads a half-written file.
"""

import dataclasses
import json
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn.diagnostics import diagnose
from stablelearn.engine import prepare_training, train
from stablelearn.errors import ConfigError
from stablelearn.io import write_atomic
from stablelearn.results import TrainResult
from stablelearn.sweep import FORMAT_VERSION, Group, Sweep, plan_groups

BACKENDS = ("local", "ray")
GROUPS_FOLDER = "groups"
LOOKAHEAD = 2  # groups compiled ahead of the one training: bounds memory, keeps a core busy


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
    )


def train_group(group: Group) -> GroupRecord:
    """Compile and train one group: what a local loop or a Ray worker runs."""
    return record_from_result(group, train(group.runs))


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
    for prefix, table in (
        ("train_score", record.train_scores),
        ("test_score", record.test_scores),
        ("history", record.history),
    ):
        arrays |= {f"{prefix}/{name}": values for name, values in table.items()}
    return write_atomic(folder / f"{record.group_id}.npz", lambda h: np.savez(h, **arrays))


def load_record(path: Path) -> GroupRecord | None:
    """A saved group, or None when the file is unreadable or from another format."""
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
            )
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def _saved_records(groups: Sequence[Group], folder: Path) -> dict[str, GroupRecord]:
    """Saved groups that match the planned ones exactly.

    The id hashes every run's cell label, tables, config, seed and data in order, so an
    equal id means the same runs; only the cells' positions in the sweep may differ (a
    value added to an axis renumbers the cells), and they are taken from the plan.
    """
    found = {}
    for group in groups:
        path = folder / f"{group.id}.npz"
        if not path.is_file():
            continue
        record = load_record(path)
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


# --- backends -------------------------------------------------------------------------------


def default_workers() -> int:
    """One training thread per core this process may use. On the 2-core development
    machine the depth sweep took 321 s with 2 threads and 440 s with 1 (compiling ahead
    while one group trains)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_local(
    groups: Sequence[Group], on_done: Callable[[GroupRecord], None], workers: int = 1
) -> None:
    """Train groups on this machine.

    workers=1: groups train in order while one thread compiles the next LOOKAHEAD (XLA
    compiles outside the GIL, so compilation overlaps training on a second core).
    workers>1: that many threads each compile and train whole groups; XLA runs outside
    the GIL, so training itself then uses several cores.
    """
    if workers > 1:
        _run_threads(groups, on_done, workers)
        return
    pending: deque = deque()
    remaining = iter(groups)
    with ThreadPoolExecutor(max_workers=1) as compiler:

        def submit_next() -> None:
            group = next(remaining, None)
            if group is not None:
                pending.append((group, compiler.submit(prepare_training, group.runs)))

        try:
            for _ in range(LOOKAHEAD):
                submit_next()
            while pending:
                group, future = pending.popleft()
                prepared = future.result()
                submit_next()
                result = train(group.runs, prepared=prepared)
                on_done(record_from_result(group, result))
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise


def _run_threads(
    groups: Sequence[Group], on_done: Callable[[GroupRecord], None], workers: int
) -> None:
    remaining = iter(groups)
    running: set = set()
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def fill() -> None:
            while len(running) < workers and (group := next(remaining, None)) is not None:
                running.add(pool.submit(train_group, group))

        try:
            fill()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.remove(future)
                    on_done(future.result())
                fill()
        except BaseException:
            for future in running:
                future.cancel()
            raise


def ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray: pip install 'stablelearn[ray]' (on every node of a cluster)."
        ) from None
    return ray


def run_ray(
    groups: Sequence[Group],
    on_done: Callable[[GroupRecord], None],
    address: str | None = None,
    num_cpus: int | None = None,
) -> None:
    """Send each group to a Ray worker (one CPU each) and save results as they arrive.

    `address` joins an existing cluster ("auto", "ray://head:10001"); without it a local
    Ray starts with `num_cpus` CPUs (default: all) and stops at the end. Workers run
    `train_group`, so every node needs the same stablelearn installed.
    """
    ray = ray_module()
    started = not ray.is_initialized()
    if started:
        with warnings.catch_warnings():
            # Ray starts its processes with fork+exec, which JAX's fork warning can't tell
            # from a bare fork (the one that would deadlock)
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
            try:
                ray.init(
                    address=address,
                    num_cpus=None if address else num_cpus,
                    include_dashboard=False,
                    logging_level="ERROR",
                    log_to_driver=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ConfigError(
                    f"Could not start or reach Ray at {address or 'local'}: {err}"
                ) from None
    refs: list = []
    try:
        remote = ray.remote(num_cpus=1)(train_group)
        refs = [remote.remote(group) for group in groups]
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                on_done(ray.get(ref))
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


# --- the whole sweep --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Every model of a sweep, ordered by cell then repeat, plus how the time was spent."""

    sweep: Sweep
    cells: np.ndarray  # [models] cell index
    repeats: np.ndarray
    seeds: np.ndarray
    diverged_epoch: np.ndarray
    train_scores: dict[str, np.ndarray]
    test_scores: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    findings: dict[int, dict[str, int]]
    groups: int
    groups_resumed: int
    compile_s: float
    train_s: float
    wall_s: float
    backend: str

    def scores(self, metric: str) -> np.ndarray:
        """A metric name such as test_accuracy or train_rmse_original, per model."""
        split, _, name = metric.partition("_")
        return (self.test_scores if split == "test" else self.train_scores)[name]

    def cell_mask(self, index: int) -> np.ndarray:
        return self.cells == index


def _assemble(
    sweep: Sweep, records: Iterable[GroupRecord], resumed: int, wall_s: float, backend: str
) -> SweepResult:
    records = list(records)
    cells = np.concatenate([r.cells for r in records])
    repeats = np.concatenate([r.repeats for r in records])
    order = np.lexsort((repeats, cells))

    def stitch(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        names = set.intersection(*(set(t) for t in tables))
        if any(t[n].ndim > 1 for t in tables for n in names):
            width = max(t[n].shape[1] for t in tables for n in names if t[n].ndim > 1)
            tables = [
                {
                    n: np.pad(t[n], ((0, 0), (0, width - t[n].shape[1])), constant_values=np.nan)
                    if t[n].ndim > 1
                    else t[n]
                    for n in names
                }
                for t in tables
            ]
        return {n: np.concatenate([t[n] for t in tables])[order] for n in sorted(names)}

    findings: dict[int, dict[str, int]] = {}
    for record in records:
        findings |= record.findings
    return SweepResult(
        sweep=sweep,
        cells=cells[order],
        repeats=repeats[order],
        seeds=np.concatenate([r.seeds for r in records])[order],
        diverged_epoch=np.concatenate([r.diverged_epoch for r in records])[order],
        train_scores=stitch([r.train_scores for r in records]),
        test_scores=stitch([r.test_scores for r in records]),
        history=stitch([r.history for r in records]),
        findings=findings,
        groups=len(records),
        groups_resumed=resumed,
        compile_s=sum(r.compile_s for r in records),
        train_s=sum(r.train_s for r in records),
        wall_s=wall_s,
        backend=backend,
    )


def run_sweep(
    sweep: Sweep,
    folder: Path,
    backend: str = "local",
    address: str | None = None,
    fresh: bool = False,
    on_group: Callable[[GroupRecord, int, int], None] | None = None,
    num_cpus: int | None = None,
    workers: int | None = None,
) -> SweepResult:
    """Train every group not already saved in `folder`, saving each as it finishes.

    `fresh` ignores saved groups. `on_group(record, done, total)` reports progress.
    `workers` threads train groups side by side on the local backend (default: one per
    available core); `num_cpus` sizes a local Ray.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if address is not None and backend != "ray":
        raise ConfigError("--address applies to --backend ray only.")
    if workers is None:
        workers = default_workers()
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}.")
    start = time.perf_counter()
    groups = plan_groups(sweep)
    store = folder / GROUPS_FOLDER
    records = {} if fresh else _saved_records(groups, store)
    resumed = len(records)
    todo = [g for g in groups if g.id not in records]

    def on_done(record: GroupRecord) -> None:
        save_record(record, store)
        records[record.group_id] = record
        if on_group is not None:
            on_group(record, len(records), len(groups))

    if todo:
        if backend == "ray":
            run_ray(todo, on_done, address, num_cpus)
        else:
            run_local(todo, on_done, workers)
    ordered = [records[g.id] for g in groups]
    return _assemble(sweep, ordered, resumed, time.perf_counter() - start, backend)
