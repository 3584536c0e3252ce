"""Queries on ``subscriptions``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from pushgate.store.tables import subscriptions as s
from pushgate.store.tables import topics


@dataclass
class SubscriptionRow:
    id: int
    arn: str
    topic_id: int
    topic_arn: str
    protocol: str
    endpoint: str
    attributes: dict[str, str]
    pending: bool
    confirmation_token: str | None
    # Epoch seconds after which the confirmation token no longer confirms.
    confirmation_expires_at: float | None = None
    authenticate_on_unsubscribe: bool = False


_COLUMNS = (
    s.c.id,
    s.c.arn,
    s.c.topic_id,
    topics.c.arn.label("topic_arn"),
    s.c.protocol,
    s.c.endpoint,
    s.c.attributes,
    s.c.pending,
    s.c.confirmation_token,
    s.c.confirmation_expires_at,
    s.c.authenticate_on_unsubscribe,
)
_FROM = s.join(topics, topics.c.id == s.c.topic_id)


def _row(r: Any) -> SubscriptionRow:
    return SubscriptionRow(
        r.id,
        r.arn,
        r.topic_id,
        r.topic_arn,
        r.protocol,
        r.endpoint,
        dict(r.attributes),
        r.pending,
        r.confirmation_token,
        r.confirmation_expires_at,
        bool(r.authenticate_on_unsubscribe),
    )


def get(conn: Connection, arn: str) -> SubscriptionRow | None:
    r = conn.execute(select(*_COLUMNS).select_from(_FROM).where(s.c.arn == arn)).first()
    return _row(r) if r else None


def find(conn: Connection, topic_id: int, protocol: str, endpoint: str) -> SubscriptionRow | None:
    r = conn.execute(
        select(*_COLUMNS)
        .select_from(_FROM)
        .where(s.c.topic_id == topic_id, s.c.protocol == protocol, s.c.endpoint == endpoint)
    ).first()
    return _row(r) if r else None


def by_confirmation_token(conn: Connection, token: str) -> SubscriptionRow | None:
    r = conn.execute(
        select(*_COLUMNS).select_from(_FROM).where(s.c.confirmation_token == token)
    ).first()
    return _row(r) if r else None


def insert_one(conn: Connection, sub: SubscriptionRow, now: datetime) -> int:
    values = {
        "arn": sub.arn,
        "topic_id": sub.topic_id,
        "protocol": sub.protocol,
        "endpoint": sub.endpoint,
        "attributes": sub.attributes,
        "pending": sub.pending,
        "confirmation_token": sub.confirmation_token,
        "confirmation_expires_at": sub.confirmation_expires_at,
        "authenticate_on_unsubscribe": sub.authenticate_on_unsubscribe,
        "created_at": now,
    }
    return int(conn.execute(insert(s).values(values).returning(s.c.id)).scalar_one())


def save(conn: Connection, sub: SubscriptionRow) -> None:
    conn.execute(
        update(s)
        .where(s.c.id == sub.id)
        .values(
            attributes=sub.attributes,
            pending=sub.pending,
            confirmation_token=sub.confirmation_token,
            confirmation_expires_at=sub.confirmation_expires_at,
            authenticate_on_unsubscribe=sub.authenticate_on_unsubscribe,
        )
    )


def delete_one(conn: Connection, arn: str) -> None:
    conn.execute(delete(s).where(s.c.arn == arn))


def counts(conn: Connection, topic_id: int) -> tuple[int, int]:
    """(confirmed, pending) subscriptions of a topic."""
    rows = conn.execute(
        select(s.c.pending, func.count()).where(s.c.topic_id == topic_id).group_by(s.c.pending)
    )
    by_state = {bool(r[0]): int(r[1]) for r in rows}
    return by_state.get(False, 0), by_state.get(True, 0)


def page(
    conn: Connection, region: str, topic_id: int | None, after_id: int, limit: int
) -> list[SubscriptionRow]:
    query = select(*_COLUMNS).select_from(_FROM).where(s.c.id > after_id)
    query = (
        query.where(topics.c.region == region)
        if topic_id is None
        else query.where(s.c.topic_id == topic_id)
    )
    rows = conn.execute(query.order_by(s.c.id).limit(limit))
    return [_row(r) for r in rows]


def set_password(conn: Connection, sub_id: int, password_encrypted: bytes | None) -> None:
    conn.execute(update(s).where(s.c.id == sub_id).values(password_encrypted=password_encrypted))
