"""Publish and PublishBatch (specs/sns-api.md sec. 4.20, 4.21): validate, then store.

Publish answers once the message and its deliveries are committed to the outbox; the
delivery engine sends them. A direct publish stores the message with its one delivery;
a topic publish stores the message with a fan-out job, which the engine expands into one
delivery per subscribed endpoint.

Beyond SNS, a publish may carry an idempotency key, the String message attribute
``pushgate.IdempotencyKey``: a second publish to the same target with the same key is not
stored again and answers with the first publish's MessageId. On FIFO topics SNS's own
``MessageDeduplicationId`` (or the content hash, with ContentBasedDeduplication) plays that
role.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from pushgate import metrics
from pushgate.domain import arns, messages, topics
from pushgate.domain.errors import (
    EndpointDisabled,
    InvalidParameter,
    NotFound,
    PlatformApplicationDisabled,
    SnsError,
)
from pushgate.domain.messages import MessageAttribute
from pushgate.domain.runtime import Runtime
from pushgate.store import applications as app_store
from pushgate.store import endpoints as endpoint_store
from pushgate.store import outbox
from pushgate.store.topics import TopicRow

IDEMPOTENCY_ATTRIBUTE = "pushgate.IdempotencyKey"
_E164 = re.compile(r"\+[1-9]\d{1,14}")


@dataclass(frozen=True)
class PublishInput:
    """One message as the caller gave it (a Publish, or one PublishBatch entry)."""

    message: str
    subject: str | None = None
    structure: str | None = None
    attributes: Mapping[str, MessageAttribute] | None = None
    dedup_id: str | None = None
    group_id: str | None = None


@dataclass(frozen=True)
class Published:
    message_id: str
    sequence_number: str | None = None


@dataclass(frozen=True)
class BatchFailure:
    id: str
    error: SnsError


def _check_common(msg: PublishInput, max_size: int) -> dict[str, MessageAttribute]:
    """Steps 2-5 of sec. 4.20: subject, empty message, size (attributes arrive parsed)."""
    messages.validate_subject(msg.subject)
    messages.validate_message_text(msg.message)
    attributes = dict(msg.attributes or {})
    messages.validate_message_size(msg.message, attributes, max_size)
    return attributes


def _is_json(msg: PublishInput) -> bool:
    return msg.structure == "json"


def _stored_attributes(attributes: Mapping[str, MessageAttribute]) -> dict[str, list[str]]:
    """What the outbox keeps of the attributes: ``AWS.SNS.MOBILE.*`` ones shape a push,
    and HTTP/S subscribers receive them all (binary values as latin-1 text)."""
    return {
        name: [a.data_type, a.value if isinstance(a.value, str) else a.value.decode("latin-1")]
        for name, a in attributes.items()
    }


def _idempotency_key(
    target: str, msg: PublishInput, attributes: Mapping[str, MessageAttribute]
) -> str | None:
    given = attributes.get(IDEMPOTENCY_ATTRIBUTE)
    if given is None or not isinstance(given.value, str):
        return None
    # Hashed: the key is the caller's, as long as any attribute value.
    return f"{target}\n" + hashlib.sha256(given.value.encode()).hexdigest()


def _new_message(
    rt: Runtime,
    scope: arns.Scope,
    target: str,
    topic_id: int | None,
    msg: PublishInput,
    structure: dict[str, str] | None,
    attributes: Mapping[str, MessageAttribute],
    dedup_key: str | None,
) -> outbox.NewMessage:
    return outbox.NewMessage(
        message_id=str(uuid.uuid4()),
        region=scope.region,
        target_arn=target,
        topic_id=topic_id,
        body=msg.message,
        structure=structure,
        subject=msg.subject,
        attributes=_stored_attributes(attributes),
        dedup_key=dedup_key,
        published_at=rt.clock().timestamp(),
    )


# --- Publish to an endpoint -----------------------------------------------------------


def _publish_to_endpoint(
    conn: Connection, rt: Runtime, scope: arns.Scope, target: str, msg: PublishInput
) -> Published:
    attributes = _check_common(msg, messages.DEFAULT_MAX_MESSAGE_SIZE)
    endpoint = endpoint_store.get(conn, target)
    if endpoint is None:
        raise InvalidParameter(
            "Invalid parameter: TargetArn Reason: No endpoint found for the target arn specified"
        )
    (app,) = app_store.by_ids(conn, [endpoint.application_id])
    if not app.enabled:
        raise PlatformApplicationDisabled()
    if not endpoint.enabled:
        raise EndpointDisabled()
    structure = None
    if _is_json(msg):
        # A direct publish may leave out "default" when the platform's own key is there.
        structure = messages.parse_structure(msg.message, require_default=False)
        messages.require_entry(structure, app.platform.upper())
    key = _idempotency_key(target, msg, attributes)
    if key is not None and (existing := outbox.find_duplicate(conn, key)) is not None:
        return Published(existing)
    new = _new_message(rt, scope, target, None, msg, structure, attributes, key)
    outbox.insert_message(conn, new, endpoint_ids=[endpoint.id])
    return Published(new.message_id)


# --- Publish to a topic ---------------------------------------------------------------


def _topic_dedup_key(topic: TopicRow, msg: PublishInput, given: str | None) -> str | None:
    """sec. 4.20 step 7, and the deduplication key of a FIFO topic's message."""
    fifo = topic.attributes.get("FifoTopic") == "true"
    content_based = topic.attributes.get("ContentBasedDeduplication") == "true"
    messages.validate_fifo(
        fifo_topic=fifo,
        content_based_deduplication=content_based,
        group_id=msg.group_id,
        deduplication_id=msg.dedup_id,
    )
    if not fifo:
        return given
    if msg.dedup_id is not None:
        return f"{topic.arn}\n{msg.dedup_id}"
    return f"{topic.arn}\n" + hashlib.sha256(msg.message.encode()).hexdigest()


def _max_size(topic: TopicRow) -> int:
    return int(topic.attributes.get("MaximumMessageSize") or messages.DEFAULT_MAX_MESSAGE_SIZE)


def _publish_to_topic(
    conn: Connection, rt: Runtime, scope: arns.Scope, topic: TopicRow, msg: PublishInput
) -> Published:
    attributes = _check_common(msg, _max_size(topic))
    structure = (
        messages.parse_structure(msg.message, require_default=True) if _is_json(msg) else None
    )
    key = _topic_dedup_key(topic, msg, _idempotency_key(topic.arn, msg, attributes))
    fifo = topic.attributes.get("FifoTopic") == "true"
    if key is not None and (existing := outbox.find_duplicate(conn, key)) is not None:
        return Published(existing, _sequence_number(0) if fifo else None)
    new = _new_message(rt, scope, topic.arn, topic.id, msg, structure, attributes, key)
    pk = outbox.insert_message(conn, new, fanout=True)
    return Published(new.message_id, _sequence_number(pk) if fifo else None)


def _sequence_number(pk: int) -> str:
    return str(pk).zfill(20)


# --- Publish to a user (beyond SNS: the registration service) -------------------------


@dataclass(frozen=True)
class PublishedToUser:
    message_id: str
    devices: int


def user_target(user: str) -> str:
    """What a user's messages record as their target (no SNS ARN names a user)."""
    return f"user:{user}"


def _publish_to_user(
    conn: Connection, rt: Runtime, scope: arns.Scope, user: str, msg: PublishInput
) -> PublishedToUser:
    attributes = _check_common(msg, messages.DEFAULT_MAX_MESSAGE_SIZE)
    devices = endpoint_store.of_user(conn, user, enabled_only=True)
    apps = {
        a.id: a
        for a in app_store.by_ids(conn, sorted({d.endpoint.application_id for d in devices}))
    }
    devices = [d for d in devices if apps[d.endpoint.application_id].enabled]
    if not devices:
        raise NotFound(f"User {user} has no enabled devices")
    structure = None
    if _is_json(msg):
        structure = messages.parse_structure(msg.message, require_default=False)
        if "default" not in structure:
            missing = sorted({d.platform for d in devices} - set(structure))
            if missing:
                raise InvalidParameter(
                    "Invalid parameter: Message Reason: the user has devices on "
                    f"{', '.join(missing)}: give their keys or a default entry"
                )
    target = user_target(user)
    key = _idempotency_key(target, msg, attributes)
    if key is not None and (existing := outbox.find_duplicate(conn, key)) is not None:
        return PublishedToUser(existing, 0)
    new = _new_message(rt, scope, target, None, msg, structure, attributes, key)
    outbox.insert_message(conn, new, endpoint_ids=[d.endpoint.id for d in devices])
    return PublishedToUser(new.message_id, len(devices))


async def publish_to_user(
    rt: Runtime, scope: arns.Scope, user: str, msg: PublishInput
) -> PublishedToUser:
    """One message to every enabled device of ``user``, one delivery each; the message's
    status (GET /v1/messages/{id}) lists every device."""
    published = await rt.db.write(lambda conn: _publish_to_user(conn, rt, scope, user, msg))
    rt.work.notify()
    metrics.count_published("user")
    return published


# --- Entry points ---------------------------------------------------------------------


def _resolve_target(
    scope: arns.Scope, topic_arn: str | None, target_arn: str | None, phone: str | None
) -> tuple[str, str]:
    """sec. 4.20 step 1: exactly one target. Returns (kind, arn)."""
    given = [t for t in (topic_arn, target_arn, phone) if t is not None]
    if not given:
        raise InvalidParameter(
            "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter"
        )
    if len(given) > 1:
        raise InvalidParameter(
            "Invalid parameter: TopicArn Reason: Only one of TopicArn, TargetArn or "
            "PhoneNumber may be given"
        )
    if phone is not None:
        if not _E164.fullmatch(phone):
            raise InvalidParameter(
                f"Invalid parameter: PhoneNumber Reason: {phone} is not valid to publish to"
            )
        raise InvalidParameter(
            "Invalid parameter: PhoneNumber Reason: SMS is not supported by this server"
        )
    if topic_arn is not None:
        topics.check_arn(topic_arn, scope)
        return "topic", topic_arn
    assert target_arn is not None
    if arns.kind_of(target_arn) == "topic":
        topics.check_arn(target_arn, scope, "TargetArn")
        return "topic", target_arn
    arns.check_endpoint_arn(target_arn, "TargetArn")
    arns.check_region(target_arn, "TargetArn", scope)
    return "endpoint", target_arn


async def publish(
    rt: Runtime,
    scope: arns.Scope,
    msg: PublishInput,
    *,
    topic_arn: str | None = None,
    target_arn: str | None = None,
    phone_number: str | None = None,
) -> Published:
    kind, arn = _resolve_target(scope, topic_arn, target_arn, phone_number)

    def tx(conn: Connection) -> Published:
        if kind == "topic":
            return _publish_to_topic(conn, rt, scope, topics.get_or_404(conn, arn), msg)
        return _publish_to_endpoint(conn, rt, scope, arn, msg)

    published = await rt.db.write(tx)
    rt.work.notify()
    metrics.count_published(kind, arn if kind == "endpoint" else None)
    return published


async def publish_batch(
    rt: Runtime, scope: arns.Scope, topic_arn: str, entries: Sequence[tuple[str, PublishInput]]
) -> tuple[list[tuple[str, Published]], list[BatchFailure]]:
    """Publish each entry to the topic, in one transaction. Request-level rules (sec. 4.21)
    are the caller's to check first; an entry that fails validation goes to ``Failed``."""
    topics.check_arn(topic_arn, scope)

    def tx(conn: Connection) -> tuple[list[tuple[str, Published]], list[BatchFailure]]:
        topic = topics.get_or_404(conn, topic_arn)
        max_size = _max_size(topic)
        messages.check_batch_size([msg for _, msg in entries], max_size)
        # An invalid message or JSON structure in any entry fails the whole call.
        for _, msg in entries:
            _check_common(msg, max_size)
            if _is_json(msg):
                messages.parse_structure(msg.message, require_default=True)
        ok: list[tuple[str, Published]] = []
        failed: list[BatchFailure] = []
        for entry_id, msg in entries:
            try:
                ok.append((entry_id, _publish_to_topic(conn, rt, scope, topic, msg)))
            except SnsError as exc:
                failed.append(BatchFailure(entry_id, exc))
        return ok, failed

    result = await rt.db.write(tx)
    rt.work.notify()
    if result[0]:
        metrics.count_published("topic", n=len(result[0]))
    return result
