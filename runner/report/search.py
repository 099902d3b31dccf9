"""The search behind a tuned spec: history, per-epoch curves, importances, top configurations.

Read from the Optuna study `<name>-search` (its trials, their per-epoch validation metric kept
as a user attr, pruned trials included) and joined with the confirmation grid study `<name>`,
whose trials give each top configuration's validation and test accuracy over seeds.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from runner.plotting import png, style
from runner.report.data import Config
from runner.report.stats import paired_t
from runner.text import csv_text
from runner.trials.select import (CANDIDATES_ATTR, INFO_ATTR, PROTOCOL, WINNER_ATTR, candidates, select_name,
                                  selection_spec, winner)

__all__ = ["SearchSummary", "TopConfig", "build_search", "search_markdown", "search_json", "history_png",
           "curves_png", "IMPORTANCE_MIN_TRIALS"]

IMPORTANCE_MIN_TRIALS = 20  # below this many complete trials, importances are shown with a warning


@dataclass(frozen=True)
class TopConfig:
    label: str
    seeds: int
    val: tuple[float, ...]  # final validation accuracy per seed (confirmation trials)
    test: tuple[float, ...]  # final test accuracy per seed
    param_count: int


@dataclass(frozen=True)
class Candidate:
    """One configuration of the selection stage, as the report shows it."""

    label: str
    param_count: int | None
    search: float | None  # the search trial's final validation metric (one seed)
    val: tuple[float, ...]  # the selection's final validation metric per seed
    test: tuple[float, ...]  # information only: its selection trials' weights on test, after the choice
    winner: bool


@dataclass(frozen=True)
class Selection:
    """Selection over seeds on validation, then the winner refit and tested."""

    study: str
    protocol: str  # one sentence
    candidates: tuple[Candidate, ...]  # in the search's order
    refit: bool
    train_images: tuple[int, int]  # (the search's training split, the refit's training images)


@dataclass(frozen=True)
class SearchSummary:
    study: str
    metric: str  # val_acc | val_loss
    direction: str
    budget: int
    counts: dict[str, int]  # complete, pruned, fail, running
    history: tuple[tuple[int, float, float], ...]  # (trial number, value, best so far), complete trials
    curves: tuple[tuple[int, str, tuple[float, ...]], ...]  # (number, state, per-epoch metric)
    importances: dict[str, float]
    importance_note: str
    top: tuple[TopConfig, ...]
    sampler: str
    pruner: str
    raw: tuple[str, str] = ("", "")  # search_trials.csv and search_epochs.csv: what its figures come from
    selection: Selection | None = None  # None: a search confirmed by the code before selection over seeds


SEARCH_EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def _raw(trials: list[Any]) -> tuple[str, str]:
    """search_trials.csv (one row per search trial: state, every param, value, count, why it failed) and
    search_epochs.csv (one row per trial-epoch, as the trial reported them)."""
    params = sorted({k for t in trials for k in t.params})
    rows = [[t.number, t.state.name.lower(), *(t.params.get(k) for k in params), t.value,
             t.user_attrs.get("param_count"), t.user_attrs.get("copy_of"), t.user_attrs.get("fail_reason"),
             t.user_attrs.get("config_hash")] for t in trials]
    epochs = [[t.number, e.get("epoch"), *(e.get(c) for c in SEARCH_EPOCH_COLUMNS)]
              for t in trials for e in t.user_attrs.get("epochs", [])]
    return (csv_text(["number", "state", *params, "value", "param_count", "copy_of", "fail_reason", "config_hash"],
                     rows),
            csv_text(["number", "epoch", *SEARCH_EPOCH_COLUMNS], epochs))


def _ci(xs: tuple[float, ...]) -> tuple[float, float, float] | None:
    """(mean, low, high) of a 95% t-interval; None with fewer than 2 values."""
    mean, ci, _ = paired_t(list(xs))  # the t-interval of values is that of their "differences" from 0
    return None if ci is None else (mean, ci[0], ci[1])


def build_search(spec: Any, storage: Any, configs: list[Config],
                 label: Callable[[Any], str] = lambda t: t.user_attrs.get("label", "?")) -> SearchSummary | None:
    """The search's summary, or None when the spec has no [search] or the study is not there.

    Args:
        label: a trial's label, as the report writes it.
    """
    search = spec.search
    name = f"{spec.study.name}-search"
    if search is None or name not in storage.study_names():
        return None
    study = storage.load_study(name)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    states = [t.state.name.lower() for t in trials]
    counts = {s: states.count(s) for s in ("complete", "pruned", "fail", "running")}
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
    settings = study.user_attrs.get(CANDIDATES_ATTR)
    if not settings:
        return None
    select = selection_spec(spec, settings)
    trials = study.get_trials(deepcopy=False)
    cands = candidates(select, trials)
    chosen = study.user_attrs.get(WINNER_ATTR)  # as recorded when it was chosen; else as it would be chosen
    best = next((c for c in cands if c.setting == chosen), None) if chosen else winner(select, cands)
    info = study.user_attrs.get(INFO_ATTR, {})
    by_number = {t.number: t for t in trials}
    value = {json.dumps(t.params, sort_keys=True): t.value for t in searched if t.state == TrialState.COMPLETE}
    rows = []
    for c in cands:
        first = by_number[c.numbers[0]] if c.numbers else None
        rows.append(Candidate(label(first) if first else str(c.setting),
                              first.user_attrs.get("param_count") if first else None,
                              value.get(json.dumps(c.setting, sort_keys=True)), c.values,
                              tuple(info[str(n)] for n in c.numbers if str(n) in info), c is best))
    sizes = [t.user_attrs.get("train_size", 0) for t in trials if t.state == TrialState.COMPLETE]
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
    a = mine[0].user_attrs if mine else {}
    return int(a.get("train_size", 0)), int(a.get("test_size", 0))


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


def _fmt_ci(xs: tuple[float, ...]) -> str:
    ci = _ci(xs)
    if ci is None:
        return f"{xs[0]:.2f}" if xs else "–"
    return f"{ci[0]:.2f} [{ci[1]:.2f}, {ci[2]:.2f}]"


def search_markdown(s: SearchSummary) -> list[str]:
    """The report's section on the search."""
    used = s.counts["complete"] + s.counts["pruned"]
    out = ["## The search", "",
           f"Optuna study `{s.study}`: {s.sampler} sampler, {s.pruner} pruner, on the validation split's "
           f"{'accuracy' if s.metric == 'val_acc' else 'loss'} ({s.metric}); the test split was never evaluated "
           f"during the search. Budget: {used} of {s.budget} finished trials ({s.counts['complete']} complete, "
           f"{s.counts['pruned']} pruned), {s.counts['fail']} failed (not counted: refused over the parameter "
           f"cap, a NaN loss, or interrupted), {s.counts['running']} running.", "",
           "![Optimization history](search-history.png)", "",
           "![Per-epoch validation metric of every trial; pruned trials dashed and marked where they stopped]"
           "(search-curves.png)", ""]
    out += ["### Parameter importances", ""]
    if s.importances:
        out += ["| param | importance |", "|---|---:|"]
        out += [f"| `{k}` | {v:.3f} |" for k, v in s.importances.items()]
        out += [""]
    out += [s.importance_note, ""]
    if s.selection is not None:
        return out + _selection_markdown(s) + [""]
    out += ["### The top configurations, confirmed on test", "",
            "Each trained again with every seed of [study].seeds on the same training images (the validation "
            "split still held out) and evaluated on test: mean [95% t-interval] over seeds.", "",
            "| configuration | parameters | seeds | final val acc (%) | final test acc (%) |",
            "|---|---:|---:|---:|---:|"]
    out += [f"| `{t.label}` | {t.param_count:,} | {t.seeds} | {_fmt_ci(t.val)} | {_fmt_ci(t.test)} |" for t in s.top]
    return out + [""]


def _selection_markdown(s: SearchSummary) -> list[str]:
    sel = s.selection
    words = "val acc (%)" if s.metric == "val_acc" else "val loss"
    out = ["### Selection over seeds, then the winner refit and tested", "", sel.protocol, "",
           f"| candidate | parameters | search: {words}, 1 seed | selection: {words}, mean [95% CI] | "
           "test acc (%), information only |", "|---|---:|---:|---:|---:|"]
    for i, c in enumerate(sel.candidates, 1):
        label = f"**`{c.label}`** (winner)" if c.winner else f"`{c.label}`"
        search = "–" if c.search is None else f"{c.search:.2f}"
        params = "–" if c.param_count is None else f"{c.param_count:,}"
        out.append(f"| {i}. {label} | {params} | {search} | {_fmt_ci(c.val)} | {_fmt_ci(c.test)} |")
    out += ["", "The test column is for information only: it was computed from the selection trials' kept weights "
                "after the winner had been chosen. Picking among the candidates by it would be biased (it would "
                "choose on the test split, and the figure would then overstate the accuracy).", ""]
    win = next((c for c in sel.candidates if c.winner), None)
    t = next((t for t in s.top if win is not None and t.label == win.label), None)  # the winner as <name> tested it
    if t is not None:
        out += ["The winner's two figures, side by side:", "",
                f"| configuration | selection: {words}, on the search's split | confirmation: test acc (%) |",
                "|---|---:|---:|",
                f"| `{win.label}` | {_fmt_ci(win.val)} ({sel.train_images[0]:,} training images) | "
                f"{_fmt_ci(t.test)} ({sel.train_images[1]:,} training images{', refit' if sel.refit else ''}) |", ""]
    return out


def search_json(s: SearchSummary) -> dict[str, Any]:
    """The search part of summary.json."""
    def ci(xs: tuple[float, ...]) -> Any:
        c = _ci(xs)
        return None if c is None else [round(v, 4) for v in c]

    return {"study": s.study, "metric": s.metric, "budget": s.budget, "counts": s.counts,
            "best_value": s.history[-1][2] if s.history else None,
            "importances": {k: round(v, 4) for k, v in s.importances.items()},
            "top": [{"label": t.label, "param_count": t.param_count, "seeds": t.seeds,
                     "val_mean_ci95": ci(t.val), "test_mean_ci95": ci(t.test),
                     "test_mean": round(float(np.mean(t.test)), 4) if t.test else None} for t in s.top],
            "selection": None if s.selection is None else {
                "study": s.selection.study, "protocol": s.selection.protocol, "refit": s.selection.refit,
                "train_images": list(s.selection.train_images),
                "candidates": [{"label": c.label, "param_count": c.param_count, "search_value": c.search,
                                "val": list(c.val), "val_mean_ci95": ci(c.val), "test_information": list(c.test),
                                "winner": c.winner} for c in s.selection.candidates]}}


def history_png(s: SearchSummary) -> bytes:
    """Each complete trial's value and the best so far, against the trial number."""
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=(8, 4.5), layout="constrained")
        ax = fig.subplots()
        if s.history:
            n, v, b = zip(*s.history)
            ax.plot(n, v, "o", ms=4, alpha=0.6, label="complete trial")
            ax.step(n, b, where="post", color="C3", label="best so far")
        ax.set_xlabel("trial number")
        ax.set_ylabel(s.metric.replace("_", " ") + (" (%)" if s.metric.endswith("acc") else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right" if s.direction == "maximize" else "upper right")
        ax.set_title(f"{s.study}: optimization history")
        return png(fig)


def curves_png(s: SearchSummary) -> bytes:
    """The per-epoch validation metric of every trial; pruned ones dashed, an x where they stopped."""
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=(8, 4.5), layout="constrained")
        ax = fig.subplots()
        for number, state, values in s.curves:
            epochs = range(1, len(values) + 1)
            if state == "pruned":
                ax.plot(epochs, values, "--", color="C7", lw=0.8, alpha=0.7)
                ax.plot([len(values)], [values[-1]], "x", color="C3", ms=5)
            else:
                ax.plot(epochs, values, "-", color="C0", lw=1, alpha=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel(s.metric.replace("_", " ") + (" (%)" if s.metric.endswith("acc") else ""))
        if s.metric.endswith("acc") and s.curves:
            finals = [v[-1] for _, st, v in s.curves if st == "complete" and v]
            if finals:
                ax.set_ylim(min(finals) - 2, min(100.0, max(finals) + 0.5))
        ax.grid(True, alpha=0.3)
        ax.set_title("every trial's validation metric per epoch (blue: complete; grey dashed: pruned, x = stopped)")
        return png(fig)
