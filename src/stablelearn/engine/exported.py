"""Training programs kept on disk as exported StableHLO, so a later process skips tracing.

JAX's persistent compilation cache (stablelearn.compile_cache) saves XLA's compiling,
but finding an entry needs the program's HLO, so every process traces and lowers
each program again: 0.4 s for the lesson's small models and 1.3 s for 20 ReLU layers,
Python work that holds the GIL while figures are drawn on another thread. Here each
training program is also saved as `jax.export` output; a process that finds it
deserializes it (milliseconds), and XLA's executable then comes from the compilation
cache as before. The program is compiled from the exported module in both cases, so a
cold and a warm process run the same executable (tests/core/test_exported.py checks
the numbers against a direct compile bit for bit).

An entry is named by everything that decides the program: the stablelearn source (a
hash of its files, so an upgrade or an edit never reuses an old program), JAX's
version, the backend, the static Program and the argument shapes. It lives next to the
compilation cache (its `programs` subfolder) and is on exactly when that cache is;
files are written atomically, so processes may share the folder. Anything that cannot
be exported or read falls back to compiling as usual.
"""

import functools
import hashlib
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from stablelearn import io

FOLDER = "programs"  # inside the compilation cache's folder (JAX's eviction skips it)
MAX_ENTRIES = 400  # oldest entries are removed beyond this many (about 0.1 MB each)
_FORMAT = 1


@functools.cache
def source_fingerprint() -> str:
    """A hash of every stablelearn source file: programs traced from other code differ."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def folder() -> Path | None:
    """Where exported programs are kept: None while the compilation cache is off."""
    cache = jax.config.jax_compilation_cache_dir
    return None if not cache else Path(cache) / FOLDER


def entry_name(static: Any, args: tuple) -> str:
    leaves, treedef = jax.tree.flatten(args)
    shapes = [(tuple(leaf.shape), str(leaf.dtype)) for leaf in leaves]
    text = repr(
        (
            _FORMAT,
            source_fingerprint(),
            jax.__version__,
            jax.default_backend(),
            static,
            treedef,
            shapes,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def compile_exported(function: Callable, static: Any, args: tuple) -> Callable | None:
    """`function(static, *args)` compiled through an exported module (read from disk, or
    exported and written there), or None when the cache is off or exporting fails."""
    where = folder()
    if where is None:
        return None
    path = where / f"{entry_name(static, args)}.bin"
    leaves, treedef = jax.tree.flatten(args)
    loaded = _read(path)
    if loaded is None:
        try:
            loaded = _export(function, static, treedef, leaves)
        except Exception as err:  # an unexportable program still trains, compiled directly
            warnings.warn(f"Compiling without export ({err})", stacklevel=2)
            return None
        _write(path, loaded)
    exported, out_tree = loaded
    executable = jax.jit(exported.call).lower(*leaves).compile()

    def run(*call_args: Any) -> Any:
        return jax.tree.unflatten(out_tree, executable(*jax.tree.leaves(call_args)))

    return run


def _export(function: Callable, static: Any, treedef: Any, leaves: list) -> tuple[Any, Any]:
    """The program over flat arrays (optax's state types have no export serialization;
    the output's tree structure is pickled beside it instead)."""
    out_trees = []

    def flat(*flat_args: Any) -> list:
        out, out_tree = jax.tree.flatten(function(static, *jax.tree.unflatten(treedef, flat_args)))
        out_trees.append(out_tree)
        return out

    exported = jax.export.export(jax.jit(flat))(*leaves)
    return exported, out_trees[0]


def _read(path: Path) -> tuple[Any, Any] | None:
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        module, out_tree = pickle.loads(blob)
        return jax.export.deserialize(module), out_tree
    except Exception:  # written by another version or damaged: export it again
        return None


def _write(path: Path, loaded: tuple[Any, Any]) -> None:
    exported, out_tree = loaded
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = pickle.dumps((exported.serialize(), out_tree))
        io.write_atomic(path, lambda handle: handle.write(blob))
        _trim(path.parent)
    except OSError:
        pass  # a read-only or full cache only costs the next process its tracing


def _trim(where: Path) -> None:
    entries = sorted(where.glob("*.bin"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-MAX_ENTRIES]:
        old.unlink(missing_ok=True)
