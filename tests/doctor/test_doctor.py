"""The doctor end to end on the shipped CSV, its repairs, and its ranking statistics.

The end-to-end fixture runs the lesson's MLP and SGD(0.01, 0.9) on
examples/lesson_regression.csv (unscaled) with 6 repeats of 30 epochs. Six repeats, not
five: the doctor tries six repairs, and with five seeds per arm the best attainable
Holm-adjusted p-value is 6 x 0.0075 = 0.045, a hair under 0.05; with six it is 0.017.
"""

import copy
import json
import math
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

from stablelearn.diagnostics import Finding
from stablelearn.doctor import diagnose as doctor
from stablelearn.doctor.diagnose import rank, run_doctor
from stablelearn.doctor.repairs import MAX_CANDIDATES, Candidate, candidate_repairs, repair_tables
from stablelearn.doctor.report import diagnosis_json, summary_lines, write_doctor
from stablelearn.experiments import load_file, load_mapping, variant_tables
from stablelearn.experiments.runner import run_experiment
from stablelearn.stats import holm

CSV = Path(__file__).resolve().parents[2] / "examples" / "lesson_regression.csv"
REPEATS, EPOCHS = 6, 30
LESSON_MODEL = {
    "hidden": [{"units": 25, "activation": "relu", "kernel_initializer": "he_uniform"}],
    "output": {"units": 1, "activation": "linear"},
}
LESSON_SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}


def lesson_raw(**data) -> dict:
    """The user's configuration as the doctor command builds it for the shipped CSV."""
    return {
        "id": "doctor-lesson_regression",
        "title": "Your configuration on lesson_regression.csv",
        "dataset": str(CSV),
        "target": "target",
        "task": "regression",
        "model": copy.deepcopy(LESSON_MODEL),
        "optimizer": dict(LESSON_SGD),
        "data": dict(data),
        "figures": ["learning_curves", "gradients"],
        "repeats": REPEATS,
        "epochs": EPOCHS,
    }


@pytest.fixture(scope="module")
def unscaled_diagnosis():
    return run_doctor(load_mapping(lesson_raw(), "doctor"))


@pytest.fixture(scope="module")
def standardized_diagnosis():
    return run_doctor(load_mapping(lesson_raw(target_scaler="standard"), "doctor"))


@pytest.fixture(scope="module")
def doctor_folder(unscaled_diagnosis, tmp_path_factory):
    target = tmp_path_factory.mktemp("doctor") / "out"
    return write_doctor(unscaled_diagnosis, target, CSV)


def ids(diagnosis) -> list[str]:
    return [f.id for f in diagnosis.findings]


# --- end to end on the shipped CSV --------------------------------------------------------


@pytest.mark.slow
def test_the_unscaled_target_is_diagnosed(unscaled_diagnosis):
    findings = {f.id: f for f in unscaled_diagnosis.findings}
    assert ids(unscaled_diagnosis) == ["target_spread", "exploding_gradients"]
    assert findings["target_spread"].evidence["target_std"] > 100
    exploding = findings["exploding_gradients"]
    assert exploding.severity == "critical"
    assert exploding.evidence["affected"] == f"{REPEATS}/{REPEATS}"
    assert exploding.evidence["diverged_epoch_min"] == 1
    baseline = unscaled_diagnosis.scores[0]
    assert baseline.name == "your configuration"
    assert (baseline.n, baseline.diverged, baseline.median) == (REPEATS, REPEATS, math.inf)


@pytest.mark.slow
def test_the_repairs_tried_follow_the_findings_most_severe_first(unscaled_diagnosis):
    tried = [c.name for c in unscaled_diagnosis.tried]
    assert tried == [
        "scale target (standard)", "clipnorm 1.0", "clipvalue 5.0", "learning rate / 10", "adam",
        "scale target (minmax)",
    ]  # fmt: skip
    assert [s.name for s in unscaled_diagnosis.scores] == ["your configuration", *tried]
    # paired comparison: every repair trains on the user's seeds
    seeds = unscaled_diagnosis.baseline.variants[0].result.seeds.tolist()
    assert seeds == list(range(REPEATS))
    for variant in unscaled_diagnosis.candidates.variants:
        assert variant.result.seeds.tolist() == seeds
        assert variant.result.epochs == EPOCHS


@pytest.mark.slow
def test_the_recommended_repair_trains_far_below_the_constant_prediction(unscaled_diagnosis):
    d = unscaled_diagnosis
    assert d.recommended is not None
    assert d.score_name == "test RMSE (target units)" and not d.higher_is_better
    best = next(s for s in d.scores if s.name == d.recommended.name)
    assert best.beats_baseline and best.p_holm < doctor.ALPHA
    assert best.diverged == 0 and best.prob_better == 1.0
    winners = [s for s in d.scores[1:] if s.beats_baseline]
    assert best.median == min(s.median for s in winners)
    trained = d.candidates.variant(d.recommended.name).result
    assert not trained.diverged.any()
    rmse = trained.test_scores["rmse_original"]
    assert np.isfinite(rmse).all()
    constant = float(np.std(d.experiment.data.y))  # RMSE of predicting the mean, ~153
    assert np.median(rmse) < 0.05 * constant
    assert best.median == pytest.approx(np.median(rmse))


@pytest.mark.slow
def test_the_summary_names_the_findings_and_the_recommendation(unscaled_diagnosis):
    lines = summary_lines(unscaled_diagnosis)
    assert lines[0].startswith("[warning] Regression target with a large spread:")
    assert lines[1].startswith(f"[critical] Exploding gradients: {REPEATS} of {REPEATS} models")
    name = unscaled_diagnosis.recommended.name
    assert lines[2].startswith(f"Recommended: {name}. Median test RMSE (target units) ")
    assert f"{REPEATS} seeds each, 0/{REPEATS} diverged vs {REPEATS}/{REPEATS}" in lines[2]


@pytest.mark.slow
def test_write_doctor_writes_strict_json_a_report_and_a_runnable_recommendation(
    unscaled_diagnosis, doctor_folder
):
    names = {p.name for p in doctor_folder.iterdir()}
    assert {
        "diagnosis.json",
        "recommended.toml",
        "report.html",
        "report.md",
        "repairs.png",
    } <= names
    assert not [p for p in doctor_folder.parent.iterdir() if ".partial-" in p.name]

    def no_constants(token):
        raise AssertionError(f"non-strict JSON token {token}")

    text = (doctor_folder / "diagnosis.json").read_text()
    doc = json.loads(text, parse_constant=no_constants)
    assert doc["schema_version"] == 1
    assert doc["data"]["task"] == "regression"
    assert doc["data"]["rows"] == 1000 and len(doc["data"]["features"]) == 20
    assert [f["id"] for f in doc["findings"]] == ["target_spread", "exploding_gradients"]
    assert doc["repeats"] == REPEATS and doc["epochs"] == EPOCHS
    assert doc["candidates"][0]["name"] == "your configuration"
    assert doc["candidates"][0]["median"] is None  # inf: every model diverged
    assert doc["candidates"][0]["tables"] is None
    assert len(doc["candidates"]) == 1 + len(unscaled_diagnosis.tried)
    assert doc["recommended"]["name"] == unscaled_diagnosis.recommended.name
    assert doc["recommended"]["file"] == "recommended.toml"
    assert doc["summary"] == summary_lines(unscaled_diagnosis)
    assert doc == json.loads(json.dumps(diagnosis_json(unscaled_diagnosis, "recommended.toml")))

    page = (doctor_folder / "report.html").read_text()
    assert "Exploding gradients" in page and "data:image/png;base64," in page
    assert unscaled_diagnosis.recommended.name in page


@pytest.mark.slow
def test_the_recommended_toml_loads_and_runs(unscaled_diagnosis, doctor_folder):
    path = doctor_folder / "recommended.toml"
    raw = tomllib.loads(path.read_text())
    recommended = unscaled_diagnosis.recommended
    assert raw["id"] == "doctor-lesson_regression-recommended"
    assert raw["title"].endswith(f": {recommended.name}")
    assert not Path(raw["dataset"]).is_absolute()  # relative to the folder: it can move along
    experiment = load_file(path)
    assert experiment.data.x.shape == (1000, 20)
    assert experiment.repeats == REPEATS and experiment.config.epochs == EPOCHS
    assert len(experiment.variants) == 1
    assert variant_tables(experiment.variants[0]) == recommended.tables
    result = run_experiment(experiment.override(repeats=2, epochs=3)).variants[0].result
    assert result.n_models == 2 and result.epochs == 3
    assert not result.diverged.any()
    assert np.isfinite(result.test_scores["rmse_original"]).all()


@pytest.mark.slow
def test_a_healthy_configuration_gets_no_recommendation(standardized_diagnosis):
    d = standardized_diagnosis
    training = [f for f in d.findings if f.id not in ("target_spread", "unscaled_inputs")]
    assert training == []
    assert d.recommended is None
    assert not any(s.beats_baseline for s in d.scores)
    assert d.scores[0].diverged == 0 and np.isfinite(d.scores[0].median)
    # its scaler already handles the target's spread: nothing to find, nothing to try
    assert d.findings == ()
    assert len(d.scores) == 1
    assert summary_lines(d) == [
        "No problem found: your configuration trains normally on this data."
    ]


def test_a_repair_that_changes_nothing_is_not_recommended():
    """clipvalue 5 is never reached by a standardized target's gradients: identical runs."""
    same = np.array([3.0, 2.0, 4.0, 5.0, 1.0, 6.0])
    no = np.zeros(6, bool)
    scores = rank([("yours", same, no), ("clipvalue 5.0", same.copy(), no)], higher_is_better=False)
    assert scores[1].median == scores[0].median
    assert scores[1].p_value == 1.0 and not scores[1].beats_baseline


def test_a_configuration_that_already_scales_its_target_is_not_told_to_scale_it(
    standardized_diagnosis,
):
    assert "target_spread" not in ids(standardized_diagnosis)


# --- repairs ------------------------------------------------------------------------------


BASE = {
    "data": {"input_scaler": "none", "target_scaler": "none"},
    "model": {
        "hidden": [
            {"units": 5, "activation": "tanh", "kernel_initializer": "glorot_uniform",
             "bias_initializer": "zeros"}
        ] * 5,
        "output": {"units": 1, "activation": "sigmoid", "kernel_initializer": "glorot_uniform",
                   "bias_initializer": "zeros"},
    },
    "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": False},
}  # fmt: skip


def with_(section: str, **values) -> dict:
    tables = copy.deepcopy(BASE)
    tables[section] = {**tables[section], **values}
    return tables


def test_scaling_repairs_set_the_scaler_or_do_not_apply():
    tables = repair_tables("scale_inputs_standard", BASE, "binary")
    assert tables["data"] == {"input_scaler": "standard", "target_scaler": "none"}
    assert repair_tables("scale_inputs_minmax", BASE, "binary")["data"]["input_scaler"] == "minmax"
    already = with_("data", input_scaler="standard")
    assert repair_tables("scale_inputs_standard", already, "regression") is None
    assert repair_tables("scale_target_standard", BASE, "binary") is None  # not regression
    assert (
        repair_tables("scale_target_minmax", BASE, "regression")["data"]["target_scaler"]
        == "minmax"
    )
    scaled = with_("data", target_scaler="standard")
    assert repair_tables("scale_target_standard", scaled, "regression") is None


def test_clip_repairs_replace_the_clip_mode():
    tables = repair_tables("clipnorm_1", with_("optimizer", clipvalue=5.0), "regression")
    assert tables["optimizer"] == {**BASE["optimizer"], "clipnorm": 1.0}
    tables = repair_tables("clipvalue_5", with_("optimizer", global_clipnorm=2.0), "regression")
    assert tables["optimizer"] == {**BASE["optimizer"], "clipvalue": 5.0}
    same = with_("optimizer", clipnorm=1.0)
    assert repair_tables("clipnorm_1", same, "regression") is None
    other = repair_tables("clipnorm_1", with_("optimizer", clipnorm=3.0), "regression")
    assert other["optimizer"]["clipnorm"] == 1.0


def test_learning_rate_repair_divides_by_ten_and_keeps_the_rest():
    tables = repair_tables("lower_learning_rate", with_("optimizer", clipnorm=2.0), "regression")
    assert tables["optimizer"] == {**BASE["optimizer"], "learning_rate": 0.001, "clipnorm": 2.0}


def test_adam_repair_drops_momentum_and_keeps_clipping():
    tables = repair_tables("adam", with_("optimizer", clipnorm=1.0), "regression")
    assert tables["optimizer"] == {"name": "adam", "learning_rate": 0.001, "clipnorm": 1.0}
    assert repair_tables("adam", BASE, "regression")["optimizer"] == {
        "name": "adam",
        "learning_rate": 0.001,
    }
    adam = {**BASE, "optimizer": {"name": "adam", "learning_rate": 0.01}}
    assert repair_tables("adam", adam, "regression") is None


def test_activation_repairs_change_every_hidden_layer_but_not_the_output():
    tables = repair_tables("relu_he", BASE, "binary")
    hidden = tables["model"]["hidden"]
    assert len(hidden) == 5
    assert all((h["activation"], h["kernel_initializer"]) == ("relu", "he_uniform") for h in hidden)
    assert all(h["units"] == 5 for h in hidden)
    assert tables["model"]["output"] == BASE["model"]["output"]
    leaky = repair_tables("leaky_relu_he", tables, "binary")
    assert {h["activation"] for h in leaky["model"]["hidden"]} == {"leaky_relu"}
    assert repair_tables("relu_he", tables, "binary") is None  # already in place
    linear = {**BASE, "model": {"hidden": [], "output": BASE["model"]["output"]}}
    assert repair_tables("elu_he", linear, "binary") is None


def test_fewer_layers_halves_the_depth_down_to_one():
    assert len(repair_tables("fewer_layers", BASE, "binary")["model"]["hidden"]) == 2
    deep = with_("model", hidden=BASE["model"]["hidden"][:1] * 20)
    assert len(repair_tables("fewer_layers", deep, "binary")["model"]["hidden"]) == 10
    two = with_("model", hidden=BASE["model"]["hidden"][:2])
    assert len(repair_tables("fewer_layers", two, "binary")["model"]["hidden"]) == 1
    one_layer = with_("model", hidden=BASE["model"]["hidden"][:1])
    assert repair_tables("fewer_layers", one_layer, "binary") is None


def test_repairs_leave_the_base_tables_alone_and_reject_unknown_names():
    before = copy.deepcopy(BASE)
    for name in (
        "relu_he",
        "fewer_layers",
        "lower_learning_rate",
        "scale_inputs_standard",
    ):
        repair_tables(name, BASE, "binary")
    assert before == BASE
    with pytest.raises(ValueError, match="unknown repair 'dropout'"):
        repair_tables("dropout", BASE, "binary")


def finding(severity: str, *repairs: str) -> Finding:
    return Finding(f"f-{severity}", "t", severity, "m", {}, repairs)


@pytest.fixture(scope="module")
def scaled_target_experiment():
    raw = lesson_raw(target_scaler="standard")
    return load_mapping({**raw, "optimizer": {**LESSON_SGD, "clipnorm": 1.0}}, "doctor")


def _base_and_task(experiment):
    return variant_tables(experiment.variants[0]), experiment.data.task


def test_candidate_repairs_most_severe_first_without_duplicates_or_no_ops(scaled_target_experiment):
    findings = [
        finding("info", "scale_inputs_minmax"),
        finding("warning", "scale_target_standard", "adam", "clipnorm_1", "clipvalue_5"),
        finding("critical", "lower_learning_rate", "adam"),
    ]
    candidates = candidate_repairs(*_base_and_task(scaled_target_experiment), findings)
    # scale target (standard) and clipnorm 1.0 are already in place: skipped
    assert [c.name for c in candidates] == [
        "learning rate / 10", "adam", "clipvalue 5.0", "scale inputs (minmax)",
    ]  # fmt: skip
    assert candidates[1].tables["optimizer"] == {
        "name": "adam",
        "learning_rate": 0.001,
        "clipnorm": 1.0,
    }
    assert candidates[2].tables["optimizer"]["clipvalue"] == 5.0
    assert "clipnorm" not in candidates[2].tables["optimizer"]


def test_candidate_repairs_stop_at_eight(scaled_target_experiment):
    many = finding(
        "warning", "scale_inputs_standard", "scale_inputs_minmax", "scale_target_minmax",
        "clipvalue_5", "lower_learning_rate", "adam", "leaky_relu_he",
        "elu_he", "relu_he", "fewer_layers",
    )  # fmt: skip
    candidates = candidate_repairs(*_base_and_task(scaled_target_experiment), [many])
    assert len(candidates) == MAX_CANDIDATES == 8
    assert candidates[-1].name == "elu + he_uniform"


def test_no_findings_no_candidates(scaled_target_experiment):
    assert candidate_repairs(*_base_and_task(scaled_target_experiment), []) == []


# --- ranking --------------------------------------------------------------------------------


BASELINE = np.arange(1.0, 7.0)  # six RMSEs


def named(name, values, diverged=None):
    """(name, scores, diverged mask) as run_doctor passes them; RMSE: diverged = inf."""
    values = np.asarray(values, np.float64)
    mask = ~np.isfinite(values) if diverged is None else np.asarray(diverged, bool)
    return name, values, mask


def test_rank_recommends_a_clearly_better_repair():
    scores = rank([named("yours", BASELINE), named("better", BASELINE / 10)], False)
    assert scores[0].p_value is None and scores[0].p_holm is None
    assert scores[0].prob_better is None and not scores[0].beats_baseline
    assert (scores[0].n, scores[0].diverged, scores[0].median) == (6, 0, 3.5)
    better = scores[1]
    assert better.beats_baseline
    assert better.p_value == pytest.approx(2 / 924)  # exact: 1 of C(12, 6) orderings, two-sided
    assert better.p_holm == better.p_value
    assert better.prob_better == 1.0
    assert better.median == pytest.approx(0.35)
    assert (better.p10, better.p90) == (pytest.approx(0.15), pytest.approx(0.55))


def test_rank_does_not_recommend_a_candidate_identical_to_the_baseline():
    (_, same) = rank([named("yours", BASELINE), named("same", BASELINE.copy())], False)
    assert same.p_value == 1.0 and same.prob_better == 0.5
    assert same.median == 3.5
    assert not same.beats_baseline


def test_rank_puts_diverged_runs_below_every_finite_score():
    _, diverged, one_bad = rank(
        [
            named("yours", BASELINE),
            named("diverged", np.full(6, np.inf)),
            named("one bad", [0.1, 0.2, 0.3, 0.4, 0.5, np.inf]),
        ],
        higher_is_better=False,
    )
    assert (diverged.diverged, diverged.median) == (6, math.inf)
    # inf is ranked worst, not dropped: the all-diverged repair is significantly worse
    assert diverged.p_value == pytest.approx(0.0022, abs=1e-3)
    assert diverged.prob_better == 0.0
    assert not diverged.beats_baseline
    # one diverged run of six ranks above all of yours: P(better) = 5/6
    assert one_bad.diverged == 1 and one_bad.prob_better == pytest.approx(5 / 6)
    assert one_bad.median == pytest.approx(0.35)


def test_rank_of_a_partly_diverged_configuration_has_no_nan_summary():
    """Percentiles that reach into diverged runs are inf, not an interpolated NaN
    (np.percentile alone computes inf - inf there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yours, _ = rank(
            [named("yours", [1.0, 2.0, 3.0, np.inf, np.inf, np.inf]), named("fix", BASELINE)],
            False,
        )
        one_bad = rank([named("yours", [0.1, 0.2, 0.3, 0.4, 0.5, np.inf])], False)[0]
    assert yours.diverged == 3
    assert yours.p10 == pytest.approx(1.5)
    assert yours.median == math.inf  # half the runs diverged: the median is a diverged run
    assert yours.p90 == math.inf
    assert (one_bad.p10, one_bad.median, one_bad.p90) == (
        pytest.approx(0.15), pytest.approx(0.35), math.inf,
    )  # fmt: skip


def test_rank_when_the_users_runs_all_diverge():
    yours, fixed, still = rank(
        [
            named("yours", np.full(6, np.inf)),
            named("fixed", BASELINE),
            named("still", np.full(6, np.inf)),
        ],
        False,
    )
    assert yours.diverged == 6 and (yours.p10, yours.median, yours.p90) == (math.inf,) * 3
    assert fixed.beats_baseline and fixed.prob_better == 1.0
    assert still.p_value == 1.0 and not still.beats_baseline


def test_holm_correction_can_withhold_a_recommendation():
    """Five seeds all better: p = 2/252 = 0.0079 alone, but 7 x 0.0079 = 0.056 with six
    more candidates that change nothing."""
    base = np.arange(1.0, 6.0)
    alone = rank([named("yours", base), named("better", base / 10)], False)[1]
    assert alone.p_value == pytest.approx(2 / 252)
    assert alone.beats_baseline
    crowd = [named("yours", base), named("better", base / 10)]
    crowd += [named(f"same {i}", base) for i in range(6)]
    scores = rank(crowd, False)
    assert scores[1].p_holm == pytest.approx(7 * 2 / 252)
    assert not scores[1].beats_baseline
    raw = [s.p_value for s in scores[1:]]
    assert [s.p_holm for s in scores[1:]] == pytest.approx(holm(raw))


def test_rank_needs_a_better_median_not_only_a_small_p_value():
    worse = rank([named("yours", BASELINE), named("worse", BASELINE * 10)], False)[1]
    assert worse.p_value < 0.05 and not worse.beats_baseline and worse.prob_better == 0.0


def test_rank_for_accuracy_scores_a_diverged_run_zero():
    yours = named("yours", [0.5, 0.52, 0.48, 0.5, 0.51, 0.49], np.zeros(6))
    better = named("better", [0.9, 0.88, 0.91, 0.0, 0.93, 0.9], [0, 0, 0, 1, 0, 0])
    scores = rank([yours, better], higher_is_better=True)
    assert scores[1].diverged == 1 and scores[0].diverged == 0
    assert scores[1].prob_better == pytest.approx(5 / 6)
    assert scores[1].median == pytest.approx(0.9)
    # the one diverged run ranks below all of yours: 5 of 6 better is not enough here
    assert scores[1].p_value == pytest.approx(0.065, abs=0.005)
    assert not scores[1].beats_baseline
    assert scores[1].to_json()["name"] == "better"


def test_score_to_json_turns_infinities_into_null():
    score = rank([named("yours", np.full(3, np.inf)), named("fix", np.ones(3))], False)[0]
    doc = score.to_json()
    assert doc["median"] is None and doc["p10"] is None and doc["p_value"] is None
    assert doc["n"] == 3 and doc["diverged"] == 3


def test_candidate_holds_its_tables():
    c = Candidate("adam", {"optimizer": {"name": "adam"}})
    assert c.name == "adam" and c.tables["optimizer"]["name"] == "adam"
