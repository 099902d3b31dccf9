"""Synthetic trials with per-image predictions, written straight into storage (nothing trained): each trial's
right-or-wrong on every test image is given, its accuracy and stored predictions follow from it."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
from optuna.trial import TrialState

from runner.spec import Point, Spec, load_spec
from runner.store import Predictions, Store

from tests.report.synthetic import add_trial


def add_predicted_trial(store: Store, study, point: Point, correct: np.ndarray, labels: np.ndarray,
                        metric: str = "test_acc") -> None:
    """A complete trial whose test predictions get `correct` (N,) bool right, and its value the metric they give."""
    accuracy = 100.0 * float(correct.mean())
    value = accuracy if metric == "test_acc" else 0.05 + (100.0 - accuracy) / 100  # a loss that falls as it learns
    number = add_trial(store, study, point, TrialState.COMPLETE, value)
    trial_id = store.optuna.get_trial_id_from_study_id_trial_number(study._study_id, number)
    predicted = np.where(correct, labels, (labels + 1) % 10).astype(np.int16)
    store.add_predictions(study.study_name, trial_id, "test", Predictions(predicted, labels.astype(np.int16),
                                                                          np.full(len(labels), 0.9, np.float16)))


def write_study(path: Path, spec_text: str, correct: Callable[[Point], np.ndarray], images: int,
                metric: str = "test_acc") -> tuple[Spec, str]:
    """(spec, storage URL) of the spec written at `path` and a database beside it, where every point's trial is
    complete with `correct(point)` right (N,) on the `images` test images."""
    path.write_text(textwrap.dedent(spec_text))
    spec = load_spec(path)
    url = f"sqlite:///{path.parent / 'db.sqlite'}"
    store = Store(url)
    study = store.open_study(spec.study.name, spec.study.direction)
    labels = np.random.default_rng(0).integers(0, 10, images)
    for point in spec.points():
        add_predicted_trial(store, study, point, correct(point), labels, metric)
    store.dispose()
    return spec, url


# ---------------------------------------------------------------- a study in rounds (tests/results/test_looks.py,
# tests/report/test_markdown_rounds.py)

IMAGES = 2000
ROUNDS_SPEC = """
[study]
name = "r"
seeds = {{ first = 3, max = 10, until = "{until}" }}
[data]
test_limit = 2000
[models.lenet5]
arch = "lenet5"
[grid]
batch_norm = [false, true]
augment = ["none", "affine"]
"""


def correct_for(shift: int, worse: int = 0):
    """(IMAGES,) right or wrong per image: batch norm moves `shift` images, affine without batch norm loses
    `worse`, and 30 images flip in each trial."""
    def correct(point: Point) -> np.ndarray:
        bn, affine = bool(point.reg("batch_norm")), point.reg("augment") == "affine"
        rng = np.random.default_rng([point.seed, int(bn), int(affine)])
        out = np.zeros(IMAGES, bool)
        out[:1800] = True
        if bn:
            out[1800:1800 + shift] = True
        if affine and not bn:
            out[:worse] = False
        flip = rng.choice(IMAGES, 30, replace=False)
        out[flip] = ~out[flip]
        return out
    return correct
