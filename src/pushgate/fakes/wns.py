"""A strict fake of WNS and its token endpoint (specs/providers.md sec. 4.1-4.3, 10.4).

One HTTP/1.1 + TLS port (WNS speaks HTTP/1.1) serves ``POST /accesstoken.srf`` and the
channel URIs it mints, ``https://<host:port>/?token=<opaque>``; clients allow-list this
host instead of ``*.notify.windows.com``. A channel request is checked in this fixed
order, the first failure being the answer:

1. method and path: path ``/`` with a ``token`` parameter, else ``404``; POST, or DELETE
   with ``X-WNS-Match``, else ``405``;
2. ``Authorization: Bearer``: unknown or expired -> ``401`` with ``WWW-Authenticate``;
   the token's package does not own the (known) channel -> ``403``;
3. headers: ``X-WNS-Type``, the ``Content-Type`` of that type, ``Content-Length``
   present and right, no ``Expect: 100-continue`` (Microsoft asks for none; knob), the
   optional ``X-WNS-*`` values, ``X-WNS-SuppressPopup``/``X-WNS-Group`` only on toasts,
   ``X-WNS-TTL`` with ``X-WNS-Cache-Policy: no-cache`` (conflicting; knob) -> ``400``;
4. body: more than 5000 bytes -> ``413``; toast/tile/badge not well-formed UTF-8 XML with
   the matching root (``strict_xml``) -> ``400``;
5. the channel's state: unknown -> ``404``, expired (flagged, or older than 30 days) ->
   ``410``, throttled -> ``200`` ``channelthrottled``, dropping -> ``200`` ``dropped``;
6. the package's rate (:attr:`FakeWns.app_quota`) -> ``406``;
7. scripted replies (:meth:`FakeWns.script`), which replace the success of a valid request.

Every channel response carries ``X-WNS-Msg-ID`` (16 characters) and ``X-WNS-Debug-Trace``;
a 200 both ``X-WNS-Status`` and ``X-WNS-NotificationStatus`` (a real 2025 capture had
both), plus ``X-WNS-DeviceConnectionStatus`` when asked with ``X-WNS-RequestForStatus``;
an error ``X-WNS-Error-Description``. Bodies are empty, as WNS's are.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Unpack

from pushgate.fakes.base import FakeServer
from pushgate.fakes.client_credentials import (
    GRANT_TYPE,
    ClientCredentialsIssuer,
    Form,
    OAuthError,
    answer_grant,
    bearer,
    form_value,
    parse_form,
)
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.state import RateLimiter, Script, ScriptOptions, retry_after_header
from pushgate.fakes.tls import FakeCA

__all__ = ["ChannelState", "FakeWns", "ReceivedNotification"]

ChannelState = Literal["active", "expired", "throttled", "dropping"]
TOKEN_PATH = "/accesstoken.srf"
SCOPE = "notify.windows.com"
PROTOCOLS = ("http/1.1",)
# X-WNS-Type → the XML root it needs (None: raw bytes) and its Content-Type.
TYPES: dict[str, tuple[str | None, str]] = {
    "wns/toast": ("toast", "text/xml"),
    "wns/tile": ("tile", "text/xml"),
    "wns/badge": ("badge", "text/xml"),
    "wns/raw": (None, "application/octet-stream"),
}
_BOOLEANS = frozenset({"true", "false"})
_EXPIRED = 'Bearer error="invalid_request",error_description="Token has expired"'
_INVALID = 'Bearer error="invalid_request",error_description="Invalid token"'
_MATCH = re.compile(r"type:wns/(toast|tile|badge|raw)(;[a-z]+(=[^;]*)?)*")
_DESCRIPTIONS = {
    400: "One or more headers were specified incorrectly or conflict with another header.",
    401: "The cloud service did not present a valid authentication ticket.",
    403: "The cloud service is not authorized to send a notification to this URI.",
    404: "The channel URI is not valid or is not recognized by WNS.",
    405: "Invalid method. Only POST or DELETE is allowed.",
    406: "The cloud service exceeded its throttle limit.",
    410: "The channel expired.",
    413: "The notification payload exceeds the 5000 byte size limit.",
    500: "An internal failure caused notification delivery to fail.",
    503: "The server is currently unavailable.",
}


@dataclass(frozen=True)
class ReceivedNotification:
    """One channel request as the fake saw it, and its answer (``status`` None: dropped)."""

    method: str
    path: str
    channel: str | None  # the channel URI's opaque token
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    body: bytes
    xml_root: str | None  # the root element of an XML body
    package_sid: str | None  # whose access token it carried
    status: int | None
    notification_status: str | None  # X-WNS-Status of a 200
    description: str | None  # X-WNS-Error-Description of an error
    msg_id: str
    connection_id: int
    received_at: float


@dataclass(frozen=True)
class _Answer:
    status: int
    description: str | None = None
    notification_status: str | None = None
    www_authenticate: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    description: str | None
    notification_status: str | None


@dataclass
class _Channel:
    package_sid: str
    created_at: float
    state: ChannelState = "active"


@dataclass
class _Attempt:
    channel: str | None = None
    package_sid: str | None = None
    xml_root: str | None = None


def _error(
    status: int,
    description: str | None = None,
    *,
    www_authenticate: str | None = None,
    retry_after: float | None = None,
) -> _Answer:
    """An error answer, with WNS's own description of ``status`` unless given one."""
    description = description or _DESCRIPTIONS.get(status, "Scripted error.")
    return _Answer(status, description, None, www_authenticate, retry_after)


class FakeWns(FakeServer[ReceivedNotification, _Script]):
    """WNS channels and the token endpoint on one port. Public methods are safe from any
    thread. The attributes below are knobs with the documented defaults; :attr:`delivered`
    and :meth:`wait_for` count the notifications answered ``received``."""

    def __init__(self, ca: FakeCA) -> None:
        super().__init__(
            ca.server_context(PROTOCOLS),
            {},
            lambda record: record.notification_status == "received",
            protocols=PROTOCOLS,
        )
        self.access_token_lifetime = 86400
        self.channel_lifetime = 30 * 86400.0
        self.max_payload = 5000
        self.max_tag = 16
        self.strict_xml = True
        self.reject_expect_continue = True
        self.reject_ttl_with_no_cache = True  # [unverified] the spec's example of a conflict
        self.app_quota: RateLimiter | None = None
        self.clock: Callable[[], float] = time.time
        self.issuer = ClientCredentialsIssuer("EgAaAQMAAAAEgAAAC4AA")  # package SIDs
        self._channels: dict[str, _Channel] = {}
        self._msg_ids = itertools.count(1)

    # Serving (also :attr:`allowed_host`, the allow-list entry of the channel URIs)

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    # Applications, tokens and channels

    def create_app(self) -> tuple[str, str]:
        """A new package: its SID (``ms-app://s-1-15-2-...``) and client secret."""
        parts = "-".join(str(secrets.randbelow(2**32)) for _ in range(7))
        package_sid = f"ms-app://s-1-15-2-{parts}"
        secret = secrets.token_urlsafe(24)
        self.register_app(package_sid, secret)
        return package_sid, secret

    def register_app(self, package_sid: str, secret: str) -> None:
        """Accept an existing package's credentials (say, from an earlier run)."""
        self.issuer.register(package_sid, secret)

    def create_channel(self, package_sid: str) -> str:
        """A new active channel URI of ``package_sid``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._channels[token] = _Channel(package_sid, self.clock())
        return f"{self.url}/?token={token}"

    def set_channel_state(self, channel: str, state: ChannelState) -> None:
        """``channel`` is its URI or opaque token."""
        if state not in ("active", "expired", "throttled", "dropping"):
            raise ValueError(f"unknown channel state {state!r}")
        with self._lock:
            self._channels[_channel_token(channel)].state = state

    def forget_channel(self, channel: str) -> None:
        """The channel becomes unknown (``404``)."""
        with self._lock:
            self._channels.pop(_channel_token(channel), None)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused as expired from now on."""
        self.issuer.expire_tokens()

    # Scripting

    def script(
        self,
        status: int | None = 503,
        times: int | None = 1,
        channel: str | None = None,
        description: str | None = None,
        notification_status: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid sends (to ``channel``, a URI or token, or to any)
        this way (``options``: :class:`~pushgate.fakes.state.ScriptOptions`). ``status``
        None or 200 succeeds, with ``notification_status`` (default ``received``); an
        error carries ``description`` (default WNS's wording)."""
        script = _Script(
            status=status,
            token=None if channel is None else _channel_token(channel),
            description=description,
            notification_status=notification_status,
            **options,
        )
        self._scripts.add(script, times)

    def reset(self) -> None:
        """Forget records, scripts, token requests and quota use (not apps or channels)."""
        super().reset()
        if self.app_quota is not None:
            self.app_quota.clear()

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        return 100  # HTTP/1.1: unused

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        if request.path.partition("?")[0] == TOKEN_PATH:
            return self._token(request, now)
        attempt = _Attempt()
        answer = self._check(request, attempt, now)
        msg_id = f"{next(self._msg_ids):016X}"
        script = self._scripts.take(attempt.channel or "") if answer is None else None
        if script is not None:
            dropped = self._record(request, attempt, now, None, msg_id)
            if await self._delay_or_drop(script, request, dropped):
                return None
            if script.status is not None and script.status != 200:
                answer = _error(script.status, script.description, retry_after=script.retry_after)
            elif script.notification_status is not None:
                answer = _Answer(200, notification_status=script.notification_status)
        if answer is None:
            status = None if request.method == "DELETE" else "received"
            answer = _Answer(200, notification_status=status)
        self._records.add(self._record(request, attempt, now, answer, msg_id))
        return Response(answer.status, self._headers(request, answer, msg_id))

    # The token endpoint (sec. 4.1)

    def _token(self, request: Request, now: float) -> Response:
        form = parse_form(request)
        record, response = answer_grant(
            request,
            form,
            self._grant_refusal(request, form),
            self.issuer,
            now=now,
            lifetime=self.access_token_lifetime,
            headers=[("Content-Type", "application/json"), ("Cache-Control", "no-store")],
            granted={"token_type": "bearer"},
        )
        self._token_requests.add(record)
        return response

    def _grant_refusal(self, request: Request, form: Form | None) -> OAuthError | None:
        """WNS's checks, first failure wins, all ``400``: a form POST, the grant type, both
        credentials, the client, then the scope."""
        client_id, secret = form_value(form, "client_id"), form_value(form, "client_secret")
        if request.method != "POST" or not form:
            return OAuthError(400, "invalid_request", "The request must be a form-encoded POST.")
        if form_value(form, "grant_type") != GRANT_TYPE:
            return OAuthError(
                400, "unsupported_grant_type", "The grant type must be client_credentials."
            )
        if not client_id or not secret:
            return OAuthError(400, "invalid_request", "client_id and client_secret are required.")
        if not self.issuer.authenticate(client_id, secret):
            return OAuthError(400, "invalid_client", "The client id or secret is not valid.")
        if form_value(form, "scope") != SCOPE:
            return OAuthError(400, "invalid_scope", f"The scope must be {SCOPE}.")
        return None

    # The checks, in order

    def _check(self, request: Request, attempt: _Attempt, now: float) -> _Answer | None:
        path, _, query = request.path.partition("?")
        tokens = urllib.parse.parse_qs(query).get("token")
        if path != "/" or not tokens:
            return _error(404)
        attempt.channel = tokens[0]
        match = request.header("x-wns-match")
        if request.method not in ("POST", "DELETE") or (request.method == "DELETE" and not match):
            return _error(405)
        with self._lock:
            channel = self._channels.get(attempt.channel)
        error = self._check_auth(request.header("authorization"), attempt, channel, now)
        if error is not None:
            return error
        if request.method == "DELETE":
            return None if _MATCH.fullmatch(match or "") else _error(400, "Invalid X-WNS-Match.")
        return (
            self._check_headers(request)
            or self._check_body(request, attempt)
            or self._check_channel(channel, now)
            or self._check_quota(attempt, now)
        )

    def _check_auth(
        self, authorization: str | None, attempt: _Attempt, channel: _Channel | None, now: float
    ) -> _Answer | None:
        token = bearer(authorization)
        grant = self.issuer.lookup(token) if token is not None else None
        if grant is None:
            return _error(401, www_authenticate=_INVALID)
        if grant.expires_at <= now:
            return _error(401, www_authenticate=_EXPIRED)
        attempt.package_sid = grant.client_id
        if channel is not None and channel.package_sid != grant.client_id:
            return _error(403)
        return None

    def _check_headers(self, request: Request) -> _Answer | None:
        kind = request.header("x-wns-type")
        if kind not in TYPES:
            return _error(400, "The X-WNS-Type header is missing or not valid.")
        if request.media_type != TYPES[kind][1]:
            return _error(400, f"The Content-Type for {kind} must be {TYPES[kind][1]}.")
        length = request.header("content-length")
        if length is None or not length.isdigit() or int(length) != len(request.body):
            return _error(400, "The Content-Length header is missing or wrong.")
        expect = (request.header("expect") or "").lower()
        if self.reject_expect_continue and expect == "100-continue":
            return _error(400, "Expect: 100-continue is not supported.")
        cache_policy = request.header("x-wns-cache-policy")
        if cache_policy not in (None, "cache", "no-cache"):
            return _error(400, "X-WNS-Cache-Policy must be cache or no-cache.")
        if request.header("x-wns-requestforstatus") not in (None, *_BOOLEANS):
            return _error(400, "X-WNS-RequestForStatus must be true or false.")
        ttl = request.header("x-wns-ttl")
        if ttl is not None and not (ttl.isascii() and ttl.isdigit()):
            return _error(400, "X-WNS-TTL must be a non-negative integer.")
        if ttl is not None and cache_policy == "no-cache" and self.reject_ttl_with_no_cache:
            return _error(400, "X-WNS-TTL conflicts with X-WNS-Cache-Policy: no-cache.")
        tag = request.header("x-wns-tag")
        if tag is not None and not 0 < len(tag) <= self.max_tag:
            return _error(400, f"X-WNS-Tag must be 1 to {self.max_tag} characters.")
        suppress = request.header("x-wns-suppresspopup")
        if suppress is not None and suppress not in _BOOLEANS:
            return _error(400, "X-WNS-SuppressPopup must be true or false.")
        group = request.header("x-wns-group")
        if kind != "wns/toast" and (suppress is not None or group is not None):
            return _error(400, "X-WNS-SuppressPopup and X-WNS-Group apply to toasts only.")
        return None

    def _check_body(self, request: Request, attempt: _Attempt) -> _Answer | None:
        if len(request.body) > self.max_payload:
            return _error(413)
        root = TYPES[request.header("x-wns-type") or ""][0]
        if root is None:
            return None
        attempt.xml_root = _xml_root(request.body)
        if self.strict_xml and attempt.xml_root != root:
            return _error(400, f"The payload must be well-formed XML with a <{root}> root.")
        return None

    def _check_channel(self, channel: _Channel | None, now: float) -> _Answer | None:
        if channel is None:
            return _error(404)
        if channel.state == "expired" or now - channel.created_at > self.channel_lifetime:
            return _error(410)
        if channel.state == "throttled":
            return _Answer(200, notification_status="channelthrottled")
        if channel.state == "dropping":
            return _Answer(200, notification_status="dropped")
        return None

    def _check_quota(self, attempt: _Attempt, now: float) -> _Answer | None:
        if self.app_quota is None or attempt.package_sid is None:
            return None
        wait = self.app_quota.retry_after(attempt.package_sid, now)
        return _error(406, retry_after=wait) if wait > 0 else None

    # Answers and records

    def _headers(self, request: Request, answer: _Answer, msg_id: str) -> list[tuple[str, str]]:
        headers = [
            ("X-WNS-Msg-ID", msg_id),
            ("X-WNS-Debug-Trace", f"FAKE-WNS-{request.connection.id}"),
        ]
        if answer.status == 200 and answer.notification_status is not None:
            headers.append(("X-WNS-Status", answer.notification_status))
            headers.append(("X-WNS-NotificationStatus", answer.notification_status))
            if request.header("x-wns-requestforstatus") == "true":
                connected = answer.notification_status == "received"
                status = "connected" if connected else "disconnected"
                headers.append(("X-WNS-DeviceConnectionStatus", status))
        if answer.status != 200 and answer.description is not None:
            headers.append(("X-WNS-Error-Description", answer.description))
        if answer.www_authenticate is not None:
            headers.append(("WWW-Authenticate", answer.www_authenticate))
        if answer.retry_after is not None:
            headers.append(("Retry-After", retry_after_header(answer.retry_after)))
        return headers

    def _record(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        answer: _Answer | None,
        msg_id: str,
    ) -> ReceivedNotification:
        return ReceivedNotification(
            method=request.method,
            path=request.path,
            channel=attempt.channel,
            headers=request.header_map(),
            body=request.body,
            xml_root=attempt.xml_root,
            package_sid=attempt.package_sid,
            status=None if answer is None else answer.status,
            notification_status=None if answer is None else answer.notification_status,
            description=None if answer is None or answer.status == 200 else answer.description,
            msg_id=msg_id,
            connection_id=request.connection.id,
            received_at=now,
        )


def _channel_token(channel: str) -> str:
    """The opaque token of a channel URI, or ``channel`` itself when it is one already."""
    if "?" not in channel:
        return channel
    tokens = urllib.parse.parse_qs(urllib.parse.urlsplit(channel).query).get("token")
    if not tokens:
        raise ValueError("not a channel URI of this fake")
    return tokens[0]


def _xml_root(body: bytes) -> str | None:
    """The root element of a well-formed UTF-8 XML body without a DTD, else None."""
    try:
        body.decode("utf-8")
        if b"<!doctype" in body.lower():
            return None
        return ElementTree.fromstring(body).tag
    except (UnicodeDecodeError, ElementTree.ParseError):
        return None
