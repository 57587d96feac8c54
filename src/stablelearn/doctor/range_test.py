"""The learning-rate range test across seeds: which learning rates train this model on
this data, and how much the answer depends on the seed.

Every rate of a log-spaced grid trains on the same seeds, as one compiled program (the
learning rate is a number per model, so the planner puts all rates and seeds in one
ensemble). Each model is scored by its final held-out loss, in the units it trains in
(its target scaler's); a model whose loss or weights became NaN/Inf has diverged and
scores worst (inf).

Per rate: the median over seeds, the interquartile range (p25-p75) and min-max of the
finite losses, and how many seeds diverged.

**The usable range** (USABLE_SHARE = 0.9): the best rate is the one with the lowest median
held-out loss among the rates where no seed diverged. A rate is *usable* when no seed
diverged and its median closes at least USABLE_SHARE of the gap between the constant
prediction's held-out loss (a model that learned nothing) and the best rate's median:
median <= best + (1 - USABLE_SHARE) x (constant - best). The gap, not a ratio of
losses, because a ratio means nothing when the best loss is near zero (a noise-free
target: 2e-6 and 5e-5 are both perfect next to the constant's 1.0) and little when the
best barely learns. The usable range is the run of consecutive usable grid rates that
contains the best one (a usable rate cut off from it by an unusable one is not in it).
When no rate beats the constant prediction there is no usable range.

**The recommended rate** is the best rate, unless it is the top of the range: the next
rate up then diverges or learns measurably worse, and a rate at that edge on these
seeds is one step from failing on others; the recommendation is then one grid step
lower, where the range has one (Leslie Smith's advice: a little below where the loss
stops improving).
"""

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stablelearn.doctor.repairs import Candidate
from stablelearn.errors import ConfigError
from stablelearn.losses import EPSILON

DEFAULT_MIN, DEFAULT_MAX = 1e-5, 1.0
DEFAULT_POINTS = 11  # half-decade steps: 1e-5, 3.2e-5, 1e-4, ..., 1
USABLE_SHARE = 0.9
REPAIR_ID = "range_test_learning_rate"
RULE = (
    "usable: no seed diverged and the median held-out loss closes at least "
    f"{USABLE_SHARE:.0%} of the gap between the constant prediction's and the best rate's "
    "(the lowest median among rates where no seed diverged); the range is the consecutive "
    "usable rates around the best; recommended: the best rate, or one grid step below it "
    "when it is the range's top"
)


def rate_grid(
    low: float = DEFAULT_MIN, high: float = DEFAULT_MAX, points: int = DEFAULT_POINTS
) -> np.ndarray:
    """`points` log-spaced learning rates from `low` to `high`, both included, rounded to
    two significant digits."""
    if not (np.isfinite(low) and low > 0):
        raise ConfigError(f"--min must be a positive learning rate, got {low:g}.")
    if not (np.isfinite(high) and high > low):
        raise ConfigError(f"--max must be a learning rate above --min ({low:g}), got {high:g}.")
    if points < 2:
        raise ConfigError(f"--points must be at least 2, got {points}.")
    # two significant digits: the rates a user would type (0.032, not 0.0316227766...),
    # still log-spaced to within 2%
    return np.unique([float(f"{rate:.2g}") for rate in np.geomspace(low, high, points)])


def format_rate(rate: float) -> str:
    return f"{rate:.2g}"


def rate_candidates(tables: Mapping[str, Any], rates: Sequence[float]) -> list[Candidate]:
    """The configuration `tables` once per learning rate, everything else unchanged."""
    candidates = []
    for rate in rates:
        changed = copy.deepcopy(dict(tables))
        changed["optimizer"]["learning_rate"] = float(rate)
        name = f"learning rate {format_rate(rate)}"
        candidates.append(Candidate(name, changed, REPAIR_ID, (REPAIR_ID,)))
    return candidates


@dataclass(frozen=True, eq=False)
class RateScores:
    """One learning rate's final held-out losses over the seeds (inf: diverged)."""

    learning_rate: float
    losses: np.ndarray

    @property
    def n(self) -> int:
        return len(self.losses)

    @property
    def diverged(self) -> int:
        return int((~np.isfinite(self.losses)).sum())

    @property
    def median(self) -> float:
        """Over every seed, diverged ones ranked worst: inf once half diverged."""
        return float(np.sort(self.losses)[(self.n - 1) // 2 : self.n // 2 + 1].mean())

    def finite_spread(self) -> tuple[float, float, float, float] | None:
        """min, p25, p75, max of the finite losses (None when every seed diverged)."""
        finite = self.losses[np.isfinite(self.losses)]
        if not finite.size:
            return None
        p25, p75 = np.percentile(finite, [25, 75])
        return float(finite.min()), float(p25), float(p75), float(finite.max())

    def to_json(self) -> dict[str, Any]:
        spread = self.finite_spread()
        keys = ("min", "p25", "p75", "max")
        return {
            "learning_rate": self.learning_rate,
            "n": self.n,
            "diverged": self.diverged,
            "median": self.median if np.isfinite(self.median) else None,
            **{
                k: (None if spread is None else v)
                for k, v in zip(keys, spread or keys, strict=True)
            },
            "losses": [float(v) if np.isfinite(v) else None for v in self.losses],
        }


@dataclass(frozen=True, eq=False)
class RangeTest:
    """The range test's measurements and what the rule (module docstring) makes of them."""

    rates: tuple[RateScores, ...]  # in increasing learning rate
    baseline_loss: float  # the best constant prediction's held-out loss
    loss_name: str
    seeds: tuple[int, ...]
    epochs: int
    user_rate: float | None = None
    models: int = 0
    programs: int = 0
    seconds: float = 0.0
    estimated_s: float = 0.0

    @property
    def best(self) -> int | None:
        """Index of the lowest median among the rates where no seed diverged."""
        stable = [i for i, r in enumerate(self.rates) if r.diverged == 0]
        return min(stable, key=lambda i: self.rates[i].median) if stable else None

    def usable(self, i: int) -> bool:
        best = self.best
        if best is None:
            return False
        r, top = self.rates[i], self.rates[best].median
        if not top < self.baseline_loss:  # the best learns nothing
            return False
        return r.diverged == 0 and r.median <= top + (1 - USABLE_SHARE) * (self.baseline_loss - top)

    @property
    def usable_range(self) -> tuple[int, int] | None:
        """First and last index of the usable range (module docstring), or None."""
        best = self.best
        if best is None or not self.usable(best):
            return None
        low = high = best
        while low > 0 and self.usable(low - 1):
            low -= 1
        while high < len(self.rates) - 1 and self.usable(high + 1):
            high += 1
        return low, high

    @property
    def recommended(self) -> float | None:
        span = self.usable_range
        if span is None:
            return None
        best = self.best
        assert best is not None
        low, high = span
        at_top_edge = best == high and high < len(self.rates) - 1
        return self.rates[best - 1 if at_top_edge and best > low else best].learning_rate

    def summary(self) -> str:
        """The answer in one line: the range, the best rate with its spread, the
        recommendation, and what fails outside the range."""
        rates = self.rates
        span = self.usable_range
        grid = f"{format_rate(rates[0].learning_rate)} .. {format_rate(rates[-1].learning_rate)}"
        if span is None:
            failed = sum(r.diverged for r in rates)
            total = sum(r.n for r in rates)
            return (
                f"No usable learning rate in {grid}: every rate diverged on some seed or "
                f"learned no better than a constant prediction ({failed}/{total} seeds diverged)."
            )
        low, high = span
        best = rates[self.best]  # type: ignore[index]
        spread = best.finite_spread()
        assert spread is not None
        line = (
            f"Usable learning rates {format_rate(rates[low].learning_rate)} .. "
            f"{format_rate(rates[high].learning_rate)} (median best at "
            f"{format_rate(best.learning_rate)}: held-out {self.loss_name} {best.median:.4g}, "
            f"IQR {spread[1]:.4g} to {spread[2]:.4g} over {best.n} seeds); recommended "
            f"{format_rate(self.recommended)}"  # type: ignore[arg-type]
        )
        above, below = rates[high + 1 :], rates[:low]
        if above:
            k, n = sum(r.diverged for r in above), sum(r.n for r in above)
            what = f"diverge in {k}/{n} seeds" if k else "learn worse"
            line += f"; {format_rate(above[0].learning_rate)} and above {what}"
        if below:
            k, n = sum(r.diverged for r in below), sum(r.n for r in below)
            what = f"diverge in {k}/{n} seeds" if k else "learn too slowly"
            line += f"; {format_rate(below[-1].learning_rate)} and below {what}"
        line += "."
        if self.user_rate is not None:
            line += " " + self.user_position()
        return line

    def user_position(self) -> str:
        span = self.usable_range
        yours = f"Your learning rate {format_rate(self.user_rate)}"  # type: ignore[arg-type]
        if span is None:
            return f"{yours} is not in a usable range."
        low, high = (self.rates[i].learning_rate for i in span)
        if self.user_rate < low:  # type: ignore[operator]
            return f"{yours} is below the usable range."
        if self.user_rate > high:  # type: ignore[operator]
            return f"{yours} is above the usable range."
        return f"{yours} is inside the usable range."

    def to_json(self) -> dict[str, Any]:
        span = self.usable_range
        best = self.best
        return {
            "loss": self.loss_name,
            "baseline_loss": self.baseline_loss,
            "epochs": self.epochs,
            "seeds": list(self.seeds),
            "rule": RULE,
            "usable_share": USABLE_SHARE,
            "rates": [{**r.to_json(), "usable": self.usable(i)} for i, r in enumerate(self.rates)],
            "best": None if best is None else self.rates[best].learning_rate,
            "usable_range": None
            if span is None
            else {
                "low": self.rates[span[0]].learning_rate,
                "high": self.rates[span[1]].learning_rate,
            },
            "recommended": self.recommended,
            "user_learning_rate": self.user_rate,
            "summary": self.summary(),
            "timing": {
                "models": self.models,
                "programs": self.programs,
                "seconds": self.seconds,
                "estimated_s": self.estimated_s,
            },
        }


def constant_loss(train_y: np.ndarray, test_y: np.ndarray, loss: str) -> float:
    """The held-out loss of the constant prediction that is best on the training rows
    (their mean; their class frequencies): what a model that learned nothing scores."""
    train_y, test_y = np.asarray(train_y, float).ravel(), np.asarray(test_y, float).ravel()
    if loss == "mse":
        return float(np.mean((test_y - train_y.mean()) ** 2))
    classes = int(max(train_y.max(), test_y.max())) + 1
    share = np.bincount(train_y.astype(int), minlength=classes) / len(train_y)
    share = np.clip(share, EPSILON, 1.0)
    return float(-np.mean(np.log(share[test_y.astype(int)])))


def range_test_of(
    variants: Sequence[Any],
    rates: Sequence[float],
    user_rate: float | None = None,
    seconds: float = 0.0,
    estimated_s: float = 0.0,
) -> RangeTest:
    """Summarize the trained variants (experiments.runner.VariantResult, one per rate,
    in the order of `rates`) as a RangeTest."""
    scored = []
    for variant, rate in zip(variants, rates, strict=True):
        result = variant.result
        loss = np.nan_to_num(result.test_scores["loss"], nan=np.inf)
        scored.append(RateScores(float(rate), np.where(result.diverged, np.inf, loss)))
    first = variants[0].result
    loss_name = first.runs[0].config.loss
    data = variants[0].data
    baseline = constant_loss(data.train_y, data.test_y, loss_name)
    order = np.argsort(rates)
    return RangeTest(
        tuple(scored[i] for i in order),
        baseline,
        loss_name,
        tuple(int(s) for s in first.seeds),
        first.epochs,
        user_rate,
        models=sum(v.result.n_models for v in variants),
        programs=first.timing.programs,
        seconds=seconds,
        estimated_s=estimated_s,
    )
