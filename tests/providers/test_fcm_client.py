"""The FCM client: the OAuth2 grant and its cache, bodies, the sec. 2.5 table, real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import jwt
import pytest

from pushgate.fakes.runner import FakeProviders
from pushgate.providers import fcm
from pushgate.providers.fcm import (
    ERROR_CODES,
    FcmClient,
    FcmTokenCache,
    ServiceAccount,
    body_template,
    build_assertion,
    classify,
)
from pushgate.providers.notifications import ApnsNotification, FcmNotification
from pushgate.providers.oauth import classify_token_error, refresh_at
from pushgate.providers.outcomes import Outcome, SendResult
from pushgate.providers.transport import Http2Transport, Request, Response
from tests.providers import ec_key_pem, fcm_token, response, rsa_key_pem

T0 = 1_800_000_000.0
MESSAGE = {"notification": {"title": "Hi", "body": "there"}, "data": {"k": "v"}}


@pytest.fixture(scope="module")
def account_info() -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "0123456789abcdef",
        "private_key": rsa_key_pem(),
        "client_email": "pushgate@my-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth.test/token",
    }


@pytest.fixture
def account(account_info: dict[str, str]) -> ServiceAccount:
    return ServiceAccount.from_info(account_info)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return cast(dict[str, Any], json.loads(base64.urlsafe_b64decode(part + "==")))


# -- the grant ---------------------------------------------------------------------------


def test_assertion_header_and_claims(account: ServiceAccount) -> None:
    key = fcm.load_rsa_key(account.private_key_pem)
    assertion = build_assertion(account, key, T0 + 0.7)
    assert segment(assertion, 0) == {"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"}
    assert segment(assertion, 1) == {
        "iss": account.client_email,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": int(T0),
        "exp": int(T0) + 3600,
    }
    jwt.decode(
        assertion,
        key.public_key(),
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
        options={"verify_exp": False, "verify_iat": False},
    )


@pytest.mark.parametrize("missing", ["client_email", "private_key", "token_uri", "project_id"])
def test_service_account_fields_are_required(account_info: dict[str, str], missing: str) -> None:
    info = {name: value for name, value in account_info.items() if name != missing}
    with pytest.raises(ValueError, match=missing):
        ServiceAccount.from_info(info)


def test_service_account_key_must_be_rsa(account_info: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        FcmClient(
            "https://fcm.test", {**account_info, "private_key": ec_key_pem()}, Http2Transport()
        )


@pytest.mark.parametrize(
    ("expires_in", "after"),
    [(3599, 3299.0), (3600, 3300.0), (601, 301.0), (600, 300.0), (10, 5.0)],
)
def test_refresh_five_minutes_early_or_half_way(expires_in: int, after: float) -> None:
    assert refresh_at(T0, expires_in) == T0 + after


# -- bodies ------------------------------------------------------------------------------


def body(token: str, notification: FcmNotification) -> Any:
    template = body_template(notification)
    assert isinstance(template, tuple)
    return json.loads(template[0] + json.dumps(token).encode() + template[1])


def test_body_puts_the_token_into_the_message() -> None:
    assert body("tok-1", FcmNotification(MESSAGE)) == {"message": {"token": "tok-1", **MESSAGE}}


def test_body_replaces_a_token_already_there_and_keeps_unicode() -> None:
    message = {"token": "old", "notification": {"title": "h\u00e9\u2603"}}
    assert body('a"b', FcmNotification(message)) == {
        "message": {"token": 'a"b', "notification": {"title": "h\u00e9\u2603"}}
    }


def test_body_of_an_empty_message_and_validate_only() -> None:
    assert body("t", FcmNotification({}, validate_only=True)) == {
        "message": {"token": "t"},
        "validate_only": True,
    }


def test_unserialisable_message_fails_without_a_request() -> None:
    result = body_template(FcmNotification({"data": {"when": object()}}))
    assert isinstance(result, SendResult)
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "InvalidMessage")


# -- the sec. 2.5 table ------------------------------------------------------------------

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def error_body(
    status: int,
    error_code: str | None = None,
    message: str = "Something.",
    field: str | None = None,
) -> bytes:
    details: list[dict[str, Any]] = []
    if error_code is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        )
    if field is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": "bad"}],
            }
        )
    error: dict[str, Any] = {"code": status, "message": message, "status": STATUS_NAMES[status]}
    if details:
        error["details"] = details
    return json.dumps({"error": error}, indent=2).encode()


TOKEN_MESSAGE = "The registration token is not a valid FCM registration token"

# (status, errorCode, message, field violation, outcome, reason)
TABLE = [
    (400, "INVALID_ARGUMENT", TOKEN_MESSAGE, None, Outcome.DISABLE_ENDPOINT, "INVALID_ARGUMENT"),
    (400, "INVALID_ARGUMENT", "Invalid data key", None, Outcome.FAIL_PERMANENT, "INVALID_ARGUMENT"),
    (400, None, "Unknown name", "message.bogus", Outcome.FAIL_PERMANENT, "INVALID_ARGUMENT"),
    (
        401,
        None,
        "Request had invalid authentication",
        None,
        Outcome.REFRESH_AUTH,
        "UNAUTHENTICATED",
    ),
    (
        401,
        "THIRD_PARTY_AUTH_ERROR",
        "Auth error",
        None,
        Outcome.CONFIG_ERROR,
        "THIRD_PARTY_AUTH_ERROR",
    ),
    (
        403,
        "SENDER_ID_MISMATCH",
        "SenderId mismatch",
        None,
        Outcome.DISABLE_ENDPOINT,
        "SENDER_ID_MISMATCH",
    ),
    (403, None, "Permission denied", None, Outcome.CONFIG_ERROR, "PERMISSION_DENIED"),
    (
        404,
        "UNREGISTERED",
        "Requested entity was not found.",
        None,
        Outcome.DISABLE_ENDPOINT,
        "UNREGISTERED",
    ),
    (404, None, "Requested entity was not found.", None, Outcome.CONFIG_ERROR, "NOT_FOUND"),
    (429, "QUOTA_EXCEEDED", "Quota exceeded", None, Outcome.RETRY_AFTER, "QUOTA_EXCEEDED"),
    (500, "INTERNAL", "Internal error", None, Outcome.RETRY_BACKOFF, "INTERNAL"),
    (503, "UNAVAILABLE", "Unavailable", None, Outcome.RETRY_BACKOFF, "UNAVAILABLE"),
    (400, "UNSPECIFIED_ERROR", "?", None, Outcome.FAIL_PERMANENT, "INVALID_ARGUMENT"),
    (503, "UNSPECIFIED_ERROR", "?", None, Outcome.RETRY_BACKOFF, "UNAVAILABLE"),
    (404, "APNS_AUTH_ERROR", "Auth error", None, Outcome.CONFIG_ERROR, "APNS_AUTH_ERROR"),
]


def test_table_covers_every_error_code() -> None:
    assert {row[1] for row in TABLE} - {None, "UNSPECIFIED_ERROR"} == set(ERROR_CODES)


@pytest.mark.parametrize(
    ("status", "error_code", "message", "field", "outcome", "reason"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}-{row[4]}") for row in TABLE],
)
def test_error_outcomes(
    status: int,
    error_code: str | None,
    message: str,
    field: str | None,
    outcome: Outcome,
    reason: str,
) -> None:
    raw = error_body(status, error_code, message, field)
    result = classify(response(status, raw))
    assert (result.outcome, result.status, result.reason) == (outcome, status, reason)
    assert result.response == raw.decode()[:1024]
    expected_wait = 60.0 if outcome is Outcome.RETRY_AFTER else None
    assert result.retry_after == expected_wait


def test_invalid_argument_about_the_token_field() -> None:
    raw = error_body(400, "INVALID_ARGUMENT", "Invalid value", field="message.token")
    assert classify(response(400, raw)).outcome is Outcome.DISABLE_ENDPOINT


def test_success_keeps_the_message_name() -> None:
    raw = b'{"name": "projects/p/messages/0:1%ab"}'
    result = classify(response(200, raw))
    assert (result.outcome, result.status, result.response) == (Outcome.SUCCESS, 200, raw.decode())


@pytest.mark.parametrize(
    ("status", "error_code", "outcome"),
    [
        (429, "QUOTA_EXCEEDED", Outcome.RETRY_AFTER),
        (500, "INTERNAL", Outcome.RETRY_AFTER),
        (503, "UNAVAILABLE", Outcome.RETRY_AFTER),
        (404, "UNREGISTERED", Outcome.DISABLE_ENDPOINT),
    ],
)
def test_retry_after_is_honoured(status: int, error_code: str, outcome: Outcome) -> None:
    result = classify(response(status, error_body(status, error_code), retry_after=7.0))
    assert result.outcome is outcome
    assert result.retry_after == (7.0 if outcome is Outcome.RETRY_AFTER else None)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (0, b"", Outcome.RETRY_BACKOFF),
        (502, b"<html>bad gateway</html>", Outcome.RETRY_BACKOFF),
        (409, b"{}", Outcome.FAIL_PERMANENT),
        (400, b"not json", Outcome.FAIL_PERMANENT),
        (401, b"", Outcome.REFRESH_AUTH),
    ],
)
def test_answers_without_an_error_envelope(status: int, body: bytes, outcome: Outcome) -> None:
    assert classify(response(status, body, error="x" if status == 0 else None)).outcome is outcome


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "outcome", "reason"),
    [
        (400, b'{"error":"invalid_grant","error_description":"Invalid JWT Signature."}', None,
         Outcome.CONFIG_ERROR, "invalid_grant"),
        (400, b'{"error":"invalid_scope"}', None, Outcome.CONFIG_ERROR, "invalid_scope"),
        (401, b'{"error":"invalid_client"}', None, Outcome.CONFIG_ERROR, "invalid_client"),
        (404, b"<html>", None, Outcome.CONFIG_ERROR, "invalid_token_response"),
        (200, b'{"token_type":"Bearer"}', None, Outcome.CONFIG_ERROR, "invalid_token_response"),
        (500, b'{"error":"internal_failure"}', None, Outcome.RETRY_BACKOFF, "internal_failure"),
        (503, b"", 30.0, Outcome.RETRY_AFTER, ""),
        (0, b"", None, Outcome.RETRY_BACKOFF, "NoResponse"),
    ],
)  # fmt: skip
def test_token_endpoint_failures(
    status: int, body: bytes, retry_after: float | None, outcome: Outcome, reason: str
) -> None:
    answer = response(status, body, retry_after=retry_after, error="x" if status == 0 else None)
    result = classify_token_error(answer)
    assert (result.outcome, result.reason, result.retry_after) == (outcome, reason, retry_after)


# -- the access token cache --------------------------------------------------------------


class TokenEndpoint:
    """Stands in for Http2Transport: answers token requests, then sends."""

    def __init__(self, *, expires_in: int = 3599, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.token_requests: list[Request] = []
        self.sends: list[list[Request]] = []
        self.send_answers: list[Response | list[Response]] = []

    async def request(self, req: Request) -> Response:
        return (await self.request_many([req]))[0]

    async def request_many(self, reqs: Sequence[Request]) -> list[Response]:
        if reqs[0].url.endswith("/token"):
            self.token_requests.append(reqs[0])
            await asyncio.sleep(self.delay)
            answer = {
                "access_token": f"ya29.token-{len(self.token_requests)}",
                "expires_in": self.expires_in,
                "token_type": "Bearer",
            }
            return [response(200, json.dumps(answer).encode())]
        self.sends.append(list(reqs))
        answer_ = self.send_answers.pop(0) if self.send_answers else response(200, b"{}")
        return list(answer_) if isinstance(answer_, list) else [answer_ for _ in reqs]


def stub(endpoint: TokenEndpoint) -> Http2Transport:
    return cast(Http2Transport, endpoint)


async def test_token_request_is_a_form_encoded_jwt_bearer_grant(account: ServiceAccount) -> None:
    endpoint = TokenEndpoint()
    cache = FcmTokenCache(Clock())
    assert await cache.get(account, stub(endpoint)) == "ya29.token-1"
    [request] = endpoint.token_requests
    assert (request.method, request.url) == ("POST", "https://oauth.test/token")
    assert "content-type: application/x-www-form-urlencoded" in request.headers
    form = dict(part.split("=", 1) for part in request.body.decode().split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    assert segment(form["assertion"], 1)["iat"] == int(T0)


async def test_one_refresh_for_many_waiters(account: ServiceAccount) -> None:
    endpoint = TokenEndpoint(delay=0.05)
    cache = FcmTokenCache(Clock())
    tokens = await asyncio.gather(*(cache.get(account, stub(endpoint)) for _ in range(20)))
    assert set(tokens) == {"ya29.token-1"} and len(endpoint.token_requests) == 1


async def test_token_kept_until_five_minutes_before_expiry(account: ServiceAccount) -> None:
    endpoint = TokenEndpoint()
    clock = Clock()
    cache = FcmTokenCache(clock)
    await cache.get(account, stub(endpoint))
    clock.now = T0 + 3599 - 301
    assert await cache.get(account, stub(endpoint)) == "ya29.token-1"
    assert cache.cached(account) == "ya29.token-1"
    clock.now = T0 + 3599 - 300
    assert cache.cached(account) is None
    assert await cache.get(account, stub(endpoint)) == "ya29.token-2"


async def test_stale_token_is_replaced_once(account: ServiceAccount) -> None:
    endpoint = TokenEndpoint(delay=0.02)
    cache = FcmTokenCache(Clock())
    first = await cache.get(account, stub(endpoint))
    assert isinstance(first, str)
    again = await asyncio.gather(
        *(cache.get(account, stub(endpoint), stale=first) for _ in range(5))
    )
    assert set(again) == {"ya29.token-2"}
    # a caller still holding the first token after the swap is not another refresh
    assert await cache.get(account, stub(endpoint), stale=first) == "ya29.token-2"
    assert len(endpoint.token_requests) == 2


async def test_unauthenticated_refreshes_and_retries_once(
    account_info: dict[str, str],
) -> None:
    endpoint = TokenEndpoint()
    unauthenticated = response(401, error_body(401))
    endpoint.send_answers = [[unauthenticated, response(200, b"{}")], response(200, b"{}")]
    client = FcmClient(
        "https://fcm.test", account_info, stub(endpoint), token_cache=FcmTokenCache()
    )
    results = await client.send_many([(fcm_token(), FcmNotification(MESSAGE)) for _ in range(2)])
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
    first, retry = endpoint.sends
    assert "authorization: Bearer ya29.token-1" in first[0].headers
    assert len(retry) == 1 and "authorization: Bearer ya29.token-2" in retry[0].headers
    assert retry[0].body == first[0].body


async def test_unauthenticated_twice_is_a_config_error(account_info: dict[str, str]) -> None:
    endpoint = TokenEndpoint()
    unauthenticated = response(401, error_body(401))
    endpoint.send_answers = [unauthenticated, unauthenticated]
    client = FcmClient(
        "https://fcm.test", account_info, stub(endpoint), token_cache=FcmTokenCache()
    )
    [result] = await client.send_many([(fcm_token(), FcmNotification(MESSAGE))])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        401,
        "UNAUTHENTICATED",
    )
    assert len(endpoint.token_requests) == 2


async def test_send_requests(account_info: dict[str, str]) -> None:
    endpoint = TokenEndpoint()
    client = FcmClient(
        "https://fcm.test/", account_info, stub(endpoint), token_cache=FcmTokenCache()
    )
    notification = FcmNotification(MESSAGE)
    tokens = [fcm_token() for _ in range(3)]
    await client.send_many([(token, notification) for token in tokens])
    [batch] = endpoint.sends
    assert {r.url for r in batch} == {"https://fcm.test/v1/projects/my-project/messages:send"}
    assert list(batch[0].headers) == [
        "authorization: Bearer ya29.token-1",
        "content-type: application/json",
        "accept:",
    ]
    assert [json.loads(r.body)["message"]["token"] for r in batch] == tokens
    assert len({id(r.headers) for r in batch}) == 1


async def test_another_providers_notification_fails(account_info: dict[str, str]) -> None:
    endpoint = TokenEndpoint()
    client = FcmClient(
        "https://fcm.test", account_info, stub(endpoint), token_cache=FcmTokenCache()
    )
    [wrong, right] = await client.send_many(
        [("tok", ApnsNotification(b"{}")), (fcm_token(), FcmNotification(MESSAGE))]
    )
    assert (wrong.outcome, wrong.reason) == (Outcome.FAIL_PERMANENT, "WrongPlatform")
    assert right.outcome is Outcome.SUCCESS and len(endpoint.sends[0]) == 1


# -- over real sockets (fixtures fakes and transport: conftest.py) -----------------------


@pytest.fixture
def service_account(fakes: FakeProviders) -> dict[str, str]:
    return fakes.fcm.create_service_account(project_id="my-project")


def fcm_client(
    fakes: FakeProviders,
    transport: Http2Transport,
    service_account: dict[str, str],
    cache: FcmTokenCache | None = None,
) -> FcmClient:
    return FcmClient(
        fakes.fcm.url, service_account, transport, token_cache=cache or FcmTokenCache()
    )


async def test_oauth_flow_and_delivery(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    client = fcm_client(fakes, transport, service_account)
    tokens = [fcm_token() for _ in range(5)]
    for _ in range(3):
        results = await client.send_many([(t, FcmNotification(MESSAGE)) for t in tokens])
        assert {r.outcome for r in results} == {Outcome.SUCCESS}
        assert all(r.response.count("projects/my-project/messages/") == 1 for r in results)
    [grant] = fakes.fcm.token_requests
    assert grant.status == 200
    delivered = fakes.fcm.delivered
    assert len(delivered) == 15
    assert [m.token for m in delivered[:5]] == tokens
    assert delivered[0].body == {"message": {"token": tokens[0], **MESSAGE}}
    assert len({m.headers["authorization"] for m in delivered}) == 1


async def test_tokens_and_keys_stay_out_of_the_logs(
    fakes: FakeProviders,
    transport: Http2Transport,
    service_account: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pushgate")
    token = fcm_token()
    [result] = await fcm_client(fakes, transport, service_account).send_many(
        [(token, FcmNotification(MESSAGE))]
    )
    assert result.outcome is Outcome.SUCCESS
    access = fakes.fcm.delivered[0].headers["authorization"].removeprefix("Bearer ")
    assert any(getattr(r, "action", "") == "fcm_token_obtained" for r in caplog.records)
    dumped = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (access, token, service_account["private_key"].splitlines()[1]):
        assert secret not in dumped


async def test_access_token_refreshed_before_it_expires(
    fakes: FakeProviders,
    transport: Http2Transport,
    service_account: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fakes.fcm, "access_token_lifetime", 2)  # refreshed after 1 s
    client = fcm_client(fakes, transport, service_account)
    [first] = await client.send_many([(fcm_token(), FcmNotification(MESSAGE))])
    await asyncio.sleep(1.1)
    [second] = await client.send_many([(fcm_token(), FcmNotification(MESSAGE))])
    assert first.outcome is second.outcome is Outcome.SUCCESS
    assert len(fakes.fcm.token_requests) == 2
    authorizations = [m.headers["authorization"] for m in fakes.fcm.delivered]
    assert len(set(authorizations)) == 2


async def test_revoked_access_token_refreshed_on_401(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    client = fcm_client(fakes, transport, service_account)
    [first] = await client.send_many([(fcm_token(), FcmNotification(MESSAGE))])
    fakes.fcm.issuer.clear_tokens()  # Google forgets the access token
    results = await client.send_many([(fcm_token(), FcmNotification(MESSAGE)) for _ in range(3)])
    assert first.outcome is Outcome.SUCCESS
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    assert [r.status for r in fakes.fcm.received] == [200, 401, 401, 401, 200, 200, 200]
    assert len(fakes.fcm.token_requests) == 2


async def test_401_after_refresh_is_a_config_error(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    fakes.fcm.script(status=401, times=2)
    [result] = await fcm_client(fakes, transport, service_account).send_many(
        [(fcm_token(), FcmNotification(MESSAGE))]
    )
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        401,
        "UNAUTHENTICATED",
    )
    assert len(fakes.fcm.token_requests) == 2


@pytest.mark.parametrize(
    ("state", "status", "reason", "outcome"),
    [
        ("unregistered", 404, "UNREGISTERED", Outcome.DISABLE_ENDPOINT),
        ("invalid", 400, "INVALID_ARGUMENT", Outcome.DISABLE_ENDPOINT),
        ("other_project", 403, "SENDER_ID_MISMATCH", Outcome.DISABLE_ENDPOINT),
        ("apns_auth_error", 401, "THIRD_PARTY_AUTH_ERROR", Outcome.CONFIG_ERROR),
    ],
)
async def test_token_states(
    fakes: FakeProviders,
    transport: Http2Transport,
    service_account: dict[str, str],
    state: Any,
    status: int,
    reason: str,
    outcome: Outcome,
) -> None:
    token = fcm_token()
    fakes.fcm.set_token_state(token, state)
    [result] = await fcm_client(fakes, transport, service_account).send_many(
        [(token, FcmNotification(MESSAGE))]
    )
    assert (result.outcome, result.status, result.reason) == (outcome, status, reason)
    assert len(fakes.fcm.token_requests) == 1  # no refresh for any of these


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "wait"),
    [
        (503, 7, Outcome.RETRY_AFTER, 7.0),
        (503, None, Outcome.RETRY_BACKOFF, None),
        (500, 3, Outcome.RETRY_AFTER, 3.0),
        (500, None, Outcome.RETRY_BACKOFF, None),
        (429, 120, Outcome.RETRY_AFTER, 120.0),
        (429, None, Outcome.RETRY_AFTER, 60.0),
        (429, 7200, Outcome.RETRY_AFTER, 3600.0),
    ],
)
async def test_retry_after(
    fakes: FakeProviders,
    transport: Http2Transport,
    service_account: dict[str, str],
    status: int,
    retry_after: float | None,
    outcome: Outcome,
    wait: float | None,
) -> None:
    fakes.fcm.script(status=status, retry_after=retry_after)
    [result] = await fcm_client(fakes, transport, service_account).send_many(
        [(fcm_token(), FcmNotification(MESSAGE))]
    )
    assert (result.outcome, result.status, result.retry_after) == (outcome, status, wait)


async def test_token_endpoint_refusal_is_a_config_error_for_every_message(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    fakes.fcm.disable_service_account(service_account["client_email"])
    results = await fcm_client(fakes, transport, service_account).send_many(
        [(fcm_token(), FcmNotification(MESSAGE)) for _ in range(3)]
    )
    assert {(r.outcome, r.status, r.reason) for r in results} == {
        (Outcome.CONFIG_ERROR, 401, "invalid_client")
    }
    assert fakes.fcm.received == []


async def test_unknown_key_is_invalid_grant(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    forged = {**service_account, "private_key": rsa_key_pem()}
    [result] = await fcm_client(fakes, transport, forged).send_many(
        [(fcm_token(), FcmNotification(MESSAGE))]
    )
    assert (result.outcome, result.reason) == (Outcome.CONFIG_ERROR, "invalid_grant")


async def test_validate_only_and_a_bad_message(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    client = fcm_client(fakes, transport, service_account)
    dry, bad = await client.send_many(
        [
            (fcm_token(), FcmNotification(MESSAGE, validate_only=True)),
            (fcm_token(), FcmNotification({"data": {"count": 12}})),  # values must be strings
        ]
    )
    assert dry.outcome is Outcome.SUCCESS and fakes.fcm.delivered == []
    assert (bad.outcome, bad.status) == (Outcome.FAIL_PERMANENT, 400)


async def test_wrong_project_is_a_config_error(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    fakes.fcm.set_api_enabled("my-project", False)
    [result] = await fcm_client(fakes, transport, service_account).send_many(
        [(fcm_token(), FcmNotification(MESSAGE))]
    )
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        403,
        "PERMISSION_DENIED",
    )


async def test_many_concurrent_sends_share_one_token(
    fakes: FakeProviders, transport: Http2Transport, service_account: dict[str, str]
) -> None:
    client = fcm_client(fakes, transport, service_account)
    started = time.perf_counter()
    batches = await asyncio.gather(
        *(
            client.send_many([(fcm_token(), FcmNotification(MESSAGE)) for _ in range(50)])
            for _ in range(6)
        )
    )
    assert time.perf_counter() - started < 30
    assert {r.outcome for batch in batches for r in batch} == {Outcome.SUCCESS}
    assert len(fakes.fcm.token_requests) == 1
