"""runner/report/figures.py and runner/models/diagram.py: figures that read as a person would read them.

Every figure kind is built from small synthetic data (nothing trained, nothing stored) whose labels are as
long as real studies make them, then drawn at the report's DPI: no drawn text may leave the canvas, every
per-epoch axis has integer ticks, and a number on a dark cell of a confusion matrix is light.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.text import Text

from runner.models.counts import UNUSED, LayerRow, ParamTable
from runner.models.diagram import diagram_figure
from runner.plotting import style
from runner.report.contents import (CURVES, ClassView, Config, Curve, Effect, Figure, Gallery, Mistake,
                                    Mistakes, Report, SearchSummary)
from runner.report.figures import (confusion_figure, curves_figure, effects_figure, gallery_figure,
                                   history_figure, search_curves_figure)

TOLERANCE = 2.0  # pixels a glyph's box may pass the edge by (antialiasing, rounding)


# ---------------------------------------------------------------- drawing and measuring


@contextmanager
def drawn(build, *args) -> Iterator[tuple[Any, list[Text], Any]]:
    """(figure, the texts drawn, renderer) of `build(*args)`, drawn in the report's style as its PNG is."""
    texts: list[Text] = []
    original = Text.draw

    def record(self, renderer):  # tick labels outside the view stay visible but are not drawn: skip them
        texts.append(self)
        return original(self, renderer)

    with style(), pytest.MonkeyPatch.context() as m:
        fig = build(*args)
        canvas = FigureCanvasAgg(fig)
        m.setattr(Text, "draw", record)
        canvas.draw()
        m.undo()
        yield fig, [t for t in texts if t.get_visible() and t.get_text().strip()], canvas.get_renderer()


def outside(build, *args) -> list[tuple[str, float]]:
    """(text, pixels past the canvas' edge) of every drawn text that leaves the canvas."""
    with drawn(build, *args) as (fig, texts, renderer):
        canvas = fig.bbox
        out = []
        for t in texts:
            box = t.get_window_extent(renderer)
            past = max(canvas.x0 - box.x0, box.x1 - canvas.x1, canvas.y0 - box.y0, box.y1 - canvas.y1)
            if past > TOLERANCE:
                out.append((t.get_text(), round(float(past), 1)))
        return out


# ---------------------------------------------------------------- synthetic data


def curve(epochs: int, start: float, end: float) -> Curve:
    mean = tuple(np.linspace(start, end, epochs).round(3).tolist())
    return Curve(tuple(range(1, epochs + 1)), mean, tuple(m - 0.3 for m in mean), tuple(m + 0.3 for m in mean))


def config(label: str, epochs: int, i: int = 0) -> Config:
    curves = {name: curve(epochs, 0.6 - 0.1 * i, 0.1) if name.endswith("loss") else curve(epochs, 90.0, 98.0 + i)
              for name in CURVES}
    return Config(key=label, model=label.split(" ")[0], arch="lenet5", params={}, label=label, slug=label,
                  regularized=bool(i), param_count=61706, seeds=(0, 1, 2), final=(98.0,) * 3, final_acc=(98.0,) * 3,
                  best_acc=(98.1,) * 3, final_loss=(0.05,) * 3, final_val=(), gap=(1.0,) * 3, trial_ids=(1, 2, 3),
                  seconds_per_epoch=1.0, peak_memory_mb=None, curves=curves)


LONG_LABELS = ("lenet5_student_padding2 (batch_norm, dropout=0.5, weight_decay=0.0005, augment=affine, lr=0.05)",
               "mlp_student_wide (hidden=[512, 256, 128], dropout=0.2)", "lenet5 (plain)")


def effect(model: str, factor: str, within: str, delta: float, verdict: str) -> Effect:
    return Effect(model=model, factor=factor, from_=0.0, to=0.0005, n_pairs=3, delta_mean=delta,
                  ci95=(delta - 0.2, delta + 0.2), p_raw=0.01, p_value=0.03, verdict=verdict,
                  boot_ci95=(delta - 0.1, delta + 0.1), boot_p_raw=0.0001, boot_p=0.0004, within=within)


EFFECTS = [effect("lenet5_student_padding2", "weight_decay", "lr=0.05 epochs=16", 0.12, "improves"),
           effect("lenet5_student_padding2", "label_smoothing", "lr=0.05 epochs=16", -0.3, "hurts"),
           effect("mlp_student_wide", "dropout", "lr=0.01 epochs=16 batch_size=128", 0.0, "no detectable effect")]


def report(configs: list[Config], effects: list[Effect] = ()) -> Report:
    figures = [Figure("compare.png", "LeNet-5, the MLP and the best regularized LeNet-5", "curves",
                      tuple(c.key for c in configs))]
    return Report(study="s", description="", spec_path="s.toml", metric="test_acc", direction="maximize", axes=(),
                  data=[], train=[], provenance=[], seeds=(0, 1, 2), param_tables=[], configs=configs, known=None,
                  effects=list(effects), interactions=[], versus_best=[], excluded=[], figures=figures)


def curves(configs: list[Config], title: str = "") -> tuple[Report, Figure]:
    """The arguments of curves_figure: a report of these configurations and its figure of them all."""
    r = report(configs)
    return r, (replace(r.figures[0], title=title) if title else r.figures[0])


def search(epochs: int, trials: int = 6, study: str = "lenet5_student_padding2-search") -> SearchSummary:
    curves = tuple((n, "pruned" if n % 3 == 2 else "complete",
                    tuple(90.0 + n + e for e in range(epochs if n % 3 != 2 else max(1, epochs - 1))))
                   for n in range(trials))
    return SearchSummary(study=study, metric="val_acc", direction="maximize", budget=trials,
                         counts={"complete": 4, "pruned": 2},
                         history=tuple((n, 95.0 + n, 95.0 + n) for n in range(trials)),
                         curves=curves, importances={}, importance_note="", top=(), sampler="tpe", pruner="median")


FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def mistakes(names: tuple[str, ...], views: int = 3) -> Mistakes:
    k = len(names)
    confusion = np.full((k, k), 1) + np.diag(np.full(k, 900))
    confusion[3, 5] = 60  # the darkest cell: the colour scale's top
    confusion[0, 1] = 0
    roles = ("best", "LeNet-5, every regularizer off", "MLP, every regularizer off")
    vs = tuple(ClassView(label=LONG_LABELS[i % 3], role=roles[i % 3], seeds=3, confusion=confusion,
                         per_class=np.full(k, 98.0)) for i in range(views))
    shown = tuple(Mistake(index=i, true=i % k, predicted=(i + 1) % k, confidence=0.87, baseline_wrong=i % 2 == 0)
                  for i in range(11))
    images = np.zeros((len(shown), 28, 28), dtype=np.uint8)
    gallery = Gallery(label=LONG_LABELS[0], seed=0, wrong=11, total=1000, baseline=LONG_LABELS[2], baseline_too=6,
                      shown=shown, images=images)
    return Mistakes(names=names, views=vs, gallery=gallery, gallery_note="")


def table(long: bool) -> ParamTable:
    rows = [LayerRow("c1", "conv 5x5, pad 2, relu", (6, 28, 28), "(5*5*1+1)*6", 156),
            LayerRow("s2", "max pool 2x2", (6, 14, 14), "", 0),
            LayerRow("f6", "fc, relu", (84,), "(120+1)*84", 10164)]
    if long:
        rows += [LayerRow("features.block3.conv_transpose_upsample", "conv transpose 3x3, stride 2, leaky relu",
                          (256, 56, 56), "(3*3*512+1)*256 + batch norm 2*256", 1180160),
                 LayerRow("classifier.head.projection_to_logits_after_global_average_pooling",
                          "fc, no bias, log softmax", (10,), "512*10", 5120),
                 LayerRow("bn1, bn2, bn3, bn4, dropout_a, dropout_b", UNUSED, (), "", 452)]
    title = ("lenet5_student_padding2 (user module students/alice/lenet5_padding2.py, batch_norm, dropout)"
             if long else "lenet5 (lenet5)")
    return ParamTable(title=title, model="lenet5", rows=tuple(rows), total=sum(r.count for r in rows))


# ---------------------------------------------------------------- every figure kind, short and long labels


CASES = {
    "curves, 1 epoch": (curves_figure, lambda: curves([config("lenet5", 1)])),
    "curves, long labels": (curves_figure, lambda: curves([config(x, 3, i) for i, x in enumerate(LONG_LABELS)])),
    "curves, long title": (curves_figure, lambda: curves([config(LONG_LABELS[0], 3)],
                                                         LONG_LABELS[0] + " with label_smoothing=0.1")),
    "effects": (effects_figure, lambda: (report([], EFFECTS[:1]),)),
    "effects, long labels": (effects_figure, lambda: (report([], EFFECTS),)),
    "history": (history_figure, lambda: (search(3),)),
    "history, long study name": (history_figure, lambda: (search(3, 1, LONG_LABELS[0]),)),
    "search curves, 1 epoch": (search_curves_figure, lambda: (search(1),)),
    "confusion, digits": (confusion_figure, lambda: (mistakes(tuple("0123456789")),)),
    "confusion, fashion": (confusion_figure, lambda: (mistakes(FASHION),)),
    "gallery": (gallery_figure, lambda: (mistakes(FASHION).gallery, FASHION)),
    "diagram": (diagram_figure, lambda: (table(False), (1, 28, 28))),
    "diagram, long rows": (diagram_figure, lambda: (table(True), (1, 28, 28))),
}


@pytest.mark.parametrize("case", CASES)
def test_every_text_lies_inside_the_figure(case):
    build, args = CASES[case]
    assert outside(build, *args()) == []


@pytest.mark.parametrize("build, args", [(curves_figure, lambda: curves([config("lenet5", 1)])),
                                         (curves_figure, lambda: curves([config("lenet5", 3)])),
                                         (search_curves_figure, lambda: (search(1),)),
                                         (search_curves_figure, lambda: (search(4),)),
                                         (history_figure, lambda: (search(1, trials=1),)),
                                         (history_figure, lambda: (search(1, trials=3),))])
def test_epoch_and_trial_axes_have_integer_ticks(build, args):
    with drawn(build, *args()) as (fig, _, _renderer):
        for ax in fig.axes:  # every panel's x axis is the epoch, or the trial's number
            lo, hi = sorted(ax.get_xlim())
            shown = [t for t in ax.get_xticks() if lo - 1e-9 <= t <= hi + 1e-9]
            assert shown and all(float(t).is_integer() for t in shown), (ax.get_title(), shown)


def luminance(color) -> float:
    r, g, b = to_rgb(color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_numbers_on_dark_cells_are_light_and_on_light_cells_dark():
    with drawn(confusion_figure, mistakes(tuple("0123456789"), views=1)) as (fig, _, _renderer):
        ax = fig.axes[0]
        image = ax.get_images()[0]
        cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
        dark = cells[3, 5]  # the largest off-diagonal count: the scale's darkest red
        light = cells[1, 2]
        assert dark.get_text() == "60" and light.get_text() == "1"
        assert luminance(image.to_rgba(image.get_array()[3, 5])) < 0.4
        assert luminance(dark.get_color()) > 0.8
        assert luminance(light.get_color()) < 0.2
        assert (0, 1) not in cells  # no number on a cell of zero


def test_a_diagrams_texts_lie_inside_their_boxes():
    with drawn(diagram_figure, table(True), (1, 28, 28)) as (fig, _, renderer):
        ax = fig.axes[0]
        box = ax.patches[0].get_window_extent(renderer)  # every box spans the same width
        texts = [t for t in ax.texts if t.get_text()]  # the arrows are texts too, empty ones
        assert len(texts) == 2 * len(ax.patches) == 12
        for t in texts:
            extent = t.get_window_extent(renderer)
            assert box.x0 < extent.x0 and extent.x1 < box.x1, t.get_text()
