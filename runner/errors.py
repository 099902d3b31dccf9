"""The one exception hierarchy of `runner`: every error a user can cause derives from RunnerError."""
from __future__ import annotations

__all__ = ["RunnerError", "SpecError", "DataError", "StorageError"]


class RunnerError(Exception):
    """Base of all errors meant for a person: the message is one line that says what to fix."""


class SpecError(RunnerError):
    """A TOML spec that cannot be run: syntax, unknown key, wrong type or out-of-range value."""


class DataError(RunnerError):
    """MNIST files that are missing, corrupt, truncated or fail their checksum."""


class StorageError(RunnerError):
    """A storage URL that cannot be opened, or a study whose contents conflict with the spec."""
