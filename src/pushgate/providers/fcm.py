"""Firebase Cloud Messaging HTTP v1 client (specs/providers.md sec. 2).

Pure halves and a thin send, as in :mod:`pushgate.providers.apns`: :func:`build_assertion`
makes the OAuth2 JWT-bearer grant (RFC 7523), :meth:`FcmClient.build_body` the send body,
:func:`classify` maps a send response by the sec. 2.5 table (FcmError ``errorCode`` first,
then the HTTP status).

Access tokens are cached per service account in one :class:`FcmTokenCache` per process
(shared by every client, so rebuilding a client does not cost a token) until 5 minutes
before ``expires_in`` runs out; concurrent refreshes share one request to the service
account's own ``token_uri``, sent through the same transport as the messages. The cache
and the refresh-once rule are the other bearer-token providers' too
(:mod:`pushgate.providers.oauth`, :mod:`pushgate.providers.bearer`).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgate.providers.bearer import BearerSender
from pushgate.providers.notifications import FcmNotification, Notification, per_notification
from pushgate.providers.oauth import AccessTokenCache
from pushgate.providers.outcomes import (
    Outcome,
    SendResult,
    by_status_class,
    classified,
    json_object,
    no_response,
    unsendable,
)
from pushgate.providers.transport import Http2Transport, Request, Response

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# google-auth (firebase-admin's) always signs for this audience, whatever token_uri says.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
QUOTA_RETRY_AFTER = 60.0  # sec. 2.5: without Retry-After, at least a minute after a 429
_POOL = "fcm"  # FCM binds nothing to a connection: every service account shares them

# specs/providers.md sec. 2.5, by FcmError errorCode (looked at first).
ERROR_CODES: dict[str, Outcome] = {
    "UNREGISTERED": Outcome.DISABLE_ENDPOINT,
    "SENDER_ID_MISMATCH": Outcome.DISABLE_ENDPOINT,  # unless fleet-wide (delivery's call)
    "THIRD_PARTY_AUTH_ERROR": Outcome.CONFIG_ERROR,  # never disable the endpoint
    "APNS_AUTH_ERROR": Outcome.CONFIG_ERROR,  # legacy alias of THIRD_PARTY_AUTH_ERROR
    "QUOTA_EXCEEDED": Outcome.RETRY_AFTER,
    "INTERNAL": Outcome.RETRY_BACKOFF,
    "UNAVAILABLE": Outcome.RETRY_BACKOFF,
    "INVALID_ARGUMENT": Outcome.FAIL_PERMANENT,  # DISABLE_ENDPOINT when about the token
}
# ... and by HTTP status when there is no errorCode (or UNSPECIFIED_ERROR, or an unknown one).
STATUSES: dict[int, Outcome] = {
    400: Outcome.FAIL_PERMANENT,  # INVALID_ARGUMENT, BadRequest detail only: a client bug
    401: Outcome.REFRESH_AUTH,  # UNAUTHENTICATED: refresh the access token, retry once
    403: Outcome.CONFIG_ERROR,  # PERMISSION_DENIED: no permission, or the API disabled
    404: Outcome.CONFIG_ERROR,  # NOT_FOUND without UNREGISTERED: wrong project
    429: Outcome.RETRY_AFTER,  # RESOURCE_EXHAUSTED
    500: Outcome.RETRY_BACKOFF,  # INTERNAL
    503: Outcome.RETRY_BACKOFF,  # UNAVAILABLE
}
_TOKEN_MESSAGE = "registration token"
_TOKEN_FIELD = "message.token"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What a service-account JSON holds that the client needs."""

    client_email: str
    private_key_id: str
    private_key_pem: str = field(repr=False)
    token_uri: str
    project_id: str

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ServiceAccount:
        """From the parsed JSON; ValueError names the first missing or empty field."""
        values: dict[str, str] = {}
        for name in ("client_email", "private_key_id", "private_key", "token_uri", "project_id"):
            value = info.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"service account JSON lacks {name}")
            values[name] = value
        return cls(
            values["client_email"],
            values["private_key_id"],
            values["private_key"],
            values["token_uri"],
            values["project_id"],
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.client_email, self.private_key_id, self.token_uri)


def load_rsa_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    """The service account's RSA private key; ValueError for anything else."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a service account key is an RSA private key")
    return key


def build_assertion(account: ServiceAccount, key: rsa.RSAPrivateKey, now: float) -> str:
    """The signed JWT of the JWT-bearer grant (sec. 2.2)."""
    iat = int(now)
    claims = {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": TOKEN_AUDIENCE,
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME,
    }
    headers = {"kid": account.private_key_id, "typ": "JWT"}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def classify(response: Response) -> SendResult:
    """The outcome of one send response (sec. 2.5); REFRESH_AUTH for a stale access token."""
    status = response.status
    if status == 200:
        return classified(response, Outcome.SUCCESS)
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    error = json_object(response.body).get("error")
    error = error if isinstance(error, dict) else {}
    error_code = _fcm_error_code(error)
    canonical = error.get("status") if isinstance(error.get("status"), str) else ""
    outcome = ERROR_CODES.get(error_code) if error_code else None
    if outcome is Outcome.FAIL_PERMANENT and _about_token(error):
        outcome = Outcome.DISABLE_ENDPOINT
    if outcome is None:
        outcome = STATUSES.get(status) or by_status_class(status)
    # sec. 2.5: "honour Retry-After if any", and at least a minute after a 429
    return classified(
        response, outcome, error_code or str(canonical), default_wait=QUOTA_RETRY_AFTER
    )


def _fcm_error_code(error: Mapping[str, Any]) -> str:
    details = error.get("details")
    if not isinstance(details, list):
        return ""
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == _FCM_ERROR:
            code = detail.get("errorCode")
            if isinstance(code, str) and code != "UNSPECIFIED_ERROR":
                return code
    return ""


def _about_token(error: Mapping[str, Any]) -> bool:
    """INVALID_ARGUMENT about the registration token, not the message (sec. 2.5)."""
    message = error.get("message")
    if isinstance(message, str) and _TOKEN_MESSAGE in message.lower():
        return True
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        for violation in detail.get("fieldViolations") or ():
            if isinstance(violation, dict) and violation.get("field") == _TOKEN_FIELD:
                return True
    return False


class FcmTokenCache(AccessTokenCache[ServiceAccount]):
    """OAuth2 access tokens per service account (the JWT-bearer grant, sec. 2.2), for
    every client of a process. Token requests go to the account's own ``token_uri``
    through the connections of the messages."""

    PROVIDER = "fcm"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._keys: dict[tuple[str, str, str], rsa.RSAPrivateKey] = {}

    def token_request(self, credential: ServiceAccount, now: float, provider: str) -> Request:
        assertion = build_assertion(credential, self._key(credential), now)
        body = urllib.parse.urlencode({"grant_type": GRANT_TYPE, "assertion": assertion})
        return Request(
            "POST",
            credential.token_uri,
            ("content-type: application/x-www-form-urlencoded", "accept: application/json"),
            body.encode(),
            pool=_POOL,
        )

    def log_fields(self, credential: ServiceAccount) -> dict[str, str]:
        return {"client_email": credential.client_email}

    def _key(self, account: ServiceAccount) -> rsa.RSAPrivateKey:
        key = self._keys.get(account.key)
        if key is None:
            key = self._keys[account.key] = load_rsa_key(account.private_key_pem)
        return key


SHARED_TOKEN_CACHE = FcmTokenCache()
"""The process's access-token cache."""


class FcmClient:
    """Sends to FCM (``base_url``) for one service account's project.

    The transport is shared and not closed here.
    """

    def __init__(
        self,
        base_url: str,
        service_account: Mapping[str, Any],
        transport: Http2Transport,
        *,
        token_cache: FcmTokenCache | None = None,
    ) -> None:
        self.account = ServiceAccount.from_info(service_account)
        load_rsa_key(self.account.private_key_pem)  # fail at configuration time
        self.transport = transport
        self.tokens = SHARED_TOKEN_CACHE if token_cache is None else token_cache
        # 401 UNAUTHENTICATED: one new access token and one more try (sec. 2.2 step 5).
        self._bearer = BearerSender(self.tokens, self.account, transport, "fcm")
        project = urllib.parse.quote(self.account.project_id, safe="")
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project}/messages:send"

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send each notification to its registration token; results in the same order.
        ``ids`` is accepted for the common client shape; FCM v1 has no request id.

        Typed for any :data:`Notification` so that every client fits one protocol; a
        notification for another provider gets ``FAIL_PERMANENT``.
        """
        results: list[SendResult | None] = [None] * len(items)
        indices: list[int] = []
        bodies: list[bytes] = []
        template_of = per_notification(FcmNotification, body_template, "an FCM")
        for index, (token, notification) in enumerate(items):
            template = template_of(notification)
            if isinstance(template, SendResult):
                results[index] = template
                continue
            indices.append(index)
            bodies.append(template[0] + json.dumps(token).encode() + template[1])
        sent = await self._bearer.send(
            bodies, self._requests, lambda response, _: classify(response)
        )
        for index, result in zip(indices, sent, strict=True):
            results[index] = result
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""

    def build_body(self, token: str, notification: FcmNotification) -> bytes | SendResult:
        """The send body for one token, or why the message cannot be sent."""
        template = body_template(notification)
        if isinstance(template, SendResult):
            return template
        return template[0] + json.dumps(token).encode() + template[1]

    def _requests(self, access: str, bodies: list[bytes]) -> list[Request]:
        headers = (
            f"authorization: Bearer {access}",
            "content-type: application/json",
            "accept:",
        )
        url = self.url
        return [Request("POST", url, headers, body, None, _POOL) for body in bodies]


def body_template(notification: FcmNotification) -> tuple[bytes, bytes] | SendResult:
    """The send body around the token, serialised once per notification (sec. 2.3):
    ``{"message": {"token": <token>, ...message}, "validate_only": true?}``."""
    message = {name: value for name, value in notification.message.items() if name != "token"}
    try:
        rest = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        tail = "}" if rest == "{}" else "," + rest[1:]
        tail += ',"validate_only":true}' if notification.validate_only else "}"
        return b'{"message":{"token":', tail.encode()
    except (TypeError, ValueError, UnicodeError) as exc:
        return unsendable("InvalidMessage", str(exc))
