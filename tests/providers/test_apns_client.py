"""The APNs client: JWT minting and caching, headers, the sec. 1.7 table, then real sockets."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import jwt
import pytest

from pushgate.fakes.apns import ApnsSigningKey
from pushgate.fakes.runner import FakeProviders
from pushgate.providers import apns
from pushgate.providers.apns import (
    REASONS,
    ApnsCertificateAuth,
    ApnsClient,
    ApnsTokenAuth,
    ApnsTokenCache,
    classify,
)
from pushgate.providers.notifications import ApnsNotification, FcmNotification
from pushgate.providers.outcomes import Outcome
from pushgate.providers.transport import Http2Transport, Request, Response
from tests.providers import BUNDLE, PAYLOAD, TEAM, apns_token, ec_key_pem, response, rsa_key_pem

T0 = 1_800_000_000.0
KEY_ID = "ABC123DEFG"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(text: str) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(base64.urlsafe_b64decode(text + "==")))

    header, claims, _ = token.split(".")
    return part(header), part(claims)


# -- provider tokens ---------------------------------------------------------------------


@pytest.fixture
def auth() -> ApnsTokenAuth:
    return ApnsTokenAuth(ec_key_pem(), KEY_ID, TEAM)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ApnsTokenCache:
    return ApnsTokenCache(clock)


def test_jwt_is_es256_with_kid_and_exactly_iss_iat(
    auth: ApnsTokenAuth, cache: ApnsTokenCache
) -> None:
    token = cache.token(auth)
    header, claims = segments(token)
    assert header == {"alg": "ES256", "kid": KEY_ID}
    assert claims == {"iss": TEAM, "iat": int(T0)}
    public = apns.load_signing_key(auth.key_pem).public_key()
    decoded = jwt.decode(token, public, algorithms=["ES256"], options={"verify_iat": False})
    assert decoded == claims
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 64  # JOSE r||s


def test_jwt_reused_for_50_minutes(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    first = cache.token(auth)
    clock.now = T0 + 50 * 60 - 1
    assert cache.token(auth) == first
    clock.now = T0 + 50 * 60
    second = cache.token(auth)
    assert second != first
    assert segments(second)[1]["iat"] == int(T0 + 50 * 60)


def test_one_jwt_per_team_and_key_whatever_the_auth_object(
    auth: ApnsTokenAuth, cache: ApnsTokenCache
) -> None:
    same = ApnsTokenAuth(auth.key_pem, auth.key_id, auth.team_id)
    other_key = ApnsTokenAuth(ec_key_pem(), "OTHERKEY01", TEAM)
    assert cache.token(auth) == cache.token(same)
    assert cache.token(other_key) != cache.token(auth)


def test_new_key_material_for_the_same_key_id_mints_anew(
    auth: ApnsTokenAuth, cache: ApnsTokenCache
) -> None:
    first = cache.token(auth)
    replaced = ApnsTokenAuth(ec_key_pem(), auth.key_id, auth.team_id)
    assert cache.token(replaced) != first


def test_refresh_after_expired_mints_at_once(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    rejected = cache.token(auth)
    clock.now += 5 * 60
    fresh = cache.refresh(auth, rejected, "ExpiredProviderToken")
    assert fresh is not None and fresh != rejected
    assert cache.token(auth) == fresh
    # everyone else holding the rejected token gets the replacement, no new mint
    assert cache.refresh(auth, rejected, "ExpiredProviderToken") == fresh


def test_expired_right_after_minting_is_a_clock_problem(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    rejected = cache.token(auth)
    clock.now += 10
    assert cache.refresh(auth, rejected, "ExpiredProviderToken") is None


def test_other_refusals_wait_out_the_20_minutes(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    rejected = cache.token(auth)
    clock.now += 20 * 60 - 1
    assert cache.refresh(auth, rejected, "InvalidProviderToken") is None
    assert cache.token(auth) == rejected  # nothing minted
    clock.now += 1
    fresh = cache.refresh(auth, rejected, "InvalidProviderToken")
    assert fresh is not None and fresh != rejected


def test_minting_is_logged_without_secrets(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pushgate")
    token = cache.token(auth)
    [record] = [r for r in caplog.records if getattr(r, "action", "") == "apns_token_minted"]
    assert (record.__dict__["key_id"], record.__dict__["team_id"]) == (KEY_ID, TEAM)
    for secret in (token, token.split(".")[2], auth.key_pem.splitlines()[1]):
        assert secret not in caplog.text
        assert all(secret not in str(r.__dict__) for r in caplog.records)


def test_minting_is_single_flight_across_threads(auth: ApnsTokenAuth) -> None:
    cache = ApnsTokenCache()
    tokens: list[str] = []
    start = threading.Barrier(16)

    def worker() -> None:
        start.wait()
        tokens.append(cache.token(auth))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1  # ECDSA signatures are randomised: two mints would differ


def test_only_p256_keys_are_signing_keys() -> None:
    rsa_pem = rsa_key_pem()
    with pytest.raises(ValueError):
        apns.load_signing_key(rsa_pem)
    with pytest.raises(ValueError):
        ApnsClient("https://x", ApnsTokenAuth(rsa_pem, KEY_ID, TEAM), Http2Transport())


# -- the sec. 1.7 table ------------------------------------------------------------------

TABLE = [
    (400, "BadCollapseId", Outcome.FAIL_PERMANENT),
    (400, "BadDeviceToken", Outcome.DISABLE_ENDPOINT),
    (400, "BadExpirationDate", Outcome.FAIL_PERMANENT),
    (400, "BadMessageId", Outcome.FAIL_PERMANENT),
    (400, "BadPriority", Outcome.FAIL_PERMANENT),
    (400, "BadTopic", Outcome.CONFIG_ERROR),
    (400, "DeviceTokenNotForTopic", Outcome.DISABLE_ENDPOINT),
    (400, "DuplicateHeaders", Outcome.FAIL_PERMANENT),
    (400, "IdleTimeout", Outcome.RETRY_BACKOFF),
    (400, "InvalidPushType", Outcome.FAIL_PERMANENT),
    (400, "MissingDeviceToken", Outcome.FAIL_PERMANENT),
    (400, "MissingTopic", Outcome.CONFIG_ERROR),
    (400, "PayloadEmpty", Outcome.FAIL_PERMANENT),
    (400, "TopicDisallowed", Outcome.CONFIG_ERROR),
    (403, "BadCertificate", Outcome.CONFIG_ERROR),
    (403, "BadCertificateEnvironment", Outcome.CONFIG_ERROR),
    (403, "ExpiredProviderToken", Outcome.REFRESH_AUTH),
    (403, "Forbidden", Outcome.CONFIG_ERROR),
    (403, "InvalidProviderToken", Outcome.REFRESH_AUTH),
    (403, "MissingProviderToken", Outcome.CONFIG_ERROR),
    (403, "UnrelatedKeyIdInToken", Outcome.CONFIG_ERROR),
    (403, "BadEnvironmentKeyIdInToken", Outcome.CONFIG_ERROR),
    (404, "BadPath", Outcome.FAIL_PERMANENT),
    (405, "MethodNotAllowed", Outcome.FAIL_PERMANENT),
    (410, "ExpiredToken", Outcome.DISABLE_ENDPOINT),
    (410, "Unregistered", Outcome.DISABLE_ENDPOINT),
    (413, "PayloadTooLarge", Outcome.FAIL_PERMANENT),
    (429, "TooManyProviderTokenUpdates", Outcome.RETRY_BACKOFF),
    (429, "TooManyRequests", Outcome.RETRY_BACKOFF),
    (500, "InternalServerError", Outcome.RETRY_BACKOFF),
    (503, "ServiceUnavailable", Outcome.RETRY_BACKOFF),
    (503, "Shutdown", Outcome.RETRY_BACKOFF),
]


def test_table_covers_every_reason() -> None:
    assert {reason for _, reason, _ in TABLE} == set(REASONS)


@pytest.mark.parametrize(
    ("status", "reason", "outcome"), [pytest.param(*row, id=row[1]) for row in TABLE]
)
def test_reason_outcomes(status: int, reason: str, outcome: Outcome) -> None:
    body = json.dumps({"reason": reason}).encode()
    result = classify(response(status, body))
    assert (result.outcome, result.status, result.reason) == (outcome, status, reason)
    assert result.response == body.decode()
    assert result.retry_after is None and result.invalid_since_ms is None


def test_success() -> None:
    result = classify(response(200))
    assert (result.outcome, result.status, result.reason, result.response) == (
        Outcome.SUCCESS,
        200,
        "",
        "",
    )
    assert result.latency_ms == pytest.approx(2.0)


def test_unregistered_carries_its_timestamp() -> None:
    result = classify(response(410, b'{"reason":"Unregistered","timestamp":1700000000123}'))
    assert result.outcome is Outcome.DISABLE_ENDPOINT
    assert result.invalid_since_ms == 1700000000123


def test_no_response_is_retried_with_backoff() -> None:
    result = classify(response(0, error="curl error 7: Could not connect"))
    assert (result.outcome, result.status) == (Outcome.RETRY_BACKOFF, 0)
    assert "Could not connect" in result.response


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        pytest.param(400, b'{"reason":"SomethingNew"}', Outcome.FAIL_PERMANENT, id="4xx"),
        pytest.param(403, b'{"reason":"SomethingNew"}', Outcome.FAIL_PERMANENT, id="403"),
        pytest.param(429, b'{"reason":"SomethingNew"}', Outcome.RETRY_BACKOFF, id="429"),
        pytest.param(502, b'{"reason":"SomethingNew"}', Outcome.RETRY_BACKOFF, id="5xx"),
        pytest.param(500, b"<html>oops</html>", Outcome.RETRY_BACKOFF, id="not-json"),
        pytest.param(400, b"[]", Outcome.FAIL_PERMANENT, id="not-an-object"),
    ],
)
def test_unknown_reasons_go_by_status_class(status: int, body: bytes, outcome: Outcome) -> None:
    assert classify(response(status, body)).outcome is outcome


@pytest.mark.parametrize("reason", ["TooManyRequests", "ServiceUnavailable", "Whatever"])
def test_retry_after_header_makes_it_retry_after(reason: str) -> None:
    body = json.dumps({"reason": reason}).encode()
    result = classify(response(429, body, retry_after=7.0))
    assert (result.outcome, result.retry_after) == (Outcome.RETRY_AFTER, 7.0)


def test_retry_after_does_not_soften_a_permanent_answer() -> None:
    result = classify(response(410, b'{"reason":"Unregistered"}', retry_after=7.0))
    assert (result.outcome, result.retry_after) == (Outcome.DISABLE_ENDPOINT, None)


def test_response_text_is_bounded() -> None:
    body = json.dumps({"reason": "BadTopic", "junk": "x" * 5000}).encode()
    assert len(classify(response(400, body)).response) == 1024


# -- headers and local refusals ----------------------------------------------------------


class RecordingTransport:
    """Stands in for Http2Transport: answers from a script, records what it was asked."""

    def __init__(self, *answers: Sequence[Response] | Response) -> None:
        self.answers = list(answers)
        self.batches: list[list[Request]] = []

    async def request_many(self, reqs: Sequence[Request]) -> list[Response]:
        self.batches.append(list(reqs))
        answer = self.answers.pop(0) if self.answers else response(200)
        if isinstance(answer, Response):
            return [answer for _ in reqs]
        return list(answer)

    async def close(self) -> None:
        pass


def client(
    transport: RecordingTransport,
    auth: ApnsTokenAuth | ApnsCertificateAuth,
    cache: ApnsTokenCache | None = None,
    default_topic: str | None = BUNDLE,
) -> ApnsClient:
    return ApnsClient(
        "https://apns.test/",
        auth,
        cast(Http2Transport, transport),
        default_topic=default_topic,
        token_cache=cache,
    )


def header_names(request: Request) -> list[str]:
    return [line.split(":", 1)[0].lower() for line in request.headers]


async def test_every_header_once(auth: ApnsTokenAuth, cache: ApnsTokenCache) -> None:
    transport = RecordingTransport()
    notification = ApnsNotification(
        PAYLOAD,
        push_type="alert",
        priority=5,
        topic="com.example.other",
        collapse_id="score",
        expiration=1_900_000_000,
    )
    token = apns_token()
    [result] = await client(transport, auth, cache).send_many([(token, notification)])
    assert result.outcome is Outcome.SUCCESS
    [[request]] = transport.batches
    assert (request.method, request.url, request.body) == (
        "POST",
        f"https://apns.test/3/device/{token}",
        PAYLOAD,
    )
    assert list(request.headers) == [
        f"authorization: bearer {cache.token(auth)}",
        "apns-push-type: alert",
        "apns-topic: com.example.other",
        "apns-priority: 5",
        "apns-expiration: 1900000000",
        "apns-collapse-id: score",
        "content-type: application/json",
        "accept:",
    ]
    names = header_names(request)
    assert len(names) == len(set(names))
    assert request.pool == f"apns-token:{TEAM}:{KEY_ID}" and request.client_cert is None


async def test_minimal_headers_and_default_topic(
    auth: ApnsTokenAuth, cache: ApnsTokenCache
) -> None:
    transport = RecordingTransport()
    await client(transport, auth, cache).send_many([(apns_token(), ApnsNotification(PAYLOAD))])
    [[request]] = transport.batches
    assert header_names(request) == [
        "authorization",
        "apns-push-type",
        "apns-topic",
        "content-type",
        "accept",
    ]
    assert "apns-topic: com.example.app" in request.headers


async def test_certificate_auth_sends_no_authorization_and_no_topic_unless_set() -> None:
    transport = RecordingTransport()
    auth = ApnsCertificateAuth("CERT PEM", "KEY PEM")
    await client(transport, auth, default_topic=None).send_many(
        [(apns_token(), ApnsNotification(PAYLOAD))]
    )
    [[request]] = transport.batches
    assert header_names(request) == ["apns-push-type", "content-type", "accept"]
    assert request.client_cert is not None
    assert request.client_cert.cert_pem == b"CERT PEM"


async def test_one_header_tuple_per_notification_in_a_fan_out(
    auth: ApnsTokenAuth, cache: ApnsTokenCache
) -> None:
    transport = RecordingTransport()
    notification = ApnsNotification(PAYLOAD)
    await client(transport, auth, cache).send_many([(apns_token(), notification)] * 50)
    [batch] = transport.batches
    assert len(batch) == 50 and len({id(r.headers) for r in batch}) == 1


@pytest.mark.parametrize(
    ("notification", "reason", "outcome"),
    [
        pytest.param(
            ApnsNotification(b"{" + b" " * 4094 + b"}" + b" "),
            "PayloadTooLarge",
            Outcome.FAIL_PERMANENT,
            id="4097-bytes",
        ),
        pytest.param(
            ApnsNotification(b" " * 5121, push_type="voip", topic="com.example.app.voip"),
            "PayloadTooLarge",
            Outcome.FAIL_PERMANENT,
            id="voip-5121-bytes",
        ),
        pytest.param(
            ApnsNotification(PAYLOAD, collapse_id="x" * 65),
            "BadCollapseId",
            Outcome.FAIL_PERMANENT,
            id="collapse-id-65-bytes",
        ),
        pytest.param(
            ApnsNotification(PAYLOAD, collapse_id="a\r\nx-injected: 1"),
            "BadCollapseId",
            Outcome.FAIL_PERMANENT,
            id="collapse-id-crlf",
        ),
        pytest.param(
            ApnsNotification(PAYLOAD, topic="com.example\napp"),
            "BadTopic",
            Outcome.CONFIG_ERROR,
            id="topic-newline",
        ),
        pytest.param(
            ApnsNotification(PAYLOAD, push_type="al ert\n"),
            "InvalidPushType",
            Outcome.FAIL_PERMANENT,
            id="push-type",
        ),
    ],
)
async def test_refused_without_a_request(
    auth: ApnsTokenAuth,
    cache: ApnsTokenCache,
    notification: ApnsNotification,
    reason: str,
    outcome: Outcome,
) -> None:
    transport = RecordingTransport()
    [result] = await client(transport, auth, cache).send_many([(apns_token(), notification)])
    assert (result.outcome, result.reason, result.status) == (outcome, reason, 0)
    assert transport.batches == []


@pytest.mark.parametrize("size, push_type", [(4096, "alert"), (5120, "voip")])
async def test_payloads_at_the_limit_are_sent(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, size: int, push_type: str
) -> None:
    transport = RecordingTransport()
    notification = ApnsNotification(b" " * size, push_type=push_type)
    [result] = await client(transport, auth, cache).send_many([(apns_token(), notification)])
    assert result.outcome is Outcome.SUCCESS


@pytest.mark.parametrize("token", ["", "abc", "zz" * 32, "ab/../cd", "ab cd", "ab?x=1"])
async def test_malformed_device_tokens_never_reach_a_url(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, token: str
) -> None:
    transport = RecordingTransport()
    [bad, good] = await client(transport, auth, cache).send_many(
        [(token, ApnsNotification(PAYLOAD)), (apns_token(), ApnsNotification(PAYLOAD))]
    )
    assert (bad.outcome, bad.reason) == (Outcome.DISABLE_ENDPOINT, "BadDeviceToken")
    assert good.outcome is Outcome.SUCCESS
    assert len(transport.batches[0]) == 1


async def test_another_providers_notification_fails(
    auth: ApnsTokenAuth, cache: ApnsTokenCache
) -> None:
    transport = RecordingTransport()
    [result] = await client(transport, auth, cache).send_many(
        [(apns_token(), FcmNotification({"data": {"a": "b"}}))]
    )
    assert (result.outcome, result.reason) == (Outcome.FAIL_PERMANENT, "WrongPlatform")
    assert transport.batches == []


async def test_results_keep_the_order_of_items(auth: ApnsTokenAuth, cache: ApnsTokenCache) -> None:
    answers = [response(200), response(410, b'{"reason":"Unregistered","timestamp":5}')]
    transport = RecordingTransport(answers)
    results = await client(transport, auth, cache).send_many(
        [
            (apns_token(), ApnsNotification(PAYLOAD)),
            ("not-hex", ApnsNotification(PAYLOAD)),
            (apns_token(), ApnsNotification(PAYLOAD)),
        ]
    )
    assert [r.outcome for r in results] == [
        Outcome.SUCCESS,
        Outcome.DISABLE_ENDPOINT,
        Outcome.DISABLE_ENDPOINT,
    ]
    assert [r.invalid_since_ms for r in results] == [None, None, 5]


# -- refusing the provider token ---------------------------------------------------------

EXPIRED = response(403, b'{"reason":"ExpiredProviderToken"}')
INVALID = response(403, b'{"reason":"InvalidProviderToken"}')
CHURN = response(429, b'{"reason":"TooManyProviderTokenUpdates"}')


def authorization(request: Request) -> str:
    return request.headers[0].removeprefix("authorization: bearer ")


async def test_expired_token_is_replaced_and_the_request_sent_again(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    old = cache.token(auth)
    clock.now += 30 * 60
    transport = RecordingTransport([EXPIRED, response(200)], [response(200)])
    results = await client(transport, auth, cache).send_many(
        [(apns_token(), ApnsNotification(PAYLOAD)) for _ in range(2)]
    )
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
    first, retry = transport.batches
    assert [authorization(r) for r in first] == [old, old]
    assert len(retry) == 1 and authorization(retry[0]) == cache.token(auth) != old
    assert retry[0].url == first[0].url and retry[0].headers[1:] == first[0].headers[1:]


async def test_expired_twice_is_a_config_error(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    cache.token(auth)
    clock.now += 30 * 60
    transport = RecordingTransport(EXPIRED, EXPIRED)
    [result] = await client(transport, auth, cache).send_many(
        [(apns_token(), ApnsNotification(PAYLOAD))]
    )
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        403,
        "ExpiredProviderToken",
    )
    assert len(transport.batches) == 2


async def test_invalid_token_within_20_minutes_is_not_reminted(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    token = cache.token(auth)
    clock.now += 60
    transport = RecordingTransport(INVALID)
    [result] = await client(transport, auth, cache).send_many(
        [(apns_token(), ApnsNotification(PAYLOAD))]
    )
    assert (result.outcome, result.reason) == (Outcome.CONFIG_ERROR, "InvalidProviderToken")
    assert len(transport.batches) == 1 and cache.token(auth) == token


async def test_invalid_token_after_20_minutes_gets_one_refresh(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    token = cache.token(auth)
    clock.now += 25 * 60
    transport = RecordingTransport(INVALID, response(200))
    [result] = await client(transport, auth, cache).send_many(
        [(apns_token(), ApnsNotification(PAYLOAD))]
    )
    assert result.outcome is Outcome.SUCCESS
    assert authorization(transport.batches[1][0]) != token


async def test_too_many_token_updates_backs_off_without_minting(
    auth: ApnsTokenAuth, cache: ApnsTokenCache, clock: Clock
) -> None:
    token = cache.token(auth)
    clock.now += 25 * 60
    transport = RecordingTransport(CHURN)
    [result] = await client(transport, auth, cache).send_many(
        [(apns_token(), ApnsNotification(PAYLOAD))]
    )
    assert (result.outcome, result.reason) == (Outcome.RETRY_BACKOFF, "TooManyProviderTokenUpdates")
    assert len(transport.batches) == 1 and cache.token(auth) == token


async def test_close_leaves_the_shared_transport_alone(auth: ApnsTokenAuth) -> None:
    transport = Http2Transport()
    await ApnsClient("https://apns.test", auth, transport).close()
    assert not transport._dead
    await transport.close()


# -- over real sockets (fixtures fakes, key and transport: conftest.py) ------------------


def token_client(
    fakes: FakeProviders,
    transport: Http2Transport,
    key: ApnsSigningKey,
    cache: ApnsTokenCache | None = None,
) -> ApnsClient:
    auth = ApnsTokenAuth(key.private_key_pem, key.key_id, key.team_id)
    return ApnsClient(
        fakes.apns.url, auth, transport, default_topic=BUNDLE, token_cache=cache or ApnsTokenCache()
    )


async def test_token_auth_delivers_with_every_header(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    notification = ApnsNotification(
        PAYLOAD, priority=10, collapse_id="game-1", expiration=int(time.time()) + 3600
    )
    token = apns_token()
    [result] = await token_client(fakes, transport, key).send_many([(token, notification)])
    assert result.outcome is Outcome.SUCCESS and result.latency_ms > 0
    [push] = fakes.apns.received
    assert (push.token, push.status, push.key_id, push.team_id) == (token, 200, key.key_id, TEAM)
    assert push.payload == PAYLOAD and push.warnings == ()
    assert push.headers["apns-push-type"] == "alert"
    assert push.headers["apns-topic"] == BUNDLE
    assert push.headers["apns-priority"] == "10"
    assert push.headers["apns-collapse-id"] == "game-1"
    assert push.headers[":path"] == f"/3/device/{token}"
    assert push.headers["authorization"].startswith("bearer ")
    assert fakes.apns.priority_frames == []


async def test_certificate_auth_delivers(fakes: FakeProviders, transport: Http2Transport) -> None:
    cert_pem, key_pem = fakes.apns.register_certificate(bundle_id=BUNDLE)
    apns_client = ApnsClient(fakes.apns.url, ApnsCertificateAuth(cert_pem, key_pem), transport)
    results = await apns_client.send_many(
        [(apns_token(), ApnsNotification(PAYLOAD)) for _ in range(20)]
    )
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    assert {p.certificate_uid for p in fakes.apns.received} == {BUNDLE}
    assert all("authorization" not in p.headers for p in fakes.apns.received)


async def test_one_jwt_across_clients_requests_and_connections(
    fakes: FakeProviders, key: ApnsSigningKey
) -> None:
    # Two transports (so two sets of connections) and two clients built apart, with the
    # process-wide cache: APNs sees one token.
    first, second = Http2Transport(ca_file=fakes.ca_file), Http2Transport(ca_file=fakes.ca_file)
    auth = ApnsTokenAuth(key.private_key_pem, key.key_id, key.team_id)
    try:
        for transport in (first, second, first):
            apns_client = ApnsClient(fakes.apns.url, auth, transport, default_topic=BUNDLE)
            results = await apns_client.send_many(
                [(apns_token(), ApnsNotification(PAYLOAD)) for _ in range(100)]
            )
            assert {r.outcome for r in results} == {Outcome.SUCCESS}
    finally:
        await first.close()
        await second.close()
    received = fakes.apns.received
    assert len(received) == 300
    assert len({p.headers["authorization"] for p in received}) == 1
    assert len({p.connection_id for p in received}) >= 2


async def test_expired_provider_token_refreshed_over_the_wire(
    fakes: FakeProviders,
    transport: Http2Transport,
    key: ApnsSigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Apple may expire a token before its hour is up: here after 20 minutes, while the
    # cached one is 25 minutes old.
    monkeypatch.setattr(fakes.apns, "max_token_age", 20 * 60)
    clock = Clock(time.time() - 25 * 60)
    cache = ApnsTokenCache(clock)
    stale = cache.token(ApnsTokenAuth(key.private_key_pem, key.key_id, key.team_id))
    clock.now = time.time()
    results = await token_client(fakes, transport, key, cache).send_many(
        [(apns_token(), ApnsNotification(PAYLOAD)) for _ in range(3)]
    )
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    received = fakes.apns.received
    assert Counter(p.reason for p in received) == {"ExpiredProviderToken": 3, None: 3}
    tokens = [p.headers["authorization"].removeprefix("bearer ") for p in received]
    assert set(tokens[:3]) == {stale} and len(set(tokens[3:])) == 1 and tokens[3] != stale


async def test_provider_token_from_the_wrong_key_is_a_config_error(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    auth = ApnsTokenAuth(ec_key_pem(), key.key_id, key.team_id)  # not the registered key
    apns_client = ApnsClient(
        fakes.apns.url, auth, transport, default_topic=BUNDLE, token_cache=ApnsTokenCache()
    )
    [result] = await apns_client.send_many([(apns_token(), ApnsNotification(PAYLOAD))])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        403,
        "InvalidProviderToken",
    )
    assert len(fakes.apns.received) == 1  # no new token within 20 minutes, so no retry


async def test_unregistered_with_its_timestamp(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    token = apns_token()
    fakes.apns.set_token_state(token, "unregistered", timestamp_ms=1_700_000_000_123)
    [result] = await token_client(fakes, transport, key).send_many(
        [(token, ApnsNotification(PAYLOAD))]
    )
    assert (result.outcome, result.status, result.reason) == (
        Outcome.DISABLE_ENDPOINT,
        410,
        "Unregistered",
    )
    assert result.invalid_since_ms == 1_700_000_000_123


@pytest.mark.parametrize(
    ("state", "status", "reason", "outcome"),
    [
        ("expired", 410, "ExpiredToken", Outcome.DISABLE_ENDPOINT),
        ("other_env", 400, "BadDeviceToken", Outcome.DISABLE_ENDPOINT),
        ("other_topic", 400, "DeviceTokenNotForTopic", Outcome.DISABLE_ENDPOINT),
    ],
)
async def test_token_states(
    fakes: FakeProviders,
    transport: Http2Transport,
    key: ApnsSigningKey,
    state: Any,
    status: int,
    reason: str,
    outcome: Outcome,
) -> None:
    token = apns_token()
    fakes.apns.set_token_state(token, state)
    [result] = await token_client(fakes, transport, key).send_many(
        [(token, ApnsNotification(PAYLOAD))]
    )
    assert (result.outcome, result.status, result.reason) == (outcome, status, reason)


@pytest.mark.parametrize(
    ("status", "reason", "retry_after", "outcome"),
    [
        (429, "TooManyRequests", None, Outcome.RETRY_BACKOFF),
        (429, "TooManyRequests", 30, Outcome.RETRY_AFTER),
        (500, "InternalServerError", None, Outcome.RETRY_BACKOFF),
        (503, "ServiceUnavailable", None, Outcome.RETRY_BACKOFF),
        (503, "ServiceUnavailable", 5, Outcome.RETRY_AFTER),
        (429, "TooManyProviderTokenUpdates", None, Outcome.RETRY_BACKOFF),
    ],
)
async def test_scripted_failures(
    fakes: FakeProviders,
    transport: Http2Transport,
    key: ApnsSigningKey,
    status: int,
    reason: str,
    retry_after: float | None,
    outcome: Outcome,
) -> None:
    fakes.apns.script(status=status, reason=reason, retry_after=retry_after)
    apns_client = token_client(fakes, transport, key)
    first, second = await apns_client.send_many(
        [(apns_token(), ApnsNotification(PAYLOAD)) for _ in range(2)]
    )
    failed = first if first.outcome is not Outcome.SUCCESS else second
    assert {first.outcome, second.outcome} == {outcome, Outcome.SUCCESS}
    assert (failed.status, failed.reason, failed.retry_after) == (
        status,
        reason,
        None if retry_after is None else float(retry_after),
    )


async def test_dropped_connection_is_retry_backoff(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    fakes.apns.script(status=None, drop_connection=True)  # on the very first connection
    apns_client = token_client(fakes, transport, key)
    [dropped] = await apns_client.send_many([(apns_token(), ApnsNotification(PAYLOAD))])
    assert (dropped.outcome, dropped.status) == (Outcome.RETRY_BACKOFF, 0)
    assert dropped.response.startswith("curl error")
    [after] = await apns_client.send_many([(apns_token(), ApnsNotification(PAYLOAD))])
    assert after.outcome is Outcome.SUCCESS


async def test_500_concurrent_from_a_cold_start_at_one_stream(
    fakes: FakeProviders, key: ApnsSigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Token connections start at SETTINGS_MAX_CONCURRENT_STREAMS 1; strict mode answers a
    # stream too many with GOAWAY, so one excess stream would fail requests.
    monkeypatch.setattr(fakes.apns, "goaway_on_excess_streams", True)
    transport = Http2Transport(ca_file=fakes.ca_file)
    try:
        apns_client = token_client(fakes, transport, key)
        results = await apns_client.send_many(
            [(apns_token(), ApnsNotification(PAYLOAD)) for _ in range(500)]
        )
    finally:
        await transport.close()
    assert Counter(r.outcome for r in results) == {Outcome.SUCCESS: 500}
    received = fakes.apns.received
    assert len(received) == 500 and 1 <= len({p.connection_id for p in received}) <= 4


async def test_missing_topic_under_token_auth(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    auth = ApnsTokenAuth(key.private_key_pem, key.key_id, key.team_id)
    apns_client = ApnsClient(fakes.apns.url, auth, transport, token_cache=ApnsTokenCache())
    [result] = await apns_client.send_many([(apns_token(), ApnsNotification(PAYLOAD))])
    assert (result.outcome, result.reason) == (Outcome.CONFIG_ERROR, "MissingTopic")


async def test_sandbox_is_another_base_url(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    auth = ApnsTokenAuth(key.private_key_pem, key.key_id, key.team_id)
    sandbox = ApnsClient(
        fakes.apns_sandbox.url, auth, transport, default_topic=BUNDLE, token_cache=ApnsTokenCache()
    )
    [result] = await sandbox.send_many([(apns_token(), ApnsNotification(PAYLOAD))])
    assert result.outcome is Outcome.SUCCESS
    assert len(fakes.apns_sandbox.delivered) == 1 and fakes.apns.received == []
