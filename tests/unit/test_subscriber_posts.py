"""The requests pushgate POSTs to HTTP/S subscribers: SNS's headers, bodies and links,
verified with the tests' own SNS verifier (tests/sns_subscriber.py)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from pushgate import signing_key
from pushgate.domain import subscriber_posts
from pushgate.domain.subscriber_posts import Links
from tests.sns_subscriber import verify_with_certificate

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
SUBSCRIPTION = TOPIC + ":5b7c1e2a-1111-4000-8000-000000000001"
URL = "https://hooks.example.com/sns?team=7"


@pytest.fixture(scope="module")
def links() -> Links:
    return Links("https://push.example.org", signing_key.generate())


def _notification(links: Links, **overrides: object) -> subscriber_posts.Post:
    args: dict[str, object] = {
        "url": URL,
        "message_id": "6f1a7b30-0000-4000-8000-000000000001",
        "topic_arn": TOPIC,
        "subscription_arn": SUBSCRIPTION,
        "text": "order 7 shipped",
        "subject": None,
        "attributes": {},
        "published_at": 1_700_000_000.25,
        "raw": False,
        "version": "1",
    }
    args.update(overrides)
    return subscriber_posts.notification(links, **args)  # type: ignore[arg-type]


def test_a_notification_is_signed_and_carries_snss_headers(links: Links) -> None:
    post = _notification(links, subject="Shipping")
    assert post.url == URL
    assert post.headers == {
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": "6f1a7b30-0000-4000-8000-000000000001",
        "x-amz-sns-topic-arn": TOPIC,
        "x-amz-sns-subscription-arn": SUBSCRIPTION,
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
    }
    msg = json.loads(post.body)
    assert msg["Timestamp"] == "2023-11-14T22:13:20.250Z"
    assert msg["Subject"] == "Shipping"
    assert msg["SigningCertURL"] == links.key.cert_url("https://push.example.org")
    assert "MessageAttributes" not in msg
    verify_with_certificate(msg, links.key.cert_pem)


def test_the_unsubscribe_url_names_the_subscription(links: Links) -> None:
    msg = json.loads(_notification(links).body)
    parts = urlsplit(msg["UnsubscribeURL"])
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "push.example.org", "/")
    assert parse_qs(parts.query) == {"Action": ["Unsubscribe"], "SubscriptionArn": [SUBSCRIPTION]}


def test_raw_delivery_is_the_bare_message(links: Links) -> None:
    post = _notification(links, raw=True, text='{"a": 1}', subject="ignored")
    assert post.body == b'{"a": 1}'
    assert post.headers["x-amz-sns-rawdelivery"] == "true"
    assert post.headers["x-amz-sns-message-type"] == "Notification"


def test_signature_version_2_and_a_content_type_from_the_policy(links: Links) -> None:
    post = _notification(links, version="2", content_type="application/json")
    assert post.headers["Content-Type"] == "application/json"
    msg = json.loads(post.body)
    assert msg["SignatureVersion"] == "2"
    verify_with_certificate(msg, links.key.cert_pem)


def test_message_attributes_in_the_envelope(links: Links) -> None:
    stored = {
        "kind": ["String", "shipped"],
        "n": ["Number.int", "3"],
        "blob": ["Binary", "\x00\xffab"],
    }
    msg = json.loads(_notification(links, attributes=stored).body)
    assert msg["MessageAttributes"] == {
        "blob": {"Type": "Binary", "Value": "AP9hYg=="},
        "kind": {"Type": "String", "Value": "shipped"},
        "n": {"Type": "Number.int", "Value": "3"},
    }


@pytest.mark.parametrize(
    ("structure", "protocol", "expected"),
    [
        (None, "https", "body"),
        ({"default": "d", "http": "h"}, "http", "h"),
        ({"default": "d", "http": "h"}, "https", "d"),
        ({"default": "d", "https": "s", "APNS": "a"}, "https", "s"),
    ],
)
def test_message_text_per_protocol(
    structure: dict[str, str] | None, protocol: str, expected: str
) -> None:
    assert subscriber_posts.message_text("body", structure, protocol) == expected


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_confirmations(links: Links, kind: str) -> None:
    post = subscriber_posts.confirmation(
        links,
        kind=kind,
        url=URL,
        message_id="6f1a7b30-0000-4000-8000-000000000009",
        topic_arn=TOPIC,
        subscription_arn=SUBSCRIPTION,
        token="ab" * 64,
        created_at=1_700_000_000.0,
        version="1",
    )
    msg = json.loads(post.body)
    assert msg["Type"] == post.headers["x-amz-sns-message-type"] == kind
    query = parse_qs(urlsplit(msg["SubscribeURL"]).query)
    assert query == {"Action": ["ConfirmSubscription"], "TopicArn": [TOPIC], "Token": ["ab" * 64]}
    assert ("x-amz-sns-subscription-arn" in post.headers) == (kind == "UnsubscribeConfirmation")
    verify_with_certificate(msg, links.key.cert_pem)


def test_the_default_signature_version_is_1() -> None:
    assert subscriber_posts.signature_version({}) == "1"
    assert subscriber_posts.signature_version({"SignatureVersion": "2"}) == "2"
