"""runner/trials/heartbeat.py: a Heartbeat refreshes its worker's claim every HEARTBEAT_S seconds while a
trial trains, keeps beating through a busy database, and stops when told. (The takeover of a claim whose
heartbeat stopped is the store's: tests/test_store.py.)"""
from __future__ import annotations

import time

import pytest

from runner.errors import StorageError
from runner.store import Store
from runner.trials import heartbeat
from runner.trials.heartbeat import Heartbeat


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", 0.02)  # beats of 20 ms rather than 30 s
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    yield store
    store.dispose()


def _beat_of(store: Store):
    return store.claims("t")["k"].heartbeat


def _wait_for(condition, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_heartbeat_refreshes_its_claim_until_stopped(store):
    store.claim("t", "k", "w", 600)
    first = _beat_of(store)
    beat = Heartbeat(store, "t", "k", "w")
    assert _wait_for(lambda: _beat_of(store) > first)  # refreshed from its thread
    beat.stop()
    stopped = _beat_of(store)
    time.sleep(0.2)  # ten beats' time
    assert _beat_of(store) == stopped  # no beat after stop()
    assert store.claims("t")["k"].worker == "w" and store.claims("t")["k"].state == "running"


def test_a_busy_database_skips_a_beat_and_the_next_goes_on(store, monkeypatch):
    calls = []

    def busy_then_fine(*args, **values):
        calls.append(args)
        if len(calls) == 1:
            raise StorageError("database is locked")

    monkeypatch.setattr(store, "update_claim", busy_then_fine)
    beat = Heartbeat(store, "t", "k", "w")
    assert _wait_for(lambda: len(calls) >= 3)  # the thread outlived the error
    beat.stop()
    assert calls[0] == ("t", "k", "w")
