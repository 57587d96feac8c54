"""Error types that carry one clear sentence for the user.

Every check at a boundary (specs, configuration files, data) raises one of these
with a message that says what was expected, what was received and how to fix it.
The CLI prints the message alone, never a traceback. The checks themselves live in
stablelearn.checks.
"""


class StablelearnError(ValueError):
    """Base class for errors caused by the user's input rather than by a bug."""


class ConfigError(StablelearnError):
    """An invalid model, optimizer or training specification."""


class DataError(StablelearnError):
    """Data that cannot be trained on as given (NaNs, wrong shapes, constant columns...)."""


class ResourceError(StablelearnError):
    """A plan that cannot fit in this machine's memory (said before any work starts)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was kept for the user (the CLI prints it and exits 130)."""
