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
from rich.markup import escape
from rich.table import Table

from stablelearn import data as data_module
from stablelearn.engine import Run, TrainConfig, output_layer, train
from stablelearn.errors import StablelearnError
from stablelearn.io import write_json_atomic
from stablelearn.model import MLP
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
            errors.print(f"[red]Error:[/red] {escape(str(err))}", highlight=False)
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
    model = MLP.stack(raw.n_features, depth, units, activation, init, output_layer(raw.task))
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


def _progress(quiet: bool, total: int) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=True, disable=quiet,
    )  # fmt: skip


def _overrides(repeats: int | None, epochs: int | None, leak_free: bool) -> dict[str, Any]:
    for name, value in (("--repeats", repeats), ("--epochs", epochs)):
        if value is not None and value < 1:
            raise StablelearnError(f"{name} must be at least 1, got {value}.")
    return {"repeats": repeats, "epochs": epochs, "fit_scalers_on": "train" if leak_free else None}


def _run_and_write(
    experiments: list, folder: Path, quiet: bool, combined: bool
) -> tuple[list, list, float]:
    from stablelearn.reproduce import run_and_write

    with _progress(quiet, len(experiments)) as progress:
        task = progress.add_task("training", total=len(experiments))

        def done(result: Any) -> None:
            progress.update(task, description=f"trained {result.experiment.id}")
            progress.advance(task)

        return run_and_write(experiments, folder, done, combined)


def _print_experiment(result: Any) -> None:
    from stablelearn.report import lesson_lines

    e = result.experiment
    where = f"{e.id}, lesson {e.section}" if e.section else e.id
    console.print(f"[bold]{escape(e.title)}[/bold] [dim]({escape(where)})[/dim]")
    if result.variants:
        for line in lesson_lines(result):
            console.print(line, highlight=False)
        console.print(f"[dim]compile {result.compile_s:.2f} s, train {result.train_s:.2f} s[/dim]")


def _print_claims(claims: list) -> None:
    table = Table("claim", "verdict", title="The lesson's claims, checked")
    for claim in claims:
        color = (
            "green"
            if claim.verdict == "holds"
            else ("red" if claim.verdict.startswith("does not") else "yellow")
        )
        table.add_row(claim.claim, f"[{color}]{claim.verdict}[/{color}]")
    console.print(table)


@app.command("list")
@friendly_errors
def list_command() -> None:
    """List the shipped experiments, one line each, in lesson order."""
    from stablelearn.experiments import catalog

    table = Table("lesson", "title", "runs")
    table.add_column("id", no_wrap=True)  # the id is what users copy into `run`
    for e in catalog():
        runs = (
            "-"
            if e.kind == "data"
            else f"{len(e.variants)} x {e.repeats} x {e.config.epochs} epochs"
        )
        table.add_row(e.section, e.title, runs, e.id)
    console.print(table)
    _list_sweeps()


def _list_sweeps() -> None:
    import tomllib

    from stablelearn.sweep import axis_keys, shipped_sweep_files

    table = Table("title", "axes", title="Sweeps (`stablelearn sweep ID`)")
    table.add_column("id", no_wrap=True)
    for entry in shipped_sweep_files():
        raw = tomllib.loads(entry.read_text(encoding="utf-8"))
        table.add_row(raw.get("title", ""), " x ".join(axis_keys(raw)), raw.get("id", entry.name))
    console.print(table)


@app.command("show")
@friendly_errors
def show_command(
    experiment_id: Annotated[str, typer.Argument(help="An id from `stablelearn list`.")],
) -> None:
    """Print a shipped experiment or sweep file; copy it, edit it, and run your copy."""
    from stablelearn.experiments import catalog_text
    from stablelearn.sweep import shipped_sweep_text

    try:
        text = catalog_text(experiment_id)
    except StablelearnError:
        text = shipped_sweep_text(experiment_id)
    typer.echo(text, nl=False)


# options shared by `run` and `reproduce`
Repeats = Annotated[int | None, typer.Option(help="Override the number of repeats.")]
Epochs = Annotated[
    int | None, typer.Option(help="Override the number of epochs (for quick looks).")
]
Out = Annotated[Path | None, typer.Option(help="Run folder (default runs/<timestamp>-<name>).")]
LeakFree = Annotated[
    bool,
    typer.Option(
        help="Fit scalers on the training rows even where the lesson fits them on all rows."
    ),
]
Quiet = Annotated[bool, typer.Option(help="No progress bar.")]


@app.command("run")
@friendly_errors
def run_command(
    experiment: Annotated[
        str, typer.Argument(help="A shipped experiment id or a path to a .toml file.")
    ],
    repeats: Repeats = None,
    epochs: Epochs = None,
    out: Out = None,
    leak_free: LeakFree = False,
    quiet: Quiet = False,
) -> None:
    """Run one experiment and write its run folder (summary.json, figures, report)."""
    from stablelearn.experiments import resolve
    from stablelearn.report import default_folder

    spec = resolve(experiment).override(**_overrides(repeats, epochs, leak_free))
    folder = out or default_folder(spec.id)
    (result,), claims, wall_s = _run_and_write([spec], folder, quiet, combined=False)
    _print_experiment(result)
    if claims:
        _print_claims(claims)
    console.print(f"Wrote {folder} in {wall_s:.1f} s")


@app.command("reproduce")
@friendly_errors
def reproduce_command(
    repeats: Repeats = None,
    epochs: Epochs = None,
    out: Out = None,
    leak_free: LeakFree = False,
    quiet: Quiet = False,
) -> None:
    """Run every case study of the lesson, check its claims, write one combined report."""
    from stablelearn.experiments import catalog
    from stablelearn.report import default_folder

    experiments = [e.override(**_overrides(repeats, epochs, leak_free)) for e in catalog()]
    folder = out or default_folder("reproduce")
    results, claims, wall_s = _run_and_write(experiments, folder, quiet, combined=True)
    if not quiet:
        for result in results:
            _print_experiment(result)
    _print_claims(claims)
    console.print(f"Wrote {folder} in {wall_s:.1f} s")


@app.command("sweep")
@friendly_errors
def sweep_command(
    sweep: Annotated[str, typer.Argument(help="A shipped sweep id or a path to a .toml file.")],
    repeats: Repeats = None,
    epochs: Epochs = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Sweep folder (default runs/sweep-<id>); a rerun there resumes."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Retrain every group, ignoring groups saved by an earlier run.")
    ] = False,
    backend: Annotated[
        str, typer.Option(help="local (this process) or ray (needs the optional ray extra).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join ('auto', 'ray://host:10001'); default: a local Ray."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Local backend: groups trained side by side, one thread each (default: one per core)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="List the cells and compiled groups, train nothing.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Train every cell of a sweep (axes x repeats) and compare the cells with honest statistics."""
    from stablelearn.sweep import plan_groups, resolve_sweep
    from stablelearn.sweep_report import write_sweep_outputs
    from stablelearn.sweep_run import BACKENDS, ray_module, run_sweep

    if backend not in BACKENDS:
        raise StablelearnError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if address is not None and backend != "ray":
        raise StablelearnError("--address applies to --backend ray only.")
    if backend == "ray":
        ray_module()  # a missing extra is reported before any work starts
    for name, value in (("--repeats", repeats), ("--epochs", epochs), ("--workers", workers)):
        if value is not None and value < 1:
            raise StablelearnError(f"{name} must be at least 1, got {value}.")
    if workers is not None and backend != "local":
        raise StablelearnError("--workers applies to the local backend; Ray uses its CPUs.")
    spec = resolve_sweep(sweep, repeats=repeats, epochs=epochs)
    folder = out or Path("runs") / f"sweep-{spec.id}"
    if folder.exists() and not folder.is_dir():
        raise StablelearnError(f"Output path {folder} is a file; choose a folder with --out.")
    if dry_run:
        groups = plan_groups(spec)
        console.print(
            f"{len(spec.cells)} cells x {spec.repeats} repeats in {len(groups)} compiled groups:"
        )
        for cell in spec.cells:
            console.print(f"  {escape(cell.label)}", highlight=False)
        return
    with _progress(quiet, len(spec.cells)) as progress:
        task = progress.add_task("training groups", total=None)

        def on_group(record: Any, done: int, total: int) -> None:
            progress.update(task, total=total, completed=done, description="training groups")

        result = run_sweep(spec, folder, backend, address, fresh, on_group, workers=workers)
    summary = write_sweep_outputs(result, folder)
    _print_sweep(summary)
    console.print(f"Wrote {folder} in {result.wall_s:.1f} s")


def _print_sweep(summary: dict[str, Any]) -> None:
    from stablelearn.sweep_report import _notable, _timing_line

    m = summary["metric"]
    table = Table("cell", "diverged", "success [95% CI]", f"median {m['label']} [95% CI]",
                  title=summary["title"])  # fmt: skip
    for cell in summary["cells"]:
        s, metric = cell["success"], cell["metric"]
        median = "-" if metric["median"] is None else (
            f"{metric['median']:.4g} [{metric['ci_low']:.4g}, {metric['ci_high']:.4g}]"
        )  # fmt: skip
        rate = f"{s['k']}/{s['n']} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"
        table.add_row(escape(cell["label"]), f"{cell['diverged']}/{cell['n']}", rate, median)
    console.print(table)
    console.print(f"Success: {escape(m['success'])}. Baseline: {escape(summary['baseline'])}.")
    for sentence in _notable(summary):
        console.print(f"- {escape(sentence)}", highlight=False)
    console.print(f"[dim]{escape(_timing_line(summary))}[/dim]")


def _doctor_raw(
    data_path: Path, target: str, task: str | None, config: Path | None, flags: dict[str, Any]
) -> dict[str, Any]:
    """The user's configuration as an experiment table: an experiment file and/or flags
    over the lesson's MLP and SGD, with the output layer the task needs. Flags change
    only what they name."""
    from stablelearn.experiments import load_file, load_mapping, settings_only, variant_tables
    from stablelearn.tables import load_table

    dataset = load_table(data_path, target, task).dataset
    where = {"dataset": str(data_path.resolve()), "target": target, "task": dataset.task}
    if config is not None:
        if not config.is_file():
            raise StablelearnError(f"No configuration file at {config}.")
        base = {
            k: v
            for k, v in load_file(config).raw.items()
            if k not in ("n_train", "kind", "figures")
        }
    else:
        base = {
            "model": {
                "depth": 1,
                "units": 25,
                "activation": "relu",
                "kernel_initializer": "he_uniform",
            },
            "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9},
        }
    model = dict(base.get("model", {}))
    if "output" not in model:
        output = output_layer(dataset.task, int(dataset.y.max()) + 1)
        model["output"] = {"units": output.units, "activation": output.activation}
    resolved = load_mapping(
        {
            "id": "doctor",
            **{k: v for k, v in base.items() if k != "variants"},
            **where,
            "model": model,
        },
        config.name if config else "doctor",
    )
    tables = variant_tables(resolved.variants[0])
    hidden = tables["model"]["hidden"]
    template = (
        dict(hidden[0])
        if hidden
        else {"units": 25, "activation": "relu", "kernel_initializer": "he_uniform"}
    )
    changes = {
        "units": flags["units"],
        "activation": flags["activation"],
        "kernel_initializer": flags["init"],
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        template |= changes
        hidden = [{**layer, **changes} for layer in hidden]
    if flags["depth"] is not None:
        hidden = [dict(template) for _ in range(flags["depth"])]
    tables["model"]["hidden"] = hidden
    optimizer = tables["optimizer"]
    if flags["optimizer"] is not None and flags["optimizer"].lower() != optimizer["name"]:
        optimizer = {"name": flags["optimizer"].lower()}
    for key in ("learning_rate", "momentum", "clipnorm", "clipvalue"):
        if flags[key] is not None:
            if key in ("clipnorm", "clipvalue"):
                optimizer = {
                    k: v
                    for k, v in optimizer.items()
                    if k not in ("clipnorm", "clipvalue", "global_clipnorm")
                }
            optimizer[key] = flags[key]
    tables["optimizer"] = optimizer
    for key in ("input_scaler", "target_scaler"):
        if flags[key] is not None:
            tables["data"][key] = flags[key]
    raw = settings_only(base)
    raw |= {
        "id": base.get("id", f"doctor-{data_path.stem}"),
        "title": base.get("title", f"Your configuration on {data_path.name}"),
        **where,
        **tables,
        "figures": ["learning_curves", "gradients"],
    }
    for key in ("epochs", "batch_size", "repeats", "test_fraction"):
        if flags[key] is not None:
            raw[key] = flags[key]
    raw.setdefault("repeats", 10)
    return raw


@app.command("doctor")
@friendly_errors
def doctor_command(
    data_path: Annotated[Path, typer.Argument(metavar="DATA", help="A CSV, TSV or Parquet file.")],
    target: Annotated[str, typer.Option(help="The column to predict.")],
    task: Annotated[
        str | None,
        typer.Option(help="regression, binary or multiclass (default: from the target)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="An experiment TOML with your model and training settings.")
    ] = None,
    depth: Annotated[int | None, typer.Option(help="Hidden layers (default 1).")] = None,
    units: Annotated[int | None, typer.Option(help="Units per hidden layer (default 25).")] = None,
    activation: Annotated[
        str | None, typer.Option(help="Hidden activation (default relu).")
    ] = None,
    init: Annotated[
        str | None, typer.Option("--init", help="Hidden kernel initializer (default he_uniform).")
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd (default), adam or rmsprop.")] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Learning rate (default 0.01 for SGD).")
    ] = None,
    momentum: Annotated[float | None, typer.Option(help="Momentum (default 0.9 for SGD).")] = None,
    clipnorm: Annotated[float | None, typer.Option(help="Keras clipnorm (per tensor).")] = None,
    clipvalue: Annotated[float | None, typer.Option(help="Keras clipvalue.")] = None,
    input_scaler: Annotated[
        str | None, typer.Option(help="none (default), standard, minmax or robust.")
    ] = None,
    target_scaler: Annotated[
        str | None, typer.Option(help="none (default), standard, minmax or robust.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default 100).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default 32).")] = None,
    repeats: Annotated[
        int | None, typer.Option(help="Seeds per configuration (default 10).")
    ] = None,
    test_fraction: Annotated[
        float | None, typer.Option(help="Held-out share of the rows (default 0.3).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default runs/<timestamp>-doctor).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Diagnose your data and model, try the repairs that fit, and prove which one works."""
    from stablelearn.doctor import run_doctor
    from stablelearn.doctor_report import summary_lines, write_doctor
    from stablelearn.experiments import load_mapping
    from stablelearn.report import default_folder

    flags = {
        "depth": depth, "units": units, "activation": activation, "init": init, "optimizer": optimizer,
        "learning_rate": lr, "momentum": momentum, "clipnorm": clipnorm, "clipvalue": clipvalue,
        "input_scaler": input_scaler, "target_scaler": target_scaler, "epochs": epochs,
        "batch_size": batch_size, "repeats": repeats, "test_fraction": test_fraction,
    }  # fmt: skip
    for name in ("repeats", "epochs", "batch_size", "depth", "units"):
        value = flags[name]
        if value is not None and value < (0 if name == "depth" else 1):
            raise StablelearnError(
                f"--{name.replace('_', '-')} must be at least {0 if name == 'depth' else 1}, got {value}."
            )
    raw = _doctor_raw(data_path, target, task, config, flags)
    experiment = load_mapping(raw, config.name if config else "doctor")
    folder = out or default_folder("doctor")
    with (
        console.status("Training your configuration and the repairs...", spinner="dots")
        if not quiet
        else _null()
    ):
        diagnosis = run_doctor(experiment)
        write_doctor(diagnosis, folder, data_path)
    for line in summary_lines(diagnosis):
        severity = line[1 : line.find("]")] if line.startswith("[") else ""
        style = {"critical": "red", "warning": "yellow"}.get(severity)
        console.print(escape(line), style=style, highlight=False)
    table = Table(
        "configuration",
        "median",
        "p10 to p90",
        "diverged",
        "Holm p",
        "beats yours",
        title=diagnosis.score_name,
    )
    for s in diagnosis.scores:
        p = "-" if s.p_holm is None else f"{s.p_holm:.2g}"
        table.add_row(
            s.name,
            f"{s.median:.4g}",
            f"{s.p10:.4g} to {s.p90:.4g}",
            f"{s.diverged}/{s.n}",
            p,
            "yes" if s.beats_baseline else "",
        )
    console.print(table)
    console.print(f"Wrote {folder} (diagnosis.json, report.html, recommended.toml)")


def _null() -> Any:
    import contextlib

    return contextlib.nullcontext()
