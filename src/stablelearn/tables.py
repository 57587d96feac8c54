"""Load a user's table (CSV or Parquet) into a Dataset, with one clear error per problem.

The target column picks the task unless one is given: a non-numeric target or a
numeric one with two values is classification (labels are encoded 0..k-1 in sorted
order; two classes make a binary task), integer values with at most 10 distinct
classes are multiclass, anything else is regression. Constant feature columns are
dropped (the doctor reports them); every other problem stops with a sentence that
names the columns and says what to do.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stablelearn.data import TASKS, Dataset, varying_columns
from stablelearn.errors import ConfigError, DataError

MIN_ROWS = 20
MAX_CLASSES = 10
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Table:
    """A loaded table: the dataset, the class labels behind 0..k-1, dropped columns."""

    dataset: Dataset
    class_labels: tuple[str, ...] = ()
    dropped_columns: tuple[str, ...] = field(default=())


def read_frame(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"No such file: {path}.")
    if not path.is_file():
        raise DataError(f"{path} is not a file.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except ImportError:
        raise DataError(
            "Reading Parquet needs pyarrow: pip install 'stablelearn[parquet]'."
        ) from None
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        ValueError,
        OSError,
    ) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"Could not read {path.name} as a table ({reason}).") from None
    raise DataError(f"{path.name}: expected a .csv, .tsv or .parquet file.")


def beyond_float32(values: np.ndarray) -> np.ndarray:
    """Per column (or for a 1-D array, overall): does a value turn into inf in float32,
    the precision the engine trains in?"""
    with np.errstate(over="ignore"):  # the overflow is what is being measured
        return ~np.isfinite(values.astype(np.float32)).all(axis=0)


def _task_of(target: pd.Series, task: str | None) -> str:
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    values = target.unique()
    if len(values) < 2:
        raise DataError(
            f"The target {target.name!r} has a single value; there is nothing to learn."
        )
    integral = numeric and bool(
        np.all(np.asarray(values, np.float64) == np.round(np.asarray(values, np.float64)))
    )
    if task is not None:
        if task not in TASKS:
            raise ConfigError(f"Unknown task {task!r}; expected one of: {', '.join(TASKS)}.")
        if task == "regression" and not numeric:
            raise DataError(
                f"The target {target.name!r} is not numeric, so it cannot be a regression target."
            )
        if task == "binary" and len(values) != 2:
            raise DataError(
                f"A binary task needs a target with 2 values; {target.name!r} has {len(values)}."
            )
        if task == "multiclass" and numeric and not integral:
            raise DataError(
                f"A multiclass task needs class labels; {target.name!r} has non-integer values, "
                "which look like a regression target."
            )
        return task
    if not numeric or len(values) == 2:
        return "binary" if len(values) == 2 else "multiclass"
    if integral and len(values) <= MAX_CLASSES:
        return "multiclass"
    return "regression"


def load_table(path: str | Path, target: str, task: str | None = None) -> Table:
    """Read `path` and split it into features and the `target` column."""
    frame = read_frame(path)
    name = Path(path).name
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        more = f" and {len(frame.columns) - 20} more" if len(frame.columns) > 20 else ""
        raise DataError(f"{name} has no column {target!r}; its columns are: {columns}{more}.")
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"{name} has {len(frame)} rows; at least {MIN_ROWS} are needed to train and test."
        )
    y_series = frame[target]
    missing = int(y_series.isna().sum())
    if missing:
        raise DataError(
            f"The target {target!r} is missing in {missing} row(s); drop those rows first."
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{name} has no feature columns besides the target {target!r}.")
    non_numeric = [
        str(c)
        for c in features.columns
        if not pd.api.types.is_numeric_dtype(features[c]) or pd.api.types.is_bool_dtype(features[c])
    ]
    if non_numeric:
        raise DataError(
            f"Feature column(s) {', '.join(non_numeric[:10])} are not numeric; encode them first "
            "(for example one-hot with pandas.get_dummies)."
        )
    x = features.to_numpy(np.float64)
    bad = [
        str(c) for c, ok in zip(features.columns, np.isfinite(x).all(axis=0), strict=True) if not ok
    ]
    if bad:
        raise DataError(
            f"Feature column(s) {', '.join(bad[:10])} contain missing or infinite values; impute or drop them first."
        )
    huge = [str(c) for c, big in zip(features.columns, beyond_float32(x), strict=True) if big]
    if huge:
        raise DataError(
            f"Feature column(s) {', '.join(huge[:10])} hold values beyond float32's range "
            f"(|x| > {FLOAT32_MAX:.3g}), which training turns into inf; rescale or log-transform them first."
        )
    chosen = _task_of(y_series, task)
    labels: tuple[str, ...] = ()
    if chosen == "regression":
        y = y_series.to_numpy(np.float64)
        if not np.isfinite(y).all():
            raise DataError(
                f"The target {target!r} contains infinite values; drop those rows first."
            )
        if beyond_float32(y):
            raise DataError(
                f"The target {target!r} holds values beyond float32's range "
                f"(|y| > {FLOAT32_MAX:.3g}), which training turns into inf; rescale or log-transform it first."
            )
    else:
        classes = sorted(y_series.unique(), key=lambda v: (str(type(v)), v))
        labels = tuple(str(c) for c in classes)
        y = y_series.map({c: i for i, c in enumerate(classes)}).to_numpy(np.float64)
    keep = varying_columns(x)
    if not keep.any():
        raise DataError(
            f"Every feature column of {name} is constant; there is nothing to learn from."
        )
    everything = Dataset(
        x, y, chosen, Path(path).stem, tuple(map(str, features.columns)), str(target)
    )
    return Table(everything.keep_columns(keep), labels, everything.column_names(~keep))
