"""Benchmark: the lesson's input-scaling study through the engine.

make_regression as in the lesson, inputs none / minmax / standard, target standardized,
30 repeats each, 100 epochs, SGD(0.01, momentum 0.9), no validation data (as the
lesson's study), telemetry on (the default) and, for the overhead, off. Prints compile and train seconds and model-steps per second for 1, 90
and 900 models, the ratio against the same 90 models trained one at a time through
the same engine, and the achieved GFLOP/s.

    python benchmarks/bench_engine.py [--one-at-a-time N]
"""

import argparse
import time

import jax

import stablelearn as sl
from stablelearn import engine

EPOCHS = 100
VARIANTS = ("none", "minmax", "standard")


def study_runs(n_models: int, telemetry: bool = True) -> list[sl.Run]:
    dataset = sl.lesson_regression()
    data = {
        v: sl.prepare(dataset, input_scaler=v, target_scaler="standard", n_train=500)
        for v in VARIANTS
    }
    model = sl.MLP(20, (sl.Dense(25, "relu", "he_uniform"),), sl.Dense(1))
    optimizer = sl.SGD(learning_rate=0.01, momentum=0.9)
    config = sl.TrainConfig(epochs=EPOCHS, validation=False, telemetry=telemetry)
    return [
        sl.Run(
            model,
            optimizer,
            data[VARIANTS[i % 3]],
            seed=i,
            config=config,
            tags={"variant": VARIANTS[i % 3]},
        )
        for i in range(n_models)
    ]


def flops_per_model(steps: int, batch: int = 32) -> float:
    """Forward 2*(20*25+25) per row, backward about twice that; final evaluation ignored."""
    forward = 2 * (20 * 25 + 25 * 1)
    return 3 * forward * batch * steps


def measure(n_models: int, telemetry: bool = True) -> dict[str, float]:
    """Train n_models from a cold start (compile seconds, initializer compilation is in
    `cold prepare`), then again warm (prepare, train and wall seconds)."""
    engine.release_compiled()
    jax.clear_caches()
    runs = study_runs(n_models, telemetry)
    cold = sl.train(runs).timing
    start = time.perf_counter()
    result = sl.train(runs)
    wall = time.perf_counter() - start
    steps = EPOCHS * 16
    t = result.timing
    return {
        "models": n_models,
        "compile_s": cold.compile_s,
        "cold_prepare_s": cold.prepare_s,
        "prepare_s": t.prepare_s,
        "train_s": t.train_s,
        "wall_s": wall,
        "model_steps_per_s": n_models * steps / t.train_s,
        "gflops": n_models * flops_per_model(steps) / t.train_s / 1e9,
        "diverged": int(result.diverged.sum()),
    }


def one_at_a_time(n_models: int) -> tuple[float, float]:
    """Train seconds and wall seconds for n_models runs, each alone (compiled once)."""
    runs = study_runs(n_models)
    sl.train(runs[:1])  # compile the one-model program outside the timing
    train_s = 0.0
    start = time.perf_counter()
    for run in runs:
        train_s += sl.train([run]).timing.train_s
    return train_s, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--one-at-a-time", type=int, default=90, help="models trained alone for the ratio"
    )
    args = parser.parse_args()
    rows = [measure(n) for n in (1, 90, 900)]
    bare = measure(90, telemetry=False)
    print(
        f"{'models':>7} {'compile s':>10} {'cold prepare s':>15} {'prepare s':>10} {'train s':>9} "
        f"{'model-steps/s':>14} {'GFLOP/s':>8} {'diverged':>9}"
    )
    for r in rows:
        print(
            f"{r['models']:>7} {r['compile_s']:>10.2f} {r['cold_prepare_s']:>15.2f} {r['prepare_s']:>10.3f} "
            f"{r['train_s']:>9.3f} {r['model_steps_per_s']:>14,.0f} {r['gflops']:>8.2f} {r['diverged']:>9}"
        )
    print(
        f"\ntelemetry overhead (90 models): train {rows[1]['train_s']:.3f} s with vs "
        f"{bare['train_s']:.3f} s without ({rows[1]['train_s'] / bare['train_s'] - 1:+.0%}); "
        f"compile {rows[1]['compile_s']:.2f} s vs {bare['compile_s']:.2f} s"
    )
    n = args.one_at_a_time
    alone_train, alone_wall = one_at_a_time(n)
    ensemble_train = rows[1]["train_s"] * n / 90
    ensemble_wall = (rows[1]["train_s"] + rows[1]["prepare_s"]) * n / 90
    print(
        f"\n{n} models one at a time: {alone_train:.2f} s train "
        f"({alone_wall:.2f} s with per-call overhead); as one ensemble: "
        f"{ensemble_train:.2f} s ({ensemble_wall:.2f} s)"
    )
    print(
        f"ensemble speed-up: {alone_train / ensemble_train:.1f}x train, "
        f"{alone_wall / ensemble_wall:.1f}x wall"
    )


if __name__ == "__main__":
    main()
