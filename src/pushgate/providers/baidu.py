"""Baidu Cloud Push REST API v3 client (specs/providers.md sec. 5).

One form-encoded ``POST {base_url}/rest/3.0/push/single_device`` per channel id, signed
per request (sec. 5.2): no access token, so nothing is cached between calls. Every
request of a :meth:`BaiduClient.send_many` call carries the same ``timestamp``; a
``30606`` (request time refused) gets one re-signed retry with a fresh timestamp, then
``CONFIG_ERROR`` (the host's clock is off).

**Channel id.** The engine hands the client the endpoint's ``Token``; SNS requires a
Baidu token to contain the endpoint's ``ChannelId`` (sns-api.md 4.6) without saying how.
The channel id is the token itself when it is all digits, otherwise the longest run of
digits in it (the first of equally long runs), so ``"<user id>|<channel id>"`` shapes work
when the channel id is the longer number (a Baidu channel id has about 19 digits). A
token without digits is ``FAIL_PERMANENT`` ``InvalidChannelId``, sent nowhere.

**Signature state reused.** The signed base string is sorted by key, and ``channel_id``
is the only per-device value. For each notification the MD5 state over the (PHP-style
url-encoded) base up to ``channel_id=`` and the encoded rest are computed once per call;
a device then costs one MD5 copy and two updates, and its form body is the shared head
and tail around its channel id and sign. :func:`sign` is the reference it must equal.

**Limits.** ``msg`` is at most :data:`MSG_LIMIT` bytes (UTF-8), checked before sending;
Baidu never confirmed a bound (sec. 5.3, 8.3 **[unverified]**), 4 KB is the safe one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import platform
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pushgate.providers.notifications import (
    BaiduNotification,
    Notification,
    per_notification,
    wrong_platform,
)
from pushgate.providers.outcomes import (
    Outcome,
    SendResult,
    classified,
    json_object,
    no_response,
    unsendable,
)
from pushgate.providers.transport import HTTP1_CONNECTIONS, Http2Transport, Request, Response

if TYPE_CHECKING:
    from hashlib import _Hash

log = logging.getLogger(__name__)

SINGLE_DEVICE_PATH = "/rest/3.0/push/single_device"
MSG_LIMIT = 4096  # bytes of ``msg`` [unverified] (sec. 5.3)
MAX_MSG_EXPIRES = 604800  # 7 days (sec. 5.1)
CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"
# The official SDKs' format (sec. 5.1); a Python port warns that the format matters.
USER_AGENT = (
    f"BCCS_SDK/3.0 ({platform.system()}; {platform.release()}; {platform.machine()}) "
    f"Python/{platform.python_version()} (Baidu Push Server SDK V3.0.0) cli/Unknown"
)
_POOL = "baidu"  # nothing is bound to a connection: every application shares them
_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only: a channel id is sent as is

# specs/providers.md sec. 5.3, by ``error_code``; anything else is FAIL_PERMANENT.
ERROR_CODES: dict[int, Outcome] = {
    30600: Outcome.RETRY_BACKOFF,  # Internal Server Error
    30601: Outcome.FAIL_PERMANENT,  # Method Not Allowed: a client bug
    30602: Outcome.FAIL_PERMANENT,  # Request Params Not Valid; DISABLE if about channel_id
    30603: Outcome.CONFIG_ERROR,  # Authentication Failed: apikey, secret or sign
    30604: Outcome.CONFIG_ERROR,  # Quota Use Up Payment Required
    30605: Outcome.FAIL_PERMANENT,  # Data Required Not Found
    30606: Outcome.REFRESH_AUTH,  # Request Time Expires Timeout: re-sign, retry once
    30607: Outcome.DISABLE_ENDPOINT,  # Channel Token Timeout
    30608: Outcome.DISABLE_ENDPOINT,  # Bind Relation Not Found
    30609: Outcome.FAIL_PERMANENT,  # Bind Number Too Many
    30610: Outcome.FAIL_PERMANENT,  # Duplicate Operation (a push is not idempotent)
    30611: Outcome.FAIL_PERMANENT,  # Group Not Found
    30612: Outcome.CONFIG_ERROR,  # Application Forbidden, Need Whitelist Authorization
    30613: Outcome.CONFIG_ERROR,  # App Need Inited First In Push-console
    30614: Outcome.FAIL_PERMANENT,  # Number Of Tag For User Too Many
    30615: Outcome.FAIL_PERMANENT,  # Number Of Tag For App Too Many
    30699: Outcome.RETRY_BACKOFF,  # Requests too frequent [unverified]
}
_CHANNEL_PARAMS_INVALID = 30602
_CHANNEL_FIELD = "channel_id"


def php_urlencode(text: str) -> str:
    """PHP ``urlencode``: space as ``+``, every UTF-8 byte but ``A-Za-z0-9-_.`` as
    upper-case ``%XX`` (Python leaves ``~`` alone, PHP does not; sec. 5.2)."""
    return urllib.parse.quote_plus(text, safe="").replace("~", "%7E")


def sign(method: str, url: str, params: Mapping[str, str], secret: str) -> str:
    """The ``sign`` of a request (sec. 5.2): lower-case hex MD5 of the url-encoded
    ``METHOD + url + key=value... (sorted by key, sign left out) + secret``.

    ``url`` is the URL posted to without its query; the values are the strings sent.
    """
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params) if key != "sign")
    base = method.upper() + url + pairs + secret
    return hashlib.md5(php_urlencode(base).encode("ascii")).hexdigest()


def channel_id(token: str) -> str | None:
    """The channel id in an endpoint token (module docstring), or None without digits."""
    if token.isascii() and token.isdigit():
        return token
    runs = _DIGITS.findall(token)
    return max(runs, key=len) if runs else None


def classify(response: Response) -> SendResult:
    """The outcome of one ``push/single_device`` response (sec. 5.3): by ``error_code``,
    not by HTTP status; reason = the code as text. ``REFRESH_AUTH`` for ``30606``.

    An answer without a Baidu error body is judged by its status: a 5xx (or 429) is
    ``RETRY_BACKOFF``, any other status ``FAIL_PERMANENT``. A ``Retry-After`` makes a
    retryable outcome ``RETRY_AFTER`` (sec. 0.2).
    """
    status = response.status
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    body = json_object(response.body)
    code = body.get("error_code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    if status == 200 and code is None:
        return classified(response, Outcome.SUCCESS)
    if code is None:
        retryable = status >= 500 or status == 429
        outcome = Outcome.RETRY_BACKOFF if retryable else Outcome.FAIL_PERMANENT
        reason = f"HTTP{status}"
    else:
        outcome = ERROR_CODES.get(code, Outcome.FAIL_PERMANENT)
        if code == _CHANNEL_PARAMS_INVALID and _about_channel(body.get("error_msg")):
            outcome = Outcome.DISABLE_ENDPOINT
        reason = str(code)
    return classified(response, outcome, reason)


def _about_channel(error_msg: object) -> bool:
    """30602 naming ``channel_id`` is the device's channel, not our message (sec. 5.3)."""
    return isinstance(error_msg, str) and _CHANNEL_FIELD in error_msg.lower()


_WRONG_PLATFORM = wrong_platform("a Baidu")
_INVALID_CHANNEL = unsendable("InvalidChannelId", "the endpoint token holds no channel id")


def message_params(notification: BaiduNotification, now: float) -> dict[str, str] | SendResult:
    """The ``push/single_device`` parameters of ``notification`` but ``apikey``,
    ``timestamp`` and ``channel_id`` (sec. 5.1), or why it cannot be sent.

    ``msg_expires`` is what is left of the message's TTL at ``now``: SNS hands the
    provider the TTL minus the time the message waited (sns-api.md 5.6).
    """
    if not notification.msg:
        return unsendable("InvalidMessage", "msg is empty")
    try:
        size = len(notification.msg.encode())
    except UnicodeEncodeError:
        return unsendable("InvalidMessage", "msg is not valid Unicode (lone surrogate)")
    if size > MSG_LIMIT:
        return unsendable("PayloadTooLarge", f"{size} bytes, limit {MSG_LIMIT}")
    params = {"msg_type": str(notification.msg_type), "msg": notification.msg}
    expires = notification.msg_expires
    if notification.expires_at is not None:
        remaining = max(1, math.floor(notification.expires_at - now))
        expires = remaining if expires is None else min(expires, remaining)
    if expires is not None:
        if not 0 <= expires <= MAX_MSG_EXPIRES:
            return unsendable("InvalidExpiration", f"msg_expires {expires}")
        params["msg_expires"] = str(expires)
    if notification.device_type is not None:
        params["device_type"] = str(notification.device_type)
    if notification.deploy_status is not None:
        params["deploy_status"] = str(notification.deploy_status)
    return params


@dataclass(frozen=True, slots=True)
class SignedForm:
    """A notification's form body and signature around the channel id, at one timestamp.

    The keys sorted put ``apikey`` first and ``channel_id`` second (every other key sorts
    after it), so the signed base is ``prefix + channel id + rest``.
    """

    digest: _Hash  # MD5 over the encoded base up to and including "channel_id="
    rest: bytes  # the encoded base after the channel id, secret included
    head: bytes  # the form body up to the channel id's value
    tail: bytes  # the form body from after the channel id up to the sign's value

    @classmethod
    def build(cls, method: str, url: str, params: Mapping[str, str], secret: str) -> SignedForm:
        """``params`` hold every parameter but ``channel_id`` and ``sign``."""
        keys = sorted(params)
        if keys[0] != "apikey" or (len(keys) > 1 and keys[1] < _CHANNEL_FIELD):
            raise ValueError("only apikey may sort before channel_id")
        prefix = f"{method.upper()}{url}apikey={params['apikey']}{_CHANNEL_FIELD}="
        rest = "".join(f"{key}={params[key]}" for key in keys[1:]) + secret
        digest = hashlib.md5(php_urlencode(prefix).encode("ascii"))
        head = urllib.parse.urlencode({"apikey": params["apikey"]}) + f"&{_CHANNEL_FIELD}="
        tail = "&" + urllib.parse.urlencode([(key, params[key]) for key in keys[1:]]) + "&sign="
        return cls(digest, php_urlencode(rest).encode("ascii"), head.encode(), tail.encode())

    def body(self, channel: str) -> bytes:
        """The form body for the channel id ``channel`` (digits only), signed."""
        digest = self.digest.copy()
        digest.update(channel.encode("ascii"))  # digits encode as themselves
        digest.update(self.rest)
        return self.head + channel.encode("ascii") + self.tail + digest.hexdigest().encode()


class BaiduClient:
    """Sends to Baidu Cloud Push (``base_url``) for one application (API key and secret
    key: PlatformPrincipal and PlatformCredential, sns-api.md 4.1).

    The transport is shared and not closed here. ``clock`` (epoch seconds) makes the
    ``timestamp`` and is injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        secret_key: str,
        transport: Http2Transport,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = base_url.rstrip("/") + SINGLE_DEVICE_PATH
        self.api_key = api_key
        self._secret_key = secret_key
        self.transport = transport
        self.clock = clock
        self._headers = (
            f"content-type: {CONTENT_TYPE}",
            f"user-agent: {USER_AGENT}",
            "accept: application/json",
            "expect:",  # no 100-continue round trip for larger bodies over HTTP/1.1
        )

    def __repr__(self) -> str:
        return f"BaiduClient(url={self.url!r}, api_key={self.api_key!r})"

    async def send(self, token: str, notification: Notification) -> SendResult:
        return (await self.send_many(((token, notification),)))[0]

    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send each notification to the channel id in its token; results in the same
        order. ``ids`` is accepted for the common client shape; Baidu takes no request id.

        A notification of another provider gets ``FAIL_PERMANENT`` ``WrongPlatform``.
        """
        results: list[SendResult | None] = [None] * len(items)
        sends: list[tuple[int, str, BaiduNotification]] = []
        for index, (token, notification) in enumerate(items):
            if not isinstance(notification, BaiduNotification):
                results[index] = _WRONG_PLATFORM
                continue
            channel = channel_id(token)
            if channel is None:
                results[index] = _INVALID_CHANNEL
                continue
            sends.append((index, channel, notification))
        for attempt in range(2):
            if not sends:
                break
            sends = await self._send(sends, results, last=attempt == 1)
        return results  # type: ignore[return-value]

    async def close(self) -> None:
        """Nothing of its own to close: the transport belongs to whoever made it."""

    def signed_form(self, notification: BaiduNotification, now: float) -> SignedForm | SendResult:
        """The form of ``notification`` signed at ``now``, or why it cannot be sent."""
        params = message_params(notification, now)
        if isinstance(params, SendResult):
            return params
        params["apikey"] = self.api_key
        params["timestamp"] = str(int(now))
        return SignedForm.build("POST", self.url, params, self._secret_key)

    def _request(self, body: bytes) -> Request:
        return Request("POST", self.url, self._headers, body, None, _POOL, False, HTTP1_CONNECTIONS)

    async def _send(
        self,
        sends: list[tuple[int, str, BaiduNotification]],
        results: list[SendResult | None],
        *,
        last: bool,
    ) -> list[tuple[int, str, BaiduNotification]]:
        """One round: sign at the current time, send, classify. Returns the sends refused
        for their timestamp (30606), to be re-signed, or none on the ``last`` round, whose
        refusals are ``CONFIG_ERROR``."""
        now = self.clock()
        form_of = per_notification(
            BaiduNotification, lambda note: self.signed_form(note, now), "a Baidu"
        )
        posted: list[tuple[int, str, BaiduNotification]] = []
        requests: list[Request] = []
        for send in sends:
            index, channel, notification = send
            form = form_of(notification)
            if isinstance(form, SendResult):
                results[index] = form
                continue
            posted.append(send)
            requests.append(self._request(form.body(channel)))
        expired: list[tuple[int, str, BaiduNotification]] = []
        responses = await self.transport.request_many(requests)
        for send, response in zip(posted, responses, strict=True):
            result = classify(response)
            if result.outcome is Outcome.REFRESH_AUTH:
                expired.append(send)
                if not last:
                    continue
                result.outcome = Outcome.CONFIG_ERROR
            results[send[0]] = result
        if not last:
            return expired
        if expired:
            log.warning(
                "Baidu refused the request time twice; is the clock right?",
                extra={"action": "baidu_time_refused", "api_key": self.api_key},
            )
        return []
