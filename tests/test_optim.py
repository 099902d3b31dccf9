"""runner/optim.py: each optimizer and schedule by name, built from the [train] config; the spec's grammar offers
exactly these names."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from runner.optim import OPTIMIZERS, SCHEDULES
from runner.spec.grammar import TRAIN_KEYS

TRAIN = SimpleNamespace(lr=0.05, momentum=0.8)  # the two fields of the [train] config a builder reads


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(3))]


@pytest.mark.parametrize("name, kind, momentum", [("sgd", torch.optim.SGD, ("momentum", 0.8)),
                                                  ("adam", torch.optim.Adam, ("betas", (0.8, 0.999))),
                                                  ("adamw", torch.optim.AdamW, ("betas", (0.8, 0.999)))])
def test_an_optimizer_takes_lr_momentum_and_weight_decay(name, kind, momentum):
    opt = OPTIMIZERS[name](_params(), TRAIN, 5e-4)
    group = opt.param_groups[0]
    assert type(opt) is kind
    assert (group["lr"], group[momentum[0]], group["weight_decay"]) == (0.05, momentum[1], 5e-4)


def test_a_schedule_spans_the_steps_it_is_given():
    opt = OPTIMIZERS["sgd"](_params(), TRAIN, 0.0)
    assert SCHEDULES["constant"](opt, TRAIN, 100) is None  # the lr stays as set
    assert SCHEDULES["cosine"](opt, TRAIN, 100).T_max == 100
    onecycle = SCHEDULES["onecycle"](OPTIMIZERS["sgd"](_params(), TRAIN, 0.0), TRAIN, 100)
    assert onecycle.total_steps == 100 and onecycle.optimizer.param_groups[0]["max_lr"] == 0.05


def test_the_grammar_offers_these_names_and_no_others():
    assert TRAIN_KEYS["optimizer"].choices == tuple(OPTIMIZERS)
    assert TRAIN_KEYS["schedule"].choices == tuple(SCHEDULES)
