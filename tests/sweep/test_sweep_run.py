"""Running sweeps: results equal the engine's, groups are saved atomically, an
interrupted sweep resumes, and the Ray backend gives the local backend's numbers."""

import shutil

import numpy as np
import pytest
from conftest import TWO_GROUPS, small_sweep

from stablelearn.engine import train
from stablelearn.errors import ConfigError
from stablelearn.sweep.plan import plan_groups
from stablelearn.sweep.run import run_sweep
from stablelearn.sweep.spec import load_sweep_mapping
from stablelearn.sweep.store import (
    GROUPS_FOLDER,
    UnreadableGroupFile,
    load_record,
    open_sweep_folder,
    save_record,
    train_group,
)


@pytest.fixture(scope="module")
def sweep():
    return load_sweep_mapping(small_sweep(axes=TWO_GROUPS), "s.toml")


@pytest.fixture(scope="module")
def complete(sweep, tmp_path_factory):
    folder = tmp_path_factory.mktemp("complete")
    return run_sweep(sweep, folder, workers=2), folder


def assert_same_results(a, b) -> None:
    np.testing.assert_array_equal(a.cells, b.cells)
    np.testing.assert_array_equal(a.seeds, b.seeds)
    np.testing.assert_array_equal(a.diverged_epoch, b.diverged_epoch)
    for table in ("train_scores", "test_scores", "history"):
        left, right = getattr(a, table), getattr(b, table)
        assert left.keys() == right.keys()
        for name in left:
            np.testing.assert_array_equal(left[name], right[name], err_msg=f"{table}[{name}]")


def test_results_come_back_by_cell_and_repeat_and_match_the_engine(sweep, complete):
    result, _ = complete
    assert result.cells.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert result.repeats.tolist() == [0, 1, 2] * 4
    assert result.seeds.tolist() == [0, 1, 2] * 4
    assert result.groups == 2 and result.groups_resumed == 0
    assert result.history["loss"].shape == (12, 3)
    # the same runs trained directly by the engine give the same numbers
    for group in plan_groups(sweep):
        direct = train(group.runs)
        for run, repeat, cell in zip(direct.runs, group.repeats, group.cells, strict=True):
            i = np.flatnonzero((result.cells == cell) & (result.repeats == repeat))[0]
            j = direct.runs.index(run)
            assert result.test_scores["rmse_original"][i] == direct.test_scores["rmse_original"][j]
            np.testing.assert_array_equal(result.history["loss"][i], direct.history["loss"][j])
    rmse = result.scores("test_rmse_original")
    assert rmse is result.test_scores["rmse_original"] and np.isfinite(rmse).all()


def test_saved_groups_round_trip(sweep, tmp_path):
    group = plan_groups(sweep)[0]
    record = train_group(group)
    path = save_record(record, tmp_path)
    assert path.name == f"{group.id}.npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    loaded = load_record(path)
    assert loaded.group_id == record.group_id and loaded.findings == record.findings
    for name in ("cells", "repeats", "seeds", "diverged_epoch"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(record, name))
    for table in ("train_scores", "test_scores", "history"):
        for key, values in getattr(record, table).items():
            np.testing.assert_array_equal(getattr(loaded, table)[key], values)
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:-100])
    for bad in ("bad.npz", "cut.npz"):
        with pytest.raises(UnreadableGroupFile):
            load_record(tmp_path / bad)


class Interrupt(BaseException):
    """Stands in for Ctrl-C (KeyboardInterrupt) without upsetting pytest."""


def test_an_interrupted_sweep_keeps_finished_groups_and_resumes(sweep, complete, tmp_path):
    def stop_after_first(record, done, total):
        raise Interrupt

    with pytest.raises(Interrupt):
        run_sweep(sweep, tmp_path, on_group=stop_after_first, workers=2)
    store = tmp_path / GROUPS_FOLDER
    saved = sorted(p.name for p in store.iterdir())
    assert len(saved) == 1 and saved[0].endswith(".npz")  # one whole group, nothing partial
    # a kill during a write leaves at most a temporary file, which is never read
    (store / f".{saved[0]}.1234.tmp").write_bytes(b"half a file")
    seen = []
    resumed = run_sweep(
        sweep, tmp_path, on_group=lambda r, done, total: seen.append(done), workers=2
    )
    assert resumed.groups_resumed == 1 and seen == [2]
    assert_same_results(resumed, complete[0])
    again = run_sweep(sweep, tmp_path, workers=2)
    assert again.groups_resumed == 2
    assert_same_results(again, complete[0])


def test_a_corrupt_or_stale_group_file_is_retrained(sweep, complete, tmp_path):
    groups = plan_groups(sweep)
    store = tmp_path / GROUPS_FOLDER
    store.mkdir()
    saved = (complete[1] / GROUPS_FOLDER / f"{groups[0].id}.npz").read_bytes()
    cut = store / f"{groups[0].id}.npz"
    cut.write_bytes(saved[: len(saved) // 2])  # a full disk or a copy cut short
    (store / "0123456789abcdef.npz").write_bytes(b"from another sweep")
    notices = []
    result = run_sweep(sweep, tmp_path, workers=2, on_notice=notices.append)
    assert notices == [f"{cut} is unreadable (truncated?); retraining it."]
    assert result.groups_resumed == 0
    assert_same_results(result, complete[0])
    assert load_record(cut).group_id == groups[0].id  # replaced by the retrained group
    cut.write_bytes(b"PK")
    with pytest.warns(UserWarning, match="is unreadable"):  # what library callers see
        assert run_sweep(sweep, tmp_path, workers=2).groups_resumed == 1
    assert run_sweep(sweep, tmp_path, fresh=True, workers=2).groups_resumed == 0


def test_a_sweep_folder_is_locked_and_cleaned_of_what_a_killed_run_left(tmp_path):
    folder = tmp_path / "sweep"
    store = folder / GROUPS_FOLDER
    store.mkdir(parents=True)
    (store / ".abc.npz.x1y2.tmp").write_bytes(b"half a file")  # killed during a write
    (store / "abc.npz").write_bytes(b"a saved group")
    with open_sweep_folder(folder):
        assert [p.name for p in store.iterdir()] == ["abc.npz"]
        busy = pytest.raises(ConfigError, match="Another stablelearn process is writing to")
        with busy, open_sweep_folder(folder):
            pytest.fail("must not be entered")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]  # no lock file left


def test_a_sweep_is_not_written_over_a_folder_that_holds_no_sweep(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    full = pytest.raises(ConfigError, match="is not empty and holds no sweep; choose another")
    with full, open_sweep_folder(tmp_path):
        pytest.fail("must not be entered")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with open_sweep_folder(tmp_path / "new") as folder:  # created, empty: a new sweep
        assert folder.is_dir()


def test_a_changed_sweep_retrains_only_changed_groups(sweep, complete):
    _, folder = complete
    changed = small_sweep(axes={"model.units": [4, 6], "optimizer.learning_rate": [0.01, 0.001]})
    result = run_sweep(load_sweep_mapping(changed, "s.toml"), folder, workers=2)
    assert (result.groups, result.groups_resumed) == (2, 1)  # width 4 reused


def test_worker_threads_give_the_same_numbers(sweep, complete, tmp_path):
    result = run_sweep(sweep, tmp_path, workers=1)  # the others ran on two threads
    assert_same_results(result, complete[0])
    assert len(list((tmp_path / GROUPS_FOLDER).glob("*.npz"))) == 2


def test_saved_groups_are_reused_when_new_values_renumber_the_cells(sweep, complete, tmp_path):
    result, folder = complete
    (tmp_path / GROUPS_FOLDER).mkdir()
    for group in plan_groups(sweep):  # only this sweep's groups: other tests add theirs
        name = f"{GROUPS_FOLDER}/{group.id}.npz"
        shutil.copy(folder / name, tmp_path / name)
    grown = small_sweep(axes={"model.units": [6, 4, 8], "optimizer.learning_rate": [0.01, 0.001]})
    again = run_sweep(load_sweep_mapping(grown, "s.toml"), tmp_path, workers=2)
    assert (again.groups, again.groups_resumed) == (3, 2)  # widths 4 and 8 were saved
    moved = again.cells >= 2  # the old cells 0-3 are now cells 2-5
    np.testing.assert_array_equal(again.cells[moved] - 2, result.cells)
    for name, values in result.test_scores.items():
        np.testing.assert_array_equal(again.test_scores[name][moved], values)


def test_bad_backend_options(sweep, tmp_path):
    with pytest.raises(ConfigError, match=r"backend must be one of local, ray"):
        run_sweep(sweep, tmp_path, backend="spark")
    with pytest.raises(ConfigError, match=r"--address applies to --backend ray only"):
        run_sweep(sweep, tmp_path, address="auto")
    with pytest.raises(ConfigError, match=r"workers must be a positive integer, got 0"):
        run_sweep(sweep, tmp_path, workers=0)


@pytest.mark.slow
def test_ray_backend_equals_local_backend(sweep, complete, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    result = run_sweep(sweep, tmp_path, backend="ray", num_cpus=2)
    assert result.backend == "ray" and result.groups == 2
    assert_same_results(result, complete[0])
    assert len(list((tmp_path / GROUPS_FOLDER).glob("*.npz"))) == 2


def test_a_sweep_places_each_groups_curves_at_their_epochs():
    from stablelearn.sweep.run import _stitch_history
    from stablelearn.sweep.store import GroupRecord

    def record(epochs, value):
        n = 2
        return GroupRecord(
            group_id=str(value), cells=np.zeros(n, np.int64), repeats=np.arange(n),
            seeds=np.arange(n), diverged_epoch=np.full(n, -1), train_scores={}, test_scores={},
            history={"loss": np.full((n, len(epochs)), value, np.float32)},
            history_epochs=np.asarray(epochs),
        )  # fmt: skip

    history, epochs = _stitch_history(
        [record([1, 2, 3], 1.0), record([1, 3, 5], 2.0)], np.arange(4)
    )
    np.testing.assert_array_equal(epochs, [1, 2, 3, 5])
    np.testing.assert_array_equal(history["loss"][0], [1, 1, 1, np.nan])
    np.testing.assert_array_equal(history["loss"][2], [2, np.nan, 2, 2])
