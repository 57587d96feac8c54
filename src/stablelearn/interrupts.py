"""Ctrl-C on the command line: stop within a second, leave nothing half-written.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be;
raised inside JAX's garbage-collector callback it is printed and dropped, raised in
the middle of importing a C extension it can crash the process, and it never reaches
a compilation on another thread. So the command line's handler only records the
request. The code checks it where stopping is safe: between chunks of epochs
(stablelearn.engine.train) and while waiting for a background compilation
(`result`), raising `Stopped`, which unwinds like any interrupt (partial folders are
removed, the command prints one line and exits 130). Where no check comes within
GRACE_S seconds (importing, writing figures), a watchdog removes the partial folders
and lock files registered here and exits; a second Ctrl-C does that at once.
"""

import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TypeVar

INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT (128 + 2)
GRACE_S = 1.0  # seconds the program may take to stop by itself before it is made to
POLL_S = 0.05  # how often a wait for another thread looks at the request

_REQUESTED = threading.Event()
_ANNOUNCED = threading.Event()
_REMOVE_ON_EXIT: dict[Path, bool] = {}  # path -> remove only if it is an empty folder
_LOCK = threading.RLock()
Value = TypeVar("Value")


class Stopped(KeyboardInterrupt):
    """Work stopped at a safe point because Ctrl-C was pressed or a stop was asked."""


def requested() -> bool:
    """Whether the command line's handler saw Ctrl-C."""
    return _REQUESTED.is_set()


def check() -> None:
    """Raise Stopped if Ctrl-C was pressed: call it where stopping is safe."""
    if _REQUESTED.is_set():
        raise Stopped


def result(future: "Future[Value]") -> Value:
    """future.result(), giving up with Stopped soon after Ctrl-C."""
    while True:
        try:
            return future.result(timeout=POLL_S)
        except FutureTimeout:
            check()


@contextmanager
def removed_on_forced_exit(path: Path, only_if_empty: bool = False) -> Iterator[None]:
    """While the block runs, a forced exit removes `path` (a half-written folder, or
    the lock file of an output being written; `only_if_empty`: a folder that holds
    results saved earlier, such as a sweep's, goes only while it is empty)."""
    with _LOCK:
        _REMOVE_ON_EXIT[path] = only_if_empty
    try:
        yield
    finally:
        with _LOCK:
            _REMOVE_ON_EXIT.pop(path, None)


def announce(said: str = "nothing was written") -> None:
    """Print the one line an interrupted command ends with: 'Interrupted; <said>.'"""
    with _LOCK:
        if not _ANNOUNCED.is_set():
            _ANNOUNCED.set()
            print(f"Interrupted; {said}.", file=sys.stderr, flush=True)


def _force_exit() -> None:
    with _LOCK:
        for path, only_if_empty in _REMOVE_ON_EXIT.items():
            if only_if_empty:
                with contextlib.suppress(OSError):
                    path.rmdir()
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        announce()
        sys.stdout.flush()
        os._exit(INTERRUPTED)


def _on_sigint(number: int, frame: FrameType | None) -> None:
    if _REQUESTED.is_set():  # the second Ctrl-C: stop now
        _force_exit()
    _REQUESTED.set()
    watchdog = threading.Timer(GRACE_S, _force_exit)
    watchdog.daemon = True
    watchdog.start()


def install_handler() -> None:
    """Take over SIGINT for the command line (a library user keeps Python's handler,
    which raises KeyboardInterrupt; the engine stops at its next chunk of epochs)."""
    _REQUESTED.clear()
    _ANNOUNCED.clear()
    signal.signal(signal.SIGINT, _on_sigint)
