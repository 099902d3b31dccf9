"""Storage: Optuna's RDBStorage for studies and trials, plus two tables of our own (SQLAlchemy).

- `runner_epochs`: one row per (trial, epoch) with every per-epoch metric.
- `runner_claims`: one row per (study, point) that a worker has claimed; the primary key makes a
  claim atomic, so every point runs exactly once however many workers share the storage.
- `runner_predictions`: one row per (trial, split): the predicted class of every image, in order,
  its probability and the image's label, each as one compact array.

They live in the same database as Optuna's tables, so one URL holds everything. Their format is recorded in
runner_alembic_version and upgraded by runner.migrations when the database is opened to write.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import random
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import optuna
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from runner import migrations
from runner.dberrors import database_error, named, permanent, reason, shown_url, sqlite_path, transient
from runner.errors import StorageError
from runner.formats import V1, V2

__all__ = ["DEFAULT_STORAGE", "storage_url", "shown_url", "named", "Base", "EpochRow", "ClaimRow", "PredictionRow", "Predictions", "Store",
           "checkpoint_dir", "artifacts_dir", "study_folder", "worker_name"]

DEFAULT_STORAGE = "sqlite:///db/runner.sqlite"
optuna.logging.set_verbosity(optuna.logging.WARNING)  # runner prints its own progress
SQLITE_TIMEOUT_S = 60  # how long a writer waits for SQLite's lock before failing
CREATE_ATTEMPTS = 5  # tries to create the tables of a new database that other workers create too


STORAGE_FORMS = ("a SQLite file (db/runner.sqlite, sqlite:///db/runner.sqlite) or a server's SQLAlchemy URL "
                 "(postgresql+psycopg://user@host:5432/db)")


def storage_url(url: str | None) -> str:
    """The storage URL to use: `url` (a plain file path is a SQLite file), else the default here."""
    if not url:
        return DEFAULT_STORAGE
    if "://" not in url:
        if ":" in url:  # "sqlite:x", "host:5432": neither a URL nor a path
            raise StorageError(f"--storage {url!r}: not a SQLAlchemy URL nor a file path; give {STORAGE_FORMS}")
        return f"sqlite:///{url}"  # what people type: db/runner.sqlite, ./x.sqlite, /abs/x.sqlite
    try:
        sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StorageError(f"--storage {url!r}: not a SQLAlchemy URL; give {STORAGE_FORMS}") from None
    return url


class Base(DeclarativeBase):
    pass


class EpochRow(Base):
    """Per-epoch metrics of one trial; accuracies in percent."""

    __tablename__ = "runner_epochs"
    trial_id: Mapped[int] = mapped_column(primary_key=True)  # Optuna's trials.trial_id
    epoch: Mapped[int] = mapped_column(primary_key=True)  # 1-based
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    trial_number: Mapped[int]  # Optuna's trial number within the study
    train_loss: Mapped[float]
    train_acc: Mapped[float]
    test_loss: Mapped[float]
    test_acc: Mapped[float]
    lr: Mapped[float]
    seconds: Mapped[float]
    # info["format"]: the format that added a column (runner.formats); NULL in the rows of the formats before
    val_loss: Mapped[float | None] = mapped_column(info={"format": V1})  # NULL without a validation split too
    val_acc: Mapped[float | None] = mapped_column(info={"format": V1})
    ended: Mapped[dt.datetime | None] = mapped_column(info={"format": V2})  # when the epoch was stored, UTC


class ClaimRow(Base):
    """Who runs (or ran) one point of a study."""

    __tablename__ = "runner_claims"
    study_name: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    config_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    trial_id: Mapped[int | None]  # the Optuna trial currently holding the point
    state: Mapped[str] = mapped_column(sa.String(16))  # running | complete | failed
    worker: Mapped[str] = mapped_column(sa.String(256))  # host:pid
    heartbeat: Mapped[dt.datetime]  # last sign of life, UTC


class PredictionRow(Base):
    """What one trial predicted for every image of one split, in the split's order."""

    __tablename__ = "runner_predictions"
    __table_args__ = {"info": {"format": V2}}  # added by format 2: a database of format 0 or 1 has none
    trial_id: Mapped[int] = mapped_column(primary_key=True)  # Optuna's trials.trial_id
    split: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # test | val
    study_name: Mapped[str] = mapped_column(sa.String(512), index=True)
    images: Mapped[int]  # how many
    predicted: Mapped[bytes] = mapped_column(sa.LargeBinary)  # int16 little-endian: the class of each image
    labels: Mapped[bytes] = mapped_column(sa.LargeBinary)  # int16: each image's true class
    confidence: Mapped[bytes] = mapped_column(sa.LargeBinary)  # float16: the predicted class's probability


@dataclass(frozen=True)
class Predictions:
    """One split's predictions of one trial, as arrays."""

    predicted: np.ndarray  # (N,) int16
    labels: np.ndarray  # (N,) int16
    confidence: np.ndarray  # (N,) float16

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: which images the trial got right."""
        return self.predicted == self.labels


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Store:
    """One storage URL: the Optuna storage and our tables on one database.

    Opened to write (`create`), it is written at once: a database that cannot be (a read-only file or folder,
    another user's file, a full disk, a wrong password) is a StorageError here, in one line, before any work.
    """

    def __init__(self, url: str | None = None, create: bool = True):
        self.url = storage_url(url)
        path = sqlite_path(self.url)
        if path is not None:
            if not path.exists() and not create:
                raise StorageError(f"{named(self.url)}: no such database; run runner grid SPEC first, "
                                   "or pass --storage")
            if create:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StorageError(f"{named(self.url)}: cannot create its folder {os.path.abspath(path.parent)}: "
                                       f"{e.strerror}") from None
        is_sqlite = self.url.startswith("sqlite")
        # a server's pooled connections are checked before use: after a restart the pool holds dead ones
        kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if is_sqlite else {"pool_pre_ping": True}
        for attempt in range(CREATE_ATTEMPTS):
            try:
                self.engine = sa.create_engine(self.url, **kwargs)
                if is_sqlite:  # a reader sets nothing: switching to WAL would write to the file
                    event.listen(self.engine, "connect", _sqlite_pragmas if create else _sqlite_busy_timeout)
                if create:
                    self._upgrade()
                    _try_a_write(self.engine)
                else:
                    migrations.check(self.engine, self.url)  # a newer runner's database: refused, not misread
                self.optuna = optuna.storages.RDBStorage(self.url, engine_kwargs=kwargs,
                                                         skip_table_creation=not create)
                break
            except (SQLAlchemyError, optuna.exceptions.OptunaError, ImportError, ValueError) as e:
                # Two workers creating the tables of a new database at once: one loses the race
                # ("already exists", "duplicate key"); its second look finds the tables made.
                if attempt + 1 < CREATE_ATTEMPTS and _is_creation_race(e):
                    time.sleep(random.uniform(0.1, 1.0))
                    continue
                if permanent(e):
                    raise database_error(self.url, e) from None
                raise StorageError(f"{named(self.url)}: cannot open storage: {_where(self.url, e)}"
                                   f"{reason(e)}") from None

    def _upgrade(self) -> None:
        """Create our tables, or bring an older database's to this runner's format, saying so in one line."""
        upgraded = migrations.upgrade(self.engine, self.url)
        if upgraded is not None:
            before = "2 or 3 (their tables are alike)" if upgraded[0] == 2 else upgraded[0]  # neither recorded it
            warnings.warn(f"{named(self.url)}: upgraded runner's tables from format {before} to "
                          f"{upgraded[1]}", stacklevel=3)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success, rolls back on error and raises StorageError (one line, from the
        SQLAlchemy error, which runner.dberrors reads to tell a database that blinked from one that cannot be
        used)."""
        with Session(self.engine) as s:
            try:
                yield s
                s.commit()
            except IntegrityError:
                s.rollback()
                raise
            except SQLAlchemyError as e:
                s.rollback()
                raise database_error(self.url, e) from e

    # ---------------------------------------------------------------- studies

    def load_study(self, name: str) -> optuna.Study:
        """An existing study, or a StorageError that names the studies there are."""
        try:
            return optuna.load_study(study_name=name, storage=self.optuna)
        except KeyError:
            raise StorageError(f"{named(self.url)}: no study named {name!r}; "
                               f"studies here: {', '.join(self.study_names()) or 'none'}") from None

    def open_study(self, name: str, direction: str, create: bool = True) -> optuna.Study:
        """Load (or create) the study, refusing one whose direction differs."""
        if not create or name in self.study_names():
            study = self.load_study(name)
        else:
            try:
                return optuna.create_study(study_name=name, storage=self.optuna, direction=direction)
            except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
                study = optuna.load_study(study_name=name, storage=self.optuna)
        existing = study.direction.name.lower()
        if existing != direction:
            raise StorageError(f"{named(self.url)}: study {name!r} exists with direction {existing}, "
                               f"the spec asks for {direction}; rename [study].name or fix [study].metric")
        return study

    def study_names(self) -> list[str]:
        """Every study's name in this storage."""
        return [s.study_name for s in self.optuna.get_all_studies()]

    def trial_ids(self, study: str, numbers: Iterable[int]) -> dict[int, int]:
        """Trial number -> Optuna's trial_id (what our tables key on), for trials of `study`. A FrozenTrial keeps
        its id private; Optuna's storage API gives it from the study's id and the trial's number."""
        study_id = self.optuna.get_study_id_from_name(study)
        return {n: self.optuna.get_trial_id_from_study_id_trial_number(study_id, n) for n in numbers}

    # ---------------------------------------------------------------- claims

    def claims(self, study: str) -> dict[str, ClaimRow]:
        """config_hash -> claim, for one study."""
        with self.session() as s:
            rows = s.scalars(sa.select(ClaimRow).where(ClaimRow.study_name == study)).all()
            s.expunge_all()
        return {r.config_hash: r for r in rows}

    def claim(self, study: str, config_hash: str, worker: str, grace_s: float,
              retry_failed: bool = False) -> ClaimRow | None:
        """Atomically take a point; return the claim, or None if another worker has it or it is done.

        A point is taken when it has no claim, when its claim is `running` with a heartbeat older
        than `grace_s` (its worker died), or when it is `failed` and `retry_failed` is set. Taking
        over is a compare-and-swap on (worker, heartbeat), so two workers cannot both win.
        """
        row = ClaimRow(study_name=study, config_hash=config_hash, trial_id=None, state="running",
                       worker=worker, heartbeat=_now())
        try:
            with self.session() as s:
                s.add(row)
            return self._get_claim(study, config_hash)
        except IntegrityError:
            pass
        old = self._get_claim(study, config_hash)
        if old is None:
            return None
        stale = old.state == "running" and ((_now() - old.heartbeat).total_seconds() > grace_s
                                            or _dead_here(old.worker))
        if old.worker == worker and old.state == "running":  # ours: our insert went through before a lost answer
            return old
        if not (stale or (old.state == "failed" and retry_failed)):
            return None
        with self.session() as s:
            taken = s.execute(
                sa.update(ClaimRow)
                .where(ClaimRow.study_name == study, ClaimRow.config_hash == config_hash,
                       ClaimRow.worker == old.worker, ClaimRow.heartbeat == old.heartbeat,
                       ClaimRow.state == old.state)
                .values(state="running", worker=worker, heartbeat=_now())
            ).rowcount
        if not taken:
            return None
        claim = self._get_claim(study, config_hash)
        claim.previous_trial_id = old.trial_id  # type: ignore[attr-defined]
        return claim

    def _get_claim(self, study: str, config_hash: str) -> ClaimRow | None:
        with self.session() as s:
            row = s.get(ClaimRow, (study, config_hash))
            if row is not None:
                s.expunge(row)
            return row

    def update_claim(self, study: str, config_hash: str, worker: str, **values: Any) -> None:
        """Set fields of our own claim (heartbeat refreshed)."""
        with self.session() as s:
            s.execute(sa.update(ClaimRow)
                      .where(ClaimRow.study_name == study, ClaimRow.config_hash == config_hash,
                             ClaimRow.worker == worker)
                      .values(heartbeat=_now(), **values))

    def owns(self, study: str, config_hash: str, worker: str) -> bool:
        """Whether `worker` still holds the point (no other worker took it over while this one was cut off)."""
        claim = self._get_claim(study, config_hash)
        return claim is not None and claim.worker == worker and claim.state in ("running", "complete")

    def complete_claim(self, study: str, config_hash: str, worker: str) -> bool:
        """Mark our claim complete, if it is still ours (compare and set on its worker): False when another
        worker took the point over, which then completes it instead. Asking again after a lost answer is safe."""
        with self.session() as s:
            return s.execute(sa.update(ClaimRow)
                             .where(ClaimRow.study_name == study, ClaimRow.config_hash == config_hash,
                                    ClaimRow.worker == worker, ClaimRow.state.in_(("running", "complete")))
                             .values(state="complete", heartbeat=_now())).rowcount == 1

    def release(self, study: str, config_hash: str, worker: str) -> None:
        """Give a point back (interrupted): the next run takes it at once."""
        with self.session() as s:
            s.execute(sa.delete(ClaimRow).where(ClaimRow.study_name == study,
                                                ClaimRow.config_hash == config_hash,
                                                ClaimRow.worker == worker))

    # ---------------------------------------------------------------- epochs

    def add_epoch(self, study: str, trial_id: int, trial_number: int, m: Any) -> None:
        """Store one epoch's metrics (an EpochMetrics)."""
        with self.session() as s:
            s.merge(EpochRow(trial_id=trial_id, epoch=m.epoch, study_name=study, trial_number=trial_number,
                             train_loss=m.train_loss, train_acc=m.train_acc, test_loss=m.test_loss,
                             test_acc=m.test_acc, lr=m.lr, seconds=m.seconds,
                             val_loss=getattr(m, "val_loss", None), val_acc=getattr(m, "val_acc", None),
                             ended=_now()))

    def epochs(self, trial_ids: list[int]) -> dict[int, list[EpochRow]]:
        """trial_id -> its epochs in order."""
        out: dict[int, list[EpochRow]] = {t: [] for t in trial_ids}
        if not trial_ids:
            return out
        present = {c["name"] for c in sa.inspect(self.engine).get_columns(EpochRow.__tablename__)}
        # a database of format 0 or 1 read as it is (reading never upgrades): the columns it lacks read NULL
        columns = [c for c in EpochRow.__table__.columns if c.name in present]
        with self.session() as s:
            found = s.execute(sa.select(*columns).where(EpochRow.trial_id.in_(trial_ids))
                              .order_by(EpochRow.trial_id, EpochRow.epoch)).all()
        rows = [EpochRow(**{**{c.name: None for c in EpochRow.__table__.columns}, **r._mapping}) for r in found]
        for r in rows:
            out[r.trial_id].append(r)
        return out

    def epochs_since(self, study: str, since: dt.datetime) -> int | None:
        """How many trial-epochs of the study were stored since `since` (UTC); None for a database whose
        epochs have no time (of format 0 or 1, and not opened to write since)."""
        present = {c["name"] for c in sa.inspect(self.engine).get_columns(EpochRow.__tablename__)}
        if "ended" not in present:  # format 0's or 1's epochs, read as they are
            return None
        with self.session() as s:
            return int(s.execute(sa.select(sa.func.count()).select_from(EpochRow)
                                 .where(EpochRow.study_name == study, EpochRow.ended >= since)).scalar_one())

    # ---------------------------------------------------------------- predictions

    def add_predictions(self, study: str, trial_id: int, split: str, p: Predictions) -> None:
        """Store one split's predictions of a trial."""
        with self.session() as s:
            s.merge(PredictionRow(trial_id=trial_id, split=split, study_name=study, images=len(p.predicted),
                                  predicted=p.predicted.astype("<i2").tobytes(), labels=p.labels.astype("<i2").tobytes(),
                                  confidence=p.confidence.astype("<f2").tobytes()))

    def predictions(self, trial_ids: list[int], split: str = "test") -> dict[int, Predictions]:
        """trial_id -> its predictions on `split`, for the trials that stored them (none in a database of format 0
        or 1)."""
        if not trial_ids or not sa.inspect(self.engine).has_table(PredictionRow.__tablename__):
            return {}
        with self.session() as s:
            rows = s.execute(sa.select(PredictionRow.trial_id, PredictionRow.predicted, PredictionRow.labels,
                                       PredictionRow.confidence)
                             .where(PredictionRow.trial_id.in_(trial_ids), PredictionRow.split == split)).all()
        return {r.trial_id: Predictions(np.frombuffer(r.predicted, "<i2"), np.frombuffer(r.labels, "<i2"),
                                        np.frombuffer(r.confidence, "<f2")) for r in rows}

    def dispose(self) -> None:
        """Close every pooled connection (before forking workers, and at the end)."""
        self.engine.dispose()
        self.optuna.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers work while one worker writes; busy_timeout makes writers wait, not fail.
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    _sqlite_busy_timeout(dbapi_conn, _record)


def _try_a_write(engine: sa.Engine) -> None:
    """Start a write that changes nothing, so that a database that cannot be written says so now, not after
    the first epoch: SQLite opens a file it may not write read-only, and only a write finds out."""
    with engine.begin() as conn:
        conn.execute(sa.delete(ClaimRow).where(sa.false()))


def _is_creation_race(e: BaseException) -> bool:
    # SQLite's "UNIQUE constraint failed: alembic_version.version_num": two workers recording Optuna's version
    text = str(getattr(e, "orig", None) or e).lower()
    return "already exists" in text or "duplicate key" in text or "unique constraint failed" in text


def _sqlite_busy_timeout(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_TIMEOUT_S * 1000}")


def _where(url: str, e: BaseException) -> str:
    """"cannot reach HOST:PORT: " for a server that did not answer, else ""."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" or not transient(e):
        return ""
    port = parsed.port or {"postgresql": 5432, "mysql": 3306}.get(parsed.get_backend_name(), "")
    return f"cannot reach {parsed.host or 'localhost'}:{port}: "


def _dead_here(worker: str) -> bool:
    """A worker of this machine whose process is gone: no need to wait for the grace period."""
    host, _, pid = worker.rpartition(":")
    if host != os.uname().nodename or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _beside(url: str, folder: str) -> Path:
    path = sqlite_path(url)
    return (path.parent if path is not None else Path("db")) / folder


def checkpoint_dir(url: str, given: str | None = None) -> Path:
    """Where unfinished trials' epoch checkpoints go: `given` (--checkpoints), else beside a SQLite file
    (db/checkpoints/), else db/checkpoints/ here (for workers on several machines, pass a shared folder)."""
    return Path(given) if given else _beside(url, "checkpoints")


def artifacts_dir(url: str, given: str | None = None) -> Path:
    """Where trials' weights are kept: `given` (--artifacts), else beside a SQLite file (db/artifacts/),
    else db/artifacts/ here (for a server storage, pass a folder every worker shares)."""
    return Path(given) if given else _beside(url, "artifacts")


_NOT_IN_A_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")  # a separator, NUL or another control character
NAME_MAX = 255  # bytes in one file name, on Linux's filesystems


def study_folder(name: str) -> str:
    """A study's folder name under db/checkpoints/ or reports/: the name itself when it is one plain
    file name (every name that worked before keeps its folder), else "study-" and its hash, so that
    no study name ("/srv/x", "../x", a line break, 300 characters) directs files outside those folders."""
    if not _NOT_IN_A_NAME.search(name) and name.strip() not in ("", ".", "..") and len(name.encode()) <= NAME_MAX:
        return name
    return "study-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def worker_name() -> str:
    """host:pid, to tell workers apart in claims."""
    return f"{os.uname().nodename}:{os.getpid()}"
