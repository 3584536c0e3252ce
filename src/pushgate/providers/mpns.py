"""Microsoft Push Notification Service client (specs/providers.md sec. 4.4).

MPNS (Windows Phone 7/8) was shut down in 2018; SNS still lists the platform, so pushgate
keeps it for API compatibility and delivers to whatever channel hosts the operator
allow-lists (``*.notify.live.net`` by default, which no longer answers: sends there fail
as ``NoResponse``; tests and demos allow-list the fake). The device token is the channel
URI; one on another host fails with ``ForbiddenChannelHost`` and is never requested.
Unauthenticated services post to ``http`` channel URIs, authenticated ones to ``https``
presenting the service's TLS client certificate (SNS: PlatformPrincipal = certificate,
PlatformCredential = private key).

:func:`classify` maps a response by the sec. 4.4 table, reading ``X-NotificationStatus``
and ``X-SubscriptionStatus``: only ``404`` with ``Expired`` disables an endpoint (sec.
8.1). Waits the table implies are set as ``retry_after``:

* ``200 QueueFull``: back off "in minute increments", so at least 60 s;
* ``406`` (an unauthenticated service's daily quota of 500 per subscription): until the
  next UTC midnight, when the quota is assumed to reset **[unverified]**; the engine caps
  any wait at an hour, so a day's quota costs at most one refused attempt an hour;
* ``412`` (device inactive): "at most hourly", so 3600 s.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from pushgate.providers.hosts import parse_allow_list, refusal
from pushgate.providers.notifications import MpnsNotification, Notification, per_notification
from pushgate.providers.outcomes import (
    Outcome,
    SendResult,
    by_status_class,
    diagnostics,
    no_response,
    unsendable,
)
from pushgate.providers.transport import (
    HTTP1_CONNECTIONS,
    ClientCert,
    Http2Transport,
    Request,
    Response,
)

PAYLOAD_LIMIT = 3072  # bytes [unverified]: "3K payload" (2012); a WP8 book says 1 KB
SCHEMES = ("http", "https")
QUEUE_FULL_WAIT = 60.0
INACTIVE_WAIT = 3600.0
_POOL = "mpns"
_DAY = 86400

# X-NotificationClass → X-WindowsPhone-Target (None: raw, the header left out).
CLASSES: dict[int, str | None] = {
    1: "token",
    11: "token",
    21: "token",
    2: "toast",
    12: "toast",
    22: "toast",
    3: None,
    13: None,
    23: None,
}
# specs/providers.md sec. 4.4, by HTTP status (404 disables only with Expired).
STATUSES: dict[int, tuple[Outcome, str]] = {
    400: (Outcome.FAIL_PERMANENT, "BadRequest"),  # bad XML or headers
    401: (Outcome.CONFIG_ERROR, "Unauthorized"),  # the service's certificate
    404: (Outcome.FAIL_PERMANENT, "NotFound"),
    405: (Outcome.FAIL_PERMANENT, "MethodNotAllowed"),
    406: (Outcome.RETRY_AFTER, "DailyQuotaExceeded"),
    412: (Outcome.RETRY_BACKOFF, "DeviceInactive"),
    503: (Outcome.RETRY_BACKOFF, "ServiceUnavailable"),
}
EXPIRED = (Outcome.DISABLE_ENDPOINT, "SubscriptionExpired")
# ... and a 200 by its X-NotificationStatus; any other value was accepted all the same.
NOTIFICATION_STATUSES: dict[str, tuple[Outcome, str]] = {
    "received": (Outcome.SUCCESS, ""),
    "suppressed": (Outcome.SUCCESS, ""),  # dropped by the device's policy for that class
    "queuefull": (Outcome.RETRY_BACKOFF, "QueueFull"),
}
DIAGNOSTIC_HEADERS = (
    "x-notificationstatus",
    "x-deviceconnectionstatus",
    "x-subscriptionstatus",
    "x-messageid",
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def seconds_to_utc_midnight(now: float) -> float:
    """Seconds from ``now`` (epoch) to the next 00:00 UTC, at least 1."""
    return max(1.0, _DAY - now % _DAY)


def classify(response: Response, now: float | None = None) -> SendResult:
    """The outcome of one send response (sec. 4.4); ``now`` (epoch) dates a 406's wait."""
    status = response.status
    latency_ms = response.elapsed * 1000
    if status == 0:
        return no_response(response.error, latency_ms)
    headers = response.headers
    retry_after = response.retry_after
    if status == 200:
        state = headers.get("x-notificationstatus", "").lower()
        outcome, reason = NOTIFICATION_STATUSES.get(state, (Outcome.SUCCESS, ""))
        if outcome is Outcome.RETRY_BACKOFF:
            retry_after = max(retry_after or 0.0, QUEUE_FULL_WAIT)
    elif status == 404 and headers.get("x-subscriptionstatus", "").lower() == "expired":
        outcome, reason = EXPIRED
    else:
        outcome, reason = STATUSES.get(status) or (by_status_class(status), f"HTTP{status}")
        if status == 406:
            retry_after = seconds_to_utc_midnight(time.time() if now is None else now)
        elif status == 412:
            retry_after = max(retry_after or 0.0, INACTIVE_WAIT)
        elif outcome is Outcome.RETRY_BACKOFF and retry_after is not None:
            outcome = Outcome.RETRY_AFTER  # sec. 0.2: honour Retry-After
    if outcome not in (Outcome.RETRY_AFTER, Outcome.RETRY_BACKOFF):
        retry_after = None
    return SendResult(
        outcome,
        status=status,
        reason=reason,
        response=diagnostics(response, DIAGNOSTIC_HEADERS),
        retry_after=retry_after,
        latency_ms=latency_ms,
    )


def build_headers(notification: MpnsNotification) -> tuple[str, ...] | SendResult:
    """The header lines of ``notification`` (sec. 4.4), or why it cannot be sent."""
    if len(notification.body) > PAYLOAD_LIMIT:
        return unsendable(
            "PayloadTooLarge", f"{len(notification.body)} bytes, limit {PAYLOAD_LIMIT}"
        )
    notification_class = notification.notification_class
    if notification_class not in CLASSES or CLASSES[notification_class] != notification.target:
        return unsendable(
            "InvalidNotificationClass",
            f"X-NotificationClass {notification_class} does not fit target "
            f"{notification.target or 'raw'}",
        )
    lines = ["content-type: text/xml"]
    if notification.target is not None:
        lines.append(f"x-windowsphone-target: {notification.target}")
    lines += [f"x-notificationclass: {notification_class}", "expect:", "accept:"]
    return tuple(lines)


class MpnsClient:
    """Sends to MPNS channel URIs, as an authenticated service when given its TLS client
    certificate and key (PEM). The transport is shared and not closed here."""

    def __init__(
        self,
        transport: Http2Transport,
        allowed_hosts: Sequence[str],
        *,
        certificate_pem: str | None = None,
        private_key_pem: str | None = None,
    ) -> None:
        if (certificate_pem is None) != (private_key_pem is None):
            raise ValueError("an MPNS certificate needs its private key, and the other way")
        self.transport = transport
        self.allowed_hosts = parse_allow_list(allowed_hosts)
        self._cert = (
            None
            if certificate_pem is None or private_key_pem is None
            else ClientCert(certificate_pem.encode(), private_key_pem.encode())
        )

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send each notification to its channel URI; results in the same order. ``ids``
        (UUIDs, the same on every attempt) become ``X-MessageID``, which MPNS echoes.

        Typed for any :data:`Notification` so that every client fits one protocol; a
        notification for another provider gets ``FAIL_PERMANENT``.
        """
        results: list[SendResult | None] = [None] * len(items)
        indices: list[int] = []
        requests: list[Request] = []
        headers_of = per_notification(MpnsNotification, build_headers, "an MPNS")
        for index, (token, notification) in enumerate(items):
            headers = headers_of(notification)
            if isinstance(headers, SendResult):
                results[index] = headers
                continue
            refused = refusal(token, self.allowed_hosts, SCHEMES)
            if refused is not None:
                results[index] = unsendable("ForbiddenChannelHost", refused)
                continue
            assert isinstance(notification, MpnsNotification)
            if ids is not None and _UUID.fullmatch(ids[index]):
                headers = (*headers, f"x-messageid: {ids[index]}")
            indices.append(index)
            requests.append(self._request(token, headers, notification.body))
        if requests:
            responses = await self.transport.request_many(requests)
            now = time.time()
            for index, response in zip(indices, responses, strict=True):
                results[index] = classify(response, now)
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""

    def _request(self, channel: str, headers: tuple[str, ...], body: bytes) -> Request:
        return Request("POST", channel, headers, body, self._cert, _POOL, True, HTTP1_CONNECTIONS)
