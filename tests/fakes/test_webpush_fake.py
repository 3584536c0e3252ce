"""The Web Push fake, driven over real sockets by httpx (HTTP/2).

Requests are made here from first principles (http_ece for the body, PyJWT for VAPID), not
with pushgate's client, so that each rule of specs/providers.md sec. 10.6 is tested
against the fake alone, in its documented order.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import http_ece  # type: ignore[import-untyped]
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from pushgate.fakes.webpush import FakeWebPush
from tests.fakes import b64, encrypt, point, unb64

SUBJECT = "mailto:ops@example.com"
VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def vapid(
    fake: FakeWebPush,
    *,
    key: ec.EllipticCurvePrivateKey = VAPID_KEY,
    sent_key: ec.EllipticCurvePrivateKey | None = None,
    algorithm: str = "ES256",
    **claims: Any,
) -> str:
    body = {"aud": fake.url, "exp": int(time.time()) + 12 * 3600, "sub": SUBJECT, **claims}
    body = {name: value for name, value in body.items() if value is not None}
    token = jwt.encode(body, key, algorithm=algorithm, headers={"typ": "JWT"})
    return f"vapid t={token}, k={b64(point(sent_key or key))}"


@pytest.fixture
def fake(fakes: FakeProviders) -> FakeWebPush:
    return fakes.webpush


@pytest.fixture
def sub(fake: FakeWebPush) -> dict[str, Any]:
    return fake.create_subscription()


async def push(
    client: httpx.AsyncClient,
    fake: FakeWebPush,
    sub: dict[str, Any],
    plaintext: bytes | None = b'{"default":"hello"}',
    *,
    body: bytes | None = None,
    drop: tuple[str, ...] = (),
    method: str = "POST",
    url: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> httpx.Response:
    """A push to ``sub`` with a valid encryption, TTL and VAPID unless overridden."""
    if body is None:
        body = encrypt(sub, plaintext) if plaintext is not None else b""
    sent = {"ttl": "60", "authorization": vapid(fake)}
    if body:
        sent |= {"content-encoding": "aes128gcm", "content-type": "application/octet-stream"}
    given = {**(headers or {}), **extra}
    sent |= {name.replace("_", "-"): value for name, value in given.items()}
    for name in drop:
        sent.pop(name)
    return await client.request(method, url or sub["endpoint"], headers=sent, content=body)


def refused(response: httpx.Response, status: int, reason: str) -> None:
    assert (response.status_code, response.json()) == (status, {"reason": reason})
    assert response.headers["content-type"] == "application/json"


# -- subscriptions and success ------------------------------------------------------------


def test_subscription_is_a_browser_push_subscription(fake: FakeWebPush) -> None:
    sub = fake.create_subscription()
    assert set(sub) == {"endpoint", "expirationTime", "keys"}
    assert sub["endpoint"].startswith(f"{fake.url}/push/")
    assert sub["expirationTime"] is None
    assert len(unb64(sub["keys"]["auth"])) == 16
    assert unb64(sub["keys"]["p256dh"])[0] == 4 and len(unb64(sub["keys"]["p256dh"])) == 65
    assert fake.create_subscription()["endpoint"] != sub["endpoint"]
    assert fake.allowed_host == fake.url.removeprefix("https://")


def test_application_server_key_must_be_a_public_key(fake: FakeWebPush) -> None:
    with pytest.raises(ValueError, match="applicationServerKey"):
        fake.create_subscription(application_server_key="not a key")
    with pytest.raises(ValueError):
        fake.create_subscription(application_server_key=b64(b"\x04" + bytes(64)))


async def test_delivery_is_decrypted_and_recorded(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    answer = await push(client, fake, sub, b"\x00binary \xe2\x98\x83", urgency="high", topic="t-1")
    assert answer.status_code == 201
    assert answer.headers["location"].startswith(f"{fake.url}/m/")
    assert answer.headers["ttl"] == "60"
    assert answer.content == b""
    [record] = fake.delivered
    assert record.plaintext == b"\x00binary \xe2\x98\x83"
    assert (record.ttl, record.urgency, record.topic) == (60, "high", "t-1")
    assert record.vapid_subject == SUBJECT
    assert record.vapid_key == b64(point(VAPID_KEY))
    assert record.subscription_id == sub["endpoint"].rsplit("/", 1)[1]
    assert answer.headers["location"].endswith(record.message_id or "?")
    assert record.headers["content-encoding"] == "aes128gcm"


async def test_push_without_payload(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    answer = await push(client, fake, sub, None, ttl="0")
    assert (answer.status_code, answer.headers["ttl"]) == (201, "0")
    assert fake.delivered[0].plaintext is None


async def test_ttl_is_capped_and_the_effective_value_echoed(
    fake: FakeWebPush,
    client: httpx.AsyncClient,
    sub: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fake, "max_ttl", 2_419_200)
    answer = await push(client, fake, sub, ttl="99999999")
    assert answer.headers["ttl"] == "2419200" and fake.delivered[0].ttl == 2_419_200


async def test_bound_subscription_takes_its_own_key(
    fake: FakeWebPush, client: httpx.AsyncClient
) -> None:
    sub = fake.create_subscription(application_server_key=b64(point(VAPID_KEY)))
    assert (await push(client, fake, sub)).status_code == 201
    other = vapid(fake, key=OTHER_KEY)
    refused(await push(client, fake, sub, authorization=other), 403, "VapidKeyMismatch")


def test_demo_credentials(fake: FakeWebPush) -> None:
    creds = fake.create_vapid_credentials()
    assert creds["PlatformPrincipal"] == "mailto:push-demo@example.com"
    key = serialization.load_pem_private_key(creds["PlatformCredential"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert creds["VapidPublicKey"] == b64(point(key))


# -- method, path, subscription state -----------------------------------------------------


async def test_method_and_path(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    refused(await push(client, fake, sub, method="PUT"), 405, "MethodNotAllowed")
    refused(await push(client, fake, sub, url=fake.url + "/wpush/x"), 404, "BadPath")
    refused(
        await push(client, fake, sub, url=fake.url + "/push/nobody"), 404, "UnknownSubscription"
    )


async def test_subscription_states(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    fake.set_subscription_state(sub["endpoint"], "expired")
    refused(await push(client, fake, sub), 410, "ExpiredSubscription")
    fake.set_subscription_state(sub["endpoint"], "active")
    assert (await push(client, fake, sub)).status_code == 201
    fake.set_subscription_state(sub["endpoint"], "unknown")
    refused(await push(client, fake, sub), 404, "UnknownSubscription")
    with pytest.raises(KeyError):
        fake.set_subscription_state(sub["endpoint"], "active")


async def test_subscription_state_comes_before_auth(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    fake.set_subscription_state(sub["endpoint"], "expired")
    refused(
        await push(client, fake, sub, drop=("authorization", "ttl")), 410, "ExpiredSubscription"
    )


# -- VAPID ---------------------------------------------------------------------------------

NOW = int(time.time())
VAPID_CASES = [
    pytest.param(None, 401, "MissingAuthorization", id="missing"),
    pytest.param("WebPush eyJhbGciOiJFUzI1NiJ9.e30.c2ln", 401, "BadAuthorization", id="draft"),
    pytest.param("vapid t=abc", 401, "BadAuthorization", id="no-k"),
    pytest.param("vapid k=abc", 401, "BadAuthorization", id="no-t"),
    pytest.param("Bearer xyz", 401, "BadAuthorization", id="bearer"),
    pytest.param({"sent_key": "garbage"}, 401, "BadVapidKey", id="bad-k"),
    pytest.param("vapid t=not-a-jwt, k=" + b64(point(VAPID_KEY)), 401, "BadJwt", id="bad-jwt"),
    pytest.param({"sent_key": OTHER_KEY}, 401, "BadJwtSignature", id="other-key"),
    pytest.param({"exp": NOW - 10}, 401, "ExpiredJwt", id="expired"),
    pytest.param({"exp": str(NOW + 60)}, 401, "BadJwt", id="exp-string"),
    pytest.param({"exp": None}, 401, "BadJwt", id="no-exp"),
    pytest.param({"exp": NOW + 25 * 3600}, 403, "BadJwtExpiration", id="exp-25h"),
    pytest.param({"aud": "https://elsewhere.example"}, 403, "BadJwtAudience", id="aud"),
    pytest.param({"aud": None}, 403, "BadJwtAudience", id="no-aud"),
    pytest.param({"sub": None}, 403, "BadJwtSubject", id="no-sub"),
    pytest.param({"sub": "ops@example.com"}, 403, "BadJwtSubject", id="sub-no-scheme"),
    pytest.param({"sub": "http://example.com"}, 403, "BadJwtSubject", id="sub-http"),
    pytest.param({"sub": "mailto:nobody"}, 403, "BadJwtSubject", id="sub-no-at"),
]


def _authorization(fake: FakeWebPush, case: Any) -> str | None:
    if case is None or isinstance(case, str):
        return case
    if case.get("sent_key") == "garbage":
        return vapid(fake).rpartition("k=")[0] + "k=AAAA"
    return vapid(fake, **case)


@pytest.mark.parametrize("apple_strict", [False, True], ids=["rfc8292", "apple"])
@pytest.mark.parametrize(("case", "status", "reason"), VAPID_CASES)
async def test_vapid(
    fake: FakeWebPush,
    client: httpx.AsyncClient,
    sub: dict[str, Any],
    case: Any,
    status: int,
    reason: str,
    apple_strict: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each VAPID failure as RFC 8292 services answer it, and as Apple does (always
    ``403 BadJwtToken``)."""
    monkeypatch.setattr(fake, "apple_strict", apple_strict)
    authorization = _authorization(fake, case)
    drop = ("authorization",) if authorization is None else ()
    headers = {} if authorization is None else {"authorization": authorization}
    answer = await push(client, fake, sub, drop=drop, headers=headers)
    expected = (403, "BadJwtToken") if apple_strict else (status, reason)
    refused(answer, *expected)
    [record] = fake.received
    assert (record.status, record.reason, record.vapid_subject) == (*expected, None)


async def test_vapid_scheme_and_parameters_are_flexible(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    token, key = vapid(fake).removeprefix("vapid t=").split(", k=")
    for header in (f"VAPID k={key},t={token}", f"vapid  t={token} ,  k={key}"):
        assert (await push(client, fake, sub, authorization=header)).status_code == 201


@pytest.mark.parametrize(
    "subject",
    ["mailto:ops@localhost", "https://localhost", "mailto:a@push.invalid", "https://x.test"],
)
async def test_apple_strict_refuses_special_use_subjects(
    fake: FakeWebPush,
    client: httpx.AsyncClient,
    sub: dict[str, Any],
    subject: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authorization = vapid(fake, sub=subject)
    assert (await push(client, fake, sub, authorization=authorization)).status_code == 201
    monkeypatch.setattr(fake, "apple_strict", True)
    refused(await push(client, fake, sub, authorization=authorization), 403, "BadJwtToken")
    ok = vapid(fake, sub="https://push.example.com/contact")
    assert (await push(client, fake, sub, authorization=ok)).status_code == 201


# -- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "drop", "reason"),
    [
        ({}, ("ttl",), "MissingTTL"),
        ({"ttl": "-1"}, (), "InvalidTTL"),
        ({"ttl": "1.5"}, (), "InvalidTTL"),
        ({"ttl": "soon"}, (), "InvalidTTL"),
        ({"urgency": "urgent"}, (), "InvalidUrgency"),
        ({"urgency": "HIGH"}, (), "InvalidUrgency"),
        ({"topic": "a" * 33}, (), "InvalidTopic"),
        ({"topic": "has space"}, (), "InvalidTopic"),
        ({"topic": "pad=="}, (), "InvalidTopic"),
        ({}, ("content-encoding",), "MissingContentEncoding"),
        ({"content-encoding": "gzip"}, (), "UnsupportedContentEncoding"),
        ({"content-encoding": "aesgcm"}, (), "UnsupportedContentEncoding"),
    ],
)
async def test_headers(
    fake: FakeWebPush,
    client: httpx.AsyncClient,
    sub: dict[str, Any],
    headers: dict[str, str],
    drop: tuple[str, ...],
    reason: str,
) -> None:
    refused(await push(client, fake, sub, drop=drop, headers=headers), 400, reason)


async def test_legacy_aesgcm_when_enabled(
    fake: FakeWebPush,
    client: httpx.AsyncClient,
    sub: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fake, "accept_aesgcm", True)
    salt, sender = os.urandom(16), ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(
        b"old browser",
        salt=salt,
        private_key=sender,
        dh=unb64(sub["keys"]["p256dh"]),
        auth_secret=unb64(sub["keys"]["auth"]),
        version="aesgcm",
    )
    headers = {
        "content_encoding": "aesgcm",
        "encryption": f"salt={b64(salt)}",
        "crypto_key": f"dh={b64(point(sender))}",
    }
    assert (await push(client, fake, sub, body=body, headers=headers)).status_code == 201
    assert fake.delivered[0].plaintext == b"old browser"
    headers["encryption"] = "salt=AAAA"
    refused(await push(client, fake, sub, body=body, headers=headers), 400, "BadEncryptionHeader")


# -- body ----------------------------------------------------------------------------------


async def test_body_limit(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    assert len(encrypt(sub, b"a" * 3993)) == 4096
    assert (await push(client, fake, sub, b"a" * 3993)).status_code == 201
    refused(await push(client, fake, sub, b"a" * 3994), 413, "PayloadTooLarge")


def _corrupt(body: bytes, index: int, value: int) -> bytes:
    return body[:index] + bytes([value]) + body[index + 1 :]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda body: body[:60], "BadEncryptionHeader"),  # shorter than the header
        (lambda body: _corrupt(body, 20, 64), "BadEncryptionHeader"),  # idlen 64
        (lambda body: body[:16] + (17).to_bytes(4, "big") + body[20:], "BadEncryptionHeader"),
        (lambda body: _corrupt(body, 22, body[22] ^ 1), "BadEncryptionHeader"),  # not a point
        (lambda body: _corrupt(body, 90, body[90] ^ 1), "DecryptionFailed"),  # ciphertext
        (lambda body: _corrupt(body, 3, body[3] ^ 1), "DecryptionFailed"),  # salt
        (lambda body: body[:-1], "DecryptionFailed"),  # truncated tag
    ],
)
async def test_bad_bodies(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any], mangle: Any, reason: str
) -> None:
    body = mangle(encrypt(sub, b"some payload"))
    refused(await push(client, fake, sub, body=body), 400, reason)


async def test_one_record_only(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    body = encrypt(sub, b"x" * 40, rs=30)
    assert int.from_bytes(body[16:20], "big") == 30
    refused(await push(client, fake, sub, body=body), 400, "MultipleRecords")


async def test_encrypted_for_another_subscription(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    other = fake.create_subscription()
    refused(await push(client, fake, sub, body=encrypt(other, b"hi")), 400, "DecryptionFailed")


# -- rate limit and scripts ------------------------------------------------------------------


async def test_rate_limit(
    fake: FakeWebPush,
    client: httpx.AsyncClient,
    sub: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fake, "rate_limit", RateLimiter(2, 3600))
    assert [(await push(client, fake, sub)).status_code for _ in range(2)] == [201, 201]
    answer = await push(client, fake, sub)
    refused(answer, 429, "TooManyRequests")
    assert int(answer.headers["retry-after"]) > 0
    assert (await push(client, fake, fake.create_subscription())).status_code == 201


async def test_scripted_answers(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    other = fake.create_subscription()
    fake.script(503, retry_after=7, endpoint=sub["endpoint"])
    fake.script(403, reason="BadJwtToken")
    assert (await push(client, fake, other)).status_code == 403  # the first is not for it
    answer = await push(client, fake, sub)
    refused(answer, 503, "ServiceUnavailable")
    assert answer.headers["retry-after"] == "7"
    assert (await push(client, fake, sub)).status_code == 201
    fake.script(410, times=2)
    refused(await push(client, fake, sub), 410, "ExpiredSubscription")
    refused(await push(client, fake, sub), 410, "ExpiredSubscription")
    assert (await push(client, fake, sub)).status_code == 201


async def test_scripts_apply_to_valid_requests_only(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    fake.script(500)
    refused(await push(client, fake, sub, drop=("ttl",)), 400, "MissingTTL")
    refused(await push(client, fake, sub), 500, "InternalServerError")


async def test_scripted_drop_and_delay(
    fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]
) -> None:
    fake.script(drop_connection=True)
    # the fakes run on a thread of their own: the abort shows as either, by timing
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await push(client, fake, sub)
    assert [(r.status, r.reason) for r in fake.received] == [(None, "scripted: dropped")]
    fake.script(None, delay=0.05)
    assert (await push(client, fake, sub)).status_code == 201


async def test_reset(fake: FakeWebPush, client: httpx.AsyncClient, sub: dict[str, Any]) -> None:
    fake.set_subscription_state(sub["endpoint"], "expired")
    fake.script(500, times=None)
    await push(client, fake, sub)
    fake.reset()
    assert fake.received == []
    assert (await push(client, fake, sub)).status_code == 201
    body = json.loads(json.dumps(fake.delivered[0].headers))
    assert body[":path"] == "/push/" + sub["endpoint"].rsplit("/", 1)[1]
