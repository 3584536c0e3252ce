"""The database handle: one engine, transactions that run plain SQLAlchemy Core code.

Store functions are ordinary synchronous functions over a :class:`sqlalchemy.Connection`,
so one body of SQL serves both engines:

* **SQLite** runs them inline on the event loop, on one connection kept open. A local
  SQLite statement takes microseconds, less than a hop to a thread would cost; and since
  a transaction never yields to the loop, transactions of one process never interleave.
  Writes are *group-committed*: the writes that become ready in one turn of the event
  loop run in one SQLite transaction, each inside its own savepoint (so one failing
  write rolls back alone), and every caller is answered after the one COMMIT. A commit
  costs more than the statements of a typical write (WAL append, and now and then a
  checkpoint), so under load this multiplies write throughput; alone, a write waits
  for no one. ``BEGIN IMMEDIATE`` takes the write lock up front, so that other
  processes (the CLI, a second server) wait on ``busy_timeout`` instead of failing
  with a lock-upgrade deadlock.
* **PostgreSQL** runs them through asyncpg with SQLAlchemy's ``run_sync`` bridge
  (greenlets, no threads), so many transactions proceed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000


class Database:
    """Owns the engine; ``write``/``read`` run a store function in one transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._sqlite_conn: Connection | None = None
        self._queued: list[_QueuedWrite[Any]] = []
        if self.dialect == "sqlite":
            self._sync = _sqlite_engine(url)
        elif self.dialect == "postgresql":
            self._async = create_async_engine(
                parsed.set(drivername="postgresql+asyncpg"),
                pool_size=pool_size,
                max_overflow=pool_size,
            )
        else:
            raise ValueError(
                f"unsupported database {parsed.drivername!r}: use sqlite or postgresql"
            )

    @property
    def is_sqlite(self) -> bool:
        return self._sync is not None

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in a read-write transaction; commit unless it raises.

        On PostgreSQL a unique-key race (two requests creating the same row at once) is
        retried once: the second attempt sees the winner's row.
        """
        if self._sync is not None:
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._queued.append(_QueuedWrite(lambda c: fn(c, *args, **kwargs), future))
            if len(self._queued) == 1:
                asyncio.get_running_loop().call_soon(self._commit_queued)
            return await future
        assert self._async is not None
        for attempt in range(2):
            try:
                async with self._async.begin() as aconn:
                    return await aconn.run_sync(lambda c: fn(c, *args, **kwargs))
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in a read-only transaction."""
        if self._sync is not None:
            conn = self._sqlite_connection()
            conn.exec_driver_sql("BEGIN")
            try:
                return fn(conn, *args, **kwargs)
            finally:
                conn.rollback()
        assert self._async is not None
        async with self._async.connect() as aconn:
            result = await aconn.run_sync(lambda c: fn(c, *args, **kwargs))
            await aconn.rollback()
            return result

    def _commit_queued(self) -> None:
        """Run every queued write in one transaction, each in its own savepoint."""
        batch, self._queued = self._queued, []
        conn = self._sqlite_connection()
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            for write in batch:
                conn.exec_driver_sql("SAVEPOINT w")
                try:
                    outcomes.append((True, write.fn(conn)))
                except Exception as exc:  # the caller's error, handed back to the caller
                    conn.exec_driver_sql("ROLLBACK TO w")
                    outcomes.append((False, exc))
                conn.exec_driver_sql("RELEASE w")
            conn.commit()
        except Exception as exc:  # the transaction itself failed: every caller learns why
            conn.rollback()
            for write in batch:
                if not write.future.done():
                    write.future.set_exception(exc)
            return
        for write, (ok, value) in zip(batch, outcomes, strict=True):
            if write.future.done():  # the caller was cancelled meanwhile
                continue
            if ok:
                write.future.set_result(value)
            else:
                write.future.set_exception(value)

    def _sqlite_connection(self) -> Connection:
        """The one connection of this process, kept open: checking a connection out of a
        pool for every transaction costs more than the transaction."""
        assert self._sync is not None
        if self._sqlite_conn is None or self._sqlite_conn.closed:
            self._sqlite_conn = self._sync.connect()
        return self._sqlite_conn

    async def ping(self) -> None:
        """Raise unless the database answers."""
        await self.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar_one())

    async def dispose(self) -> None:
        if self._sqlite_conn is not None:
            self._sqlite_conn.close()
            self._sqlite_conn = None
        if self._sync is not None:
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()


@dataclass
class _QueuedWrite(Generic[T]):
    fn: Callable[[Connection], T]
    future: asyncio.Future[T]


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "isolation_level": None},
        pool_size=1,
        max_overflow=4,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine
