"""The one exception hierarchy of `runner`: every error a user can cause derives from RunnerError."""
from __future__ import annotations

from pathlib import Path

__all__ = ["RunnerError", "SpecError", "DataError", "StorageError", "ReportError", "read_text", "out_of_memory"]


class RunnerError(Exception):
    """Base of all errors meant for a person: the message is one line that says what to fix."""


class SpecError(RunnerError):
    """A TOML spec that cannot be run: syntax, unknown key, wrong type or out-of-range value."""


class DataError(RunnerError):
    """MNIST files that are missing, corrupt, truncated or fail their checksum."""


class StorageError(RunnerError):
    """A storage URL that cannot be opened, or a study whose contents conflict with the spec."""


class ReportError(RunnerError):
    """A report that cannot be made: no complete trials, a README without markers, a bad folder."""


def read_text(path: Path, error: type[RunnerError], what: str) -> str:
    """A user's text file, or `error` with one line: "PATH: no such WHAT" or why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}") from None


def out_of_memory(e: BaseException) -> bool:
    """Whether an exception is an allocation that failed: torch's OutOfMemoryError (CUDA), or the CPU
    allocator's "can't allocate memory", or a MemoryError."""
    text = str(e)
    return (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "out of memory" in text.lower())
