"""Apple Push Notification service client: HTTP/2 provider API (specs/providers.md sec. 1).

Two pure halves and a thin send, as STYLE.md asks: :meth:`ApnsClient.build_headers` shapes
the request of a notification once for all its tokens, :func:`classify` turns a response
into a :class:`~pushgate.providers.outcomes.SendResult` by the sec. 1.7 table
(:data:`REASONS`), and :meth:`ApnsClient.send_many` sends through the shared
:class:`~pushgate.providers.transport.Http2Transport`.

Token auth: one ES256 JWT per (team, key id), minted by :class:`ApnsTokenCache` (one per
process unless a test injects its own), shared by every client and connection, reused for
50 minutes and never minted more than once in 20 minutes except after
``ExpiredProviderToken`` (sec. 1.2.1). Each credential gets connections of its own
(``Request.pool``), since APNs binds a connection to the first team and key it sees.

``apns-id``: the caller may give one id per item (the delivery engine derives it from the
outbox row, so that every attempt of a delivery carries the same one, STYLE.md item 8);
without ids APNs assigns its own. The response's echo is not read: that would cost a GIL
round trip per response header line in the transport.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.providers.notifications import ApnsNotification, Notification, per_notification
from pushgate.providers.outcomes import (
    Outcome,
    SendResult,
    by_status_class,
    classified,
    credential_refused,
    json_object,
    no_response,
    unsendable,
)
from pushgate.providers.transport import ClientCert, Http2Transport, Request, Response, header_safe

log = logging.getLogger(__name__)

PAYLOAD_LIMIT = 4096
VOIP_PAYLOAD_LIMIT = 5120
COLLAPSE_ID_LIMIT = 64
TOKEN_REUSE_SECONDS = 50 * 60
TOKEN_MIN_INTERVAL_SECONDS = 20 * 60
# A token younger than this refused as expired means a wrong clock, not an old token.
EXPIRED_GRACE_SECONDS = 60

# specs/providers.md sec. 1.7: reason -> outcome. REFRESH_AUTH never leaves the client.
REASONS: dict[str, Outcome] = {
    "BadCollapseId": Outcome.FAIL_PERMANENT,
    "BadDeviceToken": Outcome.DISABLE_ENDPOINT,  # sygnal does; the fleet-wide check is delivery's
    "BadExpirationDate": Outcome.FAIL_PERMANENT,
    "BadMessageId": Outcome.FAIL_PERMANENT,
    "BadPriority": Outcome.FAIL_PERMANENT,
    "BadTopic": Outcome.CONFIG_ERROR,
    "DeviceTokenNotForTopic": Outcome.DISABLE_ENDPOINT,  # unless fleet-wide (delivery's call)
    "DuplicateHeaders": Outcome.FAIL_PERMANENT,
    "IdleTimeout": Outcome.RETRY_BACKOFF,
    "InvalidPushType": Outcome.FAIL_PERMANENT,  # the push type comes with the message
    "MissingDeviceToken": Outcome.FAIL_PERMANENT,
    "MissingTopic": Outcome.CONFIG_ERROR,
    "PayloadEmpty": Outcome.FAIL_PERMANENT,
    "TopicDisallowed": Outcome.CONFIG_ERROR,  # sygnal disables the token; we don't
    "BadCertificate": Outcome.CONFIG_ERROR,
    "BadCertificateEnvironment": Outcome.CONFIG_ERROR,
    "ExpiredProviderToken": Outcome.REFRESH_AUTH,  # mint a new JWT, retry once
    "Forbidden": Outcome.CONFIG_ERROR,
    "InvalidProviderToken": Outcome.REFRESH_AUTH,  # one refresh + retry, then CONFIG_ERROR
    "MissingProviderToken": Outcome.CONFIG_ERROR,
    # "open a new connection; if persistent CONFIG_ERROR": connections are already per
    # (team, key), so a new one would be bound the same way; a topic-specific key that does
    # not cover the topic answers this too.
    "UnrelatedKeyIdInToken": Outcome.CONFIG_ERROR,
    "BadEnvironmentKeyIdInToken": Outcome.CONFIG_ERROR,
    "BadPath": Outcome.FAIL_PERMANENT,
    "MethodNotAllowed": Outcome.FAIL_PERMANENT,
    "ExpiredToken": Outcome.DISABLE_ENDPOINT,
    "Unregistered": Outcome.DISABLE_ENDPOINT,  # with invalid_since_ms from "timestamp"
    "PayloadTooLarge": Outcome.FAIL_PERMANENT,
    "TooManyProviderTokenUpdates": Outcome.RETRY_BACKOFF,  # and do not mint again
    "TooManyRequests": Outcome.RETRY_BACKOFF,
    "InternalServerError": Outcome.RETRY_BACKOFF,
    "ServiceUnavailable": Outcome.RETRY_BACKOFF,
    "Shutdown": Outcome.RETRY_BACKOFF,
}
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class ApnsTokenAuth:
    """A ``.p8`` signing key (PKCS#8 PEM, EC P-256) with its key id and team id."""

    key_pem: str = field(repr=False)
    key_id: str
    team_id: str


@dataclass(frozen=True, slots=True)
class ApnsCertificateAuth:
    """An Apple Push Services TLS client certificate and its private key, both PEM."""

    certificate_pem: str
    private_key_pem: str = field(repr=False)


@dataclass(slots=True)
class _CachedToken:
    jwt: str
    minted_at: float
    fingerprint: bytes


class ApnsTokenCache:
    """Provider JWTs, one per (team id, key id), shared by every client of a process.

    :meth:`token` reuses a JWT for :data:`TOKEN_REUSE_SECONDS`; :meth:`refresh` replaces
    a rejected one, at most once per :data:`TOKEN_MIN_INTERVAL_SECONDS` unless APNs said
    it expired. Minting is synchronous and under a lock, so it is single-flight across
    tasks and threads alike. ``clock`` is injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], _CachedToken] = {}
        self._keys: dict[bytes, ec.EllipticCurvePrivateKey] = {}

    def token(self, auth: ApnsTokenAuth) -> str:
        """The current JWT for ``auth``'s key, minted when absent or 50 minutes old."""
        fingerprint = _fingerprint(auth)
        with self._lock:
            now = self.clock()
            cached = self._tokens.get((auth.team_id, auth.key_id))
            if (
                cached is not None
                and cached.fingerprint == fingerprint
                and now - cached.minted_at < TOKEN_REUSE_SECONDS
            ):
                return cached.jwt
            return self._mint(auth, fingerprint, now)

    def refresh(self, auth: ApnsTokenAuth, rejected: str, reason: str) -> str | None:
        """A JWT to retry with after APNs refused ``rejected`` for ``reason``, or None.

        If another request already replaced ``rejected``, that replacement. Otherwise
        ``ExpiredProviderToken`` mints a new one at once (unless ``rejected`` is under a
        minute old: then the clock is wrong and a new token would not help), and any other
        reason only when the 20 minutes since the last mint have passed.
        """
        fingerprint = _fingerprint(auth)
        with self._lock:
            now = self.clock()
            cached = self._tokens.get((auth.team_id, auth.key_id))
            if cached is None or cached.fingerprint != fingerprint:
                return self._mint(auth, fingerprint, now)
            if cached.jwt != rejected:
                if now - cached.minted_at < TOKEN_REUSE_SECONDS:
                    return cached.jwt
                return self._mint(auth, fingerprint, now)
            age = now - cached.minted_at
            if reason == "ExpiredProviderToken":
                return None if age < EXPIRED_GRACE_SECONDS else self._mint(auth, fingerprint, now)
            if age >= TOKEN_MIN_INTERVAL_SECONDS:
                return self._mint(auth, fingerprint, now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _mint(self, auth: ApnsTokenAuth, fingerprint: bytes, now: float) -> str:
        log.info(
            "APNs provider token minted",
            extra={"action": "apns_token_minted", "team_id": auth.team_id, "key_id": auth.key_id},
        )
        key = self._keys.get(fingerprint)
        if key is None:
            key = self._keys[fingerprint] = load_signing_key(auth.key_pem)
        token = jwt.encode(
            {"iss": auth.team_id, "iat": int(now)},
            key,
            algorithm="ES256",
            headers={"kid": auth.key_id, "typ": None},  # exactly {"alg", "kid"}
        )
        self._tokens[(auth.team_id, auth.key_id)] = _CachedToken(token, now, fingerprint)
        return token


SHARED_TOKEN_CACHE = ApnsTokenCache()
"""The process's provider-token cache (sec. 1.2.1: one JWT per key across all connections)."""


def load_signing_key(key_pem: str) -> ec.EllipticCurvePrivateKey:
    """The EC P-256 private key of a ``.p8`` file; ValueError for anything else."""
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("an APNs signing key is an EC P-256 private key")
    return key


def _fingerprint(auth: ApnsTokenAuth) -> bytes:
    return hashlib.sha256(auth.key_pem.encode()).digest()


def classify(response: Response) -> SendResult:
    """The outcome of one APNs response (sec. 1.7); REFRESH_AUTH for a JWT to replace."""
    status = response.status
    if status == 200:
        return classified(response, Outcome.SUCCESS, text="")
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    reason, timestamp = _parse_error(response.body)
    # an unknown reason goes by status class (sec. 1.7)
    result = classified(response, REASONS.get(reason) or by_status_class(status), reason)
    if reason == "Unregistered":
        result.invalid_since_ms = timestamp
    return result


def _parse_error(body: bytes) -> tuple[str, int | None]:
    data = json_object(body)
    reason = data.get("reason")
    timestamp = data.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        timestamp = None
    return (reason if isinstance(reason, str) else ""), (
        int(timestamp) if timestamp is not None else None
    )


class ApnsClient:
    """Sends to one APNs environment (``base_url``) with one credential.

    ``default_topic`` (the application's bundle id) fills ``apns-topic`` when a
    notification has none; with certificate auth and no topic the header is left out and
    APNs takes the certificate's. The transport is shared and not closed here.
    """

    def __init__(
        self,
        base_url: str,
        auth: ApnsTokenAuth | ApnsCertificateAuth,
        transport: Http2Transport,
        *,
        default_topic: str | None = None,
        token_cache: ApnsTokenCache | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.transport = transport
        self.default_topic = default_topic
        self.tokens = SHARED_TOKEN_CACHE if token_cache is None else token_cache
        self._cert: ClientCert | None = None
        if isinstance(auth, ApnsTokenAuth):
            load_signing_key(auth.key_pem)  # fail at configuration, not at the first send
            self._pool = f"apns-token:{auth.team_id}:{auth.key_id}"
        else:
            self._cert = ClientCert(auth.certificate_pem.encode(), auth.private_key_pem.encode())
            self._pool = "apns-certificate"

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send each notification to its device token; results in the same order.
        ``ids``, when given, are the items' ``apns-id`` headers (lower-case UUIDs).

        Typed for any :data:`Notification` so that every client fits one protocol; a
        notification for another provider gets ``FAIL_PERMANENT``.
        """
        results: list[SendResult | None] = [None] * len(items)
        jwt_token = self.tokens.token(self.auth) if isinstance(self.auth, ApnsTokenAuth) else None
        indices: list[int] = []
        requests: list[Request] = []
        headers_of = per_notification(
            ApnsNotification,
            lambda note: self._with_authorization(self.build_headers(note), jwt_token),
            "an APNs",
        )
        for index, (token, notification) in enumerate(items):
            headers = headers_of(notification)
            if isinstance(headers, SendResult):
                results[index] = headers
                continue
            if not token or len(token) % 2 or not _HEX.issuperset(token):
                results[index] = unsendable(
                    "BadDeviceToken", "not an even-length hex token", Outcome.DISABLE_ENDPOINT
                )
                continue
            assert isinstance(notification, ApnsNotification)
            indices.append(index)
            if ids is not None:
                headers = (*headers, f"apns-id: {ids[index]}")
            requests.append(self._request(token, notification.payload, headers))
        if requests:
            await self._send(items, indices, requests, results, jwt_token)
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""

    def build_headers(self, notification: ApnsNotification) -> tuple[str, ...] | SendResult:
        """The header lines for ``notification`` minus ``authorization``, or the result
        that makes sending it pointless (sec. 1.3-1.5)."""
        payload = notification.payload
        limit = VOIP_PAYLOAD_LIMIT if notification.push_type == "voip" else PAYLOAD_LIMIT
        if len(payload) > limit:
            return unsendable("PayloadTooLarge", f"{len(payload)} bytes, limit {limit}")
        if not header_safe(notification.push_type):
            return unsendable("InvalidPushType", "unsendable apns-push-type")
        lines = [f"apns-push-type: {notification.push_type}"]
        topic = notification.topic or self.default_topic
        if topic is not None:
            if not header_safe(topic):
                return unsendable("BadTopic", "unsendable apns-topic", Outcome.CONFIG_ERROR)
            lines.append(f"apns-topic: {topic}")
        if notification.priority is not None:
            lines.append(f"apns-priority: {int(notification.priority)}")
        if notification.expiration is not None:
            lines.append(f"apns-expiration: {int(notification.expiration)}")
        collapse_id = notification.collapse_id
        if collapse_id is not None:
            if len(collapse_id.encode()) > COLLAPSE_ID_LIMIT or not header_safe(collapse_id):
                return unsendable("BadCollapseId", "apns-collapse-id")
            lines.append(f"apns-collapse-id: {collapse_id}")
        lines.append("content-type: application/json")
        lines.append("accept:")  # libcurl's default "accept: */*" left out
        return tuple(lines)

    @staticmethod
    def _with_authorization(
        headers: tuple[str, ...] | SendResult, jwt_token: str | None
    ) -> tuple[str, ...] | SendResult:
        if jwt_token is None or isinstance(headers, SendResult):
            return headers
        return (f"authorization: bearer {jwt_token}", *headers)

    def _request(self, token: str, payload: bytes, headers: Sequence[str]) -> Request:
        return Request(
            "POST",
            f"{self.base_url}/3/device/{token}",
            headers,
            payload,
            self._cert,
            self._pool,
        )

    async def _send(
        self,
        items: Sequence[tuple[str, Notification]],
        indices: list[int],
        requests: list[Request],
        results: list[SendResult | None],
        jwt_token: str | None,
    ) -> None:
        responses = await self.transport.request_many(requests)
        refused: list[tuple[int, SendResult]] = []  # positions whose JWT APNs refused
        for position, response in enumerate(responses):
            result = classify(response)
            results[indices[position]] = result
            if result.outcome is Outcome.REFRESH_AUTH:
                refused.append((position, result))
        if not refused:
            return
        retry_jwt = None
        if jwt_token is not None and isinstance(self.auth, ApnsTokenAuth):
            reasons = {result.reason for _, result in refused}
            reason = "ExpiredProviderToken" if "ExpiredProviderToken" in reasons else reasons.pop()
            retry_jwt = self.tokens.refresh(self.auth, jwt_token, reason)
        if retry_jwt is None:
            for position, result in refused:
                results[indices[position]] = credential_refused(result)
            return
        swapped: dict[int, tuple[str, ...]] = {}  # one header tuple per notification again
        retries = []
        for position, _ in refused:
            headers = requests[position].headers
            replaced = swapped.get(id(headers))
            if replaced is None:  # the refused authorization line out, the new one in
                replaced = swapped[id(headers)] = (
                    f"authorization: bearer {retry_jwt}",
                    *headers[1:],
                )
            request = requests[position]
            retries.append(self._request(items[indices[position]][0], request.body, replaced))
        for (position, _), response in zip(
            refused, await self.transport.request_many(retries), strict=True
        ):
            result = classify(response)
            if result.outcome is Outcome.REFRESH_AUTH:
                result = credential_refused(result)
            results[indices[position]] = result
