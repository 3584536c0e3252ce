"""Tests of the strict fake providers, the clients that talk to them, and a raw HTTP/2
client that sees them frame by frame.

httpx hides SETTINGS, RST_STREAM, GOAWAY and PRIORITY; :class:`RawH2` shows them.

The fixtures here serve every test that talks to the fakes, in this folder and in
``tests/providers``: each folder's ``conftest.py`` makes them its own. The fakes run once
per module (:func:`running_fakes`); tests change their knobs with
``monkeypatch.setattr``, and :func:`fakes` forgets the rest after each test.
"""

from __future__ import annotations

import base64
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import h2.config
import h2.connection
import h2.events
import http_ece  # type: ignore[import-untyped]
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.fakes.apns import ApnsSigningKey
from pushgate.fakes.runner import FakeProviders

TEAM = "TEAM123456"
BUNDLE = "com.example.app"
PAYLOAD = b'{"aps":{"alert":"hello"}}'


@pytest.fixture(scope="module")
def running_fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProviders]:
    """Every fake provider on a thread of its own, per module."""
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


@pytest.fixture
async def client(fakes: FakeProviders) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client that trusts the fakes' CA: HTTP/2 with the fakes that offer it
    (ALPN), HTTP/1.1 with the others (WNS, MPNS, Baidu)."""
    async with httpx.AsyncClient(
        http2=True, verify=trusting(fakes.ca_file), trust_env=False, timeout=5
    ) as c:
        yield c


def trusting(ca_file: Path, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A client TLS context that trusts the fakes' CA, presenting ``cert`` (the files of a
    client certificate and its key) when given."""
    context = ssl.create_default_context(cafile=str(ca_file))
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def certificate_files(directory: Path, pem: tuple[str, str]) -> tuple[Path, Path]:
    """A client certificate and its key (PEM) as files in ``directory``: :mod:`ssl`
    loads them from files only."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_text(pem[0])
    key.write_text(pem[1])
    return cert, key


async def granted_token(client: httpx.AsyncClient, token_url: str, **form: str) -> str:
    """The access token of a client-credentials grant (ADM, HMS, WNS) with ``form``,
    which must be granted."""
    answer = await client.post(token_url, data={"grant_type": "client_credentials", **form})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


# Web Push by hand: RFC 8291 encryption for a subscription, as a browser's server would.


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def encrypt(sub: dict[str, Any], plaintext: bytes, rs: int = 4096) -> bytes:
    """``plaintext`` encrypted (aes128gcm) for subscription ``sub`` (its toJSON form)."""
    body: bytes = http_ece.encrypt(
        plaintext,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=unb64(sub["keys"]["p256dh"]),
        auth_secret=unb64(sub["keys"]["auth"]),
        version="aes128gcm",
        rs=rs,
    )
    return body


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
        context = trusting(ca_file, cert)
        context.set_alpn_protocols(["h2"])
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
