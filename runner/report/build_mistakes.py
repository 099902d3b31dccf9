"""Where the models are wrong, from every trial's stored predictions: confusion matrices, accuracy per
class, and a gallery of the test images the best configuration gets wrong.

The gallery's images come from the stored dataset reference (the spec's [data], loaded as training
loaded it); the report never calls a user's [data].target, so for user data it leaves the gallery
out and says why.
"""
from __future__ import annotations

import numpy as np

from runner.data import class_names, load_data
from runner.errors import RunnerError
from runner.report.contents import ClassView, Config, Gallery, Mistake, Mistakes
from runner.spec import Spec
from runner.store import Predictions

__all__ = ["build_mistakes", "GALLERY_SIZE"]

GALLERY_SIZE = 24  # mistakes shown, the most confident first


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
                   classes: int, baseline: Config | None = None) -> Mistakes | None:
    """The views of the configurations in `roles` (best first) and the best's gallery beside `baseline` (the
    report's choice, runner.report.roles.gallery_baseline); None without predictions."""
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
