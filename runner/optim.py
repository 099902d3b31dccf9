"""Optimizers and learning-rate schedules by name: the one registry the spec's grammar and the trainer read.

Each builder takes the [train] config (`lr`, `momentum`); a schedule is stepped once per batch.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS: dict[str, Callable[[Any, Any, float], torch.optim.Optimizer]] = {  # (params, train config, weight decay)
    "sgd": lambda params, t, wd: torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=wd),
    "adam": lambda params, t, wd: torch.optim.Adam(params, lr=t.lr, betas=(t.momentum, 0.999), weight_decay=wd),
    "adamw": lambda params, t, wd: torch.optim.AdamW(params, lr=t.lr, betas=(t.momentum, 0.999), weight_decay=wd),
}

SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, Any, int], Any]] = {  # (optimizer, train config, total steps)
    "constant": lambda opt, t, steps: None,
    "cosine": lambda opt, t, steps: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps),
    "onecycle": lambda opt, t, steps: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=t.lr, total_steps=steps),
}
