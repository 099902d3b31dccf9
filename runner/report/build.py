"""Building the Report from storage: the configurations the stored trials give (runner.results.reading), their
setup, known result, effects and figures."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from runner.data import FAMILY
from runner.design import aliases, estimable_interactions
from runner.models.counts import LayerRow, ParamTable
from runner.models.user import REGULARIZER_ARGS
from runner.plan import status as plan_status
from runner.record import TrialRecord, state_of
from runner.record import of as stored
from runner.report.build_mistakes import build_mistakes
from runner.report.build_search import build_search
from runner.report.choose import choose, fits
from runner.report.contents import (REFERENCES, AtChance, Config, Effect, Figure, Fraction, Known, Report,
                                    ReportError)
from runner.report.outputs import output_notes
from runner.report.roles import at_chance, compared_models, gallery_baseline, plain_config
from runner.results import counted, reading
from runner.results.looks import plan
from runner.results.stats import grid_effects, std_of, versus_best
from runner.results.versus import versus_tuned, versus_untaught
from runner.spec import LATER_REGULARIZERS, REGULARIZERS, Spec, dataset_shape
from runner.spec.tables import parameter_tables
from runner.store import EpochRow, Predictions, Store
from runner.text import csv_text, toml_value

__all__ = ["build_report", "report_from", "FULL_MNIST", "strip_paths"]

FULL_MNIST = (60_000, 10_000)  # train and test images of the published benchmark


# ---------------------------------------------------------------- setup, known result, figures


_TRAIN_ORDER = {k: i for i, k in enumerate(("epochs", "batch_size", "optimizer", "lr", "momentum", "schedule"))}


def _distinct(values: list[Any]) -> str:
    shown = sorted({json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else toml_value(v) for v in values})
    return ", ".join(shown) if shown else "not recorded"


def _regularizer(attrs: list[TrialRecord], r: str, tables: dict[str, list[LayerRow]]) -> str:
    """The values a regularizer took; for a user's module whose constructor has no such argument, "the module's
    own" and what its layer table (`tables`: model -> rows) shows of it: "the module's own: `net` has batch norm
    at bn1, bn2", or "... has no batch norm"."""
    def model(a: TrialRecord) -> str:
        return str(a.section("model").get("name", "?"))

    own = [a for a in attrs if r in REGULARIZER_ARGS and a.module_takes is not None and r not in a.module_takes]
    # a regularizer of a later format (LATER_REGULARIZERS: ema, format 3) is stored only where it is on: absent, off
    later = REGULARIZERS[r].default if r in LATER_REGULARIZERS else None
    values = [a.section("regularizers").get(r, later) for a in attrs if a not in own]
    values = [v for v in values if v is not None]
    if not own:
        return _distinct(values)
    runner = [_distinct(values) + " (" + ", ".join(f"`{m}`" for m in dict.fromkeys(
        model(a) for a in attrs if a not in own)) + ")"] if values else []
    owners = [_built_in(r, m, tables.get(m)) for m in dict.fromkeys(model(a) for a in own)]
    known = [o for o in owners if o]
    return "; ".join(runner + ["the module's own" + (": " + "; ".join(known) if known else "")])


def _built_in(r: str, model: str, rows: list[LayerRow] | None) -> str:
    """What a module's layer table shows of a regularizer it takes no argument for: "`net` has dropout 0.5 at
    drop1", "`net` has no batch norm"; "" without a stored table."""
    if rows is None:
        return ""
    word = r.replace("_", " ")  # batch norm, dropout: the kinds of runner.models.counts
    at: dict[str, list[str]] = {}
    for row in rows:
        if row.kind.split(",")[0] == word or row.kind.startswith(word + " "):
            at.setdefault(row.kind.split(",")[0], []).append(row.name)
    if not at:
        return f"`{model}` has no {word}"
    return f"`{model}` has " + ", ".join(f"{kind} at {', '.join(names)}" for kind, names in at.items())


def _setup(complete: list[FrozenTrial], tables: dict[str, list[LayerRow]]) -> tuple[list[tuple[str, str]], ...]:
    attrs = [stored(t) for t in complete]
    cfg = [a.config for a in attrs]
    dataset = _dataset(complete)

    def each(values: list[Any]) -> str:  # the distinct values stored (None: not stored)
        return _distinct([v for v in values if v is not None])

    data = [("dataset", dataset),
            ("source", each([strip_paths(a.data_source) for a in attrs])),
            ("official files", "not applicable (the user's own data)" if dataset == "user" else
             each([a.data_official for a in attrs])),
            ("checksum", each([a.data_checksum for a in attrs])),
            ("image shape (C, H, W)", each([tuple(a.data_shape) for a in attrs if a.data_shape is not None])),
            ("classes", each([a.classes for a in attrs])),
            ("train images", each([f"{a.train_size:,}" for a in attrs if a.train_size is not None]))]
    if any(a.val_size for a in attrs):
        fractions = _distinct([c["data"].get("val_fraction") for c in cfg])
        data.append(("validation images", each([f"{a.val_size:,}" for a in attrs if a.val_size is not None])
                     + f" (val_fraction {fractions}, stratified, held out of the training images)"))
    data.append(("test images", each([f"{a.test_size:,}" for a in attrs if a.test_size is not None])))
    for k in ("mean", "std"):
        auto = any(k in a.normalization_auto for a in attrs)
        data.append((f"normalization {k}", _distinct([c["data"][k] for c in cfg if k in c.get("data", {})])
                     + (" (auto: computed from the training images)" if auto else "")))
    train_keys = sorted({k for c in cfg for k in c.get("train", {})}, key=lambda k: (_TRAIN_ORDER.get(k, 99), k))
    train = [(k, _distinct([c["train"][k] for c in cfg if k in c.get("train", {})])) for k in train_keys]
    train += [(r, _regularizer(attrs, r, tables)) for r in REGULARIZERS if r != "ema_warmup"]
    averaged = [a.section("regularizers") for a in attrs if a.section("regularizers").get("ema")]
    if averaged:  # stored only where it was on: an EMA trial without it predates the warm-up
        train.append(("ema_warmup", _distinct([r.get("ema_warmup", False) for r in averaged]) + " (the EMA trials)"))
    versions = sorted({lib for a in attrs for lib in a.versions})
    wall = sum(a.wall_seconds or 0.0 for a in attrs)
    prov = [("code version", each([a.code_version for a in attrs]))]
    prov += [(lib, each([a.versions.get(lib) for a in attrs])) for lib in versions]
    prov += [("python", each([a.python for a in attrs])), ("device", each([a.device for a in attrs])),
             ("cpu", each([a.cpu for a in attrs])), ("threads", each([a.threads for a in attrs]))]
    prov += [("workers", str(len({a.worker for a in attrs if a.worker is not None}))),
             ("total compute", f"{_duration(wall)} of wall time over {len(complete)} complete trials")]
    return data, train, prov


def strip_paths(text: str | None) -> str | None:
    """A stored source with any absolute path cut to its file name (a report names no home folder)."""
    return None if text is None else re.sub(r"(?:/[^\s/]+)+/([^\s/]+)", r"\1", text)


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"


def _fraction(spec: Spec) -> Fraction | None:
    """A fractional grid in words, and the two-way interactions it cannot estimate (aliased with a main effect)."""
    d = spec.fraction()
    if d is None:
        return None
    estimable = set(estimable_interactions(d))
    left_out = tuple(n for n in aliases(d) if n.count(" x ") == 1 and n not in estimable)
    return Fraction(tuple(spec.design_lines()), d.resolution, left_out)


def _dataset(complete: list[FrozenTrial]) -> str:
    """The dataset the trials used ("mnist" for a config that names none: every format, 0 on, names it)."""
    names = {stored(t).dataset or stored(t).section("data").get("dataset", "mnist") for t in complete}
    return names.pop() if len(names) == 1 else "several"


def _known(baseline: Config | None, complete: list[FrozenTrial], stands_for: str = "") -> Known | None:
    """The unregularized LeNet-5 against the published figure for its dataset, where there is one; `stands_for`:
    why the model is LeNet-5 when it is not the preset."""
    dataset = _dataset(complete)
    ref = REFERENCES.get((dataset, "lenet5"))
    if baseline is None or not baseline.final_acc or ref is None:
        return None
    sizes = {(stored(t).train_size, stored(t).test_size) for t in complete}
    official = {True if stored(t).data_official is None else stored(t).data_official for t in complete}
    return Known(baseline.label, len(baseline.final_acc), float(np.mean(baseline.final_acc)),
                 std_of(baseline.final_acc), min(baseline.final_acc), max(baseline.final_acc),
                 ref.accuracy, sizes == {FULL_MNIST} and official == {True}, ref.source, ref.model, ref.note,
                 FAMILY[dataset].title, stands_for)


def _figures(spec: Spec, configs: list[Config], effects: list[Effect],
             compared: dict[str, tuple[str, str]]) -> list[Figure]:
    models = list(dict.fromkeys([m for m in spec.models] + [c.model for c in configs]))
    shown: list[Config] = []
    for model in models:
        mine = [c for c in configs if c.model == model]  # best first
        base = plain_config(spec, configs, model, regs_off=False)
        for c in (base, mine[0] if mine else None):
            if c is not None and c not in shown:
                shown.append(c)
    figures = [Figure(f"curves-{c.slug}.png", c.label, "curves", (c.key,)) for c in shown]
    lenet, mlp = (compared[arch][0] if arch in compared else None for arch in ("lenet5", "mlp"))
    overlay = [plain_config(spec, configs, lenet, regs_off=True) if lenet else None,
               plain_config(spec, configs, mlp, regs_off=False) if mlp else None,
               next((c for c in configs if c.model == lenet and c.regularized), None)]
    keys = tuple(dict.fromkeys(c.key for c in overlay if c is not None))
    if len(keys) > 1:
        figures.append(Figure("compare.png", "LeNet-5, the MLP and the best regularized LeNet-5", "curves", keys))
    if any(e.ci95 is not None for e in effects):
        figures.append(Figure("effects.png", "Main effects on the final metric", "effects"))
    return figures


# ---------------------------------------------------------------- build


_EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "seconds")


def _raw_tables(trials: list[FrozenTrial], ids: dict[int, int], epochs: dict[int, list[EpochRow]], axes: reading.Axes,
                held: str = "test") -> tuple[str, str]:
    """trials.csv (one row per trial: params, seed, final metrics, seconds, parameter count) and epochs.csv
    (one row per trial-epoch), so that a reader can recompute every figure without the database; a locked
    study's (held = "val") without any test column."""
    rows, epoch_rows = [], []
    for t in trials:
        mine = epochs.get(ids[t.number], [])
        last = mine[-1] if mine else None
        rec = stored(t)
        rows.append([t.number, state_of(t), t.params.get("model"), *(t.params.get(a) for a in axes.names),
                     t.params.get("seed"), rec.param_count,
                     *(getattr(last, c) if last else None for c in _EPOCH_COLUMNS[:6]), rec.best_test_acc,
                     sum(e.seconds for e in mine) if mine else None, rec.wall_seconds, rec.config_hash, rec.label])
        epoch_rows += [[t.number, e.epoch, *(getattr(e, c) for c in _EPOCH_COLUMNS)] for e in mine]
    names = ["number", "state", "model", *axes.names, "seed", "param_count", *_EPOCH_COLUMNS[:6], "best_test_acc",
             "seconds", "wall_seconds", "config_hash", "label"]
    epoch_names = ["number", "epoch", *_EPOCH_COLUMNS]
    return _csv_without(names, rows, held), _csv_without(epoch_names, epoch_rows, held)


def _csv_without(names: list[str], rows: list[list[Any]], held: str) -> str:
    """The CSV's text; for a locked study (held = "val"), without its test columns."""
    keep = [i for i, n in enumerate(names) if held == "test" or "test_" not in n]
    return csv_text([names[i] for i in keep], [[r[i] for i in keep] for r in rows])


def _mistakes(spec: Spec, configs: list[Config], test: dict[int, Predictions], complete: list[FrozenTrial],
              compared: dict[str, tuple[str, str]], chance: list[AtChance]) -> Any:
    """The best configuration, plain LeNet-5 and the MLP, class by class, and the best's gallery of mistakes
    beside its baseline (roles.gallery_baseline: the study's, else its model's plain setting; never at chance)."""
    roles = [("best", configs[0])]
    for arch, role in (("lenet5", "LeNet-5, every regularizer off"), ("mlp", "MLP, every regularizer off")):
        plain = plain_config(spec, configs, compared[arch][0], regs_off=True) if arch in compared else None
        if plain is not None:
            roles.append((role, plain))
    baseline = gallery_baseline(spec, configs, configs[0], [c for _, c in roles[1:]], chance)
    if baseline is not None and all(c.key != baseline.key for _, c in roles):
        roles.append(("baseline", baseline))
    classes = int(stored(complete[0]).classes or 10)
    return build_mistakes(spec, roles, test, _dataset(complete), classes, baseline)


def _stored_tables(complete: list[FrozenTrial]) -> dict[tuple[str, bool], list[LayerRow]]:
    """(model, batch_norm) -> a user's module's layer table as stored with its first trial, so that its code is
    never imported."""
    tables: dict[tuple[str, bool], list[LayerRow]] = {}
    for t in complete:
        key = (t.params.get("model"), bool(stored(t).section("regularizers").get("batch_norm")))
        if stored(t).layer_table is not None and key not in tables:
            tables[key] = [LayerRow.from_json(r) for r in stored(t).layer_table]
    return tables


def _model_tables(param_tables: list[ParamTable]) -> dict[str, list[LayerRow]]:
    """model -> the layer table of its first variant (its default point's): what roles and the Training table read."""
    out: dict[str, list[LayerRow]] = {}
    for t in param_tables:
        out.setdefault(t.model, list(t.rows))
    return out


def build_report(spec: Spec, url: str | None, module_version: str | None = None,
                 stored_config: bool = False) -> Report:
    """Every number of the report, from the trials stored for `spec`'s study at `url`.

    Args:
        module_version: report the trials an earlier version of a user's module made: a stored file's
            SHA-256 (its first 12 digits are enough), or "any" for every stored version.
        stored_config: report each complete trial of the spec's points (model, axes, seed) whatever config it
            was made with (after an edit of [train] or [data] that changed them all), as its setting.
    """
    store = Store(url, create=False)
    try:
        return report_from(spec, store, module_version, stored_config)
    finally:
        store.dispose()


def report_from(spec: Spec, store: Store, module_version: str | None = None, stored_config: bool = False) -> Report:
    """build_report from an open `store`."""
    read = reading.read_stored(spec, store, module_version, stored_config)
    trials, ids, epochs, axes, spec = read.trials, read.ids, read.epochs, read.axes, read.spec
    if not read.groups:
        raise ReportError(counted.nothing_to_report(read.storage, spec, trials))
    configs = reading.configurations(read)
    complete = [t for ts in read.groups.values() for t in ts]
    complete.sort(key=lambda t: t.number)
    test = reading.predictions(store, configs, "test")
    correct = reading.correct(spec, store, configs, test)
    effects, interactions = grid_effects(spec, configs, correct)
    held = reading.held_out([epochs.get(i, []) for c in configs for i in c.trial_ids])
    looks = plan(spec, configs, correct) if spec.study.rounds is not None else None
    if dataset_shape(spec.data) is None:  # the user's data: its shape as stored, never calling its code
        a = stored(complete[0])
        spec = spec.bind(tuple(a.data_shape or (1, 28, 28)), int(a.classes or 10))
    varying = tuple(a for a in axes.names if len({toml_value(c.params.get(a)) for c in configs}) > 1)
    search = build_search(replace(read.searched, models=spec.models), store, configs,
                          lambda t: axes.label(t.params.get("model", "?"), axes.params(t)))
    param_tables = parameter_tables(spec, _stored_tables(complete), [{"model": c.model, **c.params} for c in configs]
                                    if search is not None else None)
    tables = _model_tables(param_tables)
    data, train, prov = _setup(complete, tables)
    if held == "val":  # a locked study: nothing of the test set was loaded
        data = [("test images", "locked ([study].test = \"locked\"): never loaded") if k == "test images" else (k, v)
                for k, v in data]
    compared = compared_models(spec, configs, tables)
    lenet, why = compared.get("lenet5", (None, ""))
    known = _known(plain_config(spec, configs, lenet, regs_off=True) if lenet else None, complete, why)
    classes = int(stored(complete[0]).classes or 10)
    chance = at_chance(configs, classes, read.excluded, tables)
    return Report(
        search=search, mistakes=_mistakes(spec, configs, test, complete, compared, chance), notes=tuple(read.notes),
        fraction=_fraction(spec), raw=_raw_tables(trials, ids, epochs, axes, held),
        study=spec.study.name, description=spec.study.description, spec_path=spec.path,
        metric=spec.study.metric, direction=spec.study.direction, axes=varying,
        data=data, train=train, provenance=prov,
        seeds=tuple(sorted({t.params["seed"] for t in complete})),
        param_tables=param_tables, configs=configs, known=known, effects=effects,
        interactions=interactions, versus_best=versus_best(configs, spec.study.direction, correct), excluded=read.excluded,
        figures=_figures(spec, configs, effects, compared), rounds=looks, held_out=held,
        against_baseline=spec.against_baseline,
        plan=plan_status(read.study_record.attrs, spec.study.locked), versus_tuned=versus_tuned(spec, configs, correct),
        fits=fits(configs), choice=choose(spec, configs), at_chance=chance,
        outputs=output_notes(configs, tables, classes),
        teacher=next((stored(t).teacher for t in complete if stored(t).teacher), None),
        versus_untaught=versus_untaught(spec, configs, correct),
    )
