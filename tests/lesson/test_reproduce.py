"""The whole lesson: a smoke run of every case study, and fixed-seed outcome tests of
the key claims at the lesson's own settings (each experiment trains once per module)."""

import json

import numpy as np
import pytest

from stablelearn.experiments import runner
from stablelearn.lesson import catalog as lesson_catalog
from stablelearn.lesson import claims
from stablelearn.lesson.reproduce import run_and_write

pytestmark = pytest.mark.slow  # trains whole case studies; see the quick suite in README

OUTCOMES = ["unscaled-mlp", "standardized-target", "tanh-5", "relu-5", "gradient-clipping"]


# --- (a) the whole catalog, tiny -----------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    specs = [e.override(repeats=2, epochs=2) for e in lesson_catalog.catalog()]
    folder = tmp_path_factory.mktemp("smoke") / "reproduce"
    finished = []
    results, checked, _ = run_and_write(specs, folder, on_done=finished.append)
    return folder, specs, results, checked, finished


def test_smoke_run_writes_a_subfolder_for_every_experiment(smoke):
    folder, specs, results, _, finished = smoke
    ids = [e.id for e in specs]
    assert len(ids) == 13
    assert [r.experiment.id for r in results] == ids  # results come back in catalog order
    assert sorted(r.experiment.id for r in finished) == sorted(ids)  # on_done once each
    for e in specs:
        summary = json.loads((folder / e.id / "summary.json").read_text())
        assert summary["experiment"]["id"] == e.id
        for name in summary["figures"]:
            assert (folder / e.id / name).stat().st_size > 1000, (e.id, name)
        if e.kind == "train":
            assert summary["experiment"]["repeats"] == 2
            assert all(len(v["name"]) and v["n"] == 2 for v in summary["variants"])
            assert len(summary["models"]) == 2 * len(e.variants)
            with np.load(folder / e.id / "history.npz") as history:
                assert history["loss"].shape == (2 * len(e.variants), 2)
        else:
            assert summary["variants"] == [] and not (folder / e.id / "models.csv").exists()


def test_smoke_run_checks_every_claim_and_indexes_every_experiment(smoke):
    folder, specs, results, checked, _ = smoke
    doc = json.loads((folder / "claims.json").read_text())
    assert [c["id"] for c in doc["claims"]] == [c.id for c in claims.CLAIMS]
    assert all(c["verdict"] for c in doc["claims"])
    assert [c.verdict for c in checked] == [c["verdict"] for c in doc["claims"]]
    allowed = ("holds", "does not hold", "holds in ", "not measured")
    assert all(c.verdict.startswith(allowed) for c in checked)
    # two epochs cannot decide the claims about epoch 5, 20 and 250
    not_measured = {c.id for c in checked if c.verdict.startswith("not measured")}
    assert not_measured == {
        "relu5-converges-200",
        "clipnorm-per-tensor-20000-to-100",
        "clipnorm-global-20000-to-100",
        "clipvalue-sub100-fast",
        "normalized-inputs-best",
        "unscaled-vs-standardized-inputs-similar",
    }
    index = json.loads((folder / "index.json").read_text())
    assert [e["id"] for e in index["experiments"]] == [e.id for e in specs]
    assert len(index["experiments"]) == 13
    page = (folder / "report.html").read_text()
    static = {"gradients", "histograms", "target", "scatter"}  # the others are charts
    assert page.count("<img alt=") == sum(len(set(e.figures) & static) for e in specs)
    assert sum(len(e.figures) for e in specs) == 25
    by_id = {r.experiment.id: r for r in results}
    # even two epochs are enough for the unscaled target to blow up
    assert by_id["unscaled-mlp"].variants[0].result.diverged.all()
    assert doc["claims"][0]["verdict"] == "holds"


# --- (b) outcomes at the lesson's settings -------------------------------------------------


@pytest.fixture(scope="module")
def lesson():
    catalog = {e.id: e for e in lesson_catalog.catalog()}
    results = {i: runner.run_experiment(catalog[i]) for i in OUTCOMES}
    return results, {c.id: c for c in claims.check_claims(results)}


def test_outcome_runs_use_the_lessons_settings(lesson):
    results, _ = lesson
    assert results["relu-5"].variants[0].result.history["accuracy"].shape == (10, 500)
    assert results["unscaled-mlp"].variants[0].result.n_models == 10
    assert [v.result.n_models for v in results["gradient-clipping"].variants] == [30] * 4
    np.testing.assert_array_equal(results["tanh-5"].variants[0].result.seeds, np.arange(10))


def test_unscaled_target_diverges_in_every_repeat(lesson):
    results, verdicts = lesson
    r = results["unscaled-mlp"].variants[0].result
    assert r.diverged.all()
    assert np.isnan(r.test_scores["loss"]).all()
    assert verdicts["unscaled-target-nan"].verdict == "holds"
    assert verdicts["unscaled-target-nan"].measured["diverged"] == "10/10"
    assert verdicts["unscaled-target-nan"].measured["diverged_epoch_max"] <= 5


def test_standardized_target_learns(lesson):
    results, verdicts = lesson
    c = verdicts["standardized-target-learns"]
    assert c.verdict == "holds"
    assert 0.001 < c.measured["test_mse_median"] < 0.02  # the lesson: Test MSE 0.007
    assert c.measured["diverged"] == 0
    r = results["standardized-target"].variants[0].result
    assert np.all(r.history["loss"][:, -1] < r.history["loss"][:, 0] / 10)


def test_tanh5_fails_to_learn_in_most_repeats(lesson):
    _, verdicts = lesson
    c = verdicts["tanh5-fails"]
    assert c.measured["n"] == 10 and c.measured["k"] >= 5, c.verdict
    assert c.measured["test_accuracy_median"] < 0.6  # the lesson: Test 0.468


def test_relu5_learns_in_every_repeat(lesson):
    results, verdicts = lesson
    acc = results["relu-5"].variants[0].result.test_scores["accuracy"]
    assert np.all(acc >= 0.75), acc  # the lesson: Test 0.840
    assert verdicts["relu5-learns"].verdict == "holds"
    assert verdicts["relu5-learns"].measured["test_accuracy_median"] > 0.8
    assert verdicts["relu5-converges-200"].verdict == "holds"
    assert verdicts["relu5-converges-200"].measured["convergence_epoch_median"] < 250


def test_gradient_clipping_keeps_training_finite(lesson):
    results, verdicts = lesson
    clipping = results["gradient-clipping"]
    assert clipping.variant("no clipping").result.diverged.all()
    for name in ("clipnorm 1.0 (per tensor)", "clipnorm 1.0 (global)", "clipvalue 5.0"):
        r = clipping.variant(name).result
        assert not r.diverged.any(), name
        assert np.isfinite(r.test_scores["loss"]).all(), name
        assert np.all(r.history["loss"][:, -1] < r.history["loss"][:, 0]), name
    assert verdicts["clipping-none-diverges"].verdict == "holds"
    assert verdicts["clipnorm-keeps-finite"].verdict == "holds"
    assert verdicts["clipvalue-keeps-finite"].verdict == "holds"
    # the lesson's MSE drop from above 20,000 to below 100 within 20 epochs (per tensor)
    drop = verdicts["clipnorm-per-tensor-20000-to-100"]
    assert drop.verdict == "holds", drop.measured
    assert drop.measured["first_epoch_loss_median"] > 20_000
