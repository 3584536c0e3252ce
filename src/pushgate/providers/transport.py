"""One multiplexed HTTP/2 client for the provider clients and the HTTP/S subscriber
sender, on libcurl (pycurl).

HTTP/2 framing, HPACK and TLS run in libcurl and nghttp2, in C and with the GIL released;
a pure-Python HTTP/2 stack spends most of each request in Python (DESIGN.md sec. 3).

Design (measured on the 2-core machine against the Node APNs stand-in of ``bench/`` and
the strict fakes; the figures are in the providers' report):

* One dedicated thread drives every ``CurlMulti`` through the multi-socket API
  (``socket_action``) over one ``selectors`` selector, so libcurl's work overlaps the
  asyncio loop. Requests reach the thread in batches through a ``deque`` plus a wake-up
  pipe: the thread sleeps in ``epoll`` while idle and wakes as soon as work arrives (no
  polling interval). Completions go back in batches: a :meth:`Http2Transport.request_many`
  call resolves once, when its last response is in, and one ``loop.call_soon_threadsafe``
  per round of the thread carries every batch finished in that round.
* Connections are partitioned: each (``Request.pool``, ``Request.client_cert``) pair gets
  a ``CurlMulti`` (hence a connection cache) of its own, so requests signed by different
  APNs teams or keys, or presented with different client certificates, never share a
  connection (specs/providers.md sec. 1.2). Within a partition libcurl multiplexes:
  ``PIPEWAIT`` makes a request wait for a stream on a connection being set up rather than
  open another, ``M_MAX_HOST_CONNECTIONS`` bounds connections per host and
  ``M_MAX_CONCURRENT_STREAMS`` our streams per connection. Once a server's SETTINGS are
  in, libcurl keeps within its ``SETTINGS_MAX_CONCURRENT_STREAMS`` (tested against the
  fake's strict mode, where one stream too many is a GOAWAY). Before they are in it
  assumes 100, which a server that starts at 1 (APNs token connections) refuses; so a
  partition with a connection that has not answered yet runs at one stream per
  connection (:meth:`Http2Transport._apply_stream_limit`).
* A partition whose requests ask for ``Request.connections`` gets that many connections
  per host instead of ``max_connections_per_host``: providers that speak HTTP/1.1 (WNS,
  MPNS, Baidu) carry one request at a time per connection, so the few connections that
  suit HTTP/2 would cap them at a few requests in flight (:data:`HTTP1_CONNECTIONS`).
* At most (connections per host) ``* max_streams`` requests of a partition are handed
  to libcurl at once; the rest wait here, in order. libcurl runs every transfer of a
  connection on each of its socket events, so when answers trickle in while many streams
  are in flight the thread waits :data:`COALESCE_SECONDS` before handling the event.
* Easy handles are reused from a free list per partition. What never changes (trust,
  client certificate, HTTP version, timeouts, the body-capture callback) is set once per
  handle; a request sets only its URL, header list and body (``POSTFIELDS``, which pycurl
  passes by pointer with its length). Per-request state lives in a slotted side object,
  because an attribute read on a pycurl ``Curl`` costs about 1 us. New requests go to
  libcurl in one ``socket_action`` per round, with the partition's sockets corked
  (``TCP_CORK``) so that the requests of a round can share segments.
* No Python runs per response header unless asked for: every libcurl callback re-takes
  the GIL from inside ``socket_action``, which waits while the asyncio thread holds it.
  ``Request.capture_headers`` turns header capture on; without it ``Retry-After`` still
  comes through, from libcurl's own parse (``CURLINFO_RETRY_AFTER``). Response bodies
  are captured by ``list.append`` bound once per handle; an empty body costs nothing.
* TLS trust is explicit and independent of the environment: the system bundle found on
  disk (never ``SSL_CERT_FILE``/``CURL_CA_BUNDLE``) plus ``ca_file``, through ``CAINFO``
  (a file, so libcurl's CA cache parses it once per partition, not per connection);
  ``CAPATH`` and proxies from ``*_proxy`` variables are switched off.

* Options a provider never uses (``Request.connect_to``, ``timeout_ms``, ``max_body``,
  ``userpwd``/``digest``: the HTTP/S subscriber sender's) are set on a handle only when a
  request asks for them, and put back to the handle's defaults by the next request that
  does not: a request without them costs four attribute reads.

A request that gets no complete HTTP response (connection refused, TLS failure, reset,
timeout) yields a :class:`Response` with ``status`` 0 and ``error`` set: transport trouble
is a value, not an exception. libcurl itself replays a request whose reused connection
died before any answer, and streams refused with ``REFUSED_STREAM``; nothing else is
retried here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pycurl  # type: ignore[import-untyped]  # no py.typed; its stub is all Any

from pushgate.providers.retry_after import MAX_RETRY_AFTER, parse_retry_after

log = logging.getLogger(__name__)

# Where distributions keep their PEM bundle of trusted roots (the list Go's crypto/x509
# reads), after the default compiled into Python's OpenSSL. Environment variables are
# deliberately not consulted (DESIGN.md sec. 3).
SYSTEM_CA_CANDIDATES: tuple[str, ...] = (
    ssl.get_default_verify_paths().openssl_cafile,
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
)

CLOSED_ERROR = "transport closed"
_CONNECT_TIMEOUT_MS = 10_000
# Idle connections are kept this long: APNs asks for long-lived connections (sec. 1.8).
_MAX_IDLE_CONNECTION_S = 1800
_KEEPALIVE_S = 30
_SWEEP_INTERVAL_S = 60
_KEEP_IDLE_HANDLES = 64
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)
# libcurl's work per socket event grows with the transfers on the connection (it runs each
# one), so a slow server answering one stream per event costs O(streams) per answer.
# Waiting this long before handling an event, while a partition has many streams in
# flight and its last round finished only a few, cut the client's CPU per request by
# about a third against the Python fakes; fast servers finish many per round and never
# see the wait.
COALESCE_SECONDS = 0.001
_COALESCE_ACTIVE = 32
_TRICKLE = 4
HTTP1_CONNECTIONS = 32
"""Connections per host for a provider that speaks HTTP/1.1 (``Request.connections``)."""
TIMEOUT_ERROR = f"curl error {pycurl.E_OPERATION_TIMEDOUT}:"
"""How :attr:`Response.error` starts when the request ran out of time."""
_FILESIZE_EXCEEDED: int = pycurl.E_FILESIZE_EXCEEDED


@dataclass(frozen=True, slots=True)
class ClientCert:
    """A TLS client certificate and its private key, both PEM (APNs certificate auth)."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


class Request(NamedTuple):
    """One HTTP request; ``headers`` are ``"name: value"`` lines.

    ``pool`` partitions connections: requests with a different ``pool`` or
    ``client_cert`` never share a connection. ``capture_headers`` keeps the response's
    header fields (they cost a GIL round trip per line). ``connections`` bounds the
    partition's connections per host in place of the transport's
    ``max_connections_per_host``; the first request of a partition sets it.

    The rest are off unless given, and apply to this request only:

    * ``connect_to``: a ``CURLOPT_CONNECT_TO`` entry (``host:port:address:port``):
      connect there, keeping the URL's name for ``Host``, SNI and the certificate check
      (https://curl.se/libcurl/c/CURLOPT_CONNECT_TO.html).
    * ``timeout_ms``: bounds this request instead of the transport's ``timeout``.
    * ``max_body``: read at most this many bytes of the response body
      (``CURLOPT_MAXFILESIZE_LARGE``). libcurl stops the transfer when the body is longer
      (at the headers when ``Content-Length`` says so, else once the limit is passed,
      https://curl.se/libcurl/c/CURLOPT_MAXFILESIZE_LARGE.html); the response keeps its
      status, with :attr:`Response.truncated` set and what arrived of the body, at most
      ``max_body`` bytes (none when the length was announced).
    * ``userpwd``: (user, password) for HTTP authentication; Basic, sent with the
      request, or with ``digest`` Digest (``CURLAUTH_DIGEST``): libcurl sends the request
      without credentials (a POST without its body) to get the challenge and answers it,
      https://curl.se/libcurl/c/CURLOPT_HTTPAUTH.html.

    A named tuple rather than a frozen dataclass: equally immutable, and built in 0.4 us
    instead of 1.5 us, which a fan-out pays per device token.
    """

    method: str
    url: str
    headers: Sequence[str]
    body: bytes = b""
    client_cert: ClientCert | None = None
    pool: str = ""
    capture_headers: bool = False
    connections: int | None = None
    connect_to: str | None = None
    timeout_ms: int | None = None
    max_body: int | None = None
    userpwd: tuple[str, str] | None = None
    digest: bool = False


def header_safe(value: str) -> bool:
    """Whether ``value`` can go into a header line unchanged: non-empty printable ASCII.
    CR, LF and other control characters would split or corrupt the line, and libcurl
    leaves out a header whose value is empty."""
    return bool(value) and value.isascii() and value.isprintable()


class Response:
    """The answer to one :class:`Request`.

    ``status`` is 0, and ``error`` says why, when no complete HTTP response arrived.
    ``elapsed`` is seconds from hand-over to libcurl to completion. :attr:`headers` is
    empty unless the request asked for ``capture_headers``. ``retry_after`` is the
    ``Retry-After`` of an error response in seconds (capped at an hour), None without
    one: read from the captured header when there is one, else from libcurl's parse
    (which cannot tell ``Retry-After: 0`` from no header). ``truncated`` says the body
    was longer than the request's ``max_body`` and is cut short (or empty).
    """

    __slots__ = ("_header_lines", "body", "elapsed", "error", "retry_after", "status", "truncated")

    def __init__(
        self,
        status: int,
        header_lines: Sequence[bytes],
        body: bytes,
        error: str | None,
        elapsed: float,
        retry_after: float | None = None,
        truncated: bool = False,
    ) -> None:
        self.status = status
        self._header_lines = header_lines
        self.body = body
        self.error = error
        self.elapsed = elapsed
        self.retry_after = retry_after
        self.truncated = truncated

    @property
    def headers(self) -> dict[str, str]:
        """Response header fields, names lower-cased (the last of repeated names wins)."""
        return parse_header_lines(self._header_lines)

    def __repr__(self) -> str:
        return (
            f"Response(status={self.status}, body={self.body[:80]!r}, error={self.error!r}, "
            f"elapsed={self.elapsed:.4f}, truncated={self.truncated})"
        )


def parse_header_lines(lines: Sequence[bytes]) -> dict[str, str]:
    """The header fields of the last response in ``lines``, raw as libcurl delivers them."""
    headers: dict[str, str] = {}
    for raw in lines:
        line = raw.decode("latin-1").rstrip("\r\n")
        if line.startswith("HTTP/"):
            headers.clear()  # an interim response (100 Continue) came first
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def find_system_ca_bundle() -> Path | None:
    """The first readable system PEM bundle of trusted roots, whatever the environment."""
    for candidate in SYSTEM_CA_CANDIDATES:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.R_OK):
            return Path(candidate)
    return None


class _Batch:
    """The responses to one ``request_many`` call, resolved once when complete."""

    __slots__ = ("future", "loop", "remaining", "results")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.future: asyncio.Future[list[Response]] = loop.create_future()
        self.results: list[Any] = [None] * size
        self.remaining = size


def _resolve(batches: list[_Batch]) -> None:
    """Runs on the batches' event loop."""
    for batch in batches:
        if not batch.future.done():
            batch.future.set_result(batch.results)


def _tcp_socket(fd: int) -> socket.socket | None:
    """A non-owning wrapper of libcurl's descriptor ``fd`` if it is a TCP socket."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        return sock
    sock.detach()
    return None


def _set_none(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Slot:
    """An easy handle and the state of its current request."""

    __slots__ = (
        "batch",
        "capturing",
        "chunks",
        "curl",
        "custom",
        "extra",
        "header_lines",
        "index",
        "limited",
        "pinned",
        "started",
        "timed",
        "userpwd",
    )

    def __init__(self, curl: Any, chunks: list[bytes]) -> None:
        self.curl = curl
        self.chunks = chunks
        self.header_lines: list[bytes] = []
        self.batch: _Batch | None = None
        self.index = 0
        self.started = 0.0
        self.capturing = False
        self.custom = False
        # The per-request options (Request.connect_to ...) the handle carries now; extra
        # is whether it carries any of them.
        self.extra = False
        self.pinned = False
        self.timed = False
        self.limited = False
        self.userpwd = False


class _Pool:
    """One connection partition: a ``CurlMulti``, its handles, sockets and queue."""

    __slots__ = (
        "active",
        "cert",
        "deadline",
        "free",
        "fresh",
        "known",
        "max_active",
        "multi",
        "pending",
        "slots",
        "socks",
        "stream_limit",
        "trickle",
        "used",
    )

    def __init__(self, cert: ClientCert | None, max_active: int) -> None:
        self.multi: Any = pycurl.CurlMulti()
        self.cert = cert
        self.max_active = max_active  # requests handed to libcurl at once, at most
        self.slots: dict[Any, _Slot] = {}  # every easy handle of this partition
        self.free: list[_Slot] = []
        self.pending: deque[tuple[_Batch, int, Request]] = deque()
        self.active = 0  # handed to libcurl and not finished
        self.deadline: float | None = None  # libcurl's timer, monotonic seconds
        # libcurl's sockets, wrapped (never owned: detached when libcurl drops them) for
        # TCP_CORK; None for a descriptor that is no TCP socket (the resolver's eventfd).
        self.socks: dict[int, socket.socket | None] = {}
        # TCP connections that have not answered yet, so whose server SETTINGS may still
        # be on the way; while there are any, the partition runs at one stream per
        # connection (see Http2Transport._apply_stream_limit).
        self.fresh: set[int] = set()
        # Which connection each descriptor last carried, as its local address: libcurl
        # drops an idle connection's socket from the watch list (POLL_REMOVE) and brings
        # it back when it reuses the connection, which must not count as new.
        self.known: dict[int, Any] = {}
        self.stream_limit = 0
        self.trickle = False  # the last round finished only a few requests
        self.used = time.monotonic()  # when a request was last handed to libcurl


class Http2Transport:
    """A pool of multiplexed HTTP/2 connections driven by one background thread.

    ``max_connections_per_host`` and ``max_streams`` bound each partition (module
    docstring). ``timeout`` bounds one request from hand-over to libcurl to its last byte.
    The thread starts with the first request; :meth:`close` stops it.
    """

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        max_connections_per_host: int = 4,
        max_streams: int = 1000,
        timeout: float = 30.0,
    ) -> None:
        if max_connections_per_host < 1 or max_streams < 1 or timeout <= 0:
            raise ValueError("connections, streams and timeout must be positive")
        self._ca_file = ca_file
        self._max_connections = max_connections_per_host
        self._max_streams = max_streams
        self._timeout_ms = int(timeout * 1000)
        self._cainfo: str | None = None
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self._incoming: deque[tuple[_Batch, Sequence[Request]]] = deque()
        self._wake_pending = False
        self._wake_r = -1
        self._wake_w = -1
        self._thread: threading.Thread | None = None
        self._stopping = False  # close() asked the thread to stop
        self._dead = False  # the thread has stopped, or never will start
        self._stopped_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        # The thread's own, from start on.
        self._selector: selectors.BaseSelector | None = None
        self._pools: dict[tuple[str, ClientCert | None], _Pool] = {}
        self._done: list[_Batch] = []
        self._last_sweep = time.monotonic()

    # -- the asyncio side ----------------------------------------------------------------

    async def request(self, req: Request) -> Response:
        """Send one request and wait for its response."""
        return (await self.request_many((req,)))[0]

    async def request_many(self, reqs: Sequence[Request]) -> list[Response]:
        """Send requests concurrently; the responses come back in the same order.

        Cancelling the caller abandons the responses, not the requests already sent.
        Raises RuntimeError after :meth:`close`.
        """
        if not reqs:
            return []
        batch = _Batch(asyncio.get_running_loop(), len(reqs))
        with self._lock:
            if self._dead or self._stopping:
                raise RuntimeError("Http2Transport is closed")
            if self._thread is None:
                self._start()
            self._incoming.append((batch, reqs))
            self._wake()
        return await batch.future

    async def close(self) -> None:
        """Stop the thread: what is pending gets ``status`` 0 and ``error`` "transport
        closed"; every connection and handle is closed. Idempotent."""
        loop = asyncio.get_running_loop()
        stopped: asyncio.Future[None] = loop.create_future()
        with self._lock:
            thread = self._thread
            if thread is None or self._dead:
                self._dead = True
                self._cleanup_files()
                stopped.set_result(None)
            else:
                self._stopped_waiters.append((loop, stopped))
                self._stopping = True
                self._wake()
        await stopped
        if thread is not None:
            thread.join()

    def _wake(self) -> None:
        """Called with ``_lock`` held, so the pipe is still open."""
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"\0")

    def _start(self) -> None:
        """Called with ``_lock`` held."""
        self._cainfo = self._prepare_cainfo()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        thread = threading.Thread(target=self._run, name="pushgate-http2", daemon=True)
        self._thread = thread
        thread.start()

    def _prepare_cainfo(self) -> str | None:
        """The PEM file libcurl trusts: the system bundle, plus ``ca_file`` when given."""
        system = find_system_ca_bundle()
        if system is None:
            log.warning("no system CA bundle found", extra={"action": "tls_no_system_ca"})
        if self._ca_file is None:
            return None if system is None else str(system)
        extra = self._ca_file.read_bytes()
        if system is None:
            return str(self._ca_file)
        self._temp_dir = tempfile.TemporaryDirectory(prefix="pushgate-ca-")
        combined = Path(self._temp_dir.name) / "ca-bundle.pem"
        combined.write_bytes(system.read_bytes().rstrip(b"\n") + b"\n" + extra)
        return str(combined)

    def _cleanup_files(self) -> None:
        if self._temp_dir is not None:
            self._temp_dir.cleanup()
            self._temp_dir = None

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException:
            log.exception("HTTP/2 transport thread failed", extra={"action": "transport_crash"})
            raise
        finally:
            self._shutdown()

    def _serve(self) -> None:
        selector = self._selector
        assert selector is not None
        wake_r = self._wake_r
        pools = self._pools
        touched: set[_Pool] = set()
        while True:
            events = selector.select(self._select_timeout())
            if (
                COALESCE_SECONDS
                and events
                and all(
                    key.data is not None
                    and key.data.active >= _COALESCE_ACTIVE
                    and key.data.trickle
                    for key, _ in events
                )
            ):
                # Answers trickle in one by one while many streams are in flight: let more
                # arrive before libcurl walks every transfer of the connection again.
                time.sleep(COALESCE_SECONDS)
            for key, mask in events:
                pool = key.data
                if pool is None:
                    # Drain, then clear the flag, under the lock _wake() runs under.
                    # Clearing first let a submission in between set the flag and write
                    # a byte that this drain then swallowed: the flag stayed set with the
                    # pipe empty, every later submission skipped its write, and once the
                    # transfers in flight were done the thread slept in select() for good
                    # with requests in _incoming (the PostgreSQL fan-out stall). A
                    # submission before this point is in _incoming, taken below.
                    with self._lock:
                        with contextlib.suppress(BlockingIOError):
                            while os.read(wake_r, 4096):
                                pass
                        self._wake_pending = False
                    continue
                flags = 0
                if mask & selectors.EVENT_READ:
                    flags |= pycurl.CSELECT_IN
                if mask & selectors.EVENT_WRITE:
                    flags |= pycurl.CSELECT_OUT
                self._socket_action(pool, key.fd, flags)
                touched.add(pool)
            if self._stopping:
                return
            if self._incoming:
                self._take_incoming()
            now = time.monotonic()
            for pool in pools.values():
                if pool.deadline is not None and pool.deadline <= now:
                    pool.deadline = None
                    self._cork(pool, 1)
                    try:
                        self._socket_action(pool, pycurl.SOCKET_TIMEOUT, 0)
                    finally:
                        self._cork(pool, 0)
                    touched.add(pool)
            for pool in touched:
                self._harvest(pool)
                self._apply_stream_limit(pool)
            touched.clear()
            if self._done:
                self._deliver()

    @staticmethod
    def _socket_action(pool: _Pool, fd: int, flags: int) -> None:
        try:
            pool.multi.socket_action(fd, flags)
        except pycurl.error as exc:  # a socket closed earlier in this round: harmless
            log.debug("socket_action: %s", exc)

    def _apply_stream_limit(self, pool: _Pool) -> None:
        """One stream per connection while a connection has not answered yet.

        Before a server's first SETTINGS arrives libcurl assumes 100 concurrent streams,
        and a new connection gets that many at once. APNs starts token connections at 1
        and refuses the rest; libcurl then marks the connection unusable and replays the
        refused requests on new connections, which start at 1 again: a cascade that ends
        with "Connection died, tried 5 times". The first answer on a connection proves
        its SETTINGS are in, and libcurl keeps within them from then on.
        """
        limit = 1 if pool.fresh else self._max_streams
        if limit != pool.stream_limit:
            pool.multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, limit)
            pool.stream_limit = limit

    @staticmethod
    def _cork(pool: _Pool, on: int) -> None:
        if _TCP_CORK is None:
            return
        for sock in pool.socks.values():
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, on)

    def _select_timeout(self) -> float | None:
        deadline: float | None = None
        for pool in self._pools.values():
            if pool.deadline is not None and (deadline is None or pool.deadline < deadline):
                deadline = pool.deadline
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    def _pool(self, req: Request) -> _Pool:
        key = (req.pool, req.client_cert)
        pool = self._pools.get(key)
        if pool is None:
            connections = req.connections or self._max_connections
            pool = self._pools[key] = _Pool(req.client_cert, connections * self._max_streams)
            multi = pool.multi
            multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
            multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, connections)
            multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, self._max_streams)
            pool.stream_limit = self._max_streams
            multi.setopt(pycurl.M_SOCKETFUNCTION, self._socket_callback(pool))
            multi.setopt(pycurl.M_TIMERFUNCTION, self._timer_callback(pool))
        return pool

    def _socket_callback(self, pool: _Pool) -> Callable[[int, int, Any, Any], None]:
        """libcurl's M_SOCKETFUNCTION for ``pool``; it must never raise."""
        selector = self._selector
        assert selector is not None
        socks = pool.socks
        fresh = pool.fresh
        known = pool.known

        def on_socket(what: int, fd: int, multi: Any, socketp: Any) -> None:
            if what == pycurl.POLL_REMOVE or what == pycurl.POLL_NONE:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(fd)
                if what == pycurl.POLL_REMOVE:
                    sock = socks.pop(fd, None)
                    if sock is not None:
                        sock.detach()
                    fresh.discard(fd)
                return
            events = 0
            if what & pycurl.POLL_IN:
                events |= selectors.EVENT_READ
            if what & pycurl.POLL_OUT:
                events |= selectors.EVENT_WRITE
            if fd not in socks:
                socks[fd] = sock = _tcp_socket(fd)
                if sock is not None:
                    try:
                        identity = sock.getsockname()  # the local port, bound by connect()
                    except OSError:
                        identity = None
                    if identity is None or known.get(fd) != identity:
                        known[fd] = identity
                        fresh.add(fd)
            try:
                selector.modify(fd, events, pool)
            except KeyError:
                with contextlib.suppress(ValueError, OSError):
                    selector.register(fd, events, pool)
            except (ValueError, OSError):
                log.debug("selector refused fd %d", fd)

        return on_socket

    @staticmethod
    def _timer_callback(pool: _Pool) -> Callable[[int], None]:
        def on_timer(timeout_ms: int) -> None:
            pool.deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

        return on_timer

    def _take_incoming(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep > _SWEEP_INTERVAL_S:
            self._sweep(now)
        incoming = self._incoming
        refill: list[_Pool] = []
        while incoming:
            batch, reqs = incoming.popleft()
            pool: _Pool | None = None
            last_key: str | None = None
            last_cert: ClientCert | None = None
            for index, req in enumerate(reqs):
                if pool is None or req.pool != last_key or req.client_cert is not last_cert:
                    pool = self._pool(req)
                    last_key, last_cert = req.pool, req.client_cert
                if pool.active < pool.max_active and not pool.pending:
                    self._add(pool, batch, index, req)
                else:
                    pool.pending.append((batch, index, req))
                    refill.append(pool)
        for each in refill:
            self._refill(each)

    def _new_slot(self, pool: _Pool) -> _Slot:
        c = pycurl.Curl()
        chunks: list[bytes] = []
        c.setopt(pycurl.WRITEFUNCTION, chunks.append)
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        c.setopt(pycurl.PIPEWAIT, 1)
        c.setopt(pycurl.TIMEOUT_MS, self._timeout_ms)
        c.setopt(pycurl.CONNECTTIMEOUT_MS, _CONNECT_TIMEOUT_MS)
        c.setopt(pycurl.MAXAGE_CONN, _MAX_IDLE_CONNECTION_S)
        c.setopt(pycurl.TCP_KEEPALIVE, 1)
        c.setopt(pycurl.TCP_KEEPIDLE, _KEEPALIVE_S)
        c.setopt(pycurl.TCP_KEEPINTVL, _KEEPALIVE_S)
        c.setopt(pycurl.USERAGENT, "pushgate")
        c.setopt(pycurl.PROXY, "")  # never a proxy from *_proxy variables
        c.setopt(pycurl.SSL_VERIFYPEER, 1)
        c.setopt(pycurl.SSL_VERIFYHOST, 2)
        if self._cainfo is not None:
            c.setopt(pycurl.CAINFO, self._cainfo)
        c.unsetopt(pycurl.CAPATH)
        if pool.cert is not None:
            c.setopt(pycurl.SSLCERTTYPE, "PEM")
            c.setopt(pycurl.SSLCERT_BLOB, pool.cert.cert_pem)
            c.setopt(pycurl.SSLKEYTYPE, "PEM")
            c.setopt(pycurl.SSLKEY_BLOB, pool.cert.key_pem)
        slot = _Slot(c, chunks)
        pool.slots[c] = slot
        return slot

    def _add(self, pool: _Pool, batch: _Batch, index: int, req: Request) -> None:
        slot = pool.free.pop() if pool.free else self._new_slot(pool)
        c = slot.curl
        method = req.method
        try:
            c.setopt(pycurl.URL, req.url)
            c.setopt(pycurl.HTTPHEADER, req.headers)
            if method == "POST":
                c.setopt(pycurl.POSTFIELDS, req.body)
            elif method == "GET":
                c.setopt(pycurl.HTTPGET, 1)
            else:
                c.setopt(pycurl.CUSTOMREQUEST, method)
                c.setopt(pycurl.POSTFIELDS, req.body)
                slot.custom = True
            if req.capture_headers is not slot.capturing:
                capture = req.capture_headers
                c.setopt(pycurl.HEADERFUNCTION, slot.header_lines.append if capture else None)
                slot.capturing = capture
            if (
                slot.extra
                or req.connect_to is not None
                or req.timeout_ms is not None
                or req.max_body is not None
                or req.userpwd is not None
            ):
                self._set_extra(slot, req)
        except (pycurl.error, TypeError, ValueError, UnicodeError) as exc:
            # A request libcurl cannot take (a non-ASCII header, say): answer it, go on.
            del pool.slots[c]
            c.close()
            self._complete(batch, index, Response(0, (), b"", f"invalid request: {exc}", 0.0))
            return
        slot.batch = batch
        slot.index = index
        slot.started = pool.used = time.monotonic()
        pool.active += 1
        pool.multi.add_handle(c)

    def _set_extra(self, slot: _Slot, req: Request) -> None:
        """Set the options of ``Request`` a provider never uses, and unset the ones the
        handle's last request left that this one does not ask for."""
        c = slot.curl
        if req.connect_to is not None:
            c.setopt(pycurl.CONNECT_TO, [req.connect_to])
            slot.pinned = True
        elif slot.pinned:
            c.unsetopt(pycurl.CONNECT_TO)  # setopt(CONNECT_TO, []) would keep the old list
            slot.pinned = False
        if req.timeout_ms is not None:
            c.setopt(pycurl.TIMEOUT_MS, req.timeout_ms)
            slot.timed = True
        elif slot.timed:
            c.setopt(pycurl.TIMEOUT_MS, self._timeout_ms)
            slot.timed = False
        if req.max_body is not None:
            c.setopt(pycurl.MAXFILESIZE_LARGE, req.max_body)
            slot.limited = True
        elif slot.limited:
            c.setopt(pycurl.MAXFILESIZE_LARGE, 0)  # 0: no limit, libcurl's default
            slot.limited = False
        if req.userpwd is not None:
            user, password = req.userpwd
            c.setopt(pycurl.USERNAME, user.encode())
            c.setopt(pycurl.PASSWORD, password.encode())
            c.setopt(
                pycurl.HTTPAUTH, pycurl.HTTPAUTH_DIGEST if req.digest else pycurl.HTTPAUTH_BASIC
            )
            slot.userpwd = True
        elif slot.userpwd:
            c.unsetopt(pycurl.USERNAME)
            c.unsetopt(pycurl.PASSWORD)
            c.setopt(pycurl.HTTPAUTH, pycurl.HTTPAUTH_BASIC)
            slot.userpwd = False
        slot.extra = slot.pinned or slot.timed or slot.limited or slot.userpwd

    def _complete(self, batch: _Batch, index: int, response: Response) -> None:
        batch.results[index] = response
        batch.remaining -= 1
        if batch.remaining == 0:
            self._done.append(batch)

    def _harvest(self, pool: _Pool) -> None:
        multi = pool.multi
        slots = pool.slots
        now = time.monotonic()
        finished = 0
        while True:
            queued, ok, failed = multi.info_read()
            for c in ok:
                self._finish(pool, slots[c], None, now)
            for c, errno, message in failed:
                slot = slots[c]
                if errno == _FILESIZE_EXCEEDED and slot.limited:
                    self._finish(pool, slot, None, now, truncated=True)
                else:
                    self._finish(pool, slot, f"curl error {errno}: {message}", now)
            finished += len(ok) + len(failed)
            if not queued:
                break
        pool.trickle = finished < _TRICKLE
        if pool.pending:
            self._refill(pool)

    def _finish(
        self, pool: _Pool, slot: _Slot, error: str | None, now: float, truncated: bool = False
    ) -> None:
        c = slot.curl
        pool.multi.remove_handle(c)
        pool.active -= 1
        chunks = slot.chunks
        header_lines = slot.header_lines
        if error is None:
            status = c.getinfo(pycurl.RESPONSE_CODE)
            if pool.fresh:
                pool.fresh.discard(c.getinfo(pycurl.ACTIVESOCKET))
            lines = tuple(header_lines) if header_lines else ()
            retry_after = None
            if status >= 400:  # rare: the extra calls cost nothing on the hot path
                if lines:
                    retry_after = parse_retry_after(parse_header_lines(lines).get("retry-after"))
                else:
                    seconds = c.getinfo(pycurl.RETRY_AFTER)
                    retry_after = min(float(seconds), MAX_RETRY_AFTER) if seconds > 0 else None
            response = Response(
                status,
                lines,
                b"".join(chunks) if chunks else b"",
                None,
                now - slot.started,
                retry_after,
                truncated,
            )
        else:
            response = Response(0, (), b"", error, now - slot.started)
        if chunks:
            chunks.clear()
        if header_lines:
            header_lines.clear()
        batch = slot.batch
        assert batch is not None
        index = slot.index
        self._release(pool, slot)
        self._complete(batch, index, response)

    @staticmethod
    def _release(pool: _Pool, slot: _Slot) -> None:
        """Back to the free list; the handle is already out of the multi."""
        slot.batch = None
        if slot.custom:
            slot.curl.setopt(pycurl.CUSTOMREQUEST, None)
            slot.custom = False
        pool.free.append(slot)

    def _refill(self, pool: _Pool) -> None:
        pending = pool.pending
        max_active = pool.max_active
        while pending and pool.active < max_active:
            batch, index, req = pending.popleft()
            self._add(pool, batch, index, req)

    def _deliver(self) -> None:
        done = self._done
        self._done = []
        by_loop: dict[asyncio.AbstractEventLoop, list[_Batch]] = {}
        for batch in done:
            by_loop.setdefault(batch.loop, []).append(batch)
        for loop, batches in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, batches)

    @staticmethod
    def _close_pool(pool: _Pool) -> None:
        """Close an idle partition's handles and connections."""
        for slot in pool.slots.values():
            slot.curl.close()
        pool.multi.close()  # closes the connections; POLL_REMOVE detaches the wrappers
        for sock in pool.socks.values():
            if sock is not None:
                sock.detach()
        pool.socks.clear()
        pool.slots.clear()
        pool.free.clear()

    def _sweep(self, now: float) -> None:
        """Drop partitions unused for as long as an idle connection lives (credentials
        replaced, applications deleted: libcurl only prunes a multi when it is used), and
        the spare handles of idle ones."""
        self._last_sweep = now
        for key, pool in list(self._pools.items()):
            if pool.active or pool.pending:
                continue
            if now - pool.used > _MAX_IDLE_CONNECTION_S:
                del self._pools[key]
                self._close_pool(pool)
            elif len(pool.free) > _KEEP_IDLE_HANDLES:
                # about 20 KB each; a burst of 4000 in flight leaves 80 MB behind
                while len(pool.free) > _KEEP_IDLE_HANDLES:
                    slot = pool.free.pop()
                    del pool.slots[slot.curl]
                    slot.curl.close()

    def _shutdown(self) -> None:
        """In the thread, last: fail what is left, then free libcurl's resources."""
        with self._lock:
            self._dead = True
            waiters, self._stopped_waiters = self._stopped_waiters, []
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        closed = Response(0, (), b"", CLOSED_ERROR, 0.0)
        while self._incoming:
            batch, reqs = self._incoming.popleft()
            for index in range(len(reqs)):
                self._complete(batch, index, closed)
        now = time.monotonic()
        for pool in self._pools.values():
            while pool.pending:
                batch, index, _ = pool.pending.popleft()
                self._complete(batch, index, closed)
            for slot in list(pool.slots.values()):
                if slot.batch is not None:
                    self._finish(pool, slot, CLOSED_ERROR, now)
        for pool in self._pools.values():
            self._close_pool(pool)
        self._pools.clear()
        if self._done:
            self._deliver()
        if self._selector is not None:
            self._selector.close()
        self._cleanup_files()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_set_none, future)
