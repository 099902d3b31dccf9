"""What each model returns, as its stored layer table shows it, and what that means for its results: a forward
that ends in softmax trains on probabilities, which CrossEntropyLoss takes for logits; one that ends in
log_softmax is harmless. The notes sit in the report's Setup and beside the model's layer table and curves.

Read from the layer tables the trials stored (runner.models.counts.table_output_kind), so no user code runs here.
"""
from __future__ import annotations

import math

import numpy as np

from runner.models.counts import LayerRow, table_output_kind
from runner.models.user import LOGITS, PROBABILITIES
from runner.report.contents import Config, OutputNote

__all__ = ["output_notes", "output_paragraph", "output_line", "probability_floor"]


def output_notes(configs: list[Config], tables: dict[str, list[LayerRow]], classes: int) -> list[OutputNote]:
    """One note per model whose layer table (`tables`: model -> rows) ends in softmax or log_softmax, in the order
    of its best configuration (`configs` best first)."""
    out = []
    for model in dict.fromkeys(c.model for c in configs):
        kind, row = table_output_kind(tables.get(model, []))
        if kind == LOGITS or row is None:
            continue
        best = next(c for c in configs if c.model == model)
        held = best.final_acc or best.final_val
        out.append(OutputNote(model, kind, row.name, classes, best.label, float(np.mean(held)) if held else None,
                              len(held)))
    return out


def probability_floor(classes: int) -> float:
    """The lowest cross-entropy a model can reach when its outputs are probabilities, taken for logits: every
    output in [0, 1], at best 1 for the true class and 0 for the others: log(e + classes - 1) - 1."""
    return math.log(math.e + classes - 1) - 1


def output_paragraph(n: OutputNote, held: str = "test") -> str:
    """The Setup's note: what the model returns, what it does to training, and the fix."""
    if n.kind != PROBABILITIES:
        return (f"`{n.model}` returns log-probabilities: its forward ends in log_softmax (`{n.layer}` in its layer "
                "table). CrossEntropyLoss applies log_softmax itself, and log_softmax gives log-probabilities back "
                "unchanged, so it trains as it would on logits and its accuracy does not suffer. Logits (the last "
                "layer's output as it is) are what the loss expects; the stored predictions, the gallery and "
                "`runner predict` read these outputs as log-probabilities.")
    split = "test" if held == "test" else "validation"
    seeds = f" (mean over {n.seeds} seeds)" if n.seeds > 1 else ""
    reached = (f"; that is why `{n.best}` reaches only {n.accuracy:.2f}% final {split} accuracy{seeds}"
               if n.accuracy is not None else "")
    return (f"`{n.model}` returns probabilities: its forward ends in softmax (`{n.layer}` in its layer table). "
            "CrossEntropyLoss expects logits and applies log_softmax itself, so it trains on a softmax of "
            f"probabilities: with every output between 0 and 1, its loss cannot fall below "
            f"{probability_floor(n.classes):.2f} ({math.log(n.classes):.2f} is a uniform guess's, {n.classes} "
            "classes), and the gradient through its softmax vanishes as the softmax grows confident, so training "
            f"barely learns{reached}. To fix it, return the last layer's output as it is (logits), and let the loss "
            "apply the softmax. The stored predictions, the gallery and `runner predict` read its outputs as the "
            "probabilities they are, never softmaxed twice.")


def output_line(n: OutputNote) -> str:
    """The note beside the model's layer table and curves, in one line, pointing at the Setup's."""
    if n.kind != PROBABILITIES:
        return (f"> Note: `{n.model}` returns log-probabilities (its forward ends in log_softmax, `{n.layer}`): "
                "harmless, as CrossEntropyLoss's own log_softmax gives them back ([Training](#training)).")
    return (f"> Note: `{n.model}` returns probabilities (its forward ends in softmax, `{n.layer}`), which "
            "CrossEntropyLoss takes for logits: training barely learns. Return the last layer's output as it is "
            "([Training](#training)).")
