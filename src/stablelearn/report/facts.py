""" "What was run" facts every report states: the command, the versions, the date, the
machine's JAX backend."""

import platform
import shlex
import sys
from datetime import datetime
from pathlib import Path


def command_line() -> str | None:
    """The stablelearn command this process runs, as a user would type it; None when
    stablelearn is used as a library (the report then says what was trained, not how)."""
    program = Path(sys.argv[0]).name if sys.argv else ""
    if program == "stablelearn" or (
        program == "__main__.py" and Path(sys.argv[0]).parent.name == "stablelearn"
    ):
        return shlex.join(["stablelearn", *sys.argv[1:]])
    return None


def run_facts(command: str | None = None) -> tuple[tuple[str, str], ...]:
    """(label, inline Markdown) pairs: command, stablelearn, JAX and its backend, Python,
    date. `command` defaults to this process's command line."""
    from stablelearn import __version__

    command = command if command is not None else command_line()
    pairs = [("command", f"`{command}`")] if command else []
    pairs += [
        ("stablelearn", __version__),
        ("JAX", _jax()),
        ("Python", f"{platform.python_version()} on {platform.system()} {platform.machine()}"),
        ("date", datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
    ]
    return tuple(pairs)


def _jax() -> str:
    if "jax" not in sys.modules:  # a report that trained nothing does not import JAX
        return "not used"
    import jax

    devices = jax.devices()
    return f"{jax.__version__}, {len(devices)} {devices[0].platform.upper()} device(s)"
