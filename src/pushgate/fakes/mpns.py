"""A strict fake of the retired MPNS (specs/providers.md sec. 4.4, 10.4 "MPNS fake").

One HTTP/1.1 + TLS port serves the channel URIs it mints:
``https://<host:port>/throttledthirdparty/01.00/<opaque>`` for unauthenticated services and
``.../unthrottledthirdparty/01.00/<opaque>`` for a channel bound to an authenticated
service's TLS client certificate (:meth:`FakeMpns.create_service`). A request is checked
in this fixed order, the first failure being the answer:

1. method POST, else ``405``; path of a channel URI shape, else ``404`` (no status headers);
2. a channel bound to a certificate needs that client certificate, unexpired -> ``401``;
3. headers: ``Content-Type: text/xml``; ``X-NotificationClass`` one of 1/11/21 (tile),
   2/12/22 (toast), 3/13/23 (raw) with ``X-WindowsPhone-Target`` ``token``, ``toast`` or
   absent to match; ``X-MessageID`` a UUID if present -> ``400``;
4. body: more than :attr:`FakeMpns.max_payload` bytes **[unverified]**, or a toast/tile
   that is not a ``wp:Notification`` (namespace ``WPNotification``) holding a ``wp:Toast``
   or ``wp:Tile`` -> ``400``;
5. the channel's state: unknown or expired -> ``404`` ``Dropped``/``Expired``; inactive
   device -> ``412``; queue full -> ``200 QueueFull``; suppressed -> ``200 Suppressed``;
6. unauthenticated channels: :attr:`FakeMpns.daily_quota` (500) per UTC day -> ``406``;
7. scripted replies (:meth:`FakeMpns.script`), which replace the success of a valid request.

Answers carry ``X-NotificationStatus``, ``X-DeviceConnectionStatus`` and
``X-SubscriptionStatus`` where Microsoft's response-code table gives them (200, 404, 406,
412; 400, 401, 405 and 503 have none) and always ``X-MessageID`` (the request's, else a
new UUID). Bodies are empty.
"""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Unpack

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pushgate.fakes.base import FakeServer
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.state import Script, ScriptOptions, retry_after_header
from pushgate.fakes.tls import FakeCA

__all__ = ["ChannelState", "FakeMpns", "ReceivedNotification"]

ChannelState = Literal["active", "expired", "inactive", "queue_full", "suppressed"]
PROTOCOLS = ("http/1.1",)
# X-NotificationClass → the X-WindowsPhone-Target it needs and the root's child element.
CLASSES: dict[str, tuple[str | None, str | None]] = {
    **{c: ("token", "{WPNotification}Tile") for c in ("1", "11", "21")},
    **{c: ("toast", "{WPNotification}Toast") for c in ("2", "12", "22")},
    **{c: (None, None) for c in ("3", "13", "23")},
}
_PATH = re.compile(r"/(un)?throttledthirdparty/01\.00/([A-Za-z0-9_\-]+)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ROOT = "{WPNotification}Notification"
# Microsoft's table: (X-NotificationStatus, X-DeviceConnectionStatus, X-SubscriptionStatus).
_STATUS_HEADERS: dict[int, tuple[str, str, str | None]] = {
    200: ("Received", "Connected", "Active"),
    404: ("Dropped", "Connected", "Expired"),
    406: ("Dropped", "Connected", "Active"),
    412: ("Dropped", "Disconnected", None),
}


@dataclass(frozen=True)
class ReceivedNotification:
    """One request as the fake saw it, and its answer (``status`` None: dropped)."""

    path: str
    channel: str | None  # the channel URI's opaque token
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    body: bytes
    xml_child: str | None  # the element under wp:Notification of a toast or tile
    certificate_subject: str | None  # the client certificate's subject, if one came
    status: int | None
    notification_status: str | None
    device_status: str | None
    subscription_status: str | None
    message_id: str
    connection_id: int
    received_at: float


@dataclass(frozen=True)
class _Answer:
    status: int
    notification_status: str | None = None
    device_status: str | None = None
    subscription_status: str | None = None
    retry_after: float | None = None


def _answer(status: int, notification_status: str | None = None) -> _Answer:
    """``status`` with the table's status headers (``notification_status`` for a 200)."""
    defaults = _STATUS_HEADERS.get(status)
    if defaults is None:
        return _Answer(status)
    return _Answer(status, notification_status or defaults[0], defaults[1], defaults[2])


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    notification_status: str | None
    device_status: str | None
    subscription_status: str | None


@dataclass
class _Channel:
    certificate: bytes | None  # DER of the authenticated service's certificate
    state: ChannelState = "active"
    sent: dict[str, int] = field(default_factory=dict)  # per UTC day, for the quota


@dataclass
class _Attempt:
    channel: str | None = None
    xml_child: str | None = None
    subject: str | None = None


class FakeMpns(FakeServer[ReceivedNotification, _Script]):
    """MPNS channels on one port. Public methods are safe from any thread. The attributes
    below are knobs; :attr:`delivered` and :meth:`wait_for` count ``Received`` answers."""

    def __init__(self, ca: FakeCA) -> None:
        super().__init__(
            ca.server_context(PROTOCOLS, client_certificates=True),
            {},
            lambda record: record.status == 200 and record.notification_status == "Received",
            protocols=PROTOCOLS,
        )
        self.ca = ca
        self.max_payload = 3072  # [unverified]
        self.daily_quota: int | None = 500  # per unauthenticated subscription and UTC day
        self.clock: Callable[[], float] = time.time
        self._channels: dict[str, _Channel] = {}

    # Services and channels (:attr:`allowed_host` is the allow-list entry of their URIs)

    def create_service(self, name: str = "pushgate-mpns") -> tuple[str, str]:
        """An authenticated service's TLS client certificate and private key (PEM)."""
        return self.ca.issue_client_certificate(name, name)

    def create_channel(self, certificate_pem: str | None = None) -> str:
        """A new active channel URI; with ``certificate_pem``, one of that authenticated
        service, which only requests presenting that client certificate may use."""
        token = secrets.token_urlsafe(32)
        certificate = None
        if certificate_pem is not None:
            loaded = x509.load_pem_x509_certificate(certificate_pem.encode())
            certificate = loaded.public_bytes(serialization.Encoding.DER)
        with self._lock:
            self._channels[token] = _Channel(certificate)
        kind = "throttledthirdparty" if certificate is None else "unthrottledthirdparty"
        return f"{self.url}/{kind}/01.00/{token}"

    def set_channel_state(self, channel: str, state: ChannelState) -> None:
        """``channel`` is its URI or opaque token."""
        if state not in ("active", "expired", "inactive", "queue_full", "suppressed"):
            raise ValueError(f"unknown channel state {state!r}")
        with self._lock:
            self._channels[_channel_token(channel)].state = state

    # Scripting

    def script(
        self,
        status: int | None = 503,
        times: int | None = 1,
        channel: str | None = None,
        notification_status: str | None = None,
        device_status: str | None = None,
        subscription_status: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid sends (to ``channel``, a URI or token, or to any)
        this way (``options``: :class:`~pushgate.fakes.state.ScriptOptions`); the status
        headers default to the table's for ``status``."""
        script = _Script(
            status=status,
            token=None if channel is None else _channel_token(channel),
            notification_status=notification_status,
            device_status=device_status,
            subscription_status=subscription_status,
            **options,
        )
        self._scripts.add(script, times)

    def reset(self) -> None:
        """Forget records, scripts and quota use (not channels)."""
        super().reset()
        with self._lock:
            for channel in self._channels.values():
                channel.sent.clear()

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        return 100  # HTTP/1.1: unused

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        attempt = _Attempt()
        answer = self._check(request, attempt, now)
        message_id = request.header("x-messageid") or str(uuid.uuid4())
        script = self._scripts.take(attempt.channel or "") if answer is None else None
        if script is not None:
            dropped = self._record(request, attempt, now, None, message_id)
            if await self._delay_or_drop(script, request, dropped):
                return None
            scripted = _answer(script.status or 200, script.notification_status)
            answer = _Answer(
                scripted.status,
                scripted.notification_status,
                script.device_status or scripted.device_status,
                script.subscription_status or scripted.subscription_status,
                script.retry_after,
            )
        if answer is None:
            answer = _answer(200)
        self._records.add(self._record(request, attempt, now, answer, message_id))
        headers = [("X-MessageID", message_id)]
        for name, value in (
            ("X-NotificationStatus", answer.notification_status),
            ("X-DeviceConnectionStatus", answer.device_status),
            ("X-SubscriptionStatus", answer.subscription_status),
        ):
            if value is not None:
                headers.append((name, value))
        if answer.retry_after is not None:
            headers.append(("Retry-After", retry_after_header(answer.retry_after)))
        return Response(answer.status, headers)

    # The checks, in order

    def _check(self, request: Request, attempt: _Attempt, now: float) -> _Answer | None:
        if request.method != "POST":
            return _answer(405)
        match = _PATH.fullmatch(request.path.partition("?")[0])
        if match is None:
            return _Answer(404)
        attempt.channel = match[2]
        with self._lock:
            channel = self._channels.get(attempt.channel)
        return (
            self._check_certificate(request, attempt, channel, now)
            or self._check_headers(request)
            or self._check_body(request, attempt)
            or self._check_channel(channel, now)
        )

    def _check_certificate(
        self, request: Request, attempt: _Attempt, channel: _Channel | None, now: float
    ) -> _Answer | None:
        presented = request.connection.peer_certificate
        certificate = None if presented is None else x509.load_der_x509_certificate(presented)
        if certificate is not None:
            attempt.subject = certificate.subject.rfc4514_string()
        if channel is None or channel.certificate is None:
            return None
        if certificate is None or presented != channel.certificate:
            return _answer(401)
        if certificate.not_valid_after_utc < datetime.fromtimestamp(now, UTC):
            return _answer(401)
        return None

    def _check_headers(self, request: Request) -> _Answer | None:
        if request.media_type != "text/xml":
            return _answer(400)
        spec = CLASSES.get(request.header("x-notificationclass") or "")
        if spec is None or request.header("x-windowsphone-target") != spec[0]:
            return _answer(400)
        message_id = request.header("x-messageid")
        if message_id is not None and not _UUID.fullmatch(message_id):
            return _answer(400)
        return None

    def _check_body(self, request: Request, attempt: _Attempt) -> _Answer | None:
        if len(request.body) > self.max_payload:
            return _answer(400)
        child = CLASSES[request.header("x-notificationclass") or ""][1]
        if child is None:
            return None
        attempt.xml_child = _xml_child(request.body)
        return None if attempt.xml_child == child else _answer(400)

    def _check_channel(self, channel: _Channel | None, now: float) -> _Answer | None:
        if channel is None or channel.state == "expired":
            return _answer(404)
        if channel.state == "inactive":
            return _answer(412)
        if channel.state == "queue_full":
            return _answer(200, "QueueFull")
        if channel.state == "suppressed":
            return _answer(200, "Suppressed")
        if channel.certificate is None and self.daily_quota is not None:
            day = datetime.fromtimestamp(now, UTC).date().isoformat()
            with self._lock:
                sent = channel.sent.get(day, 0)
                if sent >= self.daily_quota:
                    return _answer(406)
                channel.sent = {day: sent + 1}
        return None

    def _record(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        answer: _Answer | None,
        message_id: str,
    ) -> ReceivedNotification:
        return ReceivedNotification(
            path=request.path,
            channel=attempt.channel,
            headers=request.header_map(),
            body=request.body,
            xml_child=attempt.xml_child,
            certificate_subject=attempt.subject,
            status=None if answer is None else answer.status,
            notification_status=None if answer is None else answer.notification_status,
            device_status=None if answer is None else answer.device_status,
            subscription_status=None if answer is None else answer.subscription_status,
            message_id=message_id,
            connection_id=request.connection.id,
            received_at=now,
        )


def _channel_token(channel: str) -> str:
    """The opaque token of a channel URI, or ``channel`` itself when it is one already."""
    match = _PATH.fullmatch(urllib.parse.urlsplit(channel).path) if "/" in channel else None
    if "/" in channel and match is None:
        raise ValueError("not a channel URI of this fake")
    return channel if match is None else match[2]


def _xml_child(body: bytes) -> str | None:
    """The first element under a ``wp:Notification`` root of a well-formed UTF-8 XML body
    without a DTD, else None."""
    try:
        body.decode("utf-8")
        if b"<!doctype" in body.lower():
            return None
        root = ElementTree.fromstring(body)
    except (UnicodeDecodeError, ElementTree.ParseError):
        return None
    if root.tag != _ROOT or len(root) == 0:
        return None
    return root[0].tag
