"""Huawei HMS Push Kit client (specs/providers.md sec. 7).

An OAuth 2.0 client-credentials token for the app (App ID and App secret, sec. 7.1) from
:mod:`pushgate.providers.oauth`, then ``POST /v1/{appId}/messages:send`` (sec. 7.2).

One request per device token (a token array of one): HMS answers a multi-token send with
one code for the whole request, and sec. 7.3 disables on ``80300007`` ("all tokens
invalid") only when it cannot be a fleet-wide configuration fault, which a single-token
send settles. The body around the token is serialised once per notification and call.

:func:`classify` maps HMS's business code (HTTP 200 for most outcomes) by the sec. 7.3
table, then the HTTP status. ``80300002`` (the app may not push to these tokens) is a
configuration error and never disables an endpoint: doing so wiped a fleet once.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pushgate.providers.bearer import BearerSender
from pushgate.providers.notifications import HmsNotification, Notification, per_notification
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

MESSAGE_LIMIT = 4096  # bytes of the compact JSON message without its token (sec. 7.2)
SUCCESS = "80000000"
PARTIAL = "80100000"
_POOL = "hms"
_SEPARATORS = (",", ":")

# specs/providers.md sec. 7.3, by business code (looked at first, whatever the status).
CODES: dict[str, Outcome] = {
    SUCCESS: Outcome.SUCCESS,
    PARTIAL: Outcome.SUCCESS,  # DISABLE_ENDPOINT when our token is in illegal_tokens
    "80100001": Outcome.FAIL_PERMANENT,  # parameter error
    "80100003": Outcome.FAIL_PERMANENT,  # incorrect message structure
    "80100004": Outcome.FAIL_PERMANENT,  # TTL earlier than now
    "80100013": Outcome.FAIL_PERMANENT,  # invalid collapse_key
    "80100016": Outcome.FAIL_PERMANENT,  # sensitive content
    "80200001": Outcome.REFRESH_AUTH,  # OAuth authentication error (HTTP 401)
    "80200003": Outcome.REFRESH_AUTH,  # OAuth token expired (HTTP 401)
    "80300002": Outcome.CONFIG_ERROR,  # no permission for these tokens: NEVER disable
    "80300007": Outcome.DISABLE_ENDPOINT,  # all tokens invalid: one token per send
    "80300008": Outcome.FAIL_PERMANENT,  # body too large
    "80300010": Outcome.FAIL_PERMANENT,  # too many tokens: a client bug
    "80300011": Outcome.CONFIG_ERROR,  # no permission for high-priority messages
    "80300013": Outcome.CONFIG_ERROR,  # receipt URL error
    "80600003": Outcome.RETRY_BACKOFF,  # OAuth service failed (retries end as failures)
    "81000001": Outcome.RETRY_BACKOFF,  # internal error
}
# ... and by HTTP status when there is no known code (503 is HMS's flow control).
STATUSES: dict[int, Outcome] = {
    400: Outcome.FAIL_PERMANENT,
    401: Outcome.REFRESH_AUTH,
    403: Outcome.CONFIG_ERROR,
    404: Outcome.CONFIG_ERROR,  # no such app id in the URL
    429: Outcome.RETRY_BACKOFF,
}


def classify(response: Response, token: str) -> SendResult:
    """The outcome of one single-token send to ``token`` (sec. 7.3). A ``Retry-After``
    turns a transient answer into ``RETRY_AFTER`` (sec. 0.2)."""
    status = response.status
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    body = json_object(response.body)
    raw_code = body.get("code")  # a string of 8 digits; a number is read the same way
    numeric = isinstance(raw_code, int) and not isinstance(raw_code, bool)
    code = str(raw_code) if isinstance(raw_code, str) or numeric else ""
    outcome = CODES.get(code)
    if outcome is None and status == 200:
        outcome = Outcome.FAIL_PERMANENT  # an unknown business code: drop the message only
    elif outcome is None:
        outcome = STATUSES.get(status) or by_status_class(status)
    if code == PARTIAL and token in _illegal_tokens(body.get("msg")):
        outcome = Outcome.DISABLE_ENDPOINT
    return classified(response, outcome, "" if outcome is Outcome.SUCCESS else code)


def _illegal_tokens(msg: object) -> list[str]:
    """The ``illegal_tokens`` of an ``80100000`` answer, whose ``msg`` is JSON text."""
    if isinstance(msg, str):
        try:
            msg = json.loads(msg)
        except ValueError:
            return []
    tokens = msg.get("illegal_tokens") if isinstance(msg, dict) else None
    return [t for t in tokens if isinstance(t, str)] if isinstance(tokens, list) else []


def message_size(message: dict[str, Any]) -> int:
    """Bytes HMS counts against its 4096 limit: the message as compact JSON, UTF-8,
    without ``token`` (sec. 7.2)."""
    rest = {name: value for name, value in message.items() if name != "token"}
    return len(json.dumps(rest, separators=_SEPARATORS, ensure_ascii=False).encode())


@dataclass(frozen=True, slots=True)
class Template:
    """A notification's body around the token array, and its ``android.ttl`` state."""

    message: dict[str, Any]  # without target; not to be mutated (shared by the fan-out)
    validate_only: bool
    expires_at: float | None

    def render(self, now: float) -> tuple[bytes, bytes]:
        """``(head, tail)``: the body is ``head + json(token) + tail``. An ``android.ttl``
        becomes the remaining TTL: SNS hands the provider what is left after the time the
        message waited (sns-api.md 5.6)."""
        message = self.message
        android = message.get("android")
        if self.expires_at is not None and isinstance(android, dict) and "ttl" in android:
            remaining = max(1, math.floor(self.expires_at - now))
            message = {**message, "android": {**android, "ttl": f"{remaining}s"}}
        rest = json.dumps(message, separators=_SEPARATORS, ensure_ascii=False)
        head = '{"validate_only":true,"message":' if self.validate_only else '{"message":'
        head += rest[:-1] + ("," if rest != "{}" else "") + '"token":['
        return head.encode(), b"]}}"


_TARGETS = ("token", "topic", "condition")


def build_template(notification: HmsNotification) -> Template | SendResult:
    """What every token's body shares (sec. 7.2), or why the message cannot be sent."""
    message = {k: v for k, v in notification.message.items() if k not in _TARGETS}
    try:
        size = message_size(message)
    except (TypeError, ValueError, UnicodeError) as exc:
        return unsendable("InvalidMessage", str(exc))
    if size > MESSAGE_LIMIT:
        return unsendable("PayloadTooLarge", f"{size} bytes, limit {MESSAGE_LIMIT}")
    return Template(message, notification.validate_only, notification.expires_at)


def _render(notification: HmsNotification, now: float) -> tuple[bytes, bytes] | SendResult:
    template = build_template(notification)
    return template if isinstance(template, SendResult) else template.render(now)


class HmsClient:
    """Sends to HMS Push Kit (``base_url``) for one app.

    The transport is shared and not closed here. ``clock`` (epoch seconds) is injectable
    for tests of the remaining TTL.
    """

    def __init__(
        self,
        base_url: str,
        token_url: str,
        app_id: str,
        client_secret: str,
        transport: Http2Transport,
        *,
        token_cache: ClientCredentialsCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = ClientCredentials(token_url, app_id, client_secret)
        self.transport = transport
        self.tokens = SHARED_CACHE if token_cache is None else token_cache
        self.clock = clock
        # A refused token (80200001/80200003, sec. 7.3) gets one refresh and retry.
        self._bearer = BearerSender(self.tokens, self.credentials, transport, "hms")
        app = urllib.parse.quote(app_id, safe="")
        self.url = f"{base_url.rstrip('/')}/v1/{app}/messages:send"

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send each notification to its push token; results in the same order. ``ids`` is
        accepted for the common client shape; HMS has no request id.

        A notification of another provider gets ``FAIL_PERMANENT`` ``WrongPlatform``.
        """
        results: list[SendResult | None] = [None] * len(items)
        indices: list[int] = []
        sends: list[tuple[str, bytes]] = []
        now = self.clock()
        template_of = per_notification(HmsNotification, lambda note: _render(note, now), "an HMS")
        for index, (token, notification) in enumerate(items):
            template = template_of(notification)
            if isinstance(template, SendResult):
                results[index] = template
                continue
            indices.append(index)
            head, tail = template
            sends.append((token, head + json.dumps(token).encode() + tail))
        sent = await self._bearer.send(
            sends, self._requests, lambda response, send: classify(response, send[0])
        )
        for index, result in zip(indices, sent, strict=True):
            results[index] = result
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""

    def _requests(self, access: str, sends: list[tuple[str, bytes]]) -> list[Request]:
        headers = (
            f"authorization: Bearer {access}",
            "content-type: application/json;charset=utf-8",
            "accept: application/json",
        )
        return [Request("POST", self.url, headers, body, None, _POOL) for _, body in sends]
