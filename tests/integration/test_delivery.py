"""Publish through boto3 reaches the strict APNs and FCM fakes, over TLS and HTTP/2.

A real ``pushgate serve`` (on SQLite and on PostgreSQL) is pointed at the fakes that run in
this test process; every test checks what the fake received, byte for byte where the
payload is SNS's to shape, and what pushgate recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from botocore.exceptions import ClientError

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
    status,
    wait_until,
)


@pytest.fixture(scope="module")
def server(delivering_server: Server) -> Server:
    return delivering_server


@pytest.fixture(autouse=True)
def _clean_fakes(fakes: FakeProviders) -> None:
    fakes.reset()


def _publish(sns: Any, target: str, message: str, **kwargs: Any) -> str:
    return str(sns.publish(TargetArn=target, Message=message, **kwargs)["MessageId"])


def _mobile(attributes: dict[str, str]) -> dict[str, Any]:
    return {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}


# --- APNs -----------------------------------------------------------------------------


def test_plain_text_reaches_apns_as_an_alert(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = apns_app(sns, fakes)
    token = apns_token()
    message_id = _publish(sns, endpoint(sns, app, token), "Hello from pushgate")

    (push,) = fakes.apns.wait_for(1)
    assert push.token == token
    assert push.payload == b'{"aps":{"alert":"Hello from pushgate"}}'
    assert push.headers["apns-id"].startswith(message_id[:24])  # leads back to the message
    assert push.headers["apns-topic"] == bundle_of(sns, app)
    assert push.headers["apns-push-type"] == "alert"
    claims = jwt.decode(
        push.headers["authorization"].split()[1], options={"verify_signature": False}
    )
    assert set(claims) == {"iss", "iat"}
    result = settled(server, message_id)
    assert result["counts"]["sent"] == 1
    (item,) = result["items"]
    assert (item["state"], item["statusCode"], item["attempts"]) == ("sent", 200, 1)
    assert item["latencyMs"] is not None


def test_json_structure_and_mobile_attributes_shape_the_apns_request(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = apns_app(sns, fakes)
    target = endpoint(sns, app, apns_token())
    inner = {"aps": {"content-available": 1}, "orderId": "42"}
    message = json.dumps({"default": "fallback", "APNS": json.dumps(inner)})
    _publish(
        sns,
        target,
        message,
        MessageStructure="json",
        MessageAttributes=_mobile(
            {
                "AWS.SNS.MOBILE.APNS.COLLAPSE_ID": "order-42",
                "AWS.SNS.MOBILE.APNS.TTL": "3600",
                "Business.Attribute": "never forwarded",
            }
        ),
    )
    (push,) = fakes.apns.wait_for(1)
    assert json.loads(push.payload) == inner
    assert push.headers["apns-push-type"] == "background"
    assert push.headers["apns-priority"] == "5"
    assert push.headers["apns-collapse-id"] == "order-42"
    assert int(push.headers["apns-expiration"]) > 1_700_000_000  # absolute, not a TTL
    assert b"never forwarded" not in push.payload


def test_sandbox_applications_use_the_sandbox_host(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = apns_app(sns, fakes, sandbox=True)
    _publish(sns, endpoint(sns, app, apns_token()), "to the sandbox")
    (push,) = fakes.apns_sandbox.wait_for(1)
    assert push.json == {"aps": {"alert": "to the sandbox"}}
    assert fakes.apns.received == []


def test_voip_pushes_use_the_voip_topic(server: Server, sns: Any, fakes: FakeProviders) -> None:
    app = apns_app(sns, fakes, voip=True)
    _publish(sns, endpoint(sns, app, apns_token()), "ring")
    (push,) = fakes.apns.wait_for(1)
    assert push.headers["apns-push-type"] == "voip"
    assert push.headers["apns-topic"] == bundle_of(sns, app) + ".voip"


def test_certificate_auth_and_macos(server: Server, sns: Any, fakes: FakeProviders) -> None:
    bundle = f"com.example.{unique('mac').replace('-', '')}"
    cert_pem, key_pem = fakes.apns_sandbox.register_certificate(bundle_id=bundle)
    app = sns.create_platform_application(
        Name=unique("macos"),
        Platform="MACOS_SANDBOX",
        Attributes={"PlatformPrincipal": cert_pem, "PlatformCredential": key_pem},
    )["PlatformApplicationArn"]
    attributes = sns.get_platform_application_attributes(PlatformApplicationArn=app)
    assert attributes["Attributes"]["AuthenticationMethod"] == "Certificate"
    token = apns_token()
    _publish(sns, endpoint(sns, app, token), "from a certificate")
    (push,) = fakes.apns_sandbox.wait_for(1)
    assert push.token == token
    assert push.certificate_uid == bundle
    assert "authorization" not in push.headers
    assert push.json == {"aps": {"alert": "from a certificate"}}


# --- FCM ------------------------------------------------------------------------------


def test_plain_text_reaches_fcm_as_a_data_message(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app, project = fcm_app(sns, fakes)
    token = fcm_token()
    message_id = _publish(sns, endpoint(sns, app, token), "Hello Android")
    (received,) = fakes.fcm.wait_for(1)
    assert received.project == project
    assert received.body == {"message": {"data": {"default": "Hello Android"}, "token": token}}
    assert any(r.outcome == "ok" for r in fakes.fcm.token_requests)  # OAuth grant done
    assert settled(server, message_id)["counts"]["sent"] == 1


def test_fcm_v1_and_legacy_payloads(server: Server, sns: Any, fakes: FakeProviders) -> None:
    app, _ = fcm_app(sns, fakes)
    target = endpoint(sns, app, fcm_token())
    v1 = {"fcmV1Message": {"message": {"notification": {"title": "T", "body": "B"}}}}
    _publish(sns, target, json.dumps({"GCM": json.dumps(v1)}), MessageStructure="json")
    legacy = {"notification": {"title": "Old", "body": "style"}, "data": {"n": 1}}
    _publish(
        sns,
        target,
        json.dumps({"default": "x", "GCM": json.dumps(legacy)}),
        MessageStructure="json",
    )
    first, second = sorted(fakes.fcm.wait_for(2), key=lambda r: "Old" in json.dumps(r.body))
    assert first.body["message"]["notification"] == {"title": "T", "body": "B"}
    assert second.body["message"]["notification"] == {"title": "Old", "body": "style"}
    assert second.body["message"]["data"] == {"n": "1"}


# --- topics ---------------------------------------------------------------------------


def test_topic_fan_out_reaches_every_platform(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    topic = sns.create_topic(Name=unique("fan"))["TopicArn"]
    apns, (fcm, _) = apns_app(sns, fakes), fcm_app(sns, fakes)
    apns_tokens = [apns_token() for _ in range(5)]
    fcm_tokens = [fcm_token() for _ in range(5)]
    for app, token in [(apns, t) for t in apns_tokens] + [(fcm, t) for t in fcm_tokens]:
        sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=endpoint(sns, app, token))
    message = json.dumps(
        {
            "default": "everyone",
            "APNS": json.dumps({"aps": {"alert": {"title": "Hi", "body": "iOS"}}}),
        }
    )
    message_id = sns.publish(TopicArn=topic, Message=message, MessageStructure="json")["MessageId"]
    assert sorted(p.token for p in fakes.apns.wait_for(5)) == sorted(apns_tokens)
    assert {p.json["aps"]["alert"]["body"] for p in fakes.apns.delivered} == {"iOS"}
    assert sorted(r.token for r in fakes.fcm.wait_for(5)) == sorted(fcm_tokens)
    assert {r.body["message"]["data"]["default"] for r in fakes.fcm.delivered} == {"everyone"}
    result = settled(server, message_id)
    assert result["deliveries"] == 10 and result["counts"]["sent"] == 10


# --- provider feedback ----------------------------------------------------------------


def test_a_dead_apns_token_disables_the_endpoint_until_it_gets_a_new_one(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = apns_app(sns, fakes)
    dead = apns_token()
    target = endpoint(sns, app, dead)
    # Apple saw the app uninstalled after the token was registered: the token is dead.
    fakes.apns.set_token_state(dead, "unregistered", timestamp_ms=int(time.time() * 1000) + 1000)
    message_id = _publish(sns, target, "to a phone that uninstalled the app")

    result = settled(server, message_id)
    (item,) = result["items"]
    assert (item["state"], item["statusCode"], item["reason"]) == ("failed", 410, "Unregistered")
    attributes = sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]
    assert attributes["Enabled"] == "false"
    with pytest.raises(ClientError) as raised:
        _publish(sns, target, "again")
    assert raised.value.response["Error"]["Code"] == "EndpointDisabled"

    fresh = apns_token()
    sns.set_endpoint_attributes(EndpointArn=target, Attributes={"Token": fresh, "Enabled": "true"})
    _publish(sns, target, "after reinstall")
    (push,) = fakes.apns.wait_for(1)
    assert push.token == fresh


def test_an_unregistered_verdict_older_than_the_token_keeps_the_endpoint(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    """APNs's 410 timestamp predates the token's registration: a reinstall raced the
    verdict, and the endpoint stays enabled (specs/providers.md sec. 1.7)."""
    app = apns_app(sns, fakes)
    token = apns_token()
    target = endpoint(sns, app, token)
    fakes.apns.set_token_state(token, "unregistered", timestamp_ms=1_600_000_000_000)
    (item,) = settled(server, _publish(sns, target, "raced"))["items"]
    assert (item["state"], item["reason"]) == ("failed", "Unregistered")
    assert sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]["Enabled"] == "true"


def test_an_unregistered_fcm_token_disables_the_endpoint(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app, _ = fcm_app(sns, fakes)
    token = fcm_token()
    fakes.fcm.set_token_state(token, "unregistered")
    target = endpoint(sns, app, token)
    (item,) = settled(server, _publish(sns, target, "gone"))["items"]
    assert (item["statusCode"], item["reason"]) == (404, "UNREGISTERED")
    assert sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]["Enabled"] == "false"


def test_rejected_credentials_mark_the_application_not_the_endpoints(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    unknown_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    app = sns.create_platform_application(
        Name=unique("badkey"),
        Platform="APNS",
        Attributes={
            "PlatformPrincipal": "ABCDEFGHIJ",
            "PlatformCredential": unknown_key,
            "ApplePlatformTeamID": "TEAM123456",
            "ApplePlatformBundleID": "com.example.badkey",
        },
    )["PlatformApplicationArn"]
    target = endpoint(sns, app, apns_token())
    message_id = _publish(sns, target, "never arrives")

    def unhealthy() -> dict[str, str] | None:
        attributes = sns.get_platform_application_attributes(PlatformApplicationArn=app)
        shown: dict[str, str] = attributes["Attributes"]
        return shown if shown.get("DeliveryHealth") == "Unhealthy" else None

    shown = wait_until(unhealthy, what="the application to be marked unhealthy")
    assert shown["DeliveryHealthReason"] == "InvalidProviderToken"
    assert sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]["Enabled"] == "true"
    (item,) = status(server, message_id)["items"]
    assert item["state"] == "queued" and item["reason"] == "InvalidProviderToken"


def test_every_token_refused_as_foreign_points_at_the_application(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    """A whole batch of BadDeviceToken is a misconfiguration (say, sandbox tokens on a
    production application), not a fleet of dead devices: no endpoint is disabled."""
    topic = sns.create_topic(Name=unique("env"))["TopicArn"]
    app = apns_app(sns, fakes)
    targets = []
    for _ in range(12):
        token = apns_token()
        fakes.apns.set_token_state(token, "other_env")
        targets.append(endpoint(sns, app, token))
        sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=targets[-1])
    sns.publish(TopicArn=topic, Message="to the wrong environment")

    def unhealthy() -> str | None:
        shown = sns.get_platform_application_attributes(PlatformApplicationArn=app)
        reason: str | None = shown["Attributes"].get("DeliveryHealthReason")
        return reason

    assert wait_until(unhealthy) == "BadDeviceToken for every token"
    for target in targets:
        assert sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]["Enabled"] == "true"


def test_an_unreachable_provider_is_retried_and_explained(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = apns_app(sns, fakes)
    fakes.apns.script(status=None, drop_connection=True, times=1)
    (item,) = settled(server, _publish(sns, endpoint(sns, app, apns_token()), "x"))["items"]
    assert (item["state"], item["attempts"]) == ("sent", 2)
    assert "provider did not answer" in server.log()


def test_throttling_is_retried_with_backoff(server: Server, sns: Any, fakes: FakeProviders) -> None:
    app, _ = fcm_app(sns, fakes)
    target = endpoint(sns, app, fcm_token())
    fakes.fcm.script(status=429, error_code="QUOTA_EXCEEDED", retry_after=1, times=1)
    message_id = _publish(sns, target, "slow down")
    (item,) = settled(server, message_id)["items"]
    assert (item["state"], item["attempts"]) == ("sent", 2)
    first, second = fakes.fcm.received
    assert (first.status, second.status) == (429, 200)


def test_server_errors_are_retried(server: Server, sns: Any, fakes: FakeProviders) -> None:
    app = apns_app(sns, fakes)
    fakes.apns.script(status=503, reason="ServiceUnavailable", times=1)
    (item,) = settled(server, _publish(sns, endpoint(sns, app, apns_token()), "x"))["items"]
    assert (item["state"], item["attempts"]) == ("sent", 2)
    first, second = fakes.apns.received
    assert (first.status, second.status) == (503, 200)
    assert first.headers["apns-id"] == second.headers["apns-id"]  # one id per delivery


def test_a_payload_apns_refuses_fails_without_disabling(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = apns_app(sns, fakes)
    target = endpoint(sns, app, apns_token())
    big = json.dumps({"APNS": json.dumps({"aps": {"alert": "x" * 5000}})})
    (item,) = settled(server, _publish(sns, target, big, MessageStructure="json"))["items"]
    assert item["state"] == "failed" and "PayloadTooLarge" in item["reason"]
    assert fakes.apns.received == []  # refused before sending
    assert sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]["Enabled"] == "true"


def test_an_idempotency_key_makes_a_retried_publish_a_no_op(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = apns_app(sns, fakes)
    target = endpoint(sns, app, apns_token())
    key = _mobile({"pushgate.IdempotencyKey": unique("idem")})
    first = _publish(sns, target, "once", MessageAttributes=key)
    second = _publish(sns, target, "once", MessageAttributes=key)
    assert first == second
    long_key = _mobile({"pushgate.IdempotencyKey": "k" * 5000})  # any length is a key
    assert _publish(sns, target, "long", MessageAttributes=long_key) == _publish(
        sns, target, "long", MessageAttributes=long_key
    )
    fakes.apns.wait_for(2)
    settled(server, first)
    assert len(fakes.apns.received) == 2


# --- visibility -----------------------------------------------------------------------


def test_message_status_needs_credentials_and_knows_unknown_ids(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/messages/nope")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    wrong = httpx.get(f"{server.url}/v1/messages/nope", auth=("AKIAWHATEVER", "wrong"))
    assert wrong.status_code == 401
    with pytest.raises(httpx.HTTPStatusError) as raised:
        status(server, "00000000-0000-0000-0000-000000000000")
    assert raised.value.response.status_code == 404
    assert raised.value.response.json()["title"] == "Not Found"


def test_messages_show_prints_the_deliveries(
    server: Server, sns: Any, fakes: FakeProviders, tmp_path: Path
) -> None:
    app = apns_app(sns, fakes)
    target = endpoint(sns, app, apns_token())
    message_id = _publish(sns, target, "shown")
    settled(server, message_id)
    shown = subprocess.run(
        [sys.executable, "-m", "pushgate.cli", "messages", "show", message_id, "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(shown.stdout)
    assert result["messageId"] == message_id
    assert result["items"][0]["endpoint"] == target
    assert result["items"][0]["state"] == "sent"
