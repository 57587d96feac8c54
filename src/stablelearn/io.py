"""Files written so that a reader never sees half of one, and TOML files read with one
clear error: atomic files, atomic folders, output locks, strict JSON.

An output path is checked before any training (a path that cannot be created is one
sentence, not a traceback after the work) and locked while it is written: a second
process writing the same path stops at once instead of crashing half-way. Partial
folders left by killed runs are removed by the next run into the same folder.
"""

import contextlib
import functools
import json
import os
import re
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

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

PARTIAL = ".partial-"
# `.<target name>.partial-<8 characters from tempfile.mkdtemp>`, as atomic_folder names it
_PARTIAL_NAME = re.compile(rf"\.(?P<target>.+){re.escape(PARTIAL)}[a-z0-9_]{{8}}")


def cannot_write(path: Path, err: OSError) -> ConfigError:
    """The one sentence for an output path the OS refuses, with the OS's reason."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    reason = f"{blocker} is a file, not a folder" if blocker else (err.strerror or str(err))
    return ConfigError(f"Cannot write to {path}: {reason}.")


def check_writable_file(path: str | os.PathLike) -> Path:
    """Check before the work that `path` can be written (see write_atomic), by creating
    and removing a temporary file beside it; folders made for it are removed again."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{target} is a folder; give a file name to write to.")
    missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    try:
        fd, tmp = _temporary_file(target)
        os.close(fd)
        Path(tmp).unlink()
    finally:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
    return target


@functools.cache
def _umask() -> int:
    """The process's umask (read once: reading it means setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_file(target: Path) -> tuple[int, str]:
    """A new temporary file beside `target` (its parents created), or a ConfigError. It
    gets the mode a plain new file gets (0644 under umask 022), not mkstemp's 0600, so
    every file a run writes is readable alike."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
        return fd, name
    except OSError as err:
        raise cannot_write(target, err) from None


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call `write` on a temporary file in the same folder, then rename it over `path`."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{target} is a folder; give a file name to write to.")
    fd, tmp = _temporary_file(target)
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


# --- output locks -------------------------------------------------------------------------


def lock_path(target: Path) -> Path:
    """The lock file of an output path: hidden, beside it, named after it."""
    return target.parent / f".{target.name}.lock"


def _acquire(path: Path) -> Callable[[], None] | None:
    """Lock `path` for this process and return the function that releases it, or None
    when another process (or another call in this one) holds it. Raises OSError when the
    lock file cannot be created.

    On Unix the lock is an flock on the file, and releasing removes the file while still
    holding it, so no lock file outlives its writer. A process that opened the file just
    before the removal finds, once its flock succeeds, that the name now points elsewhere
    or nowhere, and locks the current file instead (the check filelock does not make,
    which is why filelock keeps its files). Elsewhere filelock locks, and removes its file.
    """
    if fcntl is None:
        import filelock

        lock = filelock.FileLock(path, timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            return None
        return lock.release
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _still_named(path, fd):
            return functools.partial(_release, path, fd)
        os.close(fd)


def _still_named(path: Path, fd: int) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def _release(path: Path, fd: int) -> None:
    path.unlink(missing_ok=True)  # before unlocking: see _acquire
    os.close(fd)


@contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Hold `target`'s lock (see lock_path) while the caller writes it; a path that
    another process is writing, or that cannot be created, is one ConfigError."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        release = _acquire(lock_path(target))
    except OSError as err:
        raise cannot_write(target, err) from None
    if release is None:
        raise ConfigError(
            f"Another stablelearn process is writing to {target}; wait for it or choose another --out."
        )
    try:
        with interrupts.removed_on_forced_exit(lock_path(target)):
            yield
    finally:
        release()


def remove_stale_partials(parent: Path) -> list[Path]:
    """Delete the partial folders (see atomic_folder) that killed runs left in `parent`,
    with their lock files, and return them.

    A partial folder exists only while its target's lock is held, so one whose lock
    this process can take belongs to no live process; one whose lock is held is left.
    """
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = _PARTIAL_NAME.fullmatch(entry.name)
        if match is None or not entry.is_dir():
            continue
        try:
            release = _acquire(lock_path(parent / match["target"]))
        except OSError:
            continue
        if release is None:
            continue
        try:
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            release()
        removed.append(entry)
    return removed


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`, holding `target`'s lock; rename it to
    `target` on success and delete it on any error or interrupt.

    Open it before the work: a path that cannot be created, is full or is being written
    by another process then fails at once, and the lock covers the whole work."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"Output path {target} is a file; choose a folder with --out.")
    remove_stale_partials(target.parent)
    with output_lock(target):
        if target.exists() and any(target.iterdir()):
            raise ConfigError(
                f"Output folder {target} already exists and is not empty; choose another --out."
            )
        try:
            partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{PARTIAL}"))
            partial.chmod(0o777 & ~_umask())  # a plain folder's mode, not mkdtemp's 0700
        except OSError as err:
            raise cannot_write(target, err) from None
        try:
            with interrupts.removed_on_forced_exit(partial):
                yield partial
                _move_into_place(partial, target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise


def _move_into_place(partial: Path, target: Path) -> None:
    """Rename the finished `partial` folder to `target`, which may exist only empty; if
    something else wrote there meanwhile (a writer that ignores the lock), its files
    stay and this run is dropped with one sentence."""
    try:
        if target.exists():
            target.rmdir()
        partial.rename(target)
    except OSError as err:
        if target.is_dir() and any(target.iterdir()):
            raise ConfigError(
                f"{target} was written by another process while this one ran; its files were "
                "kept and this run's were not; choose another --out."
            ) from None
        raise cannot_write(target, err) from None


@contextmanager
def locked_folder(folder: Path) -> Iterator[Path]:
    """Create `folder` if needed and hold its lock while the caller writes into it in
    several steps: a folder that is re-entered, such as a sweep's, which an atomic
    rename would not fit. Checks first that files can be created in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"Output path {folder} is a file; choose a folder with --out.")
    remove_stale_partials(folder.parent)
    with output_lock(folder):
        created = not folder.exists()
        try:
            folder.mkdir(exist_ok=True)
        except OSError as err:
            raise cannot_write(folder, err) from None
        check_writable_file(folder / "probe")
        try:
            with interrupts.removed_on_forced_exit(folder, only_if_empty=True):
                yield folder
        except BaseException:
            if created:  # stopped before anything was saved: leave no empty folder
                with contextlib.suppress(OSError):
                    folder.rmdir()
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
