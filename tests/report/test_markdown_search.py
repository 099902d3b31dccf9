"""runner/report/markdown_search.py: the search's section of the report and its part of summary.json: the budget
spent, the importances, and the top configurations as mean [95% t-interval] over seeds (or the selection)."""
from __future__ import annotations

import pytest

from runner.report.contents import Candidate, SearchSummary, Selection, TopConfig
from runner.report.markdown_search import search_json, search_markdown

COUNTS = {"complete": 5, "pruned": 2, "fail": 1, "running": 0, "interrupted": 1, "refused": 0}
TOP = (TopConfig("small lr=0.1", 2, (97.0, 98.0), (96.0, 98.0), 1234),)


def summary(**changes) -> SearchSummary:
    s = dict(study="tu-search", metric="val_acc", direction="maximize", budget=8, counts=COUNTS,
             history=((0, 90.0, 90.0), (1, 95.0, 95.0)), curves=(), importances={"lr": 0.71234, "batch_norm": 0.3},
             importance_note="Rough: few trials.", top=TOP, sampler="TPE", pruner="median")
    return SearchSummary(**{**s, **changes})


def test_the_section_counts_the_budget_spent_and_lists_the_importances():
    lines = search_markdown(summary())
    text = "\n".join(lines)
    assert lines[0] == "## The search"
    assert "Budget: 7 of 8 finished trials (5 complete, 2 pruned), 1 failed" in text  # pruned ones count
    assert "on the validation split's accuracy (val_acc)" in text and "1 interrupted" in text
    assert "| `lr` | 0.712 |" in lines and "| `batch_norm` | 0.300 |" in lines and "Rough: few trials." in lines


def test_the_top_configurations_are_mean_and_t_interval_over_seeds():
    lines = search_markdown(summary())
    assert "### The top configurations, confirmed on test" in lines
    row = next(x for x in lines if x.startswith("| `small lr=0.1`"))
    assert row == "| `small lr=0.1` | 1,234 | 2 | 97.50 [91.15, 103.85] | 97.00 [84.29, 109.71] |"


def test_a_selection_replaces_the_top_table_and_marks_the_winner():
    sel = Selection("tu-select", "Selected on validation.", (
        Candidate("small lr=0.1", 1234, 97.5, (97.0, 98.0), (96.0, 98.0), True),
        Candidate("small lr=0.01", None, None, (95.0,), (), False, reused=((0, "tu-search trial 3"),))),
        refit=True, train_images=(480, 600))
    text = "\n".join(search_markdown(summary(selection=sel)))
    assert "### The top configurations" not in text and "Selected on validation." in text
    assert "| 1. **`small lr=0.1`** (winner) | 1,234 | 97.50 |" in text
    assert "| 2. `small lr=0.01` | – | – | 95.00 | – |" in text
    assert "candidate 2's seed 0 is tu-search trial 3" in text
    assert "(480 training images) | 97.00 [84.29, 109.71] (600 training images, refit) |" in text


def test_summary_json_holds_the_same_figures():
    doc = search_json(summary())
    assert (doc["budget"], doc["best_value"], doc["importances"]) == (8, 95.0, {"lr": 0.7123, "batch_norm": 0.3})
    [top] = doc["top"]
    assert top["test_mean"] == 97.0 and top["val_mean_ci95"] == pytest.approx([97.5, 91.1469, 103.8531], abs=1e-4)
    assert doc["selection"] is None and search_json(summary(history=()))["best_value"] is None
