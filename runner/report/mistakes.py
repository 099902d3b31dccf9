"""Where the models are wrong, from every trial's stored predictions: confusion matrices, accuracy per
class, and a gallery of the test images the best configuration gets wrong.

The gallery's images come from the stored dataset reference (the spec's [data], loaded as training
loaded it); the report never calls a user's [data].target, so for user data it leaves the gallery
out and says why.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from runner.data import class_names, load_data
from runner.errors import RunnerError
from runner.plotting import png, style
from runner.report.data import Config
from runner.spec import Spec
from runner.store import Predictions

__all__ = ["ClassView", "Mistake", "Gallery", "Mistakes", "build_mistakes", "confusion_png", "gallery_png",
           "mistakes_markdown", "GALLERY_SIZE"]

GALLERY_SIZE = 24  # mistakes shown, the most confident first


@dataclass(frozen=True)
class ClassView:
    """One configuration's predictions, class by class, summed over its seeds."""

    label: str
    role: str  # "best", "LeNet-5, every regularizer off", "MLP, every regularizer off"
    seeds: int
    confusion: np.ndarray  # (K, K) counts: row = true class, column = predicted, summed over seeds
    per_class: np.ndarray  # (K,) % accuracy of each class, mean over seeds


@dataclass(frozen=True)
class Mistake:
    index: int  # the image's position in the test split
    true: int
    predicted: int
    confidence: float  # the probability the model gave its (wrong) class
    baseline_wrong: bool | None  # whether the baseline (same seed) also got it wrong; None without one


@dataclass(frozen=True)
class Gallery:
    label: str  # the best configuration
    seed: int
    wrong: int  # test images it gets wrong
    total: int  # test images
    baseline: str | None  # the configuration it is compared with
    baseline_too: int | None  # of the `wrong`, how many the baseline also gets wrong
    shown: tuple[Mistake, ...]
    images: np.ndarray | None  # (len(shown), H, W) or (len(shown), C, H, W) uint8


@dataclass(frozen=True)
class Mistakes:
    names: tuple[str, ...]  # the classes' names
    views: tuple[ClassView, ...]
    gallery: Gallery | None
    gallery_note: str  # why there is no gallery, if there is none


def _view(config: Config, role: str, stored: dict[int, Predictions], k: int) -> ClassView | None:
    preds = [stored[i] for i in config.trial_ids if i in stored]
    if not preds:
        return None
    confusion = np.zeros((k, k), dtype=np.int64)
    per_class = []
    for p in preds:
        np.add.at(confusion, (p.labels.astype(np.int64), p.predicted.astype(np.int64)), 1)
        counts = np.bincount(p.labels, minlength=k)
        right = np.bincount(p.labels[p.correct], minlength=k)
        per_class.append(100.0 * right / np.maximum(counts, 1))
    return ClassView(config.label, role, len(preds), confusion, np.mean(per_class, axis=0))


def build_mistakes(spec: Spec, roles: list[tuple[str, Config]], stored: dict[int, Predictions], dataset: str,
                   classes: int) -> Mistakes | None:
    """The views of the configurations in `roles` (best first) and the best's gallery; None without predictions."""
    views, seen = [], set()
    for role, config in roles:
        if config.key in seen:
            continue
        seen.add(config.key)
        view = _view(config, role, stored, classes)
        if view is not None:
            views.append(view)
    if not views:
        return None
    best = roles[0][1]
    baseline = next((c for role, c in roles[1:] if c.key != best.key), None)
    gallery, note = _gallery(spec, best, baseline, stored)
    return Mistakes(class_names(dataset, classes), tuple(views), gallery, note)


def _gallery(spec: Spec, best: Config, baseline: Config | None,
             stored: dict[int, Predictions]) -> tuple[Gallery | None, str]:
    trials = [(s, i) for s, i in sorted(zip(best.seeds, best.trial_ids)) if i in stored]
    if not trials:
        return None, "The best configuration's trials stored no predictions."
    seed, trial_id = trials[0]
    p = stored[trial_id]
    other = None
    if baseline is not None:
        ids = dict(zip(baseline.seeds, baseline.trial_ids))
        other = stored.get(ids.get(seed, -1))
    wrong = np.flatnonzero(~p.correct)
    order = wrong[np.argsort(-p.confidence[wrong].astype(np.float64), kind="stable")]  # most confident first
    shown = tuple(Mistake(int(i), int(p.labels[i]), int(p.predicted[i]), float(p.confidence[i]),
                          None if other is None else bool(not other.correct[i])) for i in order[:GALLERY_SIZE])
    too = None if other is None else int((~other.correct[wrong]).sum())
    images, note = None, ""
    if spec.data.target:
        note = ("The gallery is left out: the data is the user's own ([data].target), and the report never "
                "calls user code to read the images.")
    else:
        try:
            test = load_data(**{**spec.data.load_args(), "train_limit": 1, "val_fraction": 0.0}).test
            images = test.images[[m.index for m in shown]].numpy() if shown else test.images[:0].numpy()
        except RunnerError as e:
            note = f"The gallery is left out: the test images could not be read ({e})."
    return Gallery(best.label, seed, len(wrong), len(p.predicted), baseline.label if baseline else None, too,
                   shown, images), note


def confusion_png(m: Mistakes) -> bytes:
    """One confusion matrix per view, rows normalized to the true class (%), side by side."""
    from matplotlib.figure import Figure as MplFigure

    k = len(m.names)
    with style():
        fig = MplFigure(figsize=(4.6 * len(m.views), 5.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(m.views)))
        for ax, v in zip(axes, m.views):
            rows = v.confusion / np.maximum(v.confusion.sum(1, keepdims=True), 1) * 100
            ax.imshow(np.where(np.eye(k, dtype=bool), np.nan, rows), cmap="Reds", vmin=0,
                      vmax=max(1.0, float(np.nanmax(np.where(np.eye(k, dtype=bool), 0, rows)))))
            if k <= 12:
                for t in range(k):
                    for q in range(k):
                        if v.confusion[t, q] and t != q:
                            ax.text(q, t, str(v.confusion[t, q]), ha="center", va="center", fontsize=7)
                ticks = list(range(k))
                ax.set_xticks(ticks, m.names, rotation=90 if max(map(len, m.names)) > 2 else 0, fontsize="small")
                ax.set_yticks(ticks, m.names, fontsize="small")
            ax.set_xlabel("predicted class")
            ax.set_ylabel("true class")
            label = "\n".join(textwrap.wrap(f"{v.label}, {v.seeds} seed{'s' if v.seeds != 1 else ''}", 55))
            ax.set_title(f"{v.role}\n{label}", fontsize="small")
        return png(fig)


def gallery_png(g: Gallery, names: tuple[str, ...]) -> bytes:
    """The shown mistakes as a grid of images, each titled true -> predicted (confidence)."""
    from matplotlib.figure import Figure as MplFigure

    cols = 8
    rows = max(1, -(-len(g.shown) // cols))
    with style():
        fig = MplFigure(figsize=(cols * 1.25, rows * 1.55 + 0.6), layout="constrained")
        axes = np.atleast_2d(fig.subplots(rows, cols))
        for ax in axes.flat:
            ax.axis("off")
        for ax, mistake, image in zip(axes.flat, g.shown, g.images):
            ax.imshow(image if image.ndim == 2 else image[0], cmap="gray", vmin=0, vmax=255)
            also = "" if mistake.baseline_wrong is None else (" *" if mistake.baseline_wrong else "")
            ax.set_title(f"{names[mistake.true]} → {names[mistake.predicted]}{also}\n{mistake.confidence:.2f}",
                         fontsize=8)
        title = "\n".join(textwrap.wrap(f"{g.label}, seed {g.seed}", 110))  # a long label: on lines of its own
        fig.suptitle(title + "\ntrue → predicted, the model's probability"
                     + ("; * the baseline gets it wrong too" if g.baseline else ""), fontsize="small")
        return png(fig)


def mistakes_markdown(m: Mistakes | None, note_if_none: str) -> list[str]:
    """The report's section on where the models are wrong."""
    out = ["## Where the models are wrong", ""]
    if m is None:
        return out + [note_if_none, ""]
    out += ["From every trial's predicted class for every test image, counted over the seeds of each "
            "configuration. The confusion matrices count the mistakes by true class (rows) and predicted class "
            "(columns), summed over the seeds; the diagonal (the images it gets right) is left white.", "",
            "![Confusion matrices](confusion.png)", ""]
    names = ["class", *(f"{v.role}: `{v.label}`" for v in m.views)]
    rows = [[m.names[c], *(f"{v.per_class[c]:.2f}" for v in m.views)] for c in range(len(m.names))]
    out += ["Accuracy per class (%), mean over seeds:", "",
            "| " + " | ".join(names) + " |", "|---|" + "---:|" * len(m.views)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += [""]
    g = m.gallery
    if g is not None:
        also = ("" if g.baseline_too is None else
                f"; the baseline `{g.baseline}` (same seed) also gets {g.baseline_too:,} of them wrong")
        out += ["### The test images the best configuration gets wrong", "",
                f"`{g.label}`, seed {g.seed}, gets {g.wrong:,} of the {g.total:,} test images wrong{also}. "
                f"The {len(g.shown)} it was most sure of, most confident first:", ""]
        if g.images is not None:
            out += ["![The best configuration's mistakes](mistakes.png)", ""]
    if m.gallery_note:
        out += [m.gallery_note, ""]
    return out
