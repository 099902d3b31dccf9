"""The spec's grammar as JSON Schema and as Markdown key tables, both from the registries.

`runner schema` prints the JSON Schema (draft-07, which editors such as Even Better TOML /
taplo read through a `#:schema ./runner.schema.json` first line); `runner schema --format
markdown` prints docs/spec.md's key tables. Neither is written by hand: the validator, its
messages, the schema and the tables all read the same `Key`s.
"""
from __future__ import annotations

import json
from typing import Any

from runner.keys import Key
from runner.models.layers import INPUT_KEYS, KINDS, LAYER_KEYS, REQUIRED
from runner.spec.grammar import ENQUEUE_TEXT, GRID_KEYS, RESOLUTION_KEYS, ROUNDS_KEYS, RUN_KEYS
from runner.spec.teacher import TEACHER_KEYS
from runner.spec import (AXES, DATA_KEYS, MODEL_KEYS, REGULARIZERS, SEARCH_KEYS, STUDY_KEYS,
                         TRAIN_KEYS, EXECUTION_KEYS)

__all__ = ["json_schema", "schema_text", "key_tables", "LAYER_AXIS_PATTERN", "SCHEMA_FILE"]

SCHEMA_FILE = "specs/runner.schema.json"  # committed; a test keeps it equal to `runner schema`
LAYER_AXIS_PATTERN = r"^[^.]+\.[^.]+\.[^.]+$"  # "MODEL.LAYER.FIELD"
SECTIONS = {  # section -> (its keys, what it is for)
    "study": (STUDY_KEYS, "the study: its name in the storage, seeds and ranking metric"),
    "data": (DATA_KEYS, "the data and its normalization"),
    "train": (TRAIN_KEYS, "how every point trains, unless an axis varies it"),
}


def _table(keys: dict[str, Key], required: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": {k: key.schema() for k, key in keys.items()},
                           "additionalProperties": False}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    return out


def _axis_values(axis: str) -> dict[str, Any]:
    if axis == "model":
        return {"type": "string", "description": "a model defined in [models]"}
    return (REGULARIZERS.get(axis) or TRAIN_KEYS[axis]).schema()


def _layer_field_values() -> dict[str, Any]:
    types = sorted({key.schema()["type"] for keys in LAYER_KEYS.values() for k, key in keys.items() if k != "name"})
    return {"type": types, "description": "a value of the named layer's field"}


def json_schema() -> dict[str, Any]:
    """The whole spec grammar as a JSON Schema document."""
    layers = {kind: _table(keys, (kind, *REQUIRED[kind]), f"a {kind} layer") for kind, keys in LAYER_KEYS.items()}
    model = _table(MODEL_KEYS, description="a named model: exactly one of arch, layers or target")
    model["properties"]["layers"] = {"type": "array", "minItems": 1, "description": MODEL_KEYS["layers"].help,
                                     "items": {"oneOf": [{"$ref": f"#/definitions/{k}"} for k in KINDS]}}
    model["properties"]["input"] = {**_table(INPUT_KEYS), "minProperties": 1, "maxProperties": 1,
                                    "description": MODEL_KEYS["input"].help}
    model["oneOf"] = [{"required": [k]} for k in ("arch", "layers", "target")]
    axes = [a for a in AXES]
    lists = {a: {"type": "array", "minItems": 1, "items": _axis_values(a)} for a in axes}
    layer_lists = {LAYER_AXIS_PATTERN: {"type": "array", "minItems": 1, "items": _layer_field_values()}}
    across = {"type": "object", "minProperties": 1, "description": GRID_KEYS["across"].help, "properties": lists,
              "patternProperties": layer_lists, "additionalProperties": False}
    grid = {"type": "object", "description": "the ablation: the cartesian product of every list, a fraction of it, or "
                                             "each value alone against the baseline",
            "properties": {"design": _design_schema(), "across": across, **lists},
            "patternProperties": layer_lists, "additionalProperties": False}
    run = {"type": "object", "description": "one point beside the grid; axes not given take their defaults",
           "properties": {**{a: _axis_values(a) for a in axes},
                          "baseline": {"anyOf": [{"type": "boolean"}, {"enum": ["tuned"]}],
                                       "description": RUN_KEYS["baseline"].help},
                          "label": {"type": "string", "minLength": 1, "description": RUN_KEYS["label"].help}},
           "patternProperties": {LAYER_AXIS_PATTERN: _layer_field_values()}, "additionalProperties": False}
    sections = {name: _table(keys, ("name",) if name == "study" else (), text) for name, (keys, text) in SECTIONS.items()}
    seeds = sections["study"]["properties"]["seeds"]
    sections["study"]["properties"]["seeds"] = {
        "anyOf": [{k: v for k, v in seeds.items() if k not in ("description", "default")},
                  _table(ROUNDS_KEYS, ("max",), "seeds in rounds, added until the study is decided")],
        "description": seeds["description"], "default": seeds["default"]}
    teacher = _table(TEACHER_KEYS, description="a kept model that teaches (distill_weight): exactly one of trial, "
                                               "trials or file; study with trial or trials")
    teacher["properties"]["trial"] = {"anyOf": [{"type": "integer", "minimum": 0}, {"enum": ["best"]}],
                                      "description": TEACHER_KEYS["trial"].help}
    teacher["oneOf"] = [{"required": [k]} for k in ("trial", "trials", "file")]
    sections["train"]["properties"]["teacher"] = teacher
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "runner spec",
        "description": "A runner experiment spec (TOML). Generated by `runner schema`; do not edit.",
        "type": "object",
        "required": ["study", "models"],
        "additionalProperties": False,
        "properties": {
            **sections,
            "models": {"type": "object", "minProperties": 1, "description": "named models; a grid refers to them",
                       "additionalProperties": {"$ref": "#/definitions/model"}},
            "grid": grid,
            "runs": {"type": "array", "items": run},
            "search": _search_schema(),
        },
        "definitions": {"model": model, **layers},
    }


def _design_schema() -> dict[str, Any]:
    """[grid].design: one of its words, or a table { resolution = N }."""
    key = GRID_KEYS["design"]
    word = {"type": "string", "enum": list(key.choices)}
    table = _table(RESOLUTION_KEYS, ("resolution",), "a fraction at this resolution, the fewest runs that reach it")
    return {"anyOf": [word, table], "description": key.help, "default": key.default}


def _search_schema() -> dict[str, Any]:
    """[search] and its [search.space]: each axis a range { low, high, log, step } or a list of choices."""
    out = _table(SEARCH_KEYS, description="what `runner tune` searches, on the validation split")
    rng = {"type": "object", "required": ["low", "high"], "additionalProperties": False,
           "description": "a number range, bounds inclusive; log and step exclude each other",
           "properties": {"low": {"type": "number"}, "high": {"type": "number"},
                          "log": {"type": "boolean", "default": False}, "step": {"type": "number", "exclusiveMinimum": 0}}}
    choices = {"type": "array", "minItems": 1, "description": "the choices of a categorical axis"}
    dimension = {"oneOf": [rng, choices]}
    out["properties"]["space"] = {"type": "object", "minProperties": 1,
                                  "description": "each searched axis, a layer field \"MODEL.LAYER.FIELD\" included",
                                  "properties": {a: dimension for a in AXES},
                                  "patternProperties": {LAYER_AXIS_PATTERN: dimension},
                                  "additionalProperties": False}
    out["properties"]["enqueue"] = {"type": "array", "description": ENQUEUE_TEXT + " (values inside the space)",
                                    "items": {"type": "object", "minProperties": 1,
                                              "propertyNames": {"anyOf": [{"enum": list(AXES)},
                                                                          {"pattern": LAYER_AXIS_PATTERN}]}}}
    out["required"] = ["space"]
    return out


def schema_text() -> str:
    """The JSON Schema as `runner schema` prints it (and specs/runner.schema.json holds it)."""
    return json.dumps(json_schema(), indent=2) + "\n"


def _default(key: Key) -> str:
    if key.default is None or key.default == "" and key.kind is str:
        return "–" if key.default is None else '`""`'
    if isinstance(key.default, bool):
        return f"`{str(key.default).lower()}`"
    if isinstance(key.default, str):
        return f'`"{key.default}"`'
    if isinstance(key.default, (list, tuple)):
        return "`[" + ", ".join(map(str, key.default)) + "]`"
    return f"`{key.default}`"


def _rows(keys: dict[str, Key], prefix: str = "") -> list[str]:
    return [f"| `{prefix}{k}` | {key.allowed.replace('|', '&#124;')} | {_default(key)} | {key.help} |"
            for k, key in keys.items()]


def key_tables() -> str:
    """The tables of every key, section by section, as docs/spec.md has them."""
    head = ["| key | allowed | default | what it does |", "|---|---|---|---|"]
    out = []
    for name, (keys, text) in SECTIONS.items():
        out += [f"`[{name}]`: {text}.", "", *head, *_rows(keys), ""]
        if name == "study":
            out += ["`[study].seeds` as a table: seeds in rounds, added until the study is decided "
                    "([How many seeds?](../README.md#how-many-seeds)).", "", *head, *_rows(ROUNDS_KEYS, "seeds."), ""]
        if name == "train":
            out += ["`[train].teacher`: a kept model that teaches, when `distill_weight` > 0 ([Distillation]"
                    "(#distillation-a-teacher-in-the-spec)): `study` with `trial` or `trials`, or `file`.",
                    "", *head, *_rows(TEACHER_KEYS, "teacher."), ""]
    out += ["`[models.NAME]`: exactly one of `arch`, `layers` or `target`; the regularizers set this "
            "model's defaults.", "", *head, *_rows(MODEL_KEYS), ""]
    out += ["`input`: one of", "", *head, *_rows(INPUT_KEYS), ""]
    for kind, keys in LAYER_KEYS.items():
        out += [f"A `{kind}` layer, one inline table in `layers`:", "", *head, *_rows(keys), ""]
    out += ["`[search]`: what `runner tune` searches (needs `[data].val_fraction`); `[search.space]` gives "
            "each searched axis a range `{ low, high, log, step }` (bounds inclusive) or a list of choices; "
            f"`enqueue` is {ENQUEUE_TEXT}, every value inside the space.", "",
            *head, *_rows(SEARCH_KEYS), ""]
    out += ["`[grid]`: beside its axis lists, which of their settings run.", "", *head, *_rows(GRID_KEYS),
            *_rows(RESOLUTION_KEYS, "design."), ""]
    out += ["`[[runs]]`: beside its axes, a run's role in a study against a baseline.", "", *head,
            *_rows(RUN_KEYS), ""]
    axes = [a for a in AXES if a not in EXECUTION_KEYS]
    out += ["`[grid]` lists and `[[runs]]` values may set: " + ", ".join(f"`{a}`" for a in axes)
            + ", and any named layer's field as `\"MODEL.LAYER.FIELD\"`."]
    return "\n".join(out) + "\n"
