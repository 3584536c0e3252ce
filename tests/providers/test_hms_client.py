"""The HMS Push Kit client: the sec. 7.3 table, bodies, and the OAuth token flow against the
strict fake over real TLS sockets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pushgate.fakes.hms import FakeHms
from pushgate.fakes.state import RateLimiter
from pushgate.providers.hms import CODES, HmsClient, build_template, classify
from pushgate.providers.notifications import AdmNotification, HmsNotification
from pushgate.providers.oauth import ClientCredentialsCache
from pushgate.providers.outcomes import Outcome, SendResult
from pushgate.providers.transport import Http2Transport
from tests.providers import response

TOKEN = "IQAAAACy0" + "t" * 100
NOTE = HmsNotification({"data": '{"default":"hi"}', "android": {"urgency": "NORMAL"}})

# -- the sec. 7.3 table --------------------------------------------------------------------


def answer(code: str, msg: str = "m") -> bytes:
    return json.dumps({"code": code, "msg": msg, "requestId": "1"}).encode()


# (HTTP status, code, outcome)
TABLE = [
    (200, "80000000", Outcome.SUCCESS),
    (200, "80100000", Outcome.SUCCESS),
    (200, "80100001", Outcome.FAIL_PERMANENT),
    (200, "80100003", Outcome.FAIL_PERMANENT),
    (200, "80100004", Outcome.FAIL_PERMANENT),
    (200, "80100013", Outcome.FAIL_PERMANENT),
    (200, "80100016", Outcome.FAIL_PERMANENT),
    (401, "80200001", Outcome.REFRESH_AUTH),
    (401, "80200003", Outcome.REFRESH_AUTH),
    (200, "80300002", Outcome.CONFIG_ERROR),
    (200, "80300007", Outcome.DISABLE_ENDPOINT),
    (200, "80300008", Outcome.FAIL_PERMANENT),
    (200, "80300010", Outcome.FAIL_PERMANENT),
    (200, "80300011", Outcome.CONFIG_ERROR),
    (200, "80300013", Outcome.CONFIG_ERROR),
    (200, "80600003", Outcome.RETRY_BACKOFF),
    (200, "81000001", Outcome.RETRY_BACKOFF),
    (200, "89999999", Outcome.FAIL_PERMANENT),  # unknown: drop the message, keep the endpoint
    (400, "80100003", Outcome.FAIL_PERMANENT),  # the code wins over the status
]


def test_table_covers_every_code() -> None:
    assert {row[1] for row in TABLE} >= set(CODES)


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in TABLE],
)
def test_business_codes(status: int, code: str, outcome: Outcome) -> None:
    result = classify(response(status, answer(code)), TOKEN)
    assert (result.outcome, result.status) == (outcome, status)
    assert result.reason == ("" if outcome is Outcome.SUCCESS else code)
    assert result.response == answer(code).decode()
    assert result.retry_after is None


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (503, b"", Outcome.RETRY_BACKOFF),  # flow control
        (500, b"<html>", Outcome.RETRY_BACKOFF),
        (502, b"", Outcome.RETRY_BACKOFF),
        (401, b"", Outcome.REFRESH_AUTH),
        (403, b"", Outcome.CONFIG_ERROR),
        (404, b"", Outcome.CONFIG_ERROR),
        (400, b"bad", Outcome.FAIL_PERMANENT),
        (429, b"", Outcome.RETRY_BACKOFF),
        (200, b"not json", Outcome.FAIL_PERMANENT),
    ],
)
def test_answers_without_a_code(status: int, body: bytes, outcome: Outcome) -> None:
    result = classify(response(status, body), TOKEN)
    assert (result.outcome, result.status, result.reason) == (outcome, status, "")


def test_numeric_code() -> None:
    raw = b'{"code":80300007,"msg":"All the tokens are invalid"}'
    assert classify(response(200, raw), TOKEN).outcome is Outcome.DISABLE_ENDPOINT


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (503, None, Outcome.RETRY_AFTER),
        (200, "81000001", Outcome.RETRY_AFTER),
        (200, "80300007", Outcome.DISABLE_ENDPOINT),
    ],
)
def test_retry_after_is_honoured(status: int, code: str | None, outcome: Outcome) -> None:
    raw = b"" if code is None else answer(code)
    result = classify(response(status, raw, retry_after=12.0), TOKEN)
    assert result.outcome is outcome
    assert result.retry_after == (12.0 if outcome is Outcome.RETRY_AFTER else None)


@pytest.mark.parametrize(
    ("illegal", "outcome", "reason"),
    [
        ([TOKEN], Outcome.DISABLE_ENDPOINT, "80100000"),
        (["someone-else"], Outcome.SUCCESS, ""),
        ([], Outcome.SUCCESS, ""),
    ],
)
def test_partial_success_names_illegal_tokens(
    illegal: list[str], outcome: Outcome, reason: str
) -> None:
    msg = json.dumps({"success": 0, "failure": len(illegal), "illegal_tokens": illegal})
    result = classify(response(200, answer("80100000", msg)), TOKEN)
    assert (result.outcome, result.reason) == (outcome, reason)


def test_partial_success_with_an_unreadable_msg() -> None:
    assert classify(response(200, answer("80100000", "{")), TOKEN).outcome is Outcome.SUCCESS


def test_no_response() -> None:
    result = classify(response(0, error="reset"), TOKEN)
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, "NoResponse")


# -- bodies ------------------------------------------------------------------------------


def body_for(notification: HmsNotification, token: str, now: float = 0.0) -> bytes:
    template = build_template(notification)
    assert not isinstance(template, SendResult)
    head, tail = template.render(now)
    return head + json.dumps(token).encode() + tail


def test_body_puts_the_token_array_last() -> None:
    assert body_for(NOTE, 'a"b') == (
        b'{"message":{"data":"{\\"default\\":\\"hi\\"}","android":{"urgency":"NORMAL"},'
        b'"token":["a\\"b"]}}'
    )


def test_body_of_an_empty_message_with_validate_only() -> None:
    assert body_for(HmsNotification({}, validate_only=True), "t") == (
        b'{"validate_only":true,"message":{"token":["t"]}}'
    )


def test_targets_already_there_are_dropped() -> None:
    note = HmsNotification({"token": ["old"], "topic": "x", "condition": "y", "data": "ü"})
    assert json.loads(body_for(note, "t")) == {"message": {"data": "ü", "token": ["t"]}}


def test_android_ttl_is_the_remaining_ttl_and_the_message_is_not_mutated() -> None:
    message: dict[str, Any] = {"android": {"ttl": "3600s", "urgency": "HIGH"}}
    note = HmsNotification(message, expires_at=1000.0)
    assert json.loads(body_for(note, "t", now=400.4))["message"]["android"] == {
        "ttl": "599s",
        "urgency": "HIGH",
    }
    assert json.loads(body_for(note, "t", now=999.9))["message"]["android"]["ttl"] == "1s"
    assert message == {"android": {"ttl": "3600s", "urgency": "HIGH"}}


def test_no_android_ttl_is_added() -> None:
    note = HmsNotification({"data": "x"}, expires_at=1000.0)
    assert json.loads(body_for(note, "t", now=400.0))["message"] == {"data": "x", "token": ["t"]}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"data": "x" * (4096 - len('{"data":""}') + 1)}, "PayloadTooLarge"),
        ({"data": object()}, "InvalidMessage"),
        ({"data": "\ud800"}, "InvalidMessage"),
    ],
)
def test_unsendable_messages(message: dict[str, Any], reason: str) -> None:
    result = build_template(HmsNotification(message))
    assert isinstance(result, SendResult)
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, reason)


def test_message_of_exactly_4096_bytes_is_sent() -> None:
    note = HmsNotification({"data": "x" * (4096 - len('{"data":""}')), "token": ["t" * 500]})
    assert not isinstance(build_template(note), SendResult)


# -- over real sockets ---------------------------------------------------------------------


@pytest.fixture
def app(hms: FakeHms) -> tuple[str, str]:
    return hms.create_app()


def hms_client(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str], **kwargs: Any
) -> HmsClient:
    return HmsClient(
        hms.url,
        hms.token_url,
        app[0],
        app[1],
        transport,
        token_cache=ClientCredentialsCache(),
        **kwargs,
    )


async def test_exact_request(hms: FakeHms, transport: Http2Transport, app: tuple[str, str]) -> None:
    note = HmsNotification(
        {"data": "d", "android": {"ttl": "86400s", "collapse_key": 1}}, expires_at=1_000_060.0
    )
    client = hms_client(hms, transport, app, clock=lambda: 1_000_000.0)
    [result] = await client.send_many([(TOKEN, note)])
    assert (result.outcome, result.status, result.reason) == (Outcome.SUCCESS, 200, "")
    assert json.loads(result.response)["code"] == "80000000"
    [grant] = hms.token_requests
    assert (grant.status, grant.client_id) == (200, app[0])
    [sent] = hms.delivered
    assert sent.raw == (
        b'{"message":{"data":"d","android":{"ttl":"60s","collapse_key":1},"token":["'
        + TOKEN.encode()
        + b'"]}}'
    )
    assert sent.headers[":path"] == f"/v1/{app[0]}/messages:send"
    assert {name: sent.headers[name] for name in sent.headers if not name.startswith(":")} == {
        "authorization": f"Bearer {grant.access_token}",
        "content-type": "application/json;charset=utf-8",
        "accept": "application/json",
        "content-length": str(len(sent.raw)),
        "user-agent": "pushgate",
    }
    assert (sent.app_id, sent.tokens, sent.client_id) == (app[0], (TOKEN,), app[0])


async def test_one_request_per_token_one_access_token(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    tokens = [hms.create_token() for _ in range(5)]
    hms.set_token_state(tokens[1], "invalid")
    client = hms_client(hms, transport, app)
    results = await client.send_many(
        [(tokens[0], NOTE), (tokens[1], NOTE), ("t", AdmNotification()), (tokens[2], NOTE)]
    )
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.SUCCESS, ""),
        (Outcome.DISABLE_ENDPOINT, "80300007"),
        (Outcome.FAIL_PERMANENT, "WrongPlatform"),
        (Outcome.SUCCESS, ""),
    ]
    await client.send_many([(token, NOTE) for token in tokens])
    assert [r.tokens for r in hms.received[3:]] == [(token,) for token in tokens]
    assert len(hms.token_requests) == 1
    assert len({m.headers["authorization"] for m in hms.received}) == 1


async def test_no_push_permission_is_a_config_error_never_a_disable(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    hms.set_push_enabled(app[0], False)
    results = await hms_client(hms, transport, app).send_many([(TOKEN, NOTE)] * 3)
    assert {(r.outcome, r.reason) for r in results} == {(Outcome.CONFIG_ERROR, "80300002")}


async def test_high_urgency_without_permission_is_a_config_error(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    hms.set_high_priority_allowed(app[0], False)
    high = HmsNotification({"data": "x", "android": {"urgency": "HIGH"}})
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, high)])
    assert (result.outcome, result.reason) == (Outcome.CONFIG_ERROR, "80300011")


async def test_expired_access_token_refreshed_once(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    client = hms_client(hms, transport, app)
    [first] = await client.send_many([(TOKEN, NOTE)])
    hms.issuer.expire_tokens()
    results = await client.send_many([(TOKEN, NOTE)] * 3)
    assert first.outcome is Outcome.SUCCESS
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    assert [(r.status, r.code) for r in hms.received] == [(200, "80000000")] + [
        (401, "80200003")
    ] * 3 + [(200, "80000000")] * 3
    assert len(hms.token_requests) == 2


@pytest.mark.parametrize("code", ["80200001", "80200003"])
async def test_refused_after_refresh_is_a_config_error(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str], code: str
) -> None:
    hms.script(code, 401, times=2)
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, NOTE)])
    assert (result.outcome, result.status, result.reason) == (Outcome.CONFIG_ERROR, 401, code)
    assert len(hms.token_requests) == 2


async def test_refused_credentials_are_a_config_error_for_every_item(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    results = await hms_client(hms, transport, (app[0], "wrong")).send_many([(TOKEN, NOTE)] * 2)
    assert {(r.outcome, r.status, r.reason) for r in results} == {
        (Outcome.CONFIG_ERROR, 401, "invalid_client")
    }
    assert hms.received == []


@pytest.mark.parametrize(
    ("code", "status", "retry_after", "outcome", "wait"),
    [
        ("81000001", 200, None, Outcome.RETRY_BACKOFF, None),
        ("80600003", 200, None, Outcome.RETRY_BACKOFF, None),
        ("", 503, None, Outcome.RETRY_BACKOFF, None),
        ("", 503, 9, Outcome.RETRY_AFTER, 9.0),
        ("", 500, None, Outcome.RETRY_BACKOFF, None),
    ],
)
async def test_transient_failures(
    hms: FakeHms,
    transport: Http2Transport,
    app: tuple[str, str],
    code: str,
    status: int,
    retry_after: float | None,
    outcome: Outcome,
    wait: float | None,
) -> None:
    hms.script(code, status, retry_after=retry_after)
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, NOTE)])
    assert (result.outcome, result.status, result.reason, result.retry_after) == (
        outcome,
        status,
        code,
        wait,
    )


async def test_flow_control(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hms, "rate_limit", RateLimiter(1, 600))
    results = await hms_client(hms, transport, app).send_many([(TOKEN, NOTE)] * 2)
    assert {(r.outcome, r.status) for r in results} == {
        (Outcome.SUCCESS, 200),
        (Outcome.RETRY_BACKOFF, 503),
    }


async def test_invalid_message_fails_without_disabling(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    bad = HmsNotification({"data": "x", "android": {"collapse_key": 500}})
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, bad)])
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "80100013")


async def test_validate_only(hms: FakeHms, transport: Http2Transport, app: tuple[str, str]) -> None:
    dry = HmsNotification({"data": "x"}, validate_only=True)
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, dry)])
    assert result.outcome is Outcome.SUCCESS
    assert hms.delivered == [] and hms.received[0].validate_only


async def test_too_large_is_refused_locally(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    big = HmsNotification({"data": "x" * 4096})
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, big)])
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "PayloadTooLarge")
    assert hms.received == [] and hms.token_requests == []


async def test_dropped_connection_is_retried_later(
    hms: FakeHms, transport: Http2Transport, app: tuple[str, str]
) -> None:
    hms.script(drop_connection=True)
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, NOTE)])
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, "NoResponse")


async def test_secrets_stay_out_of_the_logs(
    hms: FakeHms,
    transport: Http2Transport,
    app: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pushgate")
    [result] = await hms_client(hms, transport, app).send_many([(TOKEN, NOTE)])
    assert result.outcome is Outcome.SUCCESS
    access = hms.delivered[0].headers["authorization"].removeprefix("Bearer ")
    assert any(getattr(r, "action", "") == "hms_token_obtained" for r in caplog.records)
    dumped = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (access, app[1], TOKEN):
        assert secret not in dumped
