"""Amazon Device Messaging client (specs/providers.md sec. 3).

A Login with Amazon access token (OAuth 2.0 client credentials, scope ``messaging:push``,
sec. 3.1) from :mod:`pushgate.providers.oauth`, then one ``POST`` per registration id
(sec. 3.2). The registration id is part of the URL, so a notification's body and header
lines are the same for every device: they are built once per notification and call.

:func:`classify` maps a send response by the sec. 3.3 table: the ``reason`` of the JSON
error body first, then the HTTP status (ADM's error bodies are not always JSON). A 200
naming another ``registrationID`` than the one sent to is ``UPDATE_TOKEN``.

The optional ``md5`` field is never sent: ADM checks it when present, and the algorithm
recalled in sec. 3.2 is unverified; a wrong checksum would fail every message.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pushgate.providers.bearer import BearerSender
from pushgate.providers.notifications import AdmNotification, Notification, per_notification
from pushgate.providers.oauth import SHARED_CACHE, ClientCredentials, ClientCredentialsCache
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

SCOPE = "messaging:push"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
DATA_LIMIT = 6144  # bytes of compact JSON ``data`` (sec. 3.2: 6 KB, whitespace excluded)
MAX_EXPIRES_AFTER = 2678400  # 31 days (sec. 3.2)
_POOL = "adm"
_SEPARATORS = (",", ":")

# specs/providers.md sec. 3.3, by the ``reason`` of the error body (looked at first).
REASONS: dict[str, Outcome] = {
    "InvalidRegistrationId": Outcome.DISABLE_ENDPOINT,
    "Unregistered": Outcome.DISABLE_ENDPOINT,
    "InvalidData": Outcome.FAIL_PERMANENT,
    "InvalidConsolidationKey": Outcome.FAIL_PERMANENT,
    "InvalidExpiration": Outcome.FAIL_PERMANENT,
    "InvalidChecksum": Outcome.FAIL_PERMANENT,
    "InvalidType": Outcome.FAIL_PERMANENT,  # our X-Amzn-Type-Version / Accept-Type: a bug
    "AccessTokenExpired": Outcome.REFRESH_AUTH,
    "MessageTooLarge": Outcome.FAIL_PERMANENT,
    "MaxRateExceeded": Outcome.RETRY_AFTER,
    "InternalServerError": Outcome.RETRY_BACKOFF,
    "UnknownError": Outcome.RETRY_BACKOFF,
}
# ... and by HTTP status when the body names no known reason ("less than helpful" bodies).
STATUSES: dict[int, Outcome] = {
    400: Outcome.FAIL_PERMANENT,
    401: Outcome.REFRESH_AUTH,
    413: Outcome.FAIL_PERMANENT,
    429: Outcome.RETRY_AFTER,
}


def classify(response: Response, registration_id: str) -> SendResult:
    """The outcome of one send to ``registration_id`` (sec. 3.3). A throttling answer
    without ``Retry-After`` is ``RETRY_BACKOFF``: there is no hint to honour; a 5xx with
    one is ``RETRY_AFTER`` (sec. 0.2)."""
    status = response.status
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    body = json_object(response.body)
    if status == 200:
        current = body.get("registrationID")
        if isinstance(current, str) and current and current != registration_id:
            result = classified(response, Outcome.UPDATE_TOKEN)
            result.new_token = current
            return result
        return classified(response, Outcome.SUCCESS)
    reason = body.get("reason")
    reason = reason if isinstance(reason, str) else ""
    outcome = REASONS.get(reason) or STATUSES.get(status) or by_status_class(status)
    return classified(response, outcome, reason)


@dataclass(frozen=True, slots=True)
class Body:
    """A notification's body before its ``expiresAfter``, which depends on the send time."""

    head: bytes  # ``{"data":...,"consolidationKey":...`` without the closing brace
    expires_after: int | None
    expires_at: float | None

    def render(self, now: float) -> bytes:
        """The body, its ``expiresAfter`` the remaining TTL: SNS hands the provider what is
        left after the time the message waited (sns-api.md 5.6)."""
        seconds = self.expires_after
        if self.expires_at is not None:
            remaining = max(1, math.floor(self.expires_at - now))
            seconds = remaining if seconds is None else min(seconds, remaining)
        if seconds is None:
            return self.head + b"}"
        return self.head + b',"expiresAfter":' + str(seconds).encode() + b"}"


def build_body(notification: AdmNotification) -> Body | SendResult:
    """The send body of ``notification`` (sec. 3.2), or why it cannot be sent."""
    if not all(
        isinstance(key, str) and isinstance(value, str) for key, value in notification.data.items()
    ):
        return unsendable("InvalidData", "data values must be strings")
    try:
        # sec. 3.2 counts data as compact JSON; its UTF-8 bytes are what is limited.
        data = json.dumps(notification.data, separators=_SEPARATORS, ensure_ascii=False).encode()
        key = notification.consolidation_key
        head = b'{"data":' + data
        if key is not None:
            head += b',"consolidationKey":' + json.dumps(key, ensure_ascii=False).encode()
    except (TypeError, ValueError, UnicodeError) as exc:
        return unsendable("InvalidData", str(exc))
    if len(data) > DATA_LIMIT:
        return unsendable("PayloadTooLarge", f"{len(data)} bytes, limit {DATA_LIMIT}")
    expires_after = notification.expires_after
    if expires_after is not None and not 1 <= expires_after <= MAX_EXPIRES_AFTER:
        return unsendable("InvalidExpiration", f"{expires_after} seconds")
    return Body(head, expires_after, notification.expires_at)


def _render(notification: AdmNotification, now: float) -> bytes | SendResult:
    body = build_body(notification)
    return body if isinstance(body, SendResult) else body.render(now)


class AdmClient:
    """Sends to ADM (``base_url``) for one Login with Amazon client.

    The transport is shared and not closed here. ``clock`` (epoch seconds) is injectable
    for tests of the remaining TTL.
    """

    def __init__(
        self,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        transport: Http2Transport,
        *,
        token_cache: ClientCredentialsCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = ClientCredentials(token_url, client_id, client_secret, SCOPE)
        self.transport = transport
        self.tokens = SHARED_CACHE if token_cache is None else token_cache
        self.clock = clock
        # An expired token (sec. 3.3 ``AccessTokenExpired``) gets one refresh and retry.
        self._bearer = BearerSender(self.tokens, self.credentials, transport, "adm")

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send each notification to its registration id; results in the same order.
        ``ids`` is accepted for the common client shape; ADM has no request id.

        A notification of another provider gets ``FAIL_PERMANENT`` ``WrongPlatform``.
        """
        results: list[SendResult | None] = [None] * len(items)
        indices: list[int] = []
        sends: list[tuple[str, bytes]] = []
        now = self.clock()
        body_of = per_notification(AdmNotification, lambda note: _render(note, now), "an ADM")
        for index, (token, notification) in enumerate(items):
            body = body_of(notification)
            if isinstance(body, SendResult):
                results[index] = body
                continue
            indices.append(index)
            sends.append((token, body))
        sent = await self._bearer.send(
            sends, self._requests, lambda response, send: classify(response, send[0])
        )
        for index, result in zip(indices, sent, strict=True):
            results[index] = result
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""

    def url(self, registration_id: str) -> str:
        quoted = urllib.parse.quote(registration_id, safe="")
        return f"{self.base_url}/messaging/registrations/{quoted}/messages"

    def _requests(self, access: str, sends: list[tuple[str, bytes]]) -> list[Request]:
        headers = (
            f"authorization: Bearer {access}",
            "content-type: application/json",
            "accept: application/json",
            f"x-amzn-type-version: {TYPE_VERSION}",
            f"x-amzn-accept-type: {ACCEPT_TYPE}",
        )
        return [
            Request("POST", self.url(token), headers, body, None, _POOL) for token, body in sends
        ]
