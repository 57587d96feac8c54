"""`stablelearn sweep`: every cell of a sweep, trained and compared with honest statistics."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from stablelearn.cli.app import (
    Epochs,
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
from stablelearn.errors import Interrupted, StablelearnError

_Sweep = Annotated[str, typer.Argument(help="A shipped sweep id or a path to a .toml file.")]
_Out = Annotated[
    Path | None,
    typer.Option(help="Sweep folder (default runs/sweep-<id>); a rerun there resumes."),
]
_Fresh = Annotated[
    bool, typer.Option(help="Retrain every group, ignoring groups saved by an earlier run.")
]
_Backend = Annotated[
    str, typer.Option(help="local (this process) or ray (needs the optional ray extra).")
]
_Address = Annotated[
    str | None,
    typer.Option(help="Ray cluster to join ('auto', 'ray://host:10001'); default: a local Ray."),
]
_Workers = Annotated[
    int | None,
    typer.Option(
        help="Local backend: groups trained side by side, one thread each (default: one per core)."
    ),
]
_DryRun = Annotated[
    bool,
    typer.Option(
        help="List the cells and compiled groups with the estimated time and memory; train nothing."
    ),
]


@app.command("sweep")
@friendly_errors
def sweep_command(
    sweep: _Sweep,
    repeats: Repeats = None,
    epochs: Epochs = None,
    out: _Out = None,
    fresh: _Fresh = False,
    backend: _Backend = "local",
    address: _Address = None,
    workers: _Workers = None,
    dry_run: _DryRun = False,
    quiet: Quiet = False,
) -> None:
    """Train every cell of a sweep (axes x repeats) and compare the cells with honest statistics."""
    from stablelearn.sweep.plan import plan_groups, sweep_estimate
    from stablelearn.sweep.report import write_sweep_outputs
    from stablelearn.sweep.run import check_backend, default_workers, run_sweep, sweep_parts
    from stablelearn.sweep.spec import resolve_sweep
    from stablelearn.sweep.store import open_sweep_folder

    check_backend(backend, address, None)
    check_at_least_one(repeats=repeats, epochs=epochs, workers=workers)
    check_backend(backend, address, workers)
    spec = resolve_sweep(sweep, repeats=repeats, epochs=epochs)
    folder = out or Path("runs") / f"sweep-{spec.id}"
    if folder.exists() and not folder.is_dir():
        raise StablelearnError(f"Output path {folder} is a file; choose a folder with --out.")
    groups = plan_groups(spec, sweep_parts(backend, address, workers))
    parallel = 1 if backend == "ray" else (workers or default_workers())
    if dry_run:
        console.print(
            f"{len(spec.cells)} cells x {spec.repeats} repeats in {len(groups)} compiled groups:"
        )
        for cell in spec.cells:
            console.print(f"  {escape(cell.label)}", highlight=False)
    if budget(sweep_estimate(groups, parallel), dry_run):
        return
    saved = {"done": 0, "total": 0}
    with open_sweep_folder(folder):  # locked until the reports are written
        use_compile_cache()
        with progress(quiet) as bar:
            task = bar.add_task("training groups", total=None)

            def on_group(record: Any, done: int, total: int) -> None:
                saved.update(done=done, total=total)
                bar.update(task, total=total, completed=done, description="training groups")

            try:
                result = run_sweep(
                    spec, folder, backend, address, fresh, on_group, workers=workers,
                    on_notice=lambda sentence: bar.console.print(escape(sentence), style="yellow"),
                    groups=groups,
                )  # fmt: skip
            except KeyboardInterrupt:
                if not saved["done"]:
                    raise Interrupted("no group had finished, so nothing was saved") from None
                raise Interrupted(
                    f"{saved['done']} of {saved['total']} groups are saved in {folder}; run "
                    "the same command to resume"
                ) from None
        summary = write_sweep_outputs(result, folder)
    _print_sweep(summary)
    console.print(f"Wrote {folder} in {result.wall_s:.1f} s")


def _print_sweep(summary: dict[str, Any]) -> None:
    from stablelearn.sweep.names import success_title
    from stablelearn.sweep.report import headline, notable_sentences, timing_line

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
    console.print(f"Success: {escape(success_title(m))}. Baseline: {escape(summary['baseline'])}.")
    for sentence in notable_sentences(summary):
        console.print(f"- {escape(sentence)}", highlight=False)
    console.print(f"[dim]{escape(timing_line(summary))}[/dim]")
    console.print(f"[bold]{escape(headline(summary).title)}[/bold]", highlight=False)
