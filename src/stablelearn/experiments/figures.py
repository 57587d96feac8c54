"""The figures an experiment file asks for (`figures = [...]`), drawn from its results."""

from pathlib import Path

from stablelearn import figures, gradient_flow
from stablelearn.experiments.runner import ExperimentResult


def _named(result: ExperimentResult) -> list:
    return [(v.name, v.result) for v in result.variants]


def learning_curves(result: ExperimentResult, path: Path) -> Path:
    """One row per variant: loss (and accuracy for classification), train and test."""
    return figures.learning_curves(_named(result), result.experiment.title, path)


def gradient_figure(result: ExperimentResult, path: Path) -> Path:
    """One row per variant: gradient norms per layer and epoch, their depth profile, and
    dead/saturated units (see stablelearn.gradient_flow)."""
    e = result.experiment
    return gradient_flow.gradient_figure(_named(result), e.title, e.repeats, path)


def box_plot(result: ExperimentResult, path: Path) -> Path:
    """Test scores per variant, as the lesson's comparison box plot."""
    metric = result.metric
    return figures.score_box_plot(
        [v.name for v in result.variants],
        [v.result.test_scores[metric] for v in result.variants],
        f"test {'MSE' if metric == 'loss' else metric}",
        f"{result.experiment.title} ({result.experiment.repeats} repeats each)",
        path,
    )


def experiment_figures(result: ExperimentResult, folder: Path) -> list[Path]:
    """Every figure the experiment asks for, written into `folder`."""
    makers = {
        "histograms": lambda p: figures.histograms(result.dataset, p),
        "target": lambda p: figures.target_plot(result.dataset, p),
        "scatter": lambda p: figures.scatter(result.dataset, p),
        "learning_curves": lambda p: learning_curves(result, p),
        "box": lambda p: box_plot(result, p),
        "gradients": lambda p: gradient_figure(result, p),
    }
    return [makers[name](folder / f"{name}.png") for name in result.experiment.figures]
