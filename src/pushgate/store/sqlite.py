"""SQLite under pushgate: store functions run inline on the event loop, writes group-committed.

A local SQLite statement takes microseconds, less than a hop to a thread would cost, so
store functions run on the event loop itself; a transaction never yields to the loop, so
the transactions of one process never interleave.

Writes are *group-committed*: the writes queued during one turn of the event loop run in
one transaction, each inside its own savepoint (one failing write rolls back alone), and
every caller is answered after the one COMMIT. A commit costs more than the statements of
a typical write, so under load this multiplies write throughput; alone, a write waits for
no one.

Several processes may share the file (``pushgate serve --workers N``, the CLI). The write
lock is taken up front with ``BEGIN IMMEDIATE``, never by upgrading a read lock, so that
there is no deadlock. When another process holds it, the writer does not block in SQLite's
busy handler (that would stall the whole event loop): it puts the batch back and tries
again a moment later, while the loop goes on serving, and the batch grows meanwhile.
Reads use a second connection that waits in the busy handler, which in WAL mode almost
never has to wait.

Checkpoints (copying the write-ahead log back into the database file, with an fsync) run
on a thread of their own, never inside a commit: an automatic checkpoint would stop the
event loop, and every request in flight, for as long as the disk takes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql.compiler import SQLCompiler

T = TypeVar("T")
log = logging.getLogger(__name__)
CHECKPOINT_INTERVAL_SECONDS = 0.5

READ_BUSY_TIMEOUT_MS = 10_000
LOCK_WAIT_SECONDS = 30.0
_FIRST_RETRY, _LONGEST_RETRY = 0.0002, 0.01


class DatabaseLocked(RuntimeError):
    """Another process held the SQLite write lock for longer than ``LOCK_WAIT_SECONDS``."""


@dataclass
class _QueuedWrite(Generic[T]):
    fn: Callable[[Connection], T]
    future: asyncio.Future[T]


class SqliteStore:
    """Two connections to one SQLite file: a writer that group-commits, and a reader."""

    def __init__(self, url: str) -> None:
        self._writer_engine = _engine(url, busy_timeout_ms=0, autocheckpoint=False)
        self._reader_engine = _engine(url, busy_timeout_ms=READ_BUSY_TIMEOUT_MS)
        self._checkpointer = _Checkpointer(make_url(url).database or "")
        self._writer: Connection | None = None
        self._reader: Connection | None = None
        self._queued: list[_QueuedWrite[Any]] = []
        self._retry = _FIRST_RETRY
        self._locked_since: float | None = None

    async def write(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queued.append(_QueuedWrite(fn, future))
        if len(self._queued) == 1 and self._locked_since is None:
            loop.call_soon(self._commit_queued)
        return await future

    def read(self, fn: Callable[[Connection], T]) -> T:
        if self._reader is None or self._reader.closed:
            self._reader = self._reader_engine.connect()
        conn = self._reader
        conn.exec_driver_sql("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.rollback()

    def close(self) -> None:
        self._checkpointer.stop()
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None
        self._writer_engine.dispose()
        self._reader_engine.dispose()

    def _commit_queued(self) -> None:
        """Run every queued write in one transaction, each in its own savepoint."""
        if self._writer is None or self._writer.closed:
            self._writer = self._writer_engine.connect()
            self._checkpointer.start()
        conn = self._writer
        # Transaction control goes straight to sqlite3: through SQLAlchemy, the two
        # savepoint statements per write would cost more than the write itself.
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self._wait_for_lock(exc)
            return
        self._locked_since, self._retry = None, _FIRST_RETRY
        conn.begin()  # tells SQLAlchemy (and Alembic) that a transaction is open; emits nothing
        batch, self._queued = self._queued, []
        outcomes: list[tuple[bool, Any]] = []
        try:
            for write in batch:
                raw.execute("SAVEPOINT w")
                try:
                    outcomes.append((True, write.fn(conn)))
                except Exception as exc:  # the caller's error, handed back to the caller
                    raw.execute("ROLLBACK TO w")
                    outcomes.append((False, exc))
                raw.execute("RELEASE w")
            raw.execute("COMMIT")
        except Exception as exc:  # the transaction itself failed: every caller learns why
            raw.rollback()
            outcomes = [(False, exc)] * len(batch)
        finally:
            conn.rollback()  # ends SQLAlchemy's view of the transaction; SQLite has none open
        for write, (ok, value) in zip(batch, outcomes, strict=True):
            if write.future.done():  # the caller was cancelled meanwhile
                continue
            if ok:
                write.future.set_result(value)
            else:
                write.future.set_exception(value)

    def _wait_for_lock(self, exc: sqlite3.OperationalError) -> None:
        """Another process writes: try again soon, or give up after ``LOCK_WAIT_SECONDS``."""
        now = time.monotonic()
        if self._locked_since is None:
            self._locked_since = now
        if "locked" not in str(exc) or now - self._locked_since > LOCK_WAIT_SECONDS:
            error: Exception = exc
            if "locked" in str(exc):
                error = DatabaseLocked(f"the SQLite database stayed locked: {exc}")
            batch, self._queued = self._queued, []
            self._locked_since, self._retry = None, _FIRST_RETRY
            for write in batch:
                if not write.future.done():
                    write.future.set_exception(error)
            return
        asyncio.get_running_loop().call_later(self._retry, self._commit_queued)
        self._retry = min(self._retry * 2, _LONGEST_RETRY)


class _Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every half second on a thread of its own.

    sqlite3 releases the GIL while SQLite works, so the event loop runs on meanwhile; a
    passive checkpoint waits for no reader or writer.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self._path not in ("", ":memory:"):
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="sqlite-checkpointer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL_SECONDS):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.OperationalError as exc:  # busy with another checkpoint
                    log.debug("checkpoint skipped: %s", exc)
        finally:
            conn.close()


class RawStatement:
    """A Core statement compiled once for SQLite, run on the sqlite3 connection itself.

    For the hottest statement only (``bench/control_plane.py``, create-max): SQLAlchemy's
    execution machinery around a prepared statement costs about twice what SQLite spends
    running it. Parameters go through the same bind processors SQLAlchemy would apply, so
    the stored values are the same; rows come back as plain tuples, unprocessed.
    """

    def __init__(self, statement: ClauseElement) -> None:
        dialect = sqlite_dialect.dialect()
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self._names = list(compiled.positiontup or ())
        # Values the statement carries itself (the 1 of ``attempts + 1``).
        self._defaults = compiled.construct_params(_check=False)
        self._processors = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self._names
        ]

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        raw = conn.connection.driver_connection
        assert raw is not None
        values = self._values(params)
        rows: list[tuple[Any, ...]] = raw.execute(self.sql, values).fetchall()
        return rows

    def executemany(self, conn: Connection, params: Iterable[Mapping[str, Any]]) -> None:
        """Run the statement once per parameter set (sqlite3's executemany)."""
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.executemany(self.sql, (self._values(p) for p in params))

    def _values(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(self._names, self._processors, strict=True):
            value = params[name] if name in params else self._defaults[name]
            values.append(value if process is None else process(value))
        return values


def _engine(url: str, *, busy_timeout_ms: int, autocheckpoint: bool = True) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "isolation_level": None},
        pool_size=1,
        max_overflow=0,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={busy_timeout_ms}",
            *(() if autocheckpoint else ("wal_autocheckpoint=0",)),
        ):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    return engine
