"""What this machine has to give: memory available to this process (or on a GPU), and how to say it."""
from __future__ import annotations

import functools
import os
import subprocess
import sys

__all__ = ["available_bytes", "mib"]


def mib(n: float) -> str:
    """Bytes as a person reads them: 1.2 GB, 340 MB."""
    if n >= 2**30:
        return f"{n / 2**30:,.1f} GB"
    return f"{n / 2**20:,.0f} MB"


def available_bytes(device: str = "cpu") -> tuple[int, str]:
    """(bytes, where) this process may still use: MemAvailable of /proc/meminfo (the cgroup's limit if lower),
    or the free memory of a CUDA device ("cuda:0")."""
    if device.startswith("cuda"):
        gpus = _gpus()
        if device == "cuda":  # the roomiest of them
            index = max(range(len(gpus)), key=lambda i: gpus[i][0])
        else:
            index = int(device.partition(":")[2] or 0)
        free, name = gpus[index]
        return free, f"free on cuda:{index} ({name})"
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:  # a container's limit
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            avail = min(avail, int(limit) - used)
    except (OSError, ValueError):
        pass
    return int(avail), "available on this machine"


_GPU_QUERY = ("import torch\nfor i in range(torch.cuda.device_count()):\n"
              "    print(torch.cuda.mem_get_info(i)[0], torch.cuda.get_device_name(i))")


@functools.lru_cache(maxsize=1)
def _gpus() -> list[tuple[int, str]]:
    """(free bytes, name) of each visible CUDA device, asked of a short-lived process: a CUDA context opened
    here would stay for the whole run (half a GB on each GPU, and a GPU in exclusive-process mode would then
    refuse the workers' own)."""
    done = subprocess.run([sys.executable, "-c", _GPU_QUERY], capture_output=True, text=True, timeout=120)
    rows = [line.split(" ", 1) for line in done.stdout.splitlines() if line.strip()]
    return [(int(free), name) for free, name in rows]
