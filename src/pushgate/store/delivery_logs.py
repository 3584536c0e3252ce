"""Queries on ``delivery_logs``: written in batches by the delivery engine's recorder,
read a page at a time in id order (keyset, never OFFSET)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, delete, insert, select

from pushgate.store.tables import delivery_logs as t
from pushgate.store.tables import platform_applications as a

SUCCESS, FAILURE = "SUCCESS", "FAILURE"


# Slotted, not frozen: one is made per logged delivery (see outbox.ClaimedDelivery).
@dataclass(slots=True)
class NewLog:
    application_id: int
    application_arn: str
    platform: str
    status: str
    message_id: str
    published_at: float
    logged_at: float
    status_code: int | None
    dwell_time_ms: int
    token: str
    attempts: int
    provider_response: str | None
    destination: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class LogRow:
    id: int
    application_arn: str
    platform: str
    status: str
    message_id: str
    published_at: float
    logged_at: float
    status_code: int | None
    dwell_time_ms: int
    token: str
    attempts: int
    provider_response: str | None
    destination: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What to read; every field narrows the result, None means any."""

    application_arn: str | None = None
    status: str | None = None
    destination: str | None = None
    message_id: str | None = None
    since: float | None = None
    after: int = 0
    limit: int = 100


def insert_many(conn: Connection, logs: Sequence[NewLog]) -> None:
    """Write ``logs`` in the caller's transaction (one batched statement)."""
    if logs:
        conn.execute(
            insert(t),
            [
                {
                    "application_id": r.application_id,
                    "application_arn": r.application_arn,
                    "platform": r.platform,
                    "status": r.status,
                    "message_id": r.message_id,
                    "published_at": r.published_at,
                    "logged_at": r.logged_at,
                    "status_code": r.status_code,
                    "dwell_time_ms": r.dwell_time_ms,
                    "token": r.token,
                    "attempts": r.attempts,
                    "provider_response": r.provider_response,
                    "destination": r.destination,
                    "reason": r.reason,
                }
                for r in logs
            ],
        )


_COLUMNS = (
    t.c.id,
    t.c.application_arn,
    t.c.platform,
    t.c.status,
    t.c.message_id,
    t.c.published_at,
    t.c.logged_at,
    t.c.status_code,
    t.c.dwell_time_ms,
    t.c.token,
    t.c.attempts,
    t.c.provider_response,
    t.c.destination,
    t.c.reason,
)


def query(conn: Connection, f: LogFilter) -> list[LogRow]:
    """Up to ``f.limit`` records with ids above ``f.after``, oldest first."""
    where: list[ColumnElement[bool]] = [t.c.id > f.after]
    if f.application_arn is not None:
        # By the application's id, so that the (application_id, id) index serves the page.
        app_id = select(a.c.id).where(a.c.arn == f.application_arn).scalar_subquery()
        where.append(t.c.application_id == app_id)
    if f.status is not None:
        where.append(t.c.status == f.status)
    if f.destination is not None:
        where.append(t.c.destination == f.destination)
    if f.message_id is not None:
        where.append(t.c.message_id == f.message_id)
    if f.since is not None:
        where.append(t.c.logged_at >= f.since)
    rows = conn.execute(select(*_COLUMNS).where(*where).order_by(t.c.id).limit(f.limit))
    return [LogRow(*tuple(r)) for r in rows]


def delete_older_than(conn: Connection, before: float, limit: int) -> int:
    """Delete up to ``limit`` of the oldest records logged before ``before``."""
    old = select(t.c.id).where(t.c.logged_at < before).order_by(t.c.logged_at).limit(limit)
    return conn.execute(delete(t).where(t.c.id.in_(old.scalar_subquery()))).rowcount
