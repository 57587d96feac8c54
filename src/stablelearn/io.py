"""Atomic file output: a reader sees the old file or the complete new one, never half."""

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

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
