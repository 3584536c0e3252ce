"""The Baidu client: the sec. 5.3 table, and sends to the strict fake over real TLS."""

from __future__ import annotations

import json
import logging
import time

import pytest

from pushgate.fakes.baidu import FakeBaidu
from pushgate.fakes.state import RateLimiter
from pushgate.providers.baidu import (
    ERROR_CODES,
    MSG_LIMIT,
    USER_AGENT,
    BaiduClient,
    classify,
)
from pushgate.providers.notifications import BaiduNotification, FcmNotification
from pushgate.providers.outcomes import NO_RESPONSE, Outcome
from pushgate.providers.transport import Http2Transport
from tests.providers import response

CHANNEL = "3868470218571374398"
OTHER = "4000000000000000001"
ANDROID = BaiduNotification(
    msg='{"title":"","description":"hello"}', msg_type=1, msg_expires=604800
)
IOS = BaiduNotification(
    msg='{"aps":{"alert":"hi"}}', msg_type=1, msg_expires=60, device_type=4, deploy_status=2
)


def error_body(code: int, message: str = "x") -> bytes:
    return json.dumps({"request_id": 1, "error_code": code, "error_msg": message}).encode()


# -- classify (sec. 5.3) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        pytest.param(30600, Outcome.RETRY_BACKOFF, id="30600-internal"),
        pytest.param(30601, Outcome.FAIL_PERMANENT, id="30601-method"),
        pytest.param(30602, Outcome.FAIL_PERMANENT, id="30602-params"),
        pytest.param(30603, Outcome.CONFIG_ERROR, id="30603-auth"),
        pytest.param(30604, Outcome.CONFIG_ERROR, id="30604-quota"),
        pytest.param(30605, Outcome.FAIL_PERMANENT, id="30605-data"),
        pytest.param(30606, Outcome.REFRESH_AUTH, id="30606-time"),
        pytest.param(30607, Outcome.DISABLE_ENDPOINT, id="30607-channel-timeout"),
        pytest.param(30608, Outcome.DISABLE_ENDPOINT, id="30608-bind-not-found"),
        pytest.param(30609, Outcome.FAIL_PERMANENT, id="30609-bind-number"),
        pytest.param(30610, Outcome.FAIL_PERMANENT, id="30610-duplicate"),
        pytest.param(30611, Outcome.FAIL_PERMANENT, id="30611-group"),
        pytest.param(30612, Outcome.CONFIG_ERROR, id="30612-whitelist"),
        pytest.param(30613, Outcome.CONFIG_ERROR, id="30613-not-inited"),
        pytest.param(30614, Outcome.FAIL_PERMANENT, id="30614-tags-user"),
        pytest.param(30615, Outcome.FAIL_PERMANENT, id="30615-tags-app"),
        pytest.param(30699, Outcome.RETRY_BACKOFF, id="30699-frequency"),
        pytest.param(31999, Outcome.FAIL_PERMANENT, id="unknown-code"),
    ],
)
def test_classify_error_codes(code: int, outcome: Outcome) -> None:
    result = classify(response(400, error_body(code)))
    assert (result.outcome, result.status, result.reason) == (outcome, 400, str(code))
    assert result.retry_after is None
    assert result.response == error_body(code).decode()


def test_every_table_row_is_tested() -> None:
    assert set(ERROR_CODES) == {*range(30600, 30616), 30699}


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ("Request Params Not Valid, channel_id is invalid", Outcome.DISABLE_ENDPOINT),
        ("Request Params Not Valid, CHANNEL_ID invalid", Outcome.DISABLE_ENDPOINT),
        ("Request Params Not Valid, msg_type is invalid", Outcome.FAIL_PERMANENT),
    ],
)
def test_classify_30602_naming_channel_id(message: str, outcome: Outcome) -> None:
    assert classify(response(400, error_body(30602, message))).outcome is outcome


def test_classify_success() -> None:
    body = b'{"request_id":1,"response_params":{"msg_id":"1","send_time":2}}'
    result = classify(response(200, body))
    assert (result.outcome, result.status, result.reason) == (Outcome.SUCCESS, 200, "")


def test_classify_error_code_in_a_200_is_still_an_error() -> None:
    assert classify(response(200, error_body(30608))).outcome is Outcome.DISABLE_ENDPOINT


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (500, Outcome.RETRY_BACKOFF),
        (502, Outcome.RETRY_BACKOFF),
        (503, Outcome.RETRY_BACKOFF),
        (429, Outcome.RETRY_BACKOFF),
        (404, Outcome.FAIL_PERMANENT),
        (400, Outcome.FAIL_PERMANENT),
    ],
)
def test_classify_without_a_baidu_body(status: int, outcome: Outcome) -> None:
    result = classify(response(status, b"<html>Bad Gateway</html>"))
    assert (result.outcome, result.reason) == (outcome, f"HTTP{status}")


def test_classify_retry_after_makes_retryable_answers_retry_after() -> None:
    result = classify(response(503, error_body(30699), retry_after=30.0))
    assert (result.outcome, result.retry_after) == (Outcome.RETRY_AFTER, 30.0)
    result = classify(response(502, b"", retry_after=5.0))
    assert (result.outcome, result.retry_after) == (Outcome.RETRY_AFTER, 5.0)
    result = classify(response(401, error_body(30603), retry_after=5.0))
    assert (result.outcome, result.retry_after) == (Outcome.CONFIG_ERROR, None)


def test_classify_no_response() -> None:
    result = classify(response(0, error="Connection refused"))
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, NO_RESPONSE)


# -- against the fake ---------------------------------------------------------------------


@pytest.fixture
def app(baidu: FakeBaidu) -> tuple[str, str]:
    """An application (API key, secret key); its devices CHANNEL and OTHER are active."""
    baidu.register_channel(CHANNEL)
    baidu.register_channel(OTHER)
    return baidu.create_app()


@pytest.fixture
def client(baidu: FakeBaidu, app: tuple[str, str], transport: Http2Transport) -> BaiduClient:
    return BaiduClient(baidu.url, app[0], app[1], transport)


async def test_success_sends_the_exact_request(
    baidu: FakeBaidu, app: tuple[str, str], transport: Http2Transport
) -> None:
    now = time.time()
    client = BaiduClient(baidu.url + "/", app[0], app[1], transport, clock=lambda: now)
    [result] = await client.send_many([(CHANNEL, ANDROID)])
    assert (result.outcome, result.status, result.reason) == (Outcome.SUCCESS, 200, "")
    [push] = baidu.delivered
    assert json.loads(result.response)["response_params"]["msg_id"] == push.msg_id
    assert push.path == "/rest/3.0/push/single_device"
    assert push.url == f"https://127.0.0.1:{baidu.port}/rest/3.0/push/single_device"
    assert push.headers["content-type"] == "application/x-www-form-urlencoded;charset=utf-8"
    assert push.headers["user-agent"] == USER_AGENT
    assert (
        USER_AGENT.startswith("BCCS_SDK/3.0 (") and "(Baidu Push Server SDK V3.0.0)" in USER_AGENT
    )
    assert "expect" not in push.headers
    assert {name: value for name, value in push.params.items() if name != "sign"} == {
        "apikey": app[0],
        "timestamp": str(int(now)),
        "channel_id": CHANNEL,
        "msg_type": "1",
        "msg": ANDROID.msg,
        "msg_expires": "604800",
    }
    assert len(push.params["sign"]) == 32


async def test_ios_notification_parameters(baidu: FakeBaidu, client: BaiduClient) -> None:
    [result] = await client.send_many([(CHANNEL, IOS)])
    assert result.outcome is Outcome.SUCCESS
    params = baidu.delivered[0].params
    assert (params["device_type"], params["deploy_status"]) == ("4", "2")
    assert (params["msg_type"], params["msg_expires"]) == ("1", "60")


async def test_pass_through_message(baidu: FakeBaidu, client: BaiduClient) -> None:
    raw = BaiduNotification(msg="sync now ~ & = +", msg_type=0)
    [result] = await client.send_many([(CHANNEL, raw)])
    assert result.outcome is Outcome.SUCCESS
    params = baidu.delivered[0].params
    assert (params["msg"], params["msg_type"]) == ("sync now ~ & = +", "0")
    assert "msg_expires" not in params


async def test_fan_out_in_order_with_local_refusals(baidu: FakeBaidu, client: BaiduClient) -> None:
    fcm = FcmNotification({"data": {"k": "v"}})
    results = await client.send_many(
        [
            (CHANNEL, ANDROID),
            ("no digits here", ANDROID),
            (f"user-17|{OTHER}", ANDROID),
            (CHANNEL, fcm),
            ("5555", ANDROID),  # not registered
        ]
    )
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.SUCCESS, ""),
        (Outcome.FAIL_PERMANENT, "InvalidChannelId"),
        (Outcome.SUCCESS, ""),
        (Outcome.FAIL_PERMANENT, "WrongPlatform"),
        (Outcome.DISABLE_ENDPOINT, "30608"),
    ]
    assert sorted(push.channel_id or "" for push in baidu.received) == sorted(
        [CHANNEL, OTHER, "5555"]
    )
    signs = {push.params["sign"] for push in baidu.received}
    assert len(signs) == 3  # signed per channel


async def test_expired_channel_disables(baidu: FakeBaidu, client: BaiduClient) -> None:
    baidu.register_channel(OTHER, "expired")
    [result] = await client.send_many([(OTHER, ANDROID)])
    assert (result.outcome, result.reason, result.status) == (
        Outcome.DISABLE_ENDPOINT,
        "30607",
        400,
    )


async def test_wrong_secret_is_config_error_for_every_item(
    baidu: FakeBaidu, app: tuple[str, str], transport: Http2Transport
) -> None:
    client = BaiduClient(baidu.url, app[0], "NOT-THE-SECRET", transport)
    results = await client.send_many([(CHANNEL, ANDROID), (OTHER, IOS)])
    assert [(r.outcome, r.reason) for r in results] == [(Outcome.CONFIG_ERROR, "30603")] * 2
    assert all("NOT-THE-SECRET" not in r.response for r in results)
    assert "NOT-THE-SECRET" not in repr(client)


async def test_unknown_api_key_is_config_error(baidu: FakeBaidu, transport: Http2Transport) -> None:
    client = BaiduClient(baidu.url, "unknown-key", "secret", transport)
    [result] = await client.send_many([(CHANNEL, ANDROID)])
    assert (result.outcome, result.reason) == (Outcome.CONFIG_ERROR, "30603")


async def test_quota_used_up_is_config_error(
    baidu: FakeBaidu, app: tuple[str, str], client: BaiduClient
) -> None:
    baidu.set_quota_exhausted(app[0])
    [result] = await client.send_many([(CHANNEL, ANDROID)])
    assert (result.outcome, result.reason) == (Outcome.CONFIG_ERROR, "30604")


async def test_too_frequent_is_retry_backoff(
    baidu: FakeBaidu, client: BaiduClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(baidu, "frequency_limit", RateLimiter(1, 3600))
    first, second = await client.send_many([(CHANNEL, ANDROID), (CHANNEL, ANDROID)])
    outcomes = sorted([first.outcome, second.outcome])
    assert outcomes == sorted([Outcome.SUCCESS, Outcome.RETRY_BACKOFF])
    throttled = first if first.outcome is Outcome.RETRY_BACKOFF else second
    assert (throttled.reason, throttled.retry_after) == ("30699", None)


async def test_throttling_with_retry_after(baidu: FakeBaidu, client: BaiduClient) -> None:
    baidu.script(30699, status=429, retry_after=12)
    [result] = await client.send_many([(CHANNEL, ANDROID)])
    assert (result.outcome, result.reason, result.retry_after) == (
        Outcome.RETRY_AFTER,
        "30699",
        12.0,
    )


async def test_internal_error_is_retry_backoff(baidu: FakeBaidu, client: BaiduClient) -> None:
    baidu.script(30600, status=503)
    [result] = await client.send_many([(CHANNEL, ANDROID)])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.RETRY_BACKOFF,
        503,
        "30600",
    )


async def test_dropped_connection_is_no_response(baidu: FakeBaidu, client: BaiduClient) -> None:
    baidu.script(None, drop_connection=True)
    [result] = await client.send_many([(CHANNEL, ANDROID)])
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, NO_RESPONSE)


async def test_refused_time_is_resigned_once_with_a_fresh_timestamp(
    baidu: FakeBaidu, app: tuple[str, str], transport: Http2Transport
) -> None:
    times = iter([time.time() - 3600, time.time()])  # the first one is an hour late
    client = BaiduClient(baidu.url, app[0], app[1], transport, clock=lambda: next(times))
    first, second = await client.send_many([(CHANNEL, ANDROID), (OTHER, ANDROID)])
    assert (first.outcome, second.outcome) == (Outcome.SUCCESS, Outcome.SUCCESS)
    refused = [push for push in baidu.received if push.error_code == 30606]
    assert len(refused) == 2 and len(baidu.delivered) == 2
    assert {push.params["timestamp"] for push in refused}.isdisjoint(
        {push.params["timestamp"] for push in baidu.delivered}
    )


async def test_refused_time_twice_is_config_error(
    baidu: FakeBaidu,
    app: tuple[str, str],
    transport: Http2Transport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = BaiduClient(baidu.url, app[0], app[1], transport, clock=lambda: time.time() - 3600)
    with caplog.at_level(logging.WARNING, logger="pushgate.providers.baidu"):
        [result] = await client.send_many([(CHANNEL, ANDROID)])
    assert (result.outcome, result.reason) == (Outcome.CONFIG_ERROR, "30606")
    assert [push.error_code for push in baidu.received] == [30606, 30606]
    assert "clock" in caplog.text
    assert app[1] not in caplog.text


async def test_payload_too_large_is_refused_locally(baidu: FakeBaidu, client: BaiduClient) -> None:
    big = BaiduNotification(msg="é" * (MSG_LIMIT // 2 + 1), msg_type=0)  # 4098 bytes
    just = BaiduNotification(msg="x" * MSG_LIMIT, msg_type=0)
    too_big, fits = await client.send_many([(CHANNEL, big), (CHANNEL, just)])
    assert (too_big.outcome, too_big.reason) == (Outcome.FAIL_PERMANENT, "PayloadTooLarge")
    assert fits.outcome is Outcome.SUCCESS
    assert len(baidu.received) == 1


async def test_invalid_messages_are_refused_locally(baidu: FakeBaidu, client: BaiduClient) -> None:
    empty = BaiduNotification(msg="", msg_type=0)
    surrogate = BaiduNotification(msg="\ud800", msg_type=0)
    ttl = BaiduNotification(msg="x", msg_type=0, msg_expires=604801)
    results = await client.send_many([(CHANNEL, empty), (CHANNEL, surrogate), (CHANNEL, ttl)])
    assert [r.reason for r in results] == ["InvalidMessage", "InvalidMessage", "InvalidExpiration"]
    assert baidu.received == []


async def test_msg_expires_is_what_remains_of_the_ttl(
    baidu: FakeBaidu, app: tuple[str, str], transport: Http2Transport
) -> None:
    now = time.time()
    client = BaiduClient(baidu.url, app[0], app[1], transport, clock=lambda: now)
    waited = BaiduNotification(msg="x", msg_type=0, msg_expires=3600, expires_at=now + 600.5)
    [result] = await client.send_many([(CHANNEL, waited)])
    assert result.outcome is Outcome.SUCCESS
    assert baidu.delivered[0].params["msg_expires"] == "600"


async def test_no_items(client: BaiduClient) -> None:
    assert await client.send_many([]) == []
    await client.close()
