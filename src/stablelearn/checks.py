"""Parameter validation in one place, in the spirit of scikit-learn's `check_scalar`.

A constraint is declared once, as an `Interval`, next to the parameter it guards (see
the optimizers' `CONSTRAINTS`); `check_in` turns a violation into one ConfigError
sentence naming the owner, the parameter, the allowed range and the value received.
"""

import math
import numbers
from dataclasses import dataclass
from typing import Any

from stablelearn.errors import ConfigError


def is_integer(value: object) -> bool:
    """True for Python and NumPy integers, False for bools (which Python counts as ints)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for finite-or-not real numbers of any numeric type, never for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval:
    """A range of real numbers; `closed` says which ends belong to it."""

    low: float
    high: float
    closed: str = "both"  # "both", "left", "right" or "neither"

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.closed in ("both", "left") else value > self.low
        below = value <= self.high if self.closed in ("both", "right") else value < self.high
        return above and below

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"


FLOAT32_MAX = 3.4028234663852886e38
POSITIVE = Interval(0.0, math.inf, "neither")
UNIT = Interval(0.0, 1.0, "both")  # momentum
UNIT_OPEN_HIGH = Interval(0.0, 1.0, "left")  # decay rates such as beta_1 and rho
NON_NEGATIVE = Interval(0.0, math.inf, "left")


def check_in(owner: str, name: str, value: Any, interval: Interval) -> float:
    """`value` as a float if it is a finite number inside `interval`, else a ConfigError."""
    if not is_number(value) or not math.isfinite(value):
        raise ConfigError(f"{owner} {name} must be a finite number, got {value!r}.")
    if abs(value) > FLOAT32_MAX:  # training runs in float32: it would become inf
        raise ConfigError(
            f"{owner} {name} must be within float32's range (|x| <= 3.4e38), got {value!r}."
        )
    if value not in interval:
        raise ConfigError(f"{owner} {name} must be in {interval}, got {value!r}.")
    return float(value)


def check_positive_int(name: str, value: Any) -> int:
    """`value` if it is an integer of at least 1 (never a bool), else a ConfigError."""
    if not is_integer(value) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
