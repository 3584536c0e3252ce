"""The application events' JSON (specs/sns-api.md sec. 6.2), built offline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pushgate.domain import events

ENDPOINT = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/my-app/0e0a5f7e-1c7a-4d1e-9c2b"
APP = "arn:aws:sns:us-east-1:123456789012:app/APNS/my-app"
AT = datetime(2026, 11, 22, 19, 58, 51, 279_412, tzinfo=UTC)


@pytest.mark.parametrize("event_type", [events.CREATED, events.UPDATED, events.DELETED])
def test_an_endpoint_event_has_sns_five_fields_in_order(event_type: str) -> None:
    text = events.event_json(event_type, ENDPOINT, APP, AT)
    assert list(json.loads(text).items()) == [
        ("EventType", event_type),
        ("EndpointArn", ENDPOINT),
        ("Resource", APP),
        ("Service", "SNS"),
        ("Time", "2026-11-22T19:58:51.279Z"),
    ]


def test_a_delivery_failure_adds_the_message_and_the_failure() -> None:
    text = events.event_json(
        events.DELIVERY_FAILURE,
        ENDPOINT,
        APP,
        AT,
        MessageId="d8a41c1e-4c2f-5b0e-9d1c-2a3b4c5d6e7f",
        DeliveryAttempts=1,
        FailureType=events.ENDPOINT_DISABLED,
        FailureMessage="Endpoint is disabled",
    )
    assert json.loads(text) == {
        "EventType": "DeliveryFailure",
        "EndpointArn": ENDPOINT,
        "Resource": APP,
        "Service": "SNS",
        "Time": "2026-11-22T19:58:51.279Z",
        "MessageId": "d8a41c1e-4c2f-5b0e-9d1c-2a3b4c5d6e7f",
        "DeliveryAttempts": 1,
        "FailureType": "EndpointDisabled",
        "FailureMessage": "Endpoint is disabled",
    }


def test_the_json_is_compact_and_the_time_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    text = events.event_json(events.CREATED, ENDPOINT, APP, AT.astimezone(paris))
    assert " " not in text
    assert json.loads(text)["Time"] == "2026-11-22T19:58:51.279Z"


def test_the_failure_types_are_the_four_sns_sends() -> None:
    assert {
        events.INVALID_PLATFORM_TOKEN,
        events.ENDPOINT_DISABLED,
        events.TTL_EXPIRED,
        events.FAILED_PERMANENTLY,
    } == {
        "InvalidPlatformToken",
        "EndpointDisabled",
        "NotificationTTLExpired",
        "DeliveryFailedPerm",
    }


@pytest.mark.parametrize(
    ("event_type", "attribute"),
    [
        (events.CREATED, "EventEndpointCreated"),
        (events.UPDATED, "EventEndpointUpdated"),
        (events.DELETED, "EventEndpointDeleted"),
        (events.DELIVERY_FAILURE, "EventDeliveryFailure"),
    ],
)
def test_each_event_has_the_topic_its_attribute_names(event_type: str, attribute: str) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:events"
    assert events.topic_of({attribute: topic}, event_type) == topic
    others = {name: topic for name in events.ATTRIBUTES.values() if name != attribute}
    assert events.topic_of(others, event_type) is None
    assert events.topic_of({attribute: ""}, event_type) is None


@pytest.mark.parametrize(
    ("reason", "response", "expected"),
    [
        ("Unregistered", '{"reason":"Unregistered"}', 'Unregistered {"reason":"Unregistered"}'),
        ("BadDeviceToken", None, "BadDeviceToken"),
        (None, "an answer", "an answer"),
        ("", "", "Delivery failed"),
        (None, None, "Delivery failed"),
    ],
)
def test_the_failure_message_is_the_providers_reason_and_answer(
    reason: str | None, response: str | None, expected: str
) -> None:
    assert events.failure_message(reason, response) == expected


def test_the_failure_message_is_short() -> None:
    message = events.failure_message("UNREGISTERED", "x" * 5000)
    assert len(message) == events.FAILURE_MESSAGE_LIMIT
    assert message.startswith("UNREGISTERED xxx")
