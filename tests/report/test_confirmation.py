"""runner/report/confirmation.py: the confirmatory spec an exploration's choice writes: named for the exploration,
tested in rounds at the chosen budget, each regularizer alone against the baseline, the tuned baseline, the stack and
each other model as [[runs]]; a spec that parses. (Written from stored results and run: tests/report/test_choose.py.)"""
from __future__ import annotations

import tomllib

from runner.report.confirmation import ROUNDS, confirmation_name, confirmation_spec
from runner.report.contents import Choice
from runner.spec import load_spec

from tests.helpers import explore_spec

CHOICE = Choice(rule=("the budget where the settings do best",), budgets=(), budget={"epochs": 2}, tuned={"epochs": 1},
                models=(("mlp", {"epochs": 1}, 90.0),), settings=(),
                kept=(("batch_norm", True, 0.4), ("augment", "affine", 0.2)),
                stack=(("batch_norm", True), ("augment", "affine")))


def test_the_confirmation_is_named_for_its_exploration():
    assert confirmation_name("regularization-explore") == "regularization"
    assert confirmation_name("study") == "study-confirm"


def test_the_spec_tests_each_setting_at_the_chosen_budget_beside_the_runs_it_chose(tmp_path):
    spec = load_spec(explore_spec(tmp_path, "reg-explore"))
    text = confirmation_spec(spec, CHOICE, "runner confirmation reg-explore.toml")
    assert text.startswith("#:schema ./runner.schema.json\n# Written by `runner confirmation reg-explore.toml`")
    raw = tomllib.loads(text)
    assert raw["study"]["name"] == "reg" and raw["study"]["seeds"] == ROUNDS and raw["study"]["metric"] == "test_acc"
    assert "test" not in raw["study"] and "val_fraction" not in raw["data"]  # the test set open, every image trained
    assert raw["train"]["epochs"] == 2 and raw["grid"]["design"] == "one-at-a-time"
    assert (raw["grid"]["batch_norm"], raw["grid"]["augment"]) == ([False, True], ["none", "affine"])
    assert raw["runs"] == [{"model": "lenet5", "epochs": 1, "baseline": "tuned"},
                           {"model": "lenet5", "batch_norm": True, "augment": "affine", "label": "stack"},
                           {"model": "mlp", "epochs": 1}]
    path = tmp_path / "reg.toml"
    path.write_text(text)
    confirm = load_spec(path)
    assert confirm.tested and not confirm.study.locked and confirm.study.rounds.first == ROUNDS["first"]


def test_with_the_baseline_best_at_the_chosen_budget_there_is_no_tuned_run(tmp_path):
    spec = load_spec(explore_spec(tmp_path))
    choice = Choice(**{**CHOICE.__dict__, "tuned": {"epochs": 2}, "stack": (("batch_norm", True),)})
    raw = tomllib.loads(confirmation_spec(spec, choice, "runner confirmation explore.toml", name="mine",
                                          rounds={"first": 2, "max": 3, "until": "effects"}))
    assert raw["study"]["name"] == "mine" and raw["study"]["seeds"]["first"] == 2
    assert raw["runs"] == [{"model": "mlp", "epochs": 1}]  # no tuned baseline, and a stack of one is no stack
