"""User-facing errors: the CLI prints them as one line and exits with status 2, no traceback."""

ERROR_LOG = "error.log"  # where the CLI logs the traceback of an unexpected error (in the run directory)


class DebateFTError(Exception):
    """Base class for errors caused by input, configuration or environment, not by a bug."""


class ConfigError(DebateFTError):
    """A configuration value or combination is invalid."""


class DataError(DebateFTError):
    """A data file is missing, malformed, or lacks a field."""


class ModelError(DebateFTError):
    """A model cannot be found or loaded."""


class TrainingError(DebateFTError):
    """Training diverged (a non-finite loss); nothing of it was saved."""
