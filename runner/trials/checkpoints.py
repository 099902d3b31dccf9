"""Epoch checkpoints: written atomically, read safely, with the previous one kept as a fallback.

A checkpoint is a plain dict (model, optimizer, scheduler, RNG states, epoch, metrics so far),
saved with `torch.save` and loaded with `torch.load(weights_only=True)`, which builds tensors and
plain containers only. Each save writes `<name>.tmp`, flushes it to disk, moves the current
checkpoint to `<name>.prev.pt` and the new one into place, so a crash or a full disk at any
moment leaves at least one complete checkpoint.
"""
from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from runner.trials.signals import held_signals

__all__ = ["Checkpoints"]


class Checkpoints:
    """The checkpoints of one study, one file per point, under `folder`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, config_hash: str) -> Path:
        """Where the point's checkpoint lives."""
        return self.folder / f"{config_hash}.pt"

    def save(self, config_hash: str, state: dict[str, Any]) -> None:
        """Write atomically; on failure (disk full) the previous checkpoint is left as it was."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(config_hash)
        tmp, prev = path.with_suffix(".tmp"), path.with_suffix(".prev.pt")
        # an interrupt inside torch.save's zip writer leaves it broken: its cleanup then raises a RuntimeError
        # ("unexpected pos") in place of the KeyboardInterrupt, a crash instead of a clean stop
        with held_signals():
            try:
                with open(tmp, "wb") as f:
                    torch.save(state, f)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            if path.exists():
                os.replace(path, prev)
            os.replace(tmp, path)

    def load(self, config_hash: str) -> dict[str, Any] | None:
        """The newest readable checkpoint of a point, or None; warns about any unreadable one."""
        path = self.path(config_hash)
        for candidate in (path, path.with_suffix(".prev.pt")):
            if not candidate.exists():
                continue
            try:
                state = torch.load(candidate, map_location="cpu", weights_only=True)
            except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
                warnings.warn(f"{candidate}: unreadable checkpoint ({type(e).__name__}); "
                              "falling back to the one before it", stacklevel=2)
                continue
            if not isinstance(state, dict) or state.get("config_hash") != config_hash:
                warnings.warn(f"{candidate}: not a checkpoint of this point; ignoring it", stacklevel=2)
                continue
            return state
        return None

    def remove(self, config_hash: str) -> None:
        """Delete a point's checkpoints (its trial is complete)."""
        path = self.path(config_hash)
        for p in (path, path.with_suffix(".prev.pt"), path.with_suffix(".tmp")):
            p.unlink(missing_ok=True)
