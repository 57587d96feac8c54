"""Shared, session-scoped fixtures: JAX compilation dominates small tests, so tests
reuse a handful of datasets, model specs and ensemble sizes to hit the same compiled
programs.

tests/keras/ runs Keras on its JAX backend unless KERAS_BACKEND says otherwise, and is
skipped where Keras (the keras extra) is not installed.

The command line turns on JAX's persistent compilation cache in the user's cache folder.
The tests never write there: they point it at a folder of the system's temporary
directory (here, for this process, the commands it starts and every pytest-xdist
worker), so that a program compiled by one worker or command is loaded by the others.
tests/core/test_compile_cache.py points it at folders of its own."""

import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import stablelearn as sl

os.environ.setdefault("KERAS_BACKEND", "jax")
TEST_CACHE = Path(tempfile.gettempdir()) / f"stablelearn-tests-{os.getuid()}" / "jax"
os.environ["STABLELEARN_COMPILE_CACHE"] = str(TEST_CACHE)
sl.enable_compile_cache()
collect_ignore = [] if importlib.util.find_spec("keras") else ["keras"]


@pytest.fixture(scope="session")
def regression() -> sl.Dataset:
    return sl.lesson_regression()


@pytest.fixture(scope="session")
def scaled_target(regression: sl.Dataset) -> sl.PreparedData:
    """The lesson's data with a standardized target (section 2.1.2.2)."""
    return sl.prepare(regression, target_scaler="standard", n_train=500)


@pytest.fixture(scope="session")
def unscaled(regression: sl.Dataset) -> sl.PreparedData:
    """The lesson's raw data: the target's spread is in the hundreds."""
    return sl.prepare(regression, n_train=500)


@pytest.fixture(scope="session")
def lesson_mlp() -> sl.MLP:
    """The lesson's regression MLP: 20 inputs, Dense(25, relu, he_uniform), Dense(1)."""
    return sl.MLP(20, (sl.Dense(25, "relu", "he_uniform"),), sl.Dense(1))


@pytest.fixture(scope="session")
def lesson_sgd() -> sl.SGD:
    return sl.SGD(learning_rate=0.01, momentum=0.9)


# two compiled groups (depth 1 and 2) of 2 cells x 3 repeats: small, but enough to
# interrupt between groups; sweep tests share it to share its two compiled programs
# widths differ, so the cells cannot be packed into one program: two groups
TWO_GROUPS = {"model.units": [4, 8], "optimizer.learning_rate": [0.01, 0.001]}


def small_sweep(**changes) -> dict:
    """A sweep small enough for unit tests: 3 epochs, 3 repeats, 2x2 cells in 1 group.

    Tests that train sweeps start from this mapping and change as little as possible, so
    that they reuse the same few compiled programs.
    """
    raw = {
        "id": "small",
        "title": "A small sweep",
        "dataset": "lesson-regression",
        "epochs": 3,
        "repeats": 3,
        "telemetry": False,
        "data": {"target_scaler": "standard"},
        "model": {
            "depth": 1,
            "units": 4,
            "activation": "relu",
            "kernel_initializer": "he_uniform",
            "output": {"units": 1},
        },
        "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9},
        "axes": {
            "optimizer.learning_rate": [0.01, 0.001],
            "data.input_scaler": ["none", "standard"],
        },
    }
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


# another process in the middle of writing an output folder: it holds the folder's lock
# and its partial folder until the test lets it go, then fails, removing the partial
_WRITER = """
import sys
from pathlib import Path
from stablelearn.io import atomic_folder
with atomic_folder(Path(sys.argv[1])) as partial:
    (partial / "half.json").write_text("{")
    print(partial, flush=True)
    sys.stdin.readline()
    raise SystemExit(1)
"""


@contextlib.contextmanager
def another_writer(target: Path) -> Iterator[Path]:
    """A live process writing `target` (see stablelearn.io.atomic_folder); yields its
    partial folder."""
    source = str(Path(sl.__file__).resolve().parents[1])
    env = os.environ | {"PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    ) as writer:  # fmt: skip
        try:
            partial = writer.stdout.readline().strip()
            assert partial, "the writer process did not start"
            yield Path(partial)
        finally:
            writer.communicate("done\n", timeout=30)
