"""Axes: what a [grid] list, a [[runs]] value or a [search.space] entry may vary, checked one way."""
from __future__ import annotations

from typing import Any

from runner.keys import Key
from runner.models.layers import AXIS_FIELDS, LAYER_KEYS, Layer
from runner.spec.check import Checker, show_value
from runner.spec.config import is_layer_axis, layer_index, layer_name
from runner.spec.point import ModelSpec
from runner.spec.grammar import AXES, REGULARIZERS, TRAIN_KEYS
from runner.text import did_you_mean

__all__ = ["layer_axis", "axis_value", "check_axis_name", "axis_key"]


def layer_axis(c: Checker, where: str, axis: str, models: dict[str, ModelSpec]) -> tuple[ModelSpec, Layer]:
    """The model and layer a "MODEL.LAYER.FIELD" axis names, or a one-line error naming what exists."""
    model_name, name, key = axis.split(".")
    if model_name not in models:
        raise c.fail(where, f"unknown model \"{model_name}\" in {axis}: defined are {', '.join(models)}"
                            f"{did_you_mean(model_name, list(models))}")
    model = models[model_name]
    if not model.layers:
        raise c.fail(where, f"{model_name} is a user's module ({model.target}): it has no declared layers to vary; "
                            "vary its args in separate models")
    names = [layer_name(layer, i) for i, layer in enumerate(model.layers)]
    if name not in names:
        raise c.fail(where, f"{model_name} has no layer \"{name}\": its layers are {', '.join(names)}"
                            f"{did_you_mean(name, names)}")
    layer = model.layers[names.index(name)]
    if key not in AXIS_FIELDS[layer.kind]:
        raise c.unknown(where, key, list(AXIS_FIELDS[layer.kind]), f"{layer.kind} field")
    return model, layer


def axis_value(c: Checker, where: str, axis: str, v: Any, models: dict[str, ModelSpec]) -> Any:
    """An axis value checked as its key checks it (a model's name, a layer field, a regularizer, a train key)."""
    if axis == "model":
        if not isinstance(v, str) or v not in models:
            raise c.fail(where, f"unknown model {show_value(v)}: defined are {', '.join(models)}"
                                f"{did_you_mean(v, list(models))}")
        return v
    if is_layer_axis(axis):
        _, layer = layer_axis(c, where, axis, models)
        return c.value(where, LAYER_KEYS[layer.kind][axis.split(".")[2]], v)
    key = REGULARIZERS.get(axis) or TRAIN_KEYS[axis]
    return c.value(where, key, v)


def check_axis_name(c: Checker, where: str, axis: str, models: dict[str, ModelSpec]) -> None:
    """An axis name is one of AXES or a "MODEL.LAYER.FIELD" that exists; else the nearest is suggested."""
    if is_layer_axis(axis):
        layer_axis(c, f"{where}.{axis}" if where == "[grid]" else where, axis, models)
    elif axis not in AXES:
        raise c.unknown(where, axis, [*AXES, "MODEL.LAYER.FIELD"])


def axis_key(axis: str, models: dict[str, ModelSpec]) -> Key | None:
    """The Key an axis's values obey (None for model)."""
    if axis == "model":
        return None
    if is_layer_axis(axis):
        model_name, name, field_name = axis.split(".")
        model = models[model_name]
        layer = model.layers[layer_index(model, name)]
        return LAYER_KEYS[layer.kind][field_name]
    return REGULARIZERS.get(axis) or TRAIN_KEYS[axis]
