"""Windows Push Notification Services client (specs/providers.md sec. 4.1-4.3).

The device token is the channel URI the app got from WNS; pushgate POSTs the notification
to it. A device chose that URL, so it is requested only when its host is on the operator's
allow-list (``*.notify.windows.com`` in production, :mod:`pushgate.providers.hosts`): any
other token fails with ``FAIL_PERMANENT`` ``ForbiddenChannelHost`` and is never fetched.

The access token comes from the package's client credentials (scope
``notify.windows.com``, sec. 4.1) through the process's
:class:`~pushgate.providers.oauth.ClientCredentialsCache`; one token serves every channel
of the package for its 24 hours. A ``401`` gets one new token and one more try, then
``CONFIG_ERROR``.

:func:`classify` maps a response by the sec. 4.3 table. WNS has no error names, so
``reason`` is a short name for the status (``ChannelExpired`` ...) and ``response`` keeps
the diagnostic headers, ``X-WNS-Error-Description`` first: the body of a 400 is often
empty and that header the only explanation. A ``403`` (the token's package does not own
the channel) disables that one endpoint as ``ChannelNotOwned``; when every channel of a
batch says so, the package is misconfigured, which is the engine's fleet-wide rule
(sec. 0.1, 8.1) to apply.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from pushgate.providers.bearer import BearerSender
from pushgate.providers.hosts import parse_allow_list, refusal
from pushgate.providers.notifications import Notification, WnsNotification, per_notification
from pushgate.providers.oauth import SHARED_CACHE, ClientCredentials, ClientCredentialsCache
from pushgate.providers.outcomes import (
    Outcome,
    SendResult,
    by_status_class,
    classified,
    diagnostics,
    no_response,
    unsendable,
)
from pushgate.providers.transport import (
    HTTP1_CONNECTIONS,
    Http2Transport,
    Request,
    Response,
    header_safe,
)

SCOPE = "notify.windows.com"
PAYLOAD_LIMIT = 5000  # bytes (sec. 4.2; WNS answers 413 above)
TAG_LIMIT = 16  # characters
_POOL = "wns"

CONTENT_TYPES = {
    "wns/toast": "text/xml",
    "wns/tile": "text/xml",
    "wns/badge": "text/xml",
    "wns/raw": "application/octet-stream",
}
CACHE_POLICIES = frozenset({"cache", "no-cache"})

# specs/providers.md sec. 4.3, by HTTP status.
STATUSES: dict[int, tuple[Outcome, str]] = {
    400: (Outcome.FAIL_PERMANENT, "BadRequest"),  # headers wrong or conflicting
    401: (Outcome.REFRESH_AUTH, "Unauthorized"),  # access token missing, invalid or expired
    403: (Outcome.DISABLE_ENDPOINT, "ChannelNotOwned"),  # CONFIG_ERROR when fleet-wide
    404: (Outcome.DISABLE_ENDPOINT, "ChannelNotFound"),
    405: (Outcome.FAIL_PERMANENT, "MethodNotAllowed"),  # a client bug
    406: (Outcome.RETRY_BACKOFF, "Throttled"),  # the whole service: slow down
    410: (Outcome.DISABLE_ENDPOINT, "ChannelExpired"),  # channels live 30 days
    413: (Outcome.FAIL_PERMANENT, "PayloadTooLarge"),
    500: (Outcome.RETRY_BACKOFF, "InternalServerError"),
    503: (Outcome.RETRY_BACKOFF, "ServiceUnavailable"),
}
# ... and a 200 by its X-WNS-Status (or X-WNS-NotificationStatus): accepted, but for
# channelthrottled. "dropped" (a raw notification while the app is not running) is no
# reason to disable anything.
NOTIFICATION_STATUSES: dict[str, tuple[Outcome, str]] = {
    "received": (Outcome.SUCCESS, ""),
    "dropped": (Outcome.SUCCESS, ""),
    "channelthrottled": (Outcome.RETRY_BACKOFF, "ChannelThrottled"),
}
# What a delivery log keeps of a response, most telling first.
DIAGNOSTIC_HEADERS = (
    "x-wns-error-description",
    "x-wns-status",
    "x-wns-notificationstatus",
    "x-wns-deviceconnectionstatus",
    "x-wns-msg-id",
    "x-wns-debug-trace",
    "www-authenticate",
)


def classify(response: Response) -> SendResult:
    """The outcome of one send response (sec. 4.3); REFRESH_AUTH for a refused token."""
    status = response.status
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    if status == 200:
        headers = response.headers
        state = headers.get("x-wns-status") or headers.get("x-wns-notificationstatus") or ""
        outcome, reason = NOTIFICATION_STATUSES.get(state.lower(), (Outcome.SUCCESS, ""))
    else:
        outcome, reason = STATUSES.get(status) or (by_status_class(status), f"HTTP{status}")
    # sec. 0.2 and 4.3: a Retry-After, if present, is honoured
    return classified(response, outcome, reason, diagnostics(response, DIAGNOSTIC_HEADERS))


def build_headers(notification: WnsNotification, now: float) -> tuple[str, ...] | SendResult:
    """The header lines of ``notification`` minus ``authorization``, or why it cannot be
    sent (sec. 4.2). ``X-WNS-TTL`` is what is left of the TTL at ``now`` (sns-api.md 5.6:
    the time the message waited is subtracted)."""
    if len(notification.body) > PAYLOAD_LIMIT:
        return unsendable(
            "PayloadTooLarge", f"{len(notification.body)} bytes, limit {PAYLOAD_LIMIT}"
        )
    content_type = CONTENT_TYPES.get(notification.kind)
    if content_type is None:
        return unsendable("InvalidType", "X-WNS-Type must be wns/toast, tile, badge or raw")
    lines = [f"x-wns-type: {notification.kind}", f"content-type: {content_type}"]
    if notification.cache_policy is not None:
        if notification.cache_policy not in CACHE_POLICIES:
            return unsendable("InvalidCachePolicy", "X-WNS-Cache-Policy must be cache or no-cache")
        lines.append(f"x-wns-cache-policy: {notification.cache_policy}")
    if notification.ttl is not None:
        lines.append(f"x-wns-ttl: {_remaining_ttl(notification, now)}")
    if notification.tag is not None:
        if len(notification.tag) > TAG_LIMIT or not header_safe(notification.tag):
            return unsendable("InvalidTag", "X-WNS-Tag: 1 to 16 printable ASCII characters")
        lines.append(f"x-wns-tag: {notification.tag}")
    if notification.group is not None:
        if not header_safe(notification.group):
            return unsendable("InvalidGroup", "X-WNS-Group: printable ASCII characters")
        lines.append(f"x-wns-group: {notification.group}")
    if notification.suppress_popup is not None:
        lines.append(f"x-wns-suppresspopup: {'true' if notification.suppress_popup else 'false'}")
    # Microsoft asks for no "Expect: 100-continue", which libcurl adds to large HTTP/1.1
    # POSTs; an empty value removes it, as it removes libcurl's "Accept: */*".
    lines += ["expect:", "accept:"]
    return tuple(lines)


def _remaining_ttl(notification: WnsNotification, now: float) -> int:
    ttl = notification.ttl
    assert ttl is not None
    if not ttl or notification.expires_at is None:
        return ttl
    return max(1, min(ttl, math.ceil(notification.expires_at - now)))


class WnsClient:
    """Sends to WNS channel URIs for one package (its SID and client secret).

    ``allowed_hosts`` are the hosts a channel URI may name (:mod:`pushgate.providers.hosts`).
    The transport is shared and not closed here.
    """

    def __init__(
        self,
        token_url: str,
        package_sid: str,
        client_secret: str,
        transport: Http2Transport,
        allowed_hosts: Sequence[str],
        *,
        token_cache: ClientCredentialsCache | None = None,
    ) -> None:
        self.credentials = ClientCredentials(token_url, package_sid, client_secret, SCOPE)
        self.transport = transport
        self.allowed_hosts = parse_allow_list(allowed_hosts)
        self.tokens = SHARED_CACHE if token_cache is None else token_cache
        self._bearer = BearerSender(self.tokens, self.credentials, transport, "wns")

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send each notification to its channel URI; results in the same order. ``ids``
        is accepted for the common client shape; WNS takes no request id.

        Typed for any :data:`Notification` so that every client fits one protocol; a
        notification for another provider gets ``FAIL_PERMANENT``.
        """
        results: list[SendResult | None] = [None] * len(items)
        now = time.time()
        indices: list[int] = []
        sends: list[tuple[str, WnsNotification, tuple[str, ...]]] = []
        headers_of = per_notification(
            WnsNotification, lambda note: build_headers(note, now), "a WNS"
        )
        for index, (token, notification) in enumerate(items):
            template = headers_of(notification)
            if isinstance(template, SendResult):
                results[index] = template
                continue
            refused = refusal(token, self.allowed_hosts)
            if refused is not None:
                results[index] = unsendable("ForbiddenChannelHost", refused)
                continue
            assert isinstance(notification, WnsNotification)
            indices.append(index)
            sends.append((token, notification, template))
        sent = await self._bearer.send(sends, _requests, lambda response, _: classify(response))
        for index, result in zip(indices, sent, strict=True):
            results[index] = result
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""


def _requests(
    access: str, sends: list[tuple[str, WnsNotification, tuple[str, ...]]]
) -> list[Request]:
    """The requests of ``(channel URI, notification, header lines)`` sends, with one
    header tuple per notification."""
    authorized: dict[int, tuple[str, ...]] = {}
    requests = []
    for channel, notification, template in sends:
        headers = authorized.get(id(template))
        if headers is None:
            headers = authorized[id(template)] = (f"authorization: Bearer {access}", *template)
        requests.append(
            Request(
                "POST", channel, headers, notification.body, None, _POOL, True, HTTP1_CONNECTIONS
            )
        )
    return requests
