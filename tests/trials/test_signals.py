"""runner/trials/signals.py: Ctrl-C and SIGTERM held back while a step must finish whole."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from runner.trials.checkpoints import Checkpoints
from runner.trials.signals import held_signals


def _from_another_thread(signum: int) -> None:
    """The signal sent to this process by a thread that is not the main one (as the kernel may hand it to one)."""
    t = threading.Thread(target=lambda: os.kill(os.getpid(), signum))
    t.start()
    t.join()


@pytest.fixture(autouse=True)
def ctrl_c():
    """Ctrl-C as a terminal gives it, even to a suite started in the background (which inherits SIGINT ignored)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_an_interrupt_inside_the_block_comes_after_it_whole():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with held_signals():
            _from_another_thread(signal.SIGINT)
            time.sleep(0.05)  # the main thread runs Python's handlers meanwhile: here, only the note
            steps.append("finished")
    assert steps == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers as they were


def test_sigterm_comes_after_the_block_to_the_handler_it_had():
    came = []
    before = signal.signal(signal.SIGTERM, lambda n, f: came.append(n))
    try:
        with held_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            assert came == []
        assert came == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)


def test_an_ignored_signal_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job started with & in a script
    try:
        with held_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_checkpoint_interrupted_while_it_is_written_is_whole_and_the_interrupt_comes_after(tmp_path, monkeypatch):
    """Ctrl-C in the middle of torch.save: the checkpoint is written whole, then the KeyboardInterrupt (not the
    RuntimeError that a zip writer cut short raises in its cleanup)."""
    import torch

    real = torch.save

    def save_interrupted(obj, f, *args, **kwargs):
        f.write(b"")  # the zip writer has begun
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_interrupted)
    checkpoints = Checkpoints(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save("abc", {"config_hash": "abc", "epoch": 3, "w": torch.ones(3)})
    monkeypatch.setattr(torch, "save", real)
    assert checkpoints.load("abc")["epoch"] == 3
