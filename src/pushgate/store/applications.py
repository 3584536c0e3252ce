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
    # Set by the delivery engine when the provider rejects the credentials.
    unhealthy_reason: str | None = None
    unhealthy_since: datetime | None = None
    updated_at: datetime | None = None


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
        unhealthy_reason=r.unhealthy_reason,
        unhealthy_since=r.unhealthy_since,
        updated_at=r.updated_at,
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
    t.c.unhealthy_reason,
    t.c.unhealthy_since,
    t.c.updated_at,
)


_BY_ARN = select(*_COLUMNS).where(t.c.arn == bindparam("arn"))


def get(conn: Connection, arn: str) -> ApplicationRow | None:
    r = conn.execute(_BY_ARN, {"arn": arn}).first()
    return _row(r) if r else None


def by_name(conn: Connection, region: str, name: str) -> list[ApplicationRow]:
    """The applications called ``name`` in ``region``: one per platform at most."""
    rows = conn.execute(select(*_COLUMNS).where(t.c.region == region, t.c.name == name))
    return [_row(r) for r in rows]


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
            # The operator changed the application: give its credentials another chance.
            unhealthy_reason=None,
            unhealthy_since=None,
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


def by_ids(conn: Connection, ids: list[int]) -> list[ApplicationRow]:
    return [_row(r) for r in conn.execute(select(*_COLUMNS).where(t.c.id.in_(ids)))]


def mark_unhealthy(conn: Connection, app_id: int, reason: str, now: datetime) -> None:
    """Record that the provider rejected the application's credentials (first time only
    moves ``unhealthy_since``)."""
    conn.execute(
        update(t)
        .where(t.c.id == app_id, t.c.unhealthy_reason.is_(None))
        .values(unhealthy_reason=reason, unhealthy_since=now)
    )


def mark_healthy(conn: Connection, app_id: int) -> None:
    conn.execute(
        update(t)
        .where(t.c.id == app_id, t.c.unhealthy_reason.is_not(None))
        .values(unhealthy_reason=None, unhealthy_since=None)
    )
