"""runner/spec/study.py: [study] as parsed: seeds as a list or as rounds (said back as the spec writes them), a
locked test set, and the direction each metric is optimized in."""
from __future__ import annotations

import dataclasses

import pytest

from runner.spec.study import Rounds, StudySpec

from tests.helpers import load_spec_text

ROUNDS = """
[study]
name = "r"
seeds = { first = 3, max = 10, until = "effects" }
metric = "val_acc"
test = "locked"
[data]
val_fraction = 0.1
[models.m]
arch = "mlp"
[grid]
model = ["m"]
dropout = [0.0, 0.5]
"""


def test_rounds_start_with_the_first_seeds_and_are_said_as_the_spec_writes_them():
    study = load_spec_text(ROUNDS).study
    assert study.rounds == Rounds(first=3, max=10, until="effects")
    assert study.seeds == (0, 1, 2)
    assert study.rounds.text == '{ first = 3, max = 10, until = "effects" }'
    assert study.rounds.text in ROUNDS


def test_a_locked_study_is_locked_and_an_open_one_is_not():
    locked = load_spec_text(ROUNDS).study
    assert locked.test == "locked" and locked.locked
    assert not dataclasses.replace(locked, test="open").locked


@pytest.mark.parametrize("metric, direction", [("test_acc", "maximize"), ("val_acc", "maximize"),
                                               ("test_loss", "minimize"), ("val_loss", "minimize")])
def test_an_accuracy_is_maximized_and_a_loss_minimized(metric, direction):
    assert StudySpec(name="s", description="", seeds=(0,), metric=metric).direction == direction


def test_racing_rounds_do_not_change_the_studys_identity():
    study = StudySpec(name="s", description="", seeds=(0, 1), metric="test_acc")
    assert dataclasses.replace(study, race={2: frozenset({"a"})}) == study  # race is no part of its equality
