"""Files written so that a reader never sees half of one, and TOML files read with one
clear error: atomic files, atomic folders, strict JSON."""

import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from stablelearn import interrupts
from stablelearn.errors import ConfigError


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call `write` on a temporary file in the same folder, then rename it over `path`."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{target} is a folder; give a file name to write to.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically (see write_atomic)."""
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """JSON with NaN/Inf written as null, which strict JSON readers require."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2) + "\n")


def json_safe(value: Any) -> Any:
    """`value` with NaN and Inf replaced by None (JSON null), recursively."""
    if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON inside a folder that is itself written atomically (see atomic_folder)."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def default_folder(name: str, root: Path = Path("runs")) -> Path:
    """runs/<timestamp>-<name>: where a run goes unless the user says --out."""
    return root / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{name}"


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; rename it to `target` on success and
    delete it on any error or interrupt."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"Output path {target} is a file; choose a folder with --out.")
    if target.exists() and any(target.iterdir()):
        raise ConfigError(
            f"Output folder {target} already exists and is not empty; choose another --out."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        with interrupts.partial_folder(partial):
            yield partial
            if target.exists():
                target.rmdir()
            partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def read_toml(path: Path, kind: str = "experiment") -> dict[str, Any]:
    """A TOML file as a dict; a missing, binary or malformed file is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"No {kind} file at {path}.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path.name}: not valid TOML ({err}).") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not a text file.") from None
