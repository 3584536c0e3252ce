"""Queries on ``platform_applications``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from pushgate.store.tables import platform_applications as t


@dataclass
class ApplicationRow:
    id: int
    arn: str
    region: str
    platform: str
    name: str
    enabled: bool
    attributes: dict[str, str]
    credentials_encrypted: bytes | None


def _row(r: Any) -> ApplicationRow:
    return ApplicationRow(
        id=r.id,
        arn=r.arn,
        region=r.region,
        platform=r.platform,
        name=r.name,
        enabled=r.enabled,
        attributes=dict(r.attributes),
        credentials_encrypted=r.credentials_encrypted,
    )


_COLUMNS = (
    t.c.id,
    t.c.arn,
    t.c.region,
    t.c.platform,
    t.c.name,
    t.c.enabled,
    t.c.attributes,
    t.c.credentials_encrypted,
)


_BY_ARN = select(*_COLUMNS).where(t.c.arn == bindparam("arn"))


def get(conn: Connection, arn: str) -> ApplicationRow | None:
    r = conn.execute(_BY_ARN, {"arn": arn}).first()
    return _row(r) if r else None


def insert_one(conn: Connection, app: ApplicationRow, now: datetime) -> int:
    values = {
        "arn": app.arn,
        "region": app.region,
        "platform": app.platform,
        "name": app.name,
        "enabled": app.enabled,
        "attributes": app.attributes,
        "credentials_encrypted": app.credentials_encrypted,
        "created_at": now,
        "updated_at": now,
    }
    return int(conn.execute(insert(t).values(values).returning(t.c.id)).scalar_one())


def save(conn: Connection, app: ApplicationRow, now: datetime) -> None:
    conn.execute(
        update(t)
        .where(t.c.id == app.id)
        .values(
            enabled=app.enabled,
            attributes=app.attributes,
            credentials_encrypted=app.credentials_encrypted,
            updated_at=now,
        )
    )


def delete_one(conn: Connection, arn: str) -> None:
    conn.execute(delete(t).where(t.c.arn == arn))


def page(conn: Connection, region: str, after_id: int, limit: int) -> list[ApplicationRow]:
    rows = conn.execute(
        select(*_COLUMNS)
        .where(t.c.region == region, t.c.id > after_id)
        .order_by(t.c.id)
        .limit(limit)
    )
    return [_row(r) for r in rows]
