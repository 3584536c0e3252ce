"""The Alembic migrations build exactly the schema that ``tables.py`` declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from pushgate.store import migrate
from pushgate.store.database import Database
from pushgate.store.tables import metadata


def _diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_upgrade_matches_metadata(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await migrate.upgrade(db) == migrate.head_revision()
        assert await db.read(_diff) == []
        # A second run is a no-op, as at every start-up.
        assert await migrate.upgrade(db) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        mode = await db.read(lambda c: c.exec_driver_sql("PRAGMA journal_mode").scalar_one())
        keys = await db.read(lambda c: c.exec_driver_sql("PRAGMA foreign_keys").scalar_one())
        assert (mode, keys) == ("wal", 1)
    finally:
        await db.dispose()
