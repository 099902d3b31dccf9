"""Ctrl-C and SIGTERM held back while a step must finish whole (a checkpoint file, the giving back of a claim).

Held in Python, not by the thread's signal mask: a signal that the kernel hands to another thread (the writer's, the
heartbeat's) still runs the main thread's handler, so `pthread_sigmask` in the main thread alone holds nothing.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["held_signals", "HELD"]

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM noted, not acted on; after it, the first that came is raised again
    under the handlers as they were (Ctrl-C: KeyboardInterrupt; ignored: nothing). Off the main thread, where
    Python runs no handler, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def note(signum: int, frame: Any) -> None:
        came.append(signum)

    before = {s: signal.signal(s, note) for s in HELD}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if came:
            signal.raise_signal(came[0])
