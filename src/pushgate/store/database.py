"""The database handle: one engine, transactions that run plain SQLAlchemy Core code.

Store functions are ordinary synchronous functions over a :class:`sqlalchemy.Connection`,
so one body of SQL serves both engines:

* **SQLite** runs them inline on the event loop, writes group-committed (see
  :mod:`pushgate.store.sqlite`).
* **PostgreSQL** runs them through asyncpg with SQLAlchemy's ``run_sync`` bridge
  (greenlets, no threads), so many transactions proceed at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pushgate.store.sqlite import SqliteStore

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """Owns the engine; ``write``/``read`` run a store function in one transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._sqlite: SqliteStore | None = None
        self._async: AsyncEngine | None = None
        self._autocommit: AsyncEngine | None = None
        if self.dialect == "sqlite":
            self._sqlite = SqliteStore(url)
        elif self.dialect == "postgresql":
            # A fixed pool: overflow connections were closed as soon as they were returned,
            # hundreds of new connections a second under load (bench/control_plane.py).
            self._async = create_async_engine(
                parsed.set(drivername="postgresql+asyncpg"), pool_size=pool_size, max_overflow=0
            )
            # Reads need no transaction: under READ COMMITTED each statement takes its own
            # snapshot anyway, and BEGIN/ROLLBACK would be two more round trips. The same
            # holds for a write that is one statement.
            self._autocommit = self._async.execution_options(isolation_level="AUTOCOMMIT")
        else:
            raise ValueError(
                f"unsupported database {parsed.drivername!r}: use sqlite or postgresql"
            )

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in a read-write transaction; commit unless it raises.

        On PostgreSQL a unique-key race (two requests creating the same row at once) is
        retried once: the second attempt sees the winner's row.
        """
        if self._sqlite is not None:
            return await self._sqlite.write(lambda c: fn(c, *args, **kwargs))
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
        if self._sqlite is not None:
            return self._sqlite.read(lambda c: fn(c, *args, **kwargs))
        assert self._autocommit is not None
        async with self._autocommit.connect() as aconn:
            return await aconn.run_sync(lambda c: fn(c, *args, **kwargs))

    async def write_one_statement(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn``, which must execute exactly one statement, as a write.

        One statement is atomic by itself: on PostgreSQL it runs without BEGIN and COMMIT,
        one round trip instead of three. On SQLite it joins the group commit like any write.
        """
        if self._sqlite is not None:
            return await self._sqlite.write(lambda c: fn(c, *args, **kwargs))
        assert self._autocommit is not None
        async with self._autocommit.connect() as aconn:
            return await aconn.run_sync(lambda c: fn(c, *args, **kwargs))

    async def ping(self) -> None:
        """Raise unless the database answers."""
        await self.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar_one())

    async def dispose(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._async is not None:
            await self._async.dispose()
