"""runner/report/markdown_plan.py: a study against a baseline in words: whether its verdicts are confirmatory, each
setting against the baseline, how each configuration fits, and what an exploration chooses."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from runner.report.contents import Choice, Fit, Report
from runner.report.markdown_plan import baseline_section, choice_section, fit_section, plan_lines

EMPTY = Report(study="s", description="", spec_path="specs/s.toml", metric="test_acc", direction="maximize", axes=(),
               data=[], train=[], provenance=[], seeds=(0, 1, 2), param_tables=[], configs=[], known=None, effects=[],
               interactions=[], versus_best=[], excluded=[], figures=[])


def test_the_plan_line_says_confirmatory_or_exploratory_and_why():
    assert plan_lines(EMPTY) == []  # no plan stored
    stored = SimpleNamespace(confirmatory=True, why="confirmatory: its plan was stored before its first trial")
    assert plan_lines(dataclasses.replace(EMPTY, plan=stored)) == [
        "**Confirmatory.** Its plan was stored before its first trial.", ""]
    changed = SimpleNamespace(confirmatory=False, why="exploratory: the plan changed after test results")
    [line, _] = plan_lines(dataclasses.replace(EMPTY, plan=changed, held_out="val"))
    assert line == ("**Exploratory.** The plan changed after test results. Every verdict below is on the validation "
                    "split; no test image was loaded.")


def test_a_spec_with_nothing_beside_the_baseline_compares_nothing():
    assert baseline_section(EMPTY) == ["## Each against the baseline", "",
                                       "Nothing is compared: the spec gives no setting beside the baseline.", ""]


def test_the_fit_section_tables_each_configuration_and_names_those_that_over_or_underfit():
    assert fit_section(EMPTY) == []
    fits = [Fit("lenet5", 99.9, 98.9, 1.0, 4, 20, 0.3, "overfits"),
            Fit("mlp", 95.0, 96.0, -1.0, 20, 20, 0.0, "underfits")]
    lines = fit_section(dataclasses.replace(EMPTY, fits=fits))
    assert lines[0] == "## Overfitting and underfitting"
    rows = [x.replace(" ", "") for x in "\n".join(lines).splitlines()]
    assert "|`lenet5`|99.90|98.90|+1.00|4|20|+30%|overfits|" in rows
    assert "|`mlp`|95.00|96.00|-1.00|20|20|+0%|underfits|" in rows
    assert "- Overfit: `lenet5`." in lines and "- Underfit: `mlp`." in lines
    neither = fit_section(dataclasses.replace(EMPTY, fits=[dataclasses.replace(fits[0], verdict="neither")]))
    assert "- None overfits or underfits by this rule." in neither


def test_the_choice_names_the_budget_the_kept_settings_and_the_stack():
    assert choice_section(EMPTY) == []
    choice = Choice(rule=("the budget where the settings do best",),
                    budgets=(("epochs=4", 98.0, 98.5, 2), ("epochs=16", 99.0, 99.2, 2)),
                    budget={"epochs": 16}, tuned={"epochs": 16}, models=(("mlp", {"epochs": 4}, 97.1),),
                    settings=(("dropout=0.3", 99.3, "epochs=16"),), kept=(("dropout", 0.3, 0.2),), stack=())
    text = "\n".join(choice_section(dataclasses.replace(EMPTY, choice=choice)))
    assert "- The budget: **epochs=16**; the tuned baseline's: **epochs=16**." in text
    assert "- `mlp` does best at epochs=4 (97.10)." in text
    assert "- Kept (difference from the baseline at the chosen budget): dropout = 0.3 (" in text
    assert "- The stack: none (fewer than two kept)." in text
    assert "`runner confirmation specs/s.toml` writes the confirmatory spec" in text
