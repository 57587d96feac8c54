"""Atomic writes, output locks, stale partial folders and strict JSON."""

import json
import math
import os
import stat
from pathlib import Path

import pytest
from conftest import another_writer

from stablelearn import io
from stablelearn.errors import ConfigError
from stablelearn.io import (
    atomic_folder,
    check_writable_file,
    json_safe,
    lock_path,
    locked_folder,
    output_lock,
    remove_stale_partials,
    write_json_atomic,
    write_text_atomic,
)

UNWRITABLE = Path("/proc/stablelearn-test")  # not even root may create files in /proc


def test_json_safe_turns_nan_and_inf_into_null_recursively():
    doc = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], 3: (2.5,)}
    assert json_safe(doc) == {"a": None, "b": [1.0, None, {"c": None}], "3": [2.5]}


def test_write_json_atomic_writes_strict_json(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "x.json", {"loss": math.nan, "n": 3})

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {"loss": None, "n": 3}


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "x.txt"
    target.write_text("old")

    def broken_replace(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("stablelearn.io.os.replace", broken_replace)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_a_folder_is_not_a_file_to_write(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        write_text_atomic(tmp_path, "x")


# --- outputs that cannot be written, checked before any work -------------------------------


@pytest.mark.parametrize("open_output", [atomic_folder, locked_folder])
def test_an_output_folder_that_cannot_be_created_is_one_sentence(tmp_path, open_output):
    cannot = pytest.raises(ConfigError, match=f"^Cannot write to {UNWRITABLE}: No such file")
    with cannot, open_output(UNWRITABLE):
        pytest.fail("must not be entered")
    (tmp_path / "afile").write_text("x")
    blocked = tmp_path / "afile" / "deeper" / "out"
    blocked_by_a_file = pytest.raises(ConfigError, match=r"out: .*afile is a file, not a folder\.$")
    with blocked_by_a_file, open_output(blocked):
        pytest.fail("must not be entered")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_file_to_write_is_checked_without_leaving_anything(tmp_path):
    check_writable_file(tmp_path / "new" / "deeper" / "result.json")
    assert list(tmp_path.iterdir()) == []  # the folders it made for the check are gone
    with pytest.raises(ConfigError, match="is a folder; give a file name"):
        check_writable_file(tmp_path)
    with pytest.raises(ConfigError, match=f"Cannot write to {UNWRITABLE}/r.json: No such file"):
        check_writable_file(UNWRITABLE / "r.json")
    with pytest.raises(ConfigError, match=f"Cannot write to {UNWRITABLE}/x: No such file"):
        write_text_atomic(UNWRITABLE / "x", "never")


# --- one writer per output --------------------------------------------------------------------


@pytest.mark.parametrize("open_output", [atomic_folder, locked_folder])
def test_a_second_writer_of_the_same_output_fails_at_once(tmp_path, open_output):
    target = tmp_path / "out"
    busy = f"^Another stablelearn process is writing to {target}; wait for it or choose another --out\\.$"
    with output_lock(target):
        assert lock_path(target).is_file() and lock_path(target).name == ".out.lock"
        with pytest.raises(ConfigError, match=busy), open_output(target):
            pytest.fail("must not be entered")
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the lock
    with open_output(target) as folder:
        (folder / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_lock_covers_another_process_writing(tmp_path):
    target = tmp_path / "out"
    with another_writer(target) as partial:
        assert partial.is_dir() and lock_path(target).is_file()
        busy = pytest.raises(ConfigError, match="Another stablelearn process is writing to")
        with busy, atomic_folder(target):
            pytest.fail("must not be entered")
        assert (partial / "half.json").is_file()
    assert list(tmp_path.iterdir()) == []  # the other process failed and cleaned up


def test_a_lock_file_left_by_a_killed_run_is_taken_over_and_removed(tmp_path):
    target = tmp_path / "out"
    lock_path(target).touch()  # a kill -9 leaves the file, never the lock
    with atomic_folder(target) as folder:
        (folder / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.skipif(io.fcntl is None, reason="flock locks are Unix only")
def test_a_lock_file_removed_before_the_flock_is_not_trusted(tmp_path, monkeypatch):
    path = tmp_path / ".out.lock"
    real_flock, locked = io.fcntl.flock, []

    def flock(fd, operation):
        if not locked:  # the holder releases (removes the file) between open and flock
            path.unlink()
            path.touch()
        locked.append(fd)
        return real_flock(fd, operation)

    monkeypatch.setattr(io.fcntl, "flock", flock)
    release = io._acquire(path)
    assert len(locked) == 2  # the first flock held a name nobody else sees: locked again
    assert os.path.samestat(os.stat(path), os.fstat(locked[1]))
    release()
    assert not path.exists()


# --- partial folders left by killed runs ------------------------------------------------------


def test_stale_partial_folders_are_removed_but_not_a_live_writers(tmp_path):
    (tmp_path / ".notes.partial-kept").mkdir()  # not a name atomic_folder makes
    with another_writer(tmp_path / "live") as live:
        stale = tmp_path / ".old.partial-abcd1234"  # as a killed run leaves it
        (stale / "sub").mkdir(parents=True)
        (stale / "sub" / "summary.json").write_text("{")
        lock_path(tmp_path / "old").touch()
        assert remove_stale_partials(tmp_path) == [stale]
        assert live.is_dir() and (live / "half.json").is_file()
        with atomic_folder(tmp_path / "new") as folder:  # cleans the parent on the way in
            (folder / "x").write_text("1")
        assert live.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.partial-kept", "new"]


def test_a_partial_folder_of_the_same_target_is_removed_on_the_next_run(tmp_path):
    target = tmp_path / "out"
    (tmp_path / ".out.partial-zz_99xx0").mkdir()
    with atomic_folder(target) as folder:
        (folder / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_files_and_folders_get_the_modes_plain_ones_get(tmp_path):
    """0644 / 0755 under umask 022, not mkstemp's 0600 and mkdtemp's 0700."""
    old = os.umask(0o022)
    try:
        file = write_text_atomic(tmp_path / "a.txt", "x")
        with atomic_folder(tmp_path / "run") as folder:
            (folder / "b.txt").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(file.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
