"""JAX's persistent compilation cache: where it lives, how it is turned off, and that a
second process loads the first one's programs and trains to the same numbers.

conftest.py turns the cache off for the test run; the one test here that uses it points
it at a temporary folder and runs in fresh processes, so neither the user's cache folder
nor this process's JAX configuration is touched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from stablelearn import compile_cache
from stablelearn.compile_cache import cache_folder_from_env, default_cache_folder


def test_the_default_folder_is_the_users_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_folder() == tmp_path / ".cache" / "stablelearn" / "jax"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_folder() == tmp_path / "xdg" / "stablelearn" / "jax"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG rule
    assert default_cache_folder() == tmp_path / ".cache" / "stablelearn" / "jax"


def test_the_environment_variable_turns_it_off_or_moves_it(monkeypatch, tmp_path):
    for off in ("0", "off", "False", " no "):
        monkeypatch.setenv(compile_cache.ENV_VAR, off)
        assert cache_folder_from_env() is None
    for default in ("", "1", "on"):
        monkeypatch.setenv(compile_cache.ENV_VAR, default)
        assert cache_folder_from_env() == default_cache_folder()
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "here"))
    assert cache_folder_from_env() == tmp_path / "here"
    monkeypatch.delenv(compile_cache.ENV_VAR)
    assert cache_folder_from_env() == default_cache_folder()


def test_turned_off_it_leaves_jax_alone(monkeypatch):
    monkeypatch.setenv(compile_cache.ENV_VAR, "0")
    before = jax.config.jax_compilation_cache_dir
    assert compile_cache.enable_compile_cache() is None
    assert jax.config.jax_compilation_cache_dir == before


# in a fresh process: JAX's options as enable_compile_cache leaves them
OPTIONS = """
import json
import jax
from stablelearn.compile_cache import enable_compile_cache

folder = enable_compile_cache()
names = ("compilation_cache_dir", "persistent_cache_min_compile_time_secs",
         "persistent_cache_min_entry_size_bytes", "compilation_cache_max_size")
print(json.dumps([str(folder), *(getattr(jax.config, "jax_" + name) for name in names)]))
"""


def _run(code: str, folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, compile_cache.ENV_VAR: str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_it_sets_the_options_of_the_installed_jax(tmp_path):
    """The option names exist in this JAX (a renamed one would fail every
    training command), and nothing is written before something compiles."""
    done = _run(OPTIONS, tmp_path / "cache")
    folder = str(tmp_path / "cache")
    limits = [compile_cache.MIN_COMPILE_SECONDS, -1, compile_cache.MAX_CACHE_BYTES]
    assert json.loads(done.stdout.splitlines()[-1]) == [folder, folder, *limits]
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_folder_that_cannot_be_made_turns_it_off_with_one_warning(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.warns(UserWarning, match="No compilation cache"):
        assert compile_cache.enable_compile_cache(tmp_path / "file" / "cache") is None


# `stablelearn train` in a fresh process, counting the programs JAX loaded from its
# persistent cache; every program is written, however fast this machine compiles
TRAIN = """
import json, sys
import jax
import stablelearn.compile_cache
from stablelearn.cli import app

stablelearn.compile_cache.MIN_COMPILE_SECONDS = 0.0
hits = []
jax.monitoring.register_event_listener(
    lambda event, **_: hits.append(event) if event == "/jax/compilation_cache/cache_hits" else None
)
app(["train", "--units", "4", "--epochs", "2", "--repeats", "2", "--json", sys.argv[1]],
    standalone_mode=False)
print(json.dumps({"hits": len(hits)}))
"""


def _train(folder: Path, out: Path) -> tuple[int, dict]:
    """Cache hits, and the --json output without its timing."""
    done = _run(TRAIN, folder, str(out))
    assert "persistent compilation cache" not in done.stderr  # JAX warns on a bad entry
    written = json.loads(out.read_text())
    written.pop("timing")
    return json.loads(done.stdout.splitlines()[-1])["hits"], written


@pytest.mark.slow
def test_a_second_process_loads_the_programs_and_trains_the_same(tmp_path):
    folder = tmp_path / "cache"
    hits, first = _train(folder, tmp_path / "first.json")
    entries = sorted(p.name for p in folder.glob("*-cache"))
    assert hits == 0
    # the training program, compiled from its exported form (stablelearn.engine.exported)
    assert any(name.startswith("jit_call") for name in entries)
    programs = sorted(p.name for p in (folder / "programs").glob("*.bin"))
    assert len(programs) == 1
    hits, second = _train(folder, tmp_path / "second.json")
    assert hits >= len(entries)
    assert second == first
    assert sorted(p.name for p in folder.glob("*-cache")) == entries  # nothing new to write
    assert sorted(p.name for p in (folder / "programs").glob("*.bin")) == programs
