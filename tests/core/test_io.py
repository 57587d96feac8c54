"""Atomic writes and strict JSON."""

import json
import math

import pytest

from stablelearn.errors import ConfigError
from stablelearn.io import json_safe, write_json_atomic, write_text_atomic


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
