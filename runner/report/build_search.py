"""The search behind a tuned spec, from storage: history, per-epoch curves, importances, the top
configurations and the selection over seeds.

Read from the Optuna study `<name>-search` (its trials, their per-epoch validation metric kept
as a user attr, pruned trials included) and joined with the confirmation grid study `<name>`,
whose trials give each top configuration's validation and test accuracy over seeds.
"""
from __future__ import annotations

import json
import warnings
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from runner.record import of as stored
from runner.record import search_study, state_of, study_of
from runner.report.contents import Candidate, Config, SearchSummary, Selection, TopConfig
from runner.spec.stages import selection_spec
from runner.text import csv_text
from runner.trials.confirm import PROTOCOL, candidates, select_name, winner

__all__ = ["build_search", "IMPORTANCE_MIN_TRIALS"]

IMPORTANCE_MIN_TRIALS = 20  # below this many complete trials, importances are shown with a warning

SEARCH_EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def _raw(trials: list[Any]) -> tuple[str, str]:
    """search_trials.csv (one row per search trial: state, every param, value, count, why it failed) and
    search_epochs.csv (one row per trial-epoch, as the trial reported them)."""
    params = sorted({k for t in trials for k in t.params})
    rows = [[t.number, state_of(t), *(t.params.get(k) for k in params), t.value,
             stored(t).param_count, stored(t).copy_of, stored(t).fail_reason, stored(t).config_hash]
            for t in trials]
    epochs = [[t.number, e.get("epoch"), *(e.get(c) for c in SEARCH_EPOCH_COLUMNS)]
              for t in trials for e in stored(t).epochs]
    return (csv_text(["number", "state", *params, "value", "param_count", "copy_of", "fail_reason", "config_hash"],
                     rows),
            csv_text(["number", "epoch", *SEARCH_EPOCH_COLUMNS], epochs))


def build_search(spec: Any, storage: Any, configs: list[Config],
                 label: Callable[[Any], str] = lambda t: stored(t).label or "?") -> SearchSummary | None:
    """The search's summary, or None when the spec has no [search] or the study is not there.

    Args:
        label: a trial's label, as the report writes it.
    """
    search = spec.search
    name = search_study(spec.study.name)
    if search is None or name not in storage.study_names():
        return None
    study = storage.load_study(name)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    states = [state_of(t) for t in trials]
    counts = {s: states.count(s) for s in ("complete", "pruned", "fail", "interrupted", "running", "refused")}
    maximize = search.direction == "maximize"
    history, best = [], None
    for t in trials:
        if t.state == TrialState.COMPLETE and t.value is not None:
            best = t.value if best is None else (max if maximize else min)(best, t.value)
            history.append((t.number, float(t.value), float(best)))
    curves = tuple((t.number, t.state.name.lower(), tuple(float(v) for _, v in sorted(t.intermediate_values.items())))
                   for t in trials if t.intermediate_values)
    importances, note = _importances(study, counts["complete"])
    top = tuple(_top(c) for c in configs)
    return SearchSummary(name, search.metric, search.direction, search.trials, counts, tuple(history), curves,
                         importances, note, top, search.sampler, search.pruner, _raw(trials),
                         _selection(spec, storage, trials, label))


def _selection(spec: Any, storage: Any, searched: list[Any], label: Callable[[Any], str]) -> Selection | None:
    """The selection stage `<name>-select`, with each candidate's figures; None when there is none."""
    name = select_name(spec)
    if name not in storage.study_names():
        return None
    study = storage.load_study(name)
    settings = study_of(study).candidates
    if not settings:
        return None
    select = selection_spec(spec, settings)
    trials = study.get_trials(deepcopy=False)
    cands = candidates(select, trials)
    chosen = study_of(study).winner  # as recorded when it was chosen; else as it would be chosen
    best = next((c for c in cands if c.setting == chosen), None) if chosen else winner(select, cands)
    info = study_of(study).test_information
    by_number = {t.number: t for t in trials}
    value = {json.dumps(t.params, sort_keys=True): t.value for t in searched if t.state == TrialState.COMPLETE}
    rows = []
    for c in cands:
        first = by_number[c.numbers[0]] if c.numbers else None
        rows.append(Candidate(label(first) if first else str(c.setting),
                              stored(first).param_count if first else None,
                              value.get(json.dumps(c.setting, sort_keys=True)), c.values,
                              tuple(info[str(n)] for n in c.numbers if str(n) in info), c is best,
                              tuple((by_number[n].params["seed"], stored(by_number[n]).reused_from) for n in c.numbers
                                    if stored(by_number[n]).reused_from is not None)))
    sizes = [stored(t).train_size or 0 for t in trials if t.state == TrialState.COMPLETE]
    train = sizes[0] if sizes else 0
    refit, test = _confirmed_sizes(storage, spec, best.setting if best else {})
    on = (f"all {refit:,} training images (the validation split included: refit)" if spec.search.refit
          else f"the same {train:,} training images")
    protocol = PROTOCOL.format(top=len(settings), seeds=", ".join(map(str, spec.study.seeds)), train=train,
                               refit=on, test=test, words="accuracy" if spec.search.metric == "val_acc" else "loss")
    return Selection(name, protocol, tuple(rows), spec.search.refit, (train, refit))


def _confirmed_sizes(storage: Any, spec: Any, setting: dict[str, Any]) -> tuple[int, int]:
    """(training images, test images) of the confirmation trials of `setting`, the winner."""
    trials = storage.load_study(spec.study.name).get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    mine = [t for t in trials if setting and all(t.params.get(k) == v for k, v in setting.items())]
    a = stored(mine[0]) if mine else None
    return (int(a.train_size or 0), int(a.test_size or 0)) if a else (0, 0)


def _importances(study: optuna.Study, complete: int) -> tuple[dict[str, float], str]:
    if complete < 2:
        return {}, f"{complete} complete trial(s): too few to estimate importances."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as e:
        return {}, f"Optuna could not estimate importances: {e}"
    note = ("" if complete >= IMPORTANCE_MIN_TRIALS else
            f"Only {complete} complete trials: fANOVA importances from so few are rough; do not read much "
            "into their order. ")
    note += ("Importances are Optuna's fANOVA (optuna.importance), over the complete trials and the params "
             "every complete trial has (a model's layer fields only count when every trial chose that model).")
    return {k: float(v) for k, v in imp.items()}, note


def _top(c: Config) -> TopConfig:
    val = tuple(float(v) for v in c.final_val)
    return TopConfig(c.label, len(c.seeds), val, tuple(float(x) for x in c.final_acc), c.param_count)
