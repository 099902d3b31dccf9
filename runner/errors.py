"""The one exception hierarchy of `runner`: every error a user can cause derives from RunnerError."""
from __future__ import annotations

from pathlib import Path

__all__ = ["RunnerError", "SpecError", "DataError", "StorageError", "read_text"]


class RunnerError(Exception):
    """Base of all errors meant for a person: the message is one line that says what to fix."""


class SpecError(RunnerError):
    """A TOML spec that cannot be run: syntax, unknown key, wrong type or out-of-range value."""


class DataError(RunnerError):
    """MNIST files that are missing, corrupt, truncated or fail their checksum."""


class StorageError(RunnerError):
    """A storage URL that cannot be opened, or a study whose contents conflict with the spec."""


def read_text(path: Path, error: type[RunnerError], what: str) -> str:
    """A user's text file, or `error` with one line: "PATH: no such WHAT" or why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}") from None
