"""Queries of the pruning job: old endpoints, and settled messages past retention.

Every function reads or deletes one bounded batch, so that no transaction holds the
write lock (SQLite) or many row locks (PostgreSQL) for long; the caller walks the table
in primary-key order (keyset, never OFFSET) and yields between batches. Neither rule
column (``disabled_at``, ``token_updated_at``, ``published_at``) is indexed: one walk
reads each row once, which an hourly job can afford, and no index slows every write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
)

from pushgate.store.outbox import QUEUED
from pushgate.store.tables import deliveries as d
from pushgate.store.tables import endpoints as e
from pushgate.store.tables import messages as m
from pushgate.store.tables import platform_applications as apps

DISABLED, STALE = "disabled", "stale"


@dataclass(frozen=True, slots=True)
class EndpointRules:
    """Which endpoints go: disabled since before ``disabled_before``, or with a token not
    refreshed since ``stale_before``. A rule that is None is off."""

    disabled_before: datetime | None
    stale_before: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_before is not None or self.stale_before is not None


@dataclass(frozen=True, slots=True)
class PrunableEndpoint:
    id: int
    arn: str
    application_arn: str
    # DISABLED or STALE; an endpoint that meets both rules counts as disabled.
    reason: str
    # The topic the application's EventEndpointDeleted names, if any (domain/events.py).
    deleted_event_topic: str | None = None


def _utc(moment: datetime) -> datetime:
    # SQLite keeps these columns as naive ISO text in UTC and compares them as text; the
    # bind processor drops the zone, so a cutoff must be in UTC already.
    return moment.astimezone(UTC)


def _conditions(rules: EndpointRules) -> tuple[ColumnElement[bool] | None, ColumnElement[bool]]:
    """The disabled rule (None when off) and the condition of either rule."""
    disabled = stale = None
    if rules.disabled_before is not None:
        # disabled_at is set whenever an endpoint is disabled; updated_at stands in for it
        # should a row lack it, and is never earlier, so the fallback errs on keeping.
        since = func.coalesce(e.c.disabled_at, e.c.updated_at)
        disabled = and_(e.c.enabled == false(), since <= _utc(rules.disabled_before))
    if rules.stale_before is not None:
        stale = e.c.token_updated_at <= _utc(rules.stale_before)
    either = [c for c in (disabled, stale) if c is not None]
    if not either:
        raise ValueError("no endpoint rule is on")
    return disabled, or_(*either)


def prunable_endpoints(
    conn: Connection, rules: EndpointRules, after_id: int, limit: int
) -> list[PrunableEndpoint]:
    """The next ``limit`` endpoints (by id, after ``after_id``) that the rules condemn."""
    disabled, either = _conditions(rules)
    reason = literal(STALE) if disabled is None else case((disabled, DISABLED), else_=STALE)
    topic = apps.c.attributes["EventEndpointDeleted"].as_string()
    rows = conn.execute(
        select(e.c.id, e.c.arn, apps.c.arn, reason, topic)
        .join(apps, apps.c.id == e.c.application_id)
        .where(e.c.id > after_id, either)
        .order_by(e.c.id)
        .limit(limit)
    )
    return [PrunableEndpoint(r[0], r[1], r[2], r[3], r[4] or None) for r in rows]


def delete_endpoints(
    conn: Connection, rules: EndpointRules, after_id: int, limit: int
) -> tuple[list[PrunableEndpoint], int | None]:
    """Delete the next batch of condemned endpoints: those deleted, and the id to walk on
    from (None when the walk is over).

    The DELETE repeats the rules, so an endpoint re-enabled or given a new token since it
    was read (on PostgreSQL, by a concurrent transaction) stays. Subscriptions naming a
    deleted endpoint stay too, as in SNS; its deliveries keep their history.
    """
    found = prunable_endpoints(conn, rules, after_id, limit)
    if not found:
        return [], None
    _, either = _conditions(rules)
    deleted = set(
        conn.execute(
            delete(e).where(e.c.id.in_([f.id for f in found]), either).returning(e.c.id)
        ).scalars()
    )
    cursor = found[-1].id if len(found) == limit else None
    return [f for f in found if f.id in deleted], cursor


@dataclass(frozen=True, slots=True)
class ScannedMessage:
    id: int
    published_at: float
    delivery_count: int
    # Published before the cutoff, fan-out done, and no delivery still queued.
    expired: bool


def scan_messages(
    conn: Connection, cutoff: float, after_id: int, limit: int
) -> list[ScannedMessage]:
    """The next ``limit`` messages by id after ``after_id``, each marked expired or not.

    Ids grow with publication time, so the caller stops at the first batch published
    entirely after the cutoff instead of reading every recent message.
    """
    queued = exists().where(d.c.message_id == m.c.id, d.c.state == QUEUED)
    # Nested CASE so that the queued-delivery probe runs only for old, fanned-out messages
    # (PostgreSQL does not promise to evaluate an AND left to right).
    expired = case(
        (
            and_(m.c.published_at < cutoff, m.c.fanout_due_at.is_(None)),
            case((queued, 0), else_=1),
        ),
        else_=0,
    )
    rows = conn.execute(
        select(m.c.id, m.c.published_at, m.c.delivery_count, expired)
        .where(m.c.id > after_id)
        .order_by(m.c.id)
        .limit(limit)
    )
    return [ScannedMessage(r[0], r[1], r[2], bool(r[3])) for r in rows]


def delete_messages(conn: Connection, message_ids: Sequence[int], limit: int) -> tuple[int, int]:
    """Delete up to ``limit`` deliveries of these (expired) messages, and the messages once
    none is left: how many deliveries and messages went.

    Call again while the first count equals ``limit``: a topic message may have millions
    of deliveries, and the foreign key's cascade would delete them all in one statement.
    """
    ids = list(message_ids)
    batch = select(d.c.id).where(d.c.message_id.in_(ids)).limit(limit).scalar_subquery()
    gone = conn.execute(delete(d).where(d.c.id.in_(batch))).rowcount
    if gone == limit:
        return gone, 0
    left = exists().where(d.c.message_id == m.c.id)
    messages = conn.execute(delete(m).where(m.c.id.in_(ids), ~left)).rowcount
    return gone, messages
