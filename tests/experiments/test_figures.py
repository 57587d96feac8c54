"""Figures drawn from small real runs, and the gradient figure on hand-made telemetry.

Every figure function must write a valid PNG of a sensible size; experiment_figures must
write exactly the figures an experiment lists; and the gradient figure must survive
what training can produce: diverged runs, gradients that are exactly 0 or Inf, missing
telemetry, and deep models.
"""

import struct
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from stablelearn import figures, gradient_flow
from stablelearn.experiments import figures as xfigures
from stablelearn.experiments.runner import ExperimentResult, VariantResult, run_experiment
from stablelearn.lesson import catalog as lesson_catalog

pytestmark = pytest.mark.slow  # trains whole case studies; see the quick suite in README

SMALL = {"repeats": 2, "epochs": 3}  # one set of overrides, so compiled programs are shared
TRAINED = ("tanh-5", "standardized-target", "gradient-clipping")
PER_LAYER = ("grad_norm", "grad_abs_max", "update_ratio", "weight_norm")


@pytest.fixture(scope="module")
def results() -> dict[str, ExperimentResult]:
    ids = (*TRAINED, "unscaled-mlp")
    return {i: run_experiment(lesson_catalog.resolve(i).override(**SMALL)) for i in ids}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, checking the signature and a plausible file size."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    assert data[12:16] == b"IHDR"
    assert len(data) > 5_000, (path, len(data))
    return struct.unpack(">II", data[16:24])


def strict(draw, *args):
    """Draw with every warning (all-NaN medians, log of zero, ...) raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return draw(*args)


@pytest.mark.parametrize("experiment_id", TRAINED)
@pytest.mark.parametrize(
    "draw", [xfigures.learning_curves, xfigures.box_plot, xfigures.gradient_figure]
)
def test_each_result_figure_writes_a_png(results, tmp_path, experiment_id, draw):
    result = results[experiment_id]
    path = strict(draw, result, tmp_path / "figure.png")
    assert path == tmp_path / "figure.png"
    width, height = png_size(path)
    assert 500 <= width <= 2500 and 300 <= height <= 2500, (width, height)


def test_gradient_figure_has_one_row_per_variant(results, tmp_path):
    one = png_size(xfigures.gradient_figure(results["tanh-5"], tmp_path / "one.png"))
    four = png_size(xfigures.gradient_figure(results["gradient-clipping"], tmp_path / "four.png"))
    assert len(results["gradient-clipping"].variants) == 4
    assert one[0] == four[0] == 1600
    assert four[1] > 3 * one[1] * 0.8


def test_data_figures_write_pngs(results, tmp_path):
    regression = results["standardized-target"].dataset
    circles = results["tanh-5"].dataset
    for draw, dataset in (
        (figures.histograms, regression),
        (figures.target_plot, regression),
        (figures.scatter, circles),
    ):
        width, height = png_size(strict(draw, dataset, tmp_path / f"{draw.__name__}.png"))
        assert width >= 500 and height >= 300


@pytest.mark.parametrize("experiment_id", (*TRAINED, "unscaled-mlp"))
def test_experiment_figures_writes_exactly_the_listed_figures(results, tmp_path, experiment_id):
    result = results[experiment_id]
    assert "gradients" in result.experiment.figures
    paths = xfigures.experiment_figures(result, tmp_path)
    expected = [tmp_path / f"{name}.png" for name in result.experiment.figures]
    assert paths == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in expected)
    for path in paths:
        png_size(path)


def test_every_training_experiment_in_the_catalog_draws_gradients():
    for experiment in lesson_catalog.catalog():
        assert ("gradients" in experiment.figures) == (experiment.kind == "train"), experiment.id


def test_diverged_runs_draw_without_errors(results, tmp_path):
    result = results["unscaled-mlp"]
    train = result.variants[0].result
    assert train.diverged.all()  # the unscaled target blows up within 3 epochs
    png_size(strict(xfigures.gradient_figure, result, tmp_path / "diverged.png"))
    png_size(strict(xfigures.learning_curves, result, tmp_path / "curves.png"))


def test_what_diverged_runs_measure_on_nan_weights_is_dropped(results):
    train = results["unscaled-mlp"].variants[0].result
    raw = train.telemetry
    cleaned = gradient_flow._clean_telemetry(train)
    epochs = np.arange(1, train.epochs + 1)
    for i, epoch in enumerate(train.diverged_epoch):
        assert np.isnan(cleaned["clip_rate"][i, epochs >= epoch]).all()
        assert np.isnan(cleaned["dead_fraction"][i, epochs >= epoch]).all()
        assert np.isnan(cleaned["grad_norm"][i, epochs > epoch]).all()
        np.testing.assert_array_equal(cleaned["grad_norm"][i, :epoch], raw["grad_norm"][i, :epoch])
    assert set(cleaned) == {k for k, v in raw.items() if v.ndim >= 2}


# --- hand-made telemetry ---------------------------------------------------------------


@dataclass
class FakeTrain:
    """What gradient_figure reads from a TrainResult, with telemetry made by hand."""

    names: list[str]
    telemetry: dict[str, np.ndarray]
    diverged_epoch: np.ndarray = field(default_factory=lambda: np.full(3, -1))

    def layer_names(self, model: int = 0) -> list[str]:
        return self.names

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_epoch >= 1

    @property
    def n_models(self) -> int:
        return len(self.diverged_epoch)

    @property
    def epochs(self) -> int:
        return self.telemetry["grad_norm"].shape[1]

    @property
    def history_epochs(self) -> np.ndarray:
        return np.arange(1, self.epochs + 1)


def fake_telemetry(
    layers: int, models: int = 3, epochs: int = 40, activation: str = "relu", seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    depth = np.arange(layers)
    grad = 10.0 ** (depth - layers + rng.normal(0, 0.3, (models, epochs, layers)))
    fraction = rng.uniform(0, 1, (models, epochs, layers - 1))
    nan = np.full_like(fraction, np.nan)
    t = {key: grad.copy() for key in PER_LAYER}
    t["dead_fraction"] = fraction if activation == "relu" else nan
    t["saturated_fraction"] = fraction if activation in ("tanh", "sigmoid") else nan
    t["clip_rate"] = np.zeros((models, epochs))
    t["first_nonfinite_step"] = np.full(models, -1)
    return t


def fake_experiment(*variants: tuple[str, FakeTrain]) -> ExperimentResult:
    experiment = lesson_catalog.resolve("relu-20")
    spec = experiment.variants[0]
    return ExperimentResult(
        experiment,
        None,  # type: ignore[arg-type]  # the gradient figure never reads the dataset
        tuple(
            VariantResult(replace(spec, name=name), None, train)  # type: ignore[arg-type]
            for name, train in variants
        ),
    )


def names(layers: int) -> list[str]:
    return [f"hidden_{i + 1}" for i in range(layers - 1)] + ["output"]


def test_gradient_figure_on_deep_models_zeros_infs_clipping_and_no_telemetry(tmp_path):
    deep = fake_telemetry(21)
    deep["grad_norm"][:, 10:, :-1] = 0.0  # the hidden layers die: exactly 0
    deep["clip_rate"][:] = 0.5  # a heat map of dead fractions with a clip-rate line
    exploding = fake_telemetry(6, activation="tanh", seed=1)
    exploding["grad_norm"][:, 0] = np.inf
    exploding["grad_norm"][:, 1:] = np.nan
    exploding["first_nonfinite_step"][:] = [3, 5, 4]
    linear = fake_telemetry(3, activation="linear", seed=2)
    result = fake_experiment(
        ("deep", FakeTrain(names(21), deep)),
        ("exploding", FakeTrain(names(6), exploding, np.array([1, 1, 1]))),
        ("linear", FakeTrain(names(3), linear)),
        ("off", FakeTrain(names(6), {})),
    )
    width, height = png_size(strict(xfigures.gradient_figure, result, tmp_path / "g.png"))
    assert width == 1600 and height > 4 * 300


def test_gradient_figure_when_nothing_is_finite(tmp_path):
    t = fake_telemetry(2, epochs=1)
    for key in PER_LAYER:
        t[key][:] = np.nan
    t["dead_fraction"][:] = np.nan
    result = fake_experiment(("nan", FakeTrain(names(2), t, np.array([1, 1, 1]))))
    png_size(strict(xfigures.gradient_figure, result, tmp_path / "nan.png"))


@pytest.mark.parametrize(
    ("epochs", "chosen"),
    [(1, [1]), (3, [1, 2, 3]), (10, [1, 5, 10]), (100, [1, 10, 50, 100]), (500, [1, 50, 250, 500])],
)
def test_the_depth_profile_picks_first_tenth_half_and_last_epochs(epochs, chosen):
    assert gradient_flow._profile_epochs(epochs) == chosen
