"""Benchmark: the whole `stablelearn reproduce` at default repeats, from a cold start.

Prints per-experiment compile, train and wall seconds and the total, compilation,
figures and report writing included (process start-up and imports excluded; they add
about 2.5 s). Compilation of the next experiments overlaps with training on a second
core, so per-experiment compile seconds do not add up to the wall time.

    python benchmarks/bench_reproduce.py
"""

import tempfile
import time
from pathlib import Path

from stablelearn.lesson.catalog import catalog
from stablelearn.lesson.reproduce import run_and_write


def main() -> None:
    experiments = catalog()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        results, claims, _ = run_and_write(experiments, Path(tmp) / "reproduce")
        total = time.perf_counter() - start
    print(
        f"{'experiment':<22} {'models':>7} {'epochs':>7} {'compile s':>10} {'train s':>8} {'wall s':>7}"
    )
    for r in results:
        e = r.experiment
        models = sum(v.result.n_models for v in r.variants)
        epochs = e.config.epochs if e.kind == "train" else 0
        print(
            f"{e.id:<22} {models:>7} {epochs:>7} {r.compile_s:>10.2f} {r.train_s:>8.2f} {r.wall_s:>7.2f}"
        )
    compile_s = sum(r.compile_s for r in results)
    train_s = sum(r.train_s for r in results)
    print(f"{'sum':<22} {'':>7} {'':>7} {compile_s:>10.2f} {train_s:>8.2f}")
    holds = sum(c.verdict == "holds" for c in claims)
    print(
        f"\nreproduce total: {total:.1f} s wall (compile+train summed: {compile_s + train_s:.1f} s); "
        f"{len(claims)} claims checked, {holds} hold in every repeat"
    )


if __name__ == "__main__":
    main()
