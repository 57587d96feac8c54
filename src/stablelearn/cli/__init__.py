"""The `stablelearn` command line: each command parses its options, calls one library
function, and prints. Errors caused by the user's input print one sentence and exit
with status 2; they never show a traceback."""

import os

from stablelearn.cli import doctor, lesson, sweep, train  # noqa: F401  (register the commands)
from stablelearn.cli.app import app, console, errors


@app.callback()
def main() -> None:
    """Make neural-network training problems visible, measurable and fixable."""
    # rich reads COLUMNS once, when the console is made; a command (or a test invoking
    # one in a long-lived process) may run with another width
    columns = os.environ.get("COLUMNS", "")
    for output in (console, errors):
        output.width = int(columns) if columns.isdigit() else None


__all__ = ["app"]
