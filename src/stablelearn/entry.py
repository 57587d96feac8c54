"""The `stablelearn` program's entry point, kept apart from the CLI package so that
Ctrl-C is handled from the first moment, even while the commands are being imported
(see stablelearn.interrupts)."""

import os
import sys
import time

from stablelearn.interrupts import INTERRUPTED, install_handler

# when the program started (time.perf_counter), before its commands were imported: the
# doctor's time budget counts from here; None where the CLI runs without this entry point
STARTED: float | None = None


def main() -> None:
    """Run the command line. After Ctrl-C it exits at once with status 130, even if a
    compilation is still running on a background thread (XLA cannot stop one; Python
    would wait for it at exit, or crash tearing it down)."""
    global STARTED
    STARTED = time.perf_counter()
    install_handler()
    try:
        from stablelearn.cli import app

        app()
    except SystemExit as done:
        if done.code == INTERRUPTED:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        raise
