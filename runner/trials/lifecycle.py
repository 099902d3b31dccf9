"""One trial's life, the same for grid, search and confirmation trials.

    prepare (data loaded, spec bound to it, every model checked)  ->  take a claim
    ->  store the trial's record (runner.record.trial_record)  ->  train, with a heartbeat on the claim
    ->  complete | fail (its reason stored, its claims failed: tried again) | interrupted (its
        claims given back, so the next run takes them at once)

A claim is a row of `runner_claims` (Store.claim): it makes every point, and every budget slot
of a search, run exactly once however many workers share the storage.
"""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import TrialState

from runner import record
from runner.data import Data, capped_limits, load_data
from runner.errors import RunnerError, out_of_memory
from runner.models.counts import ParamTable
from runner.spec import Point, Spec
from runner.spec.tables import check_models
from runner.spec.teacher import describe
from runner.store import ClaimRow, Store, worker_name
from runner.machine.provenance import provenance
from runner.train import EpochMetrics, TrainingError, set_threads, train_point
from runner.trials.devices import before_data, check_workers, device_provenance, place_workers, worker_device
from runner.trials.heartbeat import Heartbeat
from runner.trials.patience import ClaimLost, DatabaseGone, Patience, Writer
from runner.trials.settings import GRACE_S, RunSettings
from runner.trials.signals import held_signals
from runner.usercode import first_line

__all__ = ["GRACE_S", "Log", "Tick", "prepare", "dry_run", "load", "Worker", "take", "TrialRun", "Prepared", "Channel",
           "StopTrial", "fail_trial", "give_back", "abandon", "KILLED"]

Log = Callable[[str], None]
Tick = Callable[[int], None]  # n more trial-epochs done (or no longer to do)
TAKEN_OVER = record.StopReason.TAKEN_OVER  # these three: stopped, not failed (record.state_of)
CLAIM_LOST = record.StopReason.DROPPED
INTERRUPTED = record.StopReason.INTERRUPTED
KILLED = "was killed by"  # in the reason of a trial whose worker a signal killed (pool.death writes it)


def load(spec: Spec) -> Data:
    """The spec's data, loaded (once per process: each worker process loads its own copy)."""
    return load_data(**spec.data.load_args(), test=not spec.study.locked)


@dataclass(frozen=True)
class Prepared:
    """A spec bound to its loaded data, every model checked, and where its workers go."""

    spec: Spec
    data: Data
    placed: list[int | None]  # each worker's GPU (None: the CPU)
    memory: list[str]  # the memory check's lines, for a dry run


def prepare(spec: Spec, workers: int = 1, gpus: str | None = None) -> Prepared:
    """Place the workers, load the data, bind the spec to its shape, check every model and that `workers`
    of them fit in memory, before the storage is touched.

    Bad data, a model that does not fit it or the memory, a user's module that cannot run, or more workers
    than the memory holds is a one-line error here.
    """
    placed = place_workers(workers, gpus, spec.train.device)
    before = before_data()
    data = load(spec)
    for line in capped_limits(data, spec.data.train_limit, spec.data.test_limit):  # here, not in each worker
        warnings.warn(f"{spec.path}: {line}", stacklevel=2)
    spec = spec.bind(data.shape, data.classes)
    images = data.train.images[:16]
    check_models(spec, (images.unsqueeze(1) if images.dim() == 3 else images, data.mean, data.std))
    return Prepared(spec, data, placed, check_workers(spec, data, workers, placed, before))


def dry_run(spec: Spec, workers: int = 1, gpus: str | None = None) -> list[str]:
    """Every check that needs no training (what `prepare` does), and one line on what each covered."""
    ready = prepare(spec, workers, gpus)
    bound, data, memory = ready.spec, ready.data, ready.memory
    points = bound.model_points()
    configs = {p.model_config() for p in points}
    mine = sorted({p.model.name for p in points if p.model.target})
    val = f", {len(data.val):,} validation" if data.val is not None else ""
    return [f"checked the data: {data.dataset} from {data.source}: {len(data.train):,} training{val} and "
            f"{len(data.test):,} test images of shape {tuple(data.shape)}, {data.classes} classes, normalization "
            f"{data.mean:.4f} / {data.std:.4f}",
            f"checked {len(configs)} model configuration{'s' if len(configs) != 1 else ''} of "
            f"{', '.join(sorted({p.model.name for p in points}))}: built with each point's regularizers and layer "
            "fields, run on two images of the data's shape"
            + (f"; your module{'s' if len(mine) > 1 else ''} {', '.join(mine)}: imported, args against the "
               "signature, the regularizer axes it must take, outputs on 16 training images" if mine else ""),
            *memory,
            *([f"teacher: {describe(bound.train.teacher)}, found in the storage, its weights checked when it runs"]
              if bound.train.teacher else []),
            "nothing was trained, and the storage was not touched"]


@dataclass(frozen=True)
class Channel:
    """Where a worker's progress goes: its lines, its trial-epochs done, and the tag before its lines."""

    log: Log = lambda s: None
    tick: Tick = lambda n: None
    tag: str = ""  # "w1 ": a worker process's lines, among the others'


class Worker:
    """What every worker of a study has: its name in the claims, its device, its threads, its provenance."""

    def __init__(self, spec: Spec, store: Store, run: RunSettings, out: Channel, threads: int,
                 gpu: int | None = None):
        self.spec, self.store, self.run_settings = spec, store, run
        self.log, self.tick, self.tag = out.log, out.tick, out.tag
        self.stale_after = run.stale_after
        self.name = worker_name()
        self.device, index = worker_device(spec.train.device, gpu)
        self.threads = set_threads(threads)
        self.prov = {**provenance(self.device.type, self.threads), **device_provenance(self.device, index)}
        self.ran = self.failed = 0
        self.patience = Patience(run.db_patience, out.log, out.tag, store.url)

    def db(self, fn: Callable[[], Any]) -> Any:
        """fn(), a call to the database, waiting out a database that is away (runner.trials.patience)."""
        return self.patience.call(fn)

    def take(self, study: str, key: str, retry_failed: bool) -> ClaimRow | None:
        """Claim `key` of `study` for this worker (see `take`)."""
        return self.db(lambda: take(self.store, study, key, self.name, self.stale_after, retry_failed))

    def trial_run(self, trial_id: int, claims: Sequence[tuple[str, str]], finish: Finish | None = None) -> TrialRun:
        """The TrialRun of one of this worker's trials, with its patience."""
        return TrialRun(self.store, self.name, trial_id, claims, finish, self.patience)

    def record(self, point: Point, data: Data, table: ParamTable, slot: str | None = None) -> dict[str, Any]:
        """This worker's record of a trial of `point` (see runner.record.trial_record)."""
        return record.trial_record(point, data, table, self.name, self.prov, slot)


def take(store: Store, study: str, key: str, worker: str, stale_after: float, retry_failed: bool) -> ClaimRow | None:
    """Claim a point or slot atomically; the trial of a dead worker it takes over is failed with why."""
    claim = store.claim(study, key, worker, stale_after, retry_failed)
    previous = getattr(claim, "previous_trial_id", None)
    if previous is not None:
        fail_trial(store, previous, TAKEN_OVER)
    return claim


class StopTrial(Exception):
    """Raised from an epoch callback to end a trial early on purpose (Optuna's pruner): not a failure."""


Finish = Callable[[TrialState, "float | None"], None]  # sets the trial's final state (and value)


class TrialRun:
    """One trial of a worker's, from its stored record to its end; the claims it holds end with it.

    What it writes while it trains (`later`: the epochs, the per-epoch value, the heartbeat) goes through a
    Writer, in order, so that training goes on while the database is away; the rest waits for the database
    (`patience`). It is completed only while its first claim is still this worker's: a worker cut off from the
    database long enough for another to take its point over drops its result (`dropped`).

    Args:
        claims: (study, key) of each claim the trial holds; the heartbeat refreshes the first.
        finish: sets the trial's final state; by default through the storage (grid trials), a
            search passes Optuna's `study.tell`.
    """

    def __init__(self, store: Store, worker: str, trial_id: int, claims: Sequence[tuple[str, str]],
                 finish: Finish | None = None, patience: Patience | None = None):
        self.store, self.worker, self.trial_id, self.claims = store, worker, trial_id, tuple(claims)
        self.finish = finish or self._finish_in_storage
        self.patience = patience or Patience(url=store.url)
        self.writer = Writer(self.patience)
        self.dropped = False  # another worker took the point over: this trial's result does not count
        for study, key in self.claims:
            self.db(lambda: store.update_claim(study, key, worker, trial_id=trial_id))

    def db(self, fn: Callable[[], Any]) -> Any:
        """fn() against the database, waiting out a database that is away."""
        return self.patience.call(fn)

    def later(self, fn: Callable[[], Any]) -> None:
        """Write fn's rows after those before it, without waiting for the database (while training)."""
        self.writer.put(fn)

    def hold(self, study: str, key: str) -> None:
        """Hold one more claim until the trial ends (a search's claim on its configuration)."""
        self.db(lambda: self.store.update_claim(study, key, self.worker, trial_id=self.trial_id))
        self.claims += ((study, key),)

    def _finish_in_storage(self, state: TrialState, value: float | None) -> None:
        self.store.optuna.set_trial_state_values(self.trial_id, state, None if value is None else [value])

    def beat(self) -> None:
        """Refresh the first claim's heartbeat (after each epoch), in its turn among the writes."""
        study, key = self.claims[0]
        self.later(lambda: self.store.update_claim(study, key, self.worker))

    def owned(self) -> bool:
        """Whether the first claim is still this worker's, every write so far stored; if not, the trial is
        dropped (said by the caller), never completed."""
        try:
            self.writer.flush()
            self.dropped = not self.db(lambda: self.store.owns(*self.claims[0], self.worker))
        except ClaimLost:
            self.dropped = True
        return not self.dropped

    def close(self) -> None:
        """Stop the writer (its writes so far stored, or given up)."""
        self.writer.close()

    def train(self, point: Point, data: Data, device: Any, on_epoch: Callable[[EpochMetrics], None],
              **kwargs: Any) -> tuple[Any, list[EpochMetrics]] | None:
        """Train the point with a heartbeat on the claim: (the model, its history), or None if it failed.

        A TrainingError (a NaN loss) fails the trial with its reason and marks its claims failed.
        An interrupt (Ctrl-C, SIGTERM, a crash) fails it "interrupted", gives its claims back and
        goes on up. StopTrial goes on up too, the trial left to the caller to end.
        """
        heartbeat = Heartbeat(self.store, *self.claims[0], self.worker)

        def epoch(m: EpochMetrics) -> None:
            on_epoch(m)
            self.writer.check()  # the database away past the patience, or the point taken over: stop here

        try:
            return train_point(point, data, device, epoch, **kwargs)
        except StopTrial:
            raise
        except ClaimLost:
            self.dropped = True
            return None
        except DatabaseGone:
            self.interrupted()
            raise
        except TrainingError as e:
            self.fail(str(e))
            return None
        except Exception as e:  # noqa: BLE001 - an allocation that failed is the trial's, not the worker's
            if not out_of_memory(e):  # a crash (a bug in a module, a device error): "fail", not "interrupted"
                self.interrupted(f"error: {type(e).__name__}: {first_line(e)}")
                raise
            self.fail(f"out of memory while training: {first_line(e)}")
            return None
        except BaseException:  # interrupted or crashed: nothing is marked complete, the point is given back
            self.interrupted()
            raise
        finally:
            heartbeat.stop()

    def complete(self, value: float | None, state: TrialState = TrialState.COMPLETE) -> bool:
        """End the trial COMPLETE with its value (or PRUNED) and its claims complete, if they are still this
        worker's (compared and set on each claim's worker before the trial is touched); False, with the trial
        dropped, when another worker took the point over (it completes the point, once)."""
        self.writer.flush()
        for study, key in self.claims:
            if not self.db(lambda: self.store.complete_claim(study, key, self.worker)):
                self.dropped = True
                fail_trial(self.store, self.trial_id, CLAIM_LOST, self.finish)
                return False
        self.db(lambda: self.finish(state, value))
        return True

    def fail(self, reason: str, state: TrialState = TrialState.FAIL, why: str = record.FAIL_REASON) -> None:
        """End the trial FAIL (or `state`) with its reason stored under `why`; its claims are failed (a budget
        slot is tried again)."""
        self.reason = reason
        self.writer.flush()
        self.db(lambda: record.write(self.store.optuna, self.trial_id, {why: reason}))
        self.db(lambda: self.finish(state, None))
        for study, key in self.claims:
            self.db(lambda: self.store.update_claim(study, key, self.worker, state="failed"))

    def interrupted(self, reason: str = INTERRUPTED) -> None:
        """Fail the trial "interrupted" (or with the error that stopped it; best effort, on the way out) and give
        its claims back: the point runs again when the grid does."""
        self.writer.stop()  # no write of its may land after the claims are given back
        fail_trial(self.store, self.trial_id, reason, self.finish)
        for study, key in self.claims:
            try:
                self.store.release(study, key, self.worker)
            except RunnerError:  # the database is away: the claim is taken over once its heartbeat is old
                pass


def give_back(store: Store, claims: Sequence[tuple[str, str]], worker: str, trial_id: int | None,
              config_hash: str = "") -> None:
    """After an interrupt anywhere in a trial's life: nothing left RUNNING, no claim left held.

    A trial that already ended COMPLETE keeps it, and its claims say complete; any other trial of
    this worker's for the point is failed "interrupted" (found by its record when the interrupt came
    before its id was known), and its claims are given back. Signals wait until this is done.
    """
    with held_signals():
        _give_back(store, claims, worker, trial_id, config_hash)


def _give_back(store: Store, claims: Sequence[tuple[str, str]], worker: str, trial_id: int | None,
               config_hash: str) -> None:
    try:
        state = None
        if trial_id is not None:
            try:
                state = store.optuna.get_trial(trial_id).state
            except (RunnerError, optuna.exceptions.OptunaError, KeyError, RuntimeError):
                state = None
        if state == TrialState.COMPLETE:
            for study, key in claims:
                store.update_claim(study, key, worker, state="complete")
            return
        if trial_id is not None:
            fail_trial(store, trial_id, INTERRUPTED)
        elif config_hash:
            for t in _running_of(store, claims[0][0], worker, config_hash):
                fail_trial(store, t, INTERRUPTED)
        for study, key in claims:
            store.release(study, key, worker)
    except (RunnerError, optuna.exceptions.OptunaError):
        pass  # best effort on the way out: a dead worker's claim is taken over anyway


def abandon(url: str, studies: list[str], worker: str, reason: str) -> None:
    """A dead worker's leftovers: its RUNNING trials failed with `reason`, its held claims given back, so
    that a live worker takes its point at once (resuming from the point's checkpoint)."""
    store = Store(url)
    try:
        for study in studies:
            try:
                s = store.load_study(study)
            except RunnerError:
                continue
            mine = [t.number for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                    if record.of(t).worker == worker]
            for trial_id in store.trial_ids(study, mine).values():
                fail_trial(store, trial_id, reason)
            killed_before = Counter(record.of(t).config_hash for t in s.get_trials(
                deepcopy=False, states=(TrialState.FAIL,)) if KILLED in str(record.of(t).fail_reason or ""))
            for key, claim in store.claims(study).items():
                if claim.worker != worker or claim.state != "running":
                    continue
                if killed_before[key] >= 2:  # its point killed a worker twice: not again in this run
                    store.update_claim(study, key, worker, state="failed")
                else:
                    store.release(study, key, worker)
    finally:
        store.dispose()


def _running_of(store: Store, study: str, worker: str, config_hash: str) -> list[int]:
    """trial_ids of `worker`'s RUNNING trials of a point (its record names the worker and the point)."""
    try:
        s = store.load_study(study)
    except RunnerError:
        return []
    mine = [t.number for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if record.of(t).worker == worker and record.of(t).config_hash == config_hash]
    return list(store.trial_ids(study, mine).values())


def fail_trial(store: Store, trial_id: int, reason: str, finish: Finish | None = None) -> None:
    """Mark a trial that is still RUNNING as FAIL with its reason (best effort: claims decide what runs)."""
    try:
        if store.optuna.get_trial(trial_id).state == TrialState.RUNNING:
            record.write(store.optuna, trial_id, {record.FAIL_REASON: reason})
            if finish is None:
                store.optuna.set_trial_state_values(trial_id, TrialState.FAIL)
            else:
                finish(TrialState.FAIL, None)
    except (RunnerError, optuna.exceptions.OptunaError, KeyError, RuntimeError):
        pass  # best effort on the way out; the claim decides what runs next
