"""The [search] section of `runner tune`: the budget, sampler, pruner and the space of each axis."""
from __future__ import annotations

from typing import Any

from runner.keys import Key
from runner.spec.axes import axis_key, axis_value, check_axis_name
from runner.spec.check import Checker, show_value
from runner.spec.config import Dimension, SearchSpec
from runner.spec.point import DataSpec, ModelSpec
from runner.spec.grammar import ENQUEUE_TEXT, SEARCH_KEYS

__all__ = ["parse_search", "outside"]


_DURATION = {"s": 1, "m": 60, "h": 3600}


def parse_search(c: Checker, raw: Any, models: dict[str, ModelSpec], data: DataSpec) -> SearchSpec:
    """The [search] table, checked: a SpecError names the key on any problem."""
    values = c.table("[search]", raw, SEARCH_KEYS, extra=("space", "enqueue"))
    if not data.val_fraction:
        raise c.fail("[search]", "a search chooses on a validation split, never on test: set [data].val_fraction "
                                 "(e.g. 0.1) to hold out part of the training images")
    timeout = values.get("timeout", "")
    seconds = None
    if timeout:
        number, unit = timeout[:-1], timeout[-1:]
        if unit not in _DURATION or not number.replace(".", "", 1).isdigit() or float(number) <= 0:
            raise c.fail("[search].timeout", f'{show_value(timeout)} is not a duration like "90m", "2h" or "45s"')
        seconds = float(number) * _DURATION[unit]
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise c.fail("[search.space]", 'missing or empty: give each searched axis a range, e.g. '
                                       'lr = { low = 0.005, high = 0.2, log = true }, or a list of choices')
    dims = tuple(_dimension(c, f"[search.space].{axis}", axis, v, models) for axis, v in space.items())
    enqueue = raw.get("enqueue", [])
    if not isinstance(enqueue, list) or not all(isinstance(p, dict) for p in enqueue):
        raise c.fail("[search].enqueue", f"{show_value(enqueue)} is not {ENQUEUE_TEXT}")
    points = tuple(_enqueued(c, f"[search].enqueue[{i}]", p, dims, models) for i, p in enumerate(enqueue))
    return SearchSpec(values.get("metric", "val_acc"), values.get("trials", 40), seconds,
                      values.get("sampler", "tpe"), values.get("pruner", "median"), values.get("top", 3),
                      values.get("seed", 0), values.get("max_params", 0), dims,
                      values.get("warmup_epochs", 2), values.get("patience", 0), values.get("refit", True),
                      tuple(values.get("start_from", [])), points)


def _enqueued(c: Checker, where: str, raw: dict[str, Any], dims: tuple[Dimension, ...],
              models: dict[str, ModelSpec]) -> tuple[tuple[str, Any], ...]:
    """One [search].enqueue point: each key a searched axis, each value inside its range or choices."""
    space = {d.axis: d for d in dims}
    out = []
    for axis, v in raw.items():
        if axis not in space:
            raise c.unknown(where, axis, list(space), "searched axis")
        value = axis_value(c, f"{where}.{axis}", axis, v, models)
        problem = outside(space[axis], value)
        if problem:
            raise c.fail(f"{where}.{axis}", problem)
        out.append((axis, value))
    return tuple(out)


def outside(d: Dimension, value: Any) -> str:
    """Why `value` is not a point of dimension `d` ("" when it is one)."""
    if d.kind == "categorical":
        if value in d.choices and any(type(value) is type(x) for x in d.choices if x == value):
            return ""
        return f"{show_value(value)} is not one of the space's choices {show_value(list(d.choices))}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not d.low <= value <= d.high:
        return f"{show_value(value)} is outside the space's range [{d.low}, {d.high}]"
    if d.step and abs((value - d.low) / d.step - round((value - d.low) / d.step)) > 1e-9:
        return f"{show_value(value)} is not on the space's grid {d.low}, {d.low + d.step}, ... {d.high} (step {d.step})"
    return ""

_RANGE_KEYS = {"low": Key(float, None), "high": Key(float, None), "log": Key(bool, False), "step": Key(float, None)}


def _dimension(c: Checker, where: str, axis: str, raw: Any, models: dict[str, ModelSpec]) -> Dimension:
    check_axis_name(c, "[search.space]", axis, models)
    if isinstance(raw, list):  # a categorical dimension: each choice checked as the axis checks it
        if not raw:
            raise c.fail(where, "is an empty list: give the choices")
        choices = tuple(axis_value(c, where, axis, v, models) for v in raw)
        if len(set(map(repr, choices))) != len(choices):
            raise c.fail(where, f"{show_value(raw)} repeats a choice")
        return Dimension(axis, "categorical", choices=choices)
    if not isinstance(raw, dict):
        raise c.fail(where, f"{show_value(raw)} is neither a range {{ low = ..., high = ... }} nor a list of choices")
    key = axis_key(axis, models)
    if key is None or key.kind not in (int, float):
        raise c.fail(where, f"{axis} takes no range (it is not a number): give a list of choices")
    values = c.table(where, raw, _RANGE_KEYS)
    for k in ("low", "high"):
        if k not in values:
            raise c.fail(where, f"missing {k}; a range is {{ low = ..., high = ... }} (bounds inclusive)")
    kind = "int" if key.kind is int else "float"
    low, high = (axis_value(c, f"{where}.{k}", axis, raw[k], models) for k in ("low", "high"))
    if low > high:
        raise c.fail(where, f"low = {low} is above high = {high}")
    log, step = values.get("log", False), raw.get("step")
    if log and step is not None:
        raise c.fail(where, "log and step exclude each other: a log range has no fixed step")
    if log and low <= 0:
        raise c.fail(where, f"log = true needs low > 0, not {low}")
    if step is not None:
        step = c.value(f"{where}.step", Key(key.kind, None, gt=0), step)
    return Dimension(axis, kind, low, high, log, step)
