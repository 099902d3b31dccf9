"""Parse and validate a TOML experiment spec into frozen dataclasses, and expand its grid.

The registries below (`REGULARIZERS`, `TRAIN_KEYS`, ...) are the one place each key, its type,
default and allowed range are defined: the validator, the trainer and the report all read them.
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from datetime import date, time
from pathlib import Path
from typing import Any

from runner.errors import SpecError, read_text
from runner.data.idx import FAMILY
from runner.keys import Key, choices_text, show
from runner.models.layers import (ACTIVATIONS, AXIS_FIELDS, INPUT_KEYS, KINDS, LAYER_KEYS, REQUIRED, InputTransform,
                                  Layer, LayerError, default_name, infer_shapes)
from runner.models.presets import MLP_HIDDEN, PRESETS, preset_layers
from runner.models.user import TARGET, locate, source_sha256

__all__ = [
    "Key", "REGULARIZERS", "TRAIN_KEYS", "DATA_KEYS", "STUDY_KEYS", "MODEL_KEYS", "ARCHS", "METRICS",
    "DATASETS", "StudySpec", "DataSpec", "TrainConfig", "ModelSpec", "Point", "Spec", "load_spec",
    "parse_spec", "dataset_shape", "is_layer_axis",
]


ARCHS = ("lenet5", "mlp")
METRICS = {"test_acc": "maximize", "test_loss": "minimize", "val_acc": "maximize", "val_loss": "minimize"}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
AUGMENTS = ("none", "affine")

# Regularizers: a [grid] list, a [[runs]] value, or a [models.X] default. Defaults are "off".
REGULARIZERS: dict[str, Key] = {
    "dropout": Key(float, 0.0, "dropout on the output of each hidden fc layer", ge=0, lt=1),
    "batch_norm": Key(bool, False, "batch norm after each conv and hidden fc layer, before the activation"),
    "weight_decay": Key(float, 0.0, "L2 penalty, the optimizer's weight decay", ge=0),
    "augment": Key(str, "none", "affine: rotation up to 10 degrees, shift up to 2 px, scale 0.9-1.1, an "
                   "independent draw per image, training batches only", choices=AUGMENTS),
    "label_smoothing": Key(float, 0.0, "cross-entropy label smoothing", ge=0, lt=1),
}

TRAIN_KEYS: dict[str, Key] = {
    "epochs": Key(int, 15, "epochs of training", ge=1),
    "batch_size": Key(int, 128, "training batch size", ge=1),
    "optimizer": Key(str, "sgd", "momentum is beta1 for adam and adamw", choices=OPTIMIZERS),
    "lr": Key(float, 0.01, "peak learning rate", gt=0),
    "momentum": Key(float, 0.9, "SGD momentum; beta1 for adam/adamw", ge=0, lt=1),
    "schedule": Key(str, "constant", "learning-rate schedule, stepped per batch", choices=SCHEDULES),
    "device": Key(str, "auto", "auto: cuda when available, else cpu", choices=("auto", "cpu", "cuda")),
    "threads": Key(int, 0, "torch threads per process", ge=0, note="(0 = decide from the cores)"),
}
# Execution settings: they choose where a trial runs, not what it computes, so they are not axes
# of the config hash.
EXECUTION_KEYS = ("device", "threads")

# The named datasets: (C, H, W) of an image, number of classes, default normalization (None: "auto").
DATASETS = {name: ((1, 28, 28), f.classes, f.mean, f.std) for name, f in FAMILY.items()}

DATA_KEYS: dict[str, Key] = {
    "dataset": Key(str, "mnist", "which dataset; a spec with target reads the user's own instead",
                   choices=tuple(DATASETS)),
    "root": Key(str, "", "mnist: a folder of the course's train.tar/test.tar, their PNG folders or the IDX files; "
                         "the others: a folder of their IDX files, flat or as torchvision keeps them "
                         "(<root>/<ClassName>/raw/); \"\" = the packaged MNIST, Debian's Fashion-MNIST",
                text='a folder path, or "" for the copy on this machine'),
    "target": Key(str, None, "the user's data: a function returning (train_images, train_labels, test_images, "
                             "test_labels); the spec's folder is searched first", text='"module:function"'),
    "args": Key(dict, None, "keyword arguments of target"),
    "train_limit": Key(int, 0, "the first N training images", ge=0, note="(0 = all)"),
    "test_limit": Key(int, 0, "the first N test images", ge=0, note="(0 = all)"),
    "val_fraction": Key(float, 0.0, "a stratified validation split held out of the training images "
                                    "(0 = none)", ge=0, lt=1),
    "val_seed": Key(int, 0, "the seed that draws the validation split", ge=0),
    "mean": Key(float, None, "normalization (x - mean) / std, pixels in [0, 1]; auto: computed from the "
                             "training images used (default: the dataset's own, auto for user data)", auto=True),
    "std": Key(float, None, "normalization std", gt=0, auto=True),
}

STUDY_KEYS: dict[str, Key] = {
    "name": Key(str, None, "the Optuna study's name, unique within a storage", nonempty=True, text="a non-empty name"),
    "description": Key(str, "", "shown at the top of the report"),
    "seeds": Key(list, [0], "every point runs once per seed", item=int, item_ge=0, nonempty=True),
    "metric": Key(str, "test_acc", "what reports rank by (final epoch)", choices=tuple(METRICS)),
}

MODEL_KEYS: dict[str, Key] = {
    "arch": Key(str, None, "a named architecture", choices=ARCHS),
    "hidden": Key(list, list(MLP_HIDDEN), "hidden widths (mlp only)", item=int, item_ge=1, nonempty=True),
    "layers": Key(list, None, "the layers in order, one inline table each", text="a list of layer tables"),
    "act": Key(str, "relu", "default activation of conv and hidden fc layers", choices=tuple(ACTIVATIONS)),
    "input": Key(dict, None, "what is done to each image first: { pad = N } or { resize = N }"),
    "target": Key(str, None, "a user's nn.Module, module:attribute; the spec's folder is searched first",
                  text='"module:attribute", e.g. "mynet:Net"'),
    "args": Key(dict, None, "keyword arguments of target's constructor"),
    **REGULARIZERS,
}
ARCH_KEYS = ("arch", "layers", "target")  # a model gives exactly one of them

SEARCH_KEYS: dict[str, Key] = {
    "metric": Key(str, "val_acc", "what the search optimizes, on the validation split; never a test metric",
                  choices=("val_acc", "val_loss")),
    "trials": Key(int, 40, "finished trials (complete or pruned), across every worker and machine", ge=1),
    "timeout": Key(str, "", 'a wall-clock cap: "90m", "2h", "45s" ("" = none)'),
    "sampler": Key(str, "tpe", "Optuna's sampler, seeded: a search is repeatable on one worker",
                   choices=("tpe", "random")),
    "pruner": Key(str, "median", "stops trials early on the per-epoch validation metric",
                  choices=("median", "hyperband", "none")),
    "top": Key(int, 3, "configurations confirmed on the test split with [study].seeds", ge=1),
    "seed": Key(int, 0, "the sampler's seed", ge=0),
    "max_params": Key(int, 0, "refuse configurations with more parameters (0 = no cap)", ge=0),
}
SECTIONS = ("study", "data", "train", "models", "grid", "runs", "search")
AXES = ("model", *REGULARIZERS, *(k for k in TRAIN_KEYS if k not in EXECUTION_KEYS))


def dataset_shape(data: DataSpec) -> tuple[tuple[int, int, int], int] | None:
    """((C, H, W), classes) of the spec's data; None for user data not loaded yet (see Spec.bind)."""
    if data.bound is not None:
        return data.bound
    if data.target:
        return None
    shape, classes, _, _ = DATASETS[data.dataset]
    return shape, classes


def is_layer_axis(axis: str) -> bool:
    """Whether an axis names a layer field, "MODEL.LAYER.FIELD"."""
    return axis.count(".") == 2


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
    dataset: str = "mnist"  # a name of the MNIST family; "user" when target is set
    root: str = ""  # "" = the copy on this machine; else a folder (see DATA_KEYS)
    train_limit: int = 0  # 0 = all; N = the first N images
    test_limit: int = 0  # 0 = all
    mean: float | str = 0.1307  # normalization, applied per batch; "auto": computed from the training images
    std: float | str = 0.3081
    val_fraction: float = 0.0  # held out of the training images, stratified; 0 = no validation split
    val_seed: int = 0
    target: str = ""  # "module:function" of the user's data
    args: tuple[tuple[str, Any], ...] = ()
    folder: str = ""  # the spec's folder, searched first for target's module
    source_sha256: str = ""  # of target's module: changed code, new data
    bound: tuple[tuple[int, int, int], int] | None = None  # ((C, H, W), classes) once the data is loaded

    def resolved(self) -> dict[str, Any]:
        """The data part of a point's config: what was always stored, and any new setting that is not off."""
        out: dict[str, Any] = {"dataset": self.dataset, "train_limit": self.train_limit,
                               "test_limit": self.test_limit, "mean": self.mean, "std": self.std}
        if self.val_fraction:
            out.update(val_fraction=self.val_fraction, val_seed=self.val_seed)
        if self.target:
            out.update(target=self.target, args=dict(self.args), source_sha256=self.source_sha256)
        return out

    def load_args(self) -> dict[str, Any]:
        """The keyword arguments of runner.data.load_data for this spec."""
        return {"dataset": self.dataset, "root": self.root, "train_limit": self.train_limit,
                "test_limit": self.test_limit, "val_fraction": self.val_fraction, "val_seed": self.val_seed,
                "mean": self.mean, "std": self.std, "target": self.target, "args": dict(self.args),
                "folder": self.folder, "sha256": self.source_sha256}


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
    arch: str  # lenet5 | mlp (presets) | layers (declared in the spec) | target (a user's module)
    hidden: tuple[int, ...] = MLP_HIDDEN  # mlp hidden widths
    defaults: tuple[tuple[str, Any], ...] = ()  # this model's regularizer defaults
    layers: tuple[Layer, ...] = ()  # the layer list (a preset's too); empty for a user's module
    act: str = "relu"  # default activation of conv and hidden fc layers
    input: InputTransform = InputTransform()
    target: str = ""  # "module:attribute" of a user's nn.Module
    args: tuple[tuple[str, Any], ...] = ()  # its keyword arguments
    search_dir: str = ""  # the spec's folder, searched first for target's module
    source: str = ""  # target's source file, as found when the spec was read
    source_sha256: str = ""  # its SHA-256: a changed file is a new configuration

    @property
    def is_preset_as_named(self) -> bool:
        """A preset with its layers, activation and input as named (stored as before layer lists)."""
        return (self.arch in PRESETS and self.act == "relu" and not self.input.to_dict()
                and self.layers == preset_layers(self.arch, self.hidden, self.layers[-1].size))

    def resolved(self) -> dict[str, Any]:
        """The model part of a point's resolved config."""
        if self.target:
            return {"name": self.name, "target": self.target, "args": dict(self.args),
                    "source_sha256": self.source_sha256}
        out: dict[str, Any] = {"name": self.name, "arch": self.arch}
        if self.is_preset_as_named:  # exactly as stored before layer lists: old trials keep their hash
            if self.arch == "mlp":
                out["hidden"] = list(self.hidden)
            return out
        out["act"] = self.act
        if self.input.to_dict():
            out["input"] = self.input.to_dict()
        out["layers"] = [layer.to_dict() for layer in self.layers]
        return out


@dataclass(frozen=True)
class Point:
    """One trial to run: a model, every axis resolved, and a seed."""

    model: ModelSpec  # with the point's layer-field axes applied
    axes: tuple[tuple[str, Any], ...]  # every regularizer, every train key and layer field varied in the spec
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
        return {"model": self.model.resolved(), "regularizers": dict(self.regularizers), "train": train,
                "data": self.data.resolved(), "seed": self.seed}

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
class Dimension:
    """One searched axis: a number range (inclusive bounds) or a list of choices."""

    axis: str
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class SearchSpec:
    metric: str  # val_acc | val_loss
    trials: int  # finished trials, all workers together
    timeout_s: float | None
    sampler: str  # tpe | random
    pruner: str  # median | hyperband | none
    top: int  # configurations confirmed on test
    seed: int
    max_params: int  # 0 = no cap
    space: tuple[Dimension, ...]

    @property
    def direction(self) -> str:
        """Optuna's direction for `metric`."""
        return METRICS[self.metric]


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
    search: SearchSpec | None = None  # [search]: what `runner tune` searches

    def settings(self) -> list[dict[str, Any]]:
        """Every grid point and run, without seeds, in order, duplicates removed.

        A layer-field axis applies to its own model only: for another model's points it is dropped.
        """
        out: list[dict[str, Any]] = []
        if self.grid:
            names = [k for k, _ in self.grid]
            for values in itertools.product(*(v for _, v in self.grid)):
                out.append(dict(zip(names, values)))
        out += [dict(r) for r in self.runs]
        seen, unique = set(), []
        first = next(iter(self.models))
        for s in out:
            model = s.get("model", first)
            s = {k: v for k, v in s.items() if not is_layer_axis(k) or k.split(".")[0] == model}
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
        layers = list(model.layers)
        axes = []
        for a in self.axis_names:
            if a in REGULARIZERS:
                axes.append((a, regs[a]))
            elif a in TRAIN_KEYS:
                axes.append((a, getattr(train, a)))
            elif a.split(".")[0] == name:  # a layer field of this point's model
                _, layer_name, key = a.split(".")
                i = _layer_index(model, layer_name)
                value = setting.get(a, layers[i].get(key))
                layers[i] = layers[i].with_field(key, value)
                axes.append((a, value))
        if layers != list(model.layers):
            model = replace(model, layers=tuple(layers))
        return Point(model, tuple(axes), tuple(regs.items()), train, self.data, seed)

    @property
    def folder(self) -> str:
        """The spec's folder (searched first for a user's modules)."""
        return str(Path(self.path).resolve().parent)

    def bind(self, shape: tuple[int, int, int], classes: int) -> Spec:
        """The spec for data of this shape and class count: presets end in `classes` outputs, and
        every model's layers are checked against the shape (a SpecError, as when the spec is read)."""
        data = replace(self.data, bound=(tuple(shape), classes))
        models = {n: replace(m, layers=preset_layers(m.arch, m.hidden, classes)) if m.arch in PRESETS else m
                  for n, m in self.models.items()}
        spec = replace(self, data=data, models=models)
        _check_points(_Checker(self.path), spec)
        return spec


def _layer_index(model: ModelSpec, layer_name: str) -> int:
    return next(i for i, layer in enumerate(model.layers) if _name(layer, i) == layer_name)


def _name(layer: Layer, i: int) -> str:
    return layer.name or default_name(layer.kind, i)


_LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # where str.splitlines splits


class _Checker:
    """Validates values against Keys, raising one-line SpecErrors that name file and key."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, message: str) -> SpecError:
        # Keys and names are the user's and may hold a line break: show it escaped, as TOML writes it
        text = _LINE_BREAK.sub(lambda m: json.dumps(m[0])[1:-1], f"{where}: {message}")
        return SpecError(f"{self.path}: {text}")

    def unknown(self, where: str, key: str, valid: list[str], what: str = "key") -> SpecError:
        near = difflib.get_close_matches(str(key), valid, n=1)
        hint = f'; did you mean "{near[0]}"?' if near else f"; valid {what}s: {', '.join(valid)}"
        return self.fail(where, f'unknown {what} "{key}"{hint}')

    def value(self, where: str, key: Key, v: Any) -> Any:
        if not key.accepts_type(v):
            raise self.fail(where, f"{_show(v)} is not {key.allowed}")
        if key.kind is float and not (key.auto and v == "auto"):
            try:
                v = float(v)
            except OverflowError:  # an integer beyond any float
                raise self.fail(where, f"{_show(v)} is out of a float's range: it must be {key.allowed}") from None
        if key.kind is list and key.item is not None:  # name the item that is wrong
            item = Key(key.item, None, ge=key.item_ge)
            for x in v:
                if not item.accepts_type(x) or not item.check(x):
                    raise self.fail(where, f"{_show(x)} is not {item.allowed}")
        if not key.check(v):
            raise self.fail(where, f"{_show(v)} is not {key.allowed}")
        return v

    def table(self, where: str, raw: Any, keys: dict[str, Key], extra: tuple[str, ...] = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where, f"must be a table, got {_show(raw)}")
        for k in raw:
            if k not in keys and k not in extra:
                raise self.unknown(where, k, [*keys, *extra])
        return {k: self.value(f"{where}.{k}", keys[k], v) for k, v in raw.items() if k in keys}


def _show(v: Any, depth: int = 0) -> str:
    if isinstance(v, list):
        if depth >= 8:  # tomllib nests arrays nearly as deep as the recursion limit: this would overflow it
            return "[...]"
        return "[" + ", ".join(_show(x, depth + 1) for x in v) + "]"
    return show(v)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; raise SpecError with one line on any problem."""
    path = Path(path)
    try:
        text = read_text(path, SpecError, "spec file")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text: byte {e.object[e.start]:#04x} at offset {e.start}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: TOML syntax error: {e}") from None
    except ValueError as e:  # tomllib lets int()'s own error through: an integer of more than 4300 digits
        raise SpecError(f"{path}: TOML syntax error: {str(e).split(';')[0]}") from None
    except RecursionError:
        raise SpecError(f"{path}: TOML syntax error: arrays or inline tables nested too deeply") from None
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
    if len(set(seeds)) != len(seeds):
        raise c.fail("[study].seeds", f"{seeds} repeats a seed")
    study_spec = StudySpec(study["name"], study.get("description", ""), tuple(seeds),
                           study.get("metric", "test_acc"))
    train = TrainConfig(**c.table("[train]", raw.get("train", {}), TRAIN_KEYS))
    folder = str(Path(path).resolve().parent) if path != "<spec>" else ""
    data = _data(c, raw.get("data", {}), folder)
    if study_spec.metric.startswith("val_") and not data.val_fraction:
        raise c.fail("[study].metric", f'"{study_spec.metric}" needs a validation split: set [data].val_fraction '
                                       "(e.g. 0.1) to hold out part of the training images")
    models = _models(c, raw.get("models"), data, folder)
    grid = _grid(c, raw.get("grid", {}), models)
    runs = _runs(c, raw.get("runs", []), models)
    search = _search(c, raw["search"], models, data) if "search" in raw else None
    if not grid and not runs and search is None:
        raise c.fail("[grid]", "nothing to run: give at least one axis list in [grid] or one [[runs]] entry, "
                               "or a [search]")
    varied = {k for k, _ in grid} | {k for r in runs for k, _ in r}
    varied |= {d.axis for d in search.space} if search else set()
    varied |= {k for m in models.values() for k, _ in m.defaults}
    layer_axes = [k for k in [*(k for k, _ in grid), *(k for r in runs for k, _ in r),
                              *(d.axis for d in (search.space if search else ()))] if is_layer_axis(k)]
    axis_names = tuple(a for a in AXES if a != "model" and (a in REGULARIZERS or a in varied))
    axis_names += tuple(dict.fromkeys(layer_axes))
    spec = Spec(path, study_spec, data, train, models, grid, runs, axis_names, search)
    _check_points(c, spec)
    return spec


# ---------------------------------------------------------------- search

_DURATION = {"s": 1, "m": 60, "h": 3600}


def _search(c: _Checker, raw: Any, models: dict[str, ModelSpec], data: DataSpec) -> SearchSpec:
    values = c.table("[search]", raw, SEARCH_KEYS, extra=("space",))
    if not data.val_fraction:
        raise c.fail("[search]", "a search chooses on a validation split, never on test: set [data].val_fraction "
                                 "(e.g. 0.1) to hold out part of the training images")
    timeout = values.get("timeout", "")
    seconds = None
    if timeout:
        number, unit = timeout[:-1], timeout[-1:]
        if unit not in _DURATION or not number.replace(".", "", 1).isdigit() or float(number) <= 0:
            raise c.fail("[search].timeout", f'{_show(timeout)} is not a duration like "90m", "2h" or "45s"')
        seconds = float(number) * _DURATION[unit]
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise c.fail("[search.space]", 'missing or empty: give each searched axis a range, e.g. '
                                       'lr = { low = 0.005, high = 0.2, log = true }, or a list of choices')
    dims = tuple(_dimension(c, f"[search.space].{axis}", axis, v, models) for axis, v in space.items())
    return SearchSpec(values.get("metric", "val_acc"), values.get("trials", 40), seconds,
                      values.get("sampler", "tpe"), values.get("pruner", "median"), values.get("top", 3),
                      values.get("seed", 0), values.get("max_params", 0), dims)


_RANGE_KEYS = {"low": Key(float, None), "high": Key(float, None), "log": Key(bool, False), "step": Key(float, None)}


def _dimension(c: _Checker, where: str, axis: str, raw: Any, models: dict[str, ModelSpec]) -> Dimension:
    _check_axis_name(c, "[search.space]", axis, models)
    if isinstance(raw, list):  # a categorical dimension: each choice checked as the axis checks it
        if not raw:
            raise c.fail(where, "is an empty list: give the choices")
        choices = tuple(_axis_value(c, where, axis, v, models) for v in raw)
        if len(set(map(repr, choices))) != len(choices):
            raise c.fail(where, f"{_show(raw)} repeats a choice")
        return Dimension(axis, "categorical", choices=choices)
    if not isinstance(raw, dict):
        raise c.fail(where, f"{_show(raw)} is neither a range {{ low = ..., high = ... }} nor a list of choices")
    key = _axis_key(axis, models)
    if key is None or key.kind not in (int, float):
        raise c.fail(where, f"{axis} takes no range (it is not a number): give a list of choices")
    values = c.table(where, raw, _RANGE_KEYS)
    for k in ("low", "high"):
        if k not in values:
            raise c.fail(where, f"missing {k}; a range is {{ low = ..., high = ... }} (bounds inclusive)")
    kind = "int" if key.kind is int else "float"
    low, high = (_axis_value(c, f"{where}.{k}", axis, raw[k], models) for k in ("low", "high"))
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


def _axis_key(axis: str, models: dict[str, ModelSpec]) -> Key | None:
    if axis == "model":
        return None
    if is_layer_axis(axis):
        model_name, layer_name, field_name = axis.split(".")
        model = models[model_name]
        layer = model.layers[_layer_index(model, layer_name)]
        return LAYER_KEYS[layer.kind][field_name]
    return REGULARIZERS.get(axis) or TRAIN_KEYS[axis]


# ---------------------------------------------------------------- data


def _data(c: _Checker, raw: Any, folder: str) -> DataSpec:
    values = c.table("[data]", raw, DATA_KEYS)
    if "target" in values:
        if "dataset" in values or "root" in values:
            given = "dataset" if "dataset" in values else "root"
            raise c.fail(f"[data].{given}", "a spec with [data].target reads the user's own data: "
                                            f"leave {given} out, pass what the function needs in args")
        path = _locate(c, "[data].target", values["target"], folder)
        args = values.get("args", {})
        _plain(c, "[data].args", args)
        return DataSpec("user", "", values.get("train_limit", 0), values.get("test_limit", 0),
                        values.get("mean", "auto"), values.get("std", "auto"), values.get("val_fraction", 0.0),
                        values.get("val_seed", 0), values["target"], tuple(args.items()), folder,
                        source_sha256(path))
    if "args" in values:
        raise c.fail("[data].args", "only [data].target takes args")
    dataset = values.get("dataset", "mnist")
    _, _, mean, std = DATASETS[dataset]
    return DataSpec(dataset, values.get("root", ""), values.get("train_limit", 0), values.get("test_limit", 0),
                    values.get("mean", "auto" if mean is None else mean), values.get("std", "auto" if std is None else std),
                    values.get("val_fraction", 0.0), values.get("val_seed", 0))


# ---------------------------------------------------------------- models


def _models(c: _Checker, raw: Any, data: DataSpec, folder: str) -> dict[str, ModelSpec]:
    if raw is None or raw == {}:
        raise c.fail("[models]", 'missing; define at least one, e.g. [models.lenet5] arch = "lenet5"')
    if not isinstance(raw, dict):
        raise c.fail("[models]", "must be a table of named models")
    return {name: _model(c, name, table, data, folder) for name, table in raw.items()}


def _model(c: _Checker, name: str, table: Any, data: DataSpec, folder: str) -> ModelSpec:
    where = f"[models.{name}]"
    if "." in name:
        raise c.fail(where, "a model's name cannot hold a dot (grid axes write MODEL.LAYER.FIELD)")
    values = c.table(where, table, MODEL_KEYS)
    given = [k for k in ARCH_KEYS if k in values]
    if len(given) != 1:
        what = "missing" if not given else f"gives {' and '.join(given)}"
        raise c.fail(where, f"{what}; give exactly one of arch = {choices_text(ARCHS)}, "
                            "layers = [...] or target = \"module:attribute\"")
    defaults = tuple((k, v) for k, v in values.items() if k in REGULARIZERS)
    known = dataset_shape(data)  # None for user data: checked once it is loaded (Spec.bind)
    shape, classes = known or ((1, 28, 28), 10)
    if "target" in values:
        return _target_model(c, where, name, values, defaults, folder)
    for k in ("args",):
        if k in values:
            raise c.fail(f"{where}.{k}", "only a model with target = \"module:attribute\" takes args")
    if "hidden" in values and values.get("arch") != "mlp":
        raise c.fail(f"{where}.hidden", f'only an "mlp" has hidden widths, this is '
                                        f'{_show(values.get("arch", "a layer list"))}')
    hidden = tuple(values.get("hidden", MLP_HIDDEN))
    act = values.get("act", "relu")
    inp = _input(c, f"{where}.input", values.get("input"))
    if "arch" in values:
        arch, layers = values["arch"], preset_layers(values["arch"], hidden, classes)
    else:
        arch, layers = "layers", _layers(c, f"{where}.layers", values["layers"])
    model = ModelSpec(name, arch, hidden, defaults, layers, act, inp)
    if known:
        _check_shapes(c, where, model, shape, classes)
    return model


def _locate(c: _Checker, where: str, target: str, folder: str) -> Path:
    """The source file of a "module:attribute" target, found without running it."""
    if not TARGET.fullmatch(target):  # match would take a trailing newline
        raise c.fail(where, f'{_show(target)} is not "module:attribute", e.g. "mynet:Net"')
    try:
        path = locate(target, folder)
    except OSError as e:  # e.g. a module name longer than a file name may be
        raise c.fail(where, f"{_show(target)}: cannot look for its module: {e.strerror}") from None
    if path is None:
        module = target.partition(":")[0]
        raise c.fail(where, f"no module {module} in {folder or 'the current folder'} nor on the "
                            f"Python path: put {module.replace('.', '/')}.py beside the spec")
    return path


def _plain(c: _Checker, where: str, args: dict) -> None:
    """Keyword arguments must be plain values (they are hashed as JSON)."""
    for k, v in args.items():
        if not isinstance(v, (bool, int, float, str, list)):
            raise c.fail(f"{where}.{k}", f"{_show(v)} is not a plain value (number, string, boolean, list)")
        items = [v]
        while items:  # a date or time in a list cannot be hashed (JSON) either; walked without recursion
            x = items.pop()
            if isinstance(x, (date, time)):  # datetime is a date
                raise c.fail(f"{where}.{k}", f"{_show(x)} in a list is not a plain value (number, string, "
                                             "boolean, list)")
            items += x if isinstance(x, list) else x.values() if isinstance(x, dict) else ()


def _target_model(c: _Checker, where: str, name: str, values: dict, defaults: tuple, folder: str) -> ModelSpec:
    for k in ("hidden", "act", "input"):
        if k in values:
            raise c.fail(f"{where}.{k}", f"a model with target = {_show(values['target'])} takes no {k}; "
                                         "pass settings of your module in args")
    target = values["target"]
    path = _locate(c, f"{where}.target", target, folder)
    args = values.get("args", {})
    _plain(c, f"{where}.args", args)
    return ModelSpec(name, "target", MLP_HIDDEN, defaults, target=target, args=tuple(args.items()),
                     search_dir=folder, source=str(path), source_sha256=source_sha256(path))


def _input(c: _Checker, where: str, raw: Any) -> InputTransform:
    if raw is None:
        return InputTransform()
    values = c.table(where, raw, INPUT_KEYS)
    if len(values) != 1:
        raise c.fail(where, "give one of { pad = N } or { resize = N }")
    return InputTransform(**values)


def _layers(c: _Checker, where: str, raw: list) -> tuple[Layer, ...]:
    if not raw:
        raise c.fail(where, "is empty; a model needs at least its output layer, e.g. { fc = 10 }")
    layers, names = [], set()
    all_keys = list(dict.fromkeys(k for keys in LAYER_KEYS.values() for k in keys))
    for i, table in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(table, dict):
            raise c.fail(at, f"{_show(table)} is not a layer table, e.g. {{ conv = 6, k = 5 }}")
        kinds = [k for k in KINDS if k in table]
        if len(kinds) != 1:
            for k in table:
                if k not in all_keys:
                    raise c.unknown(at, k, all_keys)
            what = "no kind" if not kinds else f"two kinds ({' and '.join(kinds)})"
            raise c.fail(at, f"has {what}; a layer is one of {{ conv = N, k = K }}, "
                             f"{{ pool = {choices_text(tuple(LAYER_KEYS['pool']['pool'].choices))}, k = K }}, {{ fc = N }}")
        kind = kinds[0]
        values = c.table(at, table, LAYER_KEYS[kind])
        for k in REQUIRED[kind]:
            if k not in values:
                raise c.fail(at, f"a {kind} layer needs {k} (e.g. {{ {kind} = {_show(values[kind])}, {k} = 5 }})")
        layer = Layer.of(kind, **values)
        name = _name(layer, i)
        if name in names:
            raise c.fail(f"{at}.name", f"{_show(name)} names two layers")
        names.add(name)
        layers.append(layer)
    return tuple(layers)


def _check_shapes(c: _Checker, where: str, model: ModelSpec, shape: tuple, classes: int, context: str = "") -> None:
    in_shape = model.input.shape(shape)
    try:
        infer_shapes(model.layers, in_shape, classes)
    except LayerError as e:
        if e.index < 0:
            raise c.fail(f"{where}.layers", f"{e}{context}") from None
        layer = model.layers[e.index]
        raise c.fail(f"{where}.layers[{e.index}] ({_name(layer, e.index)})", f"{e}{context}") from None


# ---------------------------------------------------------------- axes


def _layer_axis(c: _Checker, where: str, axis: str, models: dict[str, ModelSpec]) -> tuple[ModelSpec, Layer]:
    """The model and layer a "MODEL.LAYER.FIELD" axis names, or a one-line error naming what exists."""
    model_name, layer_name, key = axis.split(".")
    if model_name not in models:
        near = difflib.get_close_matches(model_name, list(models), n=1)
        hint = f'; did you mean "{near[0]}"?' if near else ""
        raise c.fail(where, f"unknown model \"{model_name}\" in {axis}: defined are {', '.join(models)}{hint}")
    model = models[model_name]
    if not model.layers:
        raise c.fail(where, f"{model_name} is a user's module ({model.target}): it has no declared layers to vary; "
                            "vary its args in separate models")
    names = [_name(layer, i) for i, layer in enumerate(model.layers)]
    if layer_name not in names:
        near = difflib.get_close_matches(layer_name, names, n=1)
        hint = f'; did you mean "{near[0]}"?' if near else ""
        raise c.fail(where, f"{model_name} has no layer \"{layer_name}\": its layers are {', '.join(names)}{hint}")
    layer = model.layers[names.index(layer_name)]
    if key not in AXIS_FIELDS[layer.kind]:
        raise c.unknown(where, key, list(AXIS_FIELDS[layer.kind]), f"{layer.kind} field")
    return model, layer


def _axis_value(c: _Checker, where: str, axis: str, v: Any, models: dict[str, ModelSpec]) -> Any:
    if axis == "model":
        if not isinstance(v, str) or v not in models:
            near = difflib.get_close_matches(str(v), list(models), n=1)
            hint = f'; did you mean "{near[0]}"?' if near else ""
            raise c.fail(where, f"unknown model {_show(v)}: defined are {', '.join(models)}{hint}")
        return v
    if is_layer_axis(axis):
        _, layer = _layer_axis(c, where, axis, models)
        return c.value(where, LAYER_KEYS[layer.kind][axis.split(".")[2]], v)
    key = REGULARIZERS.get(axis) or TRAIN_KEYS[axis]
    return c.value(where, key, v)


def _check_axis_name(c: _Checker, where: str, axis: str, models: dict[str, ModelSpec]) -> None:
    if is_layer_axis(axis):
        _layer_axis(c, f"{where}.{axis}" if where == "[grid]" else where, axis, models)
    elif axis not in AXES:
        raise c.unknown(where, axis, [*AXES, "MODEL.LAYER.FIELD"])


def _grid(c: _Checker, raw: Any, models: dict[str, ModelSpec]) -> tuple:
    if not isinstance(raw, dict):
        raise c.fail("[grid]", "must be a table of axis = [values]")
    grid = []
    for axis, values in raw.items():
        where = f"[grid].{axis}"
        _check_axis_name(c, "[grid]", axis, models)
        if not isinstance(values, list):
            raise c.fail(where, f"{_show(values)} is not a list; write {axis} = [{_show(values)}]")
        if not values:
            raise c.fail(where, "is an empty list: the grid would have no points")
        checked = tuple(_axis_value(c, where, axis, v, models) for v in values)
        if len(set(map(repr, checked))) != len(checked):
            raise c.fail(where, f"{_show(values)} repeats a value")
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
            _check_axis_name(c, where, k, models)
        if "model" not in run and len(models) > 1:
            raise c.fail(f"{where}.model", f"missing; which of {', '.join(models)}?")
        model = run.get("model", next(iter(models)))
        for k in run:
            if is_layer_axis(k) and k.split(".")[0] != model:
                raise c.fail(f"{where}.{k}", f"names a layer of {k.split('.')[0]}, but this run trains {model}")
        runs.append(tuple((k, _axis_value(c, f"{where}.{k}", k, v, models)) for k, v in run.items()))
    return tuple(runs)


def _check_points(c: _Checker, spec: Spec) -> None:
    """Every point's layers fit the data, with its layer-field axes applied."""
    known = dataset_shape(spec.data)
    if known is None:  # user data: Spec.bind checks once it is loaded
        return
    shape, classes = known
    if spec.data.bound is not None:  # every model's own layers too: the data's shape is new to them
        for name, model in spec.models.items():
            if model.layers:
                _check_shapes(c, f"[models.{name}]", model, shape, classes, f" (the data's images are {shape})")
    for setting in spec.settings():
        point = spec.point(setting, spec.study.seeds[0])
        changed = [f"{a} = {_show(v)}" for a, v in point.axes if is_layer_axis(a)]
        if changed:
            _check_shapes(c, f"[models.{point.model.name}]", point.model, shape, classes,
                          f" (with {', '.join(changed)})")
