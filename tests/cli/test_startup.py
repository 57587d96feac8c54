"""`stablelearn --help`, `list` and `show` start without the heavy libraries.

Importing JAX, scikit-learn, SciPy, matplotlib, pandas or Optax costs 0.1-1.6 s each;
none of them is needed to read and print the shipped files, so these commands must not
import them (they took 3-4 s when they did). Each check runs in a fresh interpreter,
because this test process has imported everything already. No wall-clock assertions:
what is checked is which modules were loaded.
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("jax", "sklearn", "scipy", "matplotlib", "pandas", "optax")

# the data path of `list` (every shipped experiment validated, every sweep file read)
# and of `show`, then the commands themselves, as `stablelearn` runs them
LIST_AND_SHOW = """
import tomllib
from stablelearn.cli import app
from stablelearn.lesson.catalog import catalog, catalog_text
from stablelearn.sweep.axes import axis_keys
from stablelearn.sweep.spec import shipped_sweep_files, shipped_sweep_text

experiments = catalog()
assert experiments and all(e.id for e in experiments)
for entry in shipped_sweep_files():
    axis_keys(tomllib.loads(entry.read_text(encoding="utf-8")))
catalog_text(experiments[1].id)
shipped_sweep_text("scalers")
for args in (["list"], ["show", "relu-5"], ["show", "scalers"]):
    app(args, standalone_mode=False)
"""
HELP = """
from stablelearn.cli import app
try:
    app(["--help"])
except SystemExit:
    pass
"""
REPORT = "\nimport sys\nprint(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))\n"


def loaded_heavy_modules(code: str) -> list[str]:
    """The heavy top-level modules that `code` leaves imported, in a fresh interpreter."""
    script = "import json\n" + code + REPORT.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("code", [LIST_AND_SHOW, HELP], ids=["list-and-show", "help"])
def test_commands_that_only_read_files_import_no_heavy_library(code):
    assert loaded_heavy_modules(code) == []


def test_import_stablelearn_imports_no_heavy_library():
    assert loaded_heavy_modules("import stablelearn, stablelearn.experiments") == []


@pytest.mark.slow
def test_the_library_still_loads_them_when_used():
    """The lazy names resolve: training-side names import what they need."""
    code = "import stablelearn as sl\nsl.Adam, sl.lesson_regression().x, sl.train\n"
    assert {"jax", "optax", "sklearn"} <= set(loaded_heavy_modules(code))
