"""One trial's life, top to bottom: the same for a grid point, a search's draw and a selection's seed.

A worker claims what it will train (a grid point, a search's budget slot: see grid.py and tune.py), then:

1. open      the worker's kind creates the Optuna trial and stores its record (runner.record.trial_record): a
             grid point as a RUNNING trial of its params, a search's draw through `study.ask` and its sampler;
2. admit     a search refuses a draw over its parameter cap, and never trains a configuration twice;
3. resume    from the point's last checkpoint, if a worker that died left one (grid and selection points);
4. train     with a heartbeat on the claim (lifecycle.TrialRun.train); after every epoch its metrics are stored,
             its value is reported to Optuna (a search's pruner may stop it there: "pruned"), a line is logged;
5. keep      what it predicted for every image it was evaluated on, and its weights ([study].keep);
6. complete  with the study's metric after the last epoch, if its claims are still this worker's ("dropped"
             if another worker took its point over meanwhile).

A training error fails it with its reason ("failed": the point is tried again with --retry-failed, a budget slot
at once); an interrupt at any moment leaves nothing RUNNING and gives its claims back (lifecycle.give_back).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from optuna.trial import TrialState
from torch import nn

from runner import record
from runner.data import Data
from runner.distill import Teacher, load_teacher
from runner.models.counts import ParamTable
from runner.spec import Point
from runner.train import EpochMetrics, peak_memory_mb, reset_peak_memory
from runner.trials.checkpoints import Checkpoints
from runner.trials.lifecycle import Finish, StopTrial, TrialRun, Worker, give_back
from runner.trials.outputs import split_predictions
from runner.weights import keep_weights

__all__ = ["Opened", "Pruned", "TrialWorker", "DROPPED"]

DROPPED = ("another worker took its point over while this one was cut off from the database; its result is "
           "dropped (the other worker's counts, once)")


class Pruned(StopTrial):
    """Raised after an epoch when Optuna's pruner stops the trial (a search's)."""


@dataclass
class Opened:
    """A trial just created, its record stored: what its kind chose, and how the kind reports to Optuna."""

    trial_id: int
    number: int
    point: Point
    table: ParamTable  # the point's model, layer by layer
    heading: str  # its first line: where the worker stands, the trial and its configuration
    report: Callable[[EpochMetrics, TrialRun], None]  # an epoch's value, to Optuna
    prune: Callable[[], bool] = lambda: False  # after an epoch's line: whether Optuna's pruner stops it there
    admit: Callable[[TrialRun], str | None] = lambda run: None  # None: train it; else it ended there (run failed
    # or completed it: a search's draw over its cap, or a configuration evaluated already), and this is its outcome
    finish: Finish | None = None  # sets its final state: through the storage by default, a search's `study.tell`


class TrialWorker(Worker):
    """A worker whose trials live as this module says; a kind of worker supplies how it creates each trial (`live`'s
    `open`: its point, its record, how it reports to Optuna, whether it trains it at all).

    Attributes set by the kind: `study_name` (the Optuna study of its trials), `metric` (their value), `data`,
    `tested` (whether test is evaluated), `artifacts` (where weights go; None: nowhere) and `checkpoints` (None:
    none are written).
    """

    study_name: str
    metric: str
    data: Data
    tested: bool
    artifacts: Path | None
    checkpoints: Checkpoints | None = None

    def live(self, claims: list[tuple[str, str]], open: Callable[[], Opened], config_hash: str = "") -> str:
        """One trial, from its creation to its end (the steps above), under the `claims` already taken.

        Args:
            open: creates the trial and stores its record, setting `self.trial_id` as soon as it is known.
            config_hash: its point's, when known before it is created (a grid point): an interrupt that comes
                before its id is known finds it by its record.

        Returns "complete", "pruned", "failed", "dropped", or what its `admit` said."""
        self.trial_id: int | None = None
        self.held = list(claims)  # a search's trial holds its configuration's claim too
        try:
            opened = open()
            run = self.trial_run(opened.trial_id, claims, opened.finish)
            try:
                return self._train(opened, run)
            except BaseException:  # an interrupt: nothing of its may be written after its claims are given back
                run.writer.stop()
                raise
            finally:
                run.close()
        except BaseException:  # an interrupt at any moment: nothing left RUNNING, the claims given back
            give_back(self.store, self.held, self.name, self.trial_id, config_hash)
            raise

    def _train(self, o: Opened, run: TrialRun) -> str:
        ended = o.admit(run)
        if ended is not None:
            return ended
        point = o.point
        self.log(f"{self.tag}{o.heading}")
        start = time.perf_counter()
        stored: list[dict[str, Any]] = []  # each epoch's metrics, as an untested trial's record keeps them

        def store_epoch(m: EpochMetrics) -> None:  # in order, when the database is there (training goes on)
            stored.append({k: v for k, v in asdict(m).items() if not k.startswith("test_")})
            if self.tested:
                run.later(lambda: self.store.add_epoch(self.study_name, o.trial_id, o.number, m))
            else:  # never tested: its epochs are kept in its record (runner_epochs has test columns)
                so_far = list(stored)
                run.later(lambda: record.write(self.store.optuna, o.trial_id, {record.EPOCHS: so_far}))
            o.report(m, run)

        def on_epoch(m: EpochMetrics) -> None:
            store_epoch(m)
            run.beat()
            self.tick(1)
            val = f"val loss {m.val_loss:.4f} acc {m.val_acc:.2f}%  " if m.val_acc is not None else ""
            test = f"test loss {m.test_loss:.4f} acc {m.test_acc:.2f}%  " if m.test_acc is not None else ""
            self.log(f"{self.tag}  epoch {m.epoch}/{point.train.epochs}  train loss {m.train_loss:.4f} "
                     f"acc {m.train_acc:.2f}%  {val}{test}({m.seconds:.1f} s)")
            if o.prune():
                raise Pruned

        resume = self.checkpoints.load(point.config_hash) if self.checkpoints is not None else None
        if resume is not None:
            for m in resume["history"]:  # the new trial carries the whole history
                store_epoch(EpochMetrics(**m))
            self.tick(len(resume["history"]))
            self.log(f"{self.tag}  resumed from the checkpoint after epoch {resume['epoch']}")
        save = (lambda state: self.checkpoints.save(point.config_hash, state)) if self.checkpoints else None
        reset_peak_memory(self.device)
        try:
            trained = run.train(point, self.data, self.device, on_epoch, resume=resume, save=save,
                                evaluate_test=self.tested, teacher=self._teacher() if point.train.distill_weight else None)
        except Pruned:
            self._keep_outcome(o, start)
            if not run.complete(None, TrialState.PRUNED):
                return self._dropped(o, len(stored))
            self.tick(point.train.epochs - len(stored))
            self.log(f"{self.tag}  trial {o.number} pruned after epoch {len(stored)}")
            self.ran += 1
            return "pruned"
        if trained is not None and not run.owned():  # cut off long enough for another worker to take it over
            trained = None
        if run.dropped:
            return self._dropped(o, len(stored))
        if trained is None:
            self.failed += 1
            self.tick(point.train.epochs - len(stored))  # the epochs it will not run
            self.log(f"{self.tag}  trial {o.number} FAILED: {run.reason}")
            return "failed"
        model, history = trained
        self.db(lambda: self._keep(o, model))
        self._keep_outcome(o, start, max(m.test_acc for m in history) if self.tested else None)
        if not run.complete(getattr(history[-1], self.metric)):
            return self._dropped(o, point.train.epochs)
        if self.checkpoints is not None:
            self.checkpoints.remove(point.config_hash)
        self.ran += 1
        return "complete"

    def _teacher(self) -> Teacher | None:
        """The spec's teacher on this worker's device (None without one), loaded once, before the worker claims
        anything."""
        if not hasattr(self, "_loaded_teacher"):
            self._loaded_teacher = load_teacher(self.spec, self.store.url, self.run_settings.artifacts, self.device,
                                                self.data)
        return self._loaded_teacher

    def _keep(self, o: Opened, model: nn.Module) -> None:
        """Its predictions for every split it is evaluated on and, unless `artifacts` is None, its weights (while
        the trial is still RUNNING: Optuna keeps an artifact's id in the trial)."""
        for split_name, split in (("test", self.data.test), ("val", self.data.val)):
            if split is not None and len(split):
                self.store.add_predictions(self.study_name, o.trial_id, split_name,
                                           split_predictions(model, o.point, split, self.data, self.device))
        if self.artifacts is not None:
            keep_weights(self.store, self.artifacts, self.study_name, o.trial_id, model, o.point, self.data)

    def _keep_outcome(self, o: Opened, start: float, best_test_acc: float | None = None) -> None:
        outcome = record.outcome_record(time.perf_counter() - start, peak_memory_mb(self.device), best_test_acc)
        self.db(lambda: record.write(self.store.optuna, o.trial_id, outcome))

    def _dropped(self, o: Opened, epochs: int) -> str:
        """A trial whose point another worker took over while this one was cut off from the database."""
        self.tick(o.point.train.epochs - epochs)
        self.log(f"{self.tag}  trial {o.number}: {DROPPED}")
        return "dropped"
