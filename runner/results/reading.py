"""What the stored trials of a study say: read from one Store, the trials that count grouped into
configurations (one per setting, a trial per seed), the trials left out with why, and each trial's
per-image correctness. The report (runner.report.build) and the rounds (runner.rounds, through
runner.results.looks) read a study the same way, here."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from runner.errors import StorageError
from runner.record import of as stored
from runner.record import state_of, study_of
from runner.results import counted
from runner.results.configs import CURVES, Config, Curve, Excluded, config_key
from runner.results.stats import Correct, mean_of
from runner.sources import adopt_stored_source, known_structures
from runner.spec import REGULARIZERS, Spec
from runner.spec.stages import confirm_spec
from runner.store import EpochRow, Predictions, Store
from runner.text import file_slug, toml_value

__all__ = ["Stored", "Axes", "read_stored", "configurations", "held_out", "why_not_complete", "predictions", "correct"]


def _load_trials(spec: Spec, store: Store) -> tuple[list[FrozenTrial], dict[int, int], dict[int, list[EpochRow]], Any]:
    """(every trial of the study by number, trial number -> Optuna's trial_id, epochs of the complete ones by
    trial_id, the study's record)."""
    try:
        study = store.open_study(spec.study.name, spec.study.direction, create=False)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        ids = store.trial_ids(spec.study.name, [t.number for t in trials])
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        epochs = store.epochs([ids[t.number] for t in complete])
        for t in complete:  # a trial never tested (a locked study's) keeps its epochs in its record
            if not epochs[ids[t.number]] and stored(t).epochs:
                epochs[ids[t.number]] = [_untested_row(t, ids[t.number], e) for e in stored(t).epochs]
        return trials, ids, epochs, study_of(study)
    except (SQLAlchemyError, optuna.exceptions.OptunaError) as e:
        raise StorageError(f"{store.url}: cannot read study {spec.study.name!r}: {e}") from None


def _untested_row(t: FrozenTrial, trial_id: int, e: dict[str, Any]) -> EpochRow:
    """An epoch kept in a never-tested trial's record, as a runner_epochs row without test metrics."""
    return EpochRow(trial_id=trial_id, epoch=e["epoch"], study_name="", trial_number=t.number,
                    train_loss=e["train_loss"], train_acc=e["train_acc"], test_loss=None, test_acc=None, lr=e["lr"],
                    seconds=e["seconds"], val_loss=e.get("val_loss"), val_acc=e.get("val_acc"), ended=None)


class Axes:
    """Axis order and each axis's default, to label configurations the same way everywhere."""

    def __init__(self, spec: Spec, trials: list[FrozenTrial]):
        extra = sorted({k for t in trials for k in t.params} - {"model", "seed", *spec.axis_names})
        self.names = (*spec.axis_names, *extra)
        self.spec = spec

    def default(self, model: str, axis: str) -> Any:
        """The value `axis` takes in `model`'s default point (or the spec's, for a model it no longer has)."""
        if model in self.spec.models:
            point = self.spec.point({"model": model}, 0)
            return point.params.get(axis, REGULARIZERS[axis].default if axis in REGULARIZERS else None)
        return REGULARIZERS[axis].default if axis in REGULARIZERS else getattr(self.spec.train, axis, None)

    def params(self, trial: FrozenTrial) -> dict[str, Any]:
        """The trial's axes, in axis order."""
        return {a: trial.params[a] for a in self.names if a in trial.params}

    def label(self, model: str, params: dict[str, Any]) -> str:
        """The model and each axis that differs from its default: "lenet5 dropout=0.5"."""
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
            epochs: dict[int, list[EpochRow]], axes: Axes) -> Config:
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
    (refit = false, or a study of format 2, fixture v2, which had no refit): whichever its complete trials match."""
    if spec.search is None:
        return spec
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    refit = confirm_spec(spec, [])
    views = [replace(spec, data=refit.data, study=refit.study), spec]
    return max(views, key=lambda s: sum(counted.changed(s, t) is None for t in complete))


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


def _group(trials: list[FrozenTrial], axes: Axes,
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
        stale = counted.stale(axes.spec, t) or (None if stored_config else counted.changed(axes.spec, t))
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


def configurations(s: Stored) -> list[Config]:
    """The configurations of the counted trials, best first by the study's metric (ties keep the spec's order)."""
    spec, groups, ids, epochs, axes = s.spec, s.groups, s.ids, s.epochs, s.axes
    order = _spec_order(spec)
    configs = []
    for key, trials in sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[1][0].number)):
        params = json.loads(key)
        model = params.pop("model")
        params = {a: params[a] for a in axes.names if a in params}
        configs.append(_config(key, model, params, trials, ids, epochs, axes))
    sign = -1.0 if spec.study.direction == "maximize" else 1.0
    return sorted(configs, key=lambda c: sign * float(np.mean(c.final)))  # stable: ties keep spec order


# ---------------------------------------------------------------- predictions, and the whole reading


def predictions(store: Store, configs: list[Config], split: str) -> dict[int, Predictions]:
    """trial_id -> its stored predictions on `split` (none for trials of formats 0 and 1, before runner_predictions)."""
    return store.predictions([i for c in configs for i in c.trial_ids], split)


def correct(spec: Spec, store: Store, configs: list[Config], test: dict[int, Predictions]) -> Correct | None:
    """100 * (predicted == label) of every image, by (config key, seed), for an accuracy-ranked study; None
    for a loss-ranked one (the report then has only the t-tests)."""
    if spec.study.metric not in ("test_acc", "val_acc"):
        return None
    kept = test if spec.study.metric == "test_acc" else predictions(store, configs, "val")
    out = {(c.key, s): 100.0 * kept[i].correct for c in configs for s, i in zip(c.seeds, c.trial_ids) if i in kept}
    return out or None


@dataclass(frozen=True)
class Stored:
    """A study's stored trials as the report and the rounds read them."""

    storage: str  # the storage URL, for messages
    trials: list[FrozenTrial]  # every trial of the study, by number
    ids: dict[int, int]  # trial number -> Optuna's trial_id
    epochs: dict[int, list[EpochRow]]  # trial_id -> the epochs of a complete trial
    searched: Spec  # the spec as its search trained
    spec: Spec  # the spec as its trials ran (confirmation, stored code, adopted sources, module version)
    notes: list[str]  # what the report says of that reading
    axes: Axes
    groups: dict[str, list[FrozenTrial]]  # complete trials by configuration key, one per seed
    excluded: list[Excluded]  # every trial left out, with why
    study_record: Any  # the study's record (runner.record.study_of)


def read_stored(spec: Spec, store: Store, module_version: str | None = None, stored_config: bool = False) -> Stored:
    """The stored trials of `spec`'s study, grouped into configurations (module_version, stored_config: as
    `runner report` takes them)."""
    trials, ids, epochs, study_record = _load_trials(spec, store)
    searched, spec = spec, _as_confirmed(spec, trials)  # the spec as its search trained, and as its confirmation did
    spec, notes = counted.stored_code(spec, trials)
    spec, adopted = adopt_stored_source(spec, trials, known_structures(trials, study_record))
    spec, chosen = counted.module_version(spec, trials, module_version)
    notes += adopted + chosen + counted.earlier_note(spec, trials)
    notes += counted.stored_config_note(spec, trials) if stored_config else []
    axes = Axes(spec, trials)
    groups, excluded = _group(trials, axes, stored_config)
    return Stored(store.url, trials, ids, epochs, searched, spec, notes, axes, groups, excluded, study_record)
