"""runner/dberrors.py: a database that cannot be used is one line at once; only one that blinks is waited out.

The CLI cases run `runner grid` as a user would, in a subprocess with --db-patience 120 and a timeout of 60 s,
so that a regression (an error waited out as a blink) fails rather than hangs. Root ignores file permissions,
and the suite runs as root here: a command meant to meet a read-only file or folder runs without the
capabilities that override them (setpriv: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER dropped), and "a
user without write permission" is `nobody`, who may read everything (CAP_DAC_READ_SEARCH, which lets a process
read but never write) and write only what its permissions allow.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from runner.cli import cli
from runner.dberrors import PERMANENT, TRANSIENT, kind
from runner.errors import StorageError
from runner.store import Store
from runner.trials.patience import Patience, Writer

RUNNER = str(Path(sys.executable).with_name("runner"))
PATIENCE = ["--db-patience", "120"]  # a regression would wait this out: the subprocess's timeout ends it first
TIMEOUT_S = 60

SPEC = """
[study]
name = "t"
seeds = {seeds}
metric = "test_acc"
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 1
batch_size = 100
lr = 0.05
threads = 1
[models.mlp]
arch = "mlp"
hidden = [16]
[grid]
model = ["mlp"]
"""

OBEYING = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all", "--"]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_read_search",
          "--ambient-caps=+dac_read_search", "--"]


def _prefix(kind_: str) -> list[str]:
    """The command prefix that makes permissions bite: none for an ordinary user; as root, `setpriv` (skipped
    where it is missing or not allowed)."""
    if os.geteuid() != 0:
        if kind_ == "nobody":
            pytest.skip("switching to another user needs root")
        return []
    prefix = NOBODY if kind_ == "nobody" else OBEYING
    if shutil.which("setpriv") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("setpriv cannot drop root's capabilities here")
    return prefix


@pytest.fixture
def specs(tmp_path):
    """spec.toml (1 point) and more.toml (2: one more seed, so there is something to write)."""
    one, two = tmp_path / "spec.toml", tmp_path / "more.toml"
    one.write_text(textwrap.dedent(SPEC.format(seeds="[0]")))
    two.write_text(textwrap.dedent(SPEC.format(seeds="[0, 1]")))
    return one, two


def _grid(spec: Path, storage: str, cwd: Path) -> None:
    """A first run, as root, in this process: the database the test then takes write permission from."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, ["grid", str(spec), "--storage", storage, "-q"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output


def _refused(args: list[str], cwd: Path, prefix: list[str]) -> str:
    """Run `runner ARGS` (under `prefix`): it must end within the timeout, with exit 1 and one line on stderr
    and nothing else; that line."""
    proc = subprocess.run([*prefix, RUNNER, *args, *PATIENCE], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "lost the database" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and proc.stdout == "", proc.stdout + proc.stderr
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- runner grid on a database it may not write


def test_a_read_only_file_is_one_line_with_its_absolute_path_at_once(specs, tmp_path):
    one, more = specs
    _grid(one, "db/runner.sqlite", tmp_path)
    db = tmp_path / "db" / "runner.sqlite"
    db.chmod(0o444)
    before = _digest(db)
    line = _refused(["grid", str(more), "--storage", "db/runner.sqlite"], tmp_path, _prefix("owner"))
    assert line == (f"Error: sqlite:///db/runner.sqlite ({db}): cannot write: the file is read-only, mode 0444 "
                    "(attempt to write a readonly database)")
    assert _digest(db) == before


@pytest.mark.parametrize("existing", [False, True], ids=["new database", "existing database"])
def test_a_read_only_folder_is_one_line_at_once(specs, tmp_path, existing):
    one, more = specs
    folder = tmp_path / "ro"
    folder.mkdir()
    if existing:
        _grid(one, str(folder / "runner.sqlite"), tmp_path)
    folder.chmod(0o555)
    try:
        line = _refused(["grid", str(more), "--storage", str(folder / "runner.sqlite"), "--artifacts",
                         str(tmp_path / "a"), "--checkpoints", str(tmp_path / "c")], tmp_path, _prefix("owner"))
    finally:
        folder.chmod(0o755)
    url = f"sqlite:///{folder / 'runner.sqlite'}"
    if existing:  # SQLite must create runner.sqlite-wal beside it
        assert line == (f"Error: {url}: cannot write: its folder {folder} is read-only, mode 0555 "
                        "(attempt to write a readonly database)")
    else:
        assert line == (f"Error: {url}: cannot create: its folder {folder} is read-only, mode 0555 "
                        "(unable to open database file)")
        assert not (folder / "runner.sqlite").exists()


def test_a_user_without_write_permission_is_one_line_at_once(specs):
    prefix = _prefix("nobody")
    one, more = specs
    # a folder others may enter (pytest's own is 0700: click's check that the spec is readable would refuse it)
    with tempfile.TemporaryDirectory(prefix="runner-tests-") as name:
        shared = Path(name)
        shared.chmod(0o755)
        for spec in specs:
            shutil.copy(spec, shared)
        _grid(shared / one.name, "db/runner.sqlite", shared)
        db = shared / "db" / "runner.sqlite"
        assert db.stat().st_mode & 0o777 == 0o644 and db.stat().st_uid == 0  # root's, as a colleague's would be
        before = _digest(db)
        line = _refused(["grid", str(shared / more.name), "--storage", str(db)], shared, prefix)
        assert _digest(db) == before
    assert line == (f"Error: sqlite:///{db}: cannot write: user nobody may not write the file, owned by root "
                    "with mode 0644 (attempt to write a readonly database)")


def test_a_full_disk_is_one_line_at_once(specs, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    one, more = specs
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        elsewhere = ["--artifacts", str(tmp_path / "a"), "--checkpoints", str(tmp_path / "c")]
        old = Path.cwd()
        os.chdir(tmp_path)
        try:
            assert CliRunner().invoke(cli, ["grid", str(one), "--storage", str(disk / "r.sqlite"), "-q",
                                            *elsewhere]).exit_code == 0
        finally:
            os.chdir(old)
        with open(disk / "filler", "wb", buffering=0) as f:  # the rest of the disk
            while True:
                try:
                    f.write(b"\0" * 4096)
                except OSError:
                    break
        line = _refused(["grid", str(more), "--storage", str(disk / "r.sqlite"), *elsewhere], tmp_path, [])
        assert line.startswith(f"Error: sqlite:///{disk / 'r.sqlite'}: cannot write: the disk is full, ")
        assert line.endswith((" bytes free (database or disk is full)", " bytes free (disk I/O error)")), line
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_missing_table_is_one_line(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:  # a SQLite file some other program made
        db.execute("CREATE TABLE notes (text)")
    result = CliRunner().invoke(cli, ["studies", "--storage", str(other)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: sqlite:///{other}: not a database that runner made, or one whose "
                                     "tables were removed (no such table: version_info)")


def test_a_relative_storage_is_named_with_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["studies"])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: sqlite:///db/runner.sqlite ({tmp_path}/db/runner.sqlite): no such "
                                     "database; run runner grid SPEC first, or pass --storage")
    assert not (tmp_path / "db").exists()


@pytest.mark.postgres
def test_a_wrong_password_is_one_line_at_once(postgres_url, specs, tmp_path):
    one, _ = specs
    url = sa.engine.make_url(postgres_url)
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:  # a role that must give its password (the suite's server trusts every other)
        hba = Path(c.exec_driver_sql("SHOW hba_file").scalar_one())
        kept = c.exec_driver_sql("SELECT pg_read_file(%s)", (str(hba),)).scalar_one()
        c.exec_driver_sql("DROP ROLE IF EXISTS runner_pw")
        c.exec_driver_sql("CREATE ROLE runner_pw LOGIN PASSWORD 'right'")
        _write_server_file(c, hba, f"host all runner_pw {url.host}/32 scram-sha-256\n{kept}")
        wrong = url.set(username="runner_pw", password="wrong").render_as_string(hide_password=False)
        try:
            _wait_until_refused(wrong)
            line = _refused(["grid", str(one), "--storage", wrong], tmp_path, [])
        finally:
            _write_server_file(c, hba, kept)
            c.exec_driver_sql("DROP ROLE runner_pw")
        admin.dispose()
    assert line == (f"Error: postgresql+psycopg://runner_pw:***@{url.host}:{url.port}/{url.database}: cannot "
                    'connect: password authentication failed for user "runner_pw"')


def _write_server_file(conn: sa.Connection, path: Path, text: str) -> None:
    """Write a file of the server's (a superuser's COPY) and reload its configuration."""
    rows = [line.replace("\t", " ") for line in text.splitlines() if line.strip() and not line.startswith("#")]
    literal = ", ".join(f"$hba${row}$hba$" for row in rows)  # COPY takes no parameters
    conn.exec_driver_sql(f"COPY (SELECT unnest(ARRAY[{literal}])) TO '{path}'")
    conn.exec_driver_sql("SELECT pg_reload_conf()")


def _wait_until_refused(url: str) -> None:
    """The server reads its new pg_hba.conf a moment after the reload: until then, wait (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sa.create_engine(url).connect().close()
        except sa.exc.OperationalError as e:
            if "password authentication failed" in str(e):
                return
            raise
        assert time.monotonic() < deadline, "the server still lets runner_pw in with a wrong password"
        time.sleep(0.2)


# ---------------------------------------------------------------- the rule, on the drivers' own errors


def _readonly_engine(path: Path) -> sa.Engine:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")


def _raised(fn) -> BaseException:  # noqa: ANN001
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return e
    raise AssertionError("no error")


def test_sqlites_errors_are_told_apart_by_their_codes(tmp_path):
    readonly = _readonly_engine(tmp_path / "ro.sqlite")
    with readonly.connect() as c:
        assert kind(_raised(lambda: c.exec_driver_sql("INSERT INTO t VALUES (1)"))) == PERMANENT
        assert kind(_raised(lambda: c.exec_driver_sql("SELECT * FROM nosuch"))) == PERMANENT
        assert kind(_raised(lambda: c.exec_driver_sql("SELEC 1"))) is None  # a bug's SQL: neither
    holder = sqlite3.connect(tmp_path / "busy.sqlite", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    busy = sa.create_engine(f"sqlite:///{tmp_path / 'busy.sqlite'}", connect_args={"timeout": 0})
    with busy.connect() as c:
        assert kind(_raised(lambda: c.exec_driver_sql("INSERT INTO t VALUES (1)"))) == TRANSIENT  # database is locked
    holder.close()
    assert kind(ValueError("a bug")) is None and kind(StorageError("no such study")) is None


def test_postgres_codes_are_told_apart():
    errors = pytest.importorskip("psycopg.errors")
    assert kind(errors.lookup("57P01")("terminating connection due to administrator command")) == TRANSIENT
    assert kind(errors.lookup("08006")("connection failure")) == TRANSIENT
    for code in ("28P01", "3D000", "42P01", "53100", "42501"):
        assert kind(errors.lookup(code)("x")) == PERMANENT, code
    assert kind(errors.lookup("23505")("duplicate key")) is None  # a unique key: its caller's to handle


def test_patience_gives_up_on_a_permanent_error_at_once_in_one_line(tmp_path, monkeypatch):
    def no_waiting(s: float) -> None:
        raise AssertionError("a permanent error was waited out")
    monkeypatch.setattr(time, "sleep", no_waiting)
    engine = _readonly_engine(tmp_path / "ro.sqlite")
    url = str(engine.url)

    def write() -> None:
        with engine.begin() as c:
            c.exec_driver_sql("INSERT INTO t VALUES (1)")
    lines: list[str] = []
    with pytest.raises(StorageError) as raised:
        Patience(120, lines.append, "w1 ", url).call(write)
    assert str(raised.value) == (f"{url}: cannot write: the URL opens it read-only (mode=ro) "
                                 "(attempt to write a readonly database)")
    assert lines == []  # no "lost the database"


def test_the_writer_stops_on_a_full_database_at_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'full.sqlite'}")
    # no page beyond those it has (SQLite keeps max_page_count at least the database's size): SQLITE_FULL
    sa.event.listen(store.engine, "connect", lambda conn, _: conn.execute("PRAGMA max_page_count = 1"))
    store.engine.dispose()
    lines: list[str] = []
    writer = Writer(Patience(120, lines.append, "w1 ", store.url))
    writer.put(lambda: store.claim("t", "k" * 20_000, "w", 60.0))  # a row bigger than the pages left
    with pytest.raises(StorageError, match=r": cannot write: .*\(database or disk is full\)$"):
        writer.flush()
    writer.close()
    assert lines == []
    store.dispose()
