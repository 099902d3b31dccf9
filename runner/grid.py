"""Schedule a spec's points as Optuna trials: claim, train, record; in one or several processes."""
from __future__ import annotations

import multiprocessing as mp
import os
import platform
import signal
import subprocess
import threading
import time
from datetime import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from runner.checkpoint import Checkpoints
from runner.data import Data, load_data
from runner.errors import RunnerError, StorageError
from runner.models.layers import ACTIVATIONS, POOLS
from runner.optim import OPTIMIZERS, SCHEDULES
from runner.spec import AUGMENTS, Point, Spec, is_layer_axis
from runner.spec.tables import check_models, point_table
from runner.store import Store, checkpoint_dir, worker_name
from runner.train import (EpochMetrics, TrainingError, peak_memory_mb, reset_peak_memory, resolve_device,
                          set_threads, train_point)

__all__ = ["GridResult", "run_grid", "distributions", "provenance", "interrupt"]

Log = Callable[[str], None]
Tick = Callable[[int], None]  # n more trial-epochs done (or no longer to do)
GRACE_S = 300.0  # a running claim with no heartbeat for this long belongs to a dead worker
HEARTBEAT_S = 30.0  # how often a training worker refreshes its claim

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


def distributions(point: Point, model_choices: tuple[str, ...]) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each of the point's params."""
    out: dict[str, BaseDistribution] = {"model": CategoricalDistribution(model_choices)}
    for name, value in point.params.items():
        if name == "model":
            continue
        choices = FIELD_CHOICES.get(name.split(".")[2]) if is_layer_axis(name) else FIXED_CHOICES.get(name)
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


def code_version() -> str:
    """The git commit of the runner's source (with -dirty), or its package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "runner"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version
        return f"runner {version('runner')}"


def provenance(device: str, threads: int) -> dict[str, Any]:
    """What produced a result, besides its config."""
    import sqlalchemy
    import torch
    import torchvision
    return {
        "code_version": code_version(), "device": device, "threads": threads,
        "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "optuna": optuna.__version__, "sqlalchemy": sqlalchemy.__version__},
    }


def stale_sources(spec: Spec, study: optuna.Study, todo: list[Point]) -> list[str]:
    """One line per user module whose source changed since complete trials of it were stored."""
    lines = []
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for name, model in spec.models.items():
        if not model.target:
            continue
        old = {}
        for t in trials:
            stored = t.user_attrs.get("config", {}).get("model", {})
            if t.params.get("model") == name and stored.get("source_sha256") not in (None, model.source_sha256):
                old[stored["source_sha256"]] = old.get(stored["source_sha256"], 0) + 1
        for sha, n in old.items():
            lines.append(f"{name}: {Path(model.source).name} changed since {n} complete trial{'s' if n > 1 else ''} "
                         f"of it were stored (sha256 {sha[:12]} then, {model.source_sha256[:12]} now); they stay "
                         "in the database as the old code's results and are not counted for this code"
                         + ("; its points train again" if any(p.model.name == name for p in todo) else ""))
    return lines


class _Worker:
    """Claims points one by one and trains them."""

    def __init__(self, spec: Spec, store: Store, data: Data, threads: int, log: Log, tag: str,
                 retry_failed: bool, stale_after: float = GRACE_S, tick: Tick = lambda n: None):
        self.spec, self.store, self.data, self.log, self.tag, self.tick = spec, store, data, log, tag, tick
        self.retry_failed, self.stale_after = retry_failed, stale_after
        self.checkpoints = Checkpoints(checkpoint_dir(store.url) / spec.study.name)
        self.name = worker_name()
        self.device = resolve_device(spec.train.device)
        self.threads = set_threads(threads)
        self.study = store.open_study(spec.study.name, spec.study.direction)
        self.choices = model_choices(spec, self.study)
        self.prov = provenance(str(self.device), self.threads)
        self.ran = self.failed = 0

    def run(self, points: list[Point]) -> None:
        total = len(points)
        for i, point in enumerate(points, 1):
            claim = self.store.claim(self.spec.study.name, point.config_hash, self.name, self.stale_after,
                                     self.retry_failed)
            if claim is None:
                continue
            previous = getattr(claim, "previous_trial_id", None)
            if previous is not None:
                self._fail_trial(previous, "taken over: its worker stopped (no heartbeat) or it failed")
            self._run_point(point, f"[{i}/{total}]")

    def _run_point(self, point: Point, where: str) -> None:
        spec, store = self.spec, self.store
        trial_id = store.optuna.create_new_trial(self.study._study_id, self._template(point))
        number = store.optuna.get_trial_number_from_id(trial_id)
        store.update_claim(spec.study.name, point.config_hash, self.name, trial_id=trial_id)
        self.log(f"{self.tag}{where} trial {number}: {point.label()} seed={point.seed}")
        start = time.perf_counter()

        def record(m: EpochMetrics) -> None:
            store.add_epoch(spec.study.name, trial_id, number, m)
            # Optuna's per-epoch value: the study's validation metric when it ranks by one; else test
            # accuracy, as always stored for test-ranked studies
            per_epoch = getattr(m, spec.study.metric) if spec.study.metric.startswith("val_") else m.test_acc
            store.optuna.set_trial_intermediate_value(trial_id, m.epoch, per_epoch)

        def on_epoch(m: EpochMetrics) -> None:
            record(m)
            self.tick(1)
            store.update_claim(spec.study.name, point.config_hash, self.name)
            val = f"val loss {m.val_loss:.4f} acc {m.val_acc:.2f}%  " if m.val_acc is not None else ""
            self.log(f"{self.tag}  epoch {m.epoch}/{point.train.epochs}  train loss {m.train_loss:.4f} "
                     f"acc {m.train_acc:.2f}%  {val}test loss {m.test_loss:.4f} acc {m.test_acc:.2f}%  "
                     f"({m.seconds:.1f} s)")

        resume = self.checkpoints.load(point.config_hash)
        if resume is not None:
            for m in resume["history"]:  # the new trial carries the whole history
                record(EpochMetrics(**m))
            self.tick(len(resume["history"]))
            self.log(f"{self.tag}  resumed from the checkpoint after epoch {resume['epoch']}")
        heartbeat = _Heartbeat(store, spec.study.name, point.config_hash, self.name)
        reset_peak_memory(self.device)
        try:
            _, history = train_point(point, self.data, self.device, on_epoch, resume,
                                     lambda state: self.checkpoints.save(point.config_hash, state))
        except TrainingError as e:
            self._fail_trial(trial_id, str(e))
            store.update_claim(spec.study.name, point.config_hash, self.name, state="failed")
            self.failed += 1
            self.tick(point.train.epochs - len(store.epochs([trial_id])[trial_id]))  # the epochs it will not run
            self.log(f"{self.tag}  trial {number} FAILED: {e}")
            return
        except BaseException:  # interrupted or crashed: nothing is marked complete, the point is given back
            self._fail_trial(trial_id, "interrupted")
            store.release(spec.study.name, point.config_hash, self.name)
            raise
        finally:
            heartbeat.stop()
        last = history[-1]
        wall = time.perf_counter() - start
        store.optuna.set_trial_user_attr(trial_id, "wall_seconds", wall)
        store.optuna.set_trial_user_attr(trial_id, "peak_memory_mb", round(peak_memory_mb(self.device), 1))
        store.optuna.set_trial_user_attr(trial_id, "best_test_acc", max(m.test_acc for m in history))
        value = getattr(last, spec.study.metric)
        store.optuna.set_trial_state_values(trial_id, TrialState.COMPLETE, [value])
        store.update_claim(spec.study.name, point.config_hash, self.name, state="complete")
        self.checkpoints.remove(point.config_hash)
        self.ran += 1

    def _template(self, point: Point) -> FrozenTrial:
        table = point_table(point)
        config = point.resolved()
        config["data"].update(mean=self.data.mean, std=self.data.std)  # the numbers used, "auto" computed
        attrs = {"config_hash": point.config_hash, "config": config, "label": point.label(),
                 "param_count": table.total, "layer_table": [r.to_json() for r in table.rows],
                 "data_checksum": self.data.checksum, "dataset": self.data.dataset,
                 "data_source": self.data.source, "data_official": self.data.official,
                 "data_shape": list(self.data.shape), "classes": self.data.classes,
                 "normalization_auto": [k for k in ("mean", "std") if getattr(point.data, k) == "auto"],
                 "train_size": len(self.data.train), "test_size": len(self.data.test),
                 "val_size": len(self.data.val) if self.data.val is not None else 0,
                 "worker": self.name, **self.prov}
        return FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                           datetime_complete=None, params=point.params,
                           distributions=distributions(point, self.choices), user_attrs=attrs,
                           system_attrs={}, intermediate_values={}, trial_id=0)

    def _fail_trial(self, trial_id: int, reason: str) -> None:
        fail_trial(self.store, trial_id, reason)


def fail_trial(store: Store, trial_id: int, reason: str) -> None:
    """Mark a trial that is still RUNNING as FAIL with its reason (best effort: claims decide what runs)."""
    try:
        if store.optuna.get_trial(trial_id).state == TrialState.RUNNING:
            store.optuna.set_trial_user_attr(trial_id, "fail_reason", reason)
            store.optuna.set_trial_state_values(trial_id, TrialState.FAIL)
    except (RunnerError, optuna.exceptions.OptunaError, KeyError, RuntimeError):
        pass  # best effort on the way out; the claim decides what runs next


class _Heartbeat:
    """Refreshes a claim's heartbeat every HEARTBEAT_S seconds from a thread, while a trial trains."""

    def __init__(self, store: Store, study: str, config_hash: str, worker: str):
        self._stop = threading.Event()
        self._args = (study, config_hash, worker)
        self._store = store
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._store.update_claim(*self._args)
            except RunnerError:
                pass  # a busy database now and then is fine: the grace period is many beats long

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def pending(spec: Spec, store: Store, retry_failed: bool = False) -> tuple[list[Point], int]:
    """(points not yet complete, number complete)."""
    claims = store.claims(spec.study.name)
    points = spec.points()
    done = sum(1 for p in points if (c := claims.get(p.config_hash)) and c.state == "complete")
    todo = [p for p in points if not ((c := claims.get(p.config_hash)) and
                                      (c.state == "complete" or (c.state == "failed" and not retry_failed)))]
    return todo, done


def _threads_per_worker(spec: Spec, workers: int) -> int:
    if spec.train.threads:
        return spec.train.threads
    return max(1, len(os.sched_getaffinity(0)) // workers)


def run_grid(spec: Spec, url: str | None, workers: int = 1, log: Log = lambda s: None,
             retry_failed: bool = False, stale_after: float = GRACE_S, progress: Any = None) -> GridResult:
    """Run every point of `spec` not yet complete in the storage at `url`.

    Args:
        log: called with each line of progress (ignored when `progress` is given).
        progress: a runner.progress.Progress: its lines, and a count of trial-epochs for its bar.
    """
    if progress is not None:
        log = progress.log
    tick: Tick = progress.advance if progress is not None else (lambda n: None)
    data = _load(spec)  # bad data fails here, before the storage is touched
    spec = spec.bind(data.shape, data.classes)  # and a model that does not fit it
    check_models(spec)
    store = Store(url)
    study = store.open_study(spec.study.name, spec.study.direction)  # fail early on a direction conflict
    todo, done = pending(spec, store, retry_failed)
    for line in stale_sources(spec, study, todo):
        log(line)
    total = len(spec.points())
    log(f"{spec.study.name}: {done} of {total} trials complete; {len(todo)} to run"
        + (f" on {workers} workers" if workers > 1 and todo else ""))
    if not todo:
        return GridResult(total, done, 0, 0)
    if progress is not None:
        progress.start(sum(p.train.epochs for p in todo))
    threads = _threads_per_worker(spec, workers)
    if workers == 1:
        w = _Worker(spec, store, data, threads, log, "", retry_failed, stale_after, tick)
        w.run(todo)
        store.dispose()
        return GridResult(total, done, w.ran, w.failed)
    store.dispose()
    del data  # each worker loads its own copy
    ran, failed = run_processes(_worker_main, [(spec, store.url, threads, i, retry_failed, stale_after)
                                               for i in range(workers)], log, tick)
    return GridResult(total, done, ran, failed)


def run_processes(target: Callable[..., None], args: list[tuple], log: Log, tick: Tick) -> tuple[int, int]:
    """Run `target(*a, queue)` in one spawned process per `a`; relay their lines and ticks.

    A worker puts ("log", line), ("tick", n), then ("done", (ran, failed)) or ("error", message) on
    the queue. Ctrl-C is passed on to every worker, which gives its work back before it exits.
    Returns (ran, failed) summed over the workers; raises the first worker's error.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, queue)) for a in args]
    for p in procs:
        p.start()
    ran = failed = finished = 0
    errors = []
    try:
        while finished < len(procs):
            kind, payload = queue.get()
            if kind == "log":
                log(payload)
            elif kind == "tick":
                tick(payload)
            elif kind == "done":
                ran, failed, finished = ran + payload[0], failed + payload[1], finished + 1
            elif kind == "error":
                errors.append(payload)
                finished += 1
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=120)
        raise
    for p in procs:
        p.join()
    if errors:
        raise RunnerError(errors[0])
    return ran, failed


def interrupt(signum: int, frame: Any) -> None:
    """A signal handler that stops like Ctrl-C (SIGTERM included)."""
    raise KeyboardInterrupt


def _load(spec: Spec) -> Data:
    return load_data(**spec.data.load_args())


def _worker_main(spec: Spec, url: str, threads: int, index: int, retry_failed: bool, stale_after: float,
                 queue: Any) -> None:
    """A worker process: its own store and data; claims decide which points it trains."""
    def body() -> tuple[int, int]:
        store = Store(url)
        w = _Worker(spec, store, _load(spec), threads, lambda s: queue.put(("log", s)), f"w{index} ", retry_failed,
                    stale_after, lambda n: queue.put(("tick", n)))
        todo, _ = pending(spec, store, retry_failed)
        w.run(todo)
        store.dispose()
        return w.ran, w.failed

    worker_process(index, queue, body)


def worker_process(index: int, queue: Any, body: Callable[[], tuple[int, int]]) -> None:
    """Run a worker's `body` in its process, telling the parent (run_processes) how it ended."""
    signal.signal(signal.SIGTERM, interrupt)
    try:
        queue.put(("done", body()))
    except KeyboardInterrupt:
        queue.put(("error", "interrupted"))
    except RunnerError as e:
        queue.put(("error", str(e)))
    except Exception as e:  # noqa: BLE001 - the parent must hear of every way a worker ends
        queue.put(("error", f"worker {index}: {type(e).__name__}: {e}"))
