"""A strict fake of a browser push service: RFC 8030 delivery, RFC 8291 message
encryption, RFC 8292 VAPID (specs/providers.md sec. 6, 10.6).

The fake plays the browser too: :meth:`FakeWebPush.create_subscription` returns a
``PushSubscription.toJSON()`` whose endpoint is ``https://<host>:<port>/push/<id>`` and
keeps the subscription's private key and auth secret, so it decrypts every message and
records the plaintext. A request is checked in this fixed order, the first failure being
the answer:

1. method and path: ``POST`` (``405``) to ``/push/<id>`` (``404``);
2. the subscription: unknown ``404``, expired or unsubscribed ``410``. It comes before
   the auth and the body because its keys are needed for both (a real push service, too,
   finds the subscription from the URL first);
3. VAPID (``Authorization: vapid t=<jwt>, k=<key>``): missing, unparseable, not ES256, a
   bad signature or an expired JWT ``401``; ``aud`` not the endpoint's origin, ``exp``
   more than 24 h ahead, ``sub`` not ``mailto:``/``https:``, or ``k`` not the
   subscription's ``applicationServerKey`` ``403``. :attr:`FakeWebPush.apple_strict`
   answers every VAPID failure as Apple does, ``403 {"reason":"BadJwtToken"}``, and also
   refuses a ``sub`` at ``localhost`` or a reserved TLD;
4. headers: ``TTL`` required, a non-negative integer; ``Urgency`` one of four;
   ``Topic`` at most 32 base64url characters; with a body, ``Content-Encoding:
   aes128gcm`` (``aesgcm`` only with :attr:`FakeWebPush.accept_aesgcm`); all ``400``;
5. body: more than :attr:`FakeWebPush.max_body` bytes ``413``; the RFC 8188 header (salt
   16, rs >= 18, keyid a 65-byte uncompressed P-256 point), one record only, and RFC 8291
   decryption with the subscription's keys, else ``400``;
6. rate limit per subscription (:attr:`FakeWebPush.rate_limit`) ``429`` + ``Retry-After``;
7. scripted replies (:meth:`FakeWebPush.script`), which replace the success of a valid
   request.

Success is ``201 Created`` with ``Location`` (the message URL) and ``TTL`` (the effective
one, capped by :attr:`FakeWebPush.max_ttl` when set). Errors carry ``{"reason": ...}``, the
shape Apple's push service uses; the reason names other than ``BadJwtToken`` are the fake's
own (services differ, and clients classify by status).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Unpack
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]  # no py.typed
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.fakes import jose
from pushgate.fakes.base import H2_SETTINGS, FakeServer
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.state import RateLimiter, Script, ScriptOptions, retry_after_header
from pushgate.fakes.tls import FakeCA

__all__ = ["FakeWebPush", "ReceivedPush", "SubscriptionState"]

SubscriptionState = Literal["active", "expired", "unknown"]
_PATH = re.compile(r"/push/([A-Za-z0-9_-]+)")
_SECONDS = re.compile(r"\d+")
_URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_VAPID = re.compile(r"vapid\s+(.*)", re.IGNORECASE | re.DOTALL)
# RFC 2606 / RFC 6761 special-use names, which Apple refuses in ``sub`` (sec. 6.1).
_RESERVED_TLDS = ("localhost", "invalid", "test", "example", "local")
_HEADER_SIZE = 86
_MIN_RECORD_SIZE = 18  # RFC 8188 sec. 2: the delimiter and the 16-byte tag, and then some
_DEMO_SUBJECT = "mailto:push-demo@example.com"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes | None:
    if not _B64URL.fullmatch(text):
        return None
    bare = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        return None


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _public_key(point: bytes | None) -> ec.EllipticCurvePublicKey | None:
    if point is None or len(point) != 65 or point[0] != 4:
        return None
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return None


@dataclass(frozen=True)
class ReceivedPush:
    """One request as the fake saw it, and its answer (``status`` None: dropped)."""

    subscription_id: str | None
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    raw: bytes
    plaintext: bytes | None  # the decrypted payload, once decryption succeeded
    ttl: int | None  # the effective TTL, once the header was valid
    urgency: str | None
    topic: str | None
    vapid_subject: str | None  # the JWT's ``sub``, once the JWT verified
    vapid_key: str | None  # the ``k`` parameter, as sent
    status: int | None
    reason: str | None
    connection_id: int
    stream_id: int
    received_at: float
    message_id: str | None = None


@dataclass
class _Subscription:
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth: bytes = field(repr=False)
    application_server_key: bytes | None
    state: SubscriptionState = "active"


@dataclass(frozen=True)
class _Error:
    status: int
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    reason: str | None


@dataclass
class _Attempt:
    subscription_id: str | None = None
    subscription: _Subscription | None = None
    plaintext: bytes | None = None
    ttl: int | None = None
    urgency: str | None = None
    topic: str | None = None
    vapid_subject: str | None = None
    vapid_key: str | None = None


class FakeWebPush(FakeServer[ReceivedPush, _Script]):
    """A push service (and the browsers subscribed to it) on one port. Public methods are
    safe from any thread; the attributes below are knobs with the documented defaults."""

    def __init__(self, ca: FakeCA) -> None:
        super().__init__(ca.server_context(("h2",)), H2_SETTINGS, lambda push: push.status == 201)
        self.apple_strict = False
        self.accept_aesgcm = False
        self.max_body = 4096
        self.max_ttl: int | None = None  # e.g. 2419200 to cap as FCM is said to [unverified]
        self.max_jwt_lifetime = 24 * 3600
        self.rate_limit: RateLimiter | None = None
        self.clock: Callable[[], float] = time.time
        self._subscriptions: dict[str, _Subscription] = {}

    # Subscriptions (the browser's side; :attr:`allowed_host` allow-lists their endpoints)

    def create_subscription(self, application_server_key: str | None = None) -> dict[str, Any]:
        """A new subscription as ``PushSubscription.toJSON()`` gives it; with an
        ``application_server_key`` (base64url public key), only that key's VAPID JWTs
        are accepted for it, as ``pushManager.subscribe`` binds them."""
        bound: bytes | None = None
        if application_server_key is not None:
            bound = _unb64url(application_server_key)
            if _public_key(bound) is None:
                raise ValueError("applicationServerKey is not a base64url P-256 public key")
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        subscription_id = secrets.token_urlsafe(24)
        with self._lock:
            self._subscriptions[subscription_id] = _Subscription(key, auth, bound)
        return {
            "endpoint": f"{self.url}/push/{subscription_id}",
            "expirationTime": None,
            "keys": {"p256dh": _b64url(_point(key)), "auth": _b64url(auth)},
        }

    def set_subscription_state(self, endpoint: str, state: SubscriptionState) -> None:
        """``expired`` answers ``410``; ``unknown`` forgets the subscription (``404``)."""
        subscription_id = self._subscription_id(endpoint)
        with self._lock:
            if subscription_id not in self._subscriptions:
                raise KeyError("no such subscription")
            if state == "unknown":
                del self._subscriptions[subscription_id]
            elif state in ("active", "expired"):
                self._subscriptions[subscription_id].state = state
            else:
                raise ValueError(f"unknown subscription state {state!r}")

    def create_vapid_credentials(
        self, subject: str = _DEMO_SUBJECT, private_key_pem: str | None = None
    ) -> dict[str, str]:
        """A working WEBPUSH platform application: its attributes and the public key that
        browsers subscribe with (any P-256 key works here: a new one, or
        ``private_key_pem``'s, say from an earlier run)."""
        if private_key_pem is None:
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            loaded = serialization.load_pem_private_key(private_key_pem.encode(), None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError("a VAPID key is a P-256 key")
            key = loaded
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "PlatformPrincipal": subject,
            "PlatformCredential": pem,
            "VapidPublicKey": _b64url(_point(key)),
        }

    # Scripting

    def script(
        self,
        status: int | None = 410,
        reason: str | None = None,
        times: int | None = 1,
        endpoint: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid pushes (to ``endpoint``, or to any) this way
        (``options``: :class:`~pushgate.fakes.state.ScriptOptions`). ``status`` None (or
        201) with a ``delay`` is a slow success."""
        target = self._subscription_id(endpoint) if endpoint is not None else None
        self._scripts.add(_Script(status=status, token=target, reason=reason, **options), times)

    def reset(self) -> None:
        """Forget records, scripts and rate-limit use; subscriptions stay (they are the
        browsers' state), back to ``active``."""
        super().reset()
        if self.rate_limit is not None:
            self.rate_limit.clear()
        with self._lock:
            for subscription in self._subscriptions.values():
                subscription.state = "active"

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        return 100

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        attempt = _Attempt()
        error = self._check(request, attempt, now)
        script = self._scripts.take(attempt.subscription_id or "") if error is None else None
        if script is not None:
            dropped = self._record(request, attempt, now, None, "scripted: dropped")
            if await self._delay_or_drop(script, request, dropped):
                return None
            if script.status is not None and script.status != 201:
                reason = script.reason or _default_reason(script.status)
                error = _Error(script.status, reason, script.retry_after)
            if script.goaway:
                request.connection.goaway()
        if error is not None:
            headers = [("content-type", "application/json")]
            if error.retry_after is not None:
                headers.append(("retry-after", retry_after_header(error.retry_after)))
            self._records.add(self._record(request, attempt, now, error.status, error.reason))
            return Response(error.status, headers, json.dumps({"reason": error.reason}).encode())
        message_id = secrets.token_urlsafe(16)
        self._records.add(self._record(request, attempt, now, 201, None, message_id))
        headers = [("location", f"{self.url}/m/{message_id}"), ("ttl", str(attempt.ttl))]
        return Response(201, headers)

    # The checks, in order

    def _check(self, request: Request, attempt: _Attempt, now: float) -> _Error | None:
        match = _PATH.fullmatch(request.path.partition("?")[0])
        if match is None:
            return _Error(404, "BadPath")
        if request.method != "POST":
            return _Error(405, "MethodNotAllowed")
        attempt.subscription_id = match[1]
        with self._lock:
            subscription = self._subscriptions.get(match[1])
            state = subscription.state if subscription is not None else "unknown"
        if subscription is None:
            return _Error(404, "UnknownSubscription")
        if state == "expired":
            return _Error(410, "ExpiredSubscription")
        attempt.subscription = subscription
        return (
            self._check_vapid(request, attempt, subscription, now)
            or self._check_headers(request, attempt)
            or self._check_body(request, attempt, subscription)
            or self._check_rate(attempt.subscription_id, now)
        )

    def _check_vapid(
        self, request: Request, attempt: _Attempt, subscription: _Subscription, now: float
    ) -> _Error | None:
        error = self._vapid_error(request, attempt, subscription, now)
        if error is not None and self.apple_strict:
            return _Error(403, "BadJwtToken")
        return error

    def _vapid_error(
        self, request: Request, attempt: _Attempt, subscription: _Subscription, now: float
    ) -> _Error | None:
        authorization = request.header("authorization")
        if authorization is None:
            return _Error(401, "MissingAuthorization")
        params = _vapid_params(authorization)
        if params is None or "t" not in params or "k" not in params:
            return _Error(401, "BadAuthorization")  # includes the draft "WebPush <jwt>" form
        attempt.vapid_key = params["k"]
        key_point = _unb64url(params["k"])
        key = _public_key(key_point)
        if key is None:
            return _Error(401, "BadVapidKey")
        try:
            token = jose.parse(params["t"])
        except jose.JwsError:
            return _Error(401, "BadJwt")
        if token.header.get("alg") != "ES256" or token.header.get("typ", "JWT") != "JWT":
            return _Error(401, "BadJwtAlgorithm")
        if not jose.verify_es256(token, key):
            return _Error(401, "BadJwtSignature")
        claims = token.claims
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            return _Error(401, "BadJwt")  # RFC 8292 sec. 2: exp is required, a NumericDate
        if exp <= now:
            return _Error(401, "ExpiredJwt")
        if exp > now + self.max_jwt_lifetime:
            return _Error(403, "BadJwtExpiration")
        if claims.get("aud") != _origin(self.url):
            return _Error(403, "BadJwtAudience")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _subject_ok(subject, self.apple_strict):
            return _Error(403, "BadJwtSubject")
        if subscription.application_server_key not in (None, key_point):
            return _Error(403, "VapidKeyMismatch")
        attempt.vapid_subject = subject
        return None

    def _check_headers(self, request: Request, attempt: _Attempt) -> _Error | None:
        ttl = request.header("ttl")
        if ttl is None:
            return _Error(400, "MissingTTL")
        if not _SECONDS.fullmatch(ttl.strip()):
            return _Error(400, "InvalidTTL")
        attempt.ttl = int(ttl)
        if self.max_ttl is not None:
            attempt.ttl = min(attempt.ttl, self.max_ttl)
        urgency = request.header("urgency")
        if urgency is not None and urgency not in _URGENCIES:
            return _Error(400, "InvalidUrgency")
        attempt.urgency = urgency
        topic = request.header("topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            return _Error(400, "InvalidTopic")
        attempt.topic = topic
        if request.body:
            encoding = request.header("content-encoding")
            if encoding is None:
                return _Error(400, "MissingContentEncoding")
            if encoding != "aes128gcm" and not (self.accept_aesgcm and encoding == "aesgcm"):
                return _Error(400, "UnsupportedContentEncoding")
        return None

    def _check_body(
        self, request: Request, attempt: _Attempt, subscription: _Subscription
    ) -> _Error | None:
        body = request.body
        if not body:
            return None
        if len(body) > self.max_body:
            return _Error(413, "PayloadTooLarge")
        if request.header("content-encoding") == "aesgcm":
            return self._decrypt_aesgcm(request, attempt, subscription)
        if len(body) < _HEADER_SIZE:
            return _Error(400, "BadEncryptionHeader")
        record_size = int.from_bytes(body[16:20], "big")
        keyid = body[21 : 21 + body[20]]
        if record_size < _MIN_RECORD_SIZE or body[20] != 65 or _public_key(keyid) is None:
            return _Error(400, "BadEncryptionHeader")
        if len(body) - _HEADER_SIZE > record_size:
            return _Error(400, "MultipleRecords")  # RFC 8291 sec. 4: one record only
        try:
            attempt.plaintext = http_ece.decrypt(
                body, private_key=subscription.key, auth_secret=subscription.auth
            )
        except (http_ece.ECEException, ValueError, TypeError, IndexError):
            return _Error(400, "DecryptionFailed")
        return None

    def _decrypt_aesgcm(
        self, request: Request, attempt: _Attempt, subscription: _Subscription
    ) -> _Error | None:
        """The legacy draft encoding: salt in ``Encryption``, the sender key in ``Crypto-Key``."""
        salt = _unb64url(_param(request.header("encryption"), "salt") or "")
        dh = _unb64url(_param(request.header("crypto-key"), "dh") or "")
        if salt is None or len(salt) != 16 or _public_key(dh) is None:
            return _Error(400, "BadEncryptionHeader")
        try:
            attempt.plaintext = http_ece.decrypt(
                request.body,
                salt=salt,
                dh=dh,
                private_key=subscription.key,
                auth_secret=subscription.auth,
                version="aesgcm",
            )
        except (http_ece.ECEException, ValueError, TypeError, IndexError):
            return _Error(400, "DecryptionFailed")
        return None

    def _check_rate(self, subscription_id: str | None, now: float) -> _Error | None:
        if self.rate_limit is None or subscription_id is None:
            return None
        wait = self.rate_limit.retry_after(subscription_id, now)
        return _Error(429, "TooManyRequests", wait) if wait > 0 else None

    def _subscription_id(self, endpoint: str) -> str:
        match = _PATH.fullmatch(urlsplit(endpoint).path) if "/" in endpoint else None
        return match[1] if match is not None else endpoint

    def _record(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        status: int | None,
        reason: str | None,
        message_id: str | None = None,
    ) -> ReceivedPush:
        return ReceivedPush(
            subscription_id=attempt.subscription_id,
            headers=request.header_map(),
            raw=request.body,
            plaintext=attempt.plaintext,
            ttl=attempt.ttl,
            urgency=attempt.urgency,
            topic=attempt.topic,
            vapid_subject=attempt.vapid_subject,
            vapid_key=attempt.vapid_key,
            status=status,
            reason=reason,
            connection_id=request.connection.id,
            stream_id=request.stream_id,
            received_at=now,
            message_id=message_id,
        )


def _default_reason(status: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "UnknownSubscription",
        410: "ExpiredSubscription",
        413: "PayloadTooLarge",
        429: "TooManyRequests",
        500: "InternalServerError",
        503: "ServiceUnavailable",
    }.get(status, "Error")


def _vapid_params(authorization: str) -> dict[str, str] | None:
    """``t`` and ``k`` of ``vapid t=<jwt>, k=<key>`` (RFC 8292 sec. 3); None if malformed."""
    match = _VAPID.fullmatch(authorization.strip())
    if match is None:
        return None
    params: dict[str, str] = {}
    for part in match[1].split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not name or name.strip().lower() in params:
            return None
        params[name.strip().lower()] = value.strip()
    return params


def _param(header: str | None, name: str) -> str | None:
    """``name`` from a ``a=b;c=d`` header (Encryption, Crypto-Key of the draft encoding)."""
    for part in (header or "").replace(",", ";").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _subject_ok(subject: str, apple_strict: bool) -> bool:
    """``mailto:`` with an address or ``https:`` with a host (RFC 8292 sec. 2.1); Apple
    also refuses special-use names (sec. 6.1)."""
    if subject.startswith("mailto:"):
        host = subject[len("mailto:") :].rpartition("@")[2]
        if "@" not in subject:
            return False
    elif subject.startswith("https://"):
        host = urlsplit(subject).hostname or ""
    else:
        return False
    host = host.lower().rstrip(".")
    if not host:
        return False
    if apple_strict:
        return host.rpartition(".")[2] not in _RESERVED_TLDS
    return True
