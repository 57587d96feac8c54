"""What each task (regression, binary, multiclass) decides: its loss, output layer and
the metric a result is judged by. Every other module asks here instead of restating it."""

from typing import Any

from stablelearn.model import Dense

# the lesson's choice of loss (and metrics) per task
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "regression": {"loss": "mse"},
    "binary": {"loss": "binary_crossentropy", "metrics": ("accuracy",)},
    "multiclass": {"loss": "sparse_categorical_crossentropy", "metrics": ("accuracy",)},
}
OUTPUT_ACTIVATIONS = {"binary": "sigmoid", "multiclass": "softmax"}


def output_layer(task: str, n_classes: int = 0) -> Dense:
    """The output layer a task needs: linear for regression, one sigmoid unit for a binary
    target, a softmax unit per class for a multiclass one."""
    if task == "multiclass":
        return Dense(n_classes, "softmax")
    return Dense(1, OUTPUT_ACTIVATIONS.get(task, "linear"))


def is_classification(task: str) -> bool:
    return task != "regression"


def lesson_metric(task: str) -> str:
    """The score the lesson prints: the loss (MSE) for regression, accuracy otherwise."""
    return "accuracy" if is_classification(task) else "loss"


def held_out_metric(task: str) -> str:
    """The score configurations are compared on, whatever their target scaler: accuracy,
    or the RMSE in the target's own units."""
    return "accuracy" if is_classification(task) else "rmse_original"


def metric_display_name(task: str) -> str:
    """The lesson metric as a report names it: 'accuracy' or 'mse'."""
    return "accuracy" if is_classification(task) else "mse"
