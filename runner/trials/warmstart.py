"""A search's first trials: points the user gives ([search].enqueue) and the best configurations of
studies already in the storage ([search].start_from), through Optuna's `enqueue_trial`.

A study's configurations are mapped into the search space axis by axis from what each trial stored
(its resolved config: the model's layers, every regularizer and train key); a value outside the
space is refused in one line that names the key, the value and the range, as [search].enqueue is
when the spec is read.
"""
from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from runner import record
from runner.errors import RunnerError
from runner.models.presets import MLP_HIDDEN, preset_layers
from runner.spec import LATER_REGULARIZERS, REGULARIZERS, Dimension, Spec, is_layer_axis
from runner.spec.search import outside
from runner.store import Store
from runner.trials.lifecycle import Log

__all__ = ["warm_start", "best_configurations", "into_space"]

_LIVE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


def warm_start(spec: Spec, store: Store, study: optuna.Study, log: Log) -> int:
    """Enqueue the spec's given points, then each start_from study's best configurations; the number enqueued.

    A point is enqueued again only while none of its trials is waiting, running or finished: a rerun or
    a second machine adds nothing, and a point whose trial was interrupted (FAIL) is tried again; one
    refused over [search].max_params is not.
    """
    search = spec.search
    points = [(f"[search].enqueue[{i}]", dict(p)) for i, p in enumerate(search.enqueue)]
    for name in search.start_from:
        points += best_configurations(spec, store, name, log)
    done = {record.of(t).enqueued_from for t in study.get_trials(deepcopy=False)
            if t.state in _LIVE or "max_params" in str(record.of(t).fail_reason or "")}
    new = [(where, params) for where, params in points if where not in done]
    for where, params in new:
        study.enqueue_trial(params, user_attrs={record.ENQUEUED_FROM: where})
        log(f"{study.study_name}: enqueued {where}: {', '.join(f'{k}={v}' for k, v in params.items())}")
    return len(new)


def best_configurations(spec: Spec, store: Store, source: str, log: Log = lambda s: None) -> list[tuple[str, dict[str, Any]]]:
    """The best configuration of each model of study `source` that the search space can hold, mapped into
    it: [(where it came from, params)]. Ranked by the mean final validation accuracy over its seeds when
    its trials have a validation split; else by the study's own metric, a test one, which is said in a line
    (the search then starts from points chosen on test; its own choices stay on validation).
    """
    if source not in store.study_names():
        raise RunnerError(f"[search].start_from: no study named {source!r} in {store.url}; studies there: "
                          f"{', '.join(store.study_names()) or 'none'}")
    study = store.load_study(source)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if record.of(t).config and t.value is not None]
    ids = store.trial_ids(source, [t.number for t in complete])
    epochs = store.epochs(list(ids.values()))
    val = {t.number: rows[-1].val_acc for t in complete
           if (rows := epochs.get(ids[t.number])) and rows[-1].val_acc is not None}
    if complete and len(val) == len(complete):
        score = {t.number: -val[t.number] for t in complete}  # the best validation accuracy first
    else:
        sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
        score = {t.number: sign * t.value for t in complete}
        log(f"[search].start_from: {source} has no validation split: its best configurations are those of its "
            "own metric, on test, so the search starts from points chosen on test (its choices stay on validation)")
    groups: dict[str, list[FrozenTrial]] = {}
    for t in complete:
        config = record.of(t).config
        groups.setdefault(json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True), []).append(t)
    ranked = sorted(groups.values(), key=lambda ts: (sum(score[t.number] for t in ts) / len(ts), ts[0].number))
    out, models = [], set()
    for trials in ranked:
        config = record.of(trials[0]).config
        model = config["model"]["name"]
        if model in models:
            continue
        where = f"{source} trial {trials[0].number}"
        params = into_space(spec, config, where)
        if params is not None:
            models.add(model)
            out.append((where, params))
    return out


def into_space(spec: Spec, config: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A stored trial's config as params of the search space; None when its model has no place in it
    (another model, or layers the space's layer fields do not name)."""
    dims = spec.search.space
    model = config["model"]["name"]
    searched = {d.axis: d for d in dims}
    if "model" in searched:
        if model not in searched["model"].choices:
            return None
        target = model
    else:
        target = next(iter(spec.models))
    layers = _layers(config["model"])
    params: dict[str, Any] = {}
    for d in dims:
        if d.axis == "model":
            value = model
        elif is_layer_axis(d.axis):
            owner, layer, key = d.axis.split(".")
            if owner != target:
                continue
            value = layers.get(layer, {}).get(key)
            if value is None:
                return None
        else:
            value = (config["regularizers"] if d.axis in REGULARIZERS else config["train"]).get(d.axis)
            if value is None and d.axis in LATER_REGULARIZERS:  # stored only where it is on: absent, it was off
                value = False if d.axis == "ema_warmup" else REGULARIZERS[d.axis].default
            if value is None:  # a setting the source's code did not have: the sampler draws it
                continue
        _check(d, value, where)
        params[d.axis] = value
    return params


def _layers(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each named layer's fields, from a stored model config (a preset's from its layer list)."""
    if "layers" in model:
        return {layer["name"]: layer for layer in model["layers"] if "name" in layer}
    if model.get("arch"):
        return {layer.name: layer.to_dict() for layer in preset_layers(model["arch"], tuple(model.get("hidden", MLP_HIDDEN)))}
    return {}


def _check(d: Dimension, value: Any, where: str) -> None:
    problem = outside(d, value)
    if problem:
        raise RunnerError(f"[search].start_from: {where}: {d.axis}: {problem}; widen [search.space].{d.axis} "
                          "or leave the study out")
