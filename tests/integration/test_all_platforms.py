"""One topic with endpoints on every platform receives one JSON-structured publish.

The issue's acceptance test: boto3 against a running server, every provider a strict fake
over real sockets, and every fake must record the request its platform should get.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pushgate.fakes.runner import FakeProviders
from tests.conftest import Server, unique
from tests.integration.delivery_helpers import (
    apns_app,
    apns_token,
    bundle_of,
    endpoint,
    fcm_app,
    fcm_token,
    settled,
)

TEXT = "Your order shipped"


@pytest.fixture(scope="module")
def server(delivering_server: Server) -> Server:
    return delivering_server


@dataclass
class Device:
    """One platform's endpoint, and how to find and check what its fake received."""

    platform: str
    endpoint_arn: str
    received: Callable[[], list[Any]]
    check: Callable[[Any], None]


def _apns(sns: Any, fakes: FakeProviders, sandbox: bool) -> Device:
    app = apns_app(sns, fakes, sandbox=sandbox)
    bundle = bundle_of(sns, app)
    token = apns_token()
    fake = fakes.apns_sandbox if sandbox else fakes.apns
    alert = "sandbox" if sandbox else "production"

    def check(push: Any) -> None:
        assert json.loads(push.payload) == {"aps": {"alert": alert}}
        assert push.headers["apns-topic"] == bundle
        assert push.headers["apns-push-type"] == "alert"

    return Device(
        "APNS_SANDBOX" if sandbox else "APNS",
        endpoint(sns, app, token),
        lambda: [p for p in fake.delivered if p.token == token],
        check,
    )


def _fcm(sns: Any, fakes: FakeProviders) -> Device:
    app, project = fcm_app(sns, fakes)
    token = fcm_token()

    def check(message: Any) -> None:
        assert message.project == project
        assert message.body == {
            "message": {
                "token": token,
                "notification": {"title": "Order", "body": TEXT},
                "data": {"orderId": "42"},
            }
        }

    return Device(
        "GCM",
        endpoint(sns, app, token),
        lambda: [m for m in fakes.fcm.delivered if m.token == token],
        check,
    )


def _adm(sns: Any, fakes: FakeProviders) -> Device:
    client_id, secret = fakes.adm.create_client()
    app = sns.create_platform_application(
        Name=unique("adm"),
        Platform="ADM",
        Attributes={"PlatformPrincipal": client_id, "PlatformCredential": secret},
    )["PlatformApplicationArn"]
    registration = fakes.adm.create_registration()

    def check(message: Any) -> None:
        assert message.client_id == client_id
        assert message.body["data"] == {"message": TEXT}
        assert message.headers["x-amzn-type-version"] == (
            "com.amazon.device.messaging.ADMMessage@1.0"
        )

    return Device(
        "ADM",
        endpoint(sns, app, registration),
        lambda: [m for m in fakes.adm.delivered if m.registration_id == registration],
        check,
    )


def _hms(sns: Any, fakes: FakeProviders) -> Device:
    app_id, secret = fakes.hms.create_app()
    app = sns.create_platform_application(
        Name=unique("hms"),
        Platform="HMS",
        Attributes={"PlatformPrincipal": app_id, "PlatformCredential": secret},
    )["PlatformApplicationArn"]
    token = fakes.hms.create_token()

    def check(message: Any) -> None:
        assert message.app_id == app_id
        assert message.body["message"]["notification"] == {"title": "Order", "body": TEXT}
        assert message.body["message"]["token"] == [token]

    return Device(
        "HMS",
        endpoint(sns, app, token),
        lambda: [m for m in fakes.hms.delivered if token in m.tokens],
        check,
    )


def _webpush(sns: Any, fakes: FakeProviders) -> Device:
    app = sns.create_platform_application(
        Name=unique("web"),
        Platform="WEBPUSH",
        Attributes={"PlatformPrincipal": "mailto:ops@example.com"},
    )["PlatformApplicationArn"]
    public_key = sns.get_platform_application_attributes(PlatformApplicationArn=app)["Attributes"][
        "VapidPublicKey"
    ]
    subscription = fakes.webpush.create_subscription(application_server_key=public_key)
    subscription_id = subscription["endpoint"].rsplit("/", 1)[1]

    def check(push: Any) -> None:
        assert json.loads(push.plaintext) == {"title": "Order", "body": TEXT}
        assert push.vapid_subject == "mailto:ops@example.com"
        assert push.vapid_key == public_key
        assert push.urgency == "high"

    return Device(
        "WEBPUSH",
        endpoint(sns, app, json.dumps(subscription)),
        lambda: [p for p in fakes.webpush.delivered if p.subscription_id == subscription_id],
        check,
    )


TOAST = (
    '<toast><visual><binding template="ToastGeneric"><text>Order</text>'
    f"<text>{TEXT}</text></binding></visual></toast>"
)
MPNS_TOAST = (
    '<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
    f"<wp:Toast><wp:Text1>Order</wp:Text1><wp:Text2>{TEXT}</wp:Text2></wp:Toast>"
    "</wp:Notification>"
)


def _wns(sns: Any, fakes: FakeProviders) -> Device:
    package_sid, secret = fakes.wns.create_app()
    app = sns.create_platform_application(
        Name=unique("wns"),
        Platform="WNS",
        Attributes={"PlatformPrincipal": package_sid, "PlatformCredential": secret},
    )["PlatformApplicationArn"]
    channel = fakes.wns.create_channel(package_sid)
    opaque = channel.rsplit("=", 1)[1]

    def check(notification: Any) -> None:
        assert notification.package_sid == package_sid
        assert notification.body == TOAST.encode()
        assert notification.headers["x-wns-type"] == "wns/toast"
        assert notification.headers["content-type"] == "text/xml"

    return Device(
        "WNS",
        endpoint(sns, app, channel),
        lambda: [n for n in fakes.wns.delivered if n.channel == opaque],
        check,
    )


def _mpns(sns: Any, fakes: FakeProviders) -> Device:
    certificate, key = fakes.mpns.create_service(unique("mpns"))
    app = sns.create_platform_application(
        Name=unique("mpns"),
        Platform="MPNS",
        Attributes={"PlatformPrincipal": certificate, "PlatformCredential": key},
    )["PlatformApplicationArn"]
    channel = fakes.mpns.create_channel(certificate)
    opaque = channel.rstrip("/").rsplit("/", 1)[1]

    def check(notification: Any) -> None:
        assert notification.body == MPNS_TOAST.encode()
        assert notification.headers["x-windowsphone-target"] == "toast"
        assert notification.headers["x-notificationclass"] == "2"
        assert notification.certificate_subject is not None

    return Device(
        "MPNS",
        endpoint(sns, app, channel),
        lambda: [n for n in fakes.mpns.delivered if n.channel == opaque],
        check,
    )


def _baidu(sns: Any, fakes: FakeProviders) -> Device:
    api_key, secret = fakes.baidu.create_app()
    app = sns.create_platform_application(
        Name=unique("baidu"),
        Platform="BAIDU",
        Attributes={"PlatformPrincipal": api_key, "PlatformCredential": secret},
    )["PlatformApplicationArn"]
    channel = str(secrets.randbelow(10**19)).zfill(19)
    fakes.baidu.register_channel(channel)
    arn = sns.create_platform_endpoint(
        PlatformApplicationArn=app,
        Token=channel,
        Attributes={"ChannelId": channel, "UserId": "763971201"},
    )["EndpointArn"]

    def check(push: Any) -> None:
        assert push.apikey == api_key
        assert push.path == "/rest/3.0/push/single_device"
        assert push.params["msg_type"] == "1"
        assert json.loads(push.params["msg"]) == {"title": "Order", "description": TEXT}

    return Device(
        "BAIDU",
        arn,
        lambda: [p for p in fakes.baidu.delivered if p.channel_id == channel],
        check,
    )


def structure() -> dict[str, str]:
    """The platform-native payload of every platform, as SNS's JSON message structure."""
    return {
        "default": "fallback",
        "APNS": json.dumps({"aps": {"alert": "production"}}),
        "APNS_SANDBOX": json.dumps({"aps": {"alert": "sandbox"}}),
        "GCM": json.dumps(
            {
                "fcmV1Message": {
                    "message": {
                        "notification": {"title": "Order", "body": TEXT},
                        "data": {"orderId": "42"},
                    }
                }
            }
        ),
        "ADM": json.dumps({"data": {"message": TEXT}}),
        "HMS": json.dumps({"message": {"notification": {"title": "Order", "body": TEXT}}}),
        "WEBPUSH": json.dumps({"title": "Order", "body": TEXT}),
        "WNS": TOAST,
        "MPNS": MPNS_TOAST,
        "BAIDU": json.dumps({"title": "Order", "description": TEXT}),
    }


def test_one_topic_reaches_every_platform(server: Server, fakes: FakeProviders) -> None:
    sns = server.client()
    devices = [
        _apns(sns, fakes, sandbox=False),
        _apns(sns, fakes, sandbox=True),
        _fcm(sns, fakes),
        _adm(sns, fakes),
        _hms(sns, fakes),
        _webpush(sns, fakes),
        _wns(sns, fakes),
        _mpns(sns, fakes),
        _baidu(sns, fakes),
    ]
    topic = sns.create_topic(Name=unique("everyone"))["TopicArn"]
    for device in devices:
        sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=device.endpoint_arn)

    message_id = sns.publish(
        TopicArn=topic,
        MessageStructure="json",
        Message=json.dumps(structure()),
        MessageAttributes={
            "AWS.SNS.MOBILE.WEBPUSH.URGENCY": {"DataType": "String", "StringValue": "high"}
        },
    )["MessageId"]

    status = settled(server, message_id)
    assert status["counts"] == {"queued": 0, "sent": len(devices), "failed": 0, "expired": 0}
    for device in devices:
        received = device.received()
        assert len(received) == 1, (device.platform, received)
        device.check(received[0])
