"""A configuration as the stored trials give it: complete trials with equal params but the seed, their
final figures and their curves, and the trials left out (runner.results.reading reads them)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Curve", "Config", "Excluded", "CURVES", "config_key"]

# Per-epoch metrics drawn for every curve: column of runner_epochs -> (panel title, y label).
CURVES = {
    "train_loss": ("train loss", "cross-entropy loss (log scale)"),
    "test_loss": ("test loss", "cross-entropy loss (log scale)"),
    "train_acc": ("train accuracy", "accuracy (%)"),
    "test_acc": ("test accuracy", "accuracy (%)"),
}


@dataclass(frozen=True)
class Curve:
    """One per-epoch metric of a configuration: the mean over seeds and the min-max band."""

    epochs: tuple[int, ...]
    mean: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]


@dataclass(frozen=True)
class Config:
    """Complete trials with equal params except the seed; tuples hold one value per seed."""

    key: str  # JSON of the params without the seed: the configuration's identity
    model: str
    arch: str  # lenet5 | mlp
    params: dict[str, Any]  # every axis -> value (neither model nor seed)
    label: str  # the model and the axes that differ from their default
    slug: str  # the label as a file name
    regularized: bool  # some regularizer is not off
    param_count: int
    seeds: tuple[int, ...]
    final: tuple[float, ...]  # the study's metric at the final epoch
    final_acc: tuple[float, ...]  # % test accuracy at the final epoch
    best_acc: tuple[float, ...]  # % test accuracy at the best epoch
    final_loss: tuple[float, ...]  # test loss at the final epoch
    final_val: tuple[float, ...]  # % validation accuracy at the final epoch (empty without a validation split)
    gap: tuple[float, ...]  # train minus test accuracy at the final epoch, points
    trial_ids: tuple[int, ...]  # Optuna's trial_id of each seed's trial
    seconds_per_epoch: float | None
    peak_memory_mb: float | None  # mean over seeds of each trial's peak (RSS on CPU, allocated on CUDA)
    curves: dict[str, Curve]  # keys of CURVES


@dataclass(frozen=True)
class Excluded:
    """A trial left out of the statistics: failed, still running, or a duplicate."""

    number: int
    state: str
    label: str
    seed: int | None
    reason: str


def config_key(params: dict[str, Any]) -> str:
    """The key naming a configuration: its parameters as JSON with sorted keys."""
    return json.dumps(params, sort_keys=True)
