"""Ahead-of-time compilation with a bounded cache of compiled programs."""

import time
from collections.abc import Callable
from typing import Any

import jax

from stablelearn.engine.exported import compile_exported

_COMPILED: dict[Any, Any] = {}
# Each compiled program keeps 300-1,000 memory mappings of JIT code (more for deeper
# models) until it is released, and Linux allows a process 65,530 mappings: a sweep over
# 120 architectures crashed in LLVM ("Cannot allocate memory") after 109 programs. So the
# cache is cleared, with JAX's own caches that also hold the programs, every
# MAX_CACHED_PROGRAMS training programs (the small initializer programs barely count);
# programs still in use stay valid.
MAX_CACHED_PROGRAMS = 32


def compiled(jitted: Any, static: Any, args: tuple, large: bool = False) -> tuple[Callable, float]:
    """`jitted` compiled ahead of time for `static` and these argument shapes, and the
    seconds compilation took (0 when an earlier call already compiled it). `large`
    marks a training program, the kind that counts towards MAX_CACHED_PROGRAMS."""
    leaves, treedef = jax.tree.flatten(args)
    key = (jitted, static, treedef, tuple((leaf.shape, leaf.dtype) for leaf in leaves), large)
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    if large and _cached_large_programs() >= MAX_CACHED_PROGRAMS:
        release_compiled()
    start = time.perf_counter()
    # training programs go through their exported form when the compilation cache is on
    program = compile_exported(jitted.__wrapped__, static, args) if large else None
    if program is None:
        program = jitted.lower(static, *args).compile()
    _COMPILED[key] = program
    return program, time.perf_counter() - start


def _cached_large_programs() -> int:
    return sum(1 for key in _COMPILED if key[-1])


def release_compiled() -> None:
    """Drop every cached compiled program (see MAX_CACHED_PROGRAMS) so its memory can go."""
    _COMPILED.clear()
    jax.clear_caches()
