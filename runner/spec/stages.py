"""A search's confirmation as specs: `<name>-select` (selection over seeds, never tested) and `<name>` (the
winner refit and tested). Spec to spec, read by the runner (runner.trials.confirm) and the report alike."""
from __future__ import annotations

import dataclasses
from typing import Any

from runner import record
from runner.spec.config import Spec

__all__ = ["selection_spec", "confirm_spec"]


def _runs(settings: list[dict[str, Any]]) -> tuple[tuple[tuple[str, Any], ...], ...]:
    return tuple(tuple(s.items()) for s in settings)


def selection_spec(spec: Spec, settings: list[dict[str, Any]]) -> Spec:
    """`<name>-select`: each candidate with every seed on the search's split, ranked by its metric, never tested."""
    study = dataclasses.replace(spec.study, name=record.select_study(spec.study.name), metric=spec.search.metric)
    return dataclasses.replace(spec, study=study, grid=(), runs=_runs(settings), tested=False)


def confirm_spec(spec: Spec, settings: list[dict[str, Any]]) -> Spec:
    """The grid study `<name>`: each setting with every seed, tested; refit: on train + validation (a study
    ranked by a validation metric then ranks by its test counterpart: there is no validation split left)."""
    if not spec.search.refit:
        return dataclasses.replace(spec, grid=(), runs=_runs(settings))
    study = spec.study
    if study.metric.startswith("val_"):
        study = dataclasses.replace(study, metric="test_" + study.metric.removeprefix("val_"))
    return dataclasses.replace(spec, study=study, data=dataclasses.replace(spec.data, val_fraction=0.0), grid=(),
                               runs=_runs(settings))
