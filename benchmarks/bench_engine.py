"""Benchmark: the lesson's input-scaling study through the engine.

make_regression as in the lesson, inputs none / minmax / standard, target standardized,
30 repeats each, 100 epochs, SGD(0.01, momentum 0.9), no validation data (as the
lesson's study), telemetry on (the default) and, for the overhead, off. Prints compile and train seconds and model-steps per second for 1, 90
and 900 models, the ratio against the same 90 models trained one at a time through
the same engine, and the achieved GFLOP/s.

    python benchmarks/bench_engine.py [--one-at-a-time N]
    python benchmarks/bench_engine.py --packing   # the planner's cost-model constants

--packing instead measures what engine.plan's cost model is built from, on the circles
problem with 5-unit ReLU layers, 20 models each, 100 epochs, no telemetry: compile and
train seconds of unpacked programs (10 and 30 layers) against packed ones (9+10 and
29+30 layers, unrolled and scanned, and ReLU + tanh at 30), trained interleaved, best
of three, per model.
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


def packing_runs(architectures, epochs: int = 100, seeds: int = 20) -> list[sl.Run]:
    data = sl.prepare(sl.lesson_circles(), input_scaler="minmax(-1,1)", n_train=500)
    config = sl.TrainConfig.for_task(data.task, epochs=epochs, telemetry=False)
    return [
        sl.Run(
            sl.MLP.stack(2, depth, 5, activation, "he_uniform", output=sl.Dense(1, "sigmoid")),
            sl.SGD(0.01, momentum=0.9),
            data,
            seed,
            config,
        )
        for depth, activation in architectures
        for seed in range(seeds)
    ]


def packing() -> None:
    """Unpacked vs packed programs: the numbers behind engine.plan's constants."""
    from stablelearn.engine import program

    cases = {
        "unpacked relu 10": ([(10, "relu")], None),
        "packed relu 9+10 unrolled": ([(9, "relu"), (10, "relu")], 64),
        "packed relu 9+10 scanned": ([(9, "relu"), (10, "relu")], 1),
        "unpacked relu 30": ([(30, "relu")], None),
        "packed relu 29+30 unrolled": ([(29, "relu"), (30, "relu")], 64),
        "packed relu 29+30 scanned": ([(29, "relu"), (30, "relu")], 1),
        "packed relu+tanh 30 unrolled": ([(30, "relu"), (30, "tanh")], 64),
    }
    prepared = {}
    default = program.SCAN_SLOTS
    for name, (architectures, scan_slots) in cases.items():
        program.SCAN_SLOTS = default if scan_slots is None else scan_slots
        prepared[name] = engine.prepare_training(packing_runs(architectures))
    program.SCAN_SLOTS = default
    per_model = {name: [] for name in cases}
    for _ in range(3):  # interleaved, so drifting load hits all cases alike
        for name, compiled in prepared.items():
            start = time.perf_counter()
            for group in compiled.groups:
                engine.execute(group)
            per_model[name].append((time.perf_counter() - start) / len(compiled.runs))
    steps = 100 * 16
    print(f"{'case':30s} {'compile s':>10} {'train ms/model':>15} {'us/model-layer-step':>20}")
    for name, compiled in prepared.items():
        best = min(per_model[name])
        layers = max(r.model.depth for r in compiled.runs) + 1
        compile_s = sum(g.compile_s for g in compiled.groups)
        print(
            f"{name:30s} {compile_s:>10.2f} {best * 1000:>15.2f} "
            f"{best / steps / layers * 1e6:>20.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--one-at-a-time", type=int, default=90, help="models trained alone for the ratio"
    )
    parser.add_argument("--packing", action="store_true", help="measure packed programs")
    args = parser.parse_args()
    if args.packing:
        packing()
        return
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
