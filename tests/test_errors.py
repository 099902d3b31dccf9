"""runner/errors.py: one base for every error a person can cause, a user's file read with a one-line error, and
the out-of-memory test that trials and the data loader share."""
from __future__ import annotations

import pytest

from runner import errors
from runner.errors import DataError, RunnerError, SpecError, out_of_memory, read_text


def test_every_error_derives_from_runner_error():
    kinds = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    assert [k.__name__ for k in kinds] == ["RunnerError", "SpecError", "DataError", "StorageError", "ReportError"]
    assert all(issubclass(k, RunnerError) for k in kinds)


def test_read_text_reads_utf_8(tmp_path):
    (tmp_path / "s.toml").write_bytes("name = \"\u00e9t\u00e9\"\n".encode("utf-8"))
    assert read_text(tmp_path / "s.toml", SpecError, "spec") == 'name = "\u00e9t\u00e9"\n'


def test_a_missing_file_is_one_line_of_the_given_error(tmp_path):
    with pytest.raises(SpecError, match=r"^.*/gone\.toml: no such spec$") as e:
        read_text(tmp_path / "gone.toml", SpecError, "spec")
    assert e.value.__cause__ is None and e.value.__suppress_context__  # `from None`: no chained traceback


def test_a_file_that_cannot_be_read_says_why(tmp_path):
    with pytest.raises(DataError, match=r"^.*: cannot read: Is a directory$"):
        read_text(tmp_path, DataError, "file")


@pytest.mark.parametrize("error, is_oom", [
    (MemoryError(), True),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (type("OutOfMemoryError", (RuntimeError,), {})("no words"), True),  # torch.cuda.OutOfMemoryError, by name
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
    (ValueError("memory"), False),
])
def test_out_of_memory_knows_an_allocation_that_failed(error, is_oom):
    assert out_of_memory(error) is is_oom
