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
best mean is refit and tested (runner.trials.confirm), as ordinary grid studies, so `runner
report` and `runner trials` read them unchanged.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from runner import record
from runner.data import Data
from runner.distill import check_teacher, keep_teacher
from runner.spec.teacher import describe
from runner.errors import RunnerError
from runner.models.counts import ParamTable
from runner.spec import Point, Spec
from runner.spec.tables import point_table
from runner.store import Store, artifacts_dir, storage_url
from runner.train import EpochMetrics
from runner.trials.confirm import confirm_search
from runner.trials.devices import on_gpus, worker_envs
from runner.trials.grid import GridResult
from runner.trials.lifecycle import Channel, TrialRun, abandon, load, prepare
from runner.trials.trial import Opened, TrialWorker
from runner.trials.pool import queue_channel, run_processes, threads_per_worker, worker_process
from runner.trials.sampling import make_pruner, make_sampler, suggest
from runner.trials.settings import RunSettings
from runner.sources import adopt_stored_source, known_structures, remember_sources
from runner.trials.warmstart import warm_start

__all__ = ["TuneResult", "run_tune", "search_name", "top_settings", "budget", "SearchWorker"]

REFUSALS_MAX = 200  # sampled configurations over max_params in a row before the search gives up
OVER_CAP_KEY = "parameters_over_cap"  # the constraint of every draw of a capped search: its count less the cap
BUSY_WAIT_S = 2.0  # after sampling a configuration another worker is training


@dataclass
class TuneResult:
    trials: int  # the budget
    finished: int  # complete or pruned, all workers
    failed: int
    confirm: GridResult | None  # the winner tested; None with --no-confirm
    deaths: tuple[str, ...] = ()  # search workers that died (a line each); their slots went to live workers
    select: GridResult | None = None  # the selection over seeds on validation
    refused: int = 0  # draws over [search].max_params, never trained (in neither finished nor failed)


def search_name(spec: Spec) -> str:
    """The Optuna study of the search: `<name>-search`."""
    return record.search_study(spec.study.name)


def budget(study: optuna.Study) -> tuple[int, int, int]:
    """(finished: complete or pruned, failed, refused: drawn over the parameter cap, never trained) trials of a
    search; the refused count in neither of the others."""
    states = [record.state_of(t) for t in study.get_trials(deepcopy=False)]
    return (sum(s in ("complete", "pruned") for s in states), states.count("fail"), states.count("refused"))


class SearchWorker(TrialWorker):
    """Takes budget slots one by one and runs a trial in each (runner.trials.trial), on the point its sampler
    draws; its trials report the search's metric after every epoch, where Optuna's pruner may stop them."""

    def __init__(self, spec: Spec, store: Store, data: Data, run: RunSettings, out: Channel, threads: int,
                 index: int = 0, gpu: int | None = None):
        super().__init__(spec, store, run, out, threads, gpu)
        self.index = index
        self.search = spec.search
        self.tested, self.study_name, self.metric = False, search_name(spec), spec.search.metric
        self.data = data.untested()  # the test split is not even kept
        # its weights unless [study].keep = "none": a candidate's search trial is its selection trial for the seed
        # it was trained with (confirm.reuse_search_trials)
        self.artifacts = artifacts_dir(store.url, run.artifacts) if spec.study.keep == "all" else None
        self.study = self._study()
        self.start = time.monotonic()

    def _study(self) -> optuna.Study:
        self.store.open_study(self.study_name, self.search.direction)  # created here, direction checked
        self.study_id = self.store.optuna.get_study_id_from_name(self.study_name)
        return optuna.load_study(study_name=self.study_name, storage=self.store.optuna,
                                 sampler=make_sampler(self.search, self.index),
                                 pruner=make_pruner(self.search, self.spec.train.epochs))

    def run(self) -> None:
        """Fill budget slots until every one is done or taken (or the timeout)."""
        self._teacher()  # before any claim: a teacher this worker cannot load stops it here, in one line
        refusals = 0
        while True:
            slot = self._next_slot()
            if slot is None:
                return
            outcome = self.live([(self.study_name, slot)], lambda: self._open(slot))
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
            if self.take(self.study_name, slot, retry_failed=True) is not None:
                return slot
        return None

    def _open(self, slot: str) -> Opened:
        """A trial asked of the sampler, its point drawn from [search.space], with its record."""
        trial = self.db(self.study.ask)
        trial_id = self.trial_id = self.db(lambda: self.store.optuna.get_trial_id_from_study_id_trial_number(
            self.study_id, trial.number))
        point = self.spec.point(suggest(trial, self.spec), self.spec.study.seeds[0])
        table = point_table(point)
        attrs = self.record(point, self.data, table, slot=slot)
        self.db(lambda: record.write(self.store.optuna, trial_id, attrs))

        def report(m: EpochMetrics, run: TrialRun) -> None:
            run.writer.flush()  # the pruner reads every epoch reported so far: a search waits for its database
            self.db(lambda: trial.report(getattr(m, self.metric), m.epoch))

        return Opened(trial_id, trial.number, point, table,
                      f"[{slot}] trial {trial.number}: {point.label()}  ({table.total:,} parameters)", report,
                      prune=lambda: self.db(trial.should_prune),
                      admit=lambda run: self._admit(trial, point, table, run),
                      finish=lambda state, value: self.study.tell(trial, value, state=state))

    def _admit(self, trial: Trial, point: Point, table: ParamTable, run: TrialRun) -> str | None:
        """A draw over [search].max_params is refused ("refused"); a configuration already evaluated stands for
        this draw ("copied"), one being evaluated by another worker lets the sampler move on ("busy")."""
        cap = self.search.max_params
        if cap:  # the sampler learns the cap from every draw: over it is infeasible (Optuna's constraints)
            self.db(lambda: trial.set_constraint(OVER_CAP_KEY, float(table.total - cap)))
        if cap and table.total > cap:
            # PRUNED, the state Optuna's samplers read a constraint from; its slot failed, to be filled again
            run.fail(record.over_cap_reason(table.total, cap), TrialState.PRUNED, record.OVER_CAP)
            return "refused"
        config = f"config-{point.config_hash}"  # one evaluation per configuration, whatever the workers
        if self.take(self.study_name, config, retry_failed=True) is None:
            return self._duplicate(run, trial, config)
        self.held.append((self.study_name, config))
        run.hold(self.study_name, config)
        return None

    def _duplicate(self, run: TrialRun, trial: Trial, config: str) -> str:
        """A configuration already evaluated (or being evaluated): never trained twice."""
        other = self.store.claims(self.study_name).get(config)
        done = None if other is None or other.trial_id is None else self.store.optuna.get_trial(other.trial_id)
        if other is not None and other.state == "complete" and done is not None:
            # the same configuration and seed train to the same result: its outcome stands for this trial
            record.write(self.store.optuna, run.trial_id, {record.COPY_OF: done.number})
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
        key = record.of(t).config_hash
        if key in seen:
            continue
        seen.add(key)
        out.append(setting)
        if len(out) == spec.search.top:
            break
    return out


def run_tune(spec: Spec, url: str | None, run: RunSettings = RunSettings(), confirm: bool = True,
             progress: Any = None) -> TuneResult:
    """Run the search until its budget is spent (or its timeout), then confirm the top configurations
    (unless `confirm` is false), as `run` says."""
    search = spec.search
    if search is None:
        raise RunnerError(f"{spec.path}: no [search] section: `runner tune` needs one (see runner tune --help)")
    log = progress.log if progress is not None else (lambda s: None)
    out = Channel(log, progress.advance if progress is not None else (lambda n: None))
    ready = prepare(spec, run.workers, run.gpus)  # bad data, a model or workers that do not fit fail here, first
    spec, data, placed = ready.spec, ready.data, ready.placed
    spec = check_teacher(spec, data, storage_url(url), run.artifacts, evaluate_test=False)  # never tested here
    if spec.train.teacher is not None:
        log(f"teacher: {describe(spec.train.teacher)}")
    store = Store(url)
    name = search_name(spec)
    study = store.open_study(name, search.direction)
    keep_teacher(study, spec)  # the teacher its first run bound, or a one-line refusal
    stored = study.get_trials(deepcopy=False)
    spec, adopted = adopt_stored_source(spec, stored, known_structures(stored, record.study_of(study)))
    remember_sources(study, spec)
    for line in adopted:
        log(line)
    finished, failed, _ = budget(study)
    left = max(0, search.trials - finished)
    if left:
        warm_start(spec, store, study, log)
    log(f"{name}: {finished} of {search.trials} trials finished; {left} to run"
        + (f" on {run.workers} workers" if run.workers > 1 and left else "") + (on_gpus(placed) if left else ""))
    deaths: list[str] = []
    if left:
        if progress is not None:
            progress.start(left * spec.train.epochs)
        threads = threads_per_worker(spec, run.workers)
        if run.workers == 1:
            SearchWorker(spec, store, data, run, out, threads, gpu=placed[0]).run()
        else:
            store.dispose()
            deaths = run_processes(_search_worker_main, [(spec, store.url, run, threads, i)
                                                         for i in range(run.workers)], log, out.tick,
                                   worker_envs(placed),
                                   lambda worker, reason: abandon(store.url, [name], worker, reason)).deaths
        if progress is not None:
            progress.close()
    study = store.load_study(name)
    finished, failed, refused = budget(study)
    log(f"{name}: {finished} of {search.trials} trials finished ({failed} failed"
        + (f", {refused} refused (over the cap)" if refused else "") + ")")
    store.dispose()
    result = TuneResult(search.trials, finished, failed, None, tuple(deaths), refused=refused)
    if confirm and finished >= search.trials or confirm and search.timeout_s is not None:
        settings = top_settings(spec, study)
        if settings:
            result.select, result.confirm = confirm_search(spec, settings, url, run, progress, log)
    return result


def _search_worker_main(spec: Spec, url: str, run: RunSettings, threads: int, index: int, queue: Any) -> None:
    """A search worker process: its own store and data; budget slots decide what it runs."""
    def body() -> tuple[int, int]:
        store = Store(url)
        w = SearchWorker(spec, store, load(spec), run, queue_channel(queue, index), threads, index)
        w.run()
        store.dispose()
        return w.ran, w.failed

    worker_process(index, queue, body)
