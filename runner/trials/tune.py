"""`runner tune`: an Optuna search on the validation split, then the best configurations on test.

The search is the Optuna study `<name>-search`. Each trial samples the spec's [search.space]
(Optuna's TPE or random sampler, seeded), trains on the training images without the validation
split, reports the validation metric after every epoch (Optuna's pruner may stop it there), and
never sees the test split: its images are not even moved to the device. The budget of finished
trials is global: it is `trials` slots in the same claims table that makes grid points run
exactly once, so N workers or machines together finish exactly `trials`; a worker killed
mid-trial leaves its trial FAIL and its slot to be taken over. [search].enqueue points and the best
configurations of [search].start_from studies are its first trials (runner.trials.warmstart).
Then the `top` configurations by validation metric are trained again with every seed and the
best mean is refit and tested (runner.trials.select), as ordinary grid studies, so `runner
report` and `runner trials` read them unchanged.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from runner.data import Data
from runner.errors import RunnerError
from runner.spec import SearchSpec, Spec, is_layer_axis
from runner.spec.tables import point_table
from runner.store import Store
from runner.train import EpochMetrics
from runner.trials.grid import GridResult, run_grid
from runner.trials.lifecycle import (GRACE_S, Log, StopTrial, Tick, TrialRun, Worker, abandon, give_back, load,
                                     prepare)
from runner.trials.devices import on_gpus, worker_envs
from runner.trials.pool import RESTART_ENV, run_processes, threads_per_worker, worker_process
from runner.trials.select import (CANDIDATES_ATTR, WINNER_ATTR, candidates, confirm_spec, select_name, selection_spec,
                                  test_information, winner)
from runner.trials.warmstart import warm_start

__all__ = ["TuneResult", "run_tune", "search_name", "make_sampler", "make_pruner", "suggest", "top_settings",
           "confirm_search", "budget", "SearchWorker", "ReadableSampler", "readable"]

REFUSALS_MAX = 200  # sampled configurations over max_params in a row before the search gives up
BUSY_WAIT_S = 2.0  # after sampling a configuration another worker is training


@dataclass
class TuneResult:
    trials: int  # the budget
    finished: int  # complete or pruned, all workers
    failed: int
    confirm: GridResult | None  # the winner tested; None with --no-confirm
    deaths: tuple[str, ...] = ()  # search workers that died (a line each); their slots went to live workers
    select: GridResult | None = None  # the selection over seeds on validation


def search_name(spec: Spec) -> str:
    """The Optuna study of the search: `<name>-search`."""
    return f"{spec.study.name}-search"


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


def budget(study: optuna.Study) -> tuple[int, int]:
    """(finished: complete or pruned, failed) trials of a search."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return (sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
            sum(s == TrialState.FAIL for s in states))


class _Pruned(StopTrial):
    """Raised from the epoch callback when Optuna's pruner stops the trial."""


class SearchWorker(Worker):
    """Takes budget slots one by one and runs a sampled trial in each."""

    def __init__(self, spec: Spec, store: Store, data: Data, threads: int, log: Log, tag: str,
                 stale_after: float, tick: Tick, index: int = 0, gpu: int | None = None):
        super().__init__(spec, store, threads, log, tag, tick, stale_after, gpu)
        self.index = index
        self.search = spec.search
        self.data = data.untested()  # the test split is not even kept
        self.study = self._study()
        self.start = time.monotonic()

    def _study(self) -> optuna.Study:
        name = search_name(self.spec)
        self.store.open_study(name, self.search.direction)  # created here, direction checked
        return optuna.load_study(study_name=name, storage=self.store.optuna, sampler=make_sampler(self.search, self.index),
                                 pruner=make_pruner(self.search, self.spec.train.epochs))

    def run(self) -> None:
        """Fill budget slots until every one is done or taken (or the timeout)."""
        refusals = 0
        while True:
            slot = self._next_slot()
            if slot is None:
                return
            self.trial_id: int | None = None
            self.held = [(search_name(self.spec), slot)]
            try:
                outcome = self._run_slot(slot)
            except BaseException:  # an interrupt at any moment: nothing left RUNNING, the slot given back
                give_back(self.store, self.held, self.name, self.trial_id)
                raise
            if outcome == "busy":  # another worker trains this configuration: let the sampler move on
                time.sleep(BUSY_WAIT_S)
                continue
            refusals = refusals + 1 if outcome == "refused" else 0
            if refusals >= REFUSALS_MAX:
                raise RunnerError(f"[search].max_params: {REFUSALS_MAX} sampled configurations in a row have more "
                                  f"than {self.search.max_params:,} parameters; narrow [search.space]")

    def _next_slot(self) -> str | None:
        """A budget slot to fill (taken atomically), or None when every slot is done or taken."""
        if self.search.timeout_s is not None and time.monotonic() - self.start > self.search.timeout_s:
            self.log(f"{self.tag}[search].timeout reached: no new trials")
            return None
        for k in range(self.search.trials):
            slot = f"slot-{k:05d}"
            if self.take(search_name(self.spec), slot, retry_failed=True) is not None:
                return slot
        return None

    def _run_slot(self, slot: str) -> str:
        name = search_name(self.spec)
        trial = self.study.ask()
        self.trial_id = trial._trial_id
        setting = suggest(trial, self.spec)
        point = self.spec.point(setting, self.spec.study.seeds[0])
        table = point_table(point)
        for k, v in self.record(point, self.data, table, slot=slot).items():
            self.store.optuna.set_trial_user_attr(trial._trial_id, k, v)
        run = TrialRun(self.store, self.name, trial._trial_id, [(name, slot)],
                       finish=lambda state, value: self.study.tell(trial, value, state=state))
        cap = self.search.max_params
        if cap and table.total > cap:
            run.fail(f"{table.total:,} parameters > [search].max_params {cap:,}: not trained")
            return "refused"
        config = f"config-{point.config_hash}"  # one evaluation per configuration, whatever the workers
        if self.take(name, config, retry_failed=True) is None:
            return self._duplicate(run, trial, config)
        self.held.append((name, config))
        run.hold(name, config)
        self.log(f"{self.tag}[{slot}] trial {trial.number}: {point.label()}  ({table.total:,} parameters)")
        epochs: list[dict[str, Any]] = []
        metric = self.search.metric

        def on_epoch(m: EpochMetrics) -> None:
            epochs.append({k: v for k, v in asdict(m).items() if not k.startswith("test_")})
            self.store.optuna.set_trial_user_attr(trial._trial_id, "epochs", epochs)
            trial.report(getattr(m, metric), m.epoch)
            run.beat()
            self.tick(1)
            self.log(f"{self.tag}  epoch {m.epoch}/{point.train.epochs}  train loss {m.train_loss:.4f} "
                     f"acc {m.train_acc:.2f}%  val loss {m.val_loss:.4f} acc {m.val_acc:.2f}%  ({m.seconds:.1f} s)")
            if trial.should_prune():
                raise _Pruned

        try:
            trained = run.train(point, self.data, self.device, on_epoch, evaluate_test=False)
        except _Pruned:
            run.complete(None, TrialState.PRUNED)
            self.tick(point.train.epochs - len(epochs))
            self.log(f"{self.tag}  trial {trial.number} pruned after epoch {len(epochs)}")
            self.ran += 1
            return "pruned"
        if trained is None:  # failed: its slot is tried again
            self.tick(point.train.epochs - len(epochs))
            self.failed += 1
            return "failed"
        run.complete(getattr(trained[1][-1], metric))
        self.ran += 1
        return "complete"

    def _duplicate(self, run: TrialRun, trial: Trial, config: str) -> str:
        """A configuration already evaluated (or being evaluated): never trained twice."""
        name = search_name(self.spec)
        other = self.store.claims(name).get(config)
        done = None if other is None or other.trial_id is None else self.store.optuna.get_trial(other.trial_id)
        if other is not None and other.state == "complete" and done is not None:
            # the same configuration and seed train to the same result: its outcome stands for this trial
            self.store.optuna.set_trial_user_attr(trial._trial_id, "copy_of", done.number)
            if done.state == TrialState.COMPLETE:
                run.complete(done.value)
            else:
                run.complete(None, TrialState.PRUNED)
            self.tick(self.spec.train.epochs)
            return "copied"
        who = f"trial {done.number}" if done is not None else "another worker"
        run.fail(f"the same configuration as {who}, being evaluated now: not trained twice")
        return "busy"


def top_settings(spec: Spec, study: optuna.Study) -> list[dict[str, Any]]:
    """The `top` distinct configurations of the search's complete trials, best validation metric first."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    maximize = spec.search.direction == "maximize"
    complete.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
    out, seen = [], set()
    for t in complete:
        setting = {k: v for k, v in t.params.items()}
        key = t.user_attrs.get("config_hash")
        if key in seen:
            continue
        seen.add(key)
        out.append(setting)
        if len(out) == spec.search.top:
            break
    return out


def run_tune(spec: Spec, url: str | None, workers: int = 1, confirm: bool = True, progress: Any = None,
             stale_after: float = GRACE_S, artifacts: str | None = None, gpus: str | None = None,
             checkpoints: str | None = None) -> TuneResult:
    """Run the search until its budget is spent (or its timeout), then confirm the top configurations.

    Args:
        gpus: "0,2" (--gpus): the GPUs the workers are shared out among (default: every visible one).
        checkpoints: the folder of the confirmation trials' epoch checkpoints (default: beside the SQLite file).
    """
    search = spec.search
    if search is None:
        raise RunnerError(f"{spec.path}: no [search] section: `runner tune` needs one (see runner tune --help)")
    log = progress.log if progress is not None else (lambda s: None)
    tick = progress.advance if progress is not None else (lambda n: None)
    ready = prepare(spec, workers, gpus)  # bad data, a model or workers that do not fit fail here, before the storage
    spec, data, placed = ready.spec, ready.data, ready.placed
    store = Store(url)
    name = search_name(spec)
    study = store.open_study(name, search.direction)
    finished, failed = budget(study)
    left = max(0, search.trials - finished)
    if left:
        warm_start(spec, store, study, log)
    log(f"{name}: {finished} of {search.trials} trials finished; {left} to run"
        + (f" on {workers} workers" if workers > 1 and left else "") + (on_gpus(placed) if left else ""))
    deaths: list[str] = []
    if left:
        if progress is not None:
            progress.start(left * spec.train.epochs)
        threads = threads_per_worker(spec, workers)
        if workers == 1:
            SearchWorker(spec, store, data, threads, log, "", stale_after, tick, gpu=placed[0]).run()
        else:
            store.dispose()
            deaths = run_processes(_search_worker_main, [(spec, store.url, threads, i, stale_after)
                                                         for i in range(workers)], log, tick, worker_envs(placed),
                                   lambda worker, reason: abandon(store.url, [name], worker, reason)).deaths
        if progress is not None:
            progress.close()
    study = store.load_study(name)
    finished, failed = budget(study)
    log(f"{name}: {finished} of {search.trials} trials finished ({failed} failed)")
    store.dispose()
    result = TuneResult(search.trials, finished, failed, None, tuple(deaths))
    if confirm and finished >= search.trials or confirm and search.timeout_s is not None:
        settings = top_settings(spec, study)
        if settings:
            result.select, result.confirm = confirm_search(spec, settings, url, workers, progress, log,
                                                           artifacts=artifacts, gpus=gpus, checkpoints=checkpoints)
    return result


def confirm_search(spec: Spec, settings: list[dict[str, Any]], url: str | None, workers: int, progress: Any,
                   log: Log, **where: Any) -> tuple[GridResult, GridResult | None]:
    """Selection over seeds on validation, then the winner refit and tested (see runner.trials.select)."""
    seeds = ", ".join(map(str, spec.study.seeds))
    store = Store(url)
    study = store.open_study(select_name(spec), spec.search.direction)
    if CANDIDATES_ATTR in study.user_attrs:  # chosen once: a rerun, or another machine, selects among the same
        settings = study.user_attrs[CANDIDATES_ATTR]
    else:
        study.set_user_attr(CANDIDATES_ATTR, settings)  # the search's order, which the report reads back
    store.dispose()
    select = selection_spec(spec, settings)
    log(f"{select.study.name}: the top {len(settings)} trained again with seeds {seeds} on the validation split "
        "(never tested): the best mean validation metric wins")
    selected = run_grid(select, url, workers, progress=progress, **where)
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
    if WINNER_ATTR not in study.user_attrs:
        study.set_user_attr(WINNER_ATTR, best.setting)
    log(f"{select.study.name}: the winner is candidate {best.rank} (mean {spec.search.metric} {best.mean:.2f} "
        f"over {len(best.values)} seeds)")
    on = "all the training images (train + validation)" if spec.search.refit else "the search's training split"
    log(f"{spec.study.name}: the winner trained with seeds {seeds} on {on}, and tested")
    confirmed = run_grid(confirm_spec(spec, [best.setting]), url, workers, progress=progress, **where)
    test_information(store, study, load(spec), where.get("artifacts"), str(Path(spec.path).parent))
    store.dispose()
    return selected, confirmed


def _search_worker_main(spec: Spec, url: str, threads: int, index: int, stale_after: float, queue: Any) -> None:
    """A search worker process: its own store and data; budget slots decide what it runs."""
    def body() -> tuple[int, int]:
        store = Store(url)
        w = SearchWorker(spec, store, load(spec), threads, lambda s: queue.put(("log", s)), f"w{index} ",
                         stale_after, lambda n: queue.put(("tick", n)), index)
        w.run()
        store.dispose()
        return w.ran, w.failed

    worker_process(index, queue, body)
