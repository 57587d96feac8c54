"""Benchmark: one study's compile and train seconds in two (or more) source trees, paired.

For telemetry changes whose cost is a few percent on a shared, noisy machine: each round
starts one fresh process per tree (in alternating order, so drifting load hits both
alike), pinned to one core, which compiles the study from scratch (the library leaves
the persistent compilation cache off) and trains it `--repeats` times (the fastest
counts). Per round the ratio tree / first tree; the median over rounds and its spread
are printed.

    python benchmarks/bench_compare.py --tree /work/wt-before --tree . \\
        [--study input-scaling --study relu-20] [--rounds 7] [--epochs-relu-20 100] [--cpu 1]
    python benchmarks/bench_compare.py --telemetry-cost [--tree .]

--telemetry-cost measures what telemetry costs instead: each tree with telemetry off and
on, paired the same way, and prints on / off.

Studies are the lesson's catalog experiments: input-scaling (90 models of 20-25-1, 100
epochs) and relu-20 (20 models of twenty 5-unit ReLU layers on the circles; 500 epochs in
the catalog, `--epochs-relu-20` shortens it: the per-step cost is what is compared).
"""

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def worker(study: str, epochs: int | None, repeats: int, telemetry: bool) -> None:
    """In the tree's own Python path: compile, then train `repeats` times; print JSON."""
    from stablelearn import engine
    from stablelearn.experiments.runner import experiment_runs, prepare_variant_data
    from stablelearn.lesson.catalog import resolve

    experiment = resolve(study).override(epochs=epochs)
    if not telemetry:
        config = dataclasses.replace(experiment.config, telemetry=False)
        experiment = dataclasses.replace(experiment, config=config)
    runs = experiment_runs(experiment, prepare_variant_data(experiment, experiment.data))
    compiled = engine.prepare_training(runs)
    compile_s = sum(g.compile_s for g in compiled.groups)
    train, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for group in compiled.groups:
            engine.execute(group)
        train.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(json.dumps({"compile_s": compile_s, "train_s": min(train), "train_cpu_s": min(cpu)}))


def measure(
    tree: Path, study: str, epochs: int | None, repeats: int, cpu: str, telemetry: bool = True
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    command = [sys.executable, __file__, "--worker", study, "--repeats", str(repeats)]
    command += [] if telemetry else ["--no-telemetry"]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if cpu:
        command = ["taskset", "-c", cpu, *command]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{tree}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(name: str, ratios: list[float]) -> str:
    return (
        f"{name} x{statistics.median(ratios):.3f} (min x{min(ratios):.3f}, "
        f"max x{max(ratios):.3f}, n={len(ratios)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", type=Path, help="a source tree (repeat)")
    parser.add_argument("--study", action="append", help="catalog id (repeat)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3, help="trainings per process")
    parser.add_argument("--epochs-relu-20", type=int, default=100)
    parser.add_argument("--cpu", default="1", help="taskset core list ('' for none)")
    parser.add_argument(
        "--telemetry-cost", action="store_true", help="each tree with telemetry off vs on"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--no-telemetry", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.epochs, args.repeats, not args.no_telemetry)
        return
    trees = [t.resolve() for t in args.tree or [Path(".")]]
    # what is compared: (tree, telemetry on?) pairs, the first the reference
    if args.telemetry_cost:
        variants = [(t, on) for t in trees for on in (False, True)]
        compared = list(zip(variants[::2], variants[1::2], strict=True))  # on / off per tree
    else:
        variants = [(t, True) for t in trees]
        compared = [(variants[0], v) for v in variants[1:]]  # each tree / the first
    for study in args.study or ["input-scaling", "relu-20"]:
        epochs = args.epochs_relu_20 if study == "relu-20" else None
        rows = {v: [] for v in variants}
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for tree, on in order:
                rows[tree, on].append(measure(tree, study, epochs, args.repeats, args.cpu, on))
            print(
                f"{study} round {r + 1}: "
                + "  ".join(
                    f"{label(v)} train {rows[v][-1]['train_s']:.3f} cpu "
                    f"{rows[v][-1]['train_cpu_s']:.3f} compile {rows[v][-1]['compile_s']:.2f}"
                    for v in variants
                ),
                flush=True,
            )
        for reference, variant in compared:
            for key in ("train_s", "train_cpu_s", "compile_s"):
                paired = zip(rows[reference], rows[variant], strict=True)
                ratios = [b[key] / a[key] for a, b in paired]
                print(summary(f"{study} {key} {label(variant)}/{label(reference)}", ratios))
        for variant in variants:
            med = statistics.median(row["train_s"] for row in rows[variant])
            print(f"{study} {label(variant)}: median train {med:.3f} s")


def label(variant: tuple[Path, bool]) -> str:
    tree, telemetry = variant
    return tree.name + ("" if telemetry else " (telemetry off)")


if __name__ == "__main__":
    main()
