"""Budgets before work: estimates from shapes, refusals in one sentence, chunk sizes."""

import pytest

import stablelearn as sl
from stablelearn.engine import budget
from stablelearn.engine.history import HISTORY_POINTS
from stablelearn.errors import ResourceError


def _runs(data, models=4, epochs=100, units=25, depth=1, telemetry=True):
    model = sl.MLP.stack(20, depth, units, "relu", "he_uniform")
    config = sl.TrainConfig(epochs=epochs, telemetry=telemetry)
    return [sl.Run(model, sl.SGD(0.01, 0.9), data, s, config) for s in range(models)]


def test_the_estimate_grows_with_models_epochs_and_layers(scaled_target):
    base = budget.estimate_runs(_runs(scaled_target))
    assert base.models == 4 and base.programs == 1
    assert base.model_steps == 4 * 100 * 16  # 500 rows in batches of 32: 16 steps
    more_models = budget.estimate_runs(_runs(scaled_target, models=40))
    longer = budget.estimate_runs(_runs(scaled_target, epochs=1000))
    deeper = budget.estimate_runs(_runs(scaled_target, depth=10))
    assert more_models.train_s > 5 * base.train_s
    assert longer.train_s == pytest.approx(10 * base.train_s)
    assert deeper.train_s > 3 * base.train_s and deeper.compile_s > base.compile_s
    assert longer.peak_bytes > base.peak_bytes  # the history grows with the epochs
    assert "4 models, 6,400 model-steps in 1 compiled program" in base.describe()


def test_telemetry_history_counts_towards_memory_up_to_the_history_limit(scaled_target):
    """4 models x 2 layers x 12 statistics x 10,000 epochs x 4 bytes, kept and concatenated:
    7.3 MiB; beyond HISTORY_POINTS epochs the history is thinned and stops growing."""
    on = budget.estimate_runs(_runs(scaled_target, epochs=HISTORY_POINTS))
    off = budget.estimate_runs(_runs(scaled_target, epochs=HISTORY_POINTS, telemetry=False))
    assert on.peak_bytes > off.peak_bytes + 7 * 2**20
    longer = budget.estimate_runs(_runs(scaled_target, epochs=100 * HISTORY_POINTS))
    assert longer.peak_bytes < on.peak_bytes + 2**20


def test_a_model_too_large_for_memory_is_refused_in_one_sentence_before_any_work(
    scaled_target,
):
    runs = _runs(scaled_target, models=2, units=100_000, depth=3, epochs=2)
    with pytest.raises(ResourceError, match=r"needs about .* GiB of memory but .* available"):
        sl.train(runs)
    estimate = budget.estimate_runs(runs)
    budget.check_memory(estimate, available=int(estimate.peak_bytes / budget.MEMORY_SHARE) + 1)
    with pytest.raises(ResourceError, match="fewer repeats, epochs, units or rows"):
        budget.check_memory(estimate, available=estimate.peak_bytes)


def test_chunks_hold_a_fraction_of_a_second_of_training(scaled_target):
    short = _runs(scaled_target, epochs=5)
    assert budget.chunk_epochs(short) == 5  # a short run is one chunk: nothing changes
    long = _runs(scaled_target, models=90, epochs=100_000)
    chunk = budget.chunk_epochs(long)
    assert 1 <= chunk < 100_000
    epoch_s = 16 * budget.step_seconds(90, long[0].model, 32)
    assert chunk * epoch_s <= budget.CHUNK_S < (chunk + 1) * epoch_s


def test_estimates_combine_in_sequence_and_in_parallel():
    a = budget.Estimate(2, 100, 1, 1.0, 3.0, budget.BASE_BYTES + 100)
    b = budget.Estimate(3, 200, 2, 2.0, 1.0, budget.BASE_BYTES + 300)
    both = a.then(b)
    assert (both.models, both.model_steps, both.programs) == (5, 300, 3)
    assert both.seconds == 7.0 and both.peak_bytes == budget.BASE_BYTES + 300
    spread = both.in_parallel(2)
    assert spread.seconds == 3.5 and spread.peak_bytes == budget.BASE_BYTES + 600
    assert a.repeated(3).train_s == 9.0 and a.repeated(3).peak_bytes == a.peak_bytes


def test_available_memory_is_positive():
    assert budget.available_memory() > 2**20


def test_batch_normalized_layers_cost_more_to_compile(scaled_target):
    plain = sl.MLP.stack(20, 6, 5, "relu")
    normalized = sl.MLP.stack(20, 6, 5, "relu", batch_norm=True)
    config = sl.TrainConfig(epochs=2)
    costs = [
        budget.estimate_runs([sl.Run(m, sl.SGD(0.01), scaled_target, 0, config)]).compile_s
        for m in (plain, normalized)
    ]
    assert costs[1] == pytest.approx(costs[0] + 6 * budget.BATCH_NORM_COMPILE_S)


def test_a_packed_program_costs_its_packing(scaled_target):
    """Several depths and activations in one program: the planner's packing costs (masked
    slots, every activation computed), not the deepest model's alone."""
    from stablelearn.engine.plan import (
        ACTIVATION_COMPILE_S,
        ACTIVATION_TRAIN_FACTOR,
        PACKED_COMPILE_LAYER_S,
        PACKED_TRAIN_FACTOR,
        plan_programs,
    )

    config = sl.TrainConfig(epochs=5)
    deep = sl.MLP.stack(20, 3, 5, "relu", "he_uniform")
    shallow = sl.MLP.stack(20, 2, 5, "tanh", "glorot_uniform")
    runs = [sl.Run(m, sl.SGD(0.01, 0.9), scaled_target, s, config) for m in (deep, shallow)
            for s in range(2)]  # fmt: skip
    assert len(plan_programs(runs)) == 1  # short runs pack
    packed = budget.group_estimate(runs)
    plain = budget.group_estimate([sl.Run(deep, r.optimizer, r.data, r.seed, config) for r in runs])
    layers = 4
    extra = PACKED_COMPILE_LAYER_S * layers + ACTIVATION_COMPILE_S
    assert packed.compile_s == pytest.approx(plain.compile_s + extra)
    factor = PACKED_TRAIN_FACTOR * (1 + ACTIVATION_TRAIN_FACTOR)
    assert packed.train_s == pytest.approx(plain.train_s * factor)
