"""Parse and validate a TOML experiment spec into frozen dataclasses, and expand its grid.

The registries below (`REGULARIZERS`, `TRAIN_KEYS`, ...) are the one place each key, its type,
default and allowed range are defined: the validator, the trainer and the report all read them.
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from runner.errors import SpecError, read_text

__all__ = [
    "Key", "REGULARIZERS", "TRAIN_KEYS", "DATA_KEYS", "STUDY_KEYS", "ARCHS", "METRICS",
    "StudySpec", "DataSpec", "TrainConfig", "ModelSpec", "Point", "Spec", "load_spec",
]


@dataclass(frozen=True)
class Key:
    """One key a spec may set: its type, default and the check its value must pass."""

    kind: type  # bool, int, float, str or list
    default: Any
    allowed: str  # what a person is told is allowed
    check: Callable[[Any], bool] = lambda v: True
    help: str = ""


def _in(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def _choices(*choices: str) -> str:
    return " | ".join(f'"{c}"' for c in choices)


ARCHS = ("lenet5", "mlp")
METRICS = {"test_acc": "maximize", "test_loss": "minimize"}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
AUGMENTS = ("none", "affine")

# Regularizers: a [grid] list, a [[runs]] value, or a [models.X] default. Defaults are "off".
REGULARIZERS: dict[str, Key] = {
    "dropout": Key(float, 0.0, "a number in [0, 1)", lambda v: 0 <= v < 1,
                   "dropout probability on the output of each hidden fully connected layer"),
    "batch_norm": Key(bool, False, "true or false", help="batch norm after each conv / hidden linear layer"),
    "weight_decay": Key(float, 0.0, "a number >= 0", lambda v: v >= 0, "L2 penalty (optimizer weight decay)"),
    "augment": Key(str, "none", _choices(*AUGMENTS), _in(*AUGMENTS),
                   "affine: rotation <= 10 deg, shift <= 2 px, scale 0.9-1.1, train batches only"),
    "label_smoothing": Key(float, 0.0, "a number in [0, 1)", lambda v: 0 <= v < 1, "cross-entropy label smoothing"),
}

TRAIN_KEYS: dict[str, Key] = {
    "epochs": Key(int, 15, "an integer >= 1", lambda v: v >= 1),
    "batch_size": Key(int, 128, "an integer >= 1", lambda v: v >= 1),
    "optimizer": Key(str, "sgd", _choices(*OPTIMIZERS), _in(*OPTIMIZERS)),
    "lr": Key(float, 0.01, "a number > 0", lambda v: v > 0),
    "momentum": Key(float, 0.9, "a number in [0, 1)", lambda v: 0 <= v < 1),
    "schedule": Key(str, "constant", _choices(*SCHEDULES), _in(*SCHEDULES)),
    "device": Key(str, "auto", _choices("auto", "cpu", "cuda"), _in("auto", "cpu", "cuda")),
    "threads": Key(int, 0, "an integer >= 0 (0 = decide from the cores)", lambda v: v >= 0),
}
# Execution settings: they choose where a trial runs, not what it computes, so they are not axes
# of the config hash.
EXECUTION_KEYS = ("device", "threads")

DATA_KEYS: dict[str, Key] = {
    "dataset": Key(str, "mnist", '"mnist"', _in("mnist")),
    "root": Key(str, "", 'a folder path, or "" for the packaged copy'),
    "train_limit": Key(int, 0, "an integer >= 0 (0 = all 60,000)", lambda v: v >= 0),
    "test_limit": Key(int, 0, "an integer >= 0 (0 = all 10,000)", lambda v: v >= 0),
    "mean": Key(float, 0.1307, "a number", math.isfinite),
    "std": Key(float, 0.3081, "a number > 0", lambda v: v > 0),
}

STUDY_KEYS: dict[str, Key] = {
    "name": Key(str, None, "a non-empty name", lambda v: bool(v.strip())),
    "description": Key(str, "", "a string"),
    "seeds": Key(list, [0], "a non-empty list of integers", lambda v: bool(v)),
    "metric": Key(str, "test_acc", _choices(*METRICS), _in(*METRICS)),
}

MODEL_KEYS: dict[str, Key] = {
    "arch": Key(str, None, _choices(*ARCHS), _in(*ARCHS)),
    "hidden": Key(list, [74, 40], "a non-empty list of integers >= 1 (mlp only)", lambda v: bool(v)),
    **REGULARIZERS,
}

SECTIONS = ("study", "data", "train", "models", "grid", "runs")
AXES = ("model", *REGULARIZERS, *(k for k in TRAIN_KEYS if k not in EXECUTION_KEYS))


@dataclass(frozen=True)
class StudySpec:
    name: str
    description: str  # shown at the top of the report
    seeds: tuple[int, ...]  # every point runs once per seed
    metric: str  # test_acc | test_loss: what reports rank by (final epoch)

    @property
    def direction(self) -> str:
        """Optuna's direction for `metric`."""
        return METRICS[self.metric]


@dataclass(frozen=True)
class DataSpec:
    dataset: str = "mnist"
    root: str = ""  # "" = packaged copy; else a folder of train.tar/test.tar, PNG folders or IDX files
    train_limit: int = 0  # 0 = all 60,000; N = the first N images
    test_limit: int = 0  # 0 = all 10,000
    mean: float = 0.1307  # normalization, applied per batch
    std: float = 0.3081


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.01  # peak learning rate
    momentum: float = 0.9  # SGD momentum; beta1 for adam/adamw
    schedule: str = "constant"  # constant | cosine | onecycle, stepped per batch
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch intra-op threads; 0 = all cores


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str  # lenet5 | mlp
    hidden: tuple[int, ...] = (74, 40)  # mlp hidden widths
    defaults: tuple[tuple[str, Any], ...] = ()  # this model's regularizer defaults


@dataclass(frozen=True)
class Point:
    """One trial to run: a model, every axis resolved, and a seed."""

    model: ModelSpec
    axes: tuple[tuple[str, Any], ...]  # every regularizer and every train key varied in the spec
    regularizers: tuple[tuple[str, Any], ...]  # all of REGULARIZERS, resolved
    train: TrainConfig
    data: DataSpec
    seed: int

    def reg(self, name: str) -> Any:
        """The resolved value of one regularizer."""
        return dict(self.regularizers)[name]

    @property
    def params(self) -> dict[str, Any]:
        """Optuna trial params: model, every axis, seed."""
        return {"model": self.model.name, **dict(self.axes), "seed": self.seed}

    def resolved(self) -> dict[str, Any]:
        """The whole config that determines the result, as plain JSON-able values."""
        train = {k: v for k, v in asdict(self.train).items() if k not in EXECUTION_KEYS}
        data = {k: v for k, v in asdict(self.data).items() if k != "root"}
        model = {"name": self.model.name, "arch": self.model.arch}
        if self.model.arch == "mlp":
            model["hidden"] = list(self.model.hidden)
        return {"model": model, "regularizers": dict(self.regularizers), "train": train,
                "data": data, "seed": self.seed}

    @property
    def config_hash(self) -> str:
        """A stable identity of the point: same config and seed, same hash."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def label(self) -> str:
        """A short human label: model and the axes that are not off, without the seed."""
        parts = [self.model.name]
        parts += [f"{k}={_fmt(v)}" for k, v in self.axes]
        return " ".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


@dataclass(frozen=True)
class Spec:
    path: str
    study: StudySpec
    data: DataSpec
    train: TrainConfig
    models: dict[str, ModelSpec]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]  # axis -> values, in file order
    runs: tuple[tuple[tuple[str, Any], ...], ...]  # single points beside the grid
    axis_names: tuple[str, ...] = field(default=())  # every axis varied anywhere, in a stable order

    def settings(self) -> list[dict[str, Any]]:
        """Every grid point and run, without seeds, in order, duplicates removed."""
        out: list[dict[str, Any]] = []
        if self.grid:
            names = [k for k, _ in self.grid]
            for values in itertools.product(*(v for _, v in self.grid)):
                out.append(dict(zip(names, values)))
        out += [dict(r) for r in self.runs]
        seen, unique = set(), []
        for s in out:
            key = json.dumps(s, sort_keys=True)
            if key not in seen:
                seen.add(key)
                unique.append(s)
        return unique

    def points(self) -> list[Point]:
        """Every (setting, seed), seed-major so that a partial run covers every setting once."""
        settings = self.settings()
        return [self.point(s, seed) for seed in self.study.seeds for s in settings]

    def point(self, setting: dict[str, Any], seed: int) -> Point:
        """Resolve one setting: setting > model defaults > registry defaults."""
        name = setting.get("model") or next(iter(self.models))
        model = self.models[name]
        regs = {k: key.default for k, key in REGULARIZERS.items()}
        regs.update(dict(model.defaults))
        regs.update({k: v for k, v in setting.items() if k in REGULARIZERS})
        train = TrainConfig(**{**asdict(self.train), **{k: v for k, v in setting.items() if k in TRAIN_KEYS}})
        axes = []
        for a in self.axis_names:
            if a in REGULARIZERS:
                axes.append((a, regs[a]))
            elif a in TRAIN_KEYS:
                axes.append((a, getattr(train, a)))
        return Point(model, tuple(axes), tuple(regs.items()), train, self.data, seed)


class _Checker:
    """Validates values against Keys, raising one-line SpecErrors that name file and key."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, message: str) -> SpecError:
        return SpecError(f"{self.path}: {where}: {message}")

    def unknown(self, where: str, key: str, valid: list[str]) -> SpecError:
        near = difflib.get_close_matches(key, valid, n=1)
        hint = f'; did you mean "{near[0]}"?' if near else f"; valid keys: {', '.join(valid)}"
        return self.fail(where, f'unknown key "{key}"{hint}')

    def value(self, where: str, key: Key, v: Any) -> Any:
        ok_type = {
            bool: isinstance(v, bool),
            int: isinstance(v, int) and not isinstance(v, bool),
            float: isinstance(v, (int, float)) and not isinstance(v, bool),
            str: isinstance(v, str),
            list: isinstance(v, list),
        }[key.kind]
        if not ok_type:
            return self._bad(where, key, v)
        if key.kind is float:
            v = float(v)
            if not math.isfinite(v):
                return self._bad(where, key, v)
        if not key.check(v):
            return self._bad(where, key, v)
        return v

    def _bad(self, where: str, key: Key, v: Any) -> Any:
        raise self.fail(where, f"{_show(v)} is not {key.allowed}")

    def table(self, where: str, raw: Any, keys: dict[str, Key], extra: tuple[str, ...] = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where, f"must be a table, got {_show(raw)}")
        for k in raw:
            if k not in keys and k not in extra:
                raise self.unknown(where, k, [*keys, *extra])
        return {k: self.value(f"{where}.{k}", keys[k], v) for k, v in raw.items() if k in keys}


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "a table"
    return str(v)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; raise SpecError with one line on any problem."""
    path = Path(path)
    text = read_text(path, SpecError, "spec file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: TOML syntax error: {e}") from None
    return parse_spec(raw, str(path))


def parse_spec(raw: dict[str, Any], path: str = "<spec>") -> Spec:
    """Validate an already-parsed TOML document."""
    c = _Checker(path)
    for k in raw:
        if k not in SECTIONS:
            raise c.unknown("top level", k, list(SECTIONS))
    if "study" not in raw:
        raise c.fail("[study]", "missing; it needs at least name = \"...\"")
    study = c.table("[study]", raw["study"], STUDY_KEYS)
    if "name" not in study:
        raise c.fail("[study].name", "missing; give the study a name")
    seeds = study.get("seeds", STUDY_KEYS["seeds"].default)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise c.fail("[study].seeds", f"{_show(s)} is not an integer >= 0")
    if len(set(seeds)) != len(seeds):
        raise c.fail("[study].seeds", f"{seeds} repeats a seed")
    study_spec = StudySpec(study["name"], study.get("description", ""), tuple(seeds),
                           study.get("metric", "test_acc"))
    data = DataSpec(**c.table("[data]", raw.get("data", {}), DATA_KEYS))
    train = TrainConfig(**c.table("[train]", raw.get("train", {}), TRAIN_KEYS))
    models = _models(c, raw.get("models"))
    grid = _grid(c, raw.get("grid", {}), models)
    runs = _runs(c, raw.get("runs", []), models)
    if not grid and not runs:
        raise c.fail("[grid]", "nothing to run: give at least one axis list in [grid] or one [[runs]] entry")
    order = list(AXES)
    varied = {k for k, _ in grid} | {k for r in runs for k, _ in r}
    varied |= {k for m in models.values() for k, _ in m.defaults}
    axis_names = tuple(a for a in order if a != "model" and (a in REGULARIZERS or a in varied))
    return Spec(path, study_spec, data, train, models, grid, runs, axis_names)


def _models(c: _Checker, raw: Any) -> dict[str, ModelSpec]:
    if raw is None or raw == {}:
        raise c.fail("[models]", 'missing; define at least one, e.g. [models.lenet5] arch = "lenet5"')
    if not isinstance(raw, dict):
        raise c.fail("[models]", "must be a table of named models")
    models = {}
    for name, table in raw.items():
        where = f"[models.{name}]"
        values = c.table(where, table, MODEL_KEYS)
        if "arch" not in values:
            raise c.fail(f"{where}.arch", f"missing; one of {_choices(*ARCHS)}")
        hidden = values.get("hidden")
        if hidden is not None:
            if values["arch"] != "mlp":
                raise c.fail(f"{where}.hidden", f'only an "mlp" has hidden widths, this is "{values["arch"]}"')
            for h in hidden:
                if isinstance(h, bool) or not isinstance(h, int) or h < 1:
                    raise c.fail(f"{where}.hidden", f"{_show(h)} is not an integer >= 1")
        defaults = tuple((k, v) for k, v in values.items() if k in REGULARIZERS)
        models[name] = ModelSpec(name, values["arch"], tuple(hidden or (74, 40)), defaults)
    return models


def _axis_value(c: _Checker, where: str, axis: str, v: Any, models: dict[str, ModelSpec]) -> Any:
    if axis == "model":
        if not isinstance(v, str) or v not in models:
            near = difflib.get_close_matches(str(v), list(models), n=1)
            hint = f'; did you mean "{near[0]}"?' if near else ""
            raise c.fail(where, f"unknown model {_show(v)}: defined are {', '.join(models)}{hint}")
        return v
    key = REGULARIZERS.get(axis) or TRAIN_KEYS[axis]
    return c.value(where, key, v)


def _grid(c: _Checker, raw: Any, models: dict[str, ModelSpec]) -> tuple:
    if not isinstance(raw, dict):
        raise c.fail("[grid]", "must be a table of axis = [values]")
    grid = []
    for axis, values in raw.items():
        where = f"[grid].{axis}"
        if axis not in AXES:
            raise c.unknown("[grid]", axis, list(AXES))
        if not isinstance(values, list):
            raise c.fail(where, f"{_show(values)} is not a list; write {axis} = [{_show(values)}]")
        if not values:
            raise c.fail(where, "is an empty list: the grid would have no points")
        checked = tuple(_axis_value(c, where, axis, v, models) for v in values)
        if len(set(map(repr, checked))) != len(checked):
            raise c.fail(where, f"{values} repeats a value")
        grid.append((axis, checked))
    if grid and "model" not in raw and len(models) > 1:
        raise c.fail("[grid].model", f"missing; which of {', '.join(models)}?")
    return tuple(grid)


def _runs(c: _Checker, raw: Any, models: dict[str, ModelSpec]) -> tuple:
    if not isinstance(raw, list):
        raise c.fail("[[runs]]", "must be an array of tables: write [[runs]]")
    runs = []
    for i, run in enumerate(raw):
        where = f"[[runs]] #{i + 1}"
        if not isinstance(run, dict):
            raise c.fail(where, "must be a table")
        for k in run:
            if k not in AXES:
                raise c.unknown(where, k, list(AXES))
        if "model" not in run and len(models) > 1:
            raise c.fail(f"{where}.model", f"missing; which of {', '.join(models)}?")
        runs.append(tuple((k, _axis_value(c, f"{where}.{k}", k, v, models)) for k, v in run.items()))
    return tuple(runs)
