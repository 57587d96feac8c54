"""Detectors: each one firing and staying quiet at its documented threshold, on synthetic
TrainResults (no training), then on the lesson's case studies in both directions.

Synthetic results hold float32 histories and telemetry, as the engine produces them, for
a 1-2(relu)-2(tanh)-1 net on a 4-row target of -1/1 (variance 1, so a loss ratio is the
loss itself). The lesson's cases run the shipped catalog experiments at their settings.
"""

import dataclasses

import numpy as np
import pytest

import stablelearn as sl
from stablelearn import diagnostics as dx
from stablelearn.data import Dataset, PreparedData, Scaler
from stablelearn.experiments.runner import run_experiment
from stablelearn.lesson.catalog import catalog
from stablelearn.results import Timing, TrainResult

EPOCHS = 10
NET = sl.MLP(1, (sl.Dense(2, "relu"), sl.Dense(2, "tanh")), sl.Dense(1))
SEEDS = (3, 4, 5)


def prepared(y, task="regression", n_classes=0) -> PreparedData:
    y = np.asarray(y, np.float32)
    x = np.arange(len(y), dtype=np.float32).reshape(-1, 1)
    return PreparedData(x, y, x, y, task, Scaler(), Scaler(), name="toy", n_classes=n_classes)


REGRESSION = prepared([-1.0, 1.0, -1.0, 1.0])  # baseline loss: variance 1


def telemetry(n=3, epochs=EPOCHS, layers=3, **values):
    """Healthy telemetry (gradient norm 1 everywhere, no dead or saturated units)."""
    t = {
        "grad_norm": np.ones((n, epochs, layers), np.float32),
        "grad_abs_max": np.ones((n, epochs, layers), np.float32),
        "update_ratio": np.full((n, epochs, layers), 0.01, np.float32),
        "weight_norm": np.ones((n, epochs, layers), np.float32),
        "dead_fraction": np.zeros((n, epochs, layers - 1), np.float32),
        "saturated_fraction": np.zeros((n, epochs, layers - 1), np.float32),
        "clip_rate": np.zeros((n, epochs), np.float32),
        "first_nonfinite_step": np.full(n, -1, np.int64),
        "first_nonfinite_layer": np.full(n, -1, np.int64),
        "first_nonfinite_direction": np.full(n, "", "<U8"),
        "first_nonfinite_kind": np.full(n, "", "<U8"),
    }
    for key, value in values.items():
        t[key] = np.asarray(value, t[key].dtype)
    return t


def synthetic(
    loss,
    *,
    diverged_epoch=None,
    tele=None,
    model=NET,
    data=REGRESSION,
    seeds=SEEDS,
) -> TrainResult:
    """A TrainResult with loss [models, epochs] (a list of final losses: flat curves)."""
    loss = np.asarray(loss, np.float32)
    if loss.ndim == 1:
        loss = np.repeat(loss[:, None], EPOCHS, axis=1)
    n, epochs = loss.shape
    config = sl.TrainConfig.for_task(data.task, epochs=epochs)
    runs = tuple(sl.Run(model, sl.SGD(), data, s, config) for s in seeds[:n])
    diverged = np.full(n, -1) if diverged_epoch is None else np.asarray(diverged_epoch)
    return TrainResult(
        runs=runs,
        epochs=epochs,
        history={"loss": loss, "val_loss": loss},
        train_scores={"loss": loss[:, -1].astype(np.float64)},
        test_scores={"loss": loss[:, -1].astype(np.float64)},
        diverged_epoch=diverged.astype(np.int64),
        train_predictions=(),
        test_predictions=(),
        final_params=(),
        timing=Timing(0.0, 0.0, 0.0, 1, n),
        telemetry=telemetry(n, epochs) if tele is None else tele,
    )


def below(threshold: float) -> float:
    """A value just below a threshold in float32, the engine's precision."""
    return float(np.nextafter(np.float32(threshold), np.float32(0)))


# --- baseline loss --------------------------------------------------------------------------


def test_baseline_loss_is_the_variance_for_mse():
    assert dx.baseline_loss(np.array([1.0, 2.0, 3.0, 4.0]), "mse") == pytest.approx(1.25)
    assert dx.baseline_loss(REGRESSION.train_y, "mse") == 1.0


def test_baseline_loss_is_the_class_entropy_for_cross_entropy():
    y = np.array([0, 0, 0, 1], np.float32)
    expected = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert dx.baseline_loss(y, "binary_crossentropy") == pytest.approx(expected)
    assert dx.baseline_loss(np.arange(8) % 4, "sparse_categorical_crossentropy") == pytest.approx(
        np.log(4)
    )
    assert dx.baseline_loss(np.array([2, 2, 2]), "sparse_categorical_crossentropy") == 0.0


# --- not learning ---------------------------------------------------------------------------


def test_not_learning_fires_at_ninety_percent_of_the_constant_predictions_loss():
    finding = dx.detect_not_learning(synthetic([0.1, dx.NOT_LEARNING_RATIO, 1.3]))
    assert finding is not None
    assert finding.id == "not_learning" and finding.severity == "warning"
    assert finding.evidence["models"] == [1, 2]
    assert finding.evidence["seeds"] == [4, 5]
    assert finding.evidence["affected"] == "2/3"
    assert finding.evidence["baseline_loss"] == 1.0
    assert finding.evidence["final_loss_median"] == pytest.approx(1.1)
    assert "adam" in finding.repairs
    assert finding.message.startswith("2 of 3 models end no better than a constant prediction")


def test_not_learning_stays_quiet_just_below_the_threshold():
    assert dx.detect_not_learning(synthetic([0.1, below(dx.NOT_LEARNING_RATIO), 0.5])) is None


def test_not_learning_leaves_diverged_models_to_the_exploding_detector():
    result = synthetic([0.1, np.nan, 0.2], diverged_epoch=[-1, 4, -1])
    assert dx.detect_not_learning(result) is None
    assert dx.not_learning_mask(result).tolist() == [False, True, False]


def test_not_learning_uses_the_class_entropy_for_classification():
    data = prepared([0, 0, 0, 1], "binary", n_classes=2)
    model = sl.MLP(1, (sl.Dense(2, "relu"), sl.Dense(2, "tanh")), sl.Dense(1, "sigmoid"))
    base = dx.baseline_loss(data.train_y, "binary_crossentropy")  # 0.562
    result = synthetic([0.05, 0.95 * base, 0.85 * base], data=data, model=model)
    finding = dx.detect_not_learning(result)
    assert finding.evidence["models"] == [1]
    assert finding.evidence["baseline_loss"] == pytest.approx(base)


# --- exploding ------------------------------------------------------------------------------


def test_exploding_fires_on_a_diverged_model_with_its_first_bad_step():
    tele = telemetry(first_nonfinite_step=[-1, 20, -1])
    tele["grad_abs_max"][1, 1] = 3e30
    result = synthetic([0.1, np.nan, 0.1], diverged_epoch=[-1, 2, -1], tele=tele)
    finding = dx.detect_exploding(result)
    assert finding.id == "exploding_gradients" and finding.severity == "critical"
    assert finding.evidence["models"] == [1]
    assert finding.evidence["affected"] == "1/3"
    assert finding.evidence["diverged_epoch_min"] == 2
    assert finding.evidence["first_nonfinite_step_min"] == 20
    assert "from epoch 2" in finding.message
    assert finding.repairs[0] == "scale_target_standard"


def test_exploding_says_where_the_first_nonfinite_value_came_from_most_often():
    """Three of four models diverge: two from layer 2's gradient (steps 5 and 3), one
    from the output layer's update; the most common origin leads, from its first step."""
    tele = telemetry(
        n=4,
        first_nonfinite_step=[5, 3, 4, -1],
        first_nonfinite_layer=[1, 1, 2, -1],
        first_nonfinite_direction=["backward", "backward", "backward", ""],
        first_nonfinite_kind=["gradient", "gradient", "update", ""],
    )
    result = synthetic(
        [np.nan, np.nan, np.nan, 0.1], diverged_epoch=[1, 1, 1, -1], tele=tele,
        seeds=(0, 1, 2, 3),
    )  # fmt: skip
    origins = dx.Observation.from_result(result).nan_origins()
    assert origins[3] is None
    assert origins[0].describe() == "step 5, layer 2 of 3, backward (gradient)"
    assert origins[2].describe() == "step 4, the output layer, backward (update)"
    assert origins[2].phrase() == "the update of the output layer"
    assert origins[0].layer_name == "hidden_2" and origins[2].layer_name == "output"
    finding = dx.detect_exploding(result)
    origin = finding.evidence["nan_origin"]
    assert (origin["models"], origin["of"], origin["origins"], origin["step"]) == (2, 3, 2, 3)
    assert origin["sentence"] == (
        "first non-finite value at step 3, layer 2 of 3, backward (gradient), in 2 of 3 models"
    )
    assert origin["sentence"] in finding.message
    # without the origin (telemetry off, or an older result): no evidence, same message
    bare = {k: v for k, v in tele.items() if not k.startswith("first_nonfinite_") or
            k == "first_nonfinite_step"}  # fmt: skip
    result = synthetic([np.nan] * 3 + [0.1], diverged_epoch=[1, 1, 1, -1], tele=bare,
                       seeds=(0, 1, 2, 3))  # fmt: skip
    assert "nan_origin" not in dx.detect_exploding(result).evidence


def test_exploding_fires_on_a_thousandfold_growth_of_the_gradient_norm():
    grad = np.ones((3, EPOCHS, 3), np.float32)
    grad[0, 6, 1] = dx.EXPLODING_GROWTH  # 1000x the first epoch
    grad[1, 6, 1] = below(dx.EXPLODING_GROWTH)
    grad[2, :, :] = 1e6  # large but flat: no growth
    finding = dx.detect_exploding(synthetic([0.1, 0.1, 0.1], tele=telemetry(grad_norm=grad)))
    assert finding is not None
    assert finding.evidence["models"] == [0]
    assert "diverged_epoch_min" not in finding.evidence
    assert "growing 1000x" in finding.message


def test_exploding_stays_quiet_on_healthy_models_with_and_without_telemetry():
    assert dx.detect_exploding(synthetic([0.1, 0.1, 0.1])) is None
    assert dx.detect_exploding(synthetic([0.1, 0.1, 0.1], tele={})) is None
    without = dx.detect_exploding(
        synthetic([0.1, np.nan, 0.1], diverged_epoch=[-1, 1, -1], tele={})
    )
    assert without.evidence["models"] == [1]


# --- vanishing ------------------------------------------------------------------------------


def vanishing_grads(hidden_2: list[float]) -> np.ndarray:
    """Gradient norm 1 in hidden_1 and the output; hidden_2 per model."""
    grad = np.ones((len(hidden_2), EPOCHS, 3), np.float32)
    grad[:, :, 1] = np.asarray(hidden_2, np.float32)[:, None]
    return grad


def test_vanishing_fires_at_a_tenth_of_the_output_gradient_in_models_that_do_not_learn():
    grad = vanishing_grads([dx.VANISHING_RATIO, 0.2, 0.001])
    result = synthetic([1.0, 1.0, 0.1], tele=telemetry(grad_norm=grad))  # model 2 learns
    finding = dx.detect_vanishing(result)
    assert finding.id == "vanishing_gradients"
    assert finding.evidence["models"] == [0]
    assert finding.evidence["weakest_layers"] == ["hidden_2"]
    assert finding.evidence["ratio_min_hidden_to_output"] == [pytest.approx(0.1)]


def test_vanishing_stays_quiet_just_above_the_ratio():
    grad = vanishing_grads([0.1001, 0.5, 1.0])
    assert dx.detect_vanishing(synthetic([1.0, 1.0, 1.0], tele=telemetry(grad_norm=grad))) is None


def test_vanishing_uses_the_median_over_epochs():
    grad = vanishing_grads([1.0, 1.0, 1.0])
    grad[0, :4, 0] = 0.01  # 4 of 10 epochs tiny: the median stays at 1
    grad[1, :6, 0] = 0.01  # 6 of 10: the median is tiny
    finding = dx.detect_vanishing(synthetic([1.0, 1.0, 1.0], tele=telemetry(grad_norm=grad)))
    assert finding.evidence["models"] == [1]
    assert finding.evidence["weakest_layers"] == ["hidden_1"]


def test_vanishing_reads_each_models_own_output_layer_when_depths_differ():
    """Packed models of different depths: the shallower one's columns end with NaN."""
    grad = np.ones((2, EPOCHS, 3), np.float32)
    grad[0, :, 1] = 0.01  # depth 2: hidden_2 vanishes
    grad[1, :, 0], grad[1, :, 2] = 0.01, np.nan  # depth 1: hidden_1 vanishes; no third layer
    result = synthetic([1.0, 1.0], tele=telemetry(2, grad_norm=grad))
    deep = sl.MLP(NET.input_dim, (NET.hidden[0],) * 2, NET.output)
    shallow = sl.MLP(NET.input_dim, (NET.hidden[0],), NET.output)
    runs = (dataclasses.replace(result.runs[0], model=deep),
            dataclasses.replace(result.runs[1], model=shallow))  # fmt: skip
    finding = dx.detect_vanishing(dataclasses.replace(result, runs=runs))
    assert finding.evidence["models"] == [0, 1]
    assert finding.evidence["ratio_min_hidden_to_output"] == [pytest.approx(0.01)] * 2
    assert finding.evidence["weakest_layers"] == ["hidden_1", "hidden_2"]


def test_vanishing_needs_hidden_layers_and_telemetry():
    linear = sl.MLP(1, (), sl.Dense(1))
    tele = telemetry(layers=1, grad_norm=np.full((3, EPOCHS, 1), 1e-9))
    assert dx.detect_vanishing(synthetic([1.0, 1.0, 1.0], model=linear, tele=tele)) is None
    assert dx.detect_vanishing(synthetic([1.0, 1.0, 1.0], tele={})) is None


# --- dying ReLU and saturation ----------------------------------------------------------------


def test_dying_relu_fires_at_seventy_percent_dead_units_at_the_end():
    dead = np.zeros((3, EPOCHS, 2), np.float32)
    dead[0, 3:, 0] = 0.7
    dead[1, :, 0] = 0.6
    dead[2, :, 0] = 1.0  # fully dead, but the model learns
    dead[0, :, 1] = np.nan  # the tanh layer has no dead units
    result = synthetic([1.0, 1.0, 0.05], tele=telemetry(dead_fraction=dead))
    finding = dx.detect_dying_relu(result)
    assert finding.id == "dying_relu"
    assert finding.evidence["models"] == [0]
    assert finding.evidence["layers"] == ["hidden_1"]
    assert finding.evidence["from_epoch_min"] == 4
    assert "hidden_1" in finding.message


def test_dying_relu_reads_the_last_epoch_of_a_long_run_with_unmeasured_epochs():
    dead = np.full((3, EPOCHS, 2), np.nan, np.float32)  # measured every third epoch only
    dead[:, 2::3, 0] = 0.0
    dead[:, -1, 0] = [0.8, 0.69, 0.0]
    dead[0, 5, 0] = 0.8
    finding = dx.detect_dying_relu(synthetic([1.0, 1.0, 1.0], tele=telemetry(dead_fraction=dead)))
    assert finding.evidence["models"] == [0]
    assert finding.evidence["from_epoch_min"] == 6


def test_dying_relu_stays_quiet_below_seventy_percent():
    dead = np.zeros((3, EPOCHS, 2), np.float32)
    dead[:, :, 0] = below(dx.DEAD_FRACTION)
    assert (
        dx.detect_dying_relu(synthetic([1.0, 1.0, 1.0], tele=telemetry(dead_fraction=dead))) is None
    )


def test_saturation_fires_at_half_of_a_layers_activations():
    sat = np.zeros((3, EPOCHS, 2), np.float32)
    sat[:, :, 0] = np.nan  # relu layer: not applicable
    sat[:, -1, 1] = [dx.SATURATION_FRACTION, below(dx.SATURATION_FRACTION), 1.0]
    result = synthetic([1.0, 1.0, 0.2], tele=telemetry(saturated_fraction=sat))
    finding = dx.detect_saturation(result)
    assert finding.id == "saturation"
    assert finding.evidence["models"] == [0]
    assert finding.evidence["layers"] == ["hidden_2"]
    assert finding.evidence["from_epoch_min"] == EPOCHS


def test_unit_detectors_without_telemetry_stay_quiet():
    result = synthetic([1.0, 1.0, 1.0], tele={})
    assert dx.detect_dying_relu(result) is None
    assert dx.detect_saturation(result) is None


# --- oscillation --------------------------------------------------------------------------------


def oscillating(
    rises: int, factor: float = 1.2, level: float = 1.0, epochs: int = 21
) -> np.ndarray:
    """A loss curve whose second half (epochs // 2 onwards) has `rises` rises by `factor`."""
    curve = np.full(epochs, 2 * level, np.float32)
    half = epochs // 2
    curve[half:] = level
    for k in range(rises):
        curve[half + 1 + 2 * k] = level * factor
    return curve


def test_oscillation_fires_when_thirty_percent_of_the_second_half_rises_by_over_ten_percent():
    # 21 epochs: the second half has 11 values, so 10 epoch-to-epoch steps
    loss = np.stack([oscillating(3), oscillating(2), oscillating(3, factor=1.1)])
    finding = dx.detect_oscillation(synthetic(loss))
    assert finding.id == "oscillating_loss"
    assert finding.evidence["models"] == [0]  # 2/10 < 30%; a rise of exactly 10% does not count
    assert finding.evidence["share_of_rising_epochs"] == [pytest.approx(0.3)]
    assert finding.repairs == ("lower_learning_rate", "adam")


def test_oscillation_at_a_loss_far_below_the_constant_prediction_is_noise():
    loss = np.stack(
        [oscillating(5, level=dx.OSCILLATION_LEVEL), oscillating(5, level=0.09), oscillating(0)]
    )
    finding = dx.detect_oscillation(synthetic(loss))
    assert finding.evidence["models"] == [0]


def test_oscillation_needs_four_epochs_in_the_second_half():
    wild = np.tile(np.asarray([1.0, 3.0], np.float32), 4)
    assert dx.detect_oscillation(synthetic(np.stack([wild[:7]] * 3))) is not None
    assert dx.detect_oscillation(synthetic(np.stack([wild[:6]] * 3))) is None


def test_oscillation_ignores_diverged_models():
    loss = np.stack([oscillating(5), oscillating(5), oscillating(0)])
    loss[1, -1] = np.nan
    finding = dx.detect_oscillation(synthetic(loss, diverged_epoch=[-1, 21, -1]))
    assert finding.evidence["models"] == [0]


# --- clipping ---------------------------------------------------------------------------------


def test_clipping_active_fires_when_half_of_all_steps_were_clipped():
    rate = np.zeros((3, EPOCHS), np.float32)
    rate[0, :5] = 1.0  # mean 0.5
    rate[1, :] = 0.49
    rate[2, :4] = 1.0
    rate[2, 4:] = np.nan  # NaN epochs are left out of the mean: 4/4 = 1
    finding = dx.detect_clipping_active(synthetic([0.1] * 3, tele=telemetry(clip_rate=rate)))
    assert finding.id == "clipping_active" and finding.severity == "info"
    assert finding.evidence["models"] == [0, 2]
    assert finding.evidence["clip_rate"] == [pytest.approx(0.5), pytest.approx(1.0)]


def test_clipping_active_stays_quiet_below_half_and_without_telemetry():
    rate = np.full((3, EPOCHS), 0.45, np.float32)
    assert dx.detect_clipping_active(synthetic([0.1] * 3, tele=telemetry(clip_rate=rate))) is None
    assert dx.detect_clipping_active(synthetic([0.1] * 3, tele={})) is None


# --- diagnose ---------------------------------------------------------------------------------


def test_diagnose_a_healthy_result_finds_nothing():
    assert dx.diagnose(synthetic([0.1, 0.2, 0.05])) == []


def test_diagnose_orders_findings_by_detector_and_serializes_them():
    dead = np.zeros((3, EPOCHS, 2), np.float32)
    dead[:, :, 0] = 1.0
    tele = telemetry(dead_fraction=dead, grad_norm=vanishing_grads([1.0, 1.0, 1.0]) * 1)
    tele["grad_norm"][:, :, 0] = 0.0
    result = synthetic([1.0, np.nan, 1.0], diverged_epoch=[-1, 3, -1], tele=tele)
    findings = dx.diagnose(result)
    assert [f.id for f in findings] == [
        "exploding_gradients", "not_learning", "vanishing_gradients", "dying_relu",
    ]  # fmt: skip
    assert {f.id for f in findings} == {
        "exploding_gradients", "not_learning", "vanishing_gradients", "dying_relu",
    }  # fmt: skip
    doc = findings[3].to_json()
    assert set(doc) == {"id", "title", "severity", "message", "evidence", "repairs"}
    assert doc["evidence"]["models"] == [0, 2]  # the diverged model is the exploding one
    assert isinstance(doc["repairs"], list)


# --- data checks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lesson_data() -> Dataset:
    return sl.lesson_regression()


def test_target_spread_fires_on_the_lessons_regression_data(lesson_data):
    findings = dx.check_data(lesson_data)
    assert [f.id for f in findings] == ["target_spread"]
    evidence = findings[0].evidence
    assert evidence["target_std"] == pytest.approx(lesson_data.y.std())
    assert evidence["target_std"] > 100
    assert evidence["target_max_abs"] == pytest.approx(np.abs(lesson_data.y).max())
    assert findings[0].repairs[0] == "scale_target_standard"


def test_a_standardized_target_raises_no_data_finding(lesson_data):
    y = (lesson_data.y - lesson_data.y.mean()) / lesson_data.y.std()
    assert dx.check_data(Dataset(lesson_data.x, y)) == []


def test_unscaled_inputs_fire_when_one_column_is_multiplied_by_1000(lesson_data):
    x = lesson_data.x.copy()
    x[:, 3] *= 1000
    y = (lesson_data.y - lesson_data.y.mean()) / lesson_data.y.std()
    findings = dx.check_data(Dataset(x, y))
    assert [f.id for f in findings] == ["unscaled_inputs"]
    evidence = findings[0].evidence
    assert evidence["largest_feature"] == "x3"
    assert evidence["max_abs"] == pytest.approx(np.abs(x[:, 3]).max())
    assert evidence["spread_ratio"] == pytest.approx(x.std(axis=0).max() / x.std(axis=0).min())
    assert evidence["spread_ratio"] > 500


def alternating(n: int, value: float) -> np.ndarray:
    """+value, -value, ...: mean 0 and (population) standard deviation exactly `value`."""
    return np.where(np.arange(n) % 2 == 0, value, -value)


def test_unscaled_inputs_boundaries():
    n = 40
    small = alternating(n, 2.0**-7)  # std 1/128
    y = alternating(n, 1.0)
    at_ratio = Dataset(np.column_stack([small, alternating(n, 100 * 2.0**-7)]), y)
    assert [f.id for f in dx.check_data(at_ratio)] == ["unscaled_inputs"]
    assert dx.check_data(at_ratio)[0].evidence["spread_ratio"] == 100.0
    under_ratio = Dataset(np.column_stack([small, alternating(n, 99 * 2.0**-7)]), y)
    assert dx.check_data(under_ratio) == []
    big = np.linspace(-50.0, 50.0, n)  # std ~29, far from the ratio
    large = Dataset(np.column_stack([big * 2, alternating(n, 30.0)]), y)  # |x| reaches 100
    assert [f.id for f in dx.check_data(large)] == ["unscaled_inputs"]
    under = Dataset(np.column_stack([big * 1.99, alternating(n, 30.0)]), y)
    assert dx.check_data(under) == []


def test_target_spread_boundaries():
    n = 200
    x = np.column_stack([alternating(n, 1.0), np.linspace(-1, 1, n)])
    assert [f.id for f in dx.check_data(Dataset(x, alternating(n, 10.0)))] == ["target_spread"]
    assert dx.check_data(Dataset(x, alternating(n, 9.99))) == []
    spike = np.zeros(n)
    spike[7] = 100.0  # std about 7, but |y| reaches 100
    assert [f.id for f in dx.check_data(Dataset(x, spike))] == ["target_spread"]
    spike[7] = 99.0
    assert dx.check_data(Dataset(x, spike)) == []


def classes(counts) -> np.ndarray:
    return np.concatenate([np.full(c, k, np.float64) for k, c in enumerate(counts)])


@pytest.mark.parametrize(
    ("counts", "task", "fires"),
    [
        ((180, 20), "binary", True),  # 10% minority
        ((100, 100), "binary", False),  # 50%
        ((160, 40), "binary", False),  # exactly 20%: not below the threshold
        ((161, 39), "binary", True),  # 19.5%
        ((100, 90, 10), "multiclass", True),
        ((70, 70, 60), "multiclass", False),
        ((20,) * 9 + (18,), "multiclass", False),  # ten balanced classes: 9% each
        ((40, 40, 40, 9), "multiclass", True),  # 9/40 < 1/4
    ],
)
def test_class_imbalance(counts, task, fires):
    y = classes(counts)
    x = np.column_stack([np.linspace(-1, 1, len(y)), alternating(len(y), 1.0)])
    findings = dx.check_data(Dataset(x, y, task))
    assert [f.id for f in findings] == (["class_imbalance"] if fires else [])
    if fires:
        share = min(counts) / sum(counts)
        assert findings[0].evidence["minority_share"] == pytest.approx(share)
        assert findings[0].evidence["class_counts"] == list(counts)


def test_constant_columns_are_reported_and_ignored_by_the_scale_checks():
    n = 40
    x = np.column_stack([alternating(n, 1.0), np.full(n, 1e6), np.linspace(-1, 1, n), np.zeros(n)])
    data = Dataset(x, alternating(n, 1.0), feature_names=("a", "huge", "b", "zero"))
    assert dx.constant_columns(data) == ["huge", "zero"]
    findings = dx.check_data(data)
    assert [f.id for f in findings] == ["constant_columns"]  # 1e6 is constant: no scale issue
    assert findings[0].evidence["columns"] == ["huge", "zero"]
    assert "huge, zero" in findings[0].message


# --- the lesson's case studies ------------------------------------------------------------------


LESSON_CASES = ("unscaled-mlp", "standardized-target", "tanh-5", "relu-5", "relu-20")


@pytest.fixture(scope="module")
def lesson_findings() -> dict[str, list]:
    """Each case at the lesson's settings (the catalog's epochs, repeats and seeds)."""
    experiments = {e.id: e for e in catalog() if e.id in LESSON_CASES}
    out = {}
    for name in LESSON_CASES:
        result = run_experiment(experiments[name]).variants[0].result
        out[name] = dx.diagnose(result)
    return out


def by_id(findings) -> dict:
    return {f.id: f for f in findings}


@pytest.mark.slow
def test_unscaled_mlp_explodes(lesson_findings):
    findings = by_id(lesson_findings["unscaled-mlp"])
    assert set(findings) == {"exploding_gradients"}
    evidence = findings["exploding_gradients"].evidence
    assert evidence["affected"] == "10/10"
    assert evidence["diverged_epoch_min"] == 1
    assert 1 <= evidence["first_nonfinite_step_min"] <= 16  # within the first epoch
    assert evidence["nan_origin"]["where"] == "the output layer"
    assert evidence["nan_origin"]["direction"] == "forward"


@pytest.mark.slow
def test_tanh_5_does_not_learn(lesson_findings):
    findings = by_id(lesson_findings["tanh-5"])
    assert "not_learning" in findings
    assert findings["not_learning"].evidence["affected"] in {f"{k}/10" for k in range(5, 11)}
    assert "exploding_gradients" not in findings
    assert set(findings) <= {"not_learning", "saturation", "vanishing_gradients"}


@pytest.mark.slow
def test_relu_20_does_not_learn_with_dead_units_and_vanishing_gradients(lesson_findings):
    findings = by_id(lesson_findings["relu-20"])
    assert {"not_learning", "dying_relu", "vanishing_gradients"} <= set(findings)
    assert "exploding_gradients" not in findings
    stuck = set(findings["not_learning"].evidence["models"])
    assert len(stuck) >= 15  # of 20
    assert set(findings["dying_relu"].evidence["models"]) <= stuck
    assert set(findings["vanishing_gradients"].evidence["models"]) <= stuck


@pytest.mark.slow
@pytest.mark.parametrize("name", ["standardized-target", "relu-5"])
def test_healthy_lesson_cases_raise_no_finding(lesson_findings, name):
    assert lesson_findings[name] == [], [f.message for f in lesson_findings[name]]
