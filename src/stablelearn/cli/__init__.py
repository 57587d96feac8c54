"""The `stablelearn` command line: each command parses its options, calls one library
function, and prints. Errors caused by the user's input print one sentence and exit
with status 2; they never show a traceback."""

from stablelearn.cli import doctor, lesson, sweep, train  # noqa: F401  (register the commands)
from stablelearn.cli.app import app


@app.callback()
def main() -> None:
    """Make neural-network training problems visible, measurable and fixable."""


__all__ = ["app"]
