"""The Typer application, the consoles, and what every command shares: one-line errors,
progress displays, and option declarations used by several commands."""

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from stablelearn import interrupts
from stablelearn.errors import Interrupted, StablelearnError
from stablelearn.interrupts import INTERRUPTED


class OneLineUsageErrors(TyperGroup):
    """A mistyped flag or value (`--epochs abc`, an unknown option or command) gets one
    line and click's exit status (2), not typer's usage-and-box panel: the same form as
    every other bad input. Errors are caught where click raises them, parsing the group's
    arguments and invoking a command; --help and a missing command still print help."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


# the click that typer raises from: recent typer vendors its own copy of click
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


@contextlib.contextmanager
def _one_line_usage_errors() -> Any:
    try:
        yield
    except _ClickException as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # click >= 8.2: prints the help
            raise
        message = " ".join(err.format_message().split())
        message += "" if message.endswith((".", "?", "!")) else "."
        print_error(message)
        raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=OneLineUsageErrors,
    add_completion=False,
    no_args_is_help=True,
    help="""The `stablelearn` command line: parse flags, call the library, print.

Errors caused by the user's input print one sentence and exit with status 2; they
never show a traceback.
""",
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def print_error(message: str) -> None:
    """The one line that a bad input ends with."""
    errors.print(f"[red]Error:[/red] {escape(message)}", highlight=False)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn StablelearnError into one red line and exit status 2, and Ctrl-C into one
    line and exit status 130 (partial output folders are removed as the interrupt
    unwinds; see stablelearn.io.atomic_folder)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StablelearnError as err:
            print_error(str(err))
            raise typer.Exit(2) from None
        except KeyboardInterrupt as err:
            said = str(err) if isinstance(err, Interrupted) else ""
            interrupts.announce(said or "nothing was written")
            raise typer.Exit(INTERRUPTED) from None

    return wrapper


def spread(values: np.ndarray) -> str:
    """'median (p10 to p90)' over the finite values, the honest one-line summary."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "nan"
    p10, median, p90 = np.percentile(finite, [10, 50, 90])
    return f"{median:.4g} ({p10:.4g} to {p90:.4g})"


def progress(quiet: bool) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=True, disable=quiet,
    )  # fmt: skip


def use_compile_cache() -> None:
    """Turn on JAX's persistent compilation cache (stablelearn.compile_cache) before a
    command trains, so that a second run loads its programs instead of compiling them.
    Training commands call it once their input is checked (it imports JAX, 1-2 s, which
    a one-line error should not wait for); `list`, `show` and --help never do."""
    from stablelearn.compile_cache import enable_compile_cache

    enable_compile_cache()


LONG_RUN_S = 60.0  # a plan estimated to train longer than this says so before it starts


def budget(estimate: Any, dry_run: bool, always: bool = False) -> bool:
    """Check a plan's estimate (stablelearn.engine.budget) before any work: refuse one
    that cannot fit in memory (one sentence), print it for --dry-run, and say so when a
    run will be long (or, with `always`, whatever its length). Returns True when the
    command should stop here (--dry-run)."""
    from stablelearn.engine.budget import check_memory

    check_memory(estimate)
    if dry_run:
        console.print(f"Would train {estimate.describe()}.", highlight=False)
        return True
    if estimate.seconds > LONG_RUN_S:
        console.print(
            f"[yellow]This will train {escape(estimate.describe())}; Ctrl-C stops it.[/yellow]",
            highlight=False,
        )
    elif always:
        console.print(f"This will train {escape(estimate.describe())}.", highlight=False)
    return False


def check_at_least_one(**values: int | None) -> None:
    """--repeats 0 and the like: one sentence naming the option."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise StablelearnError(f"--{name} must be at least 1, got {value}.")


# options shared by several commands
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
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Print what would be trained, with its estimated time and memory."
    ),
]
