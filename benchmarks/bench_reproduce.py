"""Benchmark: the whole `stablelearn reproduce` at default repeats, cold then warm.

Runs the catalog twice in one process with JAX's persistent compilation cache in a fresh
temporary folder: first cold (every program compiled), then warm (the in-memory program
cache cleared, so every program comes from the persistent cache, as in a second
`stablelearn reproduce`). Prints per-experiment compile, train and wall seconds, the
programs compiled and model-steps per second, and the totals, figures and report writing
included (process start-up and imports excluded). Compilation of the next experiments
overlaps with training on a second core, so per-experiment compile seconds do not add up
to the wall time.

    python benchmarks/bench_reproduce.py
"""

import math
import tempfile
import time
from pathlib import Path

from stablelearn.compile_cache import enable_compile_cache
from stablelearn.engine import release_compiled
from stablelearn.lesson.catalog import catalog
from stablelearn.lesson.reproduce import run_and_write


def model_steps(result) -> int:
    steps = 0
    for variant in result.variants:
        config = variant.result.runs[0].config
        per_epoch = math.ceil(len(variant.data.train_y) / config.batch_size)
        steps += variant.result.n_models * per_epoch * config.epochs
    return steps


def run_once(label: str, out: Path) -> None:
    experiments = catalog()
    start = time.perf_counter()
    results, claims, _ = run_and_write(experiments, out)
    total = time.perf_counter() - start
    print(f"\n{label}")
    print(
        f"{'experiment':<22} {'models':>7} {'epochs':>7} {'programs':>9} {'compile s':>10} "
        f"{'train s':>8} {'wall s':>7} {'model-steps/s':>14}"
    )
    programs = 0
    for r in results:
        e = r.experiment
        models = sum(v.result.n_models for v in r.variants)
        epochs = e.config.epochs if e.kind == "train" else 0
        compiled = sum(v.result.timing.programs for v in r.variants[:1])
        programs += compiled
        rate = model_steps(r) / r.train_s if r.train_s else 0.0
        print(
            f"{e.id:<22} {models:>7} {epochs:>7} {compiled:>9} {r.compile_s:>10.2f} "
            f"{r.train_s:>8.2f} {r.wall_s:>7.2f} {rate:>14,.0f}"
        )
    compile_s = sum(r.compile_s for r in results)
    train_s = sum(r.train_s for r in results)
    print(f"{'sum':<22} {'':>7} {'':>7} {programs:>9} {compile_s:>10.2f} {train_s:>8.2f}")
    holds = sum(c.verdict == "holds" for c in claims)
    print(
        f"reproduce {label}: {total:.1f} s wall (compile+train summed: "
        f"{compile_s + train_s:.1f} s); {len(claims)} claims checked, {holds} hold in every repeat"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        enable_compile_cache(Path(tmp) / "jax-cache")
        run_once("cold (empty compilation cache)", Path(tmp) / "cold")
        release_compiled()
        run_once("warm (programs from the persistent cache)", Path(tmp) / "warm")


if __name__ == "__main__":
    main()
