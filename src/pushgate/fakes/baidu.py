"""A strict fake of Baidu Cloud Push REST API v3 (specs/providers.md sec. 5, 10.5).

One HTTP/1.1 + TLS port serves ``POST /rest/3.0/push/single_device`` (and
``test/echo``, which checks the signature and answers an empty success). A request is
checked in this fixed order, the first failure being the answer:

1. method and path: ``30601`` for a method other than POST or an unknown
   ``/rest/3.0/{class}/{method}``, or a known one the fake does not implement;
2. headers: ``Content-Type`` form-urlencoded, ``User-Agent`` starting ``BCCS_SDK/3.0``
   (:attr:`FakeBaidu.require_sdk_user_agent`) -> ``30602``;
3. the form: UTF-8, no repeated parameter, ``apikey``, ``timestamp`` and ``sign``
   present -> ``30602`` naming the parameter;
4. authentication: an unknown ``apikey`` or a ``sign`` that differs from the one
   recomputed (sec. 5.2) over ``https://<Host><path>`` as requested and every parameter
   received -> ``30603``; then the time: ``timestamp`` older than
   :attr:`~FakeBaidu.signature_lifetime` or further ahead than
   :attr:`~FakeBaidu.max_clock_skew`, or ``expires`` past -> ``30606``;
5. the parameters of ``push/single_device`` -> ``30602``: ``device_type`` 3|4,
   ``channel_id`` digits ("channel_id is invalid"), ``msg_type`` 0|1, ``msg`` non-empty
   and at most :attr:`~FakeBaidu.max_msg_size` bytes, a notification's ``msg`` a JSON
   object with ``description`` (Android) or ``aps`` (iOS), ``msg_expires`` 0 ... 604800,
   ``deploy_status`` 1|2 and, for iOS, present (:attr:`~FakeBaidu.require_deploy_status`);
6. the channel (:meth:`FakeBaidu.register_channel`): unknown -> ``30608``, expired ->
   ``30607``;
7. the application: quota used up (:meth:`FakeBaidu.set_quota_exhausted`) -> ``30604``;
   :attr:`~FakeBaidu.frequency_limit` per application -> ``30699``;
8. scripted replies (:meth:`FakeBaidu.script`), which replace the success of a valid
   request.

Errors are ``{"request_id": N, "error_code": C, "error_msg": "..."}`` with a non-200
status (:data:`HTTP_STATUSES`, which Baidu never documented **[unverified]**); success is
``{"request_id": N, "response_params": {"msg_id": "...", "send_time": T}}``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Unpack

from pushgate.fakes.base import FakeServer
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.state import RateLimiter, Script, ScriptOptions, retry_after_header
from pushgate.fakes.tls import FakeCA

__all__ = ["ChannelState", "FakeBaidu", "ReceivedPush"]

ChannelState = Literal["active", "expired", "unbound"]
PREFIX = "/rest/3.0/"
SINGLE_DEVICE = "push/single_device"
ECHO = "test/echo"
# providers.md 5.1: every {class}/{method} of the API; the fake implements two.
KNOWN_METHODS = frozenset(
    {
        "push/single_device",
        "push/all",
        "push/tags",
        "push/batch_device",
        "report/query_msg_status",
        "report/query_timer_records",
        "app/query_tags",
        "app/create_tag",
        "tag/add_devices",
        "tag/del_devices",
        "tag/device_num",
        "app/del_tag",
        "timer/query_list",
        "timer/cancel",
        "topic/query_list",
        "report/statistic_device",
        "report/statistic_topic",
        "test/echo",
    }
)
MESSAGES = {
    30600: "Internal Server Error",
    30601: "Method Not Allowed",
    30602: "Request Params Not Valid",
    30603: "Authentication Failed",
    30604: "Quota Use Up Payment Required",
    30605: "Data Required Not Found",
    30606: "Request Time Expires Timeout",
    30607: "Channel Token Timeout",
    30608: "Bind Relation Not Found",
    30609: "Bind Number Too Many",
    30610: "Duplicate Operation",
    30611: "Group Not Found",
    30612: "Application Forbidden, Need Whitelist Authorization",
    30613: "App Need Inited First In Push-console",
    30614: "Number Of Tag For User Too Many",
    30615: "Number Of Tag For App Too Many",
    30699: "Requests Are Too Frequent To Be Temporarily Rejected",
}
# The HTTP status of each error [unverified]; clients must classify by error_code.
HTTP_STATUSES = {
    30600: 500,
    30601: 405,
    30602: 400,
    30603: 401,
    30604: 402,
    30605: 404,
    30606: 401,
    30607: 400,
    30608: 400,
    30699: 503,
}
MAX_MSG_EXPIRES = 604800
_CHANNEL_ERRORS: dict[ChannelState, int | None] = {
    "active": None,
    "expired": 30607,
    "unbound": 30608,
}
_FORM = "application/x-www-form-urlencoded"
_SDK_AGENT = "BCCS_SDK/3.0"


@dataclass(frozen=True)
class ReceivedPush:
    """One request as the fake saw it, and its answer (``status`` None: dropped)."""

    path: str
    url: str  # what the signature covers: https://<Host><path without query>
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    params: dict[str, str]  # the form as received (a repeated key keeps its first value)
    raw: bytes
    apikey: str | None  # a known application's API key, once authenticated
    channel_id: str | None
    status: int | None
    error_code: int | None
    error_msg: str
    request_id: int
    msg_id: str | None
    connection_id: int
    stream_id: int
    received_at: float


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    error_code: int | None


class _Refusal(Exception):
    """A check failed: answer ``error_code`` with ``detail`` after the standard text."""

    def __init__(self, error_code: int, detail: str = "") -> None:
        super().__init__(error_code, detail)
        self.error_code = error_code
        self.detail = detail

    @property
    def message(self) -> str:
        text = MESSAGES.get(self.error_code, "Unknown Error")
        return f"{text}, {self.detail}" if self.detail else text


@dataclass
class _Attempt:
    params: dict[str, str]
    url: str = ""
    apikey: str | None = None


class FakeBaidu(FakeServer[ReceivedPush, _Script]):
    """Baidu Cloud Push v3 on one HTTP/1.1 port. Public methods are safe from any thread.

    The attributes below are knobs with the documented defaults. :attr:`delivered` and
    :meth:`wait_for` count the accepted ``push/single_device`` requests.
    """

    def __init__(self, ca: FakeCA) -> None:
        super().__init__(
            ca.server_context(("http/1.1",)),
            {},
            lambda push: push.status == 200 and push.path == PREFIX + SINGLE_DEVICE,
            protocols=("http/1.1",),
        )
        self.require_sdk_user_agent = True
        self.require_deploy_status = True  # for iOS (device_type 4)
        self.signature_lifetime = 600.0  # seconds after ``timestamp`` (sec. 5.2)
        self.max_clock_skew = 600.0  # how far ahead a ``timestamp`` may be [unverified]
        self.max_msg_size = 4096  # bytes [unverified]
        self.accept_unknown_channels = False  # True: any channel id is active
        self.frequency_limit: RateLimiter | None = None  # per apikey -> 30699
        self.clock: Callable[[], float] = time.time
        self._apps: dict[str, str] = {}  # apikey -> secret key
        self._channels: dict[str, ChannelState] = {}
        self._exhausted: set[str] = set()
        self._request_ids = itertools.count(int(time.time()) * 1000)

    # Applications and channels

    def create_app(self) -> tuple[str, str]:
        """A new application: ``(API key, secret key)``, as the Baidu console shows them."""
        apikey = secrets.token_urlsafe(18)[:24]
        secret = secrets.token_hex(16).upper()
        self.register_app(apikey, secret)
        return apikey, secret

    def register_app(self, apikey: str, secret: str) -> None:
        """Accept requests signed with ``secret`` for ``apikey`` (say, from an earlier run)."""
        with self._lock:
            self._apps[apikey] = secret

    def register_channel(self, channel_id: str, state: ChannelState = "active") -> None:
        """Make ``channel_id`` known in ``state``: ``expired`` answers ``30607``,
        ``unbound`` (as an unknown one) ``30608``."""
        if state not in _CHANNEL_ERRORS:
            raise ValueError(f"unknown channel state {state!r}")
        with self._lock:
            self._channels[channel_id] = state

    def set_quota_exhausted(self, apikey: str, exhausted: bool = True) -> None:
        """With its quota used up, an application's pushes get ``30604``."""
        with self._lock:
            (self._exhausted.add if exhausted else self._exhausted.discard)(apikey)

    # Scripting

    def script(
        self,
        error_code: int | None = 30600,
        times: int | None = 1,
        *,
        status: int | None = None,
        channel_id: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid pushes (to ``channel_id``, or to any) this way
        (``options``: :class:`~pushgate.fakes.state.ScriptOptions`).

        ``error_code`` None (with a ``delay``) is a slow success; ``status`` None takes
        the error's usual HTTP status. ``retry_after`` adds a ``Retry-After`` header,
        which Baidu is not known to send.
        """
        script = _Script(status=status, token=channel_id, error_code=error_code, **options)
        self._scripts.add(script, times)

    def reset(self) -> None:
        """Forget records, scripts, channels, quotas and rate-limit use (not applications)."""
        super().reset()
        if self.frequency_limit is not None:
            self.frequency_limit.clear()
        with self._lock:
            self._channels.clear()
            self._exhausted.clear()

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        return 1  # HTTP/1.1: one request at a time

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        request_id = next(self._request_ids)
        attempt = _Attempt({})
        path = request.path.partition("?")[0]
        try:
            self._check(request, path, attempt, now)
        except _Refusal as refusal:
            return self._refuse(request, attempt, now, request_id, refusal, None)
        channel = attempt.params.get("channel_id")
        script = self._scripts.take(channel or "")
        if script is not None:
            dropped = self._record(request, attempt, now, request_id, None, None, "dropped")
            if await self._delay_or_drop(script, request, dropped):
                return None
            if script.error_code is not None:
                scripted = _Refusal(script.error_code)
                return self._refuse(request, attempt, now, request_id, scripted, script)
        if path == PREFIX + ECHO:
            self._records.add(self._record(request, attempt, now, request_id, 200, None, ""))
            return _answer(200, {"request_id": request_id, "response_params": {}})
        msg_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        record = self._record(request, attempt, now, request_id, 200, None, "", msg_id)
        self._records.add(record)
        params = {"msg_id": msg_id, "send_time": int(now)}
        return _answer(200, {"request_id": request_id, "response_params": params})

    def _refuse(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        request_id: int,
        refusal: _Refusal,
        script: _Script | None,
    ) -> Response:
        status = script.status if script is not None and script.status else None
        status = status or HTTP_STATUSES.get(refusal.error_code, 400)
        record = self._record(
            request, attempt, now, request_id, status, refusal.error_code, refusal.message
        )
        self._records.add(record)
        body = {
            "request_id": request_id,
            "error_code": refusal.error_code,
            "error_msg": refusal.message,
        }
        retry_after = script.retry_after if script is not None else None
        return _answer(status, body, retry_after)

    # The checks, in order

    def _check(self, request: Request, path: str, attempt: _Attempt, now: float) -> None:
        method = path.removeprefix(PREFIX) if path.startswith(PREFIX) else ""
        if request.method != "POST":
            raise _Refusal(30601, f"{request.method} is not allowed, use POST")
        if method not in KNOWN_METHODS:
            raise _Refusal(30601, f"unknown method {path}")
        if method not in (SINGLE_DEVICE, ECHO):
            raise _Refusal(30601, f"{method} is not implemented by the fake")
        if request.media_type != _FORM:
            raise _Refusal(30602, f"Content-Type must be {_FORM}")
        agent = request.header("user-agent") or ""
        if self.require_sdk_user_agent and not agent.startswith(_SDK_AGENT):
            raise _Refusal(30602, f"User-Agent must start with {_SDK_AGENT}")
        attempt.params = _form(request.body)
        attempt.url = f"https://{request.header(':authority') or ''}{path}"
        for name in ("apikey", "timestamp", "sign"):
            if not attempt.params.get(name):
                raise _Refusal(30602, f"{name} is required")
        self._check_auth(attempt, now)
        if method == SINGLE_DEVICE:
            _check_single_device(
                attempt.params,
                max_msg_size=self.max_msg_size,
                require_deploy_status=self.require_deploy_status,
            )
            self._check_channel(attempt.params["channel_id"])
            self._check_app(attempt.params["apikey"], now)

    def _check_auth(self, attempt: _Attempt, now: float) -> None:
        params = attempt.params
        with self._lock:
            secret = self._apps.get(params["apikey"])
        if secret is None:
            raise _Refusal(30603, "apikey is unknown")
        if not secrets.compare_digest(
            expected_sign("POST", attempt.url, params, secret).encode(), params["sign"].encode()
        ):
            raise _Refusal(30603, "sign is not valid")
        attempt.apikey = params["apikey"]
        timestamp = _integer(params, "timestamp")
        if timestamp < now - self.signature_lifetime:
            raise _Refusal(30606, "timestamp is too old")
        if timestamp > now + self.max_clock_skew:
            raise _Refusal(30606, "timestamp is in the future")
        if "expires" in params and _integer(params, "expires") < now:
            raise _Refusal(30606, "expires has passed")

    def _check_channel(self, channel_id: str) -> None:
        with self._lock:
            state = self._channels.get(channel_id)
        if state is None:
            state = "active" if self.accept_unknown_channels else "unbound"
        error_code = _CHANNEL_ERRORS[state]
        if error_code is not None:
            raise _Refusal(error_code)

    def _check_app(self, apikey: str, now: float) -> None:
        with self._lock:
            exhausted = apikey in self._exhausted
        if exhausted:
            raise _Refusal(30604)
        limiter = self.frequency_limit
        if limiter is not None and limiter.retry_after(apikey, now) > 0:
            raise _Refusal(30699)

    def _record(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        request_id: int,
        status: int | None,
        error_code: int | None,
        error_msg: str,
        msg_id: str | None = None,
    ) -> ReceivedPush:
        return ReceivedPush(
            path=request.path,
            url=attempt.url,
            headers=request.header_map(),
            params=attempt.params,
            raw=request.body,
            apikey=attempt.apikey,
            channel_id=attempt.params.get("channel_id"),
            status=status,
            error_code=error_code,
            error_msg=error_msg,
            request_id=request_id,
            msg_id=msg_id,
            connection_id=request.connection.id,
            stream_id=request.stream_id,
            received_at=now,
        )


def _answer(status: int, body: dict[str, Any], retry_after: float | None = None) -> Response:
    headers = [("content-type", "application/json;charset=utf-8")]
    if retry_after is not None:
        headers.append(("retry-after", retry_after_header(retry_after)))
    return Response(status, headers, json.dumps(body, separators=(",", ":")).encode())


def expected_sign(method: str, url: str, params: dict[str, str], secret: str) -> str:
    """The ``sign`` Baidu computes (sec. 5.2), written apart from the client's on purpose:
    MD5 of PHP ``urlencode(METHOD + url + sorted key=value pairs + secret)``."""
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params) if key != "sign")
    base = (method + url + pairs + secret).encode()
    unreserved = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    encoded = "".join(
        chr(byte) if byte in unreserved else "+" if byte == 0x20 else f"%{byte:02X}"
        for byte in base
    )
    return hashlib.md5(encoded.encode()).hexdigest()


def _form(body: bytes) -> dict[str, str]:
    """The form parameters; ``30602`` for a body that is not UTF-8 or repeats a key."""
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise _Refusal(30602, "the body is not a UTF-8 form") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise _Refusal(30602, f"{name} is repeated")
        params[name] = value
    return params


def _integer(params: dict[str, str], name: str) -> int:
    value = params[name]
    if not value.isascii() or not value.isdigit():
        raise _Refusal(30602, f"{name} is invalid")
    return int(value)


def _check_single_device(
    params: dict[str, str], *, max_msg_size: int, require_deploy_status: bool
) -> None:
    """The parameters of ``push/single_device`` (sec. 5.1, 10.5)."""
    device_type = params.get("device_type")
    if device_type is not None and device_type not in ("3", "4"):
        raise _Refusal(30602, "device_type is invalid")
    channel_id = params.get("channel_id")
    if not channel_id or not channel_id.isascii() or not channel_id.isdigit():
        raise _Refusal(30602, "channel_id is invalid")
    msg_type = params.get("msg_type", "0")
    if msg_type not in ("0", "1"):
        raise _Refusal(30602, "msg_type is invalid")
    msg = params.get("msg", "")
    if not msg:
        raise _Refusal(30602, "msg is required")
    if len(msg.encode()) > max_msg_size:
        raise _Refusal(30602, "msg is too long")
    ios = device_type == "4"
    if msg_type == "1":
        try:
            notification = json.loads(msg)
        except ValueError:
            notification = None
        if not isinstance(notification, dict):
            raise _Refusal(30602, "msg is not a JSON object")
        if ios and not isinstance(notification.get("aps"), dict):
            raise _Refusal(30602, "msg of an iOS notification needs aps")
        if not ios and not isinstance(notification.get("description"), str):
            raise _Refusal(30602, "msg of an Android notification needs description")
    if "msg_expires" in params:
        expires = _integer(params, "msg_expires")
        if expires > MAX_MSG_EXPIRES:
            raise _Refusal(30602, "msg_expires is invalid")
    deploy_status = params.get("deploy_status")
    if deploy_status is not None and deploy_status not in ("1", "2"):
        raise _Refusal(30602, "deploy_status is invalid")
    if ios and require_deploy_status and deploy_status is None:
        raise _Refusal(30602, "deploy_status is required for iOS")
