"""`stablelearn doctor`: diagnose the user's data and model, try the repairs, prove which works."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stablelearn.cli.app import (
    DryRun,
    app,
    budget,
    console,
    friendly_errors,
    spinner,
    use_compile_cache,
)

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
        help="Your saved Keras model (.keras): its Dense layers, compiled optimizer and loss.",
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
_Out = Annotated[Path | None, typer.Option(help="Output folder (default runs/<timestamp>-doctor).")]
_Quiet = Annotated[bool, typer.Option(help="No progress display.")]


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
    out: _Out = None,
    dry_run: DryRun = False,
    quiet: _Quiet = False,
) -> None:
    """Diagnose your data and model, try the repairs that fit, and prove which one works."""
    from stablelearn.doctor.config import DoctorFlags, doctor_experiment
    from stablelearn.doctor.diagnose import doctor_estimate, run_doctor
    from stablelearn.doctor.report import summary_lines, write_doctor_files
    from stablelearn.io import atomic_folder, default_folder

    flags = DoctorFlags(
        depth, units, activation, init, optimizer, lr, momentum, clipnorm, clipvalue,
        input_scaler, target_scaler, epochs, batch_size, repeats, test_fraction,
    )  # fmt: skip
    experiment = doctor_experiment(data_path, target, task, config, flags, model, encoding)
    if budget(doctor_estimate(experiment), dry_run):
        return
    folder = out or default_folder("doctor")
    # opened before training: an unwritable or busy --out fails at once, not after it
    with atomic_folder(folder) as partial:
        use_compile_cache()
        with spinner(quiet, "Training your configuration and the repairs..."):
            diagnosis = run_doctor(experiment)
            write_doctor_files(diagnosis, partial, folder, data_path)
    for line in summary_lines(diagnosis):
        severity = line[1 : line.find("]")] if line.startswith("[") else ""
        style = {"critical": "red", "warning": "yellow"}.get(severity)
        console.print(escape(line), style=style, highlight=False)
    table = Table("configuration", "median", "p10 to p90", "diverged", "Holm p", "beats yours",
                  title=diagnosis.score_name)  # fmt: skip
    for s in diagnosis.scores:
        p = "-" if s.p_holm is None else f"{s.p_holm:.2g}"
        table.add_row(
            s.name, f"{s.median:.4g}", f"{s.p10:.4g} to {s.p90:.4g}", f"{s.diverged}/{s.n}", p,
            "yes" if s.beats_baseline else "",
        )  # fmt: skip
    console.print(table)
    console.print(f"Wrote {folder} (diagnosis.json, report.html, recommended.toml)")
