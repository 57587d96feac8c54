"""The doctor's row budget: on a large table it diagnoses a random sample of the rows.

The doctor trains the user's configuration over ten seeds and then up to eight repairs,
about ninety models; on all 140,000 training rows of a 200,000-row table that took
over ten minutes and gigabytes of memory on two cores. The diagnosis is a comparison
between configurations, and it needs many seeds far more than every row, so each split
is capped at `max_rows`: a random sample of the user's training rows trains, a random
sample of the user's held-out rows scores. Both are drawn from the user's own split
(so no held-out row ever trains), seeded by its split seed (so a rerun draws the same
rows), and stratified by class for classification. Scalers are then fitted as the
user's configuration says, on the sampled training rows (or, with
fit_scalers_on = "all", on the sampled rows of both splits).
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from stablelearn.data import Dataset, split_rows, varying_columns
from stablelearn.errors import ConfigError, DataError
from stablelearn.experiments import Experiment
from stablelearn.tables import MIN_ROWS
from stablelearn.tasks import is_classification

MAX_ROWS = 20_000  # per split; see the README's doctor section for the measurements
ALL_ROWS = 0  # --max-rows 0: no sample


@dataclass(frozen=True, eq=False)
class RowSample:
    """The rows the diagnosis uses: sorted indices into the experiment's data."""

    train_rows: np.ndarray
    test_rows: np.ndarray
    train_total: int
    test_total: int
    max_rows: int
    seed: int

    @property
    def sampled(self) -> bool:
        """Whether the diagnosis leaves some of the user's rows out."""
        return len(self.train_rows) < self.train_total or len(self.test_rows) < self.test_total

    def describe(self) -> str:
        """The sentence the doctor prints and reports when it samples."""
        return (
            f"The diagnosis trains on {len(self.train_rows):,} of the {self.train_total:,} "
            f"training rows and scores on {len(self.test_rows):,} of the {self.test_total:,} "
            f"held-out rows, a random sample (at most {self.max_rows:,} of each, split seed "
            f"{self.seed}) that keeps the doctor to minutes; pass --max-rows 0 to use every row."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "max_rows": self.max_rows,
            "seed": self.seed,
            "train_rows": len(self.train_rows),
            "train_total": self.train_total,
            "test_rows": len(self.test_rows),
            "test_total": self.test_total,
        }


def _draw(
    rows: np.ndarray, y: np.ndarray, size: int, classes: bool, rng: np.random.RandomState
) -> np.ndarray:
    """`size` of `rows` at random without replacement (stratified by class when
    `classes`), sorted; all of them when there are no more than `size`."""
    if len(rows) <= size:
        return rows
    from sklearn.utils import resample

    drawn = resample(
        rows, replace=False, n_samples=size, stratify=y[rows] if classes else None, random_state=rng
    )
    return np.sort(drawn)


def row_sample(experiment: Experiment, max_rows: int = MAX_ROWS) -> RowSample:
    """The rows of the user's split that the diagnosis uses: at most `max_rows` of each
    split (0: every row)."""
    if max_rows != ALL_ROWS and max_rows < MIN_ROWS:
        raise ConfigError(
            f"--max-rows must be 0 (every row) or at least {MIN_ROWS}, got {max_rows}."
        )
    data = experiment.data
    train, test = split_rows(
        data, experiment.n_train, experiment.test_fraction, experiment.split_seed
    )
    if max_rows == ALL_ROWS:
        return RowSample(train, test, len(train), len(test), ALL_ROWS, experiment.split_seed)
    classes = is_classification(data.task)
    seed = experiment.split_seed
    # one generator, training rows first: split seeds are not bounded to 32 bits
    rng = np.random.RandomState(np.random.SeedSequence(seed).generate_state(4))
    sample = RowSample(
        _draw(train, data.y, max_rows, classes, rng),
        _draw(test, data.y, max_rows, classes, rng),
        len(train),
        len(test),
        max_rows,
        seed,
    )
    if sample.sampled:
        _check_sample_trains(data, train, sample)
    return sample


def _check_sample_trains(data: Dataset, train: np.ndarray, sample: RowSample) -> None:
    """Stop, in one sentence, where the training sample lost something the training
    split has: a column that varies, a class (or, from both samples, one the output
    layer counts), a target that varies."""
    kept = sample.train_rows
    lost = data.column_names(varying_columns(data.x[train]) & ~varying_columns(data.x[kept]))
    if is_classification(data.task):
        both = np.concatenate([kept, sample.test_rows])
        missing = sorted(
            (set(np.unique(data.y[train])) - set(np.unique(data.y[kept])))
            | (set(np.unique(data.y)) - set(np.unique(data.y[both])))
        )
        what = f"class(es) {', '.join(str(int(c)) for c in missing[:10])}" if missing else ""
    else:
        what = "a varying target" if np.ptp(data.y[kept]) == 0 else ""
    if lost:
        what = f"column(s) {', '.join(lost[:10])} varying" + (f", and {what}" if what else "")
    if what:
        raise DataError(
            f"The doctor's random {len(kept):,} of the {len(train):,} training rows lack "
            f"{what}, which only a few rows have; pass --max-rows 0 to use every row, or a "
            "larger --max-rows."
        )


def on_sample(experiment: Experiment, sample: RowSample) -> Experiment:
    """The experiment trained on the sample: its data holds the sampled training rows
    then the sampled held-out rows, split there (n_train), so every variant's scalers
    are fitted on the sampled training rows as the user's configuration says."""
    if not sample.sampled:
        return experiment
    data = experiment.data
    rows = np.concatenate([sample.train_rows, sample.test_rows])
    subset = Dataset(
        data.x[rows], data.y[rows], data.task, data.name, data.feature_names, data.target_name
    )
    return dataclasses.replace(
        experiment, data=subset, n_train=len(sample.train_rows), test_fraction=None
    )
