"""The MPNS client: the sec. 4.4 table, headers, client certificates, and the fake over TLS."""

from __future__ import annotations

import uuid

import pytest

from pushgate.fakes.mpns import FakeMpns
from pushgate.fakes.runner import FakeProviders
from pushgate.providers.mpns import (
    INACTIVE_WAIT,
    MpnsClient,
    build_headers,
    classify,
    seconds_to_utc_midnight,
)
from pushgate.providers.notifications import MpnsNotification, Notification, WnsNotification
from pushgate.providers.outcomes import Outcome, SendResult
from pushgate.providers.transport import Http2Transport
from tests.providers import response

HEAD = b'<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
TOAST = HEAD + b"<wp:Toast><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>"
TILE = HEAD + b"<wp:Tile><wp:Count>1</wp:Count></wp:Tile></wp:Notification>"
NOTE = MpnsNotification(TOAST, "toast", 2)
MIDNIGHT = 1_800_000_000 - 1_800_000_000 % 86400  # a UTC midnight


# --- the sec. 4.4 table (pure) -------------------------------------------------------------------


def status(
    code: int, notification: str | None = None, subscription: str | None = None
) -> dict[str, str]:
    headers = {}
    if notification is not None:
        headers["X-NotificationStatus"] = notification
    if subscription is not None:
        headers["X-SubscriptionStatus"] = subscription
    return headers


@pytest.mark.parametrize(
    ("code", "headers", "outcome", "reason", "retry_after"),
    [
        (200, status(200, "Received"), Outcome.SUCCESS, "", None),
        (200, status(200, "Suppressed"), Outcome.SUCCESS, "", None),
        (200, status(200, "QueueFull"), Outcome.RETRY_BACKOFF, "QueueFull", 60.0),
        (200, {}, Outcome.SUCCESS, "", None),
        (400, {}, Outcome.FAIL_PERMANENT, "BadRequest", None),
        (401, {}, Outcome.CONFIG_ERROR, "Unauthorized", None),
        (
            404,
            status(404, "Dropped", "Expired"),
            Outcome.DISABLE_ENDPOINT,
            "SubscriptionExpired",
            None,
        ),
        (
            404,
            status(404, "Dropped", "expired"),
            Outcome.DISABLE_ENDPOINT,
            "SubscriptionExpired",
            None,
        ),
        (404, status(404, "Dropped", "Active"), Outcome.FAIL_PERMANENT, "NotFound", None),
        (404, {}, Outcome.FAIL_PERMANENT, "NotFound", None),
        (405, {}, Outcome.FAIL_PERMANENT, "MethodNotAllowed", None),
        (406, status(406, "Dropped"), Outcome.RETRY_AFTER, "DailyQuotaExceeded", 3600.0),
        (412, status(412, "Dropped"), Outcome.RETRY_BACKOFF, "DeviceInactive", INACTIVE_WAIT),
        (503, {}, Outcome.RETRY_BACKOFF, "ServiceUnavailable", None),
        (500, {}, Outcome.RETRY_BACKOFF, "HTTP500", None),
        (409, {}, Outcome.FAIL_PERMANENT, "HTTP409", None),
    ],
)
def test_classify(
    code: int,
    headers: dict[str, str],
    outcome: Outcome,
    reason: str,
    retry_after: float | None,
) -> None:
    result = classify(response(code, headers=headers), now=MIDNIGHT - 3600)
    assert (result.outcome, result.status, result.reason, result.retry_after) == (
        outcome,
        code,
        reason,
        retry_after,
    )


def test_a_quota_waits_for_the_next_utc_midnight() -> None:
    assert seconds_to_utc_midnight(MIDNIGHT) == 86400
    assert seconds_to_utc_midnight(MIDNIGHT - 0.25) == 1.0
    result = classify(response(406), now=MIDNIGHT + 60)
    assert result.retry_after == 86400 - 60


def test_retry_after_is_honoured() -> None:
    result = classify(response(503, retry_after=30.0))
    assert (result.outcome, result.retry_after) == (Outcome.RETRY_AFTER, 30.0)
    assert classify(response(412, retry_after=7200.0)).retry_after == 7200.0
    assert classify(response(400, retry_after=30.0)).retry_after is None


def test_status_headers_are_the_response_text() -> None:
    headers = {
        "X-NotificationStatus": "Dropped",
        "X-DeviceConnectionStatus": "Connected",
        "X-SubscriptionStatus": "Expired",
        "X-MessageID": "m",
    }
    assert classify(response(404, headers=headers)).response == (
        "x-notificationstatus: Dropped\nx-deviceconnectionstatus: Connected\n"
        "x-subscriptionstatus: Expired\nx-messageid: m"
    )


def test_no_answer() -> None:
    result = classify(response(0, error="could not resolve host"))
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, "NoResponse")


@pytest.mark.parametrize(
    ("note", "lines"),
    [
        (NOTE, ["x-windowsphone-target: toast", "x-notificationclass: 2"]),
        (
            MpnsNotification(TILE, "token", 21),
            ["x-windowsphone-target: token", "x-notificationclass: 21"],
        ),
        (MpnsNotification(b"raw", None, 13), ["x-notificationclass: 13"]),
    ],
)
def test_headers(note: MpnsNotification, lines: list[str]) -> None:
    assert build_headers(note) == ("content-type: text/xml", *lines, "expect:", "accept:")


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (MpnsNotification(b"x" * 3073, None, 3), "PayloadTooLarge"),
        (MpnsNotification(TOAST, "toast", 1), "InvalidNotificationClass"),
        (MpnsNotification(TOAST, None, 2), "InvalidNotificationClass"),
        (MpnsNotification(TOAST, "toast", 4), "InvalidNotificationClass"),
    ],
)
def test_unsendable(note: MpnsNotification, reason: str) -> None:
    result = build_headers(note)
    assert isinstance(result, SendResult)
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, reason)


def test_certificate_needs_its_key(transport: Http2Transport) -> None:
    with pytest.raises(ValueError):
        MpnsClient(transport, [], certificate_pem="cert")
    with pytest.raises(ValueError):
        MpnsClient(transport, [], private_key_pem="key")


# --- against the fake ----------------------------------------------------------------------------


@pytest.fixture
def client(mpns: FakeMpns, transport: Http2Transport) -> MpnsClient:
    return MpnsClient(transport, [mpns.allowed_host])


@pytest.fixture
def channel(mpns: FakeMpns) -> str:
    return mpns.create_channel()


async def test_success_and_the_exact_request(
    mpns: FakeMpns, client: MpnsClient, channel: str
) -> None:
    message_id = str(uuid.uuid4())
    [result] = await client.send_many([(channel, NOTE)], [message_id])
    assert (result.outcome, result.status) == (Outcome.SUCCESS, 200)
    assert f"x-messageid: {message_id}" in result.response
    [record] = mpns.delivered
    assert record.body == TOAST and record.certificate_subject is None
    headers = {k: v for k, v in record.headers.items() if not k.startswith(":")}
    assert headers == {
        "host": mpns.allowed_host,
        "user-agent": "pushgate",
        "content-type": "text/xml",
        "content-length": str(len(TOAST)),
        "x-windowsphone-target": "toast",
        "x-notificationclass": "2",
        "x-messageid": message_id,
    }


async def test_fan_out_in_order(mpns: FakeMpns, client: MpnsClient) -> None:
    channels = [mpns.create_channel() for _ in range(4)]
    mpns.set_channel_state(channels[1], "expired")
    mpns.set_channel_state(channels[2], "inactive")
    tile = MpnsNotification(TILE, "token", 1)
    items: list[tuple[str, Notification]] = [
        (channels[0], tile),
        (channels[1], NOTE),
        (channels[2], NOTE),
        (channels[3], NOTE),
    ]
    items.append((channels[0], WnsNotification("wns/raw", b"")))
    results = await client.send_many(items, ["not-a-uuid"] * len(items))
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.SUCCESS, ""),
        (Outcome.DISABLE_ENDPOINT, "SubscriptionExpired"),
        (Outcome.RETRY_BACKOFF, "DeviceInactive"),
        (Outcome.SUCCESS, ""),
        (Outcome.FAIL_PERMANENT, "WrongPlatform"),
    ]
    assert results[2].retry_after == INACTIVE_WAIT
    assert all("x-messageid" not in r.headers for r in mpns.received)  # ids were no UUIDs


async def test_queue_full_suppressed_and_quota(
    mpns: FakeMpns, client: MpnsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    full, quiet, limited = (mpns.create_channel() for _ in range(3))
    mpns.set_channel_state(full, "queue_full")
    mpns.set_channel_state(quiet, "suppressed")
    monkeypatch.setattr(mpns, "daily_quota", 1)
    await client.send_many([(limited, NOTE)])
    results = await client.send_many([(full, NOTE), (quiet, NOTE), (limited, NOTE)])
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.RETRY_BACKOFF, "QueueFull"),
        (Outcome.SUCCESS, ""),
        (Outcome.RETRY_AFTER, "DailyQuotaExceeded"),
    ]
    assert results[0].retry_after == 60.0
    assert results[2].retry_after is not None and 1 <= results[2].retry_after <= 86400


async def test_bad_request(mpns: FakeMpns, client: MpnsClient, channel: str) -> None:
    [result] = await client.send_many([(channel, MpnsNotification(TILE, "toast", 2))])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.FAIL_PERMANENT,
        400,
        "BadRequest",
    )


async def test_authenticated_service(mpns: FakeMpns, transport: Http2Transport) -> None:
    cert, key = mpns.create_service()
    channel = mpns.create_channel(cert)
    authenticated = MpnsClient(
        transport, [mpns.allowed_host], certificate_pem=cert, private_key_pem=key
    )
    [result] = await authenticated.send_many([(channel, NOTE)])
    assert result.outcome is Outcome.SUCCESS
    assert mpns.delivered[0].certificate_subject == "CN=pushgate-mpns,UID=pushgate-mpns"
    anonymous = MpnsClient(transport, [mpns.allowed_host])
    [refused] = await anonymous.send_many([(channel, NOTE)])
    assert (refused.outcome, refused.status, refused.reason) == (
        Outcome.CONFIG_ERROR,
        401,
        "Unauthorized",
    )
    other_cert, other_key = mpns.create_service("other")
    wrong = MpnsClient(
        transport, [mpns.allowed_host], certificate_pem=other_cert, private_key_pem=other_key
    )
    assert (await wrong.send_many([(channel, NOTE)]))[0].outcome is Outcome.CONFIG_ERROR


@pytest.mark.parametrize(
    ("code", "retry_after", "outcome"),
    [
        (503, None, Outcome.RETRY_BACKOFF),
        (503, 45.0, Outcome.RETRY_AFTER),
        (405, None, Outcome.FAIL_PERMANENT),
    ],
)
async def test_scripted_failures(
    mpns: FakeMpns,
    client: MpnsClient,
    channel: str,
    code: int,
    retry_after: float | None,
    outcome: Outcome,
) -> None:
    mpns.script(code, retry_after=retry_after)
    [result] = await client.send_many([(channel, NOTE)])
    assert (result.outcome, result.status, result.retry_after) == (outcome, code, retry_after)


async def test_404_without_expired_keeps_the_endpoint(
    mpns: FakeMpns, client: MpnsClient, channel: str
) -> None:
    mpns.script(404, subscription_status="Active")
    [result] = await client.send_many([(channel, NOTE)])
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "NotFound")


async def test_dropped_connection(mpns: FakeMpns, client: MpnsClient, channel: str) -> None:
    mpns.script(drop_connection=True)
    [result] = await client.send_many([(channel, NOTE)])
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, "NoResponse")


async def test_payload_too_large_is_refused_locally(
    mpns: FakeMpns, client: MpnsClient, channel: str
) -> None:
    [result] = await client.send_many([(channel, MpnsNotification(b"x" * 3073, None, 3))])
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "PayloadTooLarge")
    assert mpns.received == []


async def test_channels_off_the_allow_list_are_never_requested(
    fakes: FakeProviders, mpns: FakeMpns, client: MpnsClient, channel: str
) -> None:
    elsewhere = FakeMpns(fakes.ca)
    await elsewhere.start()
    try:
        items = [
            (elsewhere.create_channel(), NOTE),
            ("http://169.254.169.254/throttledthirdparty/01.00/x", NOTE),
            ("ftp://" + mpns.allowed_host + "/throttledthirdparty/01.00/x", NOTE),
            (channel, NOTE),
        ]
        results = await client.send_many(items)
        assert elsewhere.received == []
    finally:
        await elsewhere.aclose()
    assert [(r.outcome, r.reason) for r in results[:3]] == [
        (Outcome.FAIL_PERMANENT, "ForbiddenChannelHost")
    ] * 3
    assert results[0].response == f"host {elsewhere.allowed_host} is not on the allow-list"
    assert results[1].response == "host 169.254.169.254:80 is not on the allow-list"
    assert results[2].response == "not an http or https URL"
    assert results[3].outcome is Outcome.SUCCESS
    assert len(mpns.received) == 1
