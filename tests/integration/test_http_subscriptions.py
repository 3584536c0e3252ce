"""HTTP/HTTPS subscriptions end to end (specs/sns-api.md sec. 4.16-4.19): a real
``pushgate serve``, boto3, and a subscriber written as one is for Amazon SNS
(``tests/sns_subscriber.py``: it checks the SigningCertURL's host, fetches the
certificate anonymously and verifies every signature with its own implementation of
AWS's algorithm, and confirms by GETting the SubscribeURL), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from prometheus_client.parser import text_string_to_metric_families

from pushgate.fakes.runner import FakeProviders
from tests.conftest import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    Server,
    running_server,
    unique,
)
from tests.integration.delivery_helpers import FAST_ENGINE, apns_app, apns_token, endpoint
from tests.sns_subscriber import Subscriber, running_subscriber, verify_with_certificate

FAST_RETRIES = json.dumps(
    {"healthyRetryPolicy": {"numRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 1}}
)


@pytest.fixture(scope="module")
def server(
    database_url: str, fakes: FakeProviders, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    # The subscriber listens on loopback, which the host guard refuses unless allowed.
    env = fakes.env() | FAST_ENGINE | {"PUSHGATE_SUBSCRIPTION_ALLOWED_HOSTS": "127.0.0.1"}
    with running_server(database_url, tmp_path_factory.mktemp("data"), env) as srv:
        yield srv


@pytest.fixture(scope="module")
def subscriber(server: Server) -> Iterator[Subscriber]:
    with running_subscriber("^" + re.escape(server.url) + "/") as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(subscriber: Subscriber) -> None:
    subscriber.reset()
    subscriber.auto_confirm = True


def _topic(sns: Any, **attributes: str) -> str:
    arn = str(sns.create_topic(Name=unique("hooks"))["TopicArn"])
    for name, value in attributes.items():
        sns.set_topic_attributes(TopicArn=arn, AttributeName=name, AttributeValue=value)
    return arn


def _subscribed(sns: Any, subscriber: Subscriber, topic: str, path: str, **attributes: str) -> str:
    """Subscribe ``path`` of the subscriber and wait until it confirmed; the ARN."""
    url = subscriber.url + path
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url, Attributes=attributes)
    subscriber.wait_for("SubscriptionConfirmation", path=path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        arn = next(s["SubscriptionArn"] for s in subs if s["Endpoint"] == url)
        if arn != "PendingConfirmation":
            return str(arn)
        time.sleep(0.05)
    raise AssertionError("the subscription was not confirmed")


def test_confirmation_handshake(sns: Any, server: Server, subscriber: Subscriber) -> None:
    topic = _topic(sns)
    url = subscriber.url + "/confirm-me"
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)["SubscriptionArn"] == (
        "pending confirmation"
    )
    (got,) = subscriber.wait_for("SubscriptionConfirmation", path="/confirm-me")
    msg = got.json()
    assert got.headers["x-amz-sns-topic-arn"] == topic
    assert got.headers["x-amz-sns-message-id"] == msg["MessageId"]
    assert got.headers["content-type"] == "text/plain; charset=UTF-8"
    assert got.headers["user-agent"] == "Amazon Simple Notification Service Agent"
    assert "x-amz-sns-subscription-arn" not in got.headers
    assert list(msg) == [
        "Type",
        "MessageId",
        "Token",
        "TopicArn",
        "Message",
        "SubscribeURL",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ]
    assert msg["SignatureVersion"] == "1"
    assert re.fullmatch(r"[0-9a-f]{128}", msg["Token"])
    assert msg["SubscribeURL"].startswith(f"{server.url}/?Action=ConfirmSubscription&TopicArn=")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", msg["Timestamp"])
    assert subscriber.errors == [] and subscriber.verified == 1

    deadline = time.monotonic() + 10
    while (
        sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
        == "PendingConfirmation"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    arn = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attributes["PendingConfirmation"] == "false"
    # The SubscribeURL again, and ConfirmSubscription with the token, are idempotent.
    again = httpx.get(msg["SubscribeURL"], timeout=10)
    assert again.status_code == 200 and arn in again.text
    assert sns.confirm_subscription(TopicArn=topic, Token=msg["Token"])["SubscriptionArn"] == arn


def test_confirm_subscription_with_the_token(sns: Any, subscriber: Subscriber) -> None:
    """A subscriber that hands the token to its backend, which calls ConfirmSubscription."""
    subscriber.auto_confirm = False
    topic = _topic(sns)
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url + "/manual")
    (got,) = subscriber.wait_for("SubscriptionConfirmation", path="/manual")
    arn = sns.confirm_subscription(TopicArn=topic, Token=got.json()["Token"])["SubscriptionArn"]
    assert arn.startswith(topic + ":")
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == [arn]
    with pytest.raises(ClientError) as err:
        sns.confirm_subscription(TopicArn=_topic(sns), Token=got.json()["Token"])
    assert err.value.response["Error"]["Code"] == "InvalidParameter"


@pytest.mark.parametrize("version", ["1", "2"])
def test_notification(sns: Any, server: Server, subscriber: Subscriber, version: str) -> None:
    topic = _topic(sns, SignatureVersion=version)
    arn = _subscribed(sns, subscriber, topic, f"/orders-{version}")
    published = sns.publish(
        TopicArn=topic,
        Message="order 7 shipped\nline two é",
        Subject="Shipping",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "shipped"},
            "count": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffab"},
        },
    )
    (got,) = subscriber.wait_for("Notification", path=f"/orders-{version}")
    msg = got.json()
    assert got.headers["x-amz-sns-message-id"] == published["MessageId"] == msg["MessageId"]
    assert got.headers["x-amz-sns-topic-arn"] == topic
    assert got.headers["x-amz-sns-subscription-arn"] == arn
    assert msg["Message"] == "order 7 shipped\nline two é"
    assert msg["Subject"] == "Shipping"
    assert msg["SignatureVersion"] == version
    assert msg["MessageAttributes"] == {
        "blob": {"Type": "Binary", "Value": "AP9hYg=="},
        "count": {"Type": "Number", "Value": "3"},
        "kind": {"Type": "String", "Value": "shipped"},
    }
    assert msg["UnsubscribeURL"] == (
        f"{server.url}/?Action=Unsubscribe&SubscriptionArn={arn.replace(':', '%3A')}"
    )
    assert subscriber.errors == []
    # Tampering with what was signed breaks the signature.
    cert = httpx.get(msg["SigningCertURL"], timeout=10).content
    verify_with_certificate(msg, cert)
    with pytest.raises(InvalidSignature):
        verify_with_certificate(msg | {"Message": "order 7 cancelled"}, cert)


def test_raw_message_delivery_and_message_structure(sns: Any, subscriber: Subscriber) -> None:
    topic = _topic(sns)
    _subscribed(sns, subscriber, topic, "/raw", RawMessageDelivery="true")
    _subscribed(sns, subscriber, topic, "/wrapped")
    sns.publish(
        TopicArn=topic,
        MessageStructure="json",
        Message=json.dumps({"default": "for everyone", "http": '{"for": "http"}'}),
    )
    (raw,) = subscriber.wait_for("Notification", path="/raw")
    assert raw.body == b'{"for": "http"}'
    assert raw.headers["x-amz-sns-rawdelivery"] == "true"
    (wrapped,) = subscriber.wait_for("Notification", path="/wrapped")
    assert wrapped.json()["Message"] == '{"for": "http"}'
    assert "x-amz-sns-rawdelivery" not in wrapped.headers


def _posts(server: Server, message_id: str) -> list[dict[str, Any]]:
    """The message's HTTP/S posts, from ``GET /v1/messages/{id}``."""
    answer = httpx.get(
        f"{server.url}/v1/messages/{message_id}",
        auth=(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    posts: list[dict[str, Any]] = answer.json()["subscribers"]
    return posts


def _settled_posts(server: Server, message_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        posts = _posts(server, message_id)
        if len(posts) == count and all(p["state"] != "queued" for p in posts):
            return posts
        assert time.monotonic() < deadline, posts
        time.sleep(0.1)


def test_a_5xx_is_retried_by_the_delivery_policy_and_a_4xx_is_not(
    sns: Any, server: Server, subscriber: Subscriber
) -> None:
    topic = _topic(sns)
    flaky = _subscribed(sns, subscriber, topic, "/flaky", DeliveryPolicy=FAST_RETRIES)
    gone = _subscribed(sns, subscriber, topic, "/gone", DeliveryPolicy=FAST_RETRIES)
    subscriber.script("/flaky", 500, 503)
    subscriber.script("/gone", 404)
    published = sns.publish(TopicArn=topic, Message="third time lucky")
    received = subscriber.wait_for("Notification", count=3, path="/flaky")
    assert {r.json()["MessageId"] for r in received} == {published["MessageId"]}
    assert subscriber.errors == []
    posts = {p["subscription"]: p for p in _settled_posts(server, published["MessageId"], 2)}
    assert posts[flaky]["state"] == "sent" and posts[flaky]["attempts"] == 3
    assert posts[gone]["state"] == "failed" and posts[gone]["attempts"] == 1
    assert (posts[gone]["statusCode"], posts[gone]["reason"]) == (404, "HTTP 404")
    assert len(subscriber.of_type("Notification", "/gone")) == 1


def test_the_retry_policy_gives_up(sns: Any, server: Server, subscriber: Subscriber) -> None:
    topic = _topic(sns)
    _subscribed(sns, subscriber, topic, "/down", DeliveryPolicy=FAST_RETRIES)
    subscriber.script("/down", *[500] * 5)
    published = sns.publish(TopicArn=topic, Message="never arrives")
    (post,) = _settled_posts(server, published["MessageId"], 1)
    assert (post["state"], post["attempts"], post["reason"]) == ("failed", 3, "HTTP 500")
    assert len(subscriber.of_type("Notification", "/down")) == 3  # 1 + numRetries
    scraped = httpx.get(
        f"{server.url}/metrics", auth=(ACCESS_KEY_ID, SECRET_ACCESS_KEY), timeout=10
    ).text
    counts = {
        (sample.labels["type"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "pushgate_subscriber_posts"
        for sample in family.samples
    }
    assert counts[("Notification", "failed")] >= 1
    assert counts[("Notification", "retry")] >= 2
    assert counts[("SubscriptionConfirmation", "sent")] >= 1


def test_max_receives_per_second(sns: Any, subscriber: Subscriber) -> None:
    """A throttled subscription gets its posts at most ``maxReceivesPerSecond`` apart."""
    topic = _topic(sns)
    policy = json.dumps({"throttlePolicy": {"maxReceivesPerSecond": 2}})
    _subscribed(sns, subscriber, topic, "/throttled", DeliveryPolicy=policy)
    for n in range(4):
        sns.publish(TopicArn=topic, Message=f"message {n}")
    received = subscriber.wait_for("Notification", count=4, path="/throttled")
    arrivals = sorted(r.at for r in received)
    # A lower bound only: slow machines make the gaps longer, never shorter.
    assert arrivals[-1] - arrivals[0] >= 1.4


def test_unsubscribe_url_and_restoring_the_subscription(sns: Any, subscriber: Subscriber) -> None:
    topic = _topic(sns)
    arn = _subscribed(sns, subscriber, topic, "/leaving")
    sns.publish(TopicArn=topic, Message="hello")
    (note,) = subscriber.wait_for("Notification", path="/leaving")
    answer = httpx.get(note.json()["UnsubscribeURL"], timeout=10)  # no credentials
    assert answer.status_code == 200, answer.text
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    (bye,) = subscriber.wait_for("UnsubscribeConfirmation", path="/leaving")
    assert bye.headers["x-amz-sns-subscription-arn"] == arn
    msg = bye.json()
    assert msg["Message"].startswith(f"You have chosen to deactivate subscription {arn}.")
    assert subscriber.errors == []
    # Its SubscribeURL restores the subscription, under the same ARN.
    restored = httpx.get(msg["SubscribeURL"], timeout=10)
    assert restored.status_code == 200 and arn in restored.text
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == [arn]
    sns.publish(TopicArn=topic, Message="welcome back")
    subscriber.wait_for("Notification", count=2, path="/leaving")


def test_authenticate_on_unsubscribe(sns: Any, subscriber: Subscriber) -> None:
    subscriber.auto_confirm = False
    topic = _topic(sns)
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=subscriber.url + "/strict")
    (got,) = subscriber.wait_for("SubscriptionConfirmation", path="/strict")
    arn = sns.confirm_subscription(
        TopicArn=topic, Token=got.json()["Token"], AuthenticateOnUnsubscribe="true"
    )["SubscriptionArn"]
    sns.publish(TopicArn=topic, Message="hello")
    (note,) = subscriber.wait_for("Notification", path="/strict")
    refused = httpx.get(note.json()["UnsubscribeURL"], timeout=10)
    assert refused.status_code == 403
    assert "<Code>AuthorizationError</Code>" in refused.text
    assert sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    sns.unsubscribe(SubscriptionArn=arn)  # signed: allowed
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_other_actions_still_need_a_signature(server: Server) -> None:
    answer = httpx.get(f"{server.url}/?Action=ListTopics", timeout=10)
    assert answer.status_code == 403
    answer = httpx.get(f"{server.url}/?Action=ConfirmSubscription&TopicArn=x&Token=y", timeout=10)
    assert answer.status_code == 400
    assert "InvalidParameter" in answer.text


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.1.2.3/hook",
        "http://192.168.0.10:8080/",
        "http://[::1]:4575/",
        "http://127.0.0.2/",
        "http://user:secret@example.com/",
    ],
)
def test_subscriber_hosts_are_guarded(sns: Any, url: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=_topic(sns), Protocol="http", Endpoint=url)
    assert err.value.response["Error"]["Code"] == "InvalidParameter"
    assert err.value.response["Error"]["Message"].startswith("Invalid parameter: Endpoint Reason: ")


def test_push_and_http_subscribers_of_one_topic(
    sns: Any, fakes: FakeProviders, subscriber: Subscriber
) -> None:
    topic = _topic(sns)
    app = apns_app(sns, fakes)
    device = endpoint(sns, app, apns_token())
    sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=device)
    _subscribed(sns, subscriber, topic, "/both")
    fakes.reset()
    sns.publish(TopicArn=topic, Message="to phones and hooks")
    (got,) = subscriber.wait_for("Notification", path="/both")
    assert got.json()["Message"] == "to phones and hooks"
    deadline = time.monotonic() + 20
    while not fakes.apns.received:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert fakes.apns.received[0].json["aps"]["alert"] == "to phones and hooks"


def test_application_events_reach_an_http_subscriber(
    sns: Any, fakes: FakeProviders, subscriber: Subscriber
) -> None:
    """SNS's pattern for watching a fleet: event topics with an HTTPS subscriber."""
    events = _topic(sns)
    _subscribed(sns, subscriber, events, "/events")
    app = apns_app(sns, fakes)
    sns.set_platform_application_attributes(
        PlatformApplicationArn=app,
        Attributes={"EventEndpointCreated": events, "EventEndpointDeleted": events},
    )
    device = endpoint(sns, app, apns_token())
    (created,) = subscriber.wait_for("Notification", path="/events")
    sns.delete_endpoint(EndpointArn=device)
    received = subscriber.wait_for("Notification", count=2, path="/events")
    bodies = [json.loads(r.json()["Message"]) for r in received]
    assert [b["EventType"] for b in bodies] == ["EndpointCreated", "EndpointDeleted"]
    for body in bodies:
        assert body["EndpointArn"] == device
        assert body["Resource"] == app
        assert body["Service"] == "SNS"
    assert created.headers["x-amz-sns-topic-arn"] == events
    assert subscriber.errors == [] and subscriber.verified >= 3


@pytest.fixture(scope="module")
def https_subscriber(server: Server, fakes: FakeProviders) -> Iterator[Subscriber]:
    """An HTTPS subscriber with a certificate the server trusts (the fakes' test CA)."""
    tls = (fakes.ca.server_cert_file, fakes.ca.server_key_file)
    with running_subscriber("^" + re.escape(server.url) + "/", tls=tls) as running:
        yield running


@pytest.mark.parametrize("scheme", ["basic", "digest"])
def test_https_subscriber_with_credentials(
    sns: Any, https_subscriber: Subscriber, scheme: str
) -> None:
    """``https://user:password@host/``: SNS's Basic and Digest authentication. The
    password is never shown again."""
    https_subscriber.reset()
    https_subscriber.credentials = (scheme, "sns-hook", "s3cr3t/pass")
    topic = _topic(sns)
    base = https_subscriber.url.replace("https://", "")
    path = f"/auth-{scheme}"
    url = f"https://sns-hook:s3cr3t%2Fpass@{base}{path}"
    sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=url)
    https_subscriber.wait_for("SubscriptionConfirmation", path=path)
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Endpoint"] for s in listed] == [f"https://sns-hook:****@{base}{path}"]
    deadline = time.monotonic() + 10
    while (
        arn := sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0][
            "SubscriptionArn"
        ]
    ) == "PendingConfirmation":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert "s3cr3t" not in json.dumps(attributes)
    sns.publish(TopicArn=topic, Message="authenticated")
    (note,) = https_subscriber.wait_for("Notification", path=path)
    assert note.json()["Message"] == "authenticated"
    assert https_subscriber.errors == []
    # Basic is sent with the request. Digest needs a challenge first: the 401 to the Basic
    # attempt, which libcurl keeps on that handle, so the Digest retry answers it at once;
    # a post that goes out on another handle of the transport gets a 401 of its own first.
    if scheme == "digest":
        assert 1 <= https_subscriber.unauthorized <= 3
    else:
        assert https_subscriber.unauthorized == 0
    # Subscribing the listed (masked) endpoint again is the same subscription.
    again = sns.subscribe(
        TopicArn=topic, Protocol="https", Endpoint=listed[0]["Endpoint"], ReturnSubscriptionArn=True
    )
    assert again["SubscriptionArn"] == arn


def test_credentials_go_over_https_only(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.subscribe(
            TopicArn=_topic(sns), Protocol="http", Endpoint="http://u:p@hooks.example.com/"
        )
    assert "https only" in err.value.response["Error"]["Message"]
