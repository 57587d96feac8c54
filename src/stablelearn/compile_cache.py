"""JAX's persistent compilation cache, kept in a per-user folder.

Compiling the engine's programs is most of a short run's time, and every new process
compiles the same programs again. With the cache on, JAX writes each compiled program
to disk and the next process that compiles the same program (same code, shapes, JAX
version and machine) loads it instead. The command line turns it on for every command
that trains; library users call `stablelearn.enable_compile_cache()` once, before
training. JAX is imported only when the cache is turned on.

The folder is $XDG_CACHE_HOME/stablelearn/jax (~/.cache/stablelearn/jax when that is
unset). The environment variable STABLELEARN_COMPILE_CACHE=0 turns the cache off, and a
path as its value puts the cache there instead.

Several processes may share the folder: the size bound below makes JAX take a file lock
(the filelock package, a JAX dependency) around every read and write of an entry, so a
process never reads an entry that another is still writing. Without a size bound JAX
0.10 writes entries in place without a lock, and a reader can see a partly written file
(it warns and compiles instead; see jax/_src/lru_cache.py).
"""

import os
import warnings
from pathlib import Path

ENV_VAR = "STABLELEARN_COMPILE_CACHE"
_OFF = ("0", "false", "no", "off")
_DEFAULT = ("", "1", "true", "yes", "on")
# Programs that compile faster than this are not written. Measured on the 2-core
# development machine: loading an entry takes 2-14 ms; the engine's weight-initializer
# programs compile in 0.25-0.3 s and a training program in 1-2 s, so JAX's default (1 s)
# would keep only the latter, while eager operations' tiny programs (10-30 ms) would
# save little and add files.
MIN_COMPILE_SECONDS = 0.1
# Oldest-read entries are deleted beyond this size; it also enables JAX's file lock.
MAX_CACHE_BYTES = 2 * 1024**3


def stablelearn_cache_root() -> Path:
    """$XDG_CACHE_HOME/stablelearn, or ~/.cache/stablelearn (the XDG base directory
    rule: a relative XDG_CACHE_HOME is ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "stablelearn"


def default_cache_folder() -> Path:
    """The compilation cache's folder: <stablelearn_cache_root>/jax."""
    return stablelearn_cache_root() / "jax"


def cache_folder_from_env() -> Path | None:
    """The folder STABLELEARN_COMPILE_CACHE asks for: None when it turns the cache off,
    the path it names, or the per-user default when it is unset (or 1)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return None
    if value.lower() in _DEFAULT:
        return default_cache_folder()
    return Path(value).expanduser()


def enable_compile_cache(folder: str | os.PathLike[str] | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in `folder` (default: as
    STABLELEARN_COMPILE_CACHE says, else the per-user folder); returns the folder, or
    None when the environment turns the cache off or the folder cannot be created. Call
    it before the first training: JAX reads the folder when it first compiles, and keeps
    it for the process."""
    path = Path(folder).expanduser() if folder is not None else cache_folder_from_env()
    if path is None or not _created(path):
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    # -1: no size floor (JAX's 0 lets it pick one per filesystem)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)
    return path


def _created(path: Path) -> bool:
    """Whether the cache folder exists or could be made; otherwise JAX would warn at
    every compilation, so one warning says that this process compiles without it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(f"No compilation cache ({err}); compiling as usual.", stacklevel=3)
        return False
    return True
