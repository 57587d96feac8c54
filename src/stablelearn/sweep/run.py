"""Run a sweep group by group, saving each group as it finishes, on this machine or on Ray.

A group (see sweep.plan) is trained by `train_group`, a pure function of the group:
the local backend calls it in this process, the Ray backend in Ray workers, so both
give the same numbers for the same seeds. Finished groups are saved as they arrive
(see sweep.store), so an interrupted sweep resumes where it stopped.
"""

import functools
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stablelearn import interrupts
from stablelearn.engine import prepare_training, train
from stablelearn.engine.train import available_cores
from stablelearn.errors import ConfigError
from stablelearn.scheduler import compile_ahead
from stablelearn.sweep.plan import PACKED_PARTS, Group, plan_groups
from stablelearn.sweep.spec import Sweep
from stablelearn.sweep.store import (
    GROUPS_FOLDER,
    GroupRecord,
    record_from_result,
    save_record,
    saved_records,
    train_group,
)

BACKENDS = ("local", "ray")
LOOKAHEAD = 2  # groups compiled ahead of the one training: bounds memory, keeps a core busy


def default_workers() -> int:
    """One training thread per core this process may use. On the 2-core development
    machine the depth sweep took 321 s with 2 threads and 440 s with 1 (compiling ahead
    while one group trains)."""
    return available_cores()


def sweep_parts(
    backend: str, address: str | None, workers: int | None, num_cpus: int | None = None
) -> int:
    """How many groups packed programs are split into (see plan.split_packed): one per
    worker that trains groups side by side, local threads or a local Ray's CPUs, and at
    least plan.PACKED_PARTS. A remote cluster's size is not known before it is joined,
    so a sweep there plans for PACKED_PARTS."""
    if backend == "ray":
        count = PACKED_PARTS if address else (num_cpus or default_workers())
    else:
        count = workers or default_workers()
    return max(PACKED_PARTS, count)


def run_local(
    groups: Sequence[Group], on_done: Callable[[GroupRecord], None], workers: int = 1
) -> None:
    """Train groups on this machine.

    workers=1: groups train in order while one thread compiles the next LOOKAHEAD (see
    stablelearn.scheduler). workers>1: that many threads each compile and train whole
    groups; XLA runs outside the GIL, so training itself then uses several cores.
    """
    if workers > 1:
        _run_threads(groups, on_done, workers)
        return
    compile_ahead(
        groups,
        lambda group: prepare_training(group.runs),
        lambda group, ready: record_from_result(group, train(group.runs, prepared=ready)),
        lambda group, record: on_done(record),
        lookahead=LOOKAHEAD,
    )


def _run_threads(
    groups: Sequence[Group], on_done: Callable[[GroupRecord], None], workers: int
) -> None:
    remaining = iter(groups)
    running: set = set()
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers)

    def fill() -> None:
        while len(running) < workers and (group := next(remaining, None)) is not None:
            running.add(pool.submit(train_group, group, stop))

    try:
        fill()
        while running:
            done, _ = wait(running, timeout=interrupts.POLL_S, return_when=FIRST_COMPLETED)
            interrupts.check()
            for future in done:
                running.remove(future)
                on_done(future.result())
            fill()
    except BaseException:
        # the other threads stop at their next chunk of epochs; nothing waits for them
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


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
            done, waiting = ray.wait(waiting, num_returns=1, timeout=interrupts.POLL_S)
            interrupts.check()
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
    history: dict[str, np.ndarray]  # [models, recorded epochs], at history_epochs
    history_epochs: np.ndarray  # the 1-based epoch of each history column
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
        return {n: np.concatenate([t[n] for t in tables])[order] for n in sorted(names)}

    history, history_epochs = _stitch_history(records, order)
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
        history=history,
        history_epochs=history_epochs,
        findings=findings,
        groups=len(records),
        groups_resumed=resumed,
        compile_s=sum(r.compile_s for r in records),
        train_s=sum(r.train_s for r in records),
        wall_s=wall_s,
        backend=backend,
    )


def _stitch_history(
    records: Sequence[GroupRecord], order: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every group's curves placed at their epochs on the union of all groups' recorded
    epochs (NaN where a group has none: a shorter or a thinned run), in model `order`."""
    epochs_of = [_history_epochs(r) for r in records]
    epochs = functools.reduce(np.union1d, epochs_of)
    names = set.intersection(*(set(r.history) for r in records))
    history = {}
    for name in sorted(names):
        rows = []
        for record, own in zip(records, epochs_of, strict=True):
            curves = record.history[name]
            placed = np.full((len(curves), len(epochs)), np.nan, np.float32)
            placed[:, np.searchsorted(epochs, own)] = curves
            rows.append(placed)
        history[name] = np.concatenate(rows)[order]
    return history, epochs


def _history_epochs(record: GroupRecord) -> np.ndarray:
    if record.history_epochs is not None:
        return record.history_epochs
    width = max((curves.shape[1] for curves in record.history.values()), default=0)
    return np.arange(1, width + 1)


def check_backend(backend: str, address: str | None, workers: int | None) -> None:
    """The backend options, checked before any work starts (a missing Ray included)."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if address is not None and backend != "ray":
        raise ConfigError("--address applies to --backend ray only.")
    if backend == "ray":
        ray_module()
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}.")
    if workers is not None and backend != "local":
        raise ConfigError("--workers applies to the local backend; Ray uses its CPUs.")


def run_sweep(
    sweep: Sweep,
    folder: Path,
    backend: str = "local",
    address: str | None = None,
    fresh: bool = False,
    on_group: Callable[[GroupRecord, int, int], None] | None = None,
    num_cpus: int | None = None,
    workers: int | None = None,
    on_notice: Callable[[str], None] | None = None,
    groups: Sequence[Group] | None = None,
) -> SweepResult:
    """Train every group not already saved in `folder`, saving each as it finishes.

    `fresh` ignores saved groups. `on_group(record, done, total)` reports progress.
    `workers` threads train groups side by side on the local backend (default: one per
    available core); `num_cpus` sizes a local Ray. `on_notice(sentence)` hears of saved
    groups that are unreadable and trained again (default: a warning). `groups` is
    plan_groups(sweep, sweep_parts(...)) when the caller planned already (10,000 cells plan in about 15 s).
    """
    check_backend(backend, address, workers)
    if workers is None:
        workers = default_workers()
    start = time.perf_counter()
    if groups is None:
        groups = plan_groups(sweep, sweep_parts(backend, address, workers, num_cpus))
    store = folder / GROUPS_FOLDER

    def unreadable(path: Path) -> None:
        sentence = f"{path} is unreadable (truncated?); retraining it."
        if on_notice is None:
            warnings.warn(sentence, stacklevel=4)  # at run_sweep's caller
        else:
            on_notice(sentence)

    records = {} if fresh else saved_records(groups, store, unreadable)
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
