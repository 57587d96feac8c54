"""Benchmark: a shipped sweep from a cold start, on the local backend and optionally Ray.

Prints wall, compile and train seconds, the time per cell and per model, and where the
time went by depth; with --ray also the Ray backend on the same machine and the ratio.
Every run starts from an empty folder (nothing resumed).

    python benchmarks/bench_sweep.py                       # depth-activation, full size
    python benchmarks/bench_sweep.py --epochs 50 --ray     # a quicker look, both backends
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from stablelearn.sweep.plan import plan_groups
from stablelearn.sweep.report import write_sweep_outputs
from stablelearn.sweep.run import run_sweep
from stablelearn.sweep.spec import resolve_sweep
from stablelearn.sweep.statistics import sweep_summary


def timed(sweep, backend: str, workers: int = 1, out: Path | None = None) -> tuple[object, float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_sweep(sweep, out or Path(tmp), backend=backend, workers=workers, fresh=True)
        return result, time.perf_counter() - start


def report(name: str, result, wall: float, cells: int) -> None:
    models = result.cells.size
    print(
        f"{name:<8} wall {wall:7.1f} s  compile {result.compile_s:7.1f} s  train {result.train_s:7.1f} s"
        f"  groups {result.groups:4d}  per cell {wall / cells:6.2f} s wall"
        f"  ({result.train_s / cells:.2f} s train)  per model {1000 * wall / models:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", default="depth-activation")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--workers", type=int, default=1, help="local backend threads")
    parser.add_argument("--compare-workers", action="store_true", help="also time 2 threads")
    parser.add_argument("--ray", action="store_true", help="also time the Ray backend")
    parser.add_argument("--out", type=Path, help="keep the first run's sweep folder here")
    args = parser.parse_args()
    sweep = resolve_sweep(args.sweep, repeats=args.repeats, epochs=args.epochs)
    groups = plan_groups(sweep)
    epochs = sweep.cells[0].experiment.config.epochs
    print(
        f"{sweep.id}: {len(sweep.cells)} cells x {sweep.repeats} repeats x {epochs} epochs "
        f"= {len(sweep.cells) * sweep.repeats} models in {len(groups)} compiled groups"
    )
    local, local_wall = timed(sweep, "local", args.workers, args.out)
    if args.out:
        write_sweep_outputs(local, args.out)
    report(f"local/{args.workers}", local, local_wall, len(sweep.cells))
    if args.compare_workers:
        threads, threads_wall = timed(sweep, "local", 2)
        report("local/2", threads, threads_wall, len(sweep.cells))
        same = all(
            np.array_equal(local.test_scores[k], threads.test_scores[k], equal_nan=True)
            for k in local.test_scores
        )
        print(f"2 threads / 1: {threads_wall / local_wall:.2f}x wall; identical scores: {same}")
    if args.ray:
        ray, ray_wall = timed(sweep, "ray")
        report("ray", ray, ray_wall, len(sweep.cells))
        same = all(
            np.array_equal(local.test_scores[k], ray.test_scores[k], equal_nan=True)
            for k in local.test_scores
        )
        print(f"ray / local wall: {ray_wall / local_wall:.2f}x; identical scores: {same}")
    summary = sweep_summary(local)
    axis = sweep.axes[0].name
    print(f"\nsuccess rate by {axis} ({sweep.success.describe(sweep.metric)}):")
    for cell in summary["cells"]:
        s = cell["success"]
        print(
            f"  {cell['label']:<40} {s['k']:>3}/{s['n']:<3} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"
        )


if __name__ == "__main__":
    main()
