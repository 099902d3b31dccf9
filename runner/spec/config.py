"""A spec as frozen dataclasses, and its expansion into points (runner.spec.point): one trial each."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from runner.design import one_at_a_time
from runner.design.fractional import Design
from runner.models.layers import Layer, LayerError, default_name, infer_shapes
from runner.models.presets import PRESETS, preset_layers
from runner.models.user import REGULARIZER_ARGS
from runner.spec import designs
from runner.spec.check import Checker, show_value
from runner.spec.point import DataSpec, ModelSpec, Point, TrainConfig, dataset_shape
from runner.text import plural, toml_value
from runner.spec.grammar import METRICS, REGULARIZERS, TRAIN_KEYS
from runner.spec.study import StudySpec

__all__ = ["StudySpec", "Dimension", "SearchSpec", "Spec", "is_layer_axis", "layer_index", "layer_name",
           "check_shapes", "check_points"]


def is_layer_axis(axis: str) -> bool:
    """Whether an axis names a layer field, "MODEL.LAYER.FIELD"."""
    return axis.count(".") == 2


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
    top: int  # candidates trained again with every seed; the best mean validation metric is tested
    seed: int
    max_params: int  # 0 = no cap
    space: tuple[Dimension, ...]
    warmup_epochs: int = 2  # epochs before the pruner may stop a trial
    patience: int = 0  # epochs below the median tolerated (PatientPruner); 0 = the plain median pruner
    refit: bool = True  # the confirmation trains on train + validation
    start_from: tuple[str, ...] = ()  # studies whose best configurations are enqueued first
    enqueue: tuple[tuple[tuple[str, Any], ...], ...] = ()  # given points, enqueued first, in order

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
    tested: bool = True  # False: the test split is never evaluated (a search's selection stage)
    grid_design: str | int = "full"  # [grid].design: "full" | "half" | "one-at-a-time" | a resolution (3 or more)
    across: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # [grid].across: crossed with a one-at-a-time design
    run_roles: tuple[str, ...] = ()  # each [[runs]] entry's: "" | "baseline" | "tuned" (empty: all "")
    run_labels: tuple[str, ...] = ()  # each [[runs]] entry's label (its comparison's name)

    @property
    def against_baseline(self) -> bool:
        """Whether settings are compared with a baseline: design = "one-at-a-time", or a [[runs]] baseline."""
        return self.grid_design == one_at_a_time.NAME or "baseline" in self.run_roles

    def _roles(self) -> list[str]:
        return list(self.run_roles) or [""] * len(self.runs)

    def _labels(self) -> list[str]:
        return list(self.run_labels) or [" + ".join(f"{k}={toml_value(v)}" for k, v in r if k != "model")
                                         for r in self.runs]

    def comparisons(self) -> list[one_at_a_time.Comparison]:
        """Each setting against its baseline at the same budget (none unless `against_baseline`), every setting
        as `settings` gives it (axes that do not apply to its model dropped)."""
        if not self.against_baseline:
            return []
        first = next(iter(self.models))
        model_of = lambda s: s.get("model", first)  # noqa: E731
        out = one_at_a_time.comparisons(self.grid, self.across, [dict(r) for r in self.runs], self._roles(),
                                        self._labels(), model_of, set(TRAIN_KEYS))
        return [replace(c, setting=self._run_setting(c.setting), baseline=self._run_setting(c.baseline)) for c in out]

    def tuned_baseline(self) -> dict[str, Any] | None:
        """The [[runs]] entry marked baseline = "tuned", as a setting; None without one."""
        return next((self._run_setting(dict(r)) for r, role in zip(self.runs, self._roles()) if role == "tuned"), None)

    def settings(self) -> list[dict[str, Any]]:
        """Every grid point and run, without seeds, in order, duplicates removed.

        A layer-field axis applies to its own model only: for another model's points it is dropped.
        """
        return list(self.iter_settings())

    def iter_settings(self, only: set[str] | None = None) -> Iterator[dict[str, Any]]:
        """The settings one by one, in order (see `settings`); with `only`, of those axes alone (and the
        model): fewer settings, for checks that depend on those axes only."""
        seen: set[str] = set()

        def new(s: dict[str, Any]) -> bool:
            key = json.dumps(s, sort_keys=True)
            if key in seen:
                return False
            seen.add(key)
            return True

        keep = lambda k: only is None or k == "model" or k in only  # noqa: E731
        if self.against_baseline:  # the baseline, each change alone, the runs: every one crossed with across
            for s in one_at_a_time.settings(self.grid, self.across, [dict(r) for r in self.runs], self._roles()):
                s = self._run_setting(s, keep)
                if new(s):
                    yield s
            return
        for s in self.grid_settings(only):
            if new(s):
                yield s
        for r in self.runs:  # a run asks for its values: a module that cannot take one is refused
            s = self._run_setting(dict(r), keep)
            if new(s):
                yield s

    def grid_settings(self, only: set[str] | None = None) -> Iterator[dict[str, Any]]:
        """The grid's settings in the full grid's order (a fraction's runs among them), not deduplicated; with
        `only`, of those axes alone (and the model)."""
        if not self.grid:
            return
        first = next(iter(self.models))
        keep = lambda k: only is None or k == "model" or k in only  # noqa: E731
        d = self.fraction()
        if d is None:  # the product of the kept axes only: a check of a few axes need not walk a large grid
            grid = [(k, v) for k, v in self.grid if keep(k)]
            names, rows = [k for k, _ in grid], itertools.product(*(v for _, v in grid))
        else:
            names, rows = [k for k, _ in self.grid], designs.fraction_rows(self.grid, d)
        for values in rows:
            setting = dict(zip(names, values))
            model = setting.get("model", first)
            yield {k: v for k, v in setting.items() if keep(k) and self._applies(model, k)}

    def fraction(self) -> Design | None:
        """The two-level design whose runs are a fractional grid's settings; None for the full grid (a DesignError,
        one line, for a grid no two-level design fits: see designs.fraction)."""
        return designs.fraction(self.grid, self.grid_design, self._grid_models(), self._applies)

    @property
    def design_text(self) -> str:
        """[grid].design as the spec writes it: "full", "half" or { resolution = 4 }."""
        return designs.design_text(self.grid_design)

    def design_lines(self) -> list[str]:
        """A fractional grid in words, one line each: what it runs, then each aliased set once (none: a full grid)."""
        return designs.design_lines(self.fraction(), self.grid_design)

    def _applies(self, model: str, axis: str) -> bool:
        """Whether a grid axis applies to a model: not another model's layer field, nor a regularizer that is
        the model's own (a user's module that takes no such argument)."""
        return not (is_layer_axis(axis) and axis.split(".")[0] != model) and not self.models[model].own(axis)

    def _run_setting(self, run: dict[str, Any], keep: Any = lambda k: True) -> dict[str, Any]:
        """A [[runs]] entry as a setting: another model's layer fields dropped, and a regularizer left off that
        its module cannot take (it says nothing)."""
        name = run.get("model", next(iter(self.models)))
        model = self.models[name]
        return {k: v for k, v in run.items() if keep(k) and not (is_layer_axis(k) and k.split(".")[0] != name)
                and not (model.own(k) and v == REGULARIZERS[k].default)}

    def setting_count(self) -> int:
        """len(self.settings()), computed from the axes' lengths without enumerating them."""
        if self.against_baseline:  # a sum, not a product: few enough to list
            return len(self.settings())
        d = self.fraction()
        first = next(iter(self.models))
        if d is not None:  # one model, every factor its: each of its runs is one setting; [[runs]] beside it
            fraction = {json.dumps(s, sort_keys=True) for s in self.grid_settings()}
            return len(d.signs) + len({k for r in self.runs
                                       if (k := json.dumps(self._run_setting(dict(r)), sort_keys=True)) not in fraction})
        grid = {k: list(dict.fromkeys(json.dumps(x, sort_keys=True) for x in v)) for k, v in self.grid}
        models = [json.loads(m) for m in grid["model"]] if "model" in grid else [first]
        total = 0
        if self.grid:
            for m in models:
                n = 1
                for axis, values in grid.items():
                    if axis != "model" and self._applies(m, axis):
                        n *= len(values)
                total += n
        seen = set()
        for r in self.runs:
            s = self._run_setting(dict(r))
            key = json.dumps(s, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            m = s.get("model", first)
            names = {a for a in grid if self._applies(m, a)}
            in_grid = bool(self.grid) and m in models and set(s) == names and all(
                json.dumps(v, sort_keys=True) in grid[a] for a, v in s.items())
            total += not in_grid
        return total

    def point_count(self) -> int:
        """len(self.points()), without enumerating them (but for racing's rounds)."""
        if self.study.race:
            return len(self.points())
        return self.setting_count() * len(self.study.seeds)

    def _grid_models(self) -> list[str]:
        """The models the grid crosses its axes with: its model axis's distinct values, else the first model."""
        return list(dict.fromkeys(dict(self.grid).get("model", [next(iter(self.models))])))

    def grid_factors(self) -> str:
        """What multiplies a grid's point count: "lr 10 x dropout 10 x ... x 10 seeds"; an axis that applies to
        no model is left out, and where an axis applies to some models only, each model's own product:
        "lenet: lenet.c1.out 3 x lr 2 + mlp: lr 2, each x 2 seeds"."""
        models = self._grid_models()
        sizes = [(a, len({json.dumps(x, sort_keys=True) for x in v})) for a, v in self.grid if a != "model"]
        sizes = [(a, n) for a, n in sizes if n > 1]
        applies = {a: [m for m in models if self._applies(m, a)] for a, _ in sizes}
        seeds = plural(len(self.study.seeds), "seed")
        runs = f" + {plural(len(self.runs), 'run')}" if self.runs else ""
        if self.against_baseline:
            across = "".join(f" x {a} {len(v)}" for a, v in self.across)
            return f"{plural(self.setting_count(), 'setting')} one at a time against the baseline{across}, x {seeds}"
        d = self.fraction()
        if d is not None and d.words:  # a fraction: its factors do not multiply to its settings
            p = len(d.words).bit_length()
            return (f"a 2^({len(d.factors)}-{p}) fraction of " + " x ".join(f"{a} 2" for a in d.factors)
                    + f", x {seeds}" + runs)
        if all(len(ms) in (0, len(models)) for ms in applies.values()):
            parts = [f"model {len(models)}" if a == "model" else f"{a} {dict(sizes)[a]}" for a, _ in self.grid
                     if (a == "model" and len(models) > 1) or (a in applies and applies[a])]
            return " x ".join([*parts, seeds]) + runs
        each = [f"{m}: " + (" x ".join(f"{a} {n}" for a, n in sizes if m in applies[a]) or "1") for m in models]
        return " + ".join(each) + f", each x {seeds}" + runs

    def inert_axes(self) -> list[str]:
        """One line per [grid] axis that applies to no model of the grid (every one a user's module whose
        constructor takes no such argument), saying why it adds no point."""
        models = self._grid_models()
        lines = []
        for axis, values in self.grid:
            if axis == "model" or any(self._applies(m, axis) for m in models):
                continue
            names = [f"{m} ({self.models[m].target})" for m in models]
            who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            lines.append(f"{self.path}: [grid].{axis} applies to no model: {who} take{'s' if len(names) == 1 else ''} "
                         f"no {axis} argument (read from the constructor's signature), so each keeps its own "
                         f"{axis}; the axis adds no point and is not in the trials' labels")
        return lines

    def points(self) -> list[Point]:
        """Every (setting, seed), seed-major so that a partial run covers every setting once."""
        settings = self.settings()
        out = [self.point(s, seed) for seed in self.study.seeds for s in settings]
        race = self.study.race
        return [p for p in out if p.seed not in race or p.setting_key in race[p.seed]]

    def model_points(self) -> list[Point]:
        """The points that stand for the spec's models: one per setting of the axes that change a model (its
        layer fields and regularizers), or for a search (which has none of its own) each model's default,
        whose checks cover the configurations it samples."""
        changing = {a for a in self.axis_names if is_layer_axis(a) or a in REGULARIZER_ARGS}
        seed = self.study.seeds[0]
        return [self.point(s, seed) for s in self.iter_settings(changing)] or \
            [self.point({"model": m}, seed) for m in self.models]

    def point(self, setting: dict[str, Any], seed: int) -> Point:
        """Resolve one setting: setting > model defaults > registry defaults."""
        name = setting.get("model") or next(iter(self.models))
        model = self.models[name]
        regs = {k: key.default for k, key in REGULARIZERS.items()}
        regs.update(dict(model.defaults))
        regs.update({k: v for k, v in setting.items() if k in REGULARIZERS})
        train = replace(self.train, **{k: v for k, v in setting.items() if k in TRAIN_KEYS})  # its teacher kept whole
        layers = list(model.layers)
        axes = []
        for a in self.axis_names:
            if a in REGULARIZERS:
                if not (model.own(a) and regs[a] == REGULARIZERS[a].default):  # off, and not the module's to say
                    axes.append((a, regs[a]))
            elif a in TRAIN_KEYS:
                axes.append((a, getattr(train, a)))
            elif a.split(".")[0] == name:  # a layer field of this point's model
                _, name_of_layer, key = a.split(".")
                i = layer_index(model, name_of_layer)
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
        check_points(Checker(self.path), spec)
        return spec


def layer_index(model: ModelSpec, name: str) -> int:
    """The position of the model's layer called `name`."""
    return next(i for i, layer in enumerate(model.layers) if layer_name(layer, i) == name)


def layer_name(layer: Layer, i: int) -> str:
    """A layer's name: its own, or its kind and position (conv1)."""
    return layer.name or default_name(layer.kind, i)


def check_shapes(c: Checker, where: str, model: ModelSpec, shape: tuple, classes: int, context: str = "") -> None:
    """The model's layers fit images of `shape` and end in `classes` outputs; else a SpecError naming the layer."""
    in_shape = model.input.shape(shape)
    try:
        infer_shapes(model.layers, in_shape, classes)
    except LayerError as e:
        if e.index < 0:
            raise c.fail(f"{where}.layers", f"{e}{context}") from None
        layer = model.layers[e.index]
        raise c.fail(f"{where}.layers[{e.index}] ({layer_name(layer, e.index)})", f"{e}{context}") from None


def check_points(c: Checker, spec: Spec) -> None:
    """Every point's layers fit the data, with its layer-field axes applied."""
    known = dataset_shape(spec.data)
    if known is None:  # user data: Spec.bind checks once it is loaded
        return
    shape, classes = known
    if spec.data.bound is not None:  # every model's own layers too: the data's shape is new to them
        for name, model in spec.models.items():
            if model.layers:
                check_shapes(c, f"[models.{name}]", model, shape, classes, f" (the data's images are {shape})")
    for setting in spec.iter_settings({a for a in spec.axis_names if is_layer_axis(a)}):
        point = spec.point(setting, spec.study.seeds[0])
        changed = [f"{a} = {show_value(v)}" for a, v in point.axes if is_layer_axis(a)]
        if changed:
            check_shapes(c, f"[models.{point.model.name}]", point.model, shape, classes,
                          f" (with {', '.join(changed)})")
