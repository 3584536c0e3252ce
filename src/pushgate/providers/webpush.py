"""Web Push client: RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID
(specs/providers.md sec. 6).

A device token is the browser's ``PushSubscription.toJSON()``: the push service URL
(``endpoint``) plus the user agent's P-256 key (``keys.p256dh``) and 16-byte auth secret
(``keys.auth``). :func:`parse_subscription` reads one, :func:`canonical_token` writes the
one form the store keeps.

Per message and subscription the payload is encrypted with ``http_ece`` (``aes128gcm``,
one record, a fresh salt and ephemeral sender key each time, as RFC 8291 sec. 3.3 and 4
require) and POSTed to the endpoint, which must be https on an allow-listed host
(:func:`pushgate.providers.hosts.refusal`: a subscriber, not an operator, picks the URL).
The VAPID JWT (ES256 via PyJWT, ``aud`` = the endpoint's origin, ``exp`` 12 h ahead) is
cached per audience and reused until an hour before it expires. :func:`classify` maps the
answer by the sec. 6.2 table.

Web Push has no access token to refresh: a refused JWT (401/403) is the application's
VAPID configuration, ``CONFIG_ERROR`` at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]  # no py.typed
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.providers.hosts import refusal
from pushgate.providers.notifications import Notification, WebPushNotification, per_notification
from pushgate.providers.outcomes import (
    Outcome,
    SendResult,
    classified,
    json_object,
    no_response,
    unsendable,
)
from pushgate.providers.transport import Http2Transport, Request, Response

# RFC 8291 sec. 4: push services take at least 4096 bytes of body; the aes128gcm header
# (86), the padding delimiter (1) and the GCM tag (16) leave 3993 for the plaintext.
MAX_BODY = 4096
HEADER_SIZE = 86  # salt 16, rs 4, idlen 1, keyid 65 (the sender's public key)
MAX_PLAINTEXT = MAX_BODY - HEADER_SIZE - 1 - 16
RECORD_SIZE = 4096  # one record holds any plaintext up to MAX_PLAINTEXT
AUTH_SECRET_SIZE = 16
POINT_SIZE = 65  # uncompressed P-256 point: 0x04 || x || y
# Push services' endpoints run to a few hundred bytes; the bound keeps a token within what
# a PostgreSQL b-tree index entry takes (about 2700 bytes; the store indexes tokens).
MAX_ENDPOINT = 2048

JWT_LIFETIME = 12 * 3600  # sec. 6.1: "<= 24 h, typically 12 h"
JWT_RENEW_BEFORE = 3600
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 sec. 5.4: base64url, <= 32 chars
DEFAULT_RETRY_AFTER = 60.0  # a 429 without Retry-After: wait a minute (sec. 0.2)
# One encryption (a key pair, ECDH, HKDF, AES-GCM) takes about 0.4 ms of the event loop.
ENCRYPTIONS_PER_YIELD = 32
_POOL = "webpush"
_WNS_SUFFIX = ".notify.windows.com"

# specs/providers.md sec. 6.2; other 4xx are FAIL_PERMANENT, 5xx RETRY_BACKOFF.
STATUSES: dict[int, Outcome] = {
    200: Outcome.SUCCESS,  # some services answer 200 or 202 instead of 201
    201: Outcome.SUCCESS,
    202: Outcome.SUCCESS,
    400: Outcome.FAIL_PERMANENT,  # bad headers or encoding
    401: Outcome.CONFIG_ERROR,  # VAPID refused (Apple: 403 {"reason":"BadJwtToken"})
    403: Outcome.CONFIG_ERROR,  # key mismatch is per subscription; fleet-wide is delivery's call
    404: Outcome.DISABLE_ENDPOINT,  # subscription unknown / expired
    410: Outcome.DISABLE_ENDPOINT,  # unsubscribed
    413: Outcome.FAIL_PERMANENT,
    429: Outcome.RETRY_AFTER,
}

# A reason for answers without Apple's {"reason": ...}: Mozilla, Google and Microsoft
# bodies differ and are not worth parsing (the status decides).
STATUS_NAMES: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    410: "Gone",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def b64url_encode(data: bytes) -> str:
    """base64url without padding, as browsers and VAPID write keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding; ValueError for any other character."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A browser push subscription: where to POST, and the keys to encrypt for."""

    endpoint: str
    p256dh: bytes  # the user agent's public key, uncompressed point
    auth: bytes  # the 16-byte authentication secret


def parse_subscription(token: str) -> Subscription:
    """The subscription of a ``PushSubscription.toJSON()`` token; ValueError says what is
    wrong (never echoing the token)."""
    try:
        document = json.loads(token)
    except (ValueError, RecursionError):
        raise ValueError("the token is not JSON (a PushSubscription as toJSON() gives)") from None
    if not isinstance(document, dict):
        raise ValueError("the token is not a JSON object")
    endpoint = document.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError("the subscription has no endpoint")
    if not endpoint.isascii():  # push services' URLs are ASCII (hosts in punycode)
        raise ValueError("the endpoint is not an ASCII URL")
    if len(endpoint) > MAX_ENDPOINT:
        raise ValueError(f"the endpoint is longer than {MAX_ENDPOINT} bytes")
    keys = document.get("keys")
    if not isinstance(keys, dict):
        raise ValueError("the subscription has no keys object")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise ValueError("the subscription keys need p256dh and auth strings")
    try:
        point, secret = b64url_decode(p256dh), b64url_decode(auth)
    except ValueError:
        raise ValueError("the subscription keys are not base64url") from None
    if len(secret) != AUTH_SECRET_SIZE:
        raise ValueError(f"keys.auth is {len(secret)} bytes, not {AUTH_SECRET_SIZE}")
    if len(point) != POINT_SIZE or not _is_p256_point(point):
        raise ValueError("keys.p256dh is not an uncompressed P-256 public key")
    return Subscription(endpoint, point, secret)


def canonical_token(sub: Subscription) -> str:
    """The one text of a subscription: compact JSON, sorted keys, endpoint and keys only,
    keys unpadded, so that the same subscription is always the same token."""
    document = {
        "endpoint": sub.endpoint,
        "keys": {"auth": b64url_encode(sub.auth), "p256dh": b64url_encode(sub.p256dh)},
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _is_p256_point(point: bytes) -> bool:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return point[0] == 4


def load_private_key(private_key_pem: str) -> ec.EllipticCurvePrivateKey:
    """The VAPID key from PEM (PKCS#8 or SEC1); ValueError unless it is a P-256 key."""
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the VAPID key is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the VAPID key is not a P-256 key")
    return key


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The application server key as browsers take it (``applicationServerKey``) and as
    VAPID's ``k`` carries it: base64url of the uncompressed point."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(point)


def origin(endpoint: str) -> str:
    """The VAPID audience: scheme, host and any non-default port of the endpoint."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = 443 if parts.scheme == "https" else 80
    return (
        f"{parts.scheme}://{host}" if port in (None, default) else f"{parts.scheme}://{host}:{port}"
    )


def build_vapid_jwt(
    key: ec.EllipticCurvePrivateKey, audience: str, subject: str, now: float
) -> str:
    """The RFC 8292 sec. 2 token: ES256 over ``aud``, ``exp`` and ``sub``."""
    claims = {"aud": audience, "exp": int(now) + JWT_LIFETIME, "sub": subject}
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "JWT"})


def encrypt(payload: bytes, sub: Subscription) -> bytes:
    """The aes128gcm body of RFC 8291 sec. 4: a fresh salt and ephemeral key every time."""
    body: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=sub.p256dh,
        auth_secret=sub.auth,
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


def _reason(response: Response) -> str:
    """Apple's ``{"reason": ...}`` when there is one, else a name for the status."""
    reason = json_object(response.body).get("reason")
    if isinstance(reason, str) and reason:
        return reason
    return STATUS_NAMES.get(response.status, f"HTTP{response.status}")


def classify(response: Response) -> SendResult:
    """The outcome of one push service answer (sec. 6.2)."""
    status = response.status
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    outcome = STATUSES.get(status)
    if outcome is Outcome.SUCCESS:
        return classified(response, outcome)
    if outcome is None:
        outcome = Outcome.RETRY_BACKOFF if status >= 500 else Outcome.FAIL_PERMANENT
    # sec. 0.2: honour Retry-After when present
    return classified(response, outcome, _reason(response), default_wait=DEFAULT_RETRY_AFTER)


@dataclass(frozen=True, slots=True)
class _Template:
    """What a notification's requests share: its headers (bar Authorization) and payload."""

    headers: tuple[str, ...]
    wns_headers: tuple[str, ...]
    payload: bytes


class WebPushClient:
    """Sends to browser push services for one application's VAPID key and subject.

    ``allowed_hosts`` is the endpoint allow-list (``PUSHGATE_WEBPUSH_ALLOWED_HOSTS``); the
    transport is shared and not closed here.
    """

    def __init__(
        self,
        private_key_pem: str,
        subject: str,
        transport: Http2Transport,
        allowed_hosts: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = load_private_key(private_key_pem)  # fail at configuration time
        self.public_key = public_key_text(self._key)
        self.subject = subject
        self.transport = transport
        self.allowed_hosts = tuple(allowed_hosts)
        self.clock = clock
        self._authorizations: dict[str, tuple[str, float]] = {}  # audience -> (header, renew)

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Encrypt and send each notification to its subscription; results in the same
        order. ``ids`` is accepted for the common client shape; Web Push has no request id.

        A token that is no subscription, or whose endpoint is not allowed, fails
        permanently without a request.
        """
        results: list[SendResult | None] = [None] * len(items)
        indices: list[int] = []
        requests: list[Request] = []
        now = self.clock()
        template_of = per_notification(
            WebPushNotification, lambda note: self._template(note, now), "a Web Push"
        )
        for index, (token, notification) in enumerate(items):
            template = template_of(notification)
            if isinstance(template, SendResult):
                results[index] = template
                continue
            request = self._request(token, template, now)
            if isinstance(request, SendResult):
                results[index] = request
                continue
            indices.append(index)
            requests.append(request)
            if len(requests) % ENCRYPTIONS_PER_YIELD == 0:
                await asyncio.sleep(0)  # let the loop breathe during a long fan-out
        if requests:
            for index, response in zip(
                indices, await self.transport.request_many(requests), strict=True
            ):
                results[index] = classify(response)
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""

    def _template(self, notification: WebPushNotification, now: float) -> _Template | SendResult:
        if len(notification.payload) > MAX_PLAINTEXT:
            return unsendable(
                "PayloadTooLarge",
                f"the payload is {len(notification.payload)} bytes, more than the "
                f"{MAX_PLAINTEXT} that fit in a {MAX_BODY}-byte encrypted body",
            )
        ttl = notification.ttl
        if notification.expires_at is not None:
            ttl = max(0, int(notification.expires_at - now))  # what is left of it
        headers = [f"ttl: {ttl}"]
        if notification.payload:
            headers += ["content-encoding: aes128gcm", "content-type: application/octet-stream"]
        else:
            headers.append("content-type:")  # no body: keep libcurl's form type out
        if notification.urgency is not None:
            headers.append(f"urgency: {notification.urgency}")
        if notification.topic is not None:
            headers.append(f"topic: {notification.topic}")
        # Edge endpoints are WNS, seen to refuse a TTL without a matching cache policy
        # (sec. 6.1 field note, a single report).
        wns = f"x-wns-cache-policy: {'cache' if ttl else 'no-cache'}"
        return _Template(tuple(headers), (*headers, wns), notification.payload)

    def _request(self, token: str, template: _Template, now: float) -> Request | SendResult:
        try:
            sub = parse_subscription(token)
        except ValueError as exc:
            return unsendable("InvalidSubscription", str(exc))
        why = refusal(sub.endpoint, self.allowed_hosts)
        if why is not None:
            return unsendable("ForbiddenEndpointHost", f"the endpoint is refused: {why}")
        body = encrypt(template.payload, sub) if template.payload else b""
        wns = (urlsplit(sub.endpoint).hostname or "").lower().endswith(_WNS_SUFFIX)
        headers = (
            *(template.wns_headers if wns else template.headers),
            self._authorization(origin(sub.endpoint), now),
        )
        return Request("POST", sub.endpoint, headers, body, None, _POOL)

    def _authorization(self, audience: str, now: float) -> str:
        """``Authorization: vapid t=<jwt>, k=<key>`` (RFC 8292 sec. 3), one JWT per audience
        until an hour before it expires."""
        cached = self._authorizations.get(audience)
        if cached is not None and now < cached[1]:
            return cached[0]
        token = build_vapid_jwt(self._key, audience, self.subject, now)
        header = f"authorization: vapid t={token}, k={self.public_key}"
        self._authorizations[audience] = (header, int(now) + JWT_LIFETIME - JWT_RENEW_BEFORE)
        return header
