"""The outbox: published messages and their deliveries, claimed by workers with a lease.

A delivery row is ``queued`` until it is finished (``sent``, ``failed`` or ``expired``).
While queued, ``due_at`` says when a worker may take it: at once for a new delivery, later
for a retry. Claiming moves ``due_at`` a lease into the future, so a delivery claimed by a
worker that then dies becomes due again when the lease runs out and is sent by another
(at-least-once). On PostgreSQL the claim skips rows that other workers are claiming
(``FOR UPDATE SKIP LOCKED``); on SQLite the write lock serialises claims.

A topic publish is one row in ``messages`` whose fan-out job expands the topic's
subscriptions into deliveries a chunk at a time (keyset order on subscription id), each
chunk in one transaction that also advances the cursor: memory stays flat however large
the topic, and a crash loses nothing and duplicates nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    false,
    func,
    insert,
    literal,
    select,
    true,
    update,
)

from pushgate.store import leases, subscription_deliveries
from pushgate.store.sqlite import RawStatement
from pushgate.store.tables import deliveries as d
from pushgate.store.tables import endpoints as e
from pushgate.store.tables import messages as m
from pushgate.store.tables import subscriptions as s

QUEUED, SENT, FAILED, EXPIRED = leases.QUEUED, "sent", "failed", "expired"
STATES = (QUEUED, SENT, FAILED, EXPIRED)


@dataclass(frozen=True, slots=True)
class NewMessage:
    message_id: str
    region: str
    target_arn: str
    topic_id: int | None
    body: str
    structure: dict[str, str] | None
    subject: str | None
    attributes: dict[str, list[str]]
    dedup_key: str | None
    published_at: float


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """What a worker needs of a message to build its payloads."""

    id: int
    message_id: str
    target_arn: str
    topic_id: int | None
    body: str
    structure: dict[str, str] | None
    attributes: dict[str, list[str]]
    published_at: float


# The records made per delivery are plain slotted dataclasses, not frozen ones: a frozen
# dataclass's __init__ costs several times as much (bench/delivery.py's profile).
@dataclass(slots=True)
class ClaimedDelivery:
    id: int
    message_pk: int
    endpoint_id: int
    attempts: int


@dataclass(slots=True)
class Target:
    """An endpoint as a worker sees it when sending."""

    id: int
    application_id: int
    arn: str
    token: str
    enabled: bool
    token_updated_at: datetime


def find_duplicate(conn: Connection, dedup_key: str) -> str | None:
    """The MessageId of the message already published with this idempotency key."""
    value = conn.execute(select(m.c.message_id).where(m.c.dedup_key == dedup_key)).scalar()
    return str(value) if value is not None else None


def insert_message(
    conn: Connection, msg: NewMessage, *, endpoint_ids: Sequence[int] = (), fanout: bool = False
) -> int:
    """Store ``msg`` with a delivery to each of ``endpoint_ids`` (and a fan-out job when
    ``fanout``), in the caller's transaction. Returns the message's row id."""
    pk = int(
        conn.execute(
            insert(m).returning(m.c.id),
            {
                "message_id": msg.message_id,
                "region": msg.region,
                "target_arn": msg.target_arn,
                "topic_id": msg.topic_id,
                "body": msg.body,
                "structure": msg.structure,
                "subject": msg.subject,
                "attributes": msg.attributes,
                "dedup_key": msg.dedup_key,
                "published_at": msg.published_at,
                "fanout_cursor": 0 if fanout else None,
                "fanout_due_at": msg.published_at if fanout else None,
                "delivery_count": len(endpoint_ids),
            },
        ).scalar_one()
    )
    if endpoint_ids:
        conn.execute(
            insert(d),
            [
                {
                    "message_id": pk,
                    "endpoint_id": endpoint_id,
                    "state": QUEUED,
                    "due_at": msg.published_at,
                    "attempts": 0,
                }
                for endpoint_id in endpoint_ids
            ],
        )
    return pk


# --- Claiming -------------------------------------------------------------------------

_CLAIM = leases.claim_statement(d, d.c.id, d.c.message_id, d.c.endpoint_id, d.c.attempts)


# The claim and the recording of outcomes run for every delivery: on SQLite they go
# straight to sqlite3 (RawStatement), which halved their cost in bench/delivery.py's
# profile, where SQLAlchemy's execution and result machinery was a third of the server.
_CLAIM_SQLITE = RawStatement(_CLAIM)


def claim_due(
    conn: Connection, now: float, lease_until: float, limit: int
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries until ``lease_until``, oldest due first."""
    params = {"now": now, "lease_until": lease_until, "limit": limit}
    if conn.dialect.name == "sqlite":
        rows: Iterable[Any] = _CLAIM_SQLITE.execute(conn, params)
    else:
        rows = conn.execute(_CLAIM, params)
    return [ClaimedDelivery(r[0], r[1], r[2], r[3]) for r in rows]


_TARGETS = select(e.c.id, e.c.application_id, e.c.arn, e.c.token, e.c.enabled, e.c.token_updated_at)


def targets(conn: Connection, endpoint_ids: Iterable[int]) -> dict[int, Target]:
    """The endpoints by id; deleted ones are absent."""
    ids = list(endpoint_ids)
    if conn.dialect.name != "sqlite":
        rows = conn.execute(_TARGETS.where(e.c.id.in_(ids)))
        return {r[0]: Target(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows}
    raw = conn.connection.driver_connection
    assert raw is not None
    found = raw.execute(
        "SELECT id, application_id, arn, token, enabled, token_updated_at FROM endpoints"
        f" WHERE id IN ({','.join('?' * len(ids))})",
        ids,
    ).fetchall()
    # SQLAlchemy keeps SQLite datetimes as naive ISO text in UTC.
    return {
        r[0]: Target(
            r[0], r[1], r[2], r[3], bool(r[4]), datetime.fromisoformat(r[5]).replace(tzinfo=UTC)
        )
        for r in found
    }


def messages_by_pk(conn: Connection, pks: Iterable[int]) -> dict[int, StoredMessage]:
    rows = conn.execute(
        select(
            m.c.id,
            m.c.message_id,
            m.c.target_arn,
            m.c.topic_id,
            m.c.body,
            m.c.structure,
            m.c.attributes,
            m.c.published_at,
        ).where(m.c.id.in_(list(pks)))
    )
    return {r[0]: StoredMessage(*r) for r in rows}


# --- Recording outcomes ---------------------------------------------------------------


@dataclass(slots=True)
class Finished:
    """A delivery that is done: sent, failed for good, or expired."""

    id: int
    state: str
    status_code: int | None
    reason: str | None
    response: str | None
    finished_at: float
    latency_ms: float | None


@dataclass(slots=True)
class Retry:
    id: int
    due_at: float
    status_code: int | None
    reason: str | None
    response: str | None


_FINISH = (
    update(d)
    .where(d.c.id == bindparam("did"))
    .values(
        state=bindparam("state"),
        status_code=bindparam("status_code"),
        reason=bindparam("reason"),
        response=bindparam("response"),
        finished_at=bindparam("finished_at"),
        latency_ms=bindparam("latency_ms"),
    )
)
_RETRY = (
    update(d)
    .where(d.c.id == bindparam("did"))
    .values(
        due_at=bindparam("due_at"),
        status_code=bindparam("status_code"),
        reason=bindparam("reason"),
        response=bindparam("response"),
    )
)
_RELEASE = leases.release_statement(d)


_FINISH_SQLITE = RawStatement(_FINISH)
_RETRY_SQLITE = RawStatement(_RETRY)


def _executemany(
    conn: Connection, stmt: Any, raw: RawStatement, params: list[dict[str, Any]]
) -> None:
    if conn.dialect.name == "sqlite":
        raw.executemany(conn, params)
    else:
        conn.execute(stmt, params)


def record(conn: Connection, finished: Sequence[Finished], retries: Sequence[Retry]) -> None:
    """Write the outcomes of a batch of sends (one statement execution each, batched)."""
    if finished:
        _executemany(
            conn,
            _FINISH,
            _FINISH_SQLITE,
            [
                {
                    "did": f.id,
                    "state": f.state,
                    "status_code": f.status_code,
                    "reason": f.reason,
                    "response": f.response,
                    "finished_at": f.finished_at,
                    "latency_ms": f.latency_ms,
                }
                for f in finished
            ],
        )
    if retries:
        _executemany(
            conn,
            _RETRY,
            _RETRY_SQLITE,
            [
                {
                    "did": r.id,
                    "due_at": r.due_at,
                    "status_code": r.status_code,
                    "reason": r.reason,
                    "response": r.response,
                }
                for r in retries
            ],
        )


def release(conn: Connection, released: Sequence[tuple[int, float]]) -> None:
    """Give claimed deliveries back unsent (clean shutdown, open circuit): each
    ``(id, due_at)``; the claim does not count as an attempt."""
    if released:
        conn.execute(_RELEASE, [{"row_id": i, "due_at": due} for i, due in released])


# --- Topic fan-out --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FanoutJob:
    message_pk: int
    message_id: str
    topic_id: int
    topic_arn: str
    cursor: int
    published_at: float


def claim_fanout(conn: Connection, now: float, lease_until: float) -> FanoutJob | None:
    """Lease the oldest due fan-out job, if any."""
    due = (
        select(m.c.id)
        .where(m.c.fanout_due_at <= now)
        .order_by(m.c.fanout_due_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = conn.execute(
        update(m)
        .where(m.c.id.in_(due.scalar_subquery()))
        .values(fanout_due_at=lease_until)
        .returning(
            m.c.id,
            m.c.message_id,
            m.c.topic_id,
            m.c.target_arn,
            m.c.fanout_cursor,
            m.c.published_at,
        )
    ).first()
    if row is None:
        return None
    return FanoutJob(*row)


def expand_fanout(
    conn: Connection, job: FanoutJob, chunk: int, lease_until: float
) -> tuple[FanoutJob | None, int]:
    """Turn the next ``chunk`` subscriptions of the topic into deliveries.

    Returns the job advanced past them (None when the topic is exhausted) and the number
    of push deliveries created. Confirmed ``application`` subscriptions whose endpoint
    exists and is enabled get a push delivery; confirmed HTTP/S subscriptions a
    Notification (:mod:`pushgate.store.subscription_deliveries`). Nothing is written if
    another worker has advanced the job meanwhile (its lease ran out): then ``(None, 0)``.
    """
    in_topic = (s.c.topic_id == job.topic_id, s.c.id > job.cursor)
    upper = conn.execute(
        select(s.c.id).where(*in_topic).order_by(s.c.id).offset(chunk - 1).limit(1)
    ).scalar()
    done = upper is None
    if done:
        upper = conn.execute(select(func.max(s.c.id)).where(*in_topic)).scalar()
    upper = int(upper) if upper is not None else job.cursor
    source = (
        select(
            literal(job.message_pk),
            e.c.id,
            literal(QUEUED),
            literal(job.published_at),
            literal(0),
        )
        .select_from(s.join(e, e.c.arn == s.c.endpoint))
        .where(
            *in_topic,
            s.c.id <= upper,
            s.c.protocol == "application",
            s.c.pending == false(),
            e.c.enabled == true(),
        )
        .order_by(s.c.id)
    )
    created = conn.execute(
        insert(d).from_select(["message_id", "endpoint_id", "state", "due_at", "attempts"], source)
    ).rowcount
    subscription_deliveries.expand(
        conn,
        message_pk=job.message_pk,
        sns_message_id=job.message_id,
        topic_arn=job.topic_arn,
        in_chunk=(*in_topic, s.c.id <= upper),
        published_at=job.published_at,
    )
    advanced = conn.execute(
        update(m)
        .where(m.c.id == job.message_pk, m.c.fanout_cursor == job.cursor)
        .values(
            fanout_cursor=upper,
            fanout_due_at=None if done else lease_until,
            delivery_count=m.c.delivery_count + created,
        )
    ).rowcount
    if advanced != 1:
        # Another worker took the job over: undo this chunk (the caller's transaction).
        raise LostLease(job.message_pk)
    if done:
        return None, created
    return replace(job, cursor=upper), created


def release_fanout(conn: Connection, job: FanoutJob, due_at: float) -> None:
    """Hand an unfinished fan-out back (clean shutdown): due again at ``due_at``."""
    conn.execute(
        update(m)
        .where(m.c.id == job.message_pk, m.c.fanout_cursor == job.cursor)
        .values(fanout_due_at=due_at)
    )


class LostLease(RuntimeError):
    """The fan-out job was advanced by another worker; this worker's chunk is rolled back."""


# --- Visibility -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    id: int
    endpoint_arn: str | None
    state: str
    attempts: int
    status_code: int | None
    reason: str | None
    response: str | None
    finished_at: float | None
    latency_ms: float | None
    due_at: float


@dataclass(frozen=True, slots=True)
class MessageStatus:
    message_id: str
    target_arn: str
    published_at: float
    fanout_done: bool
    delivery_count: int
    counts: dict[str, int]
    deliveries: list[DeliveryStatus]


def message_status(
    conn: Connection, message_id: str, *, after: int = 0, limit: int = 100
) -> MessageStatus | None:
    """A message, how many of its deliveries are in each state, and one page of them."""
    row = conn.execute(
        select(
            m.c.id,
            m.c.message_id,
            m.c.target_arn,
            m.c.published_at,
            m.c.fanout_due_at,
            m.c.delivery_count,
        ).where(m.c.message_id == message_id)
    ).first()
    if row is None:
        return None
    counts = {
        str(state): int(n)
        for state, n in conn.execute(
            select(d.c.state, func.count()).where(d.c.message_id == row[0]).group_by(d.c.state)
        )
    }
    page = conn.execute(
        select(
            d.c.id,
            e.c.arn,
            d.c.state,
            d.c.attempts,
            d.c.status_code,
            d.c.reason,
            d.c.response,
            d.c.finished_at,
            d.c.latency_ms,
            d.c.due_at,
        )
        .select_from(d.outerjoin(e, e.c.id == d.c.endpoint_id))
        .where(d.c.message_id == row[0], d.c.id > after)
        .order_by(d.c.id)
        .limit(limit)
    )
    return MessageStatus(
        message_id=row[1],
        target_arn=row[2],
        published_at=row[3],
        fanout_done=row[4] is None,
        delivery_count=row[5],
        counts=counts,
        deliveries=[DeliveryStatus(*tuple(r)) for r in page],
    )


_DUE = select(func.count(), func.min(d.c.due_at)).where(
    d.c.state == QUEUED, d.c.due_at <= bindparam("now")
)


def due_backlog(conn: Connection, now: float) -> tuple[int, float | None]:
    """How many deliveries are due at ``now`` and not claimed, and the earliest due time.

    A claimed delivery is due at the end of its lease, so it is not counted; the query
    runs on the (state, due_at) index.
    """
    row = conn.execute(_DUE, {"now": now}).one()
    return int(row[0]), (float(row[1]) if row[1] is not None else None)
