"""The Web Push client: subscriptions, RFC 8291 encryption, VAPID, the sec. 6.2 table, and
delivery to the strict fake over real TLS sockets."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any, cast

import http_ece  # type: ignore[import-untyped]
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from pushgate.fakes.webpush import FakeWebPush
from pushgate.providers import webpush
from pushgate.providers.notifications import FcmNotification, Notification, WebPushNotification
from pushgate.providers.outcomes import Outcome
from pushgate.providers.transport import Http2Transport, Request, Response
from pushgate.providers.webpush import (
    Subscription,
    WebPushClient,
    build_vapid_jwt,
    canonical_token,
    classify,
    encrypt,
    origin,
    parse_subscription,
)
from tests.providers import ec_key_pem, response, rsa_key_pem

T0 = 1_800_000_000.0
SUBJECT = "mailto:ops@example.com"
KEY_PEM = ec_key_pem()
KEY = webpush.load_private_key(KEY_PEM)
PUBLIC = webpush.public_key_text(KEY)


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- RFC 8291 encryption with http_ece ----------------------------------------------------

# RFC 8291 Appendix A, "Encryption Example": every input, and the resulting body.
RFC_PLAINTEXT = "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAm"
    "S6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj"
    "_Qulcy4a-fN"
)


def _scalar_key(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64(text), "big"), ec.SECP256R1())


def test_http_ece_aes128gcm_is_rfc_8291() -> None:
    """http_ece's ``encrypt(..., version="aes128gcm")`` with the RFC's keys and salt gives
    the RFC's body byte for byte: the 86-byte header (salt 16, rs 4, idlen 1, keyid 65 =
    the sender's public key) and one record."""
    body = http_ece.encrypt(
        unb64(RFC_PLAINTEXT),
        salt=unb64(RFC_SALT),
        private_key=_scalar_key(RFC_AS_PRIVATE),
        dh=unb64(RFC_UA_PUBLIC),
        auth_secret=unb64(RFC_AUTH),
        version="aes128gcm",
        rs=4096,
    )
    assert body == unb64(RFC_BODY)
    assert body[:16] == unb64(RFC_SALT)
    assert int.from_bytes(body[16:20], "big") == 4096
    assert body[20] == 65 and body[21:86] == unb64(RFC_AS_PUBLIC)
    assert len(body) == 86 + len(unb64(RFC_PLAINTEXT)) + 1 + 16
    plain = http_ece.decrypt(
        body, private_key=_scalar_key(RFC_UA_PRIVATE), auth_secret=unb64(RFC_AUTH)
    )
    assert plain == b"When I grow up, I want to be a watermelon"


def test_encrypt_uses_a_fresh_salt_and_sender_key_each_time() -> None:
    receiver = _scalar_key(RFC_UA_PRIVATE)
    sub = Subscription("https://push.test/x", unb64(RFC_UA_PUBLIC), unb64(RFC_AUTH))
    first, second = encrypt(b"hello", sub), encrypt(b"hello", sub)
    for body in (first, second):
        assert len(body) == 86 + 5 + 17
        assert (int.from_bytes(body[16:20], "big"), body[20], body[21]) == (4096, 65, 4)
        assert http_ece.decrypt(body, private_key=receiver, auth_secret=sub.auth) == b"hello"
    assert first[:16] != second[:16] and first[21:86] != second[21:86]


def test_largest_plaintext_fills_4096_bytes() -> None:
    sub = Subscription("https://push.test/x", unb64(RFC_UA_PUBLIC), unb64(RFC_AUTH))
    assert webpush.MAX_PLAINTEXT == 3993
    assert len(encrypt(b"a" * 3993, sub)) == 4096


# -- subscriptions ---------------------------------------------------------------------------

P256DH = webpush.b64url_encode(
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
)
AUTH = webpush.b64url_encode(b"0123456789abcdef")
ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc:def"


def subscription_json(**changes: Any) -> str:
    document: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "expirationTime": None,
        "keys": {"p256dh": P256DH, "auth": AUTH},
    }
    document.update(changes)
    return json.dumps(document)


def test_parse_subscription() -> None:
    sub = parse_subscription(subscription_json())
    assert sub == Subscription(ENDPOINT, unb64(P256DH), b"0123456789abcdef")


def test_canonical_token_is_one_text_per_subscription() -> None:
    canonical = canonical_token(parse_subscription(subscription_json()))
    assert canonical == (
        f'{{"endpoint":"{ENDPOINT}","keys":{{"auth":"{AUTH}","p256dh":"{P256DH}"}}}}'
    )
    variants = [
        subscription_json(expirationTime=1_900_000_000_000, extra="x"),
        json.dumps({"keys": {"auth": AUTH + "==", "p256dh": P256DH + "="}, "endpoint": ENDPOINT}),
        json.dumps(json.loads(subscription_json()), indent=4),
        canonical,
    ]
    assert {canonical_token(parse_subscription(v)) for v in variants} == {canonical}


BAD_POINT = webpush.b64url_encode(b"\x04" + bytes(64))


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("not json", "the token is not JSON (a PushSubscription as toJSON() gives)"),
        ("[1]", "the token is not a JSON object"),
        (subscription_json(endpoint=""), "the subscription has no endpoint"),
        (subscription_json(endpoint=None), "the subscription has no endpoint"),
        (subscription_json(endpoint=ENDPOINT + "x" * 2048), "longer than 2048 bytes"),
        (subscription_json(endpoint=ENDPOINT + "\u00e9"), "not an ASCII URL"),
        (subscription_json(endpoint=ENDPOINT + "\ud800"), "not an ASCII URL"),
        (subscription_json(keys=None), "the subscription has no keys object"),
        (subscription_json(keys={"p256dh": P256DH}), "need p256dh and auth strings"),
        (subscription_json(keys={"p256dh": P256DH, "auth": 5}), "need p256dh and auth strings"),
        (subscription_json(keys={"p256dh": P256DH, "auth": "a+b/"}), "are not base64url"),
        (subscription_json(keys={"p256dh": P256DH, "auth": "AAAA"}), "keys.auth is 3 bytes"),
        (subscription_json(keys={"p256dh": BAD_POINT, "auth": AUTH}), "keys.p256dh is not"),
        (subscription_json(keys={"p256dh": P256DH[:-4], "auth": AUTH}), "keys.p256dh is not"),
        (subscription_json(keys={"p256dh": AUTH, "auth": AUTH}), "keys.p256dh is not"),
    ],
)
def test_bad_subscriptions(token: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_subscription(token)
    assert AUTH not in str(caught.value) and P256DH not in str(caught.value)


# -- VAPID -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "audience"),
    [
        ("https://fcm.googleapis.com/fcm/send/x?y=1", "https://fcm.googleapis.com"),
        ("https://Updates.Push.Services.Mozilla.com:443/wpush/v2/x", "https://updates.push.services.mozilla.com"),
        ("https://127.0.0.1:8443/push/x", "https://127.0.0.1:8443"),
        ("https://[::1]:8443/push/x", "https://[::1]:8443"),
    ],
)  # fmt: skip
def test_audience_is_the_origin(endpoint: str, audience: str) -> None:
    assert origin(endpoint) == audience


def test_vapid_jwt() -> None:
    token = build_vapid_jwt(KEY, "https://push.test", SUBJECT, T0 + 0.9)
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": "ES256", "typ": "JWT"}
    assert len(unb64(token.split(".")[2])) == 64  # JOSE r || s, not DER
    claims = jwt.decode(
        token,
        KEY.public_key(),
        algorithms=["ES256"],
        audience="https://push.test",
        options={"verify_exp": False},
    )
    assert claims == {"aud": "https://push.test", "exp": int(T0) + 12 * 3600, "sub": SUBJECT}


def test_client_key_must_be_p256() -> None:
    for pem in (rsa_key_pem(), "not a key"):
        with pytest.raises(ValueError, match="VAPID key"):
            WebPushClient(pem, SUBJECT, Http2Transport(), ["push.test"])


# -- the sec. 6.2 table ----------------------------------------------------------------------

APPLE_JWT = b'{"reason":"BadJwtToken"}'


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "outcome", "reason", "wait"),
    [
        (201, b"", None, Outcome.SUCCESS, "", None),
        (200, b"", None, Outcome.SUCCESS, "", None),
        (202, b"", None, Outcome.SUCCESS, "", None),
        (400, b"", None, Outcome.FAIL_PERMANENT, "BadRequest", None),
        (401, b"", None, Outcome.CONFIG_ERROR, "Unauthorized", None),
        (403, APPLE_JWT, None, Outcome.CONFIG_ERROR, "BadJwtToken", None),
        (403, b"<html>", None, Outcome.CONFIG_ERROR, "Forbidden", None),
        (404, b"", None, Outcome.DISABLE_ENDPOINT, "NotFound", None),
        (410, b'{"reason":"Unregistered"}', None, Outcome.DISABLE_ENDPOINT, "Unregistered", None),
        (410, b"", 30.0, Outcome.DISABLE_ENDPOINT, "Gone", None),
        (413, b"", None, Outcome.FAIL_PERMANENT, "PayloadTooLarge", None),
        (429, b"", 12.0, Outcome.RETRY_AFTER, "TooManyRequests", 12.0),
        (429, b"", None, Outcome.RETRY_AFTER, "TooManyRequests", 60.0),
        (500, b"", None, Outcome.RETRY_BACKOFF, "InternalServerError", None),
        (502, b"<html>", None, Outcome.RETRY_BACKOFF, "BadGateway", None),
        (503, b"", 5.0, Outcome.RETRY_AFTER, "ServiceUnavailable", 5.0),
        (409, b"", None, Outcome.FAIL_PERMANENT, "HTTP409", None),
        (599, b"", None, Outcome.RETRY_BACKOFF, "HTTP599", None),
    ],
)  # fmt: skip
def test_classify(
    status: int,
    body: bytes,
    retry_after: float | None,
    outcome: Outcome,
    reason: str,
    wait: float | None,
) -> None:
    result = classify(response(status, body, retry_after=retry_after))
    assert (result.outcome, result.status, result.reason, result.retry_after) == (
        outcome,
        status,
        reason,
        wait,
    )
    assert result.response == body.decode()


def test_no_answer_is_retried() -> None:
    result = classify(response(0, error="Connection refused"))
    assert (result.outcome, result.reason, result.response) == (
        Outcome.RETRY_BACKOFF,
        "NoResponse",
        "Connection refused",
    )


# -- request shape, with a stand-in transport ---------------------------------------------------


class Recorder:
    """Stands in for Http2Transport where no fake can listen (a WNS host name)."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    async def request_many(self, reqs: Sequence[Request]) -> list[Response]:
        self.sent.extend(reqs)
        return [response(201) for _ in reqs]


def subscription_at(endpoint: str) -> str:
    return subscription_json(endpoint=endpoint)


async def test_edge_endpoints_get_a_matching_wns_cache_policy() -> None:
    recorder = Recorder()
    client = WebPushClient(
        KEY_PEM, SUBJECT, cast(Http2Transport, recorder), ["*.notify.windows.com"]
    )
    wns = subscription_at("https://wns2-par02p.notify.windows.com/w/?token=abc")
    results = await client.send_many(
        [
            (wns, WebPushNotification(b"x", ttl=60)),
            (wns, WebPushNotification(b"x", ttl=0)),
        ]
    )
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    assert "x-wns-cache-policy: cache" in recorder.sent[0].headers
    assert "x-wns-cache-policy: no-cache" in recorder.sent[1].headers


# -- over real sockets, against the fake ------------------------------------------------------


@pytest.fixture
def fake(fakes: FakeProviders) -> FakeWebPush:
    return fakes.webpush


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def client(fake: FakeWebPush, transport: Http2Transport, clock: Clock) -> WebPushClient:
    return WebPushClient(KEY_PEM, SUBJECT, transport, [fake.allowed_host], clock=clock)


def token(fake: FakeWebPush, **kwargs: Any) -> str:
    return json.dumps(fake.create_subscription(**kwargs))


NOTE = WebPushNotification(b'{"default":"hello"}', ttl=3600, urgency="high", topic="order-42")


async def test_delivery(fake: FakeWebPush, client: WebPushClient) -> None:
    subscription = token(fake)
    [result] = await client.send_many([(subscription, NOTE)])
    assert (result.outcome, result.status, result.reason) == (Outcome.SUCCESS, 201, "")
    [push] = fake.delivered
    assert push.plaintext == b'{"default":"hello"}'
    assert len(push.raw) == 86 + len(NOTE.payload) + 17
    assert (push.ttl, push.urgency, push.topic) == (3600, "high", "order-42")
    assert push.vapid_subject == SUBJECT and push.vapid_key == PUBLIC
    headers = push.headers
    assert headers[":method"] == "POST"
    assert headers[":path"] == "/push/" + json.loads(subscription)["endpoint"].rsplit("/", 1)[1]
    assert headers["ttl"] == "3600"
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["urgency"] == "high" and headers["topic"] == "order-42"
    scheme, _, params = headers["authorization"].partition(" ")
    t, k = params.split(", ")
    assert (scheme, k) == ("vapid", f"k={PUBLIC}")
    claims = jwt.decode(t.removeprefix("t="), KEY.public_key(), ["ES256"], audience=fake.url)
    assert claims["sub"] == SUBJECT
    assert "x-wns-cache-policy" not in headers


async def test_fan_out_encrypts_per_subscription(fake: FakeWebPush, client: WebPushClient) -> None:
    tokens = [token(fake) for _ in range(webpush.ENCRYPTIONS_PER_YIELD + 8)]
    results = await client.send_many([(t, NOTE) for t in tokens])
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    delivered = fake.delivered
    assert {p.plaintext for p in delivered} == {NOTE.payload}
    assert len({p.raw[21:86] for p in delivered}) == len(tokens)  # a sender key per message
    assert len({p.raw[:16] for p in delivered}) == len(tokens)  # and a salt
    assert sorted(p.subscription_id or "" for p in delivered) == sorted(
        json.loads(t)["endpoint"].rsplit("/", 1)[1] for t in tokens
    )


async def test_push_without_payload(fake: FakeWebPush, client: WebPushClient) -> None:
    [result] = await client.send_many([(token(fake), WebPushNotification(b"", ttl=0))])
    assert result.outcome is Outcome.SUCCESS
    [push] = fake.delivered
    assert (push.raw, push.plaintext, push.ttl) == (b"", None, 0)
    assert "content-encoding" not in push.headers and "content-type" not in push.headers


async def test_jwt_is_reused_per_audience_until_an_hour_before_expiry(
    fake: FakeWebPush,
    client: WebPushClient,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscriptions = [token(fake) for _ in range(3)]
    for subscription in subscriptions:
        await client.send_many([(subscription, NOTE)])
    clock.now += 11 * 3600 - 1
    await client.send_many([(subscriptions[0], NOTE)])
    clock.now += 1
    # the fake must agree that the new JWT is not too far ahead
    monkeypatch.setattr(fake, "clock", clock)
    await client.send_many([(subscriptions[0], NOTE)])
    auth = [p.headers["authorization"] for p in fake.delivered]
    assert len(auth) == 5 and len(set(auth[:4])) == 1 and auth[4] != auth[0]


async def test_ttl_is_what_is_left_of_it(
    fake: FakeWebPush, client: WebPushClient, clock: Clock
) -> None:
    subscription = token(fake)
    later = WebPushNotification(b"x", ttl=3600, expires_at=clock.now + 100.7)
    gone = WebPushNotification(b"x", ttl=3600, expires_at=clock.now - 5)
    await client.send_many([(subscription, later), (subscription, gone)])
    assert sorted(p.ttl or 0 for p in fake.delivered) == [0, 100]


async def test_payload_too_large_is_refused_locally(
    fake: FakeWebPush, client: WebPushClient
) -> None:
    subscription = token(fake)
    big = WebPushNotification(b"a" * 3994, ttl=60)
    fits = WebPushNotification(b"a" * 3993, ttl=60)
    [refused, sent] = await client.send_many([(subscription, big), (subscription, fits)])
    assert (refused.outcome, refused.reason, refused.status) == (
        Outcome.FAIL_PERMANENT,
        "PayloadTooLarge",
        0,
    )
    assert sent.outcome is Outcome.SUCCESS
    assert [len(p.raw) for p in fake.received] == [4096]


async def test_bad_tokens_and_hosts_are_never_requested(
    fake: FakeWebPush, client: WebPushClient
) -> None:
    good = token(fake)
    elsewhere = json.loads(good)
    elsewhere["endpoint"] = "https://evil.example/push/x"
    plain_http = dict(elsewhere, endpoint=json.loads(good)["endpoint"].replace("https", "http"))
    other_port = dict(elsewhere, endpoint="https://127.0.0.1:1/push/x")
    items: list[tuple[str, Notification]] = [
        ("not json", NOTE),
        (json.dumps(elsewhere), NOTE),
        (json.dumps(plain_http), NOTE),
        (json.dumps(other_port), NOTE),
        (good, FcmNotification({})),
        (good, NOTE),
    ]
    results = await client.send_many(items)
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.FAIL_PERMANENT, "InvalidSubscription"),
        (Outcome.FAIL_PERMANENT, "ForbiddenEndpointHost"),
        (Outcome.FAIL_PERMANENT, "ForbiddenEndpointHost"),
        (Outcome.FAIL_PERMANENT, "ForbiddenEndpointHost"),
        (Outcome.FAIL_PERMANENT, "WrongPlatform"),
        (Outcome.SUCCESS, ""),
    ]
    assert (
        results[1].response
        == "the endpoint is refused: host evil.example:443 is not on the allow-list"
    )
    assert results[2].response == "the endpoint is refused: not an https URL"
    assert len(fake.received) == 1


async def test_dead_subscriptions_disable_their_endpoints(
    fake: FakeWebPush, client: WebPushClient
) -> None:
    expired, unknown, alive = token(fake), token(fake), token(fake)
    fake.set_subscription_state(json.loads(expired)["endpoint"], "expired")
    fake.set_subscription_state(json.loads(unknown)["endpoint"], "unknown")
    results = await client.send_many([(expired, NOTE), (unknown, NOTE), (alive, NOTE)])
    assert [(r.outcome, r.status, r.reason) for r in results] == [
        (Outcome.DISABLE_ENDPOINT, 410, "ExpiredSubscription"),
        (Outcome.DISABLE_ENDPOINT, 404, "UnknownSubscription"),
        (Outcome.SUCCESS, 201, ""),
    ]


async def test_refused_vapid_is_a_config_error(
    fake: FakeWebPush,
    transport: Http2Transport,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fake, "apple_strict", True)
    local = WebPushClient(
        KEY_PEM, "mailto:admin@localhost", transport, [fake.allowed_host], clock=clock
    )
    [result] = await local.send_many([(token(fake), NOTE)])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.CONFIG_ERROR,
        403,
        "BadJwtToken",
    )
    assert result.response == '{"reason": "BadJwtToken"}'


async def test_subscription_of_another_key_is_refused(
    fake: FakeWebPush, client: WebPushClient
) -> None:
    other = webpush.public_key_text(ec.generate_private_key(ec.SECP256R1()))
    bound = token(fake, application_server_key=other)
    mine = token(fake, application_server_key=PUBLIC)
    results = await client.send_many([(bound, NOTE), (mine, NOTE)])
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.CONFIG_ERROR, "VapidKeyMismatch"),
        (Outcome.SUCCESS, ""),
    ]


async def test_throttling_is_retried_after_the_hint(
    fake: FakeWebPush,
    client: WebPushClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fake, "rate_limit", RateLimiter(1, 3600))
    subscription = token(fake)
    first, second = await client.send_many([(subscription, NOTE), (subscription, NOTE)])
    outcomes = sorted([first, second], key=lambda r: r.status)
    assert outcomes[0].outcome is Outcome.SUCCESS
    throttled = outcomes[1]
    assert (throttled.outcome, throttled.status, throttled.reason) == (
        Outcome.RETRY_AFTER,
        429,
        "TooManyRequests",
    )
    assert throttled.retry_after is not None and throttled.retry_after > 0


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome", "wait"),
    [
        (500, None, Outcome.RETRY_BACKOFF, None),
        (503, 9.0, Outcome.RETRY_AFTER, 9.0),
        (400, None, Outcome.FAIL_PERMANENT, None),
        (413, None, Outcome.FAIL_PERMANENT, None),
        (401, None, Outcome.CONFIG_ERROR, None),
    ],
)
async def test_scripted_answers(
    fake: FakeWebPush,
    client: WebPushClient,
    status: int,
    retry_after: float | None,
    outcome: Outcome,
    wait: float | None,
) -> None:
    fake.script(status, retry_after=retry_after)
    [result] = await client.send_many([(token(fake), NOTE)])
    assert (result.outcome, result.status, result.retry_after) == (outcome, status, wait)


async def test_dropped_connection_is_retried(fake: FakeWebPush, client: WebPushClient) -> None:
    fake.script(drop_connection=True)
    [result] = await client.send_many([(token(fake), NOTE)])
    assert (result.outcome, result.status, result.reason) == (
        Outcome.RETRY_BACKOFF,
        0,
        "NoResponse",
    )
