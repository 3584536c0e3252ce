"""Periodic jobs of the worker role: pruning stale endpoints and old messages.

Every ``--role all|worker`` process runs a :class:`PeriodicPruner`: a named task that
prunes (:func:`pushgate.domain.pruning.prune`) a minute after start, then once per
interval, and stops at once when cancelled. Each batch is its own transaction, so a stop
in the middle leaves nothing half-done; the next run goes on where this one stopped.

Several processes may run it against one database:

* **PostgreSQL**: worker processes on any number of machines. Only one prunes at a time:
  a run first takes a session-level advisory lock (``pg_try_advisory_lock``) on a
  connection of its own, and a process that does not get it skips that run. The lock goes
  with the session, so a process that dies mid-run does not keep it.
* **SQLite**: the processes of one machine, sharing one file. No lock is taken: runs are
  serialised batch by batch by SQLite's write lock, every DELETE repeats its rules, and a
  second run at the same time merely finds less to do. Concurrent runs are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pushgate.domain.pruning import PrunePolicy, PruneReport, prune
from pushgate.domain.runtime import Runtime
from pushgate.settings import Settings
from pushgate.store.sqlite import DatabaseLocked

log = logging.getLogger("pushgate.jobs")

# The advisory lock's key: "pushgate" in ASCII, a bigint no other application is likely
# to pick for its own advisory locks in the same database.
PRUNE_LOCK_KEY = int.from_bytes(b"pushgate", "big")


def prune_policy(settings: Settings) -> PrunePolicy:
    """The policy that ``PUSHGATE_PRUNE_*`` and ``PUSHGATE_MESSAGE_RETENTION`` describe."""
    return PrunePolicy(
        disabled_after=settings.prune_disabled_after,
        stale_after=settings.prune_stale_after,
        message_retention=settings.message_retention,
    )


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock, taken without waiting."""

    def __init__(self, database_url: str, key: int = PRUNE_LOCK_KEY) -> None:
        url = make_url(database_url).set(drivername="postgresql+asyncpg")
        # One connection, opened for the run and closed after it: no pool to keep.
        self._engine = create_async_engine(url, poolclass=NullPool).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        self._key = key

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """Yield whether this session got the lock; release it on the way out."""
        async with self._engine.connect() as conn:
            got = bool(
                (
                    await conn.execute(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                    )
                ).scalar_one()
            )
            try:
                yield got
            finally:
                if got:
                    # Closing the connection would release it too; unlock for a pooled future.
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})

    async def dispose(self) -> None:
        await self._engine.dispose()


class PeriodicPruner:
    """Runs :func:`prune` every ``interval`` in the background of a worker process."""

    def __init__(
        self,
        rt: Runtime,
        policy: PrunePolicy,
        *,
        interval: timedelta,
        database_url: str,
        first_run_after: timedelta = timedelta(minutes=1),
        pause: float = 0.01,
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError("the pruning interval must be positive")
        self._rt = rt
        self._policy = policy
        self._interval = interval.total_seconds()
        self._first_delay = first_run_after.total_seconds()
        self._pause = pause
        postgresql = make_url(database_url).get_backend_name() == "postgresql"
        self._lock = AdvisoryLock(database_url) if postgresql else None
        self._task: asyncio.Task[None] | None = None
        # For operators and tests: how many runs completed, and what the last one did.
        self.runs = 0
        self.skipped = 0
        self.last_report: PruneReport | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="prune")
        self._task.add_done_callback(_report_death)

    async def stop(self) -> None:
        """Cancel the job, mid-batch if need be (each batch is its own transaction)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lock is not None:
            await self._lock.dispose()

    async def run_once(self) -> PruneReport | None:
        """Prune now; None if another process holds the lock (PostgreSQL)."""
        if self._lock is None:
            return await self._prune()
        async with self._lock.hold() as mine:
            if not mine:
                self.skipped += 1
                log.debug("another process is pruning", extra={"action": "prune_skipped"})
                return None
            return await self._prune()

    async def _prune(self) -> PruneReport:
        report = await prune(self._rt, self._policy, dry_run=False, pause=self._pause)
        self.runs += 1
        self.last_report = report
        return report

    async def _loop(self) -> None:
        await asyncio.sleep(self._first_delay)
        while True:
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError, DatabaseLocked):
                # The database is unreachable or busy: nothing was half-done; next time.
                log.exception(
                    "pruning failed; trying again at the next interval",
                    extra={"action": "prune_error"},
                )
            await asyncio.sleep(self._interval)


def _report_death(task: asyncio.Task[None]) -> None:
    """A bug ended the job: say so loudly (deliveries go on; pruning does not)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("the pruning job stopped", exc_info=exc, extra={"action": "prune_job_died"})
