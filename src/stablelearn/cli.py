"""The `stablelearn` command line: parse flags, call the library, print.

Errors caused by the user's input print one sentence and exit with status 2; they
never show a traceback.
"""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from stablelearn import data as data_module
from stablelearn.engine import Run, TrainConfig, train
from stablelearn.errors import StablelearnError
from stablelearn.io import write_json_atomic
from stablelearn.model import MLP, Dense
from stablelearn.optim import describe, make_optimizer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn StablelearnError into one red line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StablelearnError as err:
            errors.print(f"[red]Error:[/red] {err}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def spread(values: np.ndarray) -> str:
    """'median (p10 to p90)' over the finite values, the honest one-line summary."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "nan"
    p10, median, p90 = np.percentile(finite, [10, 50, 90])
    return f"{median:.4g} ({p10:.4g} to {p90:.4g})"


@app.callback()
def main() -> None:
    """Make neural-network training problems visible, measurable and fixable."""


@app.command("train")
@friendly_errors
def train_command(
    dataset: Annotated[
        str, typer.Option("--data", help="Built-in dataset: lesson-regression or lesson-circles.")
    ] = "lesson-regression",
    depth: Annotated[int, typer.Option(help="Number of hidden layers.")] = 1,
    units: Annotated[int, typer.Option(help="Units per hidden layer.")] = 25,
    activation: Annotated[
        str, typer.Option(help="Hidden activation (relu, tanh, sigmoid, elu, ...).")
    ] = "relu",
    init: Annotated[
        str,
        typer.Option("--init", help="Hidden kernel initializer (he_uniform, glorot_uniform, ...)."),
    ] = "he_uniform",
    optimizer: Annotated[str, typer.Option(help="sgd, adam or rmsprop.")] = "sgd",
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="Learning rate (default: the optimizer's Keras default)."),
    ] = None,
    momentum: Annotated[
        float | None, typer.Option(help="SGD/RMSprop momentum (the lesson: 0.9).")
    ] = None,
    clipnorm: Annotated[
        float | None, typer.Option(help="Clip each weight tensor's gradient norm (Keras clipnorm).")
    ] = None,
    clipvalue: Annotated[
        float | None, typer.Option(help="Clip gradient values to [-c, c] (Keras clipvalue).")
    ] = None,
    global_clipnorm: Annotated[
        float | None, typer.Option(help="Clip the norm of all gradients together.")
    ] = None,
    input_scaler: Annotated[
        str, typer.Option(help="none, standard, minmax, minmax(-1,1) or robust.")
    ] = "none",
    target_scaler: Annotated[
        str, typer.Option(help="Regression target scaler: none, standard, minmax, robust.")
    ] = "none",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 100,
    batch_size: Annotated[int, typer.Option(help="Minibatch size (Keras default 32).")] = 32,
    n_train: Annotated[
        int, typer.Option(help="The first N rows train, the rest test (the lesson: 500).")
    ] = 500,
    repeats: Annotated[
        int, typer.Option(help="Models trained with seeds seed..seed+repeats-1.")
    ] = 10,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write per-model results and timing here.")
    ] = None,
) -> None:
    """Train one configuration over several seeds and summarize it as the lesson does."""
    if repeats < 1:
        raise StablelearnError(f"--repeats must be at least 1, got {repeats}.")
    raw = data_module.builtin_dataset(dataset)
    prepared = data_module.prepare(raw, input_scaler, target_scaler, n_train=n_train)
    output = Dense(1, "sigmoid" if raw.task == "binary" else "linear")
    model = MLP.stack(raw.n_features, depth, units, activation, init, output)
    kwargs: dict[str, Any] = {
        "clipnorm": clipnorm,
        "clipvalue": clipvalue,
        "global_clipnorm": global_clipnorm,
    }
    if lr is not None:
        kwargs["learning_rate"] = lr
    if momentum is None and optimizer.lower() == "sgd":
        momentum = 0.9  # the lesson's SGD(lr=0.01, momentum=0.9), not Keras' 0.0
    if momentum is not None:
        kwargs["momentum"] = momentum
    opt = make_optimizer(optimizer, **kwargs)
    config = TrainConfig.for_task(raw.task, epochs=epochs, batch_size=batch_size)
    runs = [Run(model, opt, prepared, seed + i, config, {"repeat": i}) for i in range(repeats)]
    with console.status(f"Training {repeats} models..."):
        result = train(runs)

    metric = "accuracy" if raw.task == "binary" else "loss"
    console.print(
        f"[bold]{model.describe()}[/bold] {describe(opt)} on {prepared.describe()}, {epochs} epochs"
    )
    if repeats <= 10:
        table = Table("seed", f"train {metric}", f"test {metric}", "diverged at epoch")
        for record in result.records():
            epoch = record["diverged_epoch"]
            table.add_row(
                str(record["seed"]),
                f"{result.train_scores[metric][record['model']]:.4g}",
                f"{result.test_scores[metric][record['model']]:.4g}",
                "-" if epoch is None else str(epoch),
            )
        console.print(table)
    train_median = float(np.median(result.train_scores[metric]))
    test_median = float(np.median(result.test_scores[metric]))
    console.print(
        f"Train: {train_median:.3f}, Test: {test_median:.3f}   (median {metric} over {repeats} seeds)",
        highlight=False,
    )
    console.print(
        f"Test {metric}: median (p10 to p90) {spread(result.test_scores[metric])}; diverged {int(result.diverged.sum())}/{repeats}",
        highlight=False,
    )
    t = result.timing
    console.print(f"[dim]compile {t.compile_s:.2f} s, train {t.train_s:.2f} s[/dim]")
    if json_path is not None:
        write_json_atomic(
            json_path,
            {
                "model": model.describe(),
                "optimizer": describe(opt),
                "data": prepared.describe(),
                "epochs": epochs,
                "models": result.records(),
                "timing": {
                    "compile_s": t.compile_s,
                    "train_s": t.train_s,
                    "prepare_s": t.prepare_s,
                },
            },
        )
        console.print(f"Wrote {json_path}")
