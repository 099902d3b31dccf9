"""runner/migrations: the format of runner's tables recorded in runner_alembic_version; the databases of
formats 0-4 (tests/fixtures/v0-v4) upgraded when opened to write, in one line, and read as they are; a newer
runner's database refused in one line with nothing written; workers opening one database at once; the same
on a PostgreSQL server the suite starts itself."""
from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import subprocess
import sys
import tomllib
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from runner.cli import cli
from runner.dberrors import named
from runner.errors import StorageError
from runner.formats import FORMAT, FORMATS
from runner.migrations import SCRIPTS, VERSION_TABLE, tables_format
from runner.store import Base, Store

ROOT = Path(__file__).parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DUMPS = {0: FIXTURES / "v0" / "runner.sql", 1: FIXTURES / "v1" / "search.sql", 2: FIXTURES / "v2" / "search.sql",
         3: FIXTURES / "v3" / "ema.sql"}  # a database of each format before the version was recorded
TABLE_FORMAT = {0: 0, 1: 1, 2: 2, 3: 2}  # format 3 changed no table: its tables read as format 2's
WORDS = {2: "2 or 3 (their tables are alike)"}  # what the upgrade's line says of tables that read as format 2


def restore(fmt: int, path: Path) -> str:
    """A database of format `fmt` (its fixture's dump) at `path`; its URL."""
    with sqlite3.connect(path) as db:
        db.executescript(DUMPS[fmt].read_text())
    return f"sqlite:///{path}"


def rows(path: Path, table: str, columns: str = "*") -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return sorted(db.execute(f"select {columns} from {table}").fetchall())


def version(path: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(f"select version_num from {VERSION_TABLE}").fetchall()


def differences(url: str) -> list:
    """What Alembic finds between the database's runner_ tables and the tables runner/store.py declares."""
    def ours(name, type_, parent):  # noqa: ANN001 - Alembic's include_name hook
        return type_ != "table" or (name.startswith("runner_") and name != VERSION_TABLE)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"include_name": ours}), Base.metadata)
    finally:
        engine.dispose()


def messages(said) -> list[str]:
    """The warnings' messages, less ResourceWarnings: the garbage collector finding an earlier test's connection."""
    return [str(w.message) for w in said if not issubclass(w.category, ResourceWarning)]


@contextlib.contextmanager
def no_warning() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield
    assert messages(seen) == []


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the formats and their migrations


def test_each_format_is_one_migration_in_a_line_from_0_to_the_current():
    script = ScriptDirectory(str(SCRIPTS))
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert chain == [str(f) for f in sorted(FORMATS)] and script.get_current_head() == str(FORMAT)


def test_the_migrations_ship_as_package_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {p for g in globs["runner.migrations"] for p in SCRIPTS.glob(g)}
    assert shipped == set((SCRIPTS / "versions").glob("*.py")) and len(shipped) == len(FORMATS)


def test_a_column_or_table_a_format_added_is_in_its_fixture_and_not_in_the_one_before(tmp_path):
    made = {fmt: sqlite3.connect(restore(fmt, tmp_path / f"v{fmt}.sqlite").removeprefix("sqlite:///"))
            for fmt in DUMPS}
    added = [(c.info["format"], "runner_epochs", c.name) for c in Base.metadata.tables["runner_epochs"].columns
             if "format" in c.info]
    added += [(t.info["format"], t.name, None) for t in Base.metadata.tables.values() if "format" in t.info]
    assert len(added) == 4

    def has(fmt: int, table: str, column: str | None) -> bool:
        names = [r[1] for r in made[fmt].execute(f"pragma table_info({table})")]
        return bool(names) and (column is None or column in names)
    for fmt, table, column in added:
        assert has(fmt, table, column) and not has(fmt - 1, table, column), (fmt, table, column)


# ---------------------------------------------------------------- databases of formats 0-3


@pytest.mark.parametrize("fmt", sorted(DUMPS))
def test_an_older_database_is_upgraded_when_opened_to_write_and_says_so_in_one_line(tmp_path, fmt):
    path = tmp_path / "old.sqlite"
    url = restore(fmt, path)
    epochs, claims, optunas = rows(path, "runner_epochs", "trial_id, epoch, test_acc"), rows(path, "runner_claims"), \
        rows(path, "alembic_version")
    assert tables_format(sa.create_engine(url).connect()) == TABLE_FORMAT[fmt]
    with pytest.warns(UserWarning) as said:
        Store(url).dispose()
    assert messages(said) == \
        [f"{named(url)}: upgraded runner's tables from format {WORDS.get(TABLE_FORMAT[fmt], TABLE_FORMAT[fmt])} to {FORMAT}"]
    assert version(path) == [(str(FORMAT),)] and differences(url) == []
    assert rows(path, "runner_epochs", "trial_id, epoch, test_acc") == epochs and rows(path, "runner_claims") == claims
    assert rows(path, "alembic_version") == optunas  # Optuna's own version, untouched
    with no_warning():
        Store(url).dispose()  # the second open finds it current: nothing to say


def test_a_database_of_format_4_is_upgraded_in_one_line_and_its_trials_keep_their_hashes(tmp_path, monkeypatch):
    """Format 4 recorded its version (tests/fixtures/v4, made before distillation): it is upgraded from its recorded
    format, and its spec's points, teacherless, still have the stored trials' config hashes."""
    path = tmp_path / "ema.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript((FIXTURES / "v4" / "ema.sql").read_text())
    url = f"sqlite:///{path}"
    assert version(path) == [("4",)]
    with pytest.warns(UserWarning) as said:
        Store(url).dispose()
    assert messages(said) == [f"{named(url)}: upgraded runner's tables from format 4 to {FORMAT}"]
    assert version(path) == [(str(FORMAT),)] and differences(url) == []
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ema.toml").write_text((FIXTURES / "v4" / "ema.toml").read_text())
    result = CliRunner().invoke(cli, ["grid", "ema.toml", "--storage", url])
    assert result.exit_code == 0 and "v4ema: 2 of 2 trials complete; 0 to run" in result.output, result.output


def test_reading_an_older_database_writes_nothing(tmp_path):
    path = tmp_path / "old.sqlite"
    url = restore(0, path)
    before = sha256(path)
    result = CliRunner().invoke(cli, ["trials", "--study", "v0", "--storage", url, "--format", "csv"])
    assert result.exit_code == 0 and result.output.count("\n") == 6, result.output
    assert sha256(path) == before and "upgraded" not in result.output


def test_a_new_database_is_made_at_the_current_format_in_silence(tmp_path):
    path = tmp_path / "new.sqlite"
    with no_warning():
        Store(str(path)).dispose()
    assert version(path) == [(str(FORMAT),)] and differences(f"sqlite:///{path}") == []


def test_workers_opening_one_older_database_at_once_upgrade_it_once(tmp_path):
    url = restore(0, tmp_path / "old.sqlite")
    code = "import sys; from runner.store import Store; Store(sys.argv[1]).dispose()"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert sum(o.count("upgraded runner's tables from format 0") for o in outputs) == 1, outputs
    assert version(tmp_path / "old.sqlite") == [(str(FORMAT),)]


# ---------------------------------------------------------------- a newer runner's database


def newer(path: Path) -> str:
    """A database as a runner of the next format would leave it."""
    Store(str(path)).dispose()
    with contextlib.closing(sqlite3.connect(path)) as db:  # closed: its WAL written into the file
        db.execute(f"update {VERSION_TABLE} set version_num = ?", (str(FORMAT + 1),))
        db.commit()
    return f"sqlite:///{path}"


def refusal(url: str) -> str:
    return (f"{named(url)}: written by a newer runner: its storage format is {FORMAT + 1}, this runner knows "
            f"formats 0 to {FORMAT}; upgrade runner (pip install --upgrade runner) to open it")


@pytest.mark.parametrize("args", [["grid", "SPEC"], ["grid", "SPEC", "--dry-run"], ["studies"], ["trials", "--study", "t"]])
def test_a_newer_runners_database_is_refused_in_one_line_with_nothing_written(write_spec, tmp_path, args):
    path = tmp_path / "newer.sqlite"
    url = newer(path)
    before = sha256(path)
    args = [str(write_spec()) if a == "SPEC" else a for a in args]
    result = CliRunner().invoke(cli, [*args, "--storage", url])
    lines = result.output.strip().splitlines()  # a dry run lists its points first, then refuses
    assert result.exit_code == 1 and lines[-1] == f"Error: {refusal(url)}", result.output
    assert len(lines) == 1 or "--dry-run" in args and "Traceback" not in result.output
    assert sha256(path) == before and version(path) == [(str(FORMAT + 1),)]


def test_the_library_refuses_it_too(tmp_path):
    url = newer(tmp_path / "newer.sqlite")
    for create in (True, False):
        with pytest.raises(StorageError) as e:
            Store(url, create=create)
        assert str(e.value) == refusal(url)


# ---------------------------------------------------------------- on a PostgreSQL server


@pytest.fixture
def pg_database(postgres_url):
    """A database of its own on the suite's server, dropped afterwards."""
    name = f"m{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def copy_runner_tables(source: str, target: str) -> None:
    """Copy a SQLite database's runner_ tables, as they are, and their rows to a server."""
    old, new = sa.create_engine(source), sa.create_engine(target)
    meta = sa.MetaData()
    meta.reflect(old, only=lambda name, _: name.startswith("runner_"))
    for column in (c for t in meta.sorted_tables for c in t.columns):
        column.type = column.type.as_generic()  # SQLite's DATETIME is PostgreSQL's TIMESTAMP
    meta.create_all(new)
    with old.connect() as src, new.begin() as dst:
        for table in meta.sorted_tables:
            found = [dict(r._mapping) for r in src.execute(sa.select(table))]
            if found:
                dst.execute(table.insert(), found)
    old.dispose()
    new.dispose()


@pytest.mark.postgres
def test_on_postgres_an_older_database_is_upgraded_and_a_newer_one_refused(pg_database, tmp_path):
    pytest.importorskip("psycopg")
    copy_runner_tables(restore(0, tmp_path / "v0.sqlite"), pg_database)
    with pytest.warns(UserWarning) as said:
        Store(pg_database).dispose()
    assert messages(said) == [f"{named(pg_database)}: upgraded runner's tables from format 0 to {FORMAT}"]
    assert differences(pg_database) == []
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        assert conn.execute(sa.text("select count(*) from runner_epochs where val_acc is null")).scalar_one() == 5
        conn.execute(sa.text(f"update {VERSION_TABLE} set version_num = :v"), {"v": str(FORMAT + 1)})
        conn.execute(sa.text("drop table studies cascade"))  # so that a refused open that made Optuna's shows it
    for create in (True, False):
        with pytest.raises(StorageError) as e:
            Store(pg_database, create=create)
        assert str(e.value) == refusal(pg_database)
    assert not sa.inspect(engine).has_table("studies")
    engine.dispose()


@pytest.mark.postgres
def test_on_postgres_workers_making_one_database_at_once_make_it_once(pg_database):
    pytest.importorskip("psycopg")
    code = "import sys; from runner.store import Store; Store(sys.argv[1]).dispose()"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_database], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert differences(pg_database) == []
