"""The search's Optuna plumbing: the sampler (seeded per worker, its floats made readable), the pruner, and
one configuration of the space suggested through a trial."""
from __future__ import annotations

import os
import warnings
from typing import Any

import optuna
from optuna.trial import Trial

from runner.spec import SearchSpec, Spec, is_layer_axis
from runner.trials.pool import RESTART_ENV

__all__ = ["make_sampler", "make_pruner", "suggest", "ReadableSampler", "readable", "SAMPLER_STREAMS", "SIGNIFICANT"]

SAMPLER_STREAMS = 64  # sampler seeds a task's workers use (--workers is at most 64)


def make_sampler(search: SearchSpec, worker: int = 0) -> optuna.samplers.BaseSampler:
    """Optuna's sampler, with every argument set (Optuna 5 changed TPE's defaults).

    Worker k draws from seed + k: identical streams would make parallel workers sample the same
    configurations (TPE's first trials are random draws); one worker is repeatable from the seed.
    The workers of task t of a Slurm job array (SLURM_ARRAY_TASK_ID) draw from seed + 64 t + k, so
    that the tasks of `runner launch slurm --tune` do not sample alike either; a worker started again
    after one died (pool.RESTART_ENV) draws a stream of its own, not the dead one's draws again.
    """
    task, restart = os.environ.get("SLURM_ARRAY_TASK_ID", ""), os.environ.get(RESTART_ENV, "")
    seed = search.seed + worker + (SAMPLER_STREAMS * int(task) if task.isdigit() else 0) \
        + (SAMPLER_STREAMS * 10_000 * int(restart) if restart.isdigit() else 0)
    if search.sampler == "random":
        return ReadableSampler(optuna.samplers.RandomSampler(seed=seed))
    # constant_liar: a running trial counts as a bad result, so parallel workers do not all sample
    # the same point; multivariate + group: layer fields exist only for their own model.
    with warnings.catch_warnings():  # group is "experimental" in Optuna 4; it is what conditional spaces need
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return ReadableSampler(optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, n_ei_candidates=24,
                                                          multivariate=True, group=True, constant_liar=True))


SIGNIFICANT = 3  # digits a sampled float keeps: lr 0.0782, not 0.07819127573796913


def readable(value: Any, distribution: optuna.distributions.BaseDistribution) -> Any:
    """A sampled float rounded to 3 significant digits (kept inside its range); any other value as it is."""
    if not isinstance(distribution, optuna.distributions.FloatDistribution) or distribution.step is not None:
        return value
    rounded = float(f"{value:.{SIGNIFICANT}g}")
    return min(max(rounded, distribution.low), distribution.high)


class ReadableSampler(optuna.samplers.BaseSampler):
    """A sampler whose float draws are rounded (see `readable`) before the trial stores them, so the value
    Optuna stores, the one trained with and the one the report shows are one number."""

    def __init__(self, base: optuna.samplers.BaseSampler):
        self.base = base

    def infer_relative_search_space(self, study, trial):  # noqa: ANN001 - Optuna's signature
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # noqa: ANN001
        drawn = self.base.sample_relative(study, trial, search_space)
        return {k: readable(v, search_space[k]) for k, v in drawn.items()}

    def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: ANN001
        return readable(self.base.sample_independent(study, trial, param_name, param_distribution),
                        param_distribution)

    def before_trial(self, study, trial):  # noqa: ANN001
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):  # noqa: ANN001
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


def make_pruner(search: SearchSpec, epochs: int) -> optuna.pruners.BasePruner:
    """Optuna's pruner on the per-epoch validation metric, with every argument set.

    median: no trial is stopped before `warmup_epochs`; with `patience` > 0 it is Optuna's PatientPruner
    around the median pruner: a trial is stopped only after `patience` epochs without improving while
    below the median (slow starters, such as regularized models under a cosine schedule, are spared).
    """
    if search.pruner == "median":
        median = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=search.warmup_epochs,
                                             interval_steps=1, n_min_trials=1)
        if not search.patience:
            return median
        with warnings.catch_warnings():  # PatientPruner is "experimental" in Optuna 5; its behaviour is tested here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.PatientPruner(median, patience=search.patience, min_delta=0.0)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def suggest(trial: Trial, spec: Spec) -> dict[str, Any]:
    """One configuration of the space: a model (if searched) first, then only that model's layer fields."""
    search = spec.search
    assert search is not None
    setting: dict[str, Any] = {}
    dims = {d.axis: d for d in search.space}
    if "model" in dims:
        setting["model"] = trial.suggest_categorical("model", list(dims["model"].choices))
    model = setting.get("model", next(iter(spec.models)))
    for d in search.space:
        if d.axis == "model" or (is_layer_axis(d.axis) and d.axis.split(".")[0] != model):
            continue
        if d.kind == "categorical":
            setting[d.axis] = trial.suggest_categorical(d.axis, list(d.choices))
        elif d.kind == "int":
            setting[d.axis] = trial.suggest_int(d.axis, int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
        else:
            setting[d.axis] = trial.suggest_float(d.axis, float(d.low), float(d.high), step=d.step, log=d.log)
    return setting
