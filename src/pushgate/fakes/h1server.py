"""HTTP/1.1 connections of the fake server core, on ``h11`` and asyncio.

The providers that speak HTTP/1.1 (WNS, MPNS, Baidu; specs/providers.md sec. 10) are
faked by the same applications as the HTTP/2 ones: an :class:`Http1Connection` reads
keep-alive requests one after the other and hands each to the application as the
:class:`~pushgate.fakes.h2server.Request` an HTTP/2 stream would have made, with the
pseudo-headers ``:method``, ``:path``, ``:scheme`` (``https``) and ``:authority`` (from
``Host``) first and the header names lower-cased; its ``stream_id`` counts the
connection's requests from 1. Responses carry ``content-length``. Pipelined requests wait
their turn in h11's buffer. A request h11 cannot parse gets ``400`` and the connection
is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import h11

if TYPE_CHECKING:
    from pushgate.fakes.h2server import H2Server, Response

log = logging.getLogger(__name__)

# Statuses whose responses have no body, hence no content-length (RFC 9110 sec. 8.6).
_NO_BODY = frozenset({204, 304})


class Http1Connection(asyncio.Protocol):
    """One HTTP/1.1 connection. Its methods must run on the server's event loop."""

    def __init__(self, server: H2Server, connection_id: int) -> None:
        self.id = connection_id
        self.server = server
        self.peer_certificate: bytes | None = None  # DER, chained to the fake CA by TLS
        self.closed = False
        self._transport: asyncio.Transport | None = None
        self._h11 = h11.Connection(h11.SERVER)
        self._requests = 0
        self._head: h11.Request | None = None
        self._body = bytearray()
        self._task: asyncio.Task[None] | None = None  # the request being answered

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.peer_certificate = ssl_object.getpeercert(binary_form=True)
        self.server.connections.add(self)
        self.server.app.connection_made(self)  # its stream limit means nothing here

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._h11.receive_data(data)
        self._read()

    def eof_received(self) -> bool | None:
        self._h11.receive_data(b"")
        self._read()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.server.app.connection_lost(self)

    # What the application may do

    def set_stream_limit(self, limit: int) -> None:
        """Nothing: HTTP/1.1 has no concurrent streams to limit."""

    def goaway(self, debug_data: bytes = b"") -> None:
        """Nothing: HTTP/1.1 has no GOAWAY."""

    def drop(self) -> None:
        """Close the TCP connection at once, without a response."""
        if self._transport is not None:
            self._transport.abort()

    # Internals

    def _read(self) -> None:
        """Take h11's events up to the end of the next request, then dispatch it."""
        while self._task is None and not self.closed:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                log.info("fake provider connection %s: bad HTTP/1.1: %s", self.id, exc)
                self._refuse(exc.error_status_hint)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._head, self._body = event, bytearray()
                if self._h11.they_are_waiting_for_100_continue:
                    self._send(h11.InformationalResponse(status_code=100, headers=[]))
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                self._close()
                return

    def _dispatch(self) -> None:
        head, self._head = self._head, None
        assert head is not None
        self._requests += 1
        fields = [
            (name.decode("ascii", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in head.headers
        ]
        host = next((value for name, value in fields if name == "host"), "")
        headers = (
            (":method", head.method.decode("ascii")),
            (":scheme", "https"),
            (":authority", host),
            (":path", head.target.decode("ascii", "surrogateescape")),
            *fields,
        )
        self._task = asyncio.get_running_loop().create_task(
            self._serve(self._requests, headers, bytes(self._body)),
            name=f"fake-h1-{self.id}-{self._requests}",
        )

    async def _serve(
        self, request_id: int, headers: tuple[tuple[str, str], ...], body: bytes
    ) -> None:
        try:
            response = await self.server.handle(self, request_id, headers, body)
        except Exception:
            log.exception("fake provider handler failed on request %s", request_id)
            self._task = None
            self._refuse(500)
            return
        self._task = None
        if response is None or self.closed:
            return  # the handler dropped the connection
        self._respond(response)
        if self._h11.our_state is h11.MUST_CLOSE:
            self._close()
            return
        self._h11.start_next_cycle()
        self._read()  # a pipelined request may be waiting in the buffer

    def _respond(self, response: Response) -> None:
        headers = [(name, value) for name, value in response.headers]
        has_length = any(name.lower() == "content-length" for name, _ in headers)
        if response.status not in _NO_BODY and not has_length:
            headers.append(("content-length", str(len(response.body))))
        self._send(h11.Response(status_code=response.status, headers=headers))
        if response.body:
            self._send(h11.Data(data=response.body))
        self._send(h11.EndOfMessage())

    def _refuse(self, status: int) -> None:
        """Answer ``status`` with no body if a response may still start, then close."""
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self._send(
                    h11.Response(
                        status_code=status,
                        headers=[("content-length", "0"), ("connection", "close")],
                    )
                )
                self._send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                pass
        self._close()

    def _send(self, event: h11.Event) -> None:
        data = self._h11.send(event)
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
