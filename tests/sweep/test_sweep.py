"""Sweep files: axis expansion, cells, shape grouping, and one clear error per bad file."""

import tomllib

import numpy as np
import pytest
from conftest import small_sweep

from stablelearn.errors import ConfigError
from stablelearn.optim import SGD
from stablelearn.sweep.plan import plan_groups
from stablelearn.sweep.run import sweep_parts
from stablelearn.sweep.spec import (
    load_sweep_file,
    load_sweep_mapping,
    resolve_sweep,
    shipped_sweep_files,
    shipped_sweep_text,
)


def load(**changes):
    return load_sweep_mapping(small_sweep(**changes), "s.toml")


def test_axes_expand_to_every_combination_in_file_order():
    sweep = load()
    assert [a.name for a in sweep.axes] == ["learning_rate", "input_scaler"]
    assert [c.label for c in sweep.cells] == [
        "learning_rate=0.01, input_scaler=none",
        "learning_rate=0.01, input_scaler=standard",
        "learning_rate=0.001, input_scaler=none",
        "learning_rate=0.001, input_scaler=standard",
    ]
    rates = [c.variant.optimizer.learning_rate for c in sweep.cells]
    assert rates == [0.01, 0.01, 0.001, 0.001]
    assert [c.variant.input_scaler.kind for c in sweep.cells] == ["none", "standard"] * 2
    assert all(c.variant.optimizer.momentum == 0.9 for c in sweep.cells)
    assert all(c.variant.target_scaler.kind == "standard" for c in sweep.cells)
    assert sweep.cells[3].values == {"learning_rate": 0.001, "input_scaler": "standard"}
    assert (sweep.repeats, sweep.seed, sweep.baseline) == (3, 0, 0)
    assert sweep.metric == "test_rmse_original" and not sweep.higher_is_better


def test_cells_that_share_shapes_train_as_one_group_and_depths_pack():
    (group,) = plan_groups(load())
    assert len(group.runs) == 4 * 3
    assert group.cells == (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3)
    assert group.repeats == (0, 1, 2) * 4
    assert [r.seed for r in group.runs] == [0, 1, 2] * 4  # paired seeds across cells
    # cells with the same scalers share one PreparedData, so the engine stacks it once
    assert group.runs[0].data is group.runs[6].data
    assert group.runs[0].data is not group.runs[3].data

    # depths differ only in numbers of equal layers: packed into one program (in two
    # groups, see test_packed_groups_split_in_two_and_unpacked_ones_never)
    deep = load(axes={"model.depth": [1, 2, 3], "optimizer.learning_rate": [0.01, 0.1]})
    assert sum(len(g.runs) for g in plan_groups(deep)) == 18
    # widths differ: separate programs
    wide = load(axes={"model.units": [2, 8], "optimizer.learning_rate": [0.01, 0.1]})
    assert sorted(g.runs[0].model.hidden[0].units for g in plan_groups(wide)) == [2, 8]


def test_group_ids_are_stable_and_change_with_what_decides_the_numbers():
    ids = [g.id for g in plan_groups(load())]
    assert ids == [g.id for g in plan_groups(load())]
    assert ids != [g.id for g in plan_groups(load(seed=5))]
    assert ids != [g.id for g in plan_groups(load(epochs=4))]
    changed = small_sweep()
    changed["optimizer"]["momentum"] = 0.5
    assert ids != [g.id for g in plan_groups(load_sweep_mapping(changed, "s.toml"))]


def test_named_axis_sets_several_fields_and_initializers_share_a_program():
    sweep = load(
        axes={
            "activation": {
                "tanh": {"model": {"activation": "tanh", "kernel_initializer": "glorot_uniform"}},
                "relu": {"model": {"activation": "relu", "kernel_initializer": "he_uniform"}},
            },
            "model.kernel_initializer": ["he_uniform", "glorot_normal"],
        }
    )
    labels = [c.label for c in sweep.cells]
    assert labels[0] == "activation=tanh, kernel_initializer=he_uniform"
    layers = [c.variant.model.hidden[0] for c in sweep.cells]
    assert [layer.activation for layer in layers] == ["tanh", "tanh", "relu", "relu"]
    # a later axis wins over an earlier one for the same field
    assert [layer.kernel_initializer.name for layer in layers] == [
        "he_uniform",
        "glorot_normal",
    ] * 2
    # initializers only change the starting weights, and the tanh and relu layers of
    # these short runs pack: one program (split in two groups), not four
    assert len(plan_groups(sweep)) == 2
    # with more workers than programs the packed program is split once per worker
    everyone = sorted(
        (c, r) for g in plan_groups(sweep) for c, r in zip(g.cells, g.repeats, strict=True)
    )
    for parts in (3, 4):
        groups = plan_groups(sweep, parts)
        assert len(groups) == parts
        assert (
            sorted((c, r) for g in groups for c, r in zip(g.cells, g.repeats, strict=True))
            == everyone
        )
        assert [g.id for g in groups] == [g.id for g in plan_groups(sweep, parts)]


@pytest.mark.parametrize(
    "backend, address, workers, num_cpus, parts",
    [
        ("local", None, 1, None, 2),  # at least two, as before worker counts mattered
        ("local", None, 6, None, 6),
        ("ray", None, None, 8, 8),  # a local Ray's CPUs
        ("ray", "ray://head:10001", None, None, 2),  # a cluster's size is not known yet
    ],
)
def test_packed_programs_are_split_once_per_worker(backend, address, workers, num_cpus, parts):
    assert sweep_parts(backend, address, workers, num_cpus) == parts


def test_hidden_list_of_identical_layers_accepts_depth_and_layer_axes():
    raw = small_sweep(axes={"model.depth": [2, 3], "model.activation": ["elu", "tanh"]})
    raw["model"] = {"hidden": [{"units": 4, "activation": "relu"}] * 2, "output": {"units": 1}}
    sweep = load_sweep_mapping(raw, "s.toml")
    model = sweep.cells[1].variant.model
    assert [(layer.units, layer.activation) for layer in model.hidden] == [(4, "tanh")] * 2
    assert len(sweep.cells[2].variant.model.hidden) == 3
    raw["model"]["hidden"] = [{"units": 4}, {"units": 8}]
    with pytest.raises(ConfigError, match=r"identical hidden layers"):
        load_sweep_mapping(raw, "s.toml")


def test_clip_mode_and_threshold_axes_set_the_optimizers_own_field():
    sweep = load(
        axes={
            "optimizer.clip_mode": ["clipnorm", "clipvalue", "global_clipnorm", "none"],
            "optimizer.clip_threshold": [0.5, 5.0],
        }
    )
    optimizers = [c.variant.optimizer for c in sweep.cells]
    assert optimizers[0] == SGD(learning_rate=0.01, momentum=0.9, clipnorm=0.5)
    assert optimizers[3] == SGD(learning_rate=0.01, momentum=0.9, clipvalue=5.0)
    assert optimizers[5] == SGD(learning_rate=0.01, momentum=0.9, global_clipnorm=5.0)
    assert optimizers[6].clip_mode is None and optimizers[7].clip_mode is None
    assert len(plan_groups(sweep)) == 1  # clip modes are numbers per model, not programs
    # a threshold axis alone reuses the base file's clip mode
    base = small_sweep(axes={"optimizer.clip_threshold": [1.0, 2.0]})
    base["optimizer"]["clipvalue"] = 9.0
    sweep = load_sweep_mapping(base, "s.toml")
    assert [c.variant.optimizer.clipvalue for c in sweep.cells] == [1.0, 2.0]


def test_top_level_and_optimizer_name_axes():
    sweep = load(axes={"batch_size": [16, 32], "optimizer.name": ["sgd", "adam"]})
    configs = [c.experiment.config.batch_size for c in sweep.cells]
    assert configs == [16, 16, 32, 32]
    adam = sweep.cells[1].variant.optimizer
    # another optimizer replaces the base's: Keras' Adam defaults, not SGD's momentum
    assert type(adam).__name__ == "Adam" and adam.learning_rate == 0.001
    assert len(plan_groups(sweep)) == 4


def test_unquoted_dotted_keys_read_as_fields():
    raw = tomllib.loads(
        """
id = "t"
dataset = "lesson-regression"
[model]
depth = 1
units = 4
output = {units = 1}
[axes]
model.depth = [1, 2]
optimizer.learning_rate = [0.1]
"""
    )
    sweep = load_sweep_mapping(raw, "t.toml")
    assert [a.field for a in sweep.axes] == ["model.depth", "optimizer.learning_rate"]


def test_success_bar_metric_and_baseline():
    sweep = load(sweep={"baseline": {"learning_rate": 0.001, "input_scaler": "standard"}})
    assert sweep.baseline == 3
    data = sweep.cells[0].experiment.data
    test_y = data.y[500:]
    assert sweep.success.direction == "max"
    assert sweep.success.threshold == pytest.approx(np.sqrt(np.var(test_y) / 2), rel=1e-6)
    explicit = load(sweep={"metric": "test_mae_original", "success": {"max": 20.0}})
    assert (explicit.metric, explicit.success.threshold) == ("test_mae_original", 20.0)
    values = np.array([10.0, 20.0, 30.0, np.nan])
    assert explicit.success.passed(values).tolist() == [True, True, False, False]


def test_baseline_numbers_match_by_value_and_loss_metrics_need_a_bar():
    sweep = load(
        axes={"optimizer.learning_rate": [0.1, 1.0]}, sweep={"baseline": {"learning_rate": 1}}
    )
    assert sweep.baseline == 1
    raw = small_sweep(dataset="lesson-circles", data={"input_scaler": "minmax"})
    raw["model"]["output"] = {"units": 1, "activation": "sigmoid"}
    raw["axes"] = {"model.depth": [1, 2]}
    with pytest.raises(ConfigError, match=r"metric 'test_loss' is in scaled units: give"):
        load_sweep_mapping({**raw, "sweep": {"metric": "test_loss"}}, "c.toml")
    bce = load_sweep_mapping(
        {**raw, "sweep": {"metric": "test_loss", "success": {"max": 0.5}}}, "c.toml"
    )
    assert bce.metric == "test_loss" and not bce.higher_is_better
    with pytest.raises(ConfigError, match=r"'test_rmse_original' does not apply to a binary"):
        load_sweep_mapping({**raw, "sweep": {"metric": "test_rmse_original"}}, "c.toml")
    mae = load(sweep={"metric": "test_mae_original"})
    assert "MAE at most the RMSE of R^2 = 0.5" in mae.success.describe(mae.metric)


def test_circles_default_bar_is_halfway_from_the_majority_class():
    raw = small_sweep(dataset="lesson-circles", data={"input_scaler": "minmax"})
    raw["model"]["output"] = {"units": 1, "activation": "sigmoid"}
    raw["axes"] = {"model.depth": [1, 2]}
    sweep = load_sweep_mapping(raw, "c.toml")
    y = sweep.cells[0].experiment.data.y[500:]
    majority = max(np.mean(y), 1 - np.mean(y))
    assert sweep.metric == "test_accuracy" and sweep.higher_is_better
    assert sweep.success.threshold == pytest.approx(majority + (1 - majority) / 2)


BAD = [
    ({"axes": {"model.dept": [1]}}, r"s.toml: unknown field axes.'model.dept'; an axis can vary"),
    ({"axes": {"model.depth": []}}, r"s.toml: axes.model.depth is empty"),
    ({"axes": {}}, r"axes must be a table with at least one axis"),
    ({"axes": None}, r"axes is required"),
    ({"axes": {"model.depth": 3}}, r"axes.model.depth must be a list of values or a table"),
    ({"axes": {"depth": [1, 2]}}, r"a list of values needs a field such as 'model.depth'"),
    ({"axes": {"model.depth": ["five"]}}, r"\(cell depth=five\): model.depth must be an integer"),
    (
        {"axes": {"optimizer.learning_rate": [0.1, -1.0]}},
        r"\(cell learning_rate=-1.0\): optimizer: SGD learning_rate must be",
    ),
    ({"axes": {"model.activation": ["relu", "swishy"]}}, r"\(cell activation=swishy\).*swishy"),
    ({"axes": {"model.depth": [1, 1]}}, r"axes.model.depth repeats a value"),
    ({"axes": {"act": {"a": "relu"}}}, r"axes.act.a must be a table of overrides"),
    ({"axes": {"act": {"a": {"modle": {}}}}}, r"axes.act.a: unknown field 'modle'"),
    ({"axes": {"act": {"a": {"model": {"dept": 2}}}}}, r"unknown field axes.'model.dept'"),
    ({"variants": [{"name": "x"}]}, r"variants does not apply to a sweep"),
    ({"sweep": {"metrc": "x"}}, r"unknown field sweep.metrc"),
    ({"sweep": {"metric": "test_accuracy"}}, r"test_accuracy' does not apply to a regression"),
    ({"sweep": {"metric": "f1"}}, r"sweep.metric must be one of"),
    ({"sweep": {"success": {"above": 1}}}, r"sweep.success must be a table with one of min or max"),
    ({"sweep": {"success": {"min": "high"}}}, r"sweep.success.min must be a number"),
    ({"sweep": {"baseline": {"lr": 0.1}}}, r"sweep.baseline names 'lr', which is not an axis"),
    ({"sweep": {"baseline": {"learning_rate": 0.5}}}, r"matches no cell"),
    ({"sweep": {"baseline": {"learning_rate": 0.01}}}, r"matches 2 cells"),
    ({"sweep": {"metric": "test_loss"}}, r"is in scaled units: give \[sweep\] success"),
    (
        {
            "axes": {"data.target_scaler": ["standard", "minmax"]},
            "sweep": {"metric": "test_loss", "success": {"max": 1}},
        },
        r"scaled units, which differ between the target scalers",
    ),
    (
        {"axes": {"optimizer.clip_threshold": [1.0]}},
        r"clip_threshold needs a clip mode",
    ),
    (
        {"axes": {"optimizer.clip_mode": ["clipnorm"]}},
        r"clip_mode 'clipnorm' needs a clip_threshold",
    ),
    ({"axes": {"optimizer.clip_mode": ["clipnrom"]}}, r"clip_mode must be one of none, clipnorm"),
    ({"epochs": 0}, r"epochs must be a positive integer"),
    ({"optimizer": 5}, r"s.toml: optimizer must be a table, got 5"),
    ({"sweep": {"metric": ["x"]}}, r"sweep.metric must be one of"),
    (
        {"axes": {"optimizer.learning_rate": [1, 1.0]}},
        r"axes.optimizer.learning_rate repeats a value",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD)
def test_bad_sweeps_name_the_file_and_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        load(**changes)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match=r"No sweep file at"):
        load_sweep_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("axes = [", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_sweep_file(broken)
    with pytest.raises(ConfigError, match=r"No shipped sweep 'nope' and no such file"):
        resolve_sweep("nope")
    with pytest.raises(ConfigError, match=r"No shipped experiment or sweep 'nope'"):
        shipped_sweep_text("nope")


def test_file_overrides_and_relative_dataset(tmp_path):
    csv = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    csv.write_text("a,b,y\n" + "\n".join(f"{a},{b},{a + 2 * b}" for a, b in x), encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text(
        """
id = "mine"
dataset = "d.csv"
target = "y"
repeats = 5
[model]
depth = 1
units = 3
output = {units = 1}
[axes]
"optimizer.learning_rate" = [0.1, 0.01]
""",
        encoding="utf-8",
    )
    sweep = load_sweep_file(path, repeats=2, epochs=None)
    text = path.read_text(encoding="utf-8").replace('"optimizer.learning_rate"', "epochs")
    path.write_text(text.replace("[0.1, 0.01]", "[1, 2]"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"s.toml: epochs is an axis of this sweep"):
        load_sweep_file(path, epochs=3)
    assert sweep.repeats == 2 and sweep.cells[0].experiment.config.epochs == 100
    assert sweep.cells[0].experiment.data is sweep.cells[1].experiment.data  # read once


def test_shipped_sweeps_load_and_plan():
    ids = {}
    for entry in shipped_sweep_files():
        raw = tomllib.loads(entry.read_text(encoding="utf-8"))
        sweep = load_sweep_mapping(raw, entry.name)
        ids[sweep.id] = sweep
        assert shipped_sweep_text(sweep.id) == entry.read_text(encoding="utf-8")
    assert set(ids) == {"depth-activation", "clip-thresholds", "scalers", "depth-repairs"}
    repairs = ids["depth-repairs"]
    assert [c.label for c in repairs.cells][repairs.baseline] == "batch_norm=false, residual=false"
    both = repairs.cells[-1].experiment.variants[0].model
    assert both.depth == 20 and all(layer.batch_norm for layer in both.hidden)
    assert [layer.residual for layer in both.hidden] == [False] + [True] * 19
    assert len(plan_groups(repairs)) == 4  # batch norm and skip connections are not packed
    depth = ids["depth-activation"]
    assert len(depth.cells) == 30 * 4 and depth.repeats == 20
    assert depth.cells[0].experiment.config.epochs == 500
    assert depth.cells[depth.baseline].label == "depth=5, activation=relu"
    # 500 epochs: training dominates, so hardly anything packs; 20 epochs: everything
    assert len(plan_groups(depth)) > 100
    assert len(plan_groups(resolve_sweep("depth-activation", epochs=20))) == 2  # split
    assert len(plan_groups(ids["clip-thresholds"])) == 1
    scalers = ids["scalers"]
    assert len(scalers.cells) == 16 and len(plan_groups(scalers)) == 1
    assert scalers.metric == "test_rmse_original"


def test_cells_are_found_by_label():
    sweep = load()
    assert sweep.cell("learning_rate=0.001, input_scaler=none").index == 2
    with pytest.raises(KeyError):
        sweep.cell("learning_rate=1")


def test_packed_groups_split_in_two_and_unpacked_ones_never():
    (whole,) = plan_groups(load())  # one architecture: never split
    assert len(whole.runs) == 12
    deep = load(axes={"model.depth": [1, 2, 3], "optimizer.learning_rate": [0.01, 0.1]})
    halves = plan_groups(deep)
    assert sorted(len(g.runs) for g in halves) == [9, 9]
    pairs = sorted((c, r) for g in halves for c, r in zip(g.cells, g.repeats, strict=True))
    assert pairs == [(c, r) for c in range(6) for r in range(3)]
    for group in halves:  # both halves keep every architecture: one program
        assert sorted({run.model.depth for run in group.runs}) == [1, 2, 3]


def test_groups_estimated_to_train_too_long_split_into_equal_consecutive_parts(monkeypatch):
    from stablelearn.engine.budget import group_estimate
    from stablelearn.sweep import plan

    (whole,) = plan_groups(load())
    estimate = group_estimate(whole.runs).train_s
    monkeypatch.setattr(plan, "MAX_GROUP_TRAIN_S", estimate / 2.5)  # three parts
    parts = plan_groups(load())
    assert [len(g.runs) for g in parts] == [4, 4, 4]
    pairs = [(c, r) for g in parts for c, r in zip(g.cells, g.repeats, strict=True)]
    assert sorted(pairs) == sorted(zip(whole.cells, whole.repeats, strict=True))
    assert len({g.id for g in parts}) == 3 and whole.id not in {g.id for g in parts}


def test_a_packed_group_with_one_run_per_architecture_is_not_split():
    # repeats 1: each depth has one run, so a split would leave one half empty (it
    # crashed planning with "max() arg is an empty sequence")
    (group,) = plan_groups(load(axes={"model.depth": [1, 2]}, repeats=1))
    assert sorted(run.model.depth for run in group.runs) == [1, 2]
