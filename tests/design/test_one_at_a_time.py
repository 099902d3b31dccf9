"""runner/design/one_at_a_time.py: the baseline, each change alone, crossed with the across axes; each compared
with the baseline at its own budget."""
from __future__ import annotations

from runner.design.one_at_a_time import budgets, comparisons, settings, within_text

GRID = (("model", ("lenet5",)), ("dropout", (0.0, 0.25)), ("batch_norm", (False, True)),
        ("augment", ("none", "affine", "elastic")))
MODEL_OF = lambda s: s.get("model", "lenet5")  # noqa: E731


def test_the_issue_s_example_plans_one_plus_one_plus_one_plus_two_settings():
    planned = settings(GRID, (), [], [])
    assert len(planned) == 5
    assert planned[0] == {"model": "lenet5", "dropout": 0.0, "batch_norm": False, "augment": "none"}
    assert {"model": "lenet5", "dropout": 0.0, "batch_norm": False, "augment": "elastic"} in planned
    assert not any(s["dropout"] and s["batch_norm"] for s in planned)  # never two changes at once


ACROSS = (("lr", (0.01, 0.05)), ("epochs", (8, 16)))


def test_across_crosses_every_setting():
    planned = settings(GRID, ACROSS, [], [])
    assert len(planned) == 5 * 4 and budgets(ACROSS)[1] == {"lr": 0.01, "epochs": 16}


def test_each_comparison_stays_within_its_budget():
    found = comparisons(GRID, ACROSS, [], [], [], MODEL_OF, {"lr", "epochs"})
    assert len(found) == 4 * 4
    for c in found:
        assert {k: c.setting[k] for k in ("lr", "epochs")} == {k: c.baseline[k] for k in ("lr", "epochs")} == c.within
        assert sum(c.setting[a] != c.baseline[a] for a in ("dropout", "batch_norm", "augment")) == 1
    assert within_text(found[0].within) == "lr=0.01 epochs=8"


def test_a_run_is_crossed_with_the_across_axes_it_leaves_out_and_compared_at_its_own_budget():
    across = (("lr", (0.01, 0.05)),)
    runs = [{"model": "lenet5", "dropout": 0.25, "batch_norm": True}, {"model": "mlp"},
            {"model": "lenet5", "lr": 0.05, "epochs": 4}, {"model": "lenet5", "lr": 0.01, "augment": "affine"}]
    roles = ["", "", "tuned", ""]
    planned = settings(GRID, across, runs, roles)
    assert sum(s.get("model") == "mlp" for s in planned) == 2  # crossed with both learning rates
    found = comparisons(GRID, across, runs, roles, ["stack", "mlp", "tuned", "late"], MODEL_OF, {"lr", "epochs"})
    named = [c for c in found if c.off == "baseline"]
    assert [(c.factor, c.within) for c in named] == [("stack", {"lr": 0.01}), ("stack", {"lr": 0.05}),
                                                      ("late", {"lr": 0.01})]  # not the mlp, not the tuned one
    assert named[-1].baseline["lr"] == 0.01 and named[-1].baseline["augment"] == "none"


def test_a_baseline_run_is_what_every_change_is_added_to():
    runs = [{"model": "lenet5", "batch_norm": True}, {"model": "lenet5", "batch_norm": True, "dropout": 0.5}]
    planned = settings((("augment", ("none", "affine")),), (), runs, ["baseline", ""])
    assert planned == [{"augment": "none", "model": "lenet5", "batch_norm": True},
                       {"augment": "affine", "model": "lenet5", "batch_norm": True},
                       {"model": "lenet5", "batch_norm": True, "dropout": 0.5}]
    found = comparisons((("augment", ("none", "affine")),), (), runs, ["baseline", ""], ["bn", "dropout"], MODEL_OF,
                        set())
    assert [(c.factor, c.baseline) for c in found] == [("augment", planned[0]), ("dropout", planned[0])]
