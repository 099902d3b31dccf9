"""runner/report/markdown_mistakes.py: the section on where the models are wrong: a note when no trial stored its
predictions, else the accuracy per class of each view and the gallery's sentence."""
from __future__ import annotations

import numpy as np

from runner.report.contents import ClassView, Gallery, Mistakes
from runner.report.markdown_mistakes import mistakes_markdown

VIEWS = (ClassView("lenet5 batch_norm=true", "best", 3, np.zeros((2, 2)), np.array([99.5, 98.25])),
         ClassView("lenet5", "LeNet-5, every regularizer off", 3, np.zeros((2, 2)), np.array([99.0, 97.0])))


def test_without_predictions_the_section_is_its_note():
    assert mistakes_markdown(None, "No trial of this study stored its predictions.") == [
        "## Where the models are wrong", "", "No trial of this study stored its predictions.", ""]


def test_the_accuracy_per_class_has_a_column_for_each_view():
    lines = mistakes_markdown(Mistakes(("0", "1"), VIEWS, None, "No gallery: one seed."), "")
    assert "![Confusion matrices](confusion.png)" in lines
    assert ("| class | best: `lenet5 batch_norm=true` | LeNet-5, every regularizer off: `lenet5` |" in lines
            and "|---|---:|---:|" in lines)
    assert "| 0 | 99.50 | 99.00 |" in lines and "| 1 | 98.25 | 97.00 |" in lines
    assert lines[-2:] == ["No gallery: one seed.", ""]
    assert not any(x.startswith("### ") for x in lines)


def test_the_gallery_says_how_many_the_best_gets_wrong_and_the_baseline_too():
    gallery = Gallery("lenet5 batch_norm=true", 0, 1234, 10_000, "lenet5", 1001, shown=(), images=np.zeros((0, 28, 28)))
    lines = mistakes_markdown(Mistakes(("0", "1"), VIEWS, gallery, ""), "")
    assert "### The test images the best configuration gets wrong" in lines
    assert ("`lenet5 batch_norm=true`, seed 0, gets 1,234 of the 10,000 test images wrong; the baseline `lenet5` "
            "(same seed) also gets 1,001 of them wrong. The 0 it was most sure of, most confident first:") in lines
    assert "![The best configuration's mistakes](mistakes.png)" in lines
    alone = mistakes_markdown(Mistakes(("0", "1"), VIEWS, Gallery("m", 1, 5, 100, None, None, (), None), ""), "")
    assert "`m`, seed 1, gets 5 of the 100 test images wrong. The 0 it was most sure of, most confident first:" in alone
    assert "![The best configuration's mistakes](mistakes.png)" not in alone  # no images, no figure
