"""Apply the Alembic migrations in ``migrations/`` (at start-up and by ``pushgate migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from pushgate.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection) -> str | None:
    command.upgrade(alembic_config(conn), "head")
    return current_revision(conn)


async def upgrade(db: Database) -> str | None:
    """Bring the schema to the newest revision; return that revision."""
    return await db.write(_upgrade)
