"""A TOML experiment spec: read, checked and expanded into points, one trial each.

- `grammar`: every section's keys, types, defaults and bounds (the registries).
- `check`: validation against those keys, with one-line errors naming the file and the key.
- `point`: one trial's configuration (`Point`, `ModelSpec`, `DataSpec`, `TrainConfig`): resolved, config hashes.
- `config`: the spec (`Spec`, `SearchSpec`, ...) and its expansion into points; `designs`: a fractional grid.
- `axes`: what a [grid], [[runs]] or [search.space] entry may vary.
- `study`: [study], its seeds a list or rounds.
- `parse`: `load_spec` / `parse_spec`, section by section; `search`: the [search] section.
- `tables`: the layer tables of a spec's models, and the forward check of each before any trial.
- `stages`: a search's confirmation as specs: `<name>-select` and `<name>` (the runner and the report read them).
"""
from __future__ import annotations

from runner.spec.config import Dimension, SearchSpec, Spec, is_layer_axis
from runner.spec.grammar import (ARCHS, AUGMENTS, AXES, DATA_KEYS, DATASETS, EXECUTION_KEYS, LATER_REGULARIZERS,
                                 METRICS, MODEL_KEYS, REGULARIZERS, SEARCH_KEYS, SECTIONS, STUDY_KEYS, TRAIN_KEYS)
from runner.spec.parse import load_spec, parse_spec
from runner.spec.point import DataSpec, ModelSpec, Point, TrainConfig, dataset_shape
from runner.spec.study import Rounds, StudySpec

__all__ = [
    "REGULARIZERS", "LATER_REGULARIZERS", "TRAIN_KEYS", "DATA_KEYS", "STUDY_KEYS", "MODEL_KEYS", "SEARCH_KEYS",
    "EXECUTION_KEYS", "SECTIONS",
    "AXES", "ARCHS", "AUGMENTS", "METRICS", "DATASETS", "Rounds", "StudySpec", "DataSpec", "TrainConfig", "ModelSpec", "Point",
    "Dimension", "SearchSpec", "Spec", "load_spec", "parse_spec", "dataset_shape", "is_layer_axis",
]
