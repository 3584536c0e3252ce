"""The ADM client: the sec. 3.3 table, bodies, and the LWA token flow against the strict
fake over real TLS sockets."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pushgate.fakes.adm import FakeAdm
from pushgate.fakes.state import RateLimiter
from pushgate.providers.adm import REASONS, AdmClient, build_body, classify
from pushgate.providers.notifications import AdmNotification, FcmNotification
from pushgate.providers.oauth import ClientCredentialsCache
from pushgate.providers.outcomes import Outcome, SendResult
from pushgate.providers.transport import Http2Transport
from tests.providers import response

REG = "amzn1.adm-registration.v3.device-0001"
NOTE = AdmNotification(data={"message": "hi", "n": "1"}, consolidation_key="sync")

# -- the sec. 3.3 table --------------------------------------------------------------------

# (status, body, outcome, reason)
TABLE = [
    (400, {"reason": "InvalidRegistrationId"}, Outcome.DISABLE_ENDPOINT, "InvalidRegistrationId"),
    (400, {"reason": "Unregistered"}, Outcome.DISABLE_ENDPOINT, "Unregistered"),
    (400, {"reason": "InvalidData"}, Outcome.FAIL_PERMANENT, "InvalidData"),
    (400, {"reason": "InvalidConsolidationKey"}, Outcome.FAIL_PERMANENT, "InvalidConsolidationKey"),
    (400, {"reason": "InvalidExpiration"}, Outcome.FAIL_PERMANENT, "InvalidExpiration"),
    (400, {"reason": "InvalidChecksum"}, Outcome.FAIL_PERMANENT, "InvalidChecksum"),
    (400, {"reason": "InvalidType"}, Outcome.FAIL_PERMANENT, "InvalidType"),
    (401, {"reason": "AccessTokenExpired"}, Outcome.REFRESH_AUTH, "AccessTokenExpired"),
    (413, {"reason": "MessageTooLarge"}, Outcome.FAIL_PERMANENT, "MessageTooLarge"),
    (429, {"reason": "MaxRateExceeded"}, Outcome.RETRY_BACKOFF, "MaxRateExceeded"),
    (500, {"reason": "InternalServerError"}, Outcome.RETRY_BACKOFF, "InternalServerError"),
    (500, {"reason": "UnknownError"}, Outcome.RETRY_BACKOFF, "UnknownError"),
    (503, None, Outcome.RETRY_BACKOFF, ""),
    # bodies "less than helpful": the status decides
    (400, "<html>Bad Request</html>", Outcome.FAIL_PERMANENT, ""),
    (401, None, Outcome.REFRESH_AUTH, ""),
    (413, None, Outcome.FAIL_PERMANENT, ""),
    (403, {"reason": "Forbidden"}, Outcome.FAIL_PERMANENT, "Forbidden"),
    (502, "bad gateway", Outcome.RETRY_BACKOFF, ""),
]  # fmt: skip


def raw(body: Any) -> bytes:
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def test_table_covers_every_reason() -> None:
    assert {row[3] for row in TABLE} >= set(REASONS)


@pytest.mark.parametrize(
    ("status", "body", "outcome", "reason"),
    [pytest.param(*row, id=f"{row[0]}-{row[3] or 'none'}") for row in TABLE],
)
def test_error_outcomes(status: int, body: Any, outcome: Outcome, reason: str) -> None:
    result = classify(response(status, raw(body)), REG)
    assert (result.outcome, result.status, result.reason) == (outcome, status, reason)
    assert result.response == raw(body).decode()
    assert result.retry_after is None and result.new_token is None


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (429, "MaxRateExceeded", Outcome.RETRY_AFTER),
        (503, "", Outcome.RETRY_AFTER),
        (500, "InternalServerError", Outcome.RETRY_AFTER),
        (400, "Unregistered", Outcome.DISABLE_ENDPOINT),
    ],
)
def test_retry_after_is_honoured(status: int, reason: str, outcome: Outcome) -> None:
    body = raw({"reason": reason} if reason else None)
    result = classify(response(status, body, retry_after=30.0), REG)
    assert result.outcome is outcome
    assert result.retry_after == (30.0 if outcome is Outcome.RETRY_AFTER else None)


@pytest.mark.parametrize(
    ("body", "outcome", "new_token"),
    [
        ({"registrationID": REG}, Outcome.SUCCESS, None),
        ({"registrationID": "amzn1.adm-registration.v3.new"}, Outcome.UPDATE_TOKEN,
         "amzn1.adm-registration.v3.new"),
        ({}, Outcome.SUCCESS, None),
        ({"registrationID": ""}, Outcome.SUCCESS, None),
        (None, Outcome.SUCCESS, None),
    ],
)  # fmt: skip
def test_success_and_a_new_registration_id(
    body: Any, outcome: Outcome, new_token: str | None
) -> None:
    result = classify(response(200, raw(body)), REG)
    assert (result.outcome, result.status, result.new_token) == (outcome, 200, new_token)


def test_no_response() -> None:
    result = classify(response(0, error="connection refused"), REG)
    assert (result.outcome, result.reason, result.response) == (
        Outcome.RETRY_BACKOFF,
        "NoResponse",
        "connection refused",
    )


# -- bodies ------------------------------------------------------------------------------


def test_body_fields_in_order() -> None:
    body = build_body(AdmNotification({"a": "ü"}, "k", 60))
    assert not isinstance(body, SendResult)
    assert (
        body.render(0.0) == '{"data":{"a":"ü"},"consolidationKey":"k","expiresAfter":60}'.encode()
    )


def test_body_without_optional_fields() -> None:
    body = build_body(AdmNotification({}))
    assert not isinstance(body, SendResult) and body.render(0.0) == b'{"data":{}}'


@pytest.mark.parametrize(
    ("expires_after", "expires_at", "now", "sent"),
    [
        (None, 1000.0, 400.0, 600),  # the remaining TTL (sns-api.md 5.6)
        (3600, 1000.0, 400.0, 600),
        (300, 1000.0, 400.0, 300),
        (3600, 1000.0, 999.5, 1),  # never 0: ADM's minimum is 1 second
        (3600, None, 400.0, 3600),
    ],
)
def test_expires_after_is_the_remaining_ttl(
    expires_after: int | None, expires_at: float | None, now: float, sent: int
) -> None:
    body = build_body(AdmNotification({}, None, expires_after, expires_at))
    assert not isinstance(body, SendResult)
    assert json.loads(body.render(now))["expiresAfter"] == sent


@pytest.mark.parametrize(
    ("notification", "reason"),
    [
        (AdmNotification({"k": "x" * 6137}), "PayloadTooLarge"),
        (AdmNotification({"k": 1}), "InvalidData"),  # type: ignore[dict-item]
        (AdmNotification({}, None, 0), "InvalidExpiration"),
        (AdmNotification({}, None, 2678401), "InvalidExpiration"),
        (AdmNotification({"k": "\ud800"}), "InvalidData"),
    ],
)
def test_unsendable_notifications(notification: AdmNotification, reason: str) -> None:
    result = build_body(notification)
    assert isinstance(result, SendResult)
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, reason)


def test_data_of_exactly_6_kb_is_sent() -> None:
    assert not isinstance(build_body(AdmNotification({"k": "x" * 6136})), SendResult)


# -- over real sockets ---------------------------------------------------------------------


@pytest.fixture
def credentials(adm: FakeAdm) -> tuple[str, str]:
    return adm.create_client()


def adm_client(
    adm: FakeAdm,
    transport: Http2Transport,
    credentials: tuple[str, str],
    **kwargs: Any,
) -> AdmClient:
    return AdmClient(
        adm.url,
        adm.token_url,
        credentials[0],
        credentials[1],
        transport,
        token_cache=ClientCredentialsCache(),
        **kwargs,
    )


async def test_exact_request(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    adm.register_registration(REG)
    notification = AdmNotification({"message": "hi"}, "sync", 3600, expires_at=1_000_100.0)
    client = adm_client(adm, transport, credentials, clock=lambda: 1_000_000.0)
    [result] = await client.send_many([(REG, notification)])
    assert (result.outcome, result.status) == (Outcome.SUCCESS, 200)
    assert json.loads(result.response) == {"registrationID": REG}
    [grant] = adm.token_requests
    assert (grant.status, grant.client_id, grant.scope) == (200, credentials[0], "messaging:push")
    [sent] = adm.delivered
    assert sent.raw == b'{"data":{"message":"hi"},"consolidationKey":"sync","expiresAfter":100}'
    assert sent.headers[":path"] == f"/messaging/registrations/{REG}/messages"
    assert {name: sent.headers[name] for name in sent.headers if not name.startswith(":")} == {
        "authorization": f"Bearer {grant.access_token}",
        "content-type": "application/json",
        "accept": "application/json",
        "x-amzn-type-version": "com.amazon.device.messaging.ADMMessage@1.0",
        "x-amzn-accept-type": "com.amazon.device.messaging.ADMSendResult@1.0",
        "content-length": str(len(sent.raw)),
        "user-agent": "pushgate",
    }
    assert sent.client_id == credentials[0]


async def test_registration_id_is_quoted(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    odd = "amzn1.adm-registration.v3.a/b+c=="
    adm.register_registration(odd)
    [result] = await adm_client(adm, transport, credentials).send_many([(odd, NOTE)])
    assert result.outcome is Outcome.SUCCESS
    assert adm.delivered[0].headers[":path"] == (
        "/messaging/registrations/amzn1.adm-registration.v3.a%2Fb%2Bc%3D%3D/messages"
    )


async def test_one_token_for_many_sends_results_in_order(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    regs = [adm.create_registration() for _ in range(4)]
    adm.register_registration(regs[1], "unregistered")
    new = "amzn1.adm-registration.v3.rotated-new"
    adm.register_registration(regs[2], "rotated", rotated_to=new)
    client = adm_client(adm, transport, credentials)
    results = await client.send_many(
        [(regs[0], NOTE), (regs[1], NOTE), ("x", FcmNotification()), (regs[2], NOTE)]
    )
    assert [(r.outcome, r.reason, r.new_token) for r in results] == [
        (Outcome.SUCCESS, "", None),
        (Outcome.DISABLE_ENDPOINT, "Unregistered", None),
        (Outcome.FAIL_PERMANENT, "WrongPlatform", None),
        (Outcome.UPDATE_TOKEN, "", new),
    ]
    for _ in range(2):
        await client.send_many([(regs[3], NOTE)] * 5)
    assert len(adm.token_requests) == 1
    assert len({m.headers["authorization"] for m in adm.received}) == 1
    assert len({m.raw for m in adm.received}) == 1  # one body per notification


@pytest.mark.parametrize(
    ("state", "reason"),
    [("invalid", "InvalidRegistrationId"), ("unregistered", "Unregistered")],
)
async def test_dead_registrations_disable(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str], state: Any, reason: str
) -> None:
    adm.register_registration(REG, state)
    [result] = await adm_client(adm, transport, credentials).send_many([(REG, NOTE)])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.DISABLE_ENDPOINT,
        400,
        reason,
    )


async def test_expired_access_token_refreshed_once(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    adm.register_registration(REG)
    client = adm_client(adm, transport, credentials)
    [first] = await client.send_many([(REG, NOTE)])
    adm.issuer.expire_tokens()  # ADM no longer takes the cached token
    results = await client.send_many([(REG, NOTE)] * 3)
    assert first.outcome is Outcome.SUCCESS
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    assert [r.status for r in adm.received] == [200, 401, 401, 401, 200, 200, 200]
    assert len(adm.token_requests) == 2


async def test_refused_after_refresh_is_a_config_error(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    adm.register_registration(REG)
    adm.script(401, times=2)
    [result] = await adm_client(adm, transport, credentials).send_many([(REG, NOTE)])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        401,
        "AccessTokenExpired",
    )
    assert len(adm.token_requests) == 2


async def test_refused_credentials_are_a_config_error_for_every_item(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    client = adm_client(adm, transport, (credentials[0], "wrong-secret"))
    results = await client.send_many([(REG, NOTE)] * 3)
    assert {(r.outcome, r.status, r.reason) for r in results} == {
        (Outcome.CONFIG_ERROR, 401, "invalid_client")
    }
    assert adm.received == []


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "wait"),
    [
        (500, None, Outcome.RETRY_BACKOFF, None),
        (503, None, Outcome.RETRY_BACKOFF, None),
        (503, 20, Outcome.RETRY_AFTER, 20.0),
        (429, 7, Outcome.RETRY_AFTER, 7.0),
    ],
)
async def test_transient_failures(
    adm: FakeAdm,
    transport: Http2Transport,
    credentials: tuple[str, str],
    status: int,
    retry_after: float | None,
    outcome: Outcome,
    wait: float | None,
) -> None:
    adm.register_registration(REG)
    adm.script(status, retry_after=retry_after)
    [result] = await adm_client(adm, transport, credentials).send_many([(REG, NOTE)])
    assert (result.outcome, result.status, result.retry_after) == (outcome, status, wait)


async def test_throttled_by_the_rate_limit(
    adm: FakeAdm,
    transport: Http2Transport,
    credentials: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adm.register_registration(REG)
    monkeypatch.setattr(adm, "rate_limit", RateLimiter(1, 600))
    results = await adm_client(adm, transport, credentials).send_many([(REG, NOTE)] * 2)
    assert {(r.outcome, r.reason) for r in results} == {
        (Outcome.SUCCESS, ""),
        (Outcome.RETRY_AFTER, "MaxRateExceeded"),
    }
    assert max(r.retry_after or 0 for r in results) >= 599


async def test_dropped_connection_is_retried_later(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    adm.register_registration(REG)
    adm.script(drop_connection=True)
    [result] = await adm_client(adm, transport, credentials).send_many([(REG, NOTE)])
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, "NoResponse")


async def test_too_large_is_refused_locally(
    adm: FakeAdm, transport: Http2Transport, credentials: tuple[str, str]
) -> None:
    big = AdmNotification({"k": "x" * 6137})
    [result] = await adm_client(adm, transport, credentials).send_many([(REG, big)])
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "PayloadTooLarge")
    assert adm.received == [] and adm.token_requests == []


async def test_secrets_stay_out_of_the_logs(
    adm: FakeAdm,
    transport: Http2Transport,
    credentials: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pushgate")
    adm.register_registration(REG)
    [result] = await adm_client(adm, transport, credentials).send_many([(REG, NOTE)])
    assert result.outcome is Outcome.SUCCESS
    access = adm.delivered[0].headers["authorization"].removeprefix("Bearer ")
    assert any(getattr(r, "action", "") == "adm_token_obtained" for r in caplog.records)
    dumped = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (access, credentials[1], REG):
        assert secret not in dumped
