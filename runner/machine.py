"""What this machine has to give: memory available to this process (or on a GPU), and how to say it."""
from __future__ import annotations

import os

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
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"free on {device} ({torch.cuda.get_device_name(torch.device(device))})"
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
