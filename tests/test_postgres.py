"""Exactly once on a real PostgreSQL server that the suite starts itself (127.0.0.1, a free port)."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.postgres

RUNNER = str(Path(sys.executable).with_name("runner"))


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    """Start a throwaway server; as root, its binaries run as the `postgres` user."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found; CI must run these tests")
        pytest.skip("PostgreSQL server binaries not found")
    data = tmp_path_factory.mktemp("pg") / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data.parent, "postgres")
        data.parent.chmod(0o755)
        for parent in data.parents:  # the server must be able to reach its folder
            if str(parent).startswith(str(tmp_path_factory.getbasetemp().parent)):
                parent.chmod(parent.stat().st_mode | 0o005)
    port = _free_port()
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data.parent / "log"), "-w", "-o",
        f"-h 127.0.0.1 -p {port} -k {data.parent} -c fsync=off", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "runner")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/runner"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")


def test_two_machines_share_a_postgres_study_and_run_each_point_once(postgres_url, write_spec, tmp_path):
    spec = write_spec(seeds="[0, 1, 2]", models='["mlp"]')  # 6 points
    procs = [subprocess.Popen([RUNNER, "grid", str(spec), "--storage", postgres_url, "--quiet"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = optuna.load_study(study_name="t", storage=postgres_url).get_trials()
    assert all(t.state.name == "COMPLETE" for t in trials)
    per_point = Counter(t.user_attrs["config_hash"] for t in trials)
    assert len(per_point) == 6 and set(per_point.values()) == {1}


def test_workers_on_postgres_and_a_rerun_trains_nothing(postgres_url, write_spec, tmp_path):
    spec = write_spec(text=write_spec().read_text().replace('name = "t"', 'name = "w"'), name="w.toml")
    first = subprocess.run([RUNNER, "grid", str(spec), "--storage", postgres_url, "--workers", "2", "--quiet"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    again = subprocess.run([RUNNER, "grid", str(spec), "--storage", postgres_url], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert "w: 2 of 2 trials complete; 0 to run" in again.stderr
    assert len(optuna.load_study(study_name="w", storage=postgres_url).get_trials()) == 2
