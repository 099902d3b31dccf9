"""The machine a run is on, in one place:

    memory      what this machine has to give: memory available to this process or on a GPU
    provenance  what produced a result besides its config: the code's version, the CPU, the libraries

Where the workers go (GPUs among them, whether N of them fit) is runner.trials.devices; what a
model takes to train is runner.models.memory.
"""
from __future__ import annotations

from runner.machine.memory import available_bytes, mib

__all__ = ["available_bytes", "mib"]
