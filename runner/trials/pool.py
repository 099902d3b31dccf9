"""Worker processes: spawned, their lines and progress relayed to the parent, Ctrl-C passed on to each.

A worker process runs a body (claim, train, record, over and over: the claims decide what it
trains) and tells the parent on a queue how it went; every worker loads its own copy of the data.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from typing import Any, Callable

from runner.errors import RunnerError
from runner.spec import Spec
from runner.trials.lifecycle import Log, Tick

__all__ = ["threads_per_worker", "run_processes", "worker_process", "interrupt"]


def threads_per_worker(spec: Spec, workers: int) -> int:
    """Torch threads for each of `workers` processes: [train].threads, else this machine's cores split."""
    if spec.train.threads:
        return spec.train.threads
    return max(1, len(os.sched_getaffinity(0)) // workers)


def run_processes(target: Callable[..., None], args: list[tuple], log: Log, tick: Tick,
                  envs: list[dict[str, str]] | None = None) -> tuple[int, int]:
    """Run `target(*a, queue)` in one spawned process per `a`; relay their lines and ticks.

    Each process starts with its entry of `envs` added to the environment (its GPU: devices.worker_envs).

    A worker puts ("log", line), ("tick", n), then ("done", (ran, failed)) or ("error", message) on
    the queue. Ctrl-C is passed on to every worker, which gives its work back before it exits.
    Returns (ran, failed) summed over the workers; raises the first worker's error.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, queue)) for a in args]
    for p, env in zip(procs, envs or [{}] * len(procs)):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # a spawned child starts with the parent's environment as it is now
        try:
            p.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
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
    """A signal handler that stops like Ctrl-C (SIGTERM included). Once stopping, a second SIGTERM (a
    scheduler signals every process of a job, and its script may pass the signal on too) is ignored, so
    that it cannot cut short the giving back of the worker's claims."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


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
