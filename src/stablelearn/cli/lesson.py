"""`stablelearn list`, `show`, `run` and `reproduce`: the lesson's experiments."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from stablelearn.cli.app import (
    DryRun,
    Epochs,
    LeakFree,
    Out,
    Quiet,
    Repeats,
    app,
    budget,
    check_at_least_one,
    console,
    friendly_errors,
    progress,
    use_compile_cache,
)
from stablelearn.errors import StablelearnError


def _overrides(repeats: int | None, epochs: int | None, leak_free: bool) -> dict[str, Any]:
    check_at_least_one(repeats=repeats, epochs=epochs)
    return {"repeats": repeats, "epochs": epochs, "fit_scalers_on": "train" if leak_free else None}


def _run_and_write(
    experiments: list, folder: Path, quiet: bool, combined: bool
) -> tuple[list, list, float]:
    from stablelearn.lesson.reproduce import run_and_write

    use_compile_cache()
    with progress(quiet) as bar:
        task = bar.add_task("training", total=len(experiments))

        def done(result: Any) -> None:
            bar.update(task, description=f"trained {result.experiment.id}")
            bar.advance(task)

        return run_and_write(experiments, folder, done, combined)


def _print_experiment(result: Any) -> None:
    from stablelearn.experiments.outputs import lesson_lines

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
    import tomllib

    from stablelearn.lesson.catalog import catalog
    from stablelearn.sweep.axes import axis_keys
    from stablelearn.sweep.spec import shipped_sweep_files

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
    from stablelearn.lesson.catalog import catalog_text
    from stablelearn.sweep.spec import shipped_sweep_text

    try:
        text = catalog_text(experiment_id)
    except StablelearnError:
        text = shipped_sweep_text(experiment_id)
    typer.echo(text, nl=False)


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
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Run one experiment and write its run folder (summary.json, figures, report)."""
    from stablelearn.experiments.runner import estimate_experiments
    from stablelearn.io import default_folder
    from stablelearn.lesson.catalog import resolve

    spec = resolve(experiment).override(**_overrides(repeats, epochs, leak_free))
    if budget(estimate_experiments([spec]), dry_run):
        return
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
    dry_run: DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Run every case study of the lesson, check its claims, write one combined report."""
    from stablelearn.experiments.runner import estimate_experiments
    from stablelearn.io import default_folder
    from stablelearn.lesson.catalog import catalog

    experiments = [e.override(**_overrides(repeats, epochs, leak_free)) for e in catalog()]
    if budget(estimate_experiments(experiments), dry_run):
        return
    folder = out or default_folder("reproduce")
    results, claims, wall_s = _run_and_write(experiments, folder, quiet, combined=True)
    if not quiet:
        for result in results:
            _print_experiment(result)
    _print_claims(claims)
    console.print(f"Wrote {folder} in {wall_s:.1f} s")
