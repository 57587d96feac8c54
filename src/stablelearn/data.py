"""Datasets, train/test splits and scikit-learn scalers fitted on the training split.

The lesson's rule is the default everywhere: fit a scaler on the training rows only,
then transform both splits with it, so no test information leaks into training. The
lesson's circles code scales all rows before splitting; `fit_scalers_on="all"`
reproduces that on purpose and nowhere else.

scikit-learn is imported where a dataset is drawn or a scaler built, not with the
module: reading an experiment file needs neither (a built-in dataset named there is
drawn when its rows are first read, see `builtin_dataset`).
"""

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from stablelearn.checks import is_integer, is_number
from stablelearn.errors import ConfigError, DataError

Task = Literal["regression", "binary", "multiclass"]
TASKS = ("regression", "binary", "multiclass")
SCALERS = ("none", "standard", "minmax", "robust")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Raw rows: inputs x [n, features] and target y [n]."""

    x: np.ndarray
    y: np.ndarray
    task: Task = "regression"
    name: str = "data"
    feature_names: tuple[str, ...] = field(default=())
    target_name: str = "y"

    def __post_init__(self) -> None:
        x, y = _validate_arrays(self.x, self.y, self.task)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        names = tuple(self.feature_names) or tuple(f"x{i}" for i in range(x.shape[1]))
        if len(names) != x.shape[1]:
            raise DataError(f"Got {len(names)} feature names for {x.shape[1]} feature columns.")
        object.__setattr__(self, "feature_names", names)

    @property
    def n_rows(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    @property
    def n_classes(self) -> int:
        """Classes of a classification target (labels 0..k-1); 0 for regression."""
        return class_count(self.task, self.y)

    def column_names(self, mask: np.ndarray) -> tuple[str, ...]:
        """The names of the feature columns where `mask` is True."""
        return tuple(name for name, keep in zip(self.feature_names, mask, strict=True) if keep)

    def keep_columns(self, mask: np.ndarray) -> "Dataset":
        """The same rows with only the feature columns where `mask` is True."""
        return Dataset(
            self.x[:, mask], self.y, self.task, self.name, self.column_names(mask), self.target_name
        )


def varying_columns(x: np.ndarray) -> np.ndarray:
    """A mask of the columns of x [rows, features] that take more than one value: the
    others are constant and carry no signal (and break scaling)."""
    return np.ptp(x, axis=0) > 0


def class_count(task: str, y: np.ndarray) -> int:
    """Classes of a binary or multiclass target labelled 0..k-1 (at least 2); 0 for regression."""
    return 0 if task == "regression" else max(2, int(np.max(y)) + 1)


def _validate_arrays(x: Any, y: Any, task: str) -> tuple[np.ndarray, np.ndarray]:
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; expected one of: {', '.join(TASKS)}.")
    try:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"Inputs and target must be numeric arrays ({err}).") from None
    if x.ndim == 1:
        raise DataError(
            f"Expected 2D inputs [rows, features], got 1D array of shape {x.shape}; "
            "use x.reshape(-1, 1) for a single feature."
        )
    if x.ndim != 2:
        raise DataError(f"Expected 2D inputs [rows, features], got shape {x.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"Expected a 1D target [rows], got shape {y.shape}.")
    if len(x) != len(y):
        raise DataError(f"Inputs have {len(x)} rows but the target has {len(y)}.")
    if len(x) < 4:
        raise DataError(f"Need at least 4 rows to split into train and test, got {len(x)}.")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=0))
    if bad.size:
        raise DataError(
            f"Inputs contain NaN or Inf in column(s) {', '.join(map(str, bad[:10]))}; "
            "drop or impute them first."
        )
    if not np.isfinite(y).all():
        raise DataError(
            f"The target contains {int((~np.isfinite(y)).sum())} NaN or Inf value(s); drop those rows first."
        )
    if task == "binary" and not np.isin(y, (0.0, 1.0)).all():
        raise DataError(
            f"A binary task needs a target of 0 and 1, got values such as {np.unique(y)[:5]}."
        )
    if task == "multiclass" and (np.any(y < 0) or np.any(y != np.round(y))):
        raise DataError(
            "A multiclass task needs class labels 0, 1, 2, ... as the target; "
            f"got values such as {np.unique(y)[:5]}."
        )
    return x, y


def lesson_regression() -> Dataset:
    """The lesson's regression problem: make_regression(1000, 20, noise=0.1, random_state=1)."""
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=1000, n_features=20, noise=0.1, random_state=1)
    return Dataset(x, y, "regression", "lesson-regression")


def lesson_circles() -> Dataset:
    """The lesson's two-circles problem: make_circles(1000, noise=0.1, random_state=1)."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=1000, noise=0.1, random_state=1)
    return Dataset(x, y, "binary", "lesson-circles")


BUILTIN_DATASETS = {"lesson-regression": lesson_regression, "lesson-circles": lesson_circles}
# name -> (rows, features, task, classes) of each built-in dataset, known before drawing it
# (tests/core/test_data.py checks them against the drawn datasets)
_BUILTIN_SHAPES: dict[str, tuple[int, int, Task, int]] = {
    "lesson-regression": (1000, 20, "regression", 0),
    "lesson-circles": (1000, 2, "binary", 2),
}
_DRAWING = threading.Lock()


class _DrawnOnFirstUse(Dataset):
    """A built-in dataset whose rows are drawn (by its scikit-learn function) the first
    time x or y is read. Checking an experiment file needs only the dataset's shape, and
    `stablelearn list` checks every shipped file: drawing them all would import
    scikit-learn (over a second) to print a table."""

    def __init__(self, name: str) -> None:
        # not the dataclass __init__: it checks arrays that are not drawn yet
        rows, features, task, classes = _BUILTIN_SHAPES[name]
        for key, value in (
            ("name", name), ("task", task), ("target_name", "y"),
            ("feature_names", tuple(f"x{i}" for i in range(features))),
            ("_shape", (rows, features, classes)),
        ):  # fmt: skip
            object.__setattr__(self, key, value)

    def __getattr__(self, key: str) -> Any:
        # only called for attributes not set yet: x and y before the first draw
        if key not in ("x", "y"):
            raise AttributeError(key)
        with _DRAWING:  # threads that read at once draw once
            if "x" not in self.__dict__:
                drawn = BUILTIN_DATASETS[self.name]()
                object.__setattr__(self, "y", drawn.y)
                object.__setattr__(self, "x", drawn.x)
        return self.__dict__[key]

    def __reduce__(self) -> tuple[Callable[[str], Dataset], tuple[str]]:
        return _DrawnOnFirstUse, (self.name,)

    @property
    def n_rows(self) -> int:
        return self._shape[0]

    @property
    def n_features(self) -> int:
        return self._shape[1]

    @property
    def n_classes(self) -> int:
        return self._shape[2]


def builtin_dataset(name: str) -> Dataset:
    """A built-in dataset by name. Its rows are drawn when first read, so that checking
    an experiment that names it does not import scikit-learn; the rows are those of
    BUILTIN_DATASETS[name]()."""
    if name not in BUILTIN_DATASETS:
        raise ConfigError(
            f"Unknown dataset {name!r}; expected one of: {', '.join(BUILTIN_DATASETS)}."
        )
    return _DrawnOnFirstUse(name)


@dataclass(frozen=True)
class Scaler:
    """A scikit-learn scaler by name: none, standard, minmax (with feature_range), robust."""

    kind: str = "none"
    feature_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.kind not in SCALERS:
            raise ConfigError(
                f"Unknown scaler {self.kind!r}; expected one of: {', '.join(SCALERS)}."
            )
        pair = self.feature_range
        if (
            not isinstance(pair, Sequence)
            or isinstance(pair, str)
            or len(pair) != 2
            or not all(is_number(v) for v in pair)
        ):
            raise ConfigError(
                f"A minmax feature_range needs two numbers [low, high], got {pair!r}."
            )
        low, high = pair
        if not low < high:
            raise ConfigError(f"A minmax feature_range needs low < high, got {self.feature_range}.")
        object.__setattr__(self, "feature_range", (float(low), float(high)))

    def build(self) -> Any:
        """A fresh, unfitted scikit-learn transformer (None for 'none')."""
        from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

        if self.kind == "standard":
            return StandardScaler()
        if self.kind == "minmax":
            return MinMaxScaler(feature_range=self.feature_range)
        if self.kind == "robust":
            return RobustScaler()
        return None

    def __str__(self) -> str:
        if self.kind == "minmax" and self.feature_range != (0.0, 1.0):
            return f"minmax({self.feature_range[0]:g},{self.feature_range[1]:g})"
        return self.kind


def as_scaler(value: "str | Mapping[str, Any] | Scaler | None") -> Scaler:
    """Accept a Scaler, None, a name, 'minmax(-1,1)', or {kind="minmax", feature_range=[-1, 1]}."""
    if isinstance(value, Scaler):
        return value
    if value is None:
        return Scaler()
    if isinstance(value, str):
        name = value.strip().lower()
        if name.startswith("minmax(") and name.endswith(")"):
            try:
                low, high = (float(v) for v in name[7:-1].split(","))
            except ValueError:
                raise ConfigError(
                    f"Could not read scaler {value!r}; write it as 'minmax(-1,1)'."
                ) from None
            return Scaler("minmax", (low, high))
        return Scaler(name)
    if isinstance(value, Mapping):
        unknown = set(value) - {"kind", "feature_range"}
        if unknown or "kind" not in value:
            raise ConfigError(
                f"A scaler table takes 'kind' and optionally 'feature_range', got {dict(value)!r}."
            )
        return Scaler(str(value["kind"]), value.get("feature_range", (0.0, 1.0)))
    raise ConfigError(f"A scaler must be a name or a table, got {value!r}.")


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Float32 splits ready for the engine, with the fitted scalers to undo them."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    task: Task
    input_scaler: Scaler
    target_scaler: Scaler
    fitted_target_scaler: Any = None
    name: str = "data"
    n_classes: int = 0  # classes of a binary or multiclass target; 0 for regression

    @property
    def n_features(self) -> int:
        return self.train_x.shape[1]

    def target_to_original(self, y: np.ndarray) -> np.ndarray:
        """Map targets or predictions in scaled units back to the target's own units."""
        if self.fitted_target_scaler is None:
            return np.asarray(y)
        y = np.asarray(y, np.float64)
        return self.fitted_target_scaler.inverse_transform(y.reshape(-1, 1)).reshape(y.shape)

    def describe(self) -> str:
        return f"{self.name} (inputs: {self.input_scaler}, target: {self.target_scaler})"


def split_rows(
    dataset: Dataset, n_train: int | None = None, test_fraction: float | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of train and test.

    With `n_train`, the first n_train rows train and the rest test, as in the lesson;
    otherwise a shuffled split with `test_fraction` of the rows (default 0.5) held out.
    """
    n = dataset.n_rows
    if n_train is not None:
        if not is_integer(n_train) or not 2 <= n_train <= n - 2:
            raise ConfigError(
                f"n_train must be an integer from 2 to {n - 2} for {n} rows, got {n_train!r}."
            )
        rows = np.arange(n)
        return rows[:n_train], rows[n_train:]
    fraction = 0.5 if test_fraction is None else test_fraction
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"test_fraction must be between 0 and 1, got {fraction!r}.")
    n_test = min(max(2, round(n * fraction)), n - 2)
    rows = np.random.default_rng(seed).permutation(n)
    return np.sort(rows[n_test:]), np.sort(rows[:n_test])


def prepare(
    dataset: Dataset,
    input_scaler: "str | Scaler | Mapping[str, Any] | None" = None,
    target_scaler: "str | Scaler | Mapping[str, Any] | None" = None,
    n_train: int | None = None,
    test_fraction: float | None = None,
    split_seed: int = 0,
    fit_scalers_on: Literal["train", "all"] = "train",
) -> PreparedData:
    """Split `dataset` and scale it: scalers are fitted on the training rows only.

    `fit_scalers_on="all"` fits them on every row before the split, which leaks test
    statistics into training; it exists only to reproduce the lesson's circles code.
    """
    inputs, target = as_scaler(input_scaler), as_scaler(target_scaler)
    if dataset.task != "regression" and target.kind != "none":
        raise ConfigError(
            "A target scaler only applies to regression; a binary target must stay 0/1."
        )
    if fit_scalers_on not in ("train", "all"):
        raise ConfigError(f"fit_scalers_on must be 'train' or 'all', got {fit_scalers_on!r}.")
    train_rows, test_rows = split_rows(dataset, n_train, test_fraction, split_seed)
    train_x, test_x = dataset.x[train_rows], dataset.x[test_rows]
    train_y, test_y = dataset.y[train_rows], dataset.y[test_rows]
    constant = dataset.column_names(~varying_columns(train_x))
    if constant:
        names = ", ".join(constant[:10])
        raise DataError(
            f"Feature column(s) {names} are constant on the training rows; drop them, they carry no signal."
        )
    if np.ptp(train_y) == 0:
        raise DataError("The target is constant on the training rows; there is nothing to learn.")
    fit_x = dataset.x if fit_scalers_on == "all" else train_x
    fit_y = dataset.y if fit_scalers_on == "all" else train_y
    x_scaler, y_scaler = inputs.build(), target.build()
    if x_scaler is not None:
        x_scaler.fit(fit_x)
        train_x, test_x = x_scaler.transform(train_x), x_scaler.transform(test_x)
    if y_scaler is not None:
        # scikit-learn scalers expect 2D input; reshape each split by its own length
        y_scaler.fit(fit_y.reshape(-1, 1))
        train_y = y_scaler.transform(train_y.reshape(-1, 1))[:, 0]
        test_y = y_scaler.transform(test_y.reshape(-1, 1))[:, 0]
    return PreparedData(
        train_x=np.ascontiguousarray(train_x, np.float32),
        train_y=np.ascontiguousarray(train_y, np.float32),
        test_x=np.ascontiguousarray(test_x, np.float32),
        test_y=np.ascontiguousarray(test_y, np.float32),
        task=dataset.task,
        input_scaler=inputs,
        target_scaler=target,
        fitted_target_scaler=y_scaler,
        name=dataset.name,
        n_classes=class_count(dataset.task, dataset.y),
    )
