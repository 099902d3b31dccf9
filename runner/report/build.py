"""Building the Report from storage: trials read, grouped into configurations, setup, known result, figures."""
from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from runner.data import FAMILY
from runner.design import aliases, estimable_interactions
from runner.errors import StorageError
from runner.models.counts import LayerRow, ParamTable
from runner.models.user import REGULARIZER_ARGS
from runner.record import TrialRecord, state_of, study_of
from runner.record import of as stored
from runner.report.data import (CURVES, REFERENCES, AtChance, Config, Curve, Effect, Excluded, Figure, Fraction, Known,
                                Report, ReportError, config_key)
from runner.report.build_mistakes import build_mistakes
from runner.report.build_search import build_search
from runner.report import build_trials
from runner.report.outputs import output_notes
from runner.report.roles import at_chance, compared_models, gallery_baseline, plain_config
from runner.report.rounds import Plan, plan
from runner.plan import status as plan_status
from runner.report.choose import choose, fits
from runner.report.stats import Correct, grid_effects, mean_of, std_of, versus_best, versus_tuned
from runner.spec import LATER_REGULARIZERS, REGULARIZERS, Spec, dataset_shape
from runner.spec.stages import confirm_spec
from runner.spec.tables import parameter_tables
from runner.store import EpochRow, Predictions, Store
from runner.text import csv_text, file_slug, toml_value
from runner.sources import adopt_stored_source, known_structures

__all__ = ["build_report", "FULL_MNIST", "strip_paths"]

FULL_MNIST = (60_000, 10_000)  # train and test images of the published benchmark


# ---------------------------------------------------------------- reading storage


def _load_trials(spec: Spec, url: str | None) -> tuple[str, list[FrozenTrial], dict[int, int],
                                                      dict[int, list[EpochRow]], Any]:
    """(storage URL, every trial of the study by number, trial number -> Optuna's trial_id, epochs of the complete
    ones by trial_id, the study's record)."""
    store = Store(url, create=False)
    try:
        study = store.open_study(spec.study.name, spec.study.direction, create=False)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        ids = store.trial_ids(spec.study.name, [t.number for t in trials])
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        epochs = store.epochs([ids[t.number] for t in complete])
        for t in complete:  # a trial never tested (a locked study's) keeps its epochs in its record
            if not epochs[ids[t.number]] and stored(t).epochs:
                epochs[ids[t.number]] = [_untested_row(t, ids[t.number], e) for e in stored(t).epochs]
        return store.url, trials, ids, epochs, study_of(study)
    except (SQLAlchemyError, optuna.exceptions.OptunaError) as e:
        raise StorageError(f"{store.url}: cannot read study {spec.study.name!r}: {e}") from None
    finally:
        store.dispose()


def _untested_row(t: FrozenTrial, trial_id: int, e: dict[str, Any]) -> EpochRow:
    """An epoch kept in a never-tested trial's record, as a runner_epochs row without test metrics."""
    return EpochRow(trial_id=trial_id, epoch=e["epoch"], study_name="", trial_number=t.number,
                    train_loss=e["train_loss"], train_acc=e["train_acc"], test_loss=None, test_acc=None, lr=e["lr"],
                    seconds=e["seconds"], val_loss=e.get("val_loss"), val_acc=e.get("val_acc"), ended=None)


class _Axes:
    """Axis order and each axis's default, to label configurations the same way everywhere."""

    def __init__(self, spec: Spec, trials: list[FrozenTrial]):
        extra = sorted({k for t in trials for k in t.params} - {"model", "seed", *spec.axis_names})
        self.names = (*spec.axis_names, *extra)
        self.spec = spec

    def default(self, model: str, axis: str) -> Any:
        if model in self.spec.models:
            point = self.spec.point({"model": model}, 0)
            return point.params.get(axis, REGULARIZERS[axis].default if axis in REGULARIZERS else None)
        return REGULARIZERS[axis].default if axis in REGULARIZERS else getattr(self.spec.train, axis, None)

    def params(self, trial: FrozenTrial) -> dict[str, Any]:
        return {a: trial.params[a] for a in self.names if a in trial.params}

    def label(self, model: str, params: dict[str, Any]) -> str:
        changed = [f"{a}={toml_value(v)}" for a, v in params.items() if v != self.default(model, a)]
        return " ".join([model, *changed])


# ---------------------------------------------------------------- configurations


def held_out(rows: list[list[EpochRow]]) -> str:
    """Which split the trials were scored on: "test", or "val" for trials never tested (a locked study's)."""
    return "val" if rows and all(r and r[-1].test_acc is None for r in rows) else "test"


def _curves(rows: list[list[EpochRow]]) -> dict[str, Curve]:
    """Each of CURVES over the epochs; a locked study's "test" curves are its validation split's."""
    out = {}
    epochs = sorted({r.epoch for trial in rows for r in trial})
    held = held_out(rows)
    for name in CURVES:
        column = name.replace("test_", "val_") if held == "val" else name
        per_epoch = [[getattr(r, column) for trial in rows for r in trial if r.epoch == e] for e in epochs]
        out[name] = Curve(tuple(epochs), tuple(float(np.mean(v)) for v in per_epoch),
                          tuple(float(min(v)) for v in per_epoch), tuple(float(max(v)) for v in per_epoch))
    return out


def _config(key: str, model: str, params: dict[str, Any], trials: list[FrozenTrial], ids: dict[int, int],
            epochs: dict[int, list[EpochRow]], axes: _Axes) -> Config:
    rows = [epochs.get(ids[t.number], []) for t in trials]
    with_rows = [r for r in rows if r]
    label = axes.label(model, params)
    first = stored(trials[0])
    per_epoch_s = [float(np.mean([e.seconds for e in r])) for r in with_rows]
    if held_out(with_rows) == "val":  # never tested: no test figure at all, the gap against validation
        final_acc: tuple[float, ...] = ()
        best_acc: tuple[float, ...] = ()
        final_loss: tuple[float, ...] = ()
        gap = tuple(r[-1].train_acc - r[-1].val_acc for r in with_rows if r[-1].val_acc is not None)
    else:
        final_acc = tuple(r[-1].test_acc if r else t.intermediate_values[max(t.intermediate_values)]
                          for t, r in zip(trials, rows) if r or t.intermediate_values)
        best = (stored(t).best_test_acc if stored(t).best_test_acc is not None else
                max(e.test_acc for e in r) if r else math.nan for t, r in zip(trials, rows))
        best_acc = tuple(b for b in best if not math.isnan(b))
        final_loss = tuple(r[-1].test_loss for r in with_rows)
        gap = tuple(r[-1].train_acc - r[-1].test_acc for r in with_rows)
    return Config(
        key=key, model=model, arch=first.section("model").get("arch", model),
        params=params, label=label, slug=file_slug(label),
        regularized=any(params.get(r, k.default) != k.default for r, k in REGULARIZERS.items()),
        param_count=int(first.param_count or 0), seeds=tuple(t.params["seed"] for t in trials),
        trial_ids=tuple(ids[t.number] for t in trials),
        final=tuple(float(t.value) for t in trials), final_acc=final_acc, best_acc=best_acc, final_loss=final_loss,
        final_val=tuple(r[-1].val_acc for r in with_rows if r[-1].val_acc is not None),
        gap=gap,
        seconds_per_epoch=mean_of(per_epoch_s),
        peak_memory_mb=mean_of([float(stored(t).peak_memory_mb) for t in trials
                                if stored(t).peak_memory_mb is not None]),
        curves=_curves(with_rows),
    )


def _as_confirmed(spec: Spec, trials: list[FrozenTrial]) -> Spec:
    """A searched spec as its confirmation trained: refit on train + validation, or on the search's split
    (refit = false, or a study confirmed by the code before refit): whichever its complete trials match."""
    if spec.search is None:
        return spec
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    refit = confirm_spec(spec, [])
    views = [replace(spec, data=refit.data, study=refit.study), spec]
    return max(views, key=lambda s: sum(build_trials.changed(s, t) is None for t in complete))


def why_not_complete(t: FrozenTrial) -> str:
    """A trial's reason for being left out: its stored one, else what its state says."""
    rec = stored(t)
    if state_of(t) == "interrupted":  # stopped from outside: a grid's point resumes, a search's slot is drawn again
        return (f"{rec.fail_reason}: stopped, not failed; the next run takes its place (a grid's point from its "
                "checkpoint, a search's budget slot with another draw)")
    if rec.fail_reason:
        return str(rec.fail_reason)
    worker = f" by {rec.worker}" if rec.worker is not None else ""
    epochs = f" after epoch {max(t.intermediate_values)}" if t.intermediate_values else ""
    if t.state == TrialState.RUNNING:
        return (f"running{worker} when the report was made{epochs and ', at epoch ' + epochs.split()[-1]}: "
                "not a result yet (a worker that stopped leaves it to be taken over by the next run)")
    if t.state == TrialState.PRUNED:
        return f"pruned{epochs} by the search's pruner: its validation curve trailed the others'"
    if t.state == TrialState.WAITING:
        return "enqueued, never started"
    return f"failed{epochs}; no reason stored (the code that ran it kept none)"


def _group(trials: list[FrozenTrial], axes: _Axes,
           stored_config: bool = False) -> tuple[dict[str, list[FrozenTrial]], list[Excluded]]:
    """Complete trials by configuration key (one per seed), and every trial left out (`stored_config`: a trial
    whose point the spec now gives another config counts, as its setting)."""
    groups: dict[str, list[FrozenTrial]] = {}
    first: dict[tuple[str, int], int] = {}
    excluded = []
    for t in trials:
        model = t.params.get("model", "?")
        params = axes.params(t)
        label = axes.label(model, params)
        seed = t.params.get("seed")
        if t.state != TrialState.COMPLETE:
            excluded.append(Excluded(t.number, state_of(t), label, seed, why_not_complete(t)))
            continue
        stale = build_trials.stale(axes.spec, t) or (None if stored_config else build_trials.changed(axes.spec, t))
        if stale:
            excluded.append(Excluded(t.number, "complete", label, seed, stale))
            continue
        key = config_key({"model": model, **params})
        if (key, seed) in first:
            excluded.append(Excluded(t.number, "complete", label, seed,
                                     f"duplicate of trial {first[key, seed]} (same config and seed)"))
            continue
        first[key, seed] = t.number
        groups.setdefault(key, []).append(t)
    return groups, excluded


def _spec_order(spec: Spec) -> dict[str, int]:
    keys = {}
    for setting in spec.settings():
        params = dict(spec.point(setting, 0).params)
        params.pop("seed")
        keys.setdefault(config_key(params), len(keys))
    return keys


def _configs(spec: Spec, groups: dict[str, list[FrozenTrial]], ids: dict[int, int],
             epochs: dict[int, list[EpochRow]], axes: _Axes) -> list[Config]:
    order = _spec_order(spec)
    configs = []
    for key, trials in sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[1][0].number)):
        params = json.loads(key)
        model = params.pop("model")
        params = {a: params[a] for a in axes.names if a in params}
        configs.append(_config(key, model, params, trials, ids, epochs, axes))
    sign = -1.0 if spec.study.direction == "maximize" else 1.0
    return sorted(configs, key=lambda c: sign * float(np.mean(c.final)))  # stable: ties keep spec order


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
    """The dataset the trials used ("mnist" for trials stored before there were others)."""
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


def _predictions(url: str | None, configs: list[Config], split: str) -> dict[int, Predictions]:
    """trial_id -> its stored predictions on `split` (none for trials stored before runner kept them)."""
    reader = Store(url, create=False)
    try:
        return reader.predictions([i for c in configs for i in c.trial_ids], split)
    finally:
        reader.dispose()


def _correct(spec: Spec, url: str | None, configs: list[Config], test: dict[int, Predictions]) -> Correct | None:
    """100 * (predicted == label) of every image, by (config key, seed), for an accuracy-ranked study; None
    for a loss-ranked one (the report then has only the t-tests)."""
    if spec.study.metric not in ("test_acc", "val_acc"):
        return None
    kept = test if spec.study.metric == "test_acc" else _predictions(url, configs, "val")
    out = {(c.key, s): 100.0 * kept[i].correct for c in configs for s, i in zip(c.seeds, c.trial_ids) if i in kept}
    return out or None


_EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "seconds")


def _raw_tables(trials: list[FrozenTrial], ids: dict[int, int], epochs: dict[int, list[EpochRow]], axes: _Axes,
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


def _read(spec: Spec, url: str | None, module_version: str | None = None, stored_config: bool = False) -> tuple:
    """The stored trials as the report reads them: (storage URL, trials, their ids by number, epochs, the spec as
    searched, the spec as its trials ran, notes, axes, complete trials by configuration, trials left out)."""
    storage, trials, ids, epochs, study_record = _load_trials(spec, url)
    searched, spec = spec, _as_confirmed(spec, trials)  # the spec as its search trained, and as its confirmation did
    spec, notes = build_trials.stored_code(spec, trials)
    spec, adopted = adopt_stored_source(spec, trials, known_structures(trials, study_record))
    spec, chosen = build_trials.module_version(spec, trials, module_version)
    notes += adopted + chosen + build_trials.earlier_note(spec, trials)
    notes += build_trials.stored_config_note(spec, trials) if stored_config else []
    axes = _Axes(spec, trials)
    groups, excluded = _group(trials, axes, stored_config)
    return storage, trials, ids, epochs, searched, spec, notes, axes, groups, excluded, study_record


def stored_plan(spec: Spec, url: str | None) -> Plan:
    """Where a study of seeds in rounds stands, from its stored trials (report.rounds.plan); its first round
    when nothing is stored yet."""
    assert spec.study.rounds is not None
    try:
        _, _, ids, epochs, _, spec, _, axes, groups, _, _ = _read(spec, url)
    except StorageError:
        groups = {}
    if not groups:
        return plan(spec, [], None)
    configs = _configs(spec, groups, ids, epochs, axes)
    return plan(spec, configs, _correct(spec, url, configs, _predictions(url, configs, "test")))


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
    read = _read(spec, url, module_version, stored_config)
    storage, trials, ids, epochs, searched, spec, notes, axes, groups, excluded, study_record = read
    if not groups:
        raise ReportError(build_trials.nothing_to_report(storage, spec, trials))
    configs = _configs(spec, groups, ids, epochs, axes)
    complete = [t for ts in groups.values() for t in ts]
    complete.sort(key=lambda t: t.number)
    test = _predictions(url, configs, "test")
    correct = _correct(spec, url, configs, test)
    effects, interactions = grid_effects(spec, configs, correct)
    held = held_out([epochs.get(i, []) for c in configs for i in c.trial_ids])
    looks = plan(spec, configs, correct) if spec.study.rounds is not None else None
    if dataset_shape(spec.data) is None:  # the user's data: its shape as stored, never calling its code
        a = stored(complete[0])
        spec = spec.bind(tuple(a.data_shape or (1, 28, 28)), int(a.classes or 10))
    varying = tuple(a for a in axes.names if len({toml_value(c.params.get(a)) for c in configs}) > 1)
    reader = Store(url, create=False)
    try:
        search = build_search(replace(searched, models=spec.models), reader, configs,
                              lambda t: axes.label(t.params.get("model", "?"), axes.params(t)))
    finally:
        reader.dispose()
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
    chance = at_chance(configs, classes, excluded, tables)
    return Report(
        search=search, mistakes=_mistakes(spec, configs, test, complete, compared, chance), notes=tuple(notes),
        fraction=_fraction(spec), raw=_raw_tables(trials, ids, epochs, axes, held),
        study=spec.study.name, description=spec.study.description, spec_path=spec.path,
        metric=spec.study.metric, direction=spec.study.direction, axes=varying,
        data=data, train=train, provenance=prov,
        seeds=tuple(sorted({t.params["seed"] for t in complete})),
        param_tables=param_tables, configs=configs, known=known, effects=effects,
        interactions=interactions, versus_best=versus_best(configs, spec.study.direction, correct), excluded=excluded,
        figures=_figures(spec, configs, effects, compared), rounds=looks, held_out=held,
        against_baseline=spec.against_baseline,
        plan=plan_status(study_record.attrs, spec.study.locked), versus_tuned=versus_tuned(spec, configs, correct),
        fits=fits(configs), choice=choose(spec, configs), at_chance=chance,
        outputs=output_notes(configs, tables, classes),
    )
