"""The Monitor's cost: Keras fit with and without stablelearn.keras.Monitor.

Two models on Keras' JAX backend (KERAS_BACKEND overrides): the lesson's regression MLP
(20-25-1, 500 rows, batch 32) and a small CNN (two 3x3 convolutions on 1,024 16x16
images). Each fit runs `--epochs` epochs after a one-epoch warm-up fit of the same model
and callback, so both sides are compiled ("steady state"); the Monitor's one-time setup
(compiling its probe, once per model) is timed separately ("setup"). The median of
`--repeats` fits (variants interleaved) and the best one (as timeit reports: the least
disturbed by other load on the machine) are reported, with their ratios to the plain fit.
Last, one probe is timed directly: the Monitor's own work per probed epoch, free of the
fit's noise.

    python benchmarks/bench_monitor.py --epochs 50 --repeats 5
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

from stablelearn.keras import Monitor

L = keras.layers


def mlp_case():
    from stablelearn.data import lesson_regression, prepare

    data = prepare(lesson_regression(), target_scaler="standard", n_train=500)

    def build():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((20,)),
                L.Dense(25, activation="relu", kernel_initializer="he_uniform"),
                L.Dense(1),
            ]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
        return model

    return "MLP 20-25-1", build, data.train_x, data.train_y


def cnn_case():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 16, 16, 1)).astype("float32")
    y = (x[:, :8].mean(axis=(1, 2, 3)) > 0).astype("int32")

    def build():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((16, 16, 1)),
            L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(),
            L.Conv2D(16, 3, activation="relu"), L.Flatten(),
            L.Dense(2, activation="softmax"),
        ])  # fmt: skip
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    return "CNN 2 conv", build, x, y


def warmed(build, x, y, callbacks):
    """A compiled model with its callbacks, and the seconds its one-epoch warm-up took."""
    model, chosen = build(), callbacks()
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=chosen)
    return model, chosen, time.perf_counter() - start


def timed_fit(model, chosen, x, y, epochs):
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=chosen)
    return time.perf_counter() - start


def probe_seconds(monitor, calls=50):
    """Seconds per probe, called directly (the Monitor's part of an epoch, without noise)."""
    start = time.perf_counter()
    for _ in range(calls):
        monitor._probe(1)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs, {args.epochs} epochs, "
        f"median of {args.repeats} (variants interleaved)"
    )
    for name, build, x, y in (mlp_case(), cnn_case()):
        probe = (x, y)
        variants = {
            "plain fit": lambda: [],
            "Monitor (default: every epoch)": lambda p=probe: [Monitor(probe=p)],
            "Monitor stop_on='critical'": lambda p=probe: [Monitor(probe=p, stop_on="critical")],
            "Monitor every=5": lambda p=probe: [Monitor(probe=p, every=5)],
        }
        prepared = {label: warmed(build, x, y, cb) for label, cb in variants.items()}
        times = {label: [] for label in variants}
        for _ in range(args.repeats):  # round robin, so drifting machine load hits all alike
            for label, (model, chosen, _) in prepared.items():
                times[label].append(timed_fit(model, chosen, x, y, args.epochs))
        base, base_best = statistics.median(times["plain fit"]), min(times["plain fit"])
        base_warm = prepared["plain fit"][2]
        for label, (_, _, warm) in prepared.items():
            median, best = statistics.median(times[label]), min(times[label])
            print(
                f"{name:12s} {label:32s} median {median:6.2f} s x{median / base:.3f}  "
                f"best {best:6.2f} s x{best / base_best:.3f}  setup +{warm - base_warm:5.2f} s "
                f"({best / args.epochs * 1000:.1f} ms/epoch)"
            )
        monitor = prepared["Monitor (default: every epoch)"][1][0]
        per_probe = probe_seconds(monitor)
        print(
            f"{name:12s} one probe {per_probe * 1000:.2f} ms = "
            f"{per_probe / (base / args.epochs):.1%} of a plain epoch"
        )


if __name__ == "__main__":
    main()
