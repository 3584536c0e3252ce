"""Tests of the strict fake providers, and a raw HTTP/2 client that sees them frame by frame.

httpx hides SETTINGS, RST_STREAM, GOAWAY and PRIORITY; :class:`RawH2` shows them.

The fixtures here serve every test that talks to the fakes, in this folder and in
``tests/providers``: each folder's ``conftest.py`` makes them its own.
"""

from __future__ import annotations

import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import h2.config
import h2.connection
import h2.events
import pytest

from pushgate.fakes.apns import ApnsSigningKey
from pushgate.fakes.runner import FakeProviders

TEAM = "TEAM123456"
BUNDLE = "com.example.app"
PAYLOAD = b'{"aps":{"alert":"hello"}}'


@pytest.fixture(scope="module")
def running_fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProviders]:
    """Fake APNs (production and sandbox) and FCM on a thread of their own, per module."""
    with FakeProviders.start(tmp_path_factory.mktemp("fakes")) as running:
        yield running


@pytest.fixture
def fakes(running_fakes: FakeProviders) -> Iterator[FakeProviders]:
    """The module's fakes; after the test they forget what it left (credentials stay)."""
    yield running_fakes
    running_fakes.reset()


@pytest.fixture
def key(fakes: FakeProviders) -> ApnsSigningKey:
    """A signing key of team :data:`TEAM` for topic :data:`BUNDLE`."""
    return fakes.apns.register_key(TEAM, [BUNDLE])


class RawH2:
    """A blocking h2 client on one TLS connection, keeping every event it read."""

    def __init__(
        self,
        url: str,
        ca_file: Path,
        cert: tuple[Path, Path] | None = None,
        *,
        validate: bool = True,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        assert parsed.hostname is not None and parsed.port is not None
        self.authority = parsed.netloc
        context = ssl.create_default_context(cafile=str(ca_file))
        context.set_alpn_protocols(["h2"])
        if cert is not None:
            context.load_cert_chain(*cert)
        raw = socket.create_connection((parsed.hostname, parsed.port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname=parsed.hostname)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True, header_encoding="utf-8", validate_outbound_headers=validate
            )
        )
        self.conn.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []
        self.closed = False

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read(self) -> list[h2.events.Event]:
        data = self.sock.recv(65535)
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        self.flush()
        self.events.extend(events)
        return events

    def read_until(self, done: Callable[[h2.events.Event], bool]) -> h2.events.Event:
        for event in self.events:
            if done(event):
                return event
        while not self.closed:
            for event in self.read():
                if done(event):
                    return event
        raise EOFError("connection closed before the awaited event")

    def request(
        self,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        method: str = "POST",
        authority: bool = True,
        end: bool = True,
    ) -> int:
        """Send a request; with ``end`` False the stream stays open for more DATA."""
        stream_id = self.conn.get_next_available_stream_id()
        pseudo = [(":method", method), (":scheme", "https"), (":path", path)]
        if authority:
            pseudo.insert(1, (":authority", self.authority))
        self.conn.send_headers(stream_id, pseudo + headers, end_stream=end and not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=end)
        self.flush()
        return stream_id

    def response(self, stream_id: int) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of a stream; status 0 if it was reset."""

        def ended(event: h2.events.Event) -> bool:
            return (
                isinstance(event, h2.events.StreamEnded | h2.events.StreamReset)
                and event.stream_id == stream_id
            )

        self.read_until(ended)
        status, headers, body = 0, {}, b""
        for event in self.events:
            if getattr(event, "stream_id", None) != stream_id:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                # header_encoding="utf-8": names and values arrive as str
                headers = {str(name): str(value) for name, value in event.headers or []}
                status = int(headers[":status"])
            elif isinstance(event, h2.events.DataReceived):
                body += event.data or b""
            elif isinstance(event, h2.events.StreamReset):
                return 0, {"error_code": str(event.error_code)}, b""
        return status, headers, body

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawH2:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
