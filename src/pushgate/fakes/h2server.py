"""The HTTP-over-TLS server core that the fake providers share, on ``h2`` and asyncio.

An ASGI server (hypercorn) would hide what the fakes must control and observe frame by
frame: the ``SETTINGS_MAX_CONCURRENT_STREAMS`` a connection starts with and its later
changes, ``RST_STREAM REFUSED_STREAM`` for streams over that limit, PRIORITY frames,
repeated header fields, GOAWAY with debug data, and connections dropped mid-request.

A server offers the ALPN protocols it is given: ``h2`` only by default (APNs and FCM
refuse anything else), ``http/1.1`` for the providers that speak HTTP/1.1 (WNS, MPNS,
Baidu). Once TLS is up, the protocol negotiated picks the connection class; a connection
that negotiated nothing is served HTTP/1.1 when the server offers it, else closed.

One :class:`Http2Connection` per HTTP/2 connection assembles requests by stream id,
hands each complete one to the :class:`Application` in a task of its own, and writes the
response within the peer's flow-control windows. h2 answers PINGs and acknowledges
SETTINGS itself. HTTP/1.1 connections (:mod:`pushgate.fakes.h1server`) hand the
application the same :class:`Request` objects, so a fake need not know which it serves.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from pushgate.fakes.h1server import Http1Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One complete request. Header values are UTF-8 (undecodable bytes kept as surrogates)."""

    connection: Connection
    stream_id: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_map(self) -> dict[str, str]:
        """Every header by name, pseudo-headers included; a repeated one keeps its first value."""
        headers: dict[str, str] = {}
        for name, value in self.headers:
            headers.setdefault(name, value)
        return headers

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError):
            return None

    @property
    def method(self) -> str:
        return self.header(":method") or ""

    @property
    def path(self) -> str:
        return self.header(":path") or ""

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` without parameters, lower-cased (``""`` when absent)."""
        return (self.header("content-type") or "").split(";")[0].strip().lower()


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Connection(Protocol):
    """What an application may see and do with a connection, whatever its protocol."""

    id: int
    peer_certificate: bytes | None  # DER, chained to the fake CA by TLS
    closed: bool

    def set_stream_limit(self, limit: int) -> None:
        """HTTP/2: advertise a new SETTINGS_MAX_CONCURRENT_STREAMS. HTTP/1.1: nothing."""
        ...

    def goaway(self, debug_data: bytes = b"") -> None:
        """HTTP/2: finish the open requests, then GOAWAY and close. HTTP/1.1: nothing."""
        ...

    def drop(self) -> None:
        """Close the TCP connection at once, without a response."""
        ...


class Application(Protocol):
    """What a fake provides to the server core."""

    def connection_made(self, connection: Connection) -> int:
        """A TLS connection is up; return its initial SETTINGS_MAX_CONCURRENT_STREAMS."""
        ...

    def connection_lost(self, connection: Connection) -> None: ...

    async def handle(self, request: Request) -> Response | None:
        """The response, or None when the handler dropped the connection instead."""
        ...

    def priority_received(self, connection: Connection, event: h2.events.PriorityUpdated) -> None:
        """A PRIORITY frame, or a HEADERS frame with the PRIORITY flag, arrived."""
        ...


class _H2Connection(h2.connection.H2Connection):
    """h2's connection state machine, leaving the stream limit to :class:`Http2Connection`.

    h2 treats a HEADERS frame beyond the acknowledged SETTINGS_MAX_CONCURRENT_STREAMS as a
    connection error (GOAWAY). The fakes refuse just that stream with RST_STREAM
    REFUSED_STREAM, which RFC 9113 sec. 5.1.2 equally allows, so that a client learns
    which request went unprocessed. Reporting one open stream fewer than the limit keeps
    h2's own check from firing; :class:`Http2Connection` counts the streams itself.
    """

    @property
    def open_inbound_streams(self) -> int:
        counted = super().open_inbound_streams  # also forgets closed streams
        return min(counted, self.local_settings.max_concurrent_streams - 1)


@dataclass
class _Stream:
    headers: tuple[tuple[str, str], ...]
    body: bytearray = field(default_factory=bytearray)


def _decode(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name.decode("ascii", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in headers
    )


class Http2Connection(asyncio.Protocol):
    """One HTTP/2 connection. Its methods must run on the server's event loop."""

    def __init__(self, server: H2Server, connection_id: int) -> None:
        self.id = connection_id
        self.server = server
        self.peer_certificate: bytes | None = None  # DER, chained to the fake CA by TLS
        self.stream_limit = 0
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._h2: _H2Connection | None = None
        self._streams: dict[int, _Stream] = {}  # accepted, counted against the limit
        self._tasks: dict[int, asyncio.Task[None]] = {}  # dispatched, not yet answered
        self._last_dispatched = 0
        self._draining: bytes | None = None  # GOAWAY debug data once a GOAWAY is due
        self._window_waiters: list[asyncio.Future[None]] = []
        self._idle: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.peer_certificate = _peer_certificate(transport)
        self.server.connections.add(self)
        self.stream_limit = self.server.app.connection_made(self)
        self._h2 = _H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        settings = {**self.server.settings, SettingCodes.MAX_CONCURRENT_STREAMS: self.stream_limit}
        self._h2.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        if SettingCodes.MAX_HEADER_LIST_SIZE in settings:
            self._h2.decoder.max_header_list_size = settings[SettingCodes.MAX_HEADER_LIST_SIZE]
        self._h2.max_inbound_frame_size = self._h2.local_settings.max_frame_size
        self._h2.initiate_connection()
        self._flush()
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        if self._h2 is None or self.closed:
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.info("fake provider connection %s: protocol error: %s", self.id, exc)
            self._flush()  # h2 has queued a GOAWAY
            self._close()
            return
        for event in events:
            if self._transport is None or self._transport.is_closing():
                break
            self._handle_event(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
        for task in self._tasks.values():
            task.cancel()
        self._wake_writers()
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.server.app.connection_lost(self)

    # What the application may do

    def set_stream_limit(self, limit: int) -> None:
        """Advertise a new SETTINGS_MAX_CONCURRENT_STREAMS and enforce it on new streams."""
        if limit == self.stream_limit or self._h2 is None or self.closed:
            return
        self.stream_limit = limit
        self._h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: limit})
        self._flush()

    def goaway(self, debug_data: bytes = b"") -> None:
        """Stop taking requests, answer the ones being handled, then GOAWAY and close.

        The GOAWAY's last stream id is the highest stream handed to the application; the
        client must retry streams above it elsewhere, as they were never processed.
        """
        if self._draining is not None or self.closed:
            return
        self._draining = debug_data
        self._maybe_send_goaway()

    def drop(self) -> None:
        """Close the TCP connection at once: no response, no GOAWAY."""
        if self._transport is not None:
            self._transport.abort()

    # Internals

    def _handle_event(self, event: h2.events.Event) -> None:
        assert self._h2 is not None
        if isinstance(event, h2.events.RequestReceived):
            assert event.stream_id is not None and event.headers is not None
            self._open_stream(event.stream_id, event.headers)
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None and event.data is not None
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.body += event.data
            self._h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            self._dispatch(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            self._streams.pop(event.stream_id, None)
            task = self._tasks.get(event.stream_id)
            if task is not None:
                task.cancel()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._wake_writers()
        elif isinstance(event, h2.events.PriorityUpdated):
            self.server.app.priority_received(self, event)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._close()

    def _open_stream(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        assert self._h2 is not None
        over_limit = len(self._streams) >= self.stream_limit
        if over_limit and self.server.excess_stream_goaway is not None:
            self._h2.close_connection(
                ErrorCodes.PROTOCOL_ERROR,
                additional_data=self.server.excess_stream_goaway,
                last_stream_id=self._last_dispatched,
            )
            self._flush()
            self._close()
            return
        if self._draining is not None or over_limit:
            self._h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        self._streams[stream_id] = _Stream(_decode(headers))
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _dispatch(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        request = Request(self, stream_id, stream.headers, bytes(stream.body))
        self._last_dispatched = max(self._last_dispatched, stream_id)
        task = asyncio.get_running_loop().create_task(
            self._serve(request), name=f"fake-h2-{self.id}-{stream_id}"
        )
        self._tasks[stream_id] = task

    async def _serve(self, request: Request) -> None:
        try:
            response = await self.server.app.handle(request)
            if response is not None and not self.closed:
                await self._respond(request.stream_id, response)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass  # the client reset the stream or went away
        except Exception:
            log.exception("fake provider handler failed on stream %s", request.stream_id)
            if self._h2 is not None and not self.closed:
                self._h2.reset_stream(request.stream_id, ErrorCodes.INTERNAL_ERROR)
                self._flush()
        finally:
            self._tasks.pop(request.stream_id, None)
            self._streams.pop(request.stream_id, None)
            if not self.closed:
                self._maybe_send_goaway()
                self._arm_idle_timer()

    async def _respond(self, stream_id: int, response: Response) -> None:
        assert self._h2 is not None
        headers = [(":status", str(response.status)), *response.headers]
        self._h2.send_headers(stream_id, headers, end_stream=not response.body)
        self._flush()
        body = memoryview(response.body)
        while body and not self.closed:
            window = min(
                self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size
            )
            if window <= 0:
                waiter = asyncio.get_running_loop().create_future()
                self._window_waiters.append(waiter)
                await waiter
                continue
            chunk, body = body[:window], body[window:]
            self._h2.send_data(stream_id, chunk, end_stream=not body)
            self._flush()

    def _wake_writers(self) -> None:
        waiters, self._window_waiters = self._window_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _maybe_send_goaway(self) -> None:
        if self._draining is None or self._tasks or self._h2 is None or self.closed:
            return
        self._h2.close_connection(
            ErrorCodes.NO_ERROR,
            additional_data=self._draining,
            last_stream_id=self._last_dispatched,
        )
        self._flush()
        self._close()

    def _arm_idle_timer(self) -> None:
        timeout = self.server.idle_timeout
        if timeout is None or self._streams or self._idle is not None or self.closed:
            return
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(timeout, self._on_idle)

    def _on_idle(self) -> None:
        self._idle = None
        if not self._streams:
            self.goaway(self.server.idle_goaway_data)

    def _flush(self) -> None:
        if self._h2 is None or self._transport is None or self._transport.is_closing():
            return
        data = self._h2.data_to_send()
        if data:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _peer_certificate(transport: asyncio.BaseTransport) -> bytes | None:
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


class _Negotiation(asyncio.Protocol):
    """The first protocol of every TLS connection: hands it to the connection class of
    the ALPN protocol negotiated, or closes it when the server does not offer that one."""

    def __init__(self, server: H2Server, connection_id: int) -> None:
        self.server = server
        self.connection_id = connection_id

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        connection: asyncio.Protocol
        if alpn == "h2" and "h2" in self.server.protocols:
            connection = Http2Connection(self.server, self.connection_id)
        elif alpn in ("http/1.1", None) and "http/1.1" in self.server.protocols:
            connection = Http1Connection(self.server, self.connection_id)
        else:
            # HTTP/1.1 and clients without ALPN are refused by h2-only servers, as APNs
            # refuses them.
            transport.abort()
            return
        transport.set_protocol(connection)
        connection.connection_made(transport)


class H2Server:
    """Serves one :class:`Application` over TLS on one port.

    ``protocols`` are the ALPN protocols offered, set on ``ssl_context``: give each
    server a context of its own (:meth:`~pushgate.fakes.tls.FakeCA.server_context` makes
    a new one per call). ``settings`` and the idle timeout apply to HTTP/2 only.
    """

    def __init__(
        self,
        app: Application,
        ssl_context: ssl.SSLContext,
        settings: Mapping[SettingCodes, int],
        *,
        protocols: Sequence[str] = ("h2",),
        idle_timeout: float | None = None,
        idle_goaway_data: bytes = b"",
    ) -> None:
        unknown = set(protocols) - {"h2", "http/1.1"}
        if not protocols or unknown:
            raise ValueError(f"protocols must be h2 and/or http/1.1, not {sorted(unknown)}")
        self.app = app
        self.protocols = tuple(protocols)
        ssl_context.set_alpn_protocols(list(self.protocols))
        self.ssl_context = ssl_context
        self.settings = dict(settings)
        self.idle_timeout = idle_timeout
        self.idle_goaway_data = idle_goaway_data
        # GOAWAY debug data for a stream over the limit; None: refuse just that stream
        self.excess_stream_goaway: bytes | None = None
        self.connections: set[Connection] = set()
        self.host = "127.0.0.1"
        self.port = 0
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Negotiation(self, next(self._ids)), host, port, ssl=self.ssl_context
        )
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]

    def handle(
        self,
        connection: Connection,
        stream_id: int,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
    ) -> Awaitable[Response | None]:
        """The application's answer to a request that an HTTP/1.1 connection assembled."""
        return self.app.handle(Request(connection, stream_id, headers, body))

    def goaway_all(self, debug_data: bytes) -> None:
        for connection in list(self.connections):
            connection.goaway(debug_data)

    async def aclose(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is None:
            return
        self._server.close()
        for connection in list(self.connections):
            connection.drop()
        await self._server.wait_closed()
        for _ in range(100):  # connection_lost runs on a later loop iteration
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        self._server = None
