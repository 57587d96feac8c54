"""watch()'s cost: the user's own PyTorch loop plain, under stablelearn.torch.watch at its
default schedule, and under torch.autograd.detect_anomaly (PyTorch's own NaN finder).

Two models on CPU: the lesson's regression MLP (20-25-1, 512 rows, batch 32, SGD with
momentum) and a small CNN (two 3x3 convolutions with ReLU on 1,024 1x16x16 images,
batch 32). Each variant trains `--epochs` epochs from the same weights after a one-epoch
warm-up; variants are interleaved over `--repeats` rounds and the median and best time
per variant are reported with their ratios to the plain loop, and the median over rounds
of each round's ratio ("paired": the plain and watched runs of a round ran seconds
apart, so a slow spell of a shared machine, which moved unpaired ratios by +-15%
between identical runs here, affects both).

    python benchmarks/bench_torch_watch.py --epochs 5 --repeats 7 --threads 1

Measured (`taskset -c 1`, --epochs 5, --repeats 7 or 9, five runs on a shared 2-core VM
with a load average of 5-8 from other jobs, so one run moved by up to +-10%): paired
watch ratio MLP x1.14, x1.08, x1.03, x1.06, x0.88 (median x1.06), CNN x1.07, x1.08,
x1.05, x1.03, x0.95 (median x1.05); detect_anomaly MLP x2.0-x3.0, CNN x1.64-x1.88.
Instructions counted by callgrind (no noise) over one 5-epoch run: MLP +5.8% (it was
+8.2% before one forward hook replaced two and the sampled step was slimmed), CNN +0.8%
(+1.2%); an unsampled MLP step costs about 47k instructions over the plain step's 1.0M,
a sampled one about 1.0M (5.3M before).
"""

import argparse
import contextlib
import statistics
import time

import torch
from torch import nn

from stablelearn.torch import watch


def mlp_case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 20, generator=g)
    y = x @ torch.randn(20, generator=g)
    model = nn.Sequential(nn.Linear(20, 25), nn.ReLU(), nn.Linear(25, 1))
    return model, x, y, lambda out, yb: nn.functional.mse_loss(out[:, 0], yb)


def cnn_case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 1, 16, 16, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 2),
    )  # fmt: skip
    return model, x, y, nn.functional.cross_entropy


def train(model, x, y, loss_fn, epochs, variant):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    handle = watch(model) if variant == "watch" else None
    context = (
        torch.autograd.detect_anomaly() if variant == "detect_anomaly" else contextlib.nullcontext()
    )
    start = time.perf_counter()
    with context:
        for _ in range(epochs):
            for i in range(0, len(x), 32):
                optimizer.zero_grad()
                loss = loss_fn(model(x[i : i + 32]), y[i : i + 32])
                loss.backward()
                optimizer.step()
                if handle is not None:
                    handle.loss(loss)
    if handle is not None:
        handle.sync()
        handle.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = ("plain", "watch", "detect_anomaly")
    for name, case in (("MLP 20-25-1", mlp_case), ("CNN 2x conv3x3", cnn_case)):
        model, x, y, loss_fn = case()
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        times: dict[str, list[float]] = {v: [] for v in variants}
        for variant in variants:  # warm-up
            model.load_state_dict(initial)
            train(model, x, y, loss_fn, 1, variant)
        for _ in range(args.repeats):
            for variant in variants:
                model.load_state_dict(initial)
                times[variant].append(train(model, x, y, loss_fn, args.epochs, variant))
        steps = args.epochs * -(-len(x) // 32)
        print(f"{name}: {steps} steps per run, {args.repeats} runs, {args.threads} thread(s)")
        base = times["plain"]
        for variant in variants:
            ours = times[variant]
            median, best = statistics.median(ours), min(ours)
            paired = statistics.median(o / b for o, b in zip(ours, base, strict=True))
            print(
                f"  {variant:15s} median {median * 1e3 / steps:7.3f} ms/step "
                f"(x{median / statistics.median(base):.3f})  best "
                f"{best * 1e3 / steps:7.3f} ms/step (x{best / min(base):.3f})  "
                f"paired x{paired:.3f}"
            )


if __name__ == "__main__":
    main()
