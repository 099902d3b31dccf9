"""Shared fixtures: small specs on data subsets, so that every test trains in about a second."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from runner.data import MNIST, load_mnist

OLD_DATABASE = Path(__file__).parent / "fixtures" / "v0" / "runner.sql"  # made by the code at f02d618


@pytest.fixture
def restore_old_database():
    """Restore the database the code at f02d618 made (tests/fixtures/v0) from its SQL dump, at a path."""
    import sqlite3

    def restore(path: Path) -> Path:
        with sqlite3.connect(path) as db:
            db.executescript(OLD_DATABASE.read_text())
        return path
    return restore

SMALL_SPEC = """
[study]
name = "{name}"
seeds = {seeds}
metric = "test_acc"

[data]
train_limit = 600
test_limit = 300

[train]
epochs = {epochs}
batch_size = 100
lr = 0.05

[models.lenet5]
arch = "lenet5"

[models.mlp]
arch = "mlp"
hidden = [32]

[grid]
model = {models}
batch_norm = {batch_norm}
"""


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    """The packaged MNIST, full size (converted once, then read from the cache)."""
    return load_mnist()


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec file: either SMALL_SPEC with fields filled in, or the text given."""
    def write(text: str | None = None, name: str = "spec.toml", **fields) -> Path:
        if text is None:
            values = {"name": "t", "seeds": "[0]", "epochs": 1, "models": '["lenet5"]',
                      "batch_norm": "[false, true]", **fields}
            text = SMALL_SPEC.format(**values)
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


# ---------------------------------------------------------------- servers the suite starts itself


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


class PostgresServer:
    """The suite's server: its URL, and a restart that keeps its data (for the fault tests)."""

    def __init__(self, url: str, pg_ctl: list[str], data: Path, port: int):
        self.url, self._pg_ctl, self._data, self._port = url, pg_ctl, data, port

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: every connection terminated, as a maintenance restart does."""
        subprocess.run([*self._pg_ctl, "-D", str(self._data), "-m", "fast", "-w", "stop"], check=True,
                       capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        subprocess.run([*self._pg_ctl, "-D", str(self._data), "-l", str(self._data.parent / "log"), "-w", "-o",
                        f"-h 127.0.0.1 -p {self._port} -k {self._data.parent} -c fsync=off", "start"], check=True,
                       capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    """The URL of the suite's PostgreSQL server."""
    return postgres_server.url


@pytest.fixture(scope="session")
def postgres_server():
    """Start a throwaway server; as root, its binaries run as the `postgres` user.

    Its folder is not under pytest's /tmp/pytest-of-<user>: any other pytest session that starts while it
    runs makes that folder 0700 again, and the server, as `postgres`, then loses its data (PANIC: could
    not open file "global/pg_control": Permission denied)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found; CI must run these tests")
        pytest.skip("PostgreSQL server binaries not found")
    data = Path(tempfile.mkdtemp(prefix="runner-tests-pg-")) / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data.parent, "postgres")
    port = _free_port()
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data.parent / "log"), "-w", "-o",
        f"-h 127.0.0.1 -p {port} -k {data.parent} -c fsync=off", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "runner")
        yield PostgresServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/runner",
                             [*as_user, str(bin_dir / "pg_ctl")], data, port)
    finally:
        try:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(data.parent, ignore_errors=True)


SLURM_CONF = """\
ClusterName=runnertest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket,cred_expire=10
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
MpiDefault=none
KillWait=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A single-node Slurm cluster on this machine (munged, slurmctld, slurmd; no systemd): the environment
    in which sbatch, squeue and scancel reach it. Needs Debian's slurm-wlm and munge, and root (slurmd)."""
    import time

    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch") if not (shutil.which(b) or
                                                                              Path(f"/usr/sbin/{b}").exists())]
    why = (f"Slurm not installed ({', '.join(missing)} missing; apt-get install slurm-wlm munge)" if missing
           else "slurmd must run as root" if os.geteuid() != 0 else "")
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI must run these tests")
        pytest.skip(why)
    root = tmp_path_factory.mktemp("slurm")
    (root / "munge").mkdir(mode=0o700)
    for name in ("state", "spool"):
        (root / name).mkdir()
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o600)
    sbin = lambda b: shutil.which(b) or f"/usr/sbin/{b}"  # noqa: E731
    subprocess.run([sbin("munged"), "--force", f"--key-file={key}", f"--socket={root}/munge/munge.socket",
                    f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munge/munged.log",
                    f"--seed-file={root}/munge/munge.seed"], check=True, capture_output=True, text=True)
    host = socket.gethostname()
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, root=root, ctld_port=_free_port(), d_port=_free_port(),
                                      cpus=os.cpu_count()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [subprocess.Popen([sbin("slurmctld"), "-D", "-f", str(conf)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)]
    time.sleep(0.5)
    daemons.append(subprocess.Popen([sbin("slurmd"), "-D", "-f", str(conf), "-N", host], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            logs = "".join(p.read_text()[-2000:] for p in root.glob("slurm*.log"))
            pytest.fail(f"the Slurm node is not idle after 60 s (state {state!r}); logs:\n{logs}")
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], env=env, capture_output=True)
        for p in reversed(daemons):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        pid = root / "munge" / "munged.pid"
        if pid.exists():
            try:
                os.kill(int(pid.read_text().strip()), 15)
            except (ProcessLookupError, ValueError):
                pass
