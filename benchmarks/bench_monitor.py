"""The Monitor's cost: Keras fit with and without stablelearn.keras.Monitor.

Two models on Keras' JAX backend (KERAS_BACKEND overrides): the lesson's regression MLP
(20-25-1, 500 rows, batch 32) and a small CNN (two 3x3 convolutions on 1,024 16x16
images). Each fit runs `--epochs` epochs after a one-epoch warm-up fit of the same model
and callback, so both sides are compiled ("steady state"); the Monitor's one-time setup
(compiling its probe, once per model) is timed separately ("setup"). The median of
`--repeats` fits is reported, with the ratio to the plain fit.

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


def timed_fit(build, x, y, epochs, callbacks):
    """(steady-state seconds, warm-up seconds) of one model with one callback list."""
    model, chosen = build(), callbacks()
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=chosen)  # compile
    warm_up = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=chosen)
    return time.perf_counter() - start, warm_up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs, {args.epochs} epochs, median of {args.repeats}"
    )
    for name, build, x, y in (mlp_case(), cnn_case()):
        probe = (x, y)
        variants = {
            "plain fit": lambda: [],
            "Monitor (default: every epoch)": lambda p=probe: [Monitor(probe=p)],
            "Monitor stop_on='critical'": lambda p=probe: [Monitor(probe=p, stop_on="critical")],
            "Monitor every=5": lambda p=probe: [Monitor(probe=p, every=5)],
        }
        base = base_warm = None
        for label, callbacks in variants.items():
            runs = [timed_fit(build, x, y, args.epochs, callbacks) for _ in range(args.repeats)]
            median = statistics.median(t for t, _ in runs)
            warm = statistics.median(w for _, w in runs)
            base, base_warm = base or median, base_warm or warm
            print(
                f"{name:12s} {label:32s} steady {median:6.2f} s  x{median / base:.3f}   "
                f"setup +{warm - base_warm:5.2f} s ({median / args.epochs * 1000:.1f} ms/epoch)"
            )


if __name__ == "__main__":
    main()
