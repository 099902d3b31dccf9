"""Worker processes: spawned, their lines and progress relayed to the parent, Ctrl-C passed on to each.

A worker process runs a body (claim, train, record, over and over: the claims decide what it
trains) and tells the parent on a queue how it went; every worker loads its own copy of the data.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, field
from queue import Empty
from typing import Any, Callable

from runner.errors import RunnerError
from runner.spec import Spec
from runner.trials.lifecycle import KILLED, Channel, Log, Tick

__all__ = ["threads_per_worker", "Outcome", "death", "run_processes", "worker_process", "interrupt", "RESTART_ENV", "queue_channel"]

CHECK_S = 1.0  # how often the parent looks at its worker processes
RESTART_ENV = "RUNNER_RESTART"  # a replacement worker's generation (1, 2, ...): its sampler draws its own stream


def threads_per_worker(spec: Spec, workers: int) -> int:
    """Torch threads for each of `workers` processes: [train].threads, else this machine's cores split."""
    if spec.train.threads:
        return spec.train.threads
    return max(1, len(os.sched_getaffinity(0)) // workers)


@dataclass
class Outcome:
    """How a run of worker processes went."""

    ran: int = 0  # trials completed, all workers
    failed: int = 0  # trials failed
    deaths: list[str] = field(default_factory=list)  # "w1 (pid 123) was killed by SIGKILL (out of memory?)"


def death(index: int, pid: int | None, exitcode: int) -> str:
    """One line for a worker that ended without saying so: the signal that killed it, or its exit code."""
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -exitcode == signal.SIGKILL else ""
        return f"worker w{index} (pid {pid}) {KILLED} {name}{hint}"
    return f"worker w{index} (pid {pid}) exited with code {exitcode} without finishing"


def _ended(p: Any) -> int | None:
    """The exit code of a child process that has ended (negative: the signal), without reaping it: while it
    is a zombie its pid still exists, so a live worker does not yet take its claim for a dead one's."""
    try:
        info = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped already
        return p.exitcode
    if info is None:
        return None
    return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status


def _start(ctx: Any, target: Callable[..., None], a: tuple, queue: Any, env: dict[str, str]) -> Any:
    p = ctx.Process(target=target, args=(*a, queue))
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
    return p


def run_processes(target: Callable[..., None], args: list[tuple], log: Log, tick: Tick,
                  envs: list[dict[str, str]] | None = None,
                  on_death: Callable[[str, str], None] | None = None) -> Outcome:
    """Run `target(*a, queue)` in one spawned process per `a`; relay their lines and ticks.

    The i-th process is worker i (it says so in its messages). Each process starts with its entry of `envs` added to the
    environment (its GPU: devices.worker_envs). A worker puts ("log", line), ("tick", n), then ("done",
    (index, (ran, failed))) or ("error", (index, message)) on the queue. The parent also watches the
    processes themselves: one that dies without a word (SIGKILL by the OOM killer) is reported in a
    line, `on_death(its worker name, that line)` fails its trial and gives its point back, and a
    replacement worker is started in its place (at most as many replacements as workers), so that
    its point is trained in this run. Ctrl-C is passed on to every worker, which gives its work back
    before it exits. Raises the first worker's error.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    envs = envs or [{} for _ in args]
    procs = {i: _start(ctx, target, a, queue, envs[i]) for i, a in enumerate(args)}
    out, errors = Outcome(), []
    running = set(procs)  # indices that have not said how they ended
    spare = len(args)  # replacements left

    def handle(kind: str, payload: Any) -> None:
        if kind == "log":
            log(payload)
        elif kind == "tick":
            tick(payload)
        elif kind == "done":
            index, (ran, failed) = payload
            out.ran, out.failed = out.ran + ran, out.failed + failed
            running.discard(index)
        elif kind == "error":
            index, message = payload
            errors.append(message)
            running.discard(index)

    generation = 0
    try:
        checked = time.monotonic()
        while running:
            try:
                handle(*queue.get(timeout=CHECK_S))
            except Empty:
                pass
            if time.monotonic() - checked < CHECK_S:  # however busy the queue, the processes are looked at
                continue
            checked = time.monotonic()
            for index in sorted(running):
                p = procs[index]
                code = _ended(p)
                if code is None:  # still alive
                    continue
                until = time.monotonic() + CHECK_S  # it may have said how it ended just before exiting
                try:
                    while index in running and time.monotonic() < until:
                        handle(*queue.get(timeout=CHECK_S / 4))
                except Empty:
                    pass
                if index not in running:
                    continue
                line = death(index, p.pid, code)
                out.deaths.append(line)
                log(f"{line}: its trial is marked failed with that reason and its point goes to a live worker")
                if on_death is not None:  # before it is reaped: until then no live worker takes its point over
                    on_death(f"{os.uname().nodename}:{p.pid}", line)
                p.join()
                if spare:
                    spare -= 1
                    generation += 1  # a replacement's own sampler stream: not the dead worker's draws again
                    procs[index] = _start(ctx, target, args[index], queue, {**envs[index], RESTART_ENV: str(generation)})
                    log(f"worker w{index} started again (pid {procs[index].pid})")
                else:
                    running.discard(index)
    except KeyboardInterrupt:
        for p in procs.values():
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)  # handled as Ctrl-C; SIGINT may be ignored (a job started with &)
        for p in procs.values():
            p.join(timeout=120)
        raise
    for p in procs.values():
        p.join()
    if errors:
        raise RunnerError(errors[0])
    return out


def interrupt(signum: int, frame: Any) -> None:
    """A signal handler that stops like Ctrl-C (SIGTERM included). Once stopping, a second SIGTERM (a
    scheduler signals every process of a job, and its script may pass the signal on too) is ignored, so
    that it cannot cut short the giving back of the worker's claims."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def queue_channel(queue: Any, index: int) -> Channel:
    """Worker `index`'s progress, sent to the parent (run_processes) through `queue`, its lines tagged "w{index} "."""
    return Channel(lambda s: queue.put(("log", s)), lambda n: queue.put(("tick", n)), f"w{index} ")


def worker_process(index: int, queue: Any, body: Callable[[], tuple[int, int]]) -> None:
    """Run a worker's `body` in its process, telling the parent (run_processes) how it ended."""
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops it, even when started ignoring SIGINT
    try:
        queue.put(("done", (index, body())))
    except KeyboardInterrupt:
        queue.put(("error", (index, "interrupted")))
    except RunnerError as e:
        queue.put(("error", (index, str(e))))
    except Exception as e:  # noqa: BLE001 - the parent must hear of every way a worker ends
        queue.put(("error", (index, f"worker {index}: {type(e).__name__}: {e}")))
