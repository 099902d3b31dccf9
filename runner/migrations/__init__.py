"""The format of runner's own tables, recorded in the database and upgraded by Alembic migrations.

Each format (runner.formats) is a migration in versions/ whose revision is its number; it adds what that
format added to the tables (runner_epochs, runner_claims, runner_predictions), if anything. The format is
recorded in a version table of runner's own (VERSION_TABLE), apart from Optuna's alembic_version, which only
Optuna writes.

A database opened to write is upgraded to FORMAT under a lock (SQLite's BEGIN IMMEDIATE, PostgreSQL's
advisory lock), so that workers opening one database at once migrate it once. One made before the format was
recorded (formats 0 to 3) is recognised by its tables. A database of a newer format is refused before anything
is written, on a read as on a write.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from runner.dberrors import named
from runner.errors import StorageError
from runner.formats import FORMAT, FORMATS

__all__ = ["VERSION_TABLE", "recorded", "check", "upgrade", "tables_format"]

VERSION_TABLE = "runner_alembic_version"
SCRIPTS = Path(__file__).parent  # env.py and versions/: package data (pyproject.toml)
_LOCK = zlib.crc32(VERSION_TABLE.encode())  # PostgreSQL's advisory lock key for migrating runner's tables


def recorded(conn: sa.Connection) -> str | None:
    """The format recorded in the database (a revision in versions/, or a newer runner's); None when none is."""
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def check(engine: sa.Engine, url: str) -> None:
    """Refuse a database of a format newer than this runner's (StorageError, one line); write nothing."""
    with engine.connect() as conn:
        _refuse_newer(url, recorded(conn))


def upgrade(engine: sa.Engine, url: str) -> tuple[int, int] | None:
    """Bring runner's tables to FORMAT: create them in a new database, migrate an older one.

    Returns (from, to) when an existing database was upgraded, None when it was new or already current.
    """
    with engine.connect() as conn:  # most opens: already current, no lock taken
        found = recorded(conn)
    _refuse_newer(url, found)
    if found == str(FORMAT):
        return None
    with engine.connect() as conn:
        _lock(conn)
        found = recorded(conn)  # another worker may have migrated it while this one waited
        _refuse_newer(url, found)
        if found == str(FORMAT):
            return None
        before = int(found) if found is not None else tables_format(conn)
        config = Config()
        config.set_main_option("script_location", str(SCRIPTS).replace("%", "%%"))
        config.attributes["connection"] = conn  # env.py migrates on this connection, in its transaction
        if found is None and before is not None:
            command.stamp(config, str(before))
        command.upgrade(config, str(FORMAT))
        conn.commit()
    return None if before is None else (before, FORMAT)


def tables_format(conn: sa.Connection) -> int | None:
    """The format of a database that records none (made by the code of formats 0 to 3), read from its tables:
    the highest whose tables are all there; None when format 0's are not (a new database)."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if not {"runner_epochs", "runner_claims"} <= tables:
        return None
    epochs = {c["name"] for c in inspector.get_columns("runner_epochs")}
    if not {"val_loss", "val_acc"} <= epochs:
        return 0
    if "runner_predictions" not in tables or "ended" not in epochs:
        return 1
    return 2  # format 3 changed no table: its databases read as format 2's


def _lock(conn: sa.Connection) -> None:
    """Hold the database's write lock until this connection commits: one worker migrates, the others wait and
    then find it done. (Other servers rely on Store's retry of a creation race.)"""
    name = conn.dialect.name
    if name == "sqlite":  # pysqlite begins no transaction before DDL; this one takes the write lock now
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})


def _refuse_newer(url: str, found: str | None) -> None:
    if found is not None and found not in {str(f) for f in FORMATS}:
        raise StorageError(f"{named(url)}: written by a newer runner: its storage format is {found}, this runner "
                           f"knows formats 0 to {FORMAT}; upgrade runner (pip install --upgrade runner) to open it")
