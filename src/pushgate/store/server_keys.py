"""Queries on ``server_keys``: keys of the server itself, stored encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from pushgate.store.tables import server_keys as t


def get(conn: Connection, name: str) -> bytes | None:
    value = conn.execute(select(t.c.key_encrypted).where(t.c.name == name)).scalar()
    return bytes(value) if value is not None else None


def insert_if_absent(conn: Connection, name: str, key_encrypted: bytes, now: datetime) -> None:
    """Store a key unless one of that name exists (another process made it first)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(t)
        .values(name=name, key_encrypted=key_encrypted, created_at=now)
        .on_conflict_do_nothing()
    )
