"""runner/trials/patience.py: a database that blinks stops nothing. The rules on fakes first (seconds), then
faults injected into real servers: the suite's PostgreSQL restarted mid-grid, one worker's connection cut off
through a TCP proxy for longer than --stale-after, SQLite's lock held by another process. Every wait is
bounded: each fault test ends by itself or fails."""
from __future__ import annotations

import json
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from runner.errors import StorageError
from runner.store import Store
from runner.trials.patience import ClaimLost, DatabaseGone, Patience, Writer, transient

RUNNER = str(Path(sys.executable).with_name("runner"))
OPTUNA = str(Path(sys.executable).with_name("optuna"))
SPEC = """
[study]
name = "{name}"
seeds = [0, 1, 2, 3]
metric = "test_acc"
[data]
train_limit = {train}
test_limit = 300
[train]
epochs = {epochs}
batch_size = 100
lr = 0.05
threads = 1
[models.lenet5]
arch = "lenet5"
[grid]
model = ["lenet5"]
batch_norm = [false, true]
"""


def _down(message: str = "connection refused") -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception(message))


# ---------------------------------------------------------------- the rules, on fakes


def test_transient_errors_are_told_apart_through_their_wrappers():
    wrapped = StorageError("sqlite:///x: database is locked")
    wrapped.__cause__ = _down("database is locked")
    inner = optuna.exceptions.StorageInternalError("boom")
    inner.__cause__ = _down("server closed the connection unexpectedly")
    assert transient(_down()) and transient(wrapped) and transient(inner)
    assert not transient(ValueError("a bug")) and not transient(StorageError("no such study"))


def test_patience_waits_out_an_outage_says_so_twice_and_gives_up_past_its_seconds(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    lines: list[str] = []
    calls = iter([_down(), _down(), "rows"])

    def flaky():
        out = next(calls)
        if isinstance(out, Exception):
            raise out
        return out

    patience = Patience(60, lines.append, "w1 ")
    assert patience.call(flaky) == "rows"
    assert len(lines) == 2 and lines[0].startswith("w1 lost the database (connection refused)")
    assert lines[1].startswith("w1 has the database back after ") and lines[1].endswith(" s")
    with pytest.raises(ValueError):  # not the database being away: at once, no waiting
        patience.call(lambda: (_ for _ in ()).throw(ValueError("a bug")))
    never = Patience(0.05, lines.append, "w1 ")
    with pytest.raises(DatabaseGone, match="away for more than --db-patience 0.05 s"):
        never.call(lambda: (_ for _ in ()).throw(_down()))


def test_the_writer_keeps_order_through_an_outage_and_reports_a_lost_claim():
    written: list[int] = []
    down = {"until": time.monotonic() + 0.5}

    def write(i: int):
        def fn():
            if time.monotonic() < down["until"]:
                raise _down()
            written.append(i)
        return fn

    lines: list[str] = []
    writer = Writer(Patience(30, lines.append))
    started = time.monotonic()
    for i in range(5):
        writer.put(write(i))
    assert time.monotonic() - started < 0.2  # training does not wait for the database
    writer.flush()
    assert written == [0, 1, 2, 3, 4] and "has the database back" in lines[-1]
    writer.put(lambda: (_ for _ in ()).throw(optuna.exceptions.UpdateFinishedTrialError("finished")))
    writer.put(write(5))
    with pytest.raises(ClaimLost):
        writer.flush()
    assert written == [0, 1, 2, 3, 4]  # nothing after a lost claim
    writer.close()


def test_a_claim_taken_over_is_never_completed_by_its_first_worker(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert store.claim("s", "p", "host:1", 300) is not None
    assert store.claim("s", "p", "host:1", 300) is not None  # our own insert, its answer lost: still ours
    assert store.claim("s", "p", "host:2", 0) is not None  # host:1 went silent: host:2 takes it over
    assert not store.owns("s", "p", "host:1") and not store.complete_claim("s", "p", "host:1")
    assert store.complete_claim("s", "p", "host:2") and store.complete_claim("s", "p", "host:2")  # asked twice: once
    assert store.claims("s")["p"].state == "complete" and store.claims("s")["p"].worker == "host:2"
    store.dispose()


# ---------------------------------------------------------------- faults injected into real servers


def _points_once(url: str, study: str) -> list[dict]:
    """Every trial of the study read through Optuna's own command line, each point COMPLETE exactly once."""
    shown = subprocess.run([OPTUNA, "trials", "--study-name", study, "--storage", url, "-f", "json"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    trials = json.loads(shown.stdout)
    complete = Counter(json.dumps(t["params"], sort_keys=True) for t in trials if t["state"] == "COMPLETE")
    assert len(complete) == 8 and set(complete.values()) == {1}, complete
    assert not [t for t in trials if t["state"] == "RUNNING"]
    return trials


def _wait_for_epochs(url: str, study: str, n: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    engine = sa.create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            with engine.connect() as c:
                try:
                    done = c.execute(sa.text("SELECT count(*) FROM runner_epochs WHERE study_name = :s"),
                                     {"s": study}).scalar_one()
                except sa.exc.DBAPIError:  # its tables not made yet
                    done = 0
            if done >= n:
                return
            time.sleep(0.5)
        raise AssertionError(f"fewer than {n} epochs of {study} stored within {timeout} s")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_postgres_restart_mid_grid_stops_nothing(postgres_server, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="blink", train=3000, epochs=6))
    proc = subprocess.Popen([RUNNER, "grid", str(spec), "--storage", postgres_server.url, "--workers", "2"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_epochs(postgres_server.url, "blink", 3, proc)
        postgres_server.stop()
        time.sleep(8)  # the server away, as for a maintenance restart
        postgres_server.start()
        output = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "blink: 8 of 8 trials complete" in output
    assert "lost the database" in output and "has the database back after" in output, output
    _points_once(postgres_server.url, "blink")


class _Proxy:
    """A TCP proxy to a server that the test can pause (nothing forwarded, every connection kept open)."""

    def __init__(self, port: int):
        self.target, self.paused, self.stopped = port, threading.Event(), threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.5)
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        while not self.stopped.is_set():
            if self.paused.is_set():
                time.sleep(0.05)
                continue
            ready, _, _ = select.select([a, b], [], [], 0.2)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    a.close(), b.close()
                    return
                (b if s is a else a).sendall(data)


@pytest.mark.postgres
def test_a_worker_cut_off_past_stale_after_has_its_point_taken_over_and_completed_once(postgres_server, tmp_path):
    port = int(sa.engine.make_url(postgres_server.url).port)
    proxy = _Proxy(port)
    through = postgres_server.url.replace(f":{port}/", f":{proxy.port}/")
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="cut", train=2000, epochs=8))
    args = ["grid", str(spec), "--stale-after", "4", "--db-patience", "600"]
    cut = subprocess.Popen([RUNNER, *args, "--storage", through], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    other = None
    try:
        _wait_for_epochs(postgres_server.url, "cut", 2, cut)
        proxy.paused.set()  # its heartbeat and epochs stop reaching the server; it trains on
        time.sleep(6)  # past --stale-after
        other = subprocess.Popen([RUNNER, *args, "--storage", postgres_server.url], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_for_taken_over(postgres_server.url, "cut", other)
        proxy.paused.clear()
        outputs = [p.communicate(timeout=600)[0] for p in (other, cut)]
    finally:
        proxy.stopped.set()
        for p in (cut, other):
            if p is not None and p.poll() is None:
                p.kill()
    assert [other.returncode, cut.returncode] == [0, 0], outputs
    assert "another worker took its point over while this one was cut off from the database; its result is " \
           "dropped" in outputs[1], outputs[1]
    trials = _points_once(postgres_server.url, "cut")
    assert any("taken over" in str(t.get("user_attrs", {}).get("fail_reason", "")) for t in trials)


def _wait_for_taken_over(url: str, study: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None or proc.returncode == 0, proc.communicate()[0]
        trials = optuna.load_study(study_name=study, storage=url).get_trials()
        if any("taken over" in str(t.user_attrs.get("fail_reason", "")) for t in trials):
            return
        time.sleep(0.5)
    raise AssertionError(f"no point of {study} was taken over within {timeout} s")


def test_four_sqlite_workers_lose_nothing_to_a_lock_another_process_holds(tmp_path):
    db = tmp_path / "db.sqlite"
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="locked", train=1000, epochs=4))
    proc = subprocess.Popen([RUNNER, "grid", str(spec), "--storage", str(db), "--workers", "4"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_epochs(f"sqlite:///{db}", "locked", 2, proc)
        holder = sqlite3.connect(db, timeout=60)
        holder.execute("BEGIN EXCLUSIVE")  # another process's lock, for a few seconds
        time.sleep(5)
        holder.rollback()
        holder.close()
        output = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "locked: 8 of 8 trials complete" in output
    _points_once(f"sqlite:///{db}", "locked")


@pytest.mark.postgres
def test_past_its_patience_a_worker_gives_up_in_one_line_and_the_next_run_resumes(postgres_server, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(name="gone", train=3000, epochs=6))
    proc = subprocess.Popen([RUNNER, "grid", str(spec), "--storage", postgres_server.url, "--db-patience", "3", "-q"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_epochs(postgres_server.url, "gone", 2, proc)
        postgres_server.stop()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        postgres_server.start()
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert "the database was away for more than --db-patience 3 s" in err.strip().splitlines()[-1], err
    again = subprocess.run([RUNNER, "grid", str(spec), "--storage", postgres_server.url], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resumed from the checkpoint after epoch" in again.stderr and "gone: 8 of 8 trials complete" in again.stdout
    _points_once(postgres_server.url, "gone")


def test_a_stopped_writer_does_not_wait_out_the_patience_on_close():
    """Ctrl-C during an outage: the write under way is waited for a moment, then nothing more."""
    writer = Writer(Patience(600))
    writer.put(lambda: (_ for _ in ()).throw(_down()))  # the database away: this write would retry for 600 s
    time.sleep(0.2)
    writer.stop(wait_s=0.5)
    closing = threading.Thread(target=writer.close, daemon=True)
    closing.start()
    closing.join(5)
    assert not closing.is_alive()  # close returned: it did not wait for the retrying write
