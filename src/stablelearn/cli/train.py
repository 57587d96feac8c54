"""`stablelearn train`: one configuration from flags over several seeds."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stablelearn import defaults
from stablelearn.cli.app import (
    DryRun,
    app,
    budget,
    console,
    friendly_errors,
    spread,
    use_compile_cache,
)

_Dataset = Annotated[
    str, typer.Option("--data", help="Built-in dataset: lesson-regression or lesson-circles.")
]
_Depth = Annotated[int, typer.Option(help="Number of hidden layers.")]
_Units = Annotated[int, typer.Option(help="Units per hidden layer.")]
_Activation = Annotated[
    str, typer.Option(help="Hidden activation (relu, tanh, sigmoid, elu, ...).")
]
_Init = Annotated[
    str,
    typer.Option("--init", help="Hidden kernel initializer (he_uniform, glorot_uniform, ...)."),
]
_Optimizer = Annotated[
    str | None, typer.Option(help="sgd (default), adam or rmsprop.", show_default=False)
]
_Model = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="A saved Keras model (.keras) instead of --depth/--units/--activation/--init; its compiled optimizer unless flags change it.",
    ),
]
_Lr = Annotated[
    float | None,
    typer.Option("--lr", help="Learning rate (default: the optimizer's Keras default)."),
]
_Momentum = Annotated[float | None, typer.Option(help="SGD/RMSprop momentum (the lesson: 0.9).")]
_Clipnorm = Annotated[
    float | None, typer.Option(help="Clip each weight tensor's gradient norm (Keras clipnorm).")
]
_Clipvalue = Annotated[
    float | None, typer.Option(help="Clip gradient values to [-c, c] (Keras clipvalue).")
]
_GlobalClipnorm = Annotated[
    float | None, typer.Option(help="Clip the norm of all gradients together.")
]
_InputScaler = Annotated[str, typer.Option(help="none, standard, minmax, minmax(-1,1) or robust.")]
_TargetScaler = Annotated[
    str, typer.Option(help="Regression target scaler: none, standard, minmax, robust.")
]
_Epochs = Annotated[int, typer.Option(help="Training epochs.")]
_BatchSize = Annotated[int, typer.Option(help="Minibatch size (Keras default 32).")]
_NTrain = Annotated[
    int, typer.Option(help="The first N rows train, the rest test (the lesson: 500).")
]
_Repeats = Annotated[int, typer.Option(help="Models trained with seeds seed..seed+repeats-1.")]
_Seed = Annotated[int, typer.Option(help="First seed.")]
_JsonPath = Annotated[
    Path | None, typer.Option("--json", help="Write per-model results and timing here.")
]


@app.command("train")
@friendly_errors
def train_command(
    dataset: _Dataset = defaults.BUILTIN_DATASET,
    depth: _Depth = defaults.DEPTH,
    units: _Units = defaults.HIDDEN_LAYER["units"],
    activation: _Activation = defaults.HIDDEN_LAYER["activation"],
    init: _Init = defaults.HIDDEN_LAYER["kernel_initializer"],
    optimizer: _Optimizer = None,
    lr: _Lr = None,
    momentum: _Momentum = None,
    clipnorm: _Clipnorm = None,
    clipvalue: _Clipvalue = None,
    global_clipnorm: _GlobalClipnorm = None,
    input_scaler: _InputScaler = "none",
    target_scaler: _TargetScaler = "none",
    epochs: _Epochs = defaults.EPOCHS,
    batch_size: _BatchSize = defaults.BATCH_SIZE,
    n_train: _NTrain = defaults.N_TRAIN,
    repeats: _Repeats = defaults.REPEATS,
    seed: _Seed = 0,
    model: _Model = None,
    json_path: _JsonPath = None,
    dry_run: DryRun = False,
) -> None:
    """Train one configuration over several seeds and summarize it as the lesson does."""
    from stablelearn.engine.budget import estimate_runs
    from stablelearn.experiments.from_flags import TrainFlags, flag_runs, train_from_flags
    from stablelearn.io import check_writable_file, write_json_atomic
    from stablelearn.optim import describe

    flags = TrainFlags(
        dataset, depth, units, activation, init, optimizer, lr, momentum, clipnorm, clipvalue,
        global_clipnorm, input_scaler, target_scaler, epochs, batch_size, n_train, repeats, seed,
        model,
    )  # fmt: skip
    if json_path is not None:
        check_writable_file(json_path)  # before training, not after it
    if budget(estimate_runs(flag_runs(flags)[3]), dry_run):
        return
    use_compile_cache()
    with console.status(f"Training {repeats} models..."):
        trained = train_from_flags(flags)
    result, metric = trained.result, trained.metric
    console.print(
        f"[bold]{trained.model.describe()}[/bold] {describe(trained.optimizer)} on {trained.data.describe()}, {epochs} epochs"
    )
    if repeats <= 10:
        _print_seeds(result, metric)
    train_median, test_median = trained.medians()
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
        write_json_atomic(json_path, trained.to_json())
        console.print(f"Wrote {json_path}")


def _print_seeds(result, metric: str) -> None:
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
