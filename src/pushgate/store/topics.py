"""Queries on ``topics`` (their tags live in a JSON column: only topics are taggable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pushgate.store.tables import topics as t


@dataclass
class TopicRow:
    id: int
    arn: str
    name: str
    attributes: dict[str, str]
    tags: dict[str, str]


_COLUMNS = (t.c.id, t.c.arn, t.c.name, t.c.attributes, t.c.tags)


def _row(r: Any) -> TopicRow:
    return TopicRow(r.id, r.arn, r.name, dict(r.attributes), dict(r.tags))


def get(conn: Connection, arn: str) -> TopicRow | None:
    r = conn.execute(select(*_COLUMNS).where(t.c.arn == arn)).first()
    return _row(r) if r else None


def insert_one(conn: Connection, topic: TopicRow, region: str, now: datetime) -> int:
    values = {
        "arn": topic.arn,
        "region": region,
        "name": topic.name,
        "attributes": topic.attributes,
        "tags": topic.tags,
        "created_at": now,
    }
    return int(conn.execute(insert(t).values(values).returning(t.c.id)).scalar_one())


def save(conn: Connection, topic: TopicRow) -> None:
    conn.execute(
        update(t).where(t.c.id == topic.id).values(attributes=topic.attributes, tags=topic.tags)
    )


def delete_one(conn: Connection, arn: str) -> None:
    conn.execute(delete(t).where(t.c.arn == arn))


def page(conn: Connection, region: str, after_id: int, limit: int) -> list[tuple[int, str]]:
    rows = conn.execute(
        select(t.c.id, t.c.arn)
        .where(t.c.region == region, t.c.id > after_id)
        .order_by(t.c.id)
        .limit(limit)
    )
    return [(r.id, r.arn) for r in rows]
