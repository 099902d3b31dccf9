"""Read a TOML spec and check every section: load_spec and parse_spec, with one-line errors.

Each problem is a SpecError naming the file, the key, the value and what is allowed, raised
before anything runs and before the storage is touched.
"""
from __future__ import annotations

import tomllib
import warnings
from dataclasses import replace
from datetime import date, time
from pathlib import Path
from typing import Any

from runner.design.fractional import DesignError
from runner.design.one_at_a_time import NAME as ONE_AT_A_TIME
from runner.errors import SpecError, read_text
from runner.keys import choices_text
from runner.models.layers import INPUT_KEYS, KINDS, LAYER_KEYS, REQUIRED, InputTransform, Layer
from runner.models.presets import MLP_HIDDEN, preset_layers
from runner.models.user import REGULARIZER_ARGS
from runner.spec.axes import axis_value, check_axis_name
from runner.spec.check import Checker, show_value
from runner.spec.config import Spec, check_points, check_shapes, is_layer_axis, layer_name
from runner.spec.grammar import (ARCH_KEYS, ARCHS, AXES, DATA_KEYS, DATASETS, GRID_KEYS, LATER_REGULARIZERS,
                                 MODEL_KEYS, REGULARIZERS, RESOLUTION_KEYS, ROUNDS_KEYS, RUN_KEYS, SECTIONS,
                                 STUDY_KEYS, TRAIN_KEYS)
from runner.spec.point import DataSpec, ModelSpec, TrainConfig, dataset_shape
from runner.spec.search import parse_search
from runner.spec.teacher import parse_teacher
from runner.spec.study import Rounds, StudySpec
from runner.text import toml_value
from runner.usercode import TARGET, declared_parameters, locate, source_sha256, structure_sha256

__all__ = ["load_spec", "parse_spec"]


def load_spec(path: str | Path, missing_code_ok: bool = False, storage: str | None = None) -> Spec:
    """Read and validate a spec file; raise SpecError with one line on any problem.

    Args:
        missing_code_ok: for commands that only read stored results (`runner report`): a user's
            module or data file that is not found leaves its SHA-256 empty instead of failing.
        storage: where a [train].teacher's study is (the command's --storage; None: the default).
    """
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
    return parse_spec(raw, str(path), missing_code_ok, storage)


def parse_spec(raw: dict[str, Any], path: str = "<spec>", missing_code_ok: bool = False,
               storage: str | None = None) -> Spec:
    """Validate an already-parsed TOML document (`storage`: where a [train].teacher's study is)."""
    c = Checker(path, missing_code_ok)
    for k in raw:
        if k not in SECTIONS:
            raise c.unknown("top level", k, list(SECTIONS))
    if "study" not in raw:
        raise c.fail("[study]", "missing; it needs at least name = \"...\"")
    raw_study = raw["study"]
    rounds = None
    if isinstance(raw_study, dict) and isinstance(raw_study.get("seeds"), dict):
        rounds = _rounds(c, raw_study["seeds"])
        raw_study = {k: v for k, v in raw_study.items() if k != "seeds"}
    study = c.table("[study]", raw_study, STUDY_KEYS)
    if "name" not in study:
        raise c.fail("[study].name", "missing; give the study a name")
    seeds = tuple(range(rounds.first)) if rounds else study.get("seeds", STUDY_KEYS["seeds"].default)
    if len(set(seeds)) != len(seeds):
        raise c.fail("[study].seeds", f"{seeds} repeats a seed")
    study_spec = StudySpec(study["name"], study.get("description", ""), tuple(seeds),
                           study.get("metric", "test_acc"), study.get("keep", "all"), rounds, test=study.get("test", "open"))
    if study_spec.locked and not study_spec.metric.startswith("val_"):
        raise c.fail("[study].metric", f'"{study_spec.metric}" reads the test set, and [study].test = "locked": '
                                       'use "val_acc" or "val_loss" (with [data].val_fraction)')
    raw_train = raw.get("train", {})
    train = TrainConfig(**c.table("[train]", raw_train, TRAIN_KEYS, extra=("teacher",)))
    folder = str(Path(path).resolve().parent) if path != "<spec>" else ""
    data = _data(c, raw.get("data", {}), folder)
    if "teacher" in raw_train:
        train = replace(train, teacher=parse_teacher(c, raw_train["teacher"], folder, data, storage))
    if study_spec.metric.startswith("val_") and not data.val_fraction:
        raise c.fail("[study].metric", f'"{study_spec.metric}" needs a validation split: set [data].val_fraction '
                                       "(e.g. 0.1) to hold out part of the training images")
    models = _models(c, raw.get("models"), data, folder)
    grid, design, across = _grid(c, raw.get("grid", {}), models)
    runs, roles, labels = _runs(c, raw.get("runs", []), models)
    _check_baselines(c, design, grid, roles)
    search = parse_search(c, raw["search"], models, data) if "search" in raw else None
    _check_distillation(c, train, grid, runs, search)
    if not grid and not runs and search is None:
        raise c.fail("[grid]", "nothing to run: give at least one axis list in [grid] or one [[runs]] entry, "
                               "or a [search]")
    varied = {k for k, _ in grid} | {k for r in runs for k, _ in r} | {k for k, _ in across}
    varied |= {d.axis for d in search.space} if search else set()
    varied |= {k for m in models.values() for k, _ in m.defaults}
    layer_axes = [k for k in [*(k for k, _ in grid), *(k for k, _ in across), *(k for r in runs for k, _ in r),
                              *(d.axis for d in (search.space if search else ()))] if is_layer_axis(k)]
    always = [a for a in REGULARIZERS if a not in LATER_REGULARIZERS]  # a later one only where it is set
    axis_names = tuple(a for a in AXES if a != "model" and (a in always or a in varied))
    axis_names += tuple(dict.fromkeys(layer_axes))
    spec = Spec(path, study_spec, data, train, models, grid, runs, axis_names, search, tested=not study_spec.locked,
                grid_design=design, across=across, run_roles=roles, run_labels=labels)
    try:
        spec.fraction()  # a two-level design that cannot be built, or a grid it does not fit
    except DesignError as e:
        raise c.fail("[grid].design", str(e)) from None
    _check_rounds(c, spec)
    check_points(c, spec)
    for line in spec.inert_axes():  # not an error: the spec runs, and says what the axis does not do
        warnings.warn(line, stacklevel=2)
    return spec


def _data(c: Checker, raw: Any, folder: str) -> DataSpec:
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
                        source_sha256(path) if path else "")
    if "args" in values:
        raise c.fail("[data].args", "only [data].target takes args")
    dataset = values.get("dataset", "mnist")
    _, _, mean, std = DATASETS[dataset]
    return DataSpec(dataset, values.get("root", ""), values.get("train_limit", 0), values.get("test_limit", 0),
                    values.get("mean", "auto" if mean is None else mean), values.get("std", "auto" if std is None else std),
                    values.get("val_fraction", 0.0), values.get("val_seed", 0))


def _models(c: Checker, raw: Any, data: DataSpec, folder: str) -> dict[str, ModelSpec]:
    if raw is None or raw == {}:
        raise c.fail("[models]", 'missing; define at least one, e.g. [models.lenet5] arch = "lenet5"')
    if not isinstance(raw, dict):
        raise c.fail("[models]", "must be a table of named models")
    return {name: _model(c, name, table, data, folder) for name, table in raw.items()}


def _model(c: Checker, name: str, table: Any, data: DataSpec, folder: str) -> ModelSpec:
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
    compare = values.get("compare", "")
    if compare and values.get("arch", compare) != compare:
        raise c.fail(f"{where}.compare", f'{show_value(compare)} for an arch = {show_value(values["arch"])} model: '
                                         "a preset is compared as itself; leave compare out")
    known = dataset_shape(data)  # None for user data: checked once it is loaded (Spec.bind)
    shape, classes = known or ((1, 28, 28), 10)
    if "target" in values:
        return replace(_target_model(c, where, name, values, defaults, folder), compare=compare)
    for k in ("args",):
        if k in values:
            raise c.fail(f"{where}.{k}", "only a model with target = \"module:attribute\" takes args")
    if "hidden" in values and values.get("arch") != "mlp":
        raise c.fail(f"{where}.hidden", f'only an "mlp" has hidden widths, this is '
                                        f'{show_value(values.get("arch", "a layer list"))}')
    hidden = tuple(values.get("hidden", MLP_HIDDEN))
    act = values.get("act", "relu")
    inp = _input(c, f"{where}.input", values.get("input"))
    if "arch" in values:
        arch, layers = values["arch"], preset_layers(values["arch"], hidden, classes)
    else:
        arch, layers = "layers", _layers(c, f"{where}.layers", values["layers"])
    model = ModelSpec(name, arch, hidden, defaults, layers, act, inp, compare=compare)
    if known:
        check_shapes(c, where, model, shape, classes)
    return model


def _locate(c: Checker, where: str, target: str, folder: str) -> Path | None:
    """The source file of a "module:attribute" target, found without running it (None: not found, and
    the caller only reads stored results)."""
    if not TARGET.fullmatch(target):  # match would take a trailing newline
        raise c.fail(where, f'{show_value(target)} is not "module:attribute", e.g. "mynet:Net"')
    try:
        path = locate(target, folder)
    except OSError as e:  # e.g. a module name longer than a file name may be
        raise c.fail(where, f"{show_value(target)}: cannot look for its module: {e.strerror}") from None
    if path is None and c.missing_code_ok:
        return None
    if path is None:
        module = target.partition(":")[0]
        raise c.fail(where, f"no module {module} in {folder or 'the current folder'} nor on the "
                            f"Python path: put {module.replace('.', '/')}.py beside the spec")
    return path


def _plain(c: Checker, where: str, args: dict) -> None:
    """Keyword arguments must be plain values (they are hashed as JSON)."""
    for k, v in args.items():
        if not isinstance(v, (bool, int, float, str, list)):
            raise c.fail(f"{where}.{k}", f"{show_value(v)} is not a plain value (number, string, boolean, list)")
        items = [v]
        while items:  # a date or time in a list cannot be hashed (JSON) either; walked without recursion
            x = items.pop()
            if isinstance(x, (date, time)):  # datetime is a date
                raise c.fail(f"{where}.{k}", f"{show_value(x)} in a list is not a plain value (number, string, "
                                             "boolean, list)")
            items += x if isinstance(x, list) else x.values() if isinstance(x, dict) else ()


def _target_model(c: Checker, where: str, name: str, values: dict, defaults: tuple, folder: str) -> ModelSpec:
    for k in ("hidden", "act"):
        if k in values:
            raise c.fail(f"{where}.{k}", f"a model with target = {show_value(values['target'])} takes no {k}; "
                                         "pass settings of your module in args")
    target = values["target"]
    path = _locate(c, f"{where}.target", target, folder)
    args = values.get("args", {})
    _plain(c, f"{where}.args", args)
    inp = _input(c, f"{where}.input", values.get("input"))  # a 32x32 LeNet5 of the user's: { pad = 2 }
    declared = declared_parameters(path, target) if path else None
    takes = None if declared is None else tuple(r for r in REGULARIZER_ARGS if r in declared)
    return ModelSpec(name, "target", MLP_HIDDEN, defaults, input=inp, target=target, args=tuple(args.items()),
                     search_dir=folder, source=str(path) if path else "",
                     source_sha256=source_sha256(path) if path else "",
                     source_structure=structure_sha256(path) if path else "", takes=takes)


def _input(c: Checker, where: str, raw: Any) -> InputTransform:
    if raw is None:
        return InputTransform()
    values = c.table(where, raw, INPUT_KEYS)
    if len(values) != 1:
        raise c.fail(where, "give one of { pad = N } or { resize = N }")
    return InputTransform(**values)


def _layers(c: Checker, where: str, raw: list) -> tuple[Layer, ...]:
    if not raw:
        raise c.fail(where, "is empty; a model needs at least its output layer, e.g. { fc = 10 }")
    layers, names = [], set()
    all_keys = list(dict.fromkeys(k for keys in LAYER_KEYS.values() for k in keys))
    for i, table in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(table, dict):
            raise c.fail(at, f"{show_value(table)} is not a layer table, e.g. {{ conv = 6, k = 5 }}")
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
                raise c.fail(at, f"a {kind} layer needs {k} (e.g. {{ {kind} = {show_value(values[kind])}, {k} = 5 }})")
        layer = Layer.of(kind, **values)
        name = layer_name(layer, i)
        if name in names:
            raise c.fail(f"{at}.name", f"{show_value(name)} names two layers")
        names.add(name)
        layers.append(layer)
    return tuple(layers)


def _grid(c: Checker, raw: Any, models: dict[str, ModelSpec]) -> tuple[tuple, str | int, tuple]:
    """(axis -> values in file order, [grid].design, [grid].across's axis -> values)."""
    if not isinstance(raw, dict):
        raise c.fail("[grid]", "must be a table of axis = [values]")
    design = _design(c, raw.get("design", GRID_KEYS["design"].default))
    grid = _axis_lists(c, "[grid]", {k: v for k, v in raw.items() if k not in GRID_KEYS}, models)
    across = ()
    if "across" in raw:
        if design != ONE_AT_A_TIME:
            raise c.fail("[grid].across", f'crosses axes with design = "{ONE_AT_A_TIME}"; in a {design} grid, list '
                                          "those axes in [grid] itself")
        if not isinstance(raw["across"], dict) or not raw["across"]:
            raise c.fail("[grid].across", "must be a table of axis = [values], e.g. { lr = [0.01, 0.05] }")
        across = _axis_lists(c, "[grid].across", raw["across"], models)
        both = [a for a, _ in across if a in dict(grid)]
        if both:
            raise c.fail(f"[grid].across.{both[0]}", "is also a [grid] axis: an axis is either compared (in [grid]) "
                                                     "or crossed (in across)")
    if design == ONE_AT_A_TIME and len(dict(grid).get("model", ())) > 1:
        raise c.fail("[grid].model", f'design = "{ONE_AT_A_TIME}" compares within one model: give it one, put the '
                                     "others in [grid].across (each its own baseline) or in [[runs]]")
    if grid and "model" not in raw and len(models) > 1:
        raise c.fail("[grid].model", f"missing; which of {', '.join(models)}?")
    return grid, design, across


def _axis_lists(c: Checker, section: str, raw: dict, models: dict[str, ModelSpec]) -> tuple:
    """axis -> its checked values, in file order."""
    grid = []
    for axis, values in raw.items():
        where = f"{section}.{axis}"
        check_axis_name(c, section, axis, models)
        if not isinstance(values, list):
            raise c.fail(where, f"{show_value(values)} is not a list; write {axis} = [{show_value(values)}]")
        if not values:
            raise c.fail(where, "is an empty list: the grid would have no points")
        checked = tuple(axis_value(c, where, axis, v, models) for v in values)
        if len(set(map(repr, checked))) != len(checked):
            raise c.fail(where, f"{show_value(values)} repeats a value")
        grid.append((axis, checked))
    return tuple(grid)


def _design(c: Checker, raw: Any) -> str | int:
    """[grid].design: "full" | "half", or a resolution given as { resolution = N }."""
    where = "[grid].design"
    if not isinstance(raw, dict):
        return c.value(where, GRID_KEYS["design"], raw)
    values = c.table(where, raw, RESOLUTION_KEYS)
    if "resolution" not in values:
        raise c.fail(where, "a table needs resolution = N (N >= 3), e.g. { resolution = 4 }")
    return values["resolution"]


def _check_rounds(c: Checker, spec: Spec) -> None:
    """Seeds in rounds need what their looks test: per-image predictions, and effects or settings to compare."""
    r, where = spec.study.rounds, "[study].seeds"
    if r is None:
        return
    if spec.study.metric.endswith("_loss"):
        raise c.fail(where, f'rounds test accuracy over seeds and images, and [study].metric is "{spec.study.metric}": '
                            'use "test_acc" (or "val_acc"), or a list of seeds')
    if spec.search is not None:
        raise c.fail(where, "rounds are for runner grid; a [search] takes a list of seeds (its selection's)")
    if r.until == "effects" and spec.against_baseline and not spec.comparisons():
        raise c.fail(where, 'until = "effects" decides the comparisons with the baseline, and the spec has none: '
                            'give [grid] axes or [[runs]] to compare, or a list of seeds')
    if r.until == "effects" and not spec.against_baseline and not any(a != "model" and len(v) > 1 for a, v in spec.grid):
        raise c.fail(where, 'until = "effects" decides the main effects of [grid] axes, and no axis of [grid] has two '
                            'values or more: give one, or until = "best" to race the settings')
    if r.until == "best" and spec.setting_count() < 2:
        raise c.fail(where, 'until = "best" races settings against the best, and the spec has one: give a [grid] or '
                            "[[runs]] of two or more, or a list of seeds")


def _rounds(c: Checker, raw: dict[str, Any]) -> Rounds:
    """[study].seeds as a table: { first = N, max = M, until = "effects" | "best" }."""
    where = "[study].seeds"
    values = c.table(where, raw, ROUNDS_KEYS)
    if "max" not in values:
        raise c.fail(where, "a table needs max = M, the most seeds any point gets, e.g. { first = 3, max = 10 }")
    first, most = values.get("first", ROUNDS_KEYS["first"].default), values["max"]
    if most <= first:
        raise c.fail(f"{where}.max", f"{most} is not above first = {first}: no round could add a seed (a fixed "
                                     f"number of seeds is a list, seeds = [0, 1, ...])")
    return Rounds(first, most, values.get("until", ROUNDS_KEYS["until"].default))


def _runs(c: Checker, raw: Any, models: dict[str, ModelSpec]) -> tuple[tuple, tuple[str, ...], tuple[str, ...]]:
    """([[runs]] entries as (axis, value) pairs, each one's role ("", "baseline", "tuned"), each one's label)."""
    if not isinstance(raw, list):
        raise c.fail("[[runs]]", "must be an array of tables: write [[runs]]")
    runs, roles, labels = [], [], []
    for i, run in enumerate(raw):
        where = f"[[runs]] #{i + 1}"
        if not isinstance(run, dict):
            raise c.fail(where, "must be a table")
        role, label = _run_role(c, where, run.get("baseline")), run.get("label")
        if label is not None:
            label = c.value(f"{where}.label", RUN_KEYS["label"], label)
        run = {k: v for k, v in run.items() if k not in RUN_KEYS}
        for k in run:
            check_axis_name(c, where, k, models)
        if "model" not in run and len(models) > 1:
            raise c.fail(f"{where}.model", f"missing; which of {', '.join(models)}?")
        model = run.get("model", next(iter(models)))
        for k in run:
            if is_layer_axis(k) and k.split(".")[0] != model:
                raise c.fail(f"{where}.{k}", f"names a layer of {k.split('.')[0]}, but this run trains {model}")
        runs.append(tuple((k, axis_value(c, f"{where}.{k}", k, v, models)) for k, v in run.items()))
        roles.append(role)
        labels.append(label or " + ".join(f"{k}={toml_value(v)}" for k, v in runs[-1] if k != "model") or model)
    if roles.count("baseline") > 1 or roles.count("tuned") > 1:
        twice = "baseline = true" if roles.count("baseline") > 1 else 'baseline = "tuned"'
        raise c.fail("[[runs]]", f"{twice} is given to {max(roles.count('baseline'), roles.count('tuned'))} runs; "
                                 "a study has one")
    return tuple(runs), tuple(roles), tuple(labels)


def _run_role(c: Checker, where: str, raw: Any) -> str:
    """A [[runs]] entry's baseline key: "" (absent or false), "baseline" (true) or "tuned"."""
    if raw is None or raw is False:
        return ""
    if raw is True:
        return "baseline"
    if raw == "tuned":
        return "tuned"
    raise c.fail(f"{where}.baseline", f'{show_value(raw)} is not true, false or "tuned"')


def _check_baselines(c: Checker, design: str | int, grid: tuple, roles: tuple[str, ...]) -> None:
    """A baseline run compares the others with it: one-at-a-time, or [[runs]] alone."""
    if any(roles) and grid and design != ONE_AT_A_TIME:
        raise c.fail("[[runs]].baseline", f'a baseline is what design = "{ONE_AT_A_TIME}" compares with: set '
                                          f'[grid].design = "{ONE_AT_A_TIME}", or leave [grid] out')
    if "tuned" in roles and "baseline" not in roles and design != ONE_AT_A_TIME:
        raise c.fail("[[runs]].baseline", 'a "tuned" baseline stands beside the baseline: give another run '
                                          'baseline = true, or use [grid].design = "one-at-a-time"')


def _check_distillation(c: Checker, train: TrainConfig, grid: Any, runs: Any, search: Any) -> None:
    """A teacher's share needs a teacher, a teacher needs a share, and a temperature acts only with a share."""
    weights = {("[train].distill_weight", train.distill_weight)}
    weights |= {(f"[grid].{k}", v) for k, values in grid for v in values if k == "distill_weight"}
    weights |= {(f"[[runs]].{k}", v) for r in runs for k, v in r if k == "distill_weight"}
    for d in (search.space if search else ()):
        if d.axis == "distill_weight":
            weights |= {(f"[search.space].{d.axis}", v) for v in (d.choices or (d.low, d.high))}
    if train.teacher is None:
        where, w = next(((k, v) for k, v in sorted(weights) if v), (None, 0))
        if where is not None:
            raise c.fail(where, f"{w} needs a teacher: [train].teacher = {{ study = \"...\", trial = \"best\" }}, "
                                "trials = [...] or file = \"model.pt\"")
        return
    if not any(v for _, v in weights):
        raise c.fail("[train].teacher", "distill_weight is 0 everywhere: it would teach nothing (set "
                                        "[train].distill_weight, e.g. 0.9, or vary it in [grid])")
    temperatures = {v for k, values in grid for v in values if k == "distill_temperature"}
    grid_weights = [v for k, values in grid for v in values if k == "distill_weight"]
    if len(temperatures) > 1 and (0 in grid_weights or not grid_weights and not train.distill_weight):
        raise c.fail("[grid].distill_temperature", "varies where distill_weight is 0, where a temperature does "
                                                   "nothing: those points would be one configuration")
