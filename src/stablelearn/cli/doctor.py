"""`stablelearn doctor`: diagnose the user's data and model, try the repairs, prove which works."""

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stablelearn.cli.app import (
    DryRun,
    app,
    budget,
    console,
    friendly_errors,
    use_compile_cache,
)

if TYPE_CHECKING:
    from stablelearn.doctor.diagnose import Stage
    from stablelearn.experiments import Experiment

_DataPath = Annotated[
    Path,
    typer.Argument(
        metavar="DATA",
        help="A .csv, .tsv or .txt table (comma, semicolon, tab or pipe delimited; may be "
        "compressed: .gz, .bz2, .zip, .xz) or a .parquet file.",
    ),
]
_Target = Annotated[str, typer.Option(help="The column to predict.")]
_Encoding = Annotated[
    str, typer.Option(help="The text encoding of a CSV/TSV file, e.g. latin-1 or cp1252.")
]
_Task = Annotated[
    str | None,
    typer.Option(help="regression, binary or multiclass (default: from the target)."),
]
_Config = Annotated[
    Path | None, typer.Option(help="An experiment TOML with your model and training settings.")
]
_Model = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="Your saved Keras model (.keras: its Dense layers, compiled optimizer and loss) "
        "or PyTorch model (.pt: an nn.Sequential MLP, or a dict with its architecture, "
        "optimizer and loss; see the README).",
    ),
]
_Depth = Annotated[int | None, typer.Option(help="Hidden layers (default 1).")]
_Units = Annotated[int | None, typer.Option(help="Units per hidden layer (default 25).")]
_Activation = Annotated[str | None, typer.Option(help="Hidden activation (default relu).")]
_Init = Annotated[
    str | None, typer.Option("--init", help="Hidden kernel initializer (default he_uniform).")
]
_Optimizer = Annotated[str | None, typer.Option(help="sgd (default), adam or rmsprop.")]
_Lr = Annotated[float | None, typer.Option("--lr", help="Learning rate (default 0.01 for SGD).")]
_Momentum = Annotated[float | None, typer.Option(help="Momentum (default 0.9 for SGD).")]
_Clipnorm = Annotated[float | None, typer.Option(help="Keras clipnorm (per tensor).")]
_Clipvalue = Annotated[float | None, typer.Option(help="Keras clipvalue.")]
_InputScaler = Annotated[
    str | None, typer.Option(help="none (default), standard, minmax or robust.")
]
_TargetScaler = Annotated[
    str | None, typer.Option(help="none (default), standard, minmax or robust.")
]
_Epochs = Annotated[int | None, typer.Option(help="Epochs (default 100).")]
_BatchSize = Annotated[int | None, typer.Option(help="Batch size (default 32).")]
_Repeats = Annotated[int | None, typer.Option(help="Seeds per configuration (default 10).")]
_TestFraction = Annotated[
    float | None, typer.Option(help="Held-out share of the rows (default 0.3).")
]
_MaxRows = Annotated[
    int,
    typer.Option(
        help="Train and score the diagnosis on a random sample of at most this many rows of "
        "each split, to keep it to minutes on large tables; 0 uses every row.",
    ),
]
_Out = Annotated[Path | None, typer.Option(help="Output folder (default runs/<timestamp>-doctor).")]
_Quiet = Annotated[bool, typer.Option(help="No progress display.")]
_Budget = Annotated[
    float,
    typer.Option(
        "--budget",
        metavar="<seconds>",
        help="Seconds the search for a fix may take (your configuration always trains): "
        "more buys more seeds for close calls and more steps of combined repairs.",
    ),
]


@contextlib.contextmanager
def stages(quiet: bool) -> Iterator[Callable[["Stage | None"], None]]:
    """A spinner naming the training stage under way, its estimate and elapsed time;
    each finished stage is printed with the time it took, so a log shows where the
    time went. A stage of None means training is over (the report is being written)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from stablelearn.engine.budget import format_seconds

    # a spinner needs a terminal; elsewhere (a log, a pipe) the printed lines suffice
    display = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True, disable=quiet or not console.is_terminal,
    )  # fmt: skip
    current: list[tuple[Stage, float, int]] = []

    def on_stage(stage: "Stage | None") -> None:
        if current:
            done, start, task = current.pop()
            display.remove_task(task)
            if not quiet:
                took = format_seconds(time.perf_counter() - start)
                console.print(
                    f"Trained {done.what} ({done.estimate.models:,} models) in {took}.",
                    highlight=False,
                )
        text = stage.describe() if stage is not None else "Writing the report"
        task = display.add_task(escape(text) + "...", total=None)
        if stage is not None:
            current.append((stage, time.perf_counter(), task))

    with display:
        yield on_stage


def _program_start() -> float:
    """When this program started (stablelearn.entry), or now where the command was called
    some other way (tests, an embedding program): a time.perf_counter() reading."""
    from stablelearn import entry

    return entry.STARTED if entry.STARTED is not None else time.perf_counter()


def _users_experiment(
    data_path: Path, target: str, task: str | None, encoding: str, config: Path | None,
    model: Path | None, *flag_values: object,
) -> "Experiment":  # fmt: skip
    """The user's configuration from the data, model and optimizer options that doctor
    and lr-find share (stablelearn.doctor.config), in DoctorFlags' field order."""
    from stablelearn.doctor.config import DoctorFlags, doctor_experiment

    flags = DoctorFlags(*flag_values)  # type: ignore[arg-type]
    return doctor_experiment(data_path, target, task, config, flags, model, encoding)


@app.command("doctor")
@friendly_errors
def doctor_command(
    data_path: _DataPath,
    target: _Target,
    task: _Task = None,
    encoding: _Encoding = "utf-8",
    config: _Config = None,
    model: _Model = None,
    depth: _Depth = None,
    units: _Units = None,
    activation: _Activation = None,
    init: _Init = None,
    optimizer: _Optimizer = None,
    lr: _Lr = None,
    momentum: _Momentum = None,
    clipnorm: _Clipnorm = None,
    clipvalue: _Clipvalue = None,
    input_scaler: _InputScaler = None,
    target_scaler: _TargetScaler = None,
    epochs: _Epochs = None,
    batch_size: _BatchSize = None,
    repeats: _Repeats = None,
    test_fraction: _TestFraction = None,
    max_rows: _MaxRows = 20_000,  # doctor.sample.MAX_ROWS, not imported: it imports JAX
    budget_s: _Budget = 60.0,  # doctor.search.DEFAULT_BUDGET_S
    out: _Out = None,
    dry_run: DryRun = False,
    quiet: _Quiet = False,
) -> None:
    """Diagnose your data and model, try the repairs that fit, and prove which one works."""
    started = _program_start()  # the budget counts from here (see doctor.search.Budget)
    from stablelearn.doctor.diagnose import doctor_estimate, run_doctor
    from stablelearn.doctor.report import summary_lines, write_doctor_files
    from stablelearn.doctor.sample import row_sample
    from stablelearn.io import atomic_folder, default_folder

    experiment = _users_experiment(
        data_path, target, task, encoding, config, model, depth, units, activation, init,
        optimizer, lr, momentum, clipnorm, clipvalue, input_scaler, target_scaler, epochs,
        batch_size, repeats, test_fraction,
    )  # fmt: skip
    if not budget_s > 0:
        from stablelearn.errors import ConfigError

        raise ConfigError(f"--budget must be a positive number of seconds, got {budget_s:g}.")
    sample = row_sample(experiment, max_rows)
    if sample.sampled and not quiet:  # said again with the verdict
        console.print(escape(sample.describe()), highlight=False)
    if budget(doctor_estimate(experiment, max_rows), dry_run, always=not quiet):
        return
    folder = out or default_folder("doctor")
    # opened before training: an unwritable or busy --out fails at once, not after it
    with atomic_folder(folder) as partial:
        use_compile_cache()
        with stages(quiet) as on_stage:
            diagnosis = run_doctor(experiment, max_rows, on_stage, budget_s, started)
            on_stage(None)
            write_doctor_files(diagnosis, partial, folder, data_path)
    for line in summary_lines(diagnosis):
        severity = line[1 : line.find("]")] if line.startswith("[") else ""
        style = {"critical": "red", "warning": "yellow"}.get(severity)
        console.print(escape(line), style=style, highlight=False)
    table = Table("step", "configuration", "median", "p10 to p90", "diverged",
                  "better/worse/same", "Holm p", "beats", title=diagnosis.score_name)  # fmt: skip
    for s in diagnosis.scores:
        p = "-" if s.p_holm is None else f"{s.p_holm:.2g}"
        record = "-" if s.wins is None else f"{s.wins}/{s.losses}/{s.ties}"
        table.add_row(
            str(s.step), s.name, f"{s.median:.4g}", f"{s.p10:.4g} to {s.p90:.4g}",
            f"{s.diverged}/{s.n}", record, p,
            "recommended" if s.recommended else ("yes" if s.beats else ""),
        )  # fmt: skip
    console.print(table)
    console.print(f"Wrote {folder} (diagnosis.json, report.html, recommended.toml)")


_MinRate = Annotated[float, typer.Option("--min", help="Smallest learning rate of the grid.")]
_MaxRate = Annotated[float, typer.Option("--max", help="Largest learning rate of the grid.")]
_Points = Annotated[
    int, typer.Option(help="Learning rates in the grid, log-spaced from --min to --max.")
]
_LrFindOut = Annotated[
    Path | None, typer.Option(help="Output folder (default runs/<timestamp>-lr-find).")
]


@app.command("lr-find")
@friendly_errors
def lr_find_command(
    data_path: _DataPath,
    target: _Target,
    task: _Task = None,
    encoding: _Encoding = "utf-8",
    config: _Config = None,
    model: _Model = None,
    depth: _Depth = None,
    units: _Units = None,
    activation: _Activation = None,
    init: _Init = None,
    optimizer: _Optimizer = None,
    lr: _Lr = None,
    momentum: _Momentum = None,
    clipnorm: _Clipnorm = None,
    clipvalue: _Clipvalue = None,
    input_scaler: _InputScaler = None,
    target_scaler: _TargetScaler = None,
    epochs: _Epochs = None,
    batch_size: _BatchSize = None,
    repeats: _Repeats = None,
    test_fraction: _TestFraction = None,
    min_rate: _MinRate = 1e-5,  # doctor.range_test.DEFAULT_MIN (not imported: it imports NumPy)
    max_rate: _MaxRate = 1.0,  # DEFAULT_MAX
    points: _Points = 11,  # DEFAULT_POINTS: half-decade steps
    max_rows: _MaxRows = 20_000,  # doctor.sample.MAX_ROWS
    out: _LrFindOut = None,
    dry_run: DryRun = False,
    quiet: _Quiet = False,
) -> None:
    """A learning-rate range test across seeds: every rate and seed in one compiled
    program; the usable range with its spread, and a recommended rate."""
    from stablelearn.doctor.lr_find import FIGURE_NAME, JSON_NAME, plan_lr_find, write_lr_find_files
    from stablelearn.doctor.range_test import format_rate, rate_grid
    from stablelearn.doctor.sample import row_sample
    from stablelearn.io import atomic_folder, default_folder

    rates = rate_grid(min_rate, max_rate, points)
    experiment = _users_experiment(
        data_path, target, task, encoding, config, model, depth, units, activation, init,
        optimizer, lr, momentum, clipnorm, clipvalue, input_scaler, target_scaler, epochs,
        batch_size, repeats, test_fraction,
    )  # fmt: skip
    sample = row_sample(experiment, max_rows)
    if sample.sampled and not quiet:
        console.print(escape(sample.describe()), highlight=False)
    plan = plan_lr_find(experiment, rates, max_rows)
    if budget(plan.planned.estimate, dry_run, always=not quiet):
        return
    folder = out or default_folder("lr-find")
    with atomic_folder(folder) as partial:
        use_compile_cache()
        with stages(quiet) as on_stage:
            found = plan.train(lambda what, n, estimate: on_stage(_stage(what, n, estimate)))
            on_stage(None)
            write_lr_find_files(found, partial)
    test = found.test
    span, best, recommended = test.usable_range, test.best, test.recommended
    table = Table("rate", "median", "p25 to p75", "min to max", "diverged", "",
                  title=f"final held-out {test.loss_name}, {len(test.seeds)} seeds per rate")  # fmt: skip
    for i, r in enumerate(test.rates):
        spread = r.finite_spread()
        usable = span is not None and span[0] <= i <= span[1]
        marks = [
            "recommended" if recommended == r.learning_rate else "",
            "best" if i == best else "",
            "usable" if usable and i != best and recommended != r.learning_rate else "",
            "yours" if test.user_rate and abs(r.learning_rate / test.user_rate - 1) < 1e-3 else "",
        ]
        table.add_row(
            format_rate(r.learning_rate), f"{r.median:.4g}",
            "-" if spread is None else f"{spread[1]:.4g} to {spread[2]:.4g}",
            "-" if spread is None else f"{spread[0]:.4g} to {spread[3]:.4g}",
            f"{r.diverged}/{r.n}", ", ".join(m for m in marks if m),
        )  # fmt: skip
    console.print(table)
    console.print(escape(test.summary()), highlight=False)
    console.print(f"Wrote {folder} ({JSON_NAME}, {FIGURE_NAME})", highlight=False)


def _stage(what: str, configurations: int, estimate: object) -> "Stage":
    from stablelearn.doctor.diagnose import Stage

    return Stage(what, configurations, estimate)  # type: ignore[arg-type]
