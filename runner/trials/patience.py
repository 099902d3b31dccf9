"""A database that blinks stops nothing: a worker waits out a server restart, a failover, a lost connection or
SQLite's lock, for up to --db-patience seconds. A database that cannot be used (a read-only file or folder, a
full disk, a missing table, a wrong password: runner.dberrors tells them apart) stops it at once, in one line.

Training needs the database only at the edges of an epoch. What a worker writes while it trains (the epoch
rows, the per-epoch value, the heartbeat) goes through a `Writer`: a thread that stores them in order, and
when the database is gone keeps them and tries again with backoff, while training goes on. What a worker does
between trials (claim a point, create a trial, store its record, keep its outputs, complete it) waits in
`Patience.call` instead. Each worker says in one line when it loses the database and in one when it has it
back, with how long it waited. Past the patience, it gives up as an interrupt does (DatabaseGone): its claims
given back where it can, one line, a non-zero exit; the next run resumes from the checkpoints.
"""
from __future__ import annotations

import queue
import random
import threading
import time
from typing import Any, Callable, TypeVar

import optuna

from runner.dberrors import database_error, permanent, transient
from runner.errors import RunnerError
from runner.trials.settings import DB_PATIENCE_S

__all__ = ["DB_PATIENCE_S", "DatabaseGone", "ClaimLost", "transient", "Patience", "Writer"]

BACKOFF_S = (0.5, 5.0)  # the first wait between tries, and the longest
T = TypeVar("T")


class DatabaseGone(RunnerError):
    """The database stayed away longer than --db-patience."""


class ClaimLost(RunnerError):
    """Another worker took this worker's point over while it was cut off from the database."""


class Patience:
    """One worker's patience with its database at `url`: calls retried with backoff while the error is transient,
    a line when the database goes and one when it is back, DatabaseGone past `seconds`; a permanent error at
    once as one StorageError that names the storage and the cause."""

    def __init__(self, seconds: float = DB_PATIENCE_S, log: Callable[[str], None] = lambda s: None, tag: str = "",
                 url: str = ""):
        self.seconds, self.log, self.tag, self.url = seconds, log, tag, url
        self._lock = threading.Lock()
        self.lost_at: float | None = None  # when the current outage began (monotonic), None while connected
        self.reason = ""

    def lost(self, e: BaseException) -> float:
        """Note a transient error; the seconds the outage has lasted. The first one of an outage says so."""
        with self._lock:
            now = time.monotonic()
            if self.lost_at is None:
                self.lost_at, self.reason = now, _first_line(e)
                self.log(f"{self.tag}lost the database ({self.reason}); training goes on, its writes wait "
                         f"(--db-patience {self.seconds:g} s)")
            return now - self.lost_at

    def back(self) -> None:
        """Note a call that went through: an outage, if there was one, is over (said in one line)."""
        with self._lock:
            if self.lost_at is not None:
                self.log(f"{self.tag}has the database back after {time.monotonic() - self.lost_at:.1f} s")
                self.lost_at = None

    def gone(self) -> DatabaseGone:
        """The error to give up with."""
        return DatabaseGone(f"{self.tag.strip() or 'the worker'}: the database was away for more than --db-patience "
                            f"{self.seconds:g} s ({self.reason}); the points it held are given back where it "
                            "could, and the next run resumes them from their checkpoints")

    def call(self, fn: Callable[[], T]) -> T:
        """fn(), tried again with backoff while the database is away, up to the patience."""
        wait = BACKOFF_S[0]
        while True:
            try:
                out = fn()
            except Exception as e:  # noqa: BLE001 - only a transient one is waited out; the rest goes on up
                if permanent(e):
                    raise database_error(self.url, e) from None
                if not transient(e):
                    raise
                if self.lost(e) > self.seconds:
                    raise self.gone() from None
                time.sleep(wait * random.uniform(0.8, 1.2))
                wait = min(BACKOFF_S[1], wait * 2)
                continue
            self.back()
            return out


class Writer:
    """What a training worker writes between epochs, stored in order by a thread of its own: training does not
    wait for the database, and the writes of an outage are stored when it ends.

    A write that meets a trial another worker has finished (it took the point over) stops the writer, and
    `check` raises ClaimLost; a database away past the patience makes `check` raise DatabaseGone.
    """

    def __init__(self, patience: Patience):
        self.patience = patience
        self._queue: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self.error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, fn: Callable[[], Any]) -> None:
        """Store fn's write after those before it (at once if the database is there)."""
        self._queue.put(fn)

    def _run(self) -> None:
        while (fn := self._queue.get()) is not None:
            if self.error is None and not self._stopped.is_set():
                try:
                    self.patience.call(fn)
                except optuna.exceptions.UpdateFinishedTrialError:
                    self.error = ClaimLost("its trial was finished by another worker, which took its point over")
                except BaseException as e:  # noqa: BLE001 - the training thread hears of it in check()
                    self.error = e
            self._queue.task_done()
        self._queue.task_done()

    def check(self) -> None:
        """Raise what stopped the writer, if anything (after each epoch, in the training thread)."""
        if self.error is not None:
            raise self.error

    def flush(self) -> None:
        """Wait until every write so far is stored (or the writer stopped), then `check`."""
        self._queue.join()
        self.check()

    def close(self) -> None:
        """Stop the thread once the writes so far are done (or given up); after `stop`, nothing more is waited
        for (an interrupt during an outage must not wait out the patience)."""
        if self._stopped.is_set():
            return
        self._queue.put(None)
        self._thread.join()

    def stop(self, wait_s: float = 10.0) -> None:
        """Stop at once (an interrupt): the writes not yet begun are dropped, the one under way is waited for
        a few seconds, so that nothing this worker writes lands after it has given its trial and claims back."""
        self._stopped.set()
        self._queue.put(None)
        self._thread.join(wait_s)


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    return text[0] if text else type(e).__name__
