"""The doctor end to end on the shipped CSV, its repairs, and its ranking statistics.

The end-to-end fixture runs the lesson's MLP and SGD(0.01, 0.9) on
examples/lesson_regression.csv (unscaled) with 10 repeats of 30 epochs: with six repairs
and 10 paired seeds the best attainable Holm-adjusted p-value is 6 x 2 / 2^10 = 0.012,
under the 0.05 / 3 a look of the search needs, so the first look can decide.
"""

import copy
import json
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from stablelearn.diagnostics import Finding
from stablelearn.doctor import diagnose as doctor
from stablelearn.doctor.diagnose import run_doctor
from stablelearn.doctor.repairs import MAX_CANDIDATES, Candidate, candidate_repairs, repair_tables
from stablelearn.doctor.report import diagnosis_json, summary_lines, write_doctor
from stablelearn.experiments import load_file, load_mapping, variant_tables
from stablelearn.experiments.runner import run_experiment
from stablelearn.stats import format_p

CSV = Path(__file__).resolve().parents[2] / "examples" / "lesson_regression.csv"
REPEATS, EPOCHS = 10, 30
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
    # the weights grow large but finite, then the output layer's output or loss overflows
    origin = exploding.evidence["nan_origin"]
    assert (origin["where"], origin["direction"]) == ("the output layer", "forward")
    assert origin["kind"] in ("output", "loss") and 1 <= origin["step"] <= 16
    assert origin["of"] == REPEATS and origin["models"] >= REPEATS // 2
    assert origin["sentence"] in exploding.message
    baseline = unscaled_diagnosis.scores[0]
    assert baseline.name == "your configuration"
    assert (baseline.n, baseline.diverged, baseline.median) == (REPEATS, REPEATS, math.inf)


@pytest.mark.slow
def test_the_repairs_tried_follow_the_findings_most_severe_first(unscaled_diagnosis):
    d = unscaled_diagnosis
    first_step = [c.trial.name for c in d.search.steps[0].comparisons]
    # exploding gradients suspect the learning rate: a range test (on seeds 30-32, which
    # no comparison uses) replaces "learning rate / 10" by its recommended rate and, where
    # it differs, its best one
    test = d.search.steps[0].range_test
    assert test is not None and test.seeds == (30, 31, 32) and test.user_rate == 0.01
    measured = [f"learning rate {test.recommended:.2g} (range test)"]
    best = test.rates[test.best].learning_rate
    measured += [f"learning rate {best:.2g} (range test best)"] if best != test.recommended else []
    assert first_step == [
        "scale target (standard)", "clipnorm 1.0", "clipvalue 5.0", *measured, "adam",
        "scale target (minmax)",
    ]  # fmt: skip
    tried = [c.name for c in d.tried]
    assert tried[: len(first_step)] == first_step
    assert [s.name for s in d.scores] == ["your configuration", *tried]
    # later steps build on the step before's winner
    for before, step in zip(d.search.steps, d.search.steps[1:], strict=False):
        assert step.reference is before.winner
        assert all(c.trial.name.startswith(before.winner.name + " + ") for c in step.comparisons)
    # paired comparison: every configuration trains on seeds 0, 1, ... as the user's
    assert d.baseline.variants[0].result.seeds.tolist() == list(range(REPEATS))
    for trial in d.search.trials():
        assert trial.seeds().tolist() == list(range(trial.n)) and trial.n >= REPEATS
        assert trial.first.result.epochs == EPOCHS


@pytest.mark.slow
def test_the_recommended_repair_trains_far_below_the_constant_prediction(unscaled_diagnosis):
    d = unscaled_diagnosis
    assert d.recommended is not None
    assert d.score_name == "test RMSE (target units)" and not d.higher_is_better
    best = next(s for s in d.scores if s.recommended)
    assert best.name == d.recommended.name and best.beats
    assert best.p_holm < doctor.ALPHA / 3 and best.diverged == 0
    # against the user's configuration, whose every run diverged: better on every seed
    assert d.verdict.wins == d.verdict.n >= REPEATS and d.verdict.losses == 0
    assert d.verdict.p_value == pytest.approx(2 / 2**d.verdict.n)
    trial = d.recommended_trial
    assert not trial.diverged().any()
    rmse = trial.scores()
    constant = float(np.std(d.experiment.data.y))  # RMSE of predicting the mean, ~153
    assert np.median(rmse) < 0.05 * constant
    assert best.median == pytest.approx(np.median(rmse))
    assert d.cause.headline.id == "target_spread"
    assert [f.id for f in d.cause.explained] == ["exploding_gradients"]


@pytest.mark.slow
def test_the_summary_leads_with_cause_fix_and_certainty(unscaled_diagnosis):
    d = unscaled_diagnosis
    lines = summary_lines(d)
    name = d.recommended.name
    assert lines[0].startswith(f"Cause: regression target with a large spread. Fix: {name}. ")
    assert (
        f"better on {d.verdict.n} of {d.verdict.n} seeds (worse on 0), paired "
        f"{format_p(d.verdict.p_value)}" in lines[0]
    )
    assert lines[1].startswith("Why: The target's spread (std 153) makes the gradients large; ")
    origin = d.findings[1].evidence["nan_origin"]
    assert (
        f"blow up (from epoch 1), the first NaN/Inf in {origin['phrase']} (forward) in "
        f"{origin['models']}/{REPEATS}" in lines[1]
    )
    assert lines[2].startswith("[warning] Regression target with a large spread:")
    assert lines[3].startswith(f"  [critical] Exploding gradients: {REPEATS} of {REPEATS} models")
    assert lines[4].startswith("Range test, step 1 (33 models, 3 seeds per rate): Usable ")
    assert lines[5].startswith("Step 1: ")
    recommended = next(line for line in lines if line.startswith("Recommended: "))
    best = next(s for s in d.scores if s.recommended)
    assert recommended.startswith(f"Recommended: {name}. Median test RMSE (target units) ")
    assert f"0/{best.n} diverged vs {REPEATS}/{REPEATS}" in recommended
    assert lines[-1].startswith(f"Search: {len(d.scores)} configurations, ")


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
    assert doc["schema_version"] == 3
    origins = doc["nan_origin"]
    assert [m["seed"] for m in origins["models"]] == list(range(REPEATS))
    assert all(m["origin"]["direction"] == "forward" for m in origins["models"])
    assert origins["summary"]["where"] == "the output layer"
    assert origins["summary"]["models"] == sum(
        m["origin"]["kind"] == origins["summary"]["kind"] for m in origins["models"]
    )
    assert doc["data"]["task"] == "regression"
    assert doc["data"]["rows"] == 1000 and len(doc["data"]["features"]) == 20
    assert [f["id"] for f in doc["findings"]] == ["target_spread", "exploding_gradients"]
    assert doc["repeats"] == REPEATS and doc["epochs"] == EPOCHS
    assert doc["candidates"][0]["name"] == "your configuration"
    assert doc["candidates"][0]["median"] is None  # inf: every model diverged
    assert doc["candidates"][0]["tables"] is None
    assert len(doc["candidates"]) == 1 + len(unscaled_diagnosis.tried)
    assert doc["recommended"]["name"] == unscaled_diagnosis.recommended.name
    assert doc["cause"]["headline"] == "target_spread"
    assert doc["cause"]["explains"] == ["exploding_gradients"]
    assert doc["headline"] == summary_lines(unscaled_diagnosis)[0]
    path = doc["repair_path"]
    assert path and path[-1]["name"] == unscaled_diagnosis.recommended.name
    assert path[0]["versus"] == "your configuration" and path[0]["p_holm"] < 0.05 / 3
    assert doc["verdict"]["wins"] == doc["verdict"]["n"]
    # the range test's models count in the spend
    range_models = doc["budget"]["range_test_models"]
    assert range_models == 33 and doc["range_tests"][0]["step"] == 1
    assert doc["budget"]["models"] == sum(s.n for s in unscaled_diagnosis.scores) + range_models
    assert doc["recommended"]["file"] == "recommended.toml"
    assert doc["summary"] == summary_lines(unscaled_diagnosis)
    assert doc == json.loads(json.dumps(diagnosis_json(unscaled_diagnosis, "recommended.toml")))

    page = (doctor_folder / "report.html").read_text()
    assert "Exploding gradients" in page and "class='vega-chart'" in page
    assert unscaled_diagnosis.recommended.name in page


@pytest.mark.slow
def test_the_report_leads_with_the_headline_and_the_code_then_the_users_configuration(
    unscaled_diagnosis, doctor_folder
):
    page = (doctor_folder / "report.html").read_text()
    headline = page[page.index("id='headline'") : page.index("class='toc'")]
    title = headline[headline.index("callout-title") : headline.index("</p>")]
    assert "Cause: regression target with a large spread. Fix: " in title
    assert "Why: The target's spread (std 153) makes the gradients large" in headline
    rate = f"{unscaled_diagnosis.recommended.tables['optimizer']['learning_rate']:g}"
    assert f"Recommended change: learning rate {rate} (yours: 0.01)." in headline
    assert f"<pre>model.compile(optimizer=keras.optimizers.SGD(learning_rate={rate}" in headline
    run = page[page.index("id='what-was-run'") : page.index("id='findings'")]
    for fact in ("<dd>SGD, learning rate 0.01, momentum 0.9</dd>", "<dd>32</dd>",
                 "Dense(25, relu, he_uniform) → Dense(1, linear, glorot_uniform)",
                 "inputs none, target none", "<dd>mse</dd>", "10 per configuration"):  # fmt: skip
        assert fact in run, fact
    # findings as lines with a badge, evidence in a drill-down, no raw JSON
    assert "<span class='severity severity-critical'>✖ critical</span>" in page
    assert "{&quot;" not in page and '{"models"' not in page.split("<script")[0]


@pytest.mark.slow
def test_the_repairs_table_is_sorted_with_the_recommended_row_highlighted(
    unscaled_diagnosis, doctor_folder
):
    page = (doctor_folder / "report.html").read_text()
    start = page.index("<caption>Configurations trained")
    table = page[start : page.index("</table>", start)]
    rows = table.split("<tr")[2:]  # after the header row
    highlighted = [r for r in rows if r.startswith(" class='recommended'")]
    assert len(highlighted) == 1 and unscaled_diagnosis.recommended.name in highlighted[0]
    rate = f"{unscaled_diagnosis.recommended.tables['optimizer']['learning_rate']:g}"
    assert f"learning rate {rate} (yours: 0.01)" in highlighted[0]
    assert "✓ recommended" in highlighted[0]
    steps = [int(r.split("data-value='")[1].split("'")[0]) for r in rows]
    assert steps == sorted(steps) and steps[0] == 0


@pytest.mark.slow
def test_the_report_draws_no_empty_figure(unscaled_diagnosis, doctor_folder):
    """Every run of the user's configuration diverged in epoch 1: a sentence, no chart."""
    page = (doctor_folder / "report.html").read_text()
    assert "Your configuration: all 10 runs diverged at epoch 1: no curve to draw." in page
    name = unscaled_diagnosis.recommended.name
    assert f"aria-label='Training and validation loss per epoch of {name}'" in page
    assert "aria-label='Training loss of every seed of your configuration'" not in page
    assert f"aria-label='Training loss of every seed of {name}'" in page
    for spec in re.findall(r"<script type='application/json' id='c\d+'>(.*?)</script>", page):
        assert json.loads(spec)["datasets"]["values"], "a chart without data"
    markdown = (doctor_folder / "report.md").read_text()
    assert "![Training and validation loss per epoch of" in markdown
    assert "(repairs.png)" in markdown


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
    assert d.scores[0].diverged == 0 and np.isfinite(d.scores[0].median)
    # its scaler already handles the target's spread: nothing to find, nothing to try
    assert d.findings == ()
    assert len(d.scores) == 1 and d.search.spend.stopped == "clean"
    lines = summary_lines(d)
    assert lines[0] == "No problem found: your configuration trains normally on this data."
    assert lines[1:] == [f"Search: {d.search.spend.describe()}."]
    origins = d.nan_origin()
    assert origins["summary"] is None and all(m["origin"] is None for m in origins["models"])


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


def test_candidate_holds_its_tables():
    c = Candidate("adam", {"optimizer": {"name": "adam"}})
    assert c.name == "adam" and c.tables["optimizer"]["name"] == "adam"


def test_deeper_repairs_apply_to_deep_stacks_only():
    deep = with_("model", hidden=BASE["model"]["hidden"][:1] * 5)
    both = repair_tables("batch_norm_residual", deep, "binary")["model"]["hidden"]
    assert all(layer["batch_norm"] for layer in both)
    # the first layer's input is the data's features: no skip around it
    assert [layer.get("residual", False) for layer in both] == [False, True, True, True, True]
    assert "batch_norm" not in repair_tables("residual", deep, "binary")["model"]["hidden"][1]
    assert deep == with_("model", hidden=BASE["model"]["hidden"][:1] * 5)  # left alone
    shallow = with_("model", hidden=BASE["model"]["hidden"][:1] * 3)
    assert repair_tables("batch_norm", shallow, "binary") is None


def test_repairs_are_described_by_their_concrete_values():
    from stablelearn.doctor.page import changes, model_text

    base = {"data": {"input_scaler": "none", "target_scaler": "none"},
            "model": copy.deepcopy(LESSON_MODEL), "optimizer": dict(LESSON_SGD)}  # fmt: skip
    base["model"]["hidden"][0]["kernel_initializer"] = "he_uniform"
    base["model"]["output"]["kernel_initializer"] = "glorot_uniform"
    said = {
        "lower_learning_rate": ["learning rate 0.001 (yours: 0.01)"],
        "clipnorm_1": ["clipnorm 1 (yours: no clipping)"],
        "scale_target_standard": ["target scaler standard (yours: none)"],
        "adam": [
            "optimizer Adam, learning rate 0.001 (yours: SGD, learning rate 0.01, momentum 0.9)"
        ],
        "elu_he": ["activation elu (yours: relu)"],
    }
    for repair_id, expected in said.items():
        assert changes(base, repair_tables(repair_id, base, "regression")) == expected, repair_id
    deep = copy.deepcopy(base)
    deep["model"]["hidden"] = [dict(LESSON_MODEL["hidden"][0]) for _ in range(4)]
    fewer = repair_tables("fewer_layers", deep, "regression")
    assert changes(deep, fewer) == ["2 hidden layers (yours: 4)"]
    assert model_text(deep["model"]) == (
        "4 x Dense(25, relu, he_uniform) → Dense(1, linear, glorot_uniform)"
    )
