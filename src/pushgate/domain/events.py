"""Application events (specs/sns-api.md sec. 6.2): EndpointCreated, EndpointUpdated,
EndpointDeleted and DeliveryFailure.

A platform application's ``EventEndpointCreated``, ``EventEndpointUpdated``,
``EventEndpointDeleted`` and ``EventDeliveryFailure`` attributes each name a topic. When one
of its endpoints is created, changed or deleted, or a direct publish to one of them fails
for good, the event is published to that topic as an ordinary topic message whose text is
the event JSON: the topic's subscribers get it as they get any publish (an ``application``
subscription as a push whose default message is the JSON, HTTP/S ones in SNS's
Notification envelope). AWS documents the triggers in "Application event notifications"
(https://docs.aws.amazon.com/sns/latest/dg/application-event-notifications.html) and the
API reference's SetPlatformApplicationAttributes: EventDeliveryFailure is sent upon a
"Direct Publish delivery failure (permanent)" to one of the application's endpoints, so a
topic delivery that fails emits nothing (which also keeps an event that cannot be
delivered from raising another).

An event is stored in the transaction of the change it reports (a transactional outbox):
a change that rolls back leaves no event, and a change that commits never loses its event.
A topic that no longer exists gets nothing. Whoever commits calls ``rt.work.notify()`` so
that the fan-out starts at once.

The JSON keeps to SNS's fields: ``EventType``, ``EndpointArn``, ``Resource`` (the
application's ARN), ``Service`` and ``Time``; DeliveryFailure adds ``MessageId``,
``DeliveryAttempts``, ``FailureType`` and ``FailureMessage``. EndpointUpdated does not say
what changed: no public sample shows more, and wire-server's gundeck, a production
consumer, parses only ``EventType``, ``EndpointArn`` and ``FailureType``
(``services/gundeck/src/Gundeck/Aws/Sns.hs``) and reads the endpoint's ``Enabled`` and
``Token`` with GetEndpointAttributes when it gets an EndpointUpdated
(``Gundeck/React.hs``, ``onUpdated``). Leaving the token out also keeps device tokens off
event topics.

Not reported: DeletePlatformApplication deletes the application's endpoints with it and
emits nothing (the application, and its event settings, are gone with them).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection

from pushgate.domain.signing import sns_timestamp
from pushgate.store import outbox
from pushgate.store import topics as topic_store
from pushgate.store.applications import ApplicationRow
from pushgate.store.topics import TopicRow

log = logging.getLogger("pushgate.events")

CREATED = "EndpointCreated"
UPDATED = "EndpointUpdated"
DELETED = "EndpointDeleted"
DELIVERY_FAILURE = "DeliveryFailure"

# The application attribute that names each event's topic.
ATTRIBUTES: dict[str, str] = {
    CREATED: "EventEndpointCreated",
    UPDATED: "EventEndpointUpdated",
    DELETED: "EventEndpointDeleted",
    DELIVERY_FAILURE: "EventDeliveryFailure",
}

# DeliveryFailure's FailureType values (sec. 6.2, as gundeck reads them).
INVALID_PLATFORM_TOKEN = "InvalidPlatformToken"
ENDPOINT_DISABLED = "EndpointDisabled"
TTL_EXPIRED = "NotificationTTLExpired"
FAILED_PERMANENTLY = "DeliveryFailedPerm"

FAILURE_MESSAGE_LIMIT = 256


def topic_of(attributes: Mapping[str, str], event_type: str) -> str | None:
    """The ARN of the topic that gets ``event_type`` events, None when nobody asked."""
    return attributes.get(ATTRIBUTES[event_type]) or None


def event_json(
    event_type: str,
    endpoint_arn: str,
    application_arn: str,
    at: datetime,
    **fields: str | int,
) -> str:
    """The event as SNS writes it, the ``Message`` of the topic notification."""
    event: dict[str, str | int] = {
        "EventType": event_type,
        "EndpointArn": endpoint_arn,
        "Resource": application_arn,
        "Service": "SNS",
        "Time": sns_timestamp(at),
        **fields,
    }
    return json.dumps(event, separators=(",", ":"))


def failure_message(reason: str | None, response: str | None) -> str:
    """DeliveryFailure's ``FailureMessage``: the provider's reason and answer, kept short."""
    text = " ".join(part for part in (reason, response) if part) or "Delivery failed"
    return text[:FAILURE_MESSAGE_LIMIT]


class Emitter:
    """Writes events in the caller's transaction; looks each topic up once."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now
        self._topics: dict[str, TopicRow | None] = {}
        self.count = 0  # events written

    def emit(
        self, app: ApplicationRow, event_type: str, endpoint_arn: str, **fields: str | int
    ) -> bool:
        """Publish ``event_type`` about ``endpoint_arn`` of ``app`` to the topic its
        attributes name; False (nothing written) when they name none, or it is gone."""
        topic_arn = topic_of(app.attributes, event_type)
        if topic_arn is None:
            return False
        if topic_arn not in self._topics:
            self._topics[topic_arn] = topic_store.get(self._conn, topic_arn)
        topic = self._topics[topic_arn]
        if topic is None:
            log.debug(
                "event topic does not exist; event dropped",
                extra={"action": "event_dropped", "topic": topic_arn, "event": event_type},
            )
            return False
        body = event_json(event_type, endpoint_arn, app.arn, self._now, **fields)
        message = outbox.NewMessage(
            message_id=str(uuid.uuid4()),
            region=topic.arn.split(":")[3],
            target_arn=topic.arn,
            topic_id=topic.id,
            body=body,
            structure=None,
            subject=None,
            attributes={},
            dedup_key=None,
            published_at=self._now.timestamp(),
        )
        outbox.insert_message(self._conn, message, fanout=True)
        self.count += 1
        return True


def emit(
    conn: Connection,
    app: ApplicationRow,
    event_type: str,
    endpoint_arn: str,
    now: datetime,
    **fields: str | int,
) -> bool:
    """One event (see :meth:`Emitter.emit`)."""
    return Emitter(conn, now).emit(app, event_type, endpoint_arn, **fields)
