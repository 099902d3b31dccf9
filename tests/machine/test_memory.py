"""runner/machine/memory.py: memory said as a person reads it, and what this process may still use (the smaller of
the machine's available memory and a container's limit)."""
from __future__ import annotations

import builtins
import io

import pytest

from runner.machine import memory
from runner.machine.memory import available_bytes, mib


@pytest.mark.parametrize("n, text", [(340 * 2**20, "340 MB"), (2**30 - 1, "1,024 MB"), (2**30, "1.0 GB"),
                                     (1.26 * 2**30, "1.3 GB"), (1500 * 2**30, "1,500.0 GB")])
def test_mib_says_bytes_in_mb_or_gb(n, text):
    assert mib(n) == text


def _files(monkeypatch, files: dict[str, str]) -> None:
    real = builtins.open

    def fake(path, *args, **kwargs):
        if str(path) in files:
            return io.StringIO(files[str(path)])
        if str(path).startswith(("/proc/meminfo", "/sys/fs/cgroup/")):
            raise FileNotFoundError(path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", fake)


MEMINFO = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n"


def test_the_machines_available_memory_is_mem_available(monkeypatch):
    _files(monkeypatch, {"/proc/meminfo": MEMINFO})
    assert available_bytes() == (8_000_000 * 1024, "available on this machine")


def test_a_containers_limit_lowers_it(monkeypatch):
    _files(monkeypatch, {"/proc/meminfo": MEMINFO, "/sys/fs/cgroup/memory.max": f"{4 * 2**30}\n",
                         "/sys/fs/cgroup/memory.current": f"{2**30}\n"})
    assert available_bytes()[0] == 3 * 2**30
    _files(monkeypatch, {"/proc/meminfo": MEMINFO, "/sys/fs/cgroup/memory.max": "max\n",
                         "/sys/fs/cgroup/memory.current": f"{2**30}\n"})
    assert available_bytes()[0] == 8_000_000 * 1024  # no limit


def test_on_a_gpu_it_is_the_free_memory_of_the_one_named_or_the_roomiest(monkeypatch):
    monkeypatch.setattr(memory, "_gpus", lambda: [(2 * 2**30, "A"), (6 * 2**30, "B")])
    assert available_bytes("cuda:0") == (2 * 2**30, "free on cuda:0 (A)")
    assert available_bytes("cuda") == (6 * 2**30, "free on cuda:1 (B)")
