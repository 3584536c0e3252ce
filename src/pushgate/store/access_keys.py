"""Queries on ``access_keys`` (secrets stored encrypted)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from pushgate.store.tables import access_keys as t


def secret_of(conn: Connection, access_key_id: str) -> bytes | None:
    value = conn.execute(
        select(t.c.secret_encrypted).where(t.c.access_key_id == access_key_id)
    ).scalar_one_or_none()
    return bytes(value) if value is not None else None


def insert_one(
    conn: Connection, access_key_id: str, secret_encrypted: bytes, name: str, now: datetime
) -> None:
    conn.execute(
        insert(t).values(
            access_key_id=access_key_id,
            secret_encrypted=secret_encrypted,
            name=name,
            created_at=now,
        )
    )


def all_keys(conn: Connection) -> list[tuple[str, str, datetime]]:
    rows = conn.execute(
        select(t.c.access_key_id, t.c.name, t.c.created_at).order_by(t.c.created_at)
    )
    return [(r.access_key_id, r.name, r.created_at) for r in rows]


def delete_one(conn: Connection, access_key_id: str) -> bool:
    return conn.execute(delete(t).where(t.c.access_key_id == access_key_id)).rowcount > 0


def count(conn: Connection) -> int:
    return len(conn.execute(select(t.c.access_key_id).limit(1)).all())
