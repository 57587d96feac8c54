"""Error types that carry one clear sentence for the user, and the checks behind them.

Every check at a boundary (specs, configuration files, data) raises one of these
with a message that says what was expected, what was received and how to fix it.
The CLI prints the message alone, never a traceback.
"""

import numbers


class StablelearnError(ValueError):
    """Base class for errors caused by the user's input rather than by a bug."""


class ConfigError(StablelearnError):
    """An invalid model, optimizer or training specification."""


class DataError(StablelearnError):
    """Data that cannot be trained on as given (NaNs, wrong shapes, constant columns...)."""


def is_integer(value: object) -> bool:
    """True for Python and NumPy integers, False for bools (which Python counts as ints)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for finite-or-not real numbers of any numeric type, never for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
