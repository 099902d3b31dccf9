"""`runner grid`: a spec's points as Optuna trials, each claimed, trained and recorded exactly once.

Every (setting, seed) of the spec is one point; a worker claims it, trains it through the trial
lifecycle (runner.trials.lifecycle) with a checkpoint after every epoch, and stores it as a
COMPLETE trial whose params are the model, every axis and the seed. Run again, it trains only what
is missing; a dead worker's point is taken over and resumes from its last checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from runner import plan, record
from runner.data import Data
from runner.distill import check_teacher, keep_teacher
from runner.spec.teacher import describe
from runner.dberrors import sqlite_path
from runner.errors import RunnerError, StorageError
from runner.keys import choices_text
from runner.text import plural, toml_literal
from runner.models.layers import ACTIVATIONS, POOLS
from runner.optim import OPTIMIZERS, SCHEDULES
from runner.spec import AUGMENTS, Point, Spec, is_layer_axis
from runner.spec.tables import point_table
from runner.store import Store, artifacts_dir, checkpoint_dir, storage_url, study_folder
from runner.models.counts import ParamTable
from runner.train import EpochMetrics
from runner.trials.checkpoints import Checkpoints
from runner.trials.lifecycle import Channel, Log, TrialRun, abandon, load, prepare
from runner.trials.settings import MAX_POINTS, RunSettings
from runner.sources import adopt_stored_source, known_structures, remember_sources, stale_sources
from runner.trials.standing import best_line, changed_lines, count_line, next_lines, standing
from runner.trials.trial import Opened, TrialWorker
from runner.trials.devices import on_gpus, worker_envs
from runner.trials.pool import queue_channel, run_processes, threads_per_worker, worker_process

__all__ = ["GridResult", "MAX_POINTS", "check_size", "run_grid", "distributions", "model_choices", "fixed_choices",
           "pending", "stored_lines", "end_lines", "plan_lines", "GridWorker"]

# Categorical params need the same choices in every trial of a study (Optuna's rule), so each
# categorical axis has one fixed universe; numbers are single-point Float/Int distributions.
FIXED_CHOICES: dict[str, tuple[Any, ...]] = {
    "batch_norm": (False, True), "augment": AUGMENTS, "optimizer": tuple(OPTIMIZERS), "schedule": tuple(SCHEDULES),
}
# The same for a layer field ("MODEL.LAYER.FIELD"), by field.
FIELD_CHOICES: dict[str, tuple[Any, ...]] = {"act": tuple(ACTIVATIONS), "pool": tuple(POOLS), "bn": (False, True)}


@dataclass
class GridResult:
    total: int  # points in the spec
    done_before: int  # complete before this run
    ran: int  # completed by this run (all workers)
    failed: int  # failed in this run
    deaths: tuple[str, ...] = ()  # workers that died (a line each); their points went to live workers


def check_size(spec: Spec, max_points: int = MAX_POINTS) -> None:
    """Refuse a grid of more than `max_points` points, in one line with the count and what multiplies it."""
    n = spec.point_count()
    if n > max_points:
        raise RunnerError(f"{spec.path}: {n:,} points ({spec.grid_factors()}), more than the {max_points:,} "
                          f"runner grid runs at once: fewer values, or --max-points {n} to run them all")


def distributions(point: Point, model_choices: tuple[str, ...],
                  fixed: dict[str, tuple[Any, ...]] = FIXED_CHOICES) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each of the point's params (`fixed`: the study's, see fixed_choices)."""
    out: dict[str, BaseDistribution] = {"model": CategoricalDistribution(model_choices)}
    for name, value in point.params.items():
        if name == "model":
            continue
        choices = FIELD_CHOICES.get(name.split(".")[2]) if is_layer_axis(name) else fixed.get(name)
        if choices is not None:
            out[name] = CategoricalDistribution(choices)
        elif isinstance(value, int):
            out[name] = IntDistribution(value, value)
        else:
            out[name] = FloatDistribution(value, value)
    return out


def model_choices(spec: Spec, study: optuna.Study) -> tuple[str, ...]:
    """The model param's choices: the study's, if it has trials, so that they never change."""
    names = tuple(sorted(spec.models))
    trials = study.get_trials(deepcopy=False)
    if not trials or "model" not in trials[0].distributions:
        return names
    old = tuple(trials[0].distributions["model"].choices)
    missing = [n for n in names if n not in old]
    if missing:
        raise StorageError(f"study {spec.study.name!r} was created with models {', '.join(old)}; "
                           f"new model(s) {', '.join(missing)} need a new [study].name")
    return old


def fixed_choices(spec: Spec, study: optuna.Study) -> dict[str, tuple[Any, ...]]:
    """Each categorical axis's choices: the study's own where its trials have the param, so that they never
    change (augment's grew "elastic" after studies were stored); a value they cannot hold is refused."""
    trials = study.get_trials(deepcopy=False)
    out = {}
    for axis, choices in FIXED_CHOICES.items():
        old = next((t.distributions[axis] for t in trials if axis in t.distributions), None)
        out[axis] = tuple(old.choices) if isinstance(old, CategoricalDistribution) else choices
    grown = {a for a, c in out.items() if c != FIXED_CHOICES[a]}
    for setting in spec.iter_settings(grown) if grown else ():
        params = spec.point(setting, spec.study.seeds[0]).params
        for a in sorted(grown):
            if a in params and params[a] not in out[a]:
                raise StorageError(f"study {spec.study.name!r} was created with {a} "
                                   f"{choices_text(out[a])}; {a} = {toml_literal(params[a])} needs a new [study].name")
    return out


def pending(spec: Spec, store: Store, retry_failed: bool = False) -> tuple[list[Point], int]:
    """(points not yet complete, number complete)."""
    claims = store.claims(spec.study.name)
    points = spec.points()
    done = sum(1 for p in points if (c := claims.get(p.config_hash)) and c.state == "complete")
    todo = [p for p in points if not ((c := claims.get(p.config_hash)) and
                                      (c.state == "complete" or (c.state == "failed" and not retry_failed)))]
    return todo, done


def stored_lines(spec: Spec, url: str | None, retry_failed: bool = False) -> list[str]:
    """What `runner grid` would say of the stored trials before training (for --dry-run): how many points are
    complete in the storage and how many would run; which points changed since their trials were stored (the
    field, and what the storage has instead); which trials a user's module still counts after an edit of its
    form, and which an earlier version of its code made and whose points train again. Reading never writes."""
    nothing = [f"{plural(spec.point_count(), 'point')}: 0 complete in the storage (no study {spec.study.name!r} "
               f"there yet), {spec.point_count()} to run"]
    path = sqlite_path(storage_url(url))
    if path is not None and not path.exists():
        return nothing
    store = Store(url, create=False)  # a database that cannot be read (a newer runner's, a wrong password) says so
    try:
        if spec.study.name not in store.study_names():
            return nothing
        study = store.load_study(spec.study.name)
        trials = study.get_trials(deepcopy=False)
        spec, adopted = adopt_stored_source(spec, trials, known_structures(trials, record.study_of(study)))
        todo, done = pending(spec, store, retry_failed)
        return [count_line(spec, standing(spec, store, todo, done)), *changed_lines(spec, trials), *adopted,
                *stale_sources(spec, trials, todo)]
    finally:
        store.dispose()


def end_lines(spec: Spec, url: str | None) -> list[str]:
    """What `runner grid` ends with, read from the storage (every process's trials, not this one's alone): the
    count, the best result so far, and the report and trials commands to run next."""
    store = Store(url, create=False)
    try:
        study = store.load_study(spec.study.name)
        trials = study.get_trials(deepcopy=False)
        spec, _ = adopt_stored_source(spec, trials, known_structures(trials, record.study_of(study)))
        todo, done = pending(spec, store)
        now = standing(spec, store, todo, done)
    finally:
        store.dispose()
    failed = f", {now.failed} failed (see `runner trials`; --retry-failed runs them again)" if now.failed else ""
    best = best_line(spec, now)
    return [f"{spec.study.name}: {now.complete} of {now.total} trials complete{failed}", *([best] if best else []),
            *next_lines(spec, url)]


def plan_lines(spec: Spec, url: str | None) -> list[str]:
    """What `runner grid --dry-run` says of the stored plan: that this spec would change it (and whether test results
    exist, which make the verdicts exploratory), or that it would unlock a locked study; nothing else. Reading
    never writes."""
    try:
        store = Store(url, create=False)
    except RunnerError:
        return []
    try:
        if spec.study.name not in store.study_names():
            return []
        study = store.load_study(spec.study.name)
        try:
            plan.check_lock(study, spec)
        except plan.LockError as e:
            return [f"runner grid would refuse it: {e}"]
        return plan.pending_change(study, spec, plan.test_results(study.get_trials(deepcopy=False), spec))
    finally:
        store.dispose()


class GridWorker(TrialWorker):
    """Claims points one by one and trains each as one trial (runner.trials.trial), checkpointed after every
    epoch; its trials report their value to Optuna after every epoch, and are never pruned."""

    def __init__(self, spec: Spec, store: Store, data: Data, run: RunSettings, out: Channel, threads: int,
                 gpu: int | None = None):
        super().__init__(spec, store, run, out, threads, gpu)
        self.tested, self.study_name, self.metric = spec.tested, spec.study.name, spec.study.metric
        self.data = data if spec.tested else data.untested()
        self.retry_failed = run.retry_failed
        # where complete trials' weights go; None: kept nowhere
        self.artifacts = artifacts_dir(store.url, run.artifacts) if spec.study.keep == "all" else None
        self.checkpoints = Checkpoints(checkpoint_dir(store.url, run.checkpoints) / study_folder(spec.study.name))
        self.study = store.open_study(spec.study.name, spec.study.direction)
        self.study_id = store.optuna.get_study_id_from_name(spec.study.name)
        self.choices = model_choices(spec, self.study)
        self.fixed = fixed_choices(spec, self.study)

    def run(self, points: list[Point]) -> None:
        """Train every point of `points` that this worker manages to claim; then, while it claimed any,
        look again: a point another worker gave back meanwhile (it was stopped) is taken over here."""
        self._teacher()  # before any claim: a teacher this worker cannot load stops it here, in one line
        tried: set[str] = set()
        while points:
            claimed = self._pass(points)
            if not claimed:
                return
            tried |= claimed
            todo = self.db(lambda: pending(self.spec, self.store, self.retry_failed)[0])
            points = [p for p in todo if p.config_hash not in tried]

    def _pass(self, points: list[Point]) -> set[str]:
        claimed = set()
        for i, point in enumerate(points, 1):
            if self.take(self.spec.study.name, point.config_hash, self.retry_failed) is None:
                continue
            claimed.add(point.config_hash)
            self.live([(self.spec.study.name, point.config_hash)], lambda: self._open(point, f"[{i}/{len(points)}]"),
                      point.config_hash)
        return claimed

    def _open(self, point: Point, where: str) -> Opened:
        """The claimed point as a RUNNING trial of its params, with its record."""
        table = point_table(point)
        trial_id = self.trial_id = self.db(lambda: self.store.optuna.create_new_trial(
            self.study_id, self._template(point, table)))
        number = self.db(lambda: self.store.optuna.get_trial_number_from_id(trial_id))
        # Optuna's per-epoch value: the study's validation metric when it ranks by one; else test
        # accuracy, as always stored for test-ranked studies
        metric = self.metric if self.metric.startswith("val_") else "test_acc"

        def report(m: EpochMetrics, run: TrialRun) -> None:
            value = getattr(m, metric)
            run.later(lambda: self.store.optuna.set_trial_intermediate_value(trial_id, m.epoch, value))

        return Opened(trial_id, number, point, table, f"{where} trial {number}: {point.label()} seed={point.seed}",
                      report)

    def _template(self, point: Point, table: ParamTable) -> FrozenTrial:
        return FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                           datetime_complete=None, params=point.params,
                           distributions=distributions(point, self.choices, self.fixed),
                           user_attrs=self.record(point, self.data, table),
                           system_attrs={}, intermediate_values={}, trial_id=0)


def run_grid(spec: Spec, url: str | None, run: RunSettings = RunSettings(), progress: Any = None,
             log: Log = lambda s: None) -> GridResult:
    """Run every point of `spec` not yet complete in the storage at `url`, as `run` says.

    Args:
        progress: a runner.progress.Progress: its lines, and a count of trial-epochs for its bar.
        log: called with each line of progress (ignored when `progress` is given).
    """
    if progress is not None:
        log = progress.log
    out = Channel(log, progress.advance if progress is not None else (lambda n: None))
    check_size(spec, run.max_points)
    ready = prepare(spec, run.workers, run.gpus)  # bad data, a model or workers that do not fit fail here, first
    spec, data, placed = ready.spec, ready.data, ready.placed
    spec = check_teacher(spec, data, storage_url(url), run.artifacts, spec.tested)  # and a teacher that cannot teach
    if spec.train.teacher is not None:
        log(f"teacher: {describe(spec.train.teacher)}")
    store = Store(url)
    study = store.open_study(spec.study.name, spec.study.direction)  # fail early on a direction conflict
    stored = study.get_trials(deepcopy=False)
    plan.lock(study, spec)  # a study stored locked stays locked
    keep_teacher(study, spec)  # the teacher its first run bound, or a one-line refusal
    spec, adopted = adopt_stored_source(spec, stored, known_structures(stored, record.study_of(study)))
    remember_sources(study, spec)
    for line in plan.store_plan(study, spec, plan.test_results(stored, spec), len(stored)):
        log(line)
    todo, done = pending(spec, store, run.retry_failed)
    for line in [*adopted, *stale_sources(spec, stored, todo)]:
        log(line)
    total = spec.point_count()
    log(f"{spec.study.name}: {done} of {total} trials complete; {len(todo)} to run"
        + (f" on {run.workers} workers" if run.workers > 1 and todo else "") + (on_gpus(placed) if todo else ""))
    if not todo:
        return GridResult(total, done, 0, 0)
    if progress is not None:
        progress.start(sum(p.train.epochs for p in todo))
    threads = threads_per_worker(spec, run.workers)
    if run.workers == 1:
        w = GridWorker(spec, store, data, run, out, threads, placed[0])
        w.run(todo)
        store.dispose()
        return GridResult(total, done, w.ran, w.failed)
    store.dispose()
    del data  # each worker loads its own copy
    ended = run_processes(_worker_main, [(spec, store.url, run, threads, i) for i in range(run.workers)], log,
                          out.tick, worker_envs(placed),
                          lambda worker, reason: abandon(store.url, [spec.study.name], worker, reason))
    return GridResult(total, done, ended.ran, ended.failed + len(ended.deaths), tuple(ended.deaths))


def _worker_main(spec: Spec, url: str, run: RunSettings, threads: int, index: int, queue: Any) -> None:
    """A worker process: its own store and data; claims decide which points it trains."""
    def body() -> tuple[int, int]:
        store = Store(url)
        w = GridWorker(spec, store, load(spec), run, queue_channel(queue, index), threads)
        todo, _ = pending(spec, store, run.retry_failed)
        w.run(todo)
        store.dispose()
        return w.ran, w.failed

    worker_process(index, queue, body)
