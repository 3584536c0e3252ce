"""The WNS client: the sec. 4.3 table, headers, the token cache, and the fake over real TLS."""

from __future__ import annotations

import logging

import pytest

from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from pushgate.fakes.wns import FakeWns
from pushgate.providers.notifications import FcmNotification, Notification, WnsNotification
from pushgate.providers.oauth import ClientCredentialsCache
from pushgate.providers.outcomes import Outcome, SendResult
from pushgate.providers.transport import Http2Transport
from pushgate.providers.wns import STATUSES, WnsClient, build_headers, classify
from tests.providers import response

TOAST = (
    b'<toast><visual><binding template="ToastGeneric"><text>hi</text></binding></visual></toast>'
)
NOTE = WnsNotification(kind="wns/toast", body=TOAST)


# --- the sec. 4.3 table (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (400, Outcome.FAIL_PERMANENT, "BadRequest"),
        (401, Outcome.REFRESH_AUTH, "Unauthorized"),
        (403, Outcome.DISABLE_ENDPOINT, "ChannelNotOwned"),
        (404, Outcome.DISABLE_ENDPOINT, "ChannelNotFound"),
        (405, Outcome.FAIL_PERMANENT, "MethodNotAllowed"),
        (406, Outcome.RETRY_BACKOFF, "Throttled"),
        (410, Outcome.DISABLE_ENDPOINT, "ChannelExpired"),
        (413, Outcome.FAIL_PERMANENT, "PayloadTooLarge"),
        (500, Outcome.RETRY_BACKOFF, "InternalServerError"),
        (503, Outcome.RETRY_BACKOFF, "ServiceUnavailable"),
        (418, Outcome.FAIL_PERMANENT, "HTTP418"),
        (429, Outcome.RETRY_BACKOFF, "HTTP429"),
        (502, Outcome.RETRY_BACKOFF, "HTTP502"),
    ],
)
def test_classify_status(status: int, outcome: Outcome, reason: str) -> None:
    result = classify(response(status))
    assert (result.outcome, result.reason, result.status, result.retry_after) == (
        outcome,
        reason,
        status,
        None,
    )
    assert STATUSES.get(status, (outcome, reason)) == (outcome, reason)


@pytest.mark.parametrize(
    ("headers", "outcome", "reason"),
    [
        ({"X-WNS-Status": "received"}, Outcome.SUCCESS, ""),
        ({"X-WNS-NotificationStatus": "dropped"}, Outcome.SUCCESS, ""),
        (
            {"x-wns-notificationstatus": "ChannelThrottled"},
            Outcome.RETRY_BACKOFF,
            "ChannelThrottled",
        ),
        ({"X-WNS-Status": "channelthrottled"}, Outcome.RETRY_BACKOFF, "ChannelThrottled"),
        ({}, Outcome.SUCCESS, ""),
        ({"X-WNS-Status": "somethingnew"}, Outcome.SUCCESS, ""),
    ],
)
def test_classify_200(headers: dict[str, str], outcome: Outcome, reason: str) -> None:
    result = classify(response(200, headers=headers))
    assert (result.outcome, result.reason) == (outcome, reason)


def test_retry_after_makes_a_backoff_a_retry_after() -> None:
    for status in (406, 503, 500):
        result = classify(response(status, retry_after=30.0))
        assert (result.outcome, result.retry_after) == (Outcome.RETRY_AFTER, 30.0)
    assert classify(response(404, retry_after=30.0)).retry_after is None


def test_error_description_heads_the_response_text() -> None:
    headers = {
        "X-WNS-Msg-ID": "1",
        "X-WNS-Error-Description": "Invalid type",
        "X-WNS-Debug-Trace": "DB5",
    }
    result = classify(response(400, b"body", headers=headers))
    assert result.response == (
        "x-wns-error-description: Invalid type\nx-wns-msg-id: 1\nx-wns-debug-trace: DB5\nbody"
    )


def test_no_answer() -> None:
    result = classify(response(0, error="connection refused"))
    assert (result.outcome, result.reason, result.response) == (
        Outcome.RETRY_BACKOFF,
        "NoResponse",
        "connection refused",
    )


# --- headers (pure) ------------------------------------------------------------------------------


def test_headers_of_every_field() -> None:
    note = WnsNotification(
        kind="wns/toast",
        body=TOAST,
        cache_policy="cache",
        tag="t",
        group="g",
        ttl=60,
        suppress_popup=False,
    )
    assert build_headers(note, 0.0) == (
        "x-wns-type: wns/toast",
        "content-type: text/xml",
        "x-wns-cache-policy: cache",
        "x-wns-ttl: 60",
        "x-wns-tag: t",
        "x-wns-group: g",
        "x-wns-suppresspopup: false",
        "expect:",
        "accept:",
    )


def lines(note: WnsNotification, now: float) -> tuple[str, ...]:
    built = build_headers(note, now)
    assert isinstance(built, tuple)
    return built


def test_ttl_header_is_what_is_left() -> None:
    now = 1_000_000.0
    note = WnsNotification(kind="wns/raw", body=b"r", ttl=600, expires_at=now + 100.5)
    assert "x-wns-ttl: 101" in lines(note, now)
    assert "x-wns-ttl: 1" in lines(note, now + 500)  # the engine drops it first
    zero = WnsNotification(kind="wns/raw", body=b"r", ttl=0)
    assert "x-wns-ttl: 0" in lines(zero, now)
    assert "content-type: application/octet-stream" in lines(zero, now)


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (WnsNotification(kind="wns/raw", body=b"x" * 5001), "PayloadTooLarge"),
        (WnsNotification(kind="wns/push", body=b""), "InvalidType"),
        (WnsNotification(kind="wns/raw", body=b"", cache_policy="x"), "InvalidCachePolicy"),
        (WnsNotification(kind="wns/raw", body=b"", tag="x" * 17), "InvalidTag"),
        (WnsNotification(kind="wns/raw", body=b"", tag="a\r\nb: c"), "InvalidTag"),
        (WnsNotification(kind="wns/toast", body=b"", group="\u00e9"), "InvalidGroup"),
    ],
)
def test_unsendable_notifications(note: WnsNotification, reason: str) -> None:
    result = build_headers(note, 0.0)
    assert isinstance(result, SendResult)
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, reason)


# --- against the fake ----------------------------------------------------------------------------


@pytest.fixture
def app(wns: FakeWns) -> tuple[str, str]:
    return wns.create_app()


@pytest.fixture
def client(wns: FakeWns, app: tuple[str, str], transport: Http2Transport) -> WnsClient:
    return WnsClient(
        wns.token_url, *app, transport, [wns.allowed_host], token_cache=ClientCredentialsCache()
    )


@pytest.fixture
def channel(wns: FakeWns, app: tuple[str, str]) -> str:
    return wns.create_channel(app[0])


async def test_success_and_the_exact_request(
    wns: FakeWns, app: tuple[str, str], client: WnsClient, channel: str
) -> None:
    note = WnsNotification(
        kind="wns/toast",
        body=TOAST,
        cache_policy="cache",
        tag="t1",
        group="g",
        ttl=0,
        suppress_popup=True,
    )
    [result] = await client.send_many([(channel, note)])
    assert (result.outcome, result.status, result.reason) == (Outcome.SUCCESS, 200, "")
    assert "x-wns-status: received" in result.response
    [token_request] = wns.token_requests
    assert (token_request.client_id, token_request.scope) == (app[0], "notify.windows.com")
    [record] = wns.delivered
    assert record.body == TOAST
    assert record.package_sid == app[0]
    headers = {k: v for k, v in record.headers.items() if not k.startswith(":")}
    assert headers == {
        "host": wns.allowed_host,
        "user-agent": "pushgate",
        "authorization": f"Bearer {token_request.access_token}",
        "x-wns-type": "wns/toast",
        "content-type": "text/xml",
        "content-length": str(len(TOAST)),
        "x-wns-cache-policy": "cache",
        "x-wns-ttl": "0",
        "x-wns-tag": "t1",
        "x-wns-group": "g",
        "x-wns-suppresspopup": "true",
    }


async def test_large_raw_body_without_expect(wns: FakeWns, client: WnsClient, channel: str) -> None:
    note = WnsNotification(kind="wns/raw", body=b"\x00" * 5000)
    [result] = await client.send_many([(channel, note)])
    assert result.outcome is Outcome.SUCCESS
    [record] = wns.delivered
    assert "expect" not in record.headers and record.body == note.body
    assert record.headers["content-type"] == "application/octet-stream"


async def test_fan_out_takes_one_token_and_keeps_order(
    wns: FakeWns, app: tuple[str, str], client: WnsClient
) -> None:
    channels = [wns.create_channel(app[0]) for _ in range(6)]
    wns.set_channel_state(channels[2], "expired")
    items: list[tuple[str, Notification]] = [(uri, NOTE) for uri in channels]
    items.insert(1, (channels[0], FcmNotification({})))
    results = await client.send_many(items)
    assert [r.outcome for r in results] == [
        Outcome.SUCCESS,
        Outcome.FAIL_PERMANENT,
        Outcome.SUCCESS,
        Outcome.DISABLE_ENDPOINT,
        Outcome.SUCCESS,
        Outcome.SUCCESS,
        Outcome.SUCCESS,
    ]
    assert results[1].reason == "WrongPlatform"
    assert results[3].reason == "ChannelExpired"
    again = await client.send_many([(channels[0], NOTE)])
    assert again[0].outcome is Outcome.SUCCESS
    assert len(wns.token_requests) == 1
    assert len(wns.delivered) == 6


async def test_token_refreshed_once_after_a_401(
    wns: FakeWns, client: WnsClient, channel: str
) -> None:
    assert (await client.send_many([(channel, NOTE)]))[0].outcome is Outcome.SUCCESS
    wns.expire_access_tokens()
    results = await client.send_many([(channel, NOTE), (channel, NOTE)])
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert len(wns.token_requests) == 2
    assert [r.status for r in wns.received] == [200, 401, 401, 200, 200]


async def test_a_second_401_is_a_configuration_error(
    wns: FakeWns, client: WnsClient, channel: str
) -> None:
    wns.script(401, times=2)
    [result] = await client.send_many([(channel, NOTE)])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        401,
        "Unauthorized",
    )
    assert len(wns.token_requests) == 2
    assert len(wns.received) == 2


async def test_refused_credentials_fail_every_item_without_sending(
    wns: FakeWns, app: tuple[str, str], transport: Http2Transport, channel: str
) -> None:
    secret = "wrong-secret-value"
    client = WnsClient(
        wns.token_url,
        app[0],
        secret,
        transport,
        [wns.allowed_host],
        token_cache=ClientCredentialsCache(),
    )
    results = await client.send_many([(channel, NOTE), (channel, NOTE)])
    assert [(r.outcome, r.status, r.reason) for r in results] == [
        (Outcome.CONFIG_ERROR, 400, "invalid_client")
    ] * 2
    assert wns.received == []
    assert all(secret not in r.response for r in results)


async def test_channel_of_another_package(wns: FakeWns, client: WnsClient) -> None:
    other, _ = wns.create_app()
    [result] = await client.send_many([(wns.create_channel(other), NOTE)])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.DISABLE_ENDPOINT,
        403,
        "ChannelNotOwned",
    )
    assert result.response.startswith("x-wns-error-description: The cloud service is not")


async def test_unknown_and_expired_channels(
    wns: FakeWns, app: tuple[str, str], client: WnsClient
) -> None:
    unknown = wns.url + "/?token=never-minted"
    old = wns.create_channel(app[0])
    wns.set_channel_state(old, "expired")
    results = await client.send_many([(unknown, NOTE), (old, NOTE)])
    assert [(r.outcome, r.status, r.reason) for r in results] == [
        (Outcome.DISABLE_ENDPOINT, 404, "ChannelNotFound"),
        (Outcome.DISABLE_ENDPOINT, 410, "ChannelExpired"),
    ]


async def test_bad_request_keeps_the_description(
    wns: FakeWns, client: WnsClient, channel: str
) -> None:
    [result] = await client.send_many([(channel, WnsNotification(kind="wns/tile", body=TOAST))])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.FAIL_PERMANENT,
        400,
        "BadRequest",
    )
    assert result.response.splitlines()[0] == (
        "x-wns-error-description: The payload must be well-formed XML with a <tile> root."
    )


async def test_throttled_channel_and_dropped_notification(
    wns: FakeWns, app: tuple[str, str], client: WnsClient
) -> None:
    throttled, dropping = wns.create_channel(app[0]), wns.create_channel(app[0])
    wns.set_channel_state(throttled, "throttled")
    wns.set_channel_state(dropping, "dropping")
    results = await client.send_many([(throttled, NOTE), (dropping, NOTE)])
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.RETRY_BACKOFF, "ChannelThrottled"),
        (Outcome.SUCCESS, ""),
    ]


async def test_service_throttle_with_and_without_retry_after(
    wns: FakeWns,
    client: WnsClient,
    channel: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wns, "app_quota", RateLimiter(1, 3600.0))
    results = await client.send_many([(channel, NOTE)])
    results += await client.send_many([(channel, NOTE)])
    assert results[0].outcome is Outcome.SUCCESS
    assert (results[1].outcome, results[1].status, results[1].reason) == (
        Outcome.RETRY_AFTER,
        406,
        "Throttled",
    )
    assert results[1].retry_after is not None and results[1].retry_after >= 1
    monkeypatch.setattr(wns, "app_quota", None)
    wns.script(406)
    [plain] = await client.send_many([(channel, NOTE)])
    assert (plain.outcome, plain.retry_after) == (Outcome.RETRY_BACKOFF, None)


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "reason"),
    [
        (500, None, Outcome.RETRY_BACKOFF, "InternalServerError"),
        (503, None, Outcome.RETRY_BACKOFF, "ServiceUnavailable"),
        (503, 120.0, Outcome.RETRY_AFTER, "ServiceUnavailable"),
        (413, None, Outcome.FAIL_PERMANENT, "PayloadTooLarge"),
        (405, None, Outcome.FAIL_PERMANENT, "MethodNotAllowed"),
    ],
)
async def test_scripted_failures(
    wns: FakeWns,
    client: WnsClient,
    channel: str,
    status: int,
    retry_after: float | None,
    outcome: Outcome,
    reason: str,
) -> None:
    wns.script(status, retry_after=retry_after)
    [result] = await client.send_many([(channel, NOTE)])
    assert (result.outcome, result.status, result.reason, result.retry_after) == (
        outcome,
        status,
        reason,
        retry_after,
    )


async def test_dropped_connection(wns: FakeWns, client: WnsClient, channel: str) -> None:
    wns.script(drop_connection=True)
    [result] = await client.send_many([(channel, NOTE)])
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, "NoResponse")


async def test_payload_too_large_is_refused_locally(
    wns: FakeWns, client: WnsClient, channel: str
) -> None:
    [result] = await client.send_many([(channel, WnsNotification("wns/raw", b"x" * 5001))])
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "PayloadTooLarge")
    assert wns.received == [] and wns.token_requests == []


async def test_channels_off_the_allow_list_are_never_requested(
    fakes: FakeProviders, wns: FakeWns, app: tuple[str, str], client: WnsClient, channel: str
) -> None:
    elsewhere = FakeWns(fakes.ca)
    await elsewhere.start()
    try:
        elsewhere.register_app(*app)
        items = [
            (elsewhere.create_channel(app[0]), NOTE),
            ("https://169.254.169.254/latest/meta-data/?token=x", NOTE),
            (channel.replace("https://", "http://"), NOTE),
            ("https://user:pw@" + wns.allowed_host + "/?token=x", NOTE),
            ("not a url", NOTE),
            (channel, NOTE),
        ]
        results = await client.send_many(items)
        assert elsewhere.received == [] and elsewhere.token_requests == []
    finally:
        await elsewhere.aclose()
    assert [(r.outcome, r.reason) for r in results[:5]] == [
        (Outcome.FAIL_PERMANENT, "ForbiddenChannelHost")
    ] * 5
    assert results[0].response == f"host {elsewhere.allowed_host} is not on the allow-list"
    assert results[1].response == "host 169.254.169.254:443 is not on the allow-list"
    assert results[2].response == "not an https URL"
    assert results[3].response == "the URL carries credentials"
    assert results[5].outcome is Outcome.SUCCESS
    assert len(wns.received) == 1


async def test_nothing_to_send_takes_no_token(wns: FakeWns, client: WnsClient) -> None:
    results = await client.send_many([("https://evil.example/?token=x", NOTE)])
    assert results[0].reason == "ForbiddenChannelHost"
    assert wns.token_requests == []
    assert await client.send_many([]) == []


async def test_secrets_stay_out_of_logs(
    wns: FakeWns,
    app: tuple[str, str],
    client: WnsClient,
    channel: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.send_many([(channel, NOTE)])
    wns.expire_access_tokens()
    await client.send_many([(channel, NOTE)])  # a 401, a new token, a retry
    tokens = [r.access_token for r in wns.token_requests if r.access_token]
    assert len(tokens) == 2
    assert "wns access token obtained" in caplog.text
    for secret in (app[1], *tokens, channel):
        assert secret not in caplog.text
