"""The outbox of HTTP/HTTPS subscriptions: what is POSTed to subscribers, and its fate.

A row is one SNS message to one subscriber: a topic message's ``Notification`` (made by
the topic fan-out, next to the push deliveries), or a ``SubscriptionConfirmation`` /
``UnsubscribeConfirmation`` (made by Subscribe and Unsubscribe). Rows are claimed with a
lease exactly as push deliveries are (:mod:`pushgate.store.leases`): ``due_at`` moves a
lease into the future, so a worker that dies leaves its rows due again. A notification's
row goes with its message when messages are pruned; a confirmation's row is pruned by age.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    delete,
    false,
    insert,
    literal,
    select,
    update,
)

from pushgate.store import leases
from pushgate.store.tables import messages as m
from pushgate.store.tables import subscription_deliveries as sd
from pushgate.store.tables import subscriptions as s
from pushgate.store.tables import topics as t

QUEUED, SENT, FAILED = leases.QUEUED, "sent", "failed"
NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
HTTP_PROTOCOLS = ("http", "https")


@dataclass(frozen=True, slots=True)
class NewConfirmation:
    kind: str
    sns_message_id: str
    subscription_id: int
    subscription_arn: str
    topic_arn: str
    url: str
    token: str


def enqueue_confirmation(conn: Connection, c: NewConfirmation, now: float) -> None:
    conn.execute(
        insert(sd),
        {
            "kind": c.kind,
            "message_pk": None,
            "sns_message_id": c.sns_message_id,
            "subscription_id": c.subscription_id,
            "subscription_arn": c.subscription_arn,
            "topic_arn": c.topic_arn,
            "url": c.url,
            "token": c.token,
            "state": QUEUED,
            "due_at": now,
            "attempts": 0,
            "created_at": now,
        },
    )


def expand(
    conn: Connection,
    *,
    message_pk: int,
    sns_message_id: str,
    topic_arn: str,
    in_chunk: Sequence[ColumnElement[bool]],
    published_at: float,
) -> int:
    """One Notification per confirmed HTTP/S subscription among the topic's subscriptions
    that ``in_chunk`` selects (the fan-out's keyset chunk), in the caller's transaction."""
    source = (
        select(
            literal(NOTIFICATION),
            literal(message_pk),
            literal(sns_message_id),
            s.c.id,
            s.c.arn,
            literal(topic_arn),
            s.c.endpoint,
            literal(QUEUED),
            literal(published_at),
            literal(0),
            literal(published_at),
        )
        .where(*in_chunk, s.c.protocol.in_(HTTP_PROTOCOLS), s.c.pending == false())
        .order_by(s.c.id)
    )
    columns = [
        "kind",
        "message_pk",
        "sns_message_id",
        "subscription_id",
        "subscription_arn",
        "topic_arn",
        "url",
        "state",
        "due_at",
        "attempts",
        "created_at",
    ]
    return int(conn.execute(insert(sd).from_select(columns, source)).rowcount)


# --- Claiming -------------------------------------------------------------------------


@dataclass(slots=True)
class ClaimedPost:
    id: int
    kind: str
    message_pk: int | None
    sns_message_id: str
    subscription_id: int
    subscription_arn: str
    topic_arn: str
    url: str
    token: str | None
    attempts: int
    created_at: float


_CLAIM = leases.claim_statement(
    sd,
    sd.c.id,
    sd.c.kind,
    sd.c.message_pk,
    sd.c.sns_message_id,
    sd.c.subscription_id,
    sd.c.subscription_arn,
    sd.c.topic_arn,
    sd.c.url,
    sd.c.token,
    sd.c.attempts,
    sd.c.created_at,
)


def claim_due(conn: Connection, now: float, lease_until: float, limit: int) -> list[ClaimedPost]:
    """Lease up to ``limit`` due rows until ``lease_until``, oldest due first."""
    rows = conn.execute(_CLAIM, {"now": now, "lease_until": lease_until, "limit": limit})
    return [ClaimedPost(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class PostMessage:
    """What a Notification needs of its topic message."""

    body: str
    structure: dict[str, str] | None
    subject: str | None
    attributes: dict[str, list[str]]
    published_at: float


def messages_by_pk(conn: Connection, pks: Iterable[int]) -> dict[int, PostMessage]:
    rows = conn.execute(
        select(
            m.c.id, m.c.body, m.c.structure, m.c.subject, m.c.attributes, m.c.published_at
        ).where(m.c.id.in_(list(pks)))
    )
    return {r[0]: PostMessage(r[1], r[2], r[3], dict(r[4]), r[5]) for r in rows}


@dataclass(frozen=True, slots=True)
class Subscriber:
    """What a post needs of its subscription: attributes, and the URL's password."""

    attributes: dict[str, str]
    password_encrypted: bytes | None


def subscribers(conn: Connection, ids: Iterable[int]) -> dict[int, Subscriber]:
    """The subscriptions that still exist, by id."""
    rows = conn.execute(
        select(s.c.id, s.c.attributes, s.c.password_encrypted).where(s.c.id.in_(list(ids)))
    )
    return {r[0]: Subscriber(dict(r[1]), bytes(r[2]) if r[2] else None) for r in rows}


def topic_attributes(conn: Connection, arns: Iterable[str]) -> dict[str, dict[str, str]]:
    rows = conn.execute(select(t.c.arn, t.c.attributes).where(t.c.arn.in_(list(arns))))
    return {r[0]: dict(r[1]) for r in rows}


# --- Outcomes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """The result of one POST: ``due_at`` None finishes the row in ``state``; otherwise it
    is retried then."""

    id: int
    state: str
    status_code: int | None
    reason: str | None
    response: str | None
    at: float
    due_at: float | None = None


_FINISH = (
    update(sd)
    .where(sd.c.id == bindparam("pid"))
    .values(
        state=bindparam("state"),
        status_code=bindparam("status_code"),
        reason=bindparam("reason"),
        response=bindparam("response"),
        finished_at=bindparam("at"),
    )
)
_RETRY = (
    update(sd)
    .where(sd.c.id == bindparam("pid"))
    .values(
        due_at=bindparam("due_at"),
        status_code=bindparam("status_code"),
        reason=bindparam("reason"),
        response=bindparam("response"),
    )
)
_RELEASE = leases.release_statement(sd)


def record(conn: Connection, outcomes: Sequence[PostOutcome]) -> None:
    # Parameters named like no column: SQLAlchemy would add a column's name to the SET.
    finished = [
        {
            "pid": o.id,
            "state": o.state,
            "status_code": o.status_code,
            "reason": o.reason,
            "response": o.response,
            "at": o.at,
        }
        for o in outcomes
        if o.due_at is None
    ]
    retries = [
        {
            "pid": o.id,
            "due_at": o.due_at,
            "status_code": o.status_code,
            "reason": o.reason,
            "response": o.response,
        }
        for o in outcomes
        if o.due_at is not None
    ]
    if finished:
        conn.execute(_FINISH, finished)
    if retries:
        conn.execute(_RETRY, retries)


def release(conn: Connection, released: Sequence[tuple[int, float]]) -> None:
    """Give claimed rows back unsent (a clean stop); the claim is not an attempt."""
    if released:
        conn.execute(_RELEASE, [{"row_id": i, "due_at": due} for i, due in released])


# --- Confirmation tokens --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentUnsubscribe:
    subscription_arn: str
    topic_arn: str
    url: str
    created_at: float


def unsubscribe_by_token(conn: Connection, token: str) -> SentUnsubscribe | None:
    """The UnsubscribeConfirmation that carried ``token``: its SubscribeURL restores the
    subscription."""
    r = conn.execute(
        select(sd.c.subscription_arn, sd.c.topic_arn, sd.c.url, sd.c.created_at)
        .where(sd.c.token == token, sd.c.kind == UNSUBSCRIBE_CONFIRMATION)
        .limit(1)
    ).first()
    return SentUnsubscribe(r[0], r[1], r[2], r[3]) if r else None


def prune_confirmations(conn: Connection, finished_before: float, limit: int) -> int:
    """Delete up to ``limit`` finished confirmation rows older than ``finished_before``."""
    ids = (
        select(sd.c.id)
        .where(
            sd.c.message_pk.is_(None),
            sd.c.state != QUEUED,
            sd.c.finished_at < finished_before,
        )
        .limit(limit)
    )
    return int(conn.execute(delete(sd).where(sd.c.id.in_(ids.scalar_subquery()))).rowcount)


@dataclass(frozen=True, slots=True)
class PostStatus:
    kind: str
    subscription_arn: str
    url: str
    state: str
    attempts: int
    status_code: int | None
    reason: str | None
    finished_at: float | None


def of_message(conn: Connection, message_id: str, limit: int = 100) -> list[PostStatus]:
    """The first ``limit`` posts of a topic message's Notification, by its MessageId."""
    rows = conn.execute(
        select(
            sd.c.kind,
            sd.c.subscription_arn,
            sd.c.url,
            sd.c.state,
            sd.c.attempts,
            sd.c.status_code,
            sd.c.reason,
            sd.c.finished_at,
        )
        .select_from(sd.join(m, m.c.id == sd.c.message_pk))
        .where(m.c.message_id == message_id)
        .order_by(sd.c.id)
        .limit(limit)
    )
    return [PostStatus(*r) for r in rows]
