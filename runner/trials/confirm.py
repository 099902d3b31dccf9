"""A search's confirmation (`confirm_search`): selection over seeds on the validation split, then the winner
refit and tested.

1. `<name>-select`: the search's `top` configurations (by its validation metric, one seed each) are
   trained again on the search's own split with every seed of [study].seeds; the test split is never
   evaluated there. The winner is the best mean validation metric over the seeds.
2. `<name>`: the winner alone, with every seed, trained on all the training images (train +
   validation, `[search].refit = true`) or on the search's split (`false`), and tested: the figure
   the search reports.
3. Only then, for information, each candidate's kept weights of step 1 are evaluated on test
   (a study user attr of `<name>-select`); choosing among them by it would be biased.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from runner import record
from runner.data import Data
from runner.spec import Spec
from runner.spec.stages import confirm_spec, selection_spec
from runner.store import Store, worker_name
from runner.trials.grid import GridResult, distributions, fixed_choices, model_choices, run_grid
from runner.trials.lifecycle import Log, load
from runner.trials.settings import RunSettings
from runner.weights import KeptError, exported_accuracy, load_kept

__all__ = ["confirm_search", "reuse_search_trials", "Candidate", "select_name", "candidates", "winner",
           "test_information", "PROTOCOL", "finished"]

PROTOCOL = ("The search's top {top} configurations by validation {words} (one seed each) were trained again "
            "with seeds {seeds} on the same {train:,} training images, and the one with the best mean validation "
            "{words} was chosen; only then was it trained with each seed on {refit}, and tested on the "
            "{test:,} test images.")


def select_name(spec: Spec) -> str:
    """The grid study of the selection stage: `<name>-select`."""
    return record.select_study(spec.study.name)


@dataclass(frozen=True)
class Candidate:
    """One configuration of the selection stage and what its seeds reached on validation."""

    setting: dict[str, Any]
    rank: int  # 1 = the search's best by its own (one-seed) validation metric
    numbers: tuple[int, ...]  # its complete trials in <name>-select
    values: tuple[float, ...]  # their final validation metric, in the same order
    seeds: int  # seeds it should have

    @property
    def mean(self) -> float | None:
        """The mean over seeds, once every seed is complete."""
        return sum(self.values) / len(self.values) if len(self.values) == self.seeds else None


def candidates(select: Spec, trials: list[FrozenTrial]) -> list[Candidate]:
    """Each setting of the selection spec with its complete trials, in the search's order."""
    by_hash = {record.of(t).config_hash: t for t in trials if t.state == TrialState.COMPLETE}
    out = []
    for rank, setting in enumerate(select.settings(), 1):
        seeds = [select.point(setting, seed) for seed in select.study.seeds]
        done = [by_hash[p.config_hash] for p in seeds if p.config_hash in by_hash]
        out.append(Candidate(setting, rank, tuple(t.number for t in done), tuple(t.value for t in done),
                             len(select.study.seeds)))
    return out


def finished(cands: list[Candidate]) -> bool:
    """Whether every candidate has every seed complete: only then is a winner chosen."""
    return all(c.mean is not None for c in cands)


def winner(select: Spec, cands: list[Candidate]) -> Candidate | None:
    """The best mean validation metric over the seeds (ties: the search's order); None until every candidate
    has every seed (a winner chosen from an unfinished selection could differ from the one chosen later)."""
    if not cands or not finished(cands):
        return None
    ready = cands
    sign = -1 if select.study.direction == "maximize" else 1
    return min(ready, key=lambda c: (sign * c.mean, c.rank))


def test_information(store: Store, study: optuna.Study, data: Data, artifacts: str | None = None,
                     module_dir: str = ".") -> dict[str, float]:
    """Evaluate the kept weights of every complete selection trial on the test split, once the winner is
    chosen; stored as the study's test_information {trial number: test accuracy} and returned. A trial without
    kept weights ([study].keep = "none") is left out."""
    out = dict(record.study_of(study).test_information)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        weights = record.of(t).weights
        if str(t.number) in out or weights is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                _, model = load_kept(store, study.study_name, t, Path(tmp), artifacts, module_dir)
            except KeptError:
                continue
        out[str(t.number)] = exported_accuracy(model, data.test)
    study.set_user_attr(record.TEST_INFORMATION, out)
    return out


REUSER = "reused"  # the worker name that claims a selection point for a search trial standing in for it, with its
# host:pid: a claim's own worker takes it back, so two processes copying at once must not share one name


def reuse_search_trials(spec: Spec, select: Spec, url: str | None) -> list[str]:
    """Each candidate's complete search trial as its selection trial for the seed it was trained with, where the
    selection's point is the same (configuration, split and seed: the same config hash): a COMPLETE trial of
    <name>-select with the search trial's record, value, epochs and validation predictions, its weights the
    same artifact, and `reused_from` naming it. One line per trial reused."""
    store = Store(url)
    reuser = f"{REUSER} {worker_name()}"
    try:
        search_name = record.search_study(spec.study.name)
        trained = {}
        for t in store.load_study(search_name).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if record.of(t).copy_of is None:  # a copy stands for a trial trained once; that one is reused
                trained.setdefault(record.of(t).config_hash, t)
        study = store.open_study(select.study.name, select.study.direction)
        study_id = store.optuna.get_study_id_from_name(select.study.name)
        choices, fixed = model_choices(select, study), fixed_choices(select, study)
        lines = []
        claimed = store.claims(select.study.name)
        for point in select.points():
            t = trained.get(point.config_hash)
            if t is None or point.config_hash in claimed or \
                    store.claim(select.study.name, point.config_hash, reuser, math.inf) is None:
                continue  # not searched at this seed, or complete, failed or running already (another machine)
            source = f"{search_name} trial {t.number}"
            copy = optuna.trial.create_trial(state=TrialState.COMPLETE, value=t.value, params=point.params,
                                             distributions=distributions(point, choices, fixed),
                                             user_attrs=record.reused_record(t, source),
                                             intermediate_values=dict(t.intermediate_values))
            # its id from the call that made it: the study's last trial may be another process's copy
            new = store.optuna.create_new_trial(study_id, template_trial=copy)
            searched = store.trial_ids(search_name, [t.number])[t.number]
            for split, p in (("val", store.predictions([searched], "val").get(searched)),):
                if p is not None:
                    store.add_predictions(select.study.name, new, split, p)
            store.update_claim(select.study.name, point.config_hash, reuser, trial_id=new)
            store.complete_claim(select.study.name, point.config_hash, reuser)
            lines.append(f"{select.study.name}: {point.label()} seed={point.seed}: {source} is this point (the same "
                         "configuration, split and seed), reused, not trained again")
        return lines
    finally:
        store.dispose()


def confirm_search(spec: Spec, settings: list[dict[str, Any]], url: str | None, run: RunSettings, progress: Any,
                   log: Log) -> tuple[GridResult, GridResult | None]:
    """Selection over seeds on validation, then the winner refit and tested (the steps above)."""
    seeds = ", ".join(map(str, spec.study.seeds))
    store = Store(url)
    study = store.open_study(select_name(spec), spec.search.direction)
    chosen = record.study_of(study).candidates
    if chosen is not None:  # chosen once: a rerun, or another machine, selects among the same
        settings = chosen
    else:
        study.set_user_attr(record.CANDIDATES, settings)  # the search's order, which the report reads back
    store.dispose()
    select = selection_spec(spec, settings)
    log(f"{select.study.name}: the top {len(settings)} trained again with seeds {seeds} on the validation split "
        "(never tested): the best mean validation metric wins")
    for line in reuse_search_trials(spec, select, url):
        log(line)
    selected = run_grid(select, url, run, progress)
    store = Store(url)
    study = store.load_study(select.study.name)
    cands = candidates(select, study.get_trials(deepcopy=False))
    best = winner(select, cands)
    if best is None:  # a seed failed, or another worker or machine is still training one
        done = sum(len(c.values) for c in cands)
        log(f"{select.study.name}: {done} of {len(cands) * len(spec.study.seeds)} selection trials complete: no "
            "winner is chosen, nothing is tested; run the same command again once they are")
        store.dispose()
        return selected, None
    if record.study_of(study).winner is None:
        study.set_user_attr(record.WINNER, best.setting)
    log(f"{select.study.name}: the winner is candidate {best.rank} (mean {spec.search.metric} {best.mean:.2f} "
        f"over {len(best.values)} seeds)")
    on = "all the training images (train + validation)" if spec.search.refit else "the search's training split"
    log(f"{spec.study.name}: the winner trained with seeds {seeds} on {on}, and tested")
    confirmed = run_grid(confirm_spec(spec, [best.setting]), url, run, progress)
    test_information(store, study, load(spec), run.artifacts, str(Path(spec.path).parent))
    store.dispose()
    return selected, confirmed
