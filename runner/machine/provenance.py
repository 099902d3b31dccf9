"""What produced a result besides its config: the code's version, the libraries', the machine's name.

Stored with every trial and with every benchmark's figures, named one way for both.
"""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runner.record import VERSIONS, provenance_record

__all__ = ["code_version", "cpu_name", "library_versions", "provenance", "machine_info"]


def code_version() -> str:
    """The git commit of the runner's source (with -dirty), or its package version."""
    root = Path(__file__).resolve().parent.parent.parent  # the checkout (this is runner/machine/provenance.py)
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "runner"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version
        return f"runner {version('runner')}"


def cpu_name() -> str:
    """The CPU's model name as the kernel gives it ("AMD EPYC 7B13"), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str]:
    """The versions of the libraries a result depends on."""
    import optuna
    import sqlalchemy
    import torch
    import torchvision
    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "optuna": optuna.__version__, "sqlalchemy": sqlalchemy.__version__}


def provenance(device: str, threads: int) -> dict[str, Any]:
    """What produced a trial's result, besides its config (stored in its user attrs)."""
    return provenance_record(code_version(), device, threads, cpu_name(), platform.python_version(),
                             library_versions())


def machine_info(device: str, threads: int) -> dict[str, Any]:
    """What a benchmark's figures were measured on: the trial's provenance, the date and the load."""
    prov = provenance(device, threads)
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), **prov,
            "torch": prov[VERSIONS]["torch"], "cpu_count": os.cpu_count(), "cores_usable": threads,
            "load_average_start": os.getloadavg()}
