"""What a database error means, and the one line that says it.

A worker waits out a database that is away for a while (--db-patience): a connection refused or lost, a
server restarting, a timeout, SQLite's lock. Any other trouble with the database is permanent, and is said at
once in one line that names the storage and the cause: a read-only file or folder, a full disk, a missing table,
a wrong password, a database that does not exist. What is neither (an integrity error that its caller handles,
a bug's SQL) goes on up as it is.

The drivers say which through their codes: sqlite3's `sqlite_errorcode` (Python 3.11), PostgreSQL's SQLSTATE
(psycopg's `sqlstate`, psycopg2's `pgcode`); a connection that fails before a server answers has only its text.
"""
from __future__ import annotations

import os
import pwd
import shutil
import stat
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from runner.errors import StorageError

__all__ = ["TRANSIENT", "PERMANENT", "kind", "transient", "permanent", "database_error", "named", "shown_url",
           "sqlite_path", "reason"]

TRANSIENT, PERMANENT = "transient", "permanent"
_NEITHER = "neither"  # a driver's code that is not the database's trouble (a bug's SQL, a unique key)

# SQLite's primary result codes (sqlite.org/rescode.html); an extended code's low byte is its primary one
SQLITE_ERROR, SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 1, 3, 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_AUTH, SQLITE_NOTADB = 11, 13, 14, 23, 26
SQLITE_TRANSIENT = {SQLITE_BUSY, SQLITE_LOCKED}  # another connection holds the lock
SQLITE_PERMANENT = {SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN,
                    SQLITE_AUTH, SQLITE_NOTADB}

# PostgreSQL's SQLSTATE (postgresql.org/docs/current/errcodes-appendix.html)
PG_TRANSIENT = {"57P01", "57P02", "57P03",  # the server shutting down or starting up (a restart, a failover)
                "53300",  # too many connections
                "40001", "40P01", "55P03",  # a serialization failure, a deadlock, a lock not available
                "57014"}  # a statement timeout
PG_TRANSIENT_CLASSES = ("08",)  # connection exceptions
PG_PERMANENT = {"3D000", "3F000",  # no such database, no such schema
                "42P01", "42703",  # no such table, no such column
                "42501",  # insufficient privilege
                "53100",  # the disk is full
                "25006"}  # a read-only transaction: a standby, or default_transaction_read_only
PG_PERMANENT_CLASSES = ("28",)  # invalid authorization: a wrong password, an unknown role
MISSING = {"42P01", "42703"}

# what a driver's text says when it has no code (a server that refused a connection before answering)
PERMANENT_TEXT = ("password authentication failed", "authentication failed", "does not exist", "pg_hba.conf",
                  "not permitted to log in", "permission denied", "readonly database", "read-only",
                  "unable to open database file", "disk is full", "no space left", "no such table", "no such column",
                  "file is not a database", "disk i/o error")
TRANSIENT_TEXT = ("locked", "timeout", "timed out", "connection", "closed", "terminat", "refused", "reset",
                  "broken pipe", "the database system is", "eof", "could not receive", "could not send")


def kind(e: BaseException) -> str | None:
    """TRANSIENT, PERMANENT, or None (not the database's trouble), looking through the errors that Optuna's,
    SQLAlchemy's and the store's own wrap it in."""
    for x in _chain(e):
        found = _kind_of(x)
        if found is not None:
            return None if found == _NEITHER else found
    return None


def transient(e: BaseException) -> bool:
    """Whether an error is the database being away for a while: a connection refused or lost, the server
    terminating it, a restart or failover, a timeout, SQLite's "database is locked"."""
    return kind(e) == TRANSIENT


def permanent(e: BaseException) -> bool:
    """Whether an error is one that no waiting mends: a read-only file or folder, a full disk, a missing
    table, a wrong password, a database that does not exist."""
    return kind(e) == PERMANENT


def database_error(url: str, e: BaseException) -> StorageError:
    """One line for a database error: the storage (`named`), then what could not be done and why, e.g.
    "sqlite:////srv/db/runner.sqlite: cannot write: the file is read-only, mode 0444 (attempt to write a
    readonly database)"."""
    return StorageError(f"{named(url)}: {_cause(url, e)}")


def named(url: str) -> str:
    """A storage URL as messages name it: its password hidden, and a relative SQLite file's absolute path beside
    it ("sqlite:///db/runner.sqlite (/home/me/db/runner.sqlite)"): the default storage is relative to the
    working folder."""
    if not url:
        return "the database"
    shown = shown_url(url)
    try:
        path = sqlite_path(url)
    except sa.exc.ArgumentError:
        return shown
    if path is not None and not path.is_absolute():
        return f"{shown} ({os.path.abspath(path)})"
    return shown


def shown_url(url: str) -> str:
    """A storage URL as messages show it: its password hidden (else as given: SQLAlchemy would write a SQLite
    URI's "file:" as "file%3A")."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return url
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (as written: relative to the working folder, or absolute); None for a server's
    URL or an in-memory database."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.query.get("uri") == "true":  # sqlite:///file:path?mode=ro&uri=true
        return Path(parsed.database.removeprefix("file:"))
    return Path(parsed.database)


def reason(e: BaseException) -> str:
    """The first line of the driver's own message, without SQLAlchemy's background links.

    Optuna re-raises a failed commit as its own error ("An exception is raised during the commit..."): the
    driver's reason is the innermost database error of the chain.
    """
    chain = _chain(e)
    inner = next((x.orig for x in reversed(chain) if getattr(x, "orig", None) is not None), None)
    if inner is None:
        inner = next((x for x in reversed(chain) if _driver_error(x)), None)
    text = str(inner or e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------- telling them apart


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    x: BaseException | None = e
    while x is not None and x not in out:
        out.append(x)
        x = x.__cause__ or x.__context__
    return out


def _driver_of(e: BaseException) -> BaseException | None:
    """The driver's own error in e's chain (the `orig` of SQLAlchemy's), if any."""
    for x in _chain(e):
        for candidate in (getattr(x, "orig", None), x):
            if candidate is not None and _driver_error(candidate):
                return candidate
    return None


def _driver_error(x: BaseException) -> bool:
    return any(hasattr(x, a) for a in ("sqlite_errorcode", "sqlstate", "pgcode"))


def _kind_of(x: BaseException) -> str | None:
    if isinstance(x, DBAPIError):
        if x.connection_invalidated:
            return TRANSIENT
        found = _driver_kind(x.orig) if x.orig is not None else None
        if found is not None:
            return found
        # a connection-level error with no code and no text we know: waited out, as a server away may come back
        return TRANSIENT if isinstance(x, (OperationalError, InterfaceError)) else None
    if isinstance(x, (DisconnectionError, sa.exc.TimeoutError)):  # the pool's own: a dead connection, no free one
        return TRANSIENT
    if isinstance(x, sa.exc.NoSuchTableError):  # reflection's (sa.inspect) missing table
        return PERMANENT
    return _driver_kind(x) if _driver_error(x) else None


def _driver_kind(orig: BaseException) -> str | None:
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF
        if primary in SQLITE_TRANSIENT:
            return TRANSIENT
        if primary in SQLITE_PERMANENT or (primary == SQLITE_ERROR and _missing(str(orig))):
            return PERMANENT
        return _NEITHER  # SQL a bug wrote, a table "already exists" (workers creating one database)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state:
        if state in PG_TRANSIENT or state.startswith(PG_TRANSIENT_CLASSES):
            return TRANSIENT
        if state in PG_PERMANENT or state.startswith(PG_PERMANENT_CLASSES):
            return PERMANENT
        return _NEITHER
    text = str(orig).lower()
    if any(t in text for t in PERMANENT_TEXT):
        return PERMANENT
    if any(t in text for t in TRANSIENT_TEXT):
        return TRANSIENT
    return None


def _missing(text: str) -> bool:
    return text.startswith(("no such table", "no such column"))


# ---------------------------------------------------------------- saying why


def _cause(url: str, e: BaseException) -> str:
    """What could not be done and why, ending in the driver's reason."""
    why = reason(e)
    missing = next((x for x in _chain(e) if isinstance(x, sa.exc.NoSuchTableError)), None)
    if missing is not None:
        return f"{NOT_RUNNERS} (no such table: {missing})"
    orig = _driver_of(e)
    code = getattr(orig, "sqlite_errorcode", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    low = why.lower()
    if code is not None or url.startswith("sqlite"):
        return _sqlite_cause(url, (code or 0) & 0xFF, why)
    if state.startswith("28") or "authentication failed" in low or "pg_hba.conf" in low or "not permitted" in low \
            or state == "3D000" or ("does not exist" in low and "connection" in low):
        return f"cannot connect: {_fatal(why)}"
    if state in MISSING or ("does not exist" in low and ("relation" in low or "column" in low)):
        return f"{NOT_RUNNERS} ({why})"
    if state == "53100":
        return f"cannot write: the server's disk is full ({why})"
    if state == "25006":
        return f"cannot write: the server is read-only: a standby, or default_transaction_read_only ({why})"
    if state == "42501" or "permission denied" in low:
        return f"not allowed: {why}"
    return why


NOT_RUNNERS = "not a database that runner made, or one whose tables were removed"


def _fatal(text: str) -> str:
    """libpq's 'connection to server at "h", port p failed: FATAL:  password authentication failed ...' ->
    what the server said."""
    return text.split("FATAL:", 1)[1].strip() if "FATAL:" in text else text


def _sqlite_cause(url: str, primary: int, why: str) -> str:
    low = why.lower()
    try:
        path = sqlite_path(url)
    except sa.exc.ArgumentError:
        path = None
    path = Path(os.path.abspath(path)) if path is not None else None
    if primary == SQLITE_READONLY or "readonly database" in low:
        return f"cannot write: {_read_only(url, path) or 'it is read-only'} ({why})"
    if primary == SQLITE_CANTOPEN or "unable to open" in low:
        return f"{_cannot_open(url, path)} ({why})"
    if primary == SQLITE_FULL or "disk is full" in low:
        return f"cannot write: {_full(path) or 'the disk is full'} ({why})"
    if primary == SQLITE_IOERR or "disk i/o error" in low:
        found = _read_only(url, path) or _full(path)  # SQLite's write to -wal or -shm met either
        return f"cannot write: {found} ({why})" if found else f"cannot read or write: {why}"
    if primary in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return f"not a SQLite database, or a damaged one ({why})"
    if _missing(low):
        return f"{NOT_RUNNERS} ({why})"
    return why


def _read_only(url: str, path: Path | None) -> str:
    """Why SQLite may not write the database: the URL, the file, its -wal or -shm file, or its folder ("" when
    none of them says)."""
    query = sa.engine.make_url(url).query
    if query.get("mode") == "ro" or query.get("immutable") == "1":
        return "the URL opens it read-only (mode=ro)"
    if path is None:
        return ""
    for p, what in ((path, "the file"), (path.with_name(path.name + "-wal"), f"its file {path.name}-wal"),
                    (path.with_name(path.name + "-shm"), f"its file {path.name}-shm"),
                    (path.parent, f"its folder {path.parent}")):
        if p.exists() and not os.access(p, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            return _not_writable(p, what)
    return ""


def _cannot_open(url: str, path: Path | None) -> str:
    if path is None:
        return "cannot open"
    folder = path.parent
    if not folder.is_dir():
        return f"cannot open: its folder {folder} does not exist"
    if not path.exists():
        if not os.access(folder, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
            return f"cannot create: {_not_writable(folder, f'its folder {folder}')}"
        return "cannot create"
    if not os.access(path, os.R_OK, effective_ids=os.access in os.supports_effective_ids):
        return f"cannot open: user {_user(os.geteuid())} may not read the file"
    found = _read_only(url, path)
    return f"cannot open: {found}" if found else "cannot open"


def _not_writable(p: Path, what: str) -> str:
    """"the file is read-only, mode 0444", or which user may not write it, and whose it is."""
    if os.statvfs(p).f_flag & os.ST_RDONLY:
        return f"{what} is on a file system mounted read-only"
    st = p.stat()
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o222:
        return f"{what} is read-only, mode {mode:04o}"
    user = _user(os.geteuid())
    if st.st_uid == os.geteuid():
        return f"{what} may not be written, though user {user} owns it with mode {mode:04o} (immutable?)"
    return f"user {user} may not write {what}, owned by {_user(st.st_uid)} with mode {mode:04o}"


def _full(path: Path | None) -> str:
    """"the disk is full, 0 bytes free" when the folder's disk has (almost) nothing left, else ""."""
    if path is None or not path.parent.is_dir():
        return ""
    free = shutil.disk_usage(path.parent).free
    return f"the disk is full, {free:,} bytes free" if free < 1 << 20 else ""


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
