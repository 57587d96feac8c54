"""Training programs saved as exported StableHLO: a later process deserializes them
instead of tracing, and the numbers are those of a direct compile, bit for bit."""

from pathlib import Path

import jax
import numpy as np
import pytest

import stablelearn as sl
from stablelearn.engine import exported
from stablelearn.engine.program import Program, jitted_train, train_program
from stablelearn.engine.train import group_inputs

CONFIG = sl.TrainConfig(epochs=3, loss="binary_crossentropy", metrics=("accuracy",))


@pytest.fixture(scope="module")
def program_and_args():
    data = sl.prepare(sl.lesson_circles(), input_scaler="minmax(-1,1)", n_train=200)
    runs = [
        sl.Run(
            sl.MLP.stack(2, depth, 4, "relu", "he_uniform", output=sl.Dense(1, "sigmoid")),
            sl.Adam(0.01, clipnorm=1.0),  # optax states of several kinds in the arguments
            data,
            seed,
            CONFIG,
        )
        for depth in (1, 2)
        for seed in range(2)
    ]
    program = Program.for_runs(runs)
    inputs, _ = group_inputs(runs, program, None)
    rows = inputs.batches.next(inputs.chunk_epochs)
    args = inputs.as_args(inputs.params, inputs.state, inputs.opt_state, rows, 0)
    return program, args


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(exported, "folder", lambda: tmp_path / exported.FOLDER)
    return tmp_path / exported.FOLDER


def _equal(a, b) -> bool:
    same = jax.tree.map(lambda x, y: np.array_equal(x, y, equal_nan=True), a, b)
    return jax.tree.structure(a) == jax.tree.structure(b) and all(jax.tree.leaves(same))


@pytest.mark.slow
def test_an_exported_program_trains_bit_for_bit_as_a_direct_compile(program_and_args, cache):
    program, args = program_and_args
    direct = jitted_train.lower(program, *args).compile()(*args)
    first = exported.compile_exported(train_program, program, args)
    assert len(list(cache.glob("*.bin"))) == 1
    assert _equal(first(*args), direct)


@pytest.mark.slow
def test_a_saved_program_is_read_back_without_tracing(program_and_args, cache, monkeypatch):
    program, args = program_and_args
    expected = exported.compile_exported(train_program, program, args)(*args)

    def no_tracing(*_):
        raise AssertionError("traced again")

    monkeypatch.setattr(exported, "_export", no_tracing)
    assert _equal(exported.compile_exported(train_program, program, args)(*args), expected)


@pytest.mark.slow
def test_a_damaged_entry_is_exported_again(program_and_args, cache):
    program, args = program_and_args
    exported.compile_exported(train_program, program, args)
    (entry,) = cache.glob("*.bin")
    entry.write_bytes(b"not a program")
    assert exported.compile_exported(train_program, program, args) is not None
    assert entry.read_bytes() != b"not a program"


def test_entries_are_named_by_the_source_the_program_and_its_shapes(program_and_args, monkeypatch):
    program, args = program_and_args
    name = exported.entry_name(program, args)
    assert exported.entry_name(program, args) == name
    fewer = jax.tree.map(lambda leaf: np.asarray(leaf)[:1] if np.ndim(leaf) else leaf, args)
    assert exported.entry_name(program, fewer) != name
    monkeypatch.setattr(exported, "source_fingerprint", lambda: "edited")
    assert exported.entry_name(program, args) != name


def test_nothing_is_exported_while_the_compilation_cache_is_off(program_and_args):
    program, args = program_and_args
    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        assert exported.folder() is None
        assert exported.compile_exported(train_program, program, args) is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    assert exported.folder() == Path(before) / exported.FOLDER
