"""Packing: models of different depths and hidden activations trained in one program
equal the same models trained alone; the planner packs where its cost model says so."""

import dataclasses

import numpy as np
import pytest

import stablelearn as sl
from stablelearn.engine import plan_programs, prepare_training
from stablelearn.engine.plan import _Shape, program_cost

CONFIG = sl.TrainConfig(epochs=3, loss="binary_crossentropy", metrics=("accuracy",))
ARCHITECTURES = [
    (1, "relu", "he_uniform"),
    (3, "tanh", "glorot_uniform"),
    (2, "relu", "he_uniform"),
]


@pytest.fixture(scope="module")
def circles():
    return sl.prepare(sl.lesson_circles(), input_scaler="minmax(-1,1)", n_train=200)


def _model(depth, activation, init):
    return sl.MLP.stack(2, depth, 4, activation, init, output=sl.Dense(1, "sigmoid"))


def _runs(data, architectures=ARCHITECTURES, seeds=(0, 1), optimizer=None):
    optimizer = optimizer or sl.SGD(0.05, momentum=0.9)
    return [
        sl.Run(_model(*arch), optimizer, data, seed, CONFIG)
        for arch in architectures
        for seed in seeds
    ]


@pytest.fixture(scope="module")
def packed(circles):
    runs = _runs(circles)
    runs[1] = sl.Run(  # per-layer clip thresholds land in the model's own slots
        runs[1].model, sl.SGD(0.05, momentum=0.9, clipnorm=(0.5, 0.01)), circles, 1, CONFIG
    )
    return runs, sl.train(runs)


@pytest.mark.slow
def test_a_packed_model_equals_the_same_model_trained_alone(packed):
    runs, together = packed
    assert together.timing.programs == 1
    for i, run in enumerate(runs):
        alone = sl.train([run])
        for name in together.history:
            np.testing.assert_allclose(
                together.history[name][i], alone.history[name][0], rtol=1e-5, err_msg=name
            )
        for name in together.test_scores:
            np.testing.assert_allclose(
                together.test_scores[name][i], alone.test_scores[name][0], rtol=1e-5
            )
        layers = len(run.model.layers)
        for key in ("grad_norm", "update_ratio", "weight_norm"):
            mine = together.telemetry[key][i]
            np.testing.assert_allclose(mine[:, :layers], alone.telemetry[key][0], rtol=1e-5)
            assert np.isnan(mine[:, layers:]).all()  # slots it does not use are not reported
        dead = together.telemetry["dead_fraction"][i, :, : run.model.depth]
        np.testing.assert_allclose(dead, alone.telemetry["dead_fraction"][0], rtol=1e-5)
        assert [p["kernel"].shape for p in together.final_params[i]] == [
            p["kernel"].shape for p in alone.final_params[0]
        ]
        assert together.layer_names(i) == alone.layer_names(0)


@pytest.mark.slow
def test_slots_a_model_does_not_use_stay_exactly_zero(circles):
    compiled = prepare_training(_runs(circles))
    (group,) = compiled.groups
    assert group.program.packing is not None
    assert group.program.packing.activations == ("relu", "tanh")
    from stablelearn.engine import execute

    out = execute(group)
    depths = [run.model.depth for run in group.runs]
    for m, depth in enumerate(depths):
        for slot in range(depth, group.program.model.depth):
            assert not out.params[slot]["kernel"][m].any() and not out.params[slot]["bias"][m].any()


@pytest.mark.slow
def test_a_diverging_packed_model_leaves_its_neighbours_bit_for_bit_unchanged(circles):
    healthy = _runs(circles)
    diverging = list(healthy)
    huge = dataclasses.replace(
        circles, train_x=circles.train_x * 1e30, test_x=circles.test_x * 1e30
    )
    diverging[0] = sl.Run(healthy[0].model, healthy[0].optimizer, huge, 0, CONFIG)
    good, bad = sl.train(healthy), sl.train(diverging)
    assert bad.timing.programs == 1
    assert bad.diverged.tolist() == [True] + [False] * 5
    keep = [1, 2, 3, 4, 5]
    for name in good.history:
        np.testing.assert_array_equal(good.history[name][keep], bad.history[name][keep])
    again = sl.train(healthy)  # and training is deterministic
    for name in good.history:
        np.testing.assert_array_equal(good.history[name], again.history[name])


def test_the_planner_packs_depths_and_activations_of_one_width_only(circles):
    runs = _runs(circles)
    assert plan_programs(runs) == [list(range(6))]
    wider = sl.Run(
        sl.MLP.stack(2, 2, 8, "relu", output=sl.Dense(1, "sigmoid")), sl.SGD(), circles, 0, CONFIG
    )
    no_hidden = sl.Run(sl.MLP(2, (), sl.Dense(1, "sigmoid")), sl.SGD(), circles, 0, CONFIG)
    assert plan_programs([*runs, wider, no_hidden]) == [list(range(6)), [6], [7]]


def test_long_runs_pack_only_neighbouring_depths(circles):
    """The cost model: padding a 1-layer model to 30 layers for 8,000 steps costs more
    training than one compilation saves (29 and 30 layers still pack); for 48 steps
    everything packs."""

    def runs(epochs):
        config = sl.TrainConfig(epochs=epochs, loss="binary_crossentropy", metrics=("accuracy",))
        return [
            sl.Run(_model(depth, "relu", "he_uniform"), sl.SGD(), circles, seed, config)
            for depth in (1, 29, 30)
            for seed in range(20)
        ]

    assert [p[0] for p in plan_programs(runs(500))] == [0, 20]
    assert len(plan_programs(runs(3))) == 1
    shape = _Shape.of(runs(500)[0])
    assert program_cost(shape, 20, 30, 1, packed=True) > program_cost(shape, 20, 30, 1, False)


@pytest.mark.slow
def test_scanned_slots_train_as_the_unrolled_ones(circles, packed, monkeypatch):
    """Deep packed programs scan their slots (compiling one layer for any depth)."""
    from stablelearn.engine import program

    monkeypatch.setattr(program, "SCAN_SLOTS", 1)
    runs, unrolled = packed
    compiled = prepare_training(runs)
    assert compiled.groups[0].program.packing.scanned
    scanned = sl.train(runs, prepared=compiled)
    for name in unrolled.history:
        np.testing.assert_allclose(scanned.history[name], unrolled.history[name], rtol=1e-5)
    for key in ("grad_norm", "dead_fraction"):
        np.testing.assert_allclose(scanned.telemetry[key], unrolled.telemetry[key], rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", [sl.Adam(0.01, epsilon=0.0), sl.RMSprop(0.01, epsilon=0.0)])
def test_unused_slots_stay_zero_even_where_the_optimizer_would_divide_zero_by_zero(
    circles, optimizer
):
    tanh = [(1, "tanh", "glorot_uniform"), (3, "tanh", "glorot_uniform")]  # no dead units
    runs = _runs(circles, tanh, seeds=(0,), optimizer=optimizer)
    together = sl.train(runs)
    assert together.timing.programs == 1 and not together.diverged.any()
    for i, run in enumerate(runs):
        alone = sl.train([run])
        np.testing.assert_allclose(together.history["loss"][i], alone.history["loss"][0], rtol=1e-5)
