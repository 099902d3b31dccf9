"""How a grid or a search runs, as one frozen value: what the command line says besides the spec.

The spec says what to train; these say how this run goes about it (how many workers, on which GPUs,
where weights and checkpoints go, when a silent worker is taken over, whether failed points run
again). `runner grid` and `runner tune` build one from their options and pass it down whole, to every
worker process alike.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunSettings", "GRACE_S", "MAX_POINTS", "DB_PATIENCE_S"]

DB_PATIENCE_S = 180.0  # how long a worker waits for a database that went away before it gives up
GRACE_S = 300.0  # a running claim with no heartbeat for this long belongs to a dead worker
MAX_POINTS = 100_000  # points `runner grid` runs at once unless --max-points raises it


@dataclass(frozen=True)
class RunSettings:
    """How a grid or a search runs (the defaults are the command line's)."""

    workers: int = 1  # local worker processes (--workers); the cores are split between them
    gpus: str | None = None  # "0,2" (--gpus): the GPUs the workers are shared out among; None: every visible one
    stale_after: float = GRACE_S  # seconds without a heartbeat before another worker takes a trial over
    artifacts: str | None = None  # the folder of the trials' weights; None: beside the SQLite file (db/artifacts/)
    checkpoints: str | None = None  # the folder of unfinished trials' epoch checkpoints; None: beside the SQLite file
    retry_failed: bool = False  # run again the points whose trial failed (grid)
    max_points: int = MAX_POINTS  # a grid of more points is refused before anything is touched
    db_patience: float = DB_PATIENCE_S  # seconds a worker waits for a database that went away before giving up
