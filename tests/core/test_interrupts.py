"""Ctrl-C on the command line: checks at safe points, waits that give up, a watchdog."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from stablelearn import interrupts, scheduler


@pytest.fixture
def requested():
    interrupts._REQUESTED.set()
    yield
    interrupts._REQUESTED.clear()


def test_check_raises_stopped_only_after_a_request(requested):
    with pytest.raises(interrupts.Stopped):
        interrupts.check()
    interrupts._REQUESTED.clear()
    interrupts.check()


def test_waiting_for_another_thread_gives_up_soon_after_a_request(requested):
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(release.wait)
        start = time.perf_counter()
        with pytest.raises(interrupts.Stopped):
            interrupts.result(future)
        assert time.perf_counter() - start < 0.5
        release.set()


def test_compile_ahead_does_not_wait_for_a_preparation_in_progress(requested):
    release = threading.Event()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        scheduler.compile_ahead([1, 2], lambda item: release.wait(5), lambda i, r: r, print)
    assert time.perf_counter() - start < 1.0
    release.set()


WATCHDOG = """
import os, sys, time
from pathlib import Path
from stablelearn import interrupts
interrupts.install_handler()
partial = Path(sys.argv[1])
partial.mkdir()
with interrupts.removed_on_forced_exit(partial):
    print("ready", flush=True)
    time.sleep(30)  # no safe point: the watchdog must end it
"""


def test_the_watchdog_removes_partial_folders_and_exits_130_within_grace(tmp_path):
    partial = tmp_path / ".out.partial-x"
    process = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(partial)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout.readline().strip() == "ready"
    assert partial.is_dir()
    start = time.perf_counter()
    os.kill(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == interrupts.INTERRUPTED
    assert time.perf_counter() - start < interrupts.GRACE_S + 1.0
    assert err.strip() == "Interrupted; nothing was written."
    assert not partial.exists()
