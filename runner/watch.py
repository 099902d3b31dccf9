"""One view of a study's progress from the storage alone, wherever its workers run (`runner watch`).

Everything comes from what the workers store anyway: the trials' states and user attrs (worker,
device), their epochs (with the time each was stored) and the claims' heartbeats. Reading never
writes: the storage is opened as a reader.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from runner import record
from runner.errors import StorageError
from runner.record import is_search_study
from runner.store import Store, shown_url
from runner.text import plural, text_table

__all__ = ["StudyProgress", "progress", "render", "snapshot"]

STALE_S = 300  # a running trial whose heartbeat is older than this is shown as probably stopped


@dataclass(frozen=True)
class Running:
    number: int
    worker: str
    host: str
    device: str
    epoch: int
    epochs: int | None
    metric: str  # "test acc 98.91%"; "val acc 98.91%" in a study whose test set is locked
    heartbeat_s: float | None  # seconds since its last sign of life


@dataclass(frozen=True)
class StudyProgress:
    """A study's state at one moment."""

    study: str
    storage: str
    complete: int  # points (a grid) or trials (a search) complete
    running: tuple[Running, ...]
    failed: int
    pruned: int
    total: int | None  # points of the spec, or a search's budget; None when only the study's name is known
    epochs_per_trial: int | None
    rate: float | None  # trial-epochs per minute over the window; None: not known (formats 0 and 1)
    window_min: float
    search: bool = False  # a search: its trials count, not its points
    rate_from: str = "epochs"  # "trials": counted from the trials that ended (format 0 and 1's epochs have no time)
    covered_min: float | None = None  # the minutes the rate divides by: the window, or less when the run began in it
    round: dict | None = None  # seeds in rounds: the round at hand as runner.rounds stored it (record.ROUND)
    refused: int = 0  # a search's draws over [search].max_params, never trained (neither failed nor finished)
    locked: bool = False  # its test set is locked: its epochs are kept with its trials, no test metric is shown
    interrupted: int = 0  # points (trials, a search) stopped from outside and not run again yet; not failed

    @property
    def to_go(self) -> int | None:
        """Trials not yet started (nor complete, running or failed)."""
        if self.total is None:
            return None
        if self.search:  # its budget counts finished trials (complete or pruned); a failed one is tried again
            return max(0, self.total - self.complete - self.pruned - len(self.running))
        return max(0, self.total - self.complete - len(self.running) - self.failed)

    @property
    def epochs_left(self) -> int | None:
        if self.to_go is None or self.epochs_per_trial is None:
            return None
        running = sum(max(0, (r.epochs or self.epochs_per_trial) - r.epoch) for r in self.running)
        return self.to_go * self.epochs_per_trial + running


def _epochs_of(t: FrozenTrial) -> int | None:
    epochs = record.of(t).train_epochs
    return int(epochs) if epochs else None


def _device(t: FrozenTrial) -> str:
    a = record.of(t)
    if a.device == "cuda" and a.device_index is not None:
        return f"cuda:{a.device_index} {a.device_name or ''}".strip()
    return str(a.device or "?")


def progress(storage: str | None, study: str, total: int | None = None, window_min: float = 10,
             now: dt.datetime | None = None, search: bool | None = None) -> StudyProgress:
    """The study's progress, read from the storage.

    Args:
        total: the number of trials the study will have (a spec's points, a search's budget).
        search: whether it is a search (whose trials count, not its points); default: by its name.
        window_min: the rate counts the trial-epochs stored over this many last minutes.
    """
    search = is_search_study(study) if search is None else search
    store = Store(storage, create=False)
    shown = shown_url(store.url)
    try:
        known = store.study_names()
        if study not in known:
            raise StorageError(f"{shown}: no study {study!r}" + (f"; it has {', '.join(known)}" if known else
                                                                 "; it has none"))
        study_id = store.optuna.get_study_id_from_name(study)
        trials = store.optuna.get_all_trials(study_id, deepcopy=False)
        kept = record.StudyRecord(store.optuna.get_study_user_attrs(study_id))
        at, locked = kept.round, kept.test_locked
        now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        claims = {c.trial_id: c for c in store.claims(study).values() if c.trial_id is not None}
        live = [t for t in trials if t.state == TrialState.RUNNING]
        ids = store.trial_ids(study, [t.number for t in live])
        last = store.epochs(list(ids.values()))
        # a search, and a study whose test set is locked, keep their epochs with their trials (record.EPOCHS), not
        # in runner_epochs: their rate comes from their trials (below)
        recent = None if search or locked else store.epochs_since(study, now - dt.timedelta(minutes=window_min))
    finally:
        store.dispose()
    states = Counter(t.state for t in trials)
    refused = 0
    if search:  # a search's budget counts finished trials: complete or pruned; a draw over the cap is neither
        kinds = Counter(record.state_of(t) for t in trials)
        complete, failed, refused = kinds["complete"], kinds["fail"], kinds["refused"]
        interrupted = kinds["interrupted"]  # its slot was given back: another trial fills it
        states[TrialState.PRUNED] = kinds["pruned"]
    else:  # a grid's point is complete once, whatever trials it took; a failed one until it is retried; an
        # interrupted one (record.state_of) is to go again, from its checkpoint, until a later trial ends it
        by_state = {s: {record.of(t).config_hash for t in trials if record.state_of(t) == s}
                    for s in ("complete", "running", "fail", "interrupted")}
        complete = len(by_state["complete"])
        failed = len(by_state["fail"] - by_state["complete"] - by_state["running"])
        interrupted = len(by_state["interrupted"] - by_state["complete"] - by_state["running"] - by_state["fail"])
    running = []
    for t in live:
        rows = last.get(ids[t.number], [])
        kept_epochs = record.of(t).epochs if locked else []
        if kept_epochs:  # no test metric: the validation split's
            epoch, metric = kept_epochs[-1]["epoch"], _val_metric(kept_epochs[-1])
        elif rows:
            r = rows[-1]
            epoch = r.epoch
            metric = f"val acc {r.val_acc:.2f}%" if r.val_acc is not None and not r.test_acc else \
                f"test acc {r.test_acc:.2f}%"
        elif t.intermediate_values:  # a trial that reports to Optuna only
            epoch = max(t.intermediate_values)
            metric = f"{t.intermediate_values[epoch]:.4g}"
        else:
            epoch, metric = 0, "–"
        claim = claims.get(ids[t.number])
        beat = (now - claim.heartbeat).total_seconds() if claim is not None else None
        worker = str(record.of(t).worker or "?")
        running.append(Running(t.number, worker, worker.rsplit(":", 1)[0], _device(t),
                               epoch, _epochs_of(t), metric, beat))
    rate_from = "epochs"
    if recent is None:  # epochs without a time (formats 0 and 1), or kept with their trials (a search's, a
        # locked study's): the trials that ended in the window, whole
        since = dt.datetime.now() - dt.timedelta(minutes=window_min)  # Optuna's times are local
        ended = [t for t in trials if t.datetime_complete is not None and t.datetime_complete >= since]
        recent = sum(len(t.intermediate_values) for t in ended) if ended else None
        rate_from = "trials"
    lengths = [e for t in trials if (e := _epochs_of(t))]
    per_trial = Counter(lengths).most_common(1)[0][0] if lengths else None
    covered = _covered_min(trials, window_min)
    if at is not None:  # the round's points, not the first round's that a spec alone gives
        total = at.get("points", total)
    return StudyProgress(study, shown, complete,
                    tuple(running), failed, states[TrialState.PRUNED], total, per_trial,
                    None if recent is None else recent / covered, window_min, search, rate_from, covered, at,
                    refused, locked, interrupted)


def _val_metric(epoch: dict) -> str:
    """A kept epoch's validation metric as `runner watch` shows it: its accuracy, else its loss."""
    if epoch.get("val_acc") is not None:
        return f"val acc {epoch['val_acc']:.2f}%"
    return "–" if epoch.get("val_loss") is None else f"val loss {epoch['val_loss']:.4f}"


def _covered_min(trials: list[FrozenTrial], window_min: float) -> float:
    """The minutes of the window the study's work covers: all of it, or from the start of the first trial
    that ran in it when the run began later (a grid of 2 minutes, just ended, is 2 minutes of work)."""
    now = dt.datetime.now()  # Optuna's times are local
    start = now - dt.timedelta(minutes=window_min)
    active = [t.datetime_start for t in trials if t.datetime_start is not None and
              (t.state == TrialState.RUNNING or (t.datetime_complete is not None and t.datetime_complete >= start))]
    first = min(active, default=start)
    return window_min if first <= start else max((now - first).total_seconds() / 60, 1 / 60)


def _duration(minutes: float) -> str:
    m = round(minutes)
    if m < 1:
        return "under a minute"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def render(p: StudyProgress, now: dt.datetime | None = None) -> str:
    """The view as plain text."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    of = f" of {p.total}" if p.total is not None else ""
    go = f", {p.to_go} to go" if p.to_go is not None else ", to go: not known from the study's name alone (give SPEC)"
    pruned = f", {p.pruned} pruned" if p.pruned else ""
    pruned += f", {p.refused} refused (over the cap)" if p.refused else ""
    stopped = "their slots filled again" if p.search else "among those to go: they resume from their checkpoints"
    interrupted = f", {p.interrupted} interrupted ({stopped})" if p.interrupted else ""
    lines = [f"{p.study} on {p.storage}, {now:%Y-%m-%d %H:%M:%S} UTC",
             *_round_line(p.round),
             f"{p.complete}{of} complete, {len(p.running)} running, {p.failed} failed{interrupted}{pruned}{go}"]
    if p.rate is None:
        timeless = "this study keeps its epochs with its trials, without a time" if p.locked else "this database's epochs carry no time"
        lines.append(f"rate: not known ({timeless}, and no trial ended in the last {p.window_min:g} min)")
    else:
        counted = "" if p.rate_from == "epochs" else " (from the trials that ended)" if p.search or p.locked else \
            " (from the trials that ended: this database's epochs carry no time)"
        covered = p.window_min if p.covered_min is None else p.covered_min
        span = (f"over the last {p.window_min:g} min" if covered >= p.window_min else
                f"over the {covered:.1f} min since the run began")  # it began inside the window
        lines.append(f"{p.rate:.1f} trial-epochs a minute, measured {span}{counted}")
        left = p.epochs_left
        if left is not None:
            if left == 0:
                lines.append("time left: none (every trial is complete or failed)")
            elif p.rate > 0:
                lines.append(f"time left: about {_duration(left / p.rate)} ({plural(left, 'trial-epoch')} at this rate)")
            else:
                lines.append(f"time left: not known ({plural(left, 'trial-epoch')} to go, none stored in the window)")
    if p.running:
        rows = []
        for r in p.running:
            beat = "–" if r.heartbeat_s is None else f"{r.heartbeat_s:.0f} s ago"
            if r.heartbeat_s is not None and r.heartbeat_s > STALE_S:
                beat += " (stopped? the next run takes it over)"
            epoch = f"{r.epoch}/{r.epochs}" if r.epochs else str(r.epoch)
            rows.append([str(r.number), r.worker, r.host, r.device, epoch, r.metric, beat])
        lines += ["", text_table(["trial", "worker", "host", "device", "epoch", "last", "heartbeat"], rows)]
    return "\n".join(lines)


def _round_line(at: dict | None) -> list[str]:
    """Seeds in rounds: the round at hand, or why the rounds stopped (as runner.rounds stored it)."""
    if at is None:
        return []
    last = at["max"] - (at["seeds"] - at["round"] + 1) + 1
    if at.get("stopped"):
        return [f"seeds in rounds: stopped after round {at['round']} of at most {last} ({at['seeds']} seeds): "
                f"{at['stopped']}"]
    racing = f", {at['racing']} configurations still racing" if at.get("racing") else ""
    return [f"round {at['round']} of at most {last}: seeds 0-{at['seeds'] - 1} (until = \"{at['until']}\"){racing}; "
            f"the totals below are this round's"]


def snapshot(storage: str | None, study: str, total: int | None = None, window_min: float = 10,
             search: bool | None = None) -> str:
    """One rendering of the study's progress."""
    return render(progress(storage, study, total, window_min, search=search))
