"""A training worker's heartbeat: its claim refreshed every HEARTBEAT_S seconds from a thread, so that a
worker that stopped beating (its machine died) is known by its silence, and its point taken over after
--stale-after seconds (runner.trials.settings.GRACE_S by default)."""
from __future__ import annotations

import threading

from runner.errors import RunnerError
from runner.store import Store

__all__ = ["Heartbeat", "HEARTBEAT_S"]

HEARTBEAT_S = 30.0  # how often a training worker refreshes its claim


class Heartbeat:
    """Refreshes a claim's heartbeat every HEARTBEAT_S seconds from a thread, while a trial trains."""

    def __init__(self, store: Store, study: str, key: str, worker: str):
        self._stop = threading.Event()
        self._args = (study, key, worker)
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
        """Stop beating (the trial has ended)."""
        self._stop.set()
        self._thread.join()
