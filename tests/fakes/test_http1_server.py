"""HTTP/1.1 in the fake server core: a fake that offers ``http/1.1`` gets the same
:class:`Request` objects as over HTTP/2, from the project transport, httpx and raw TLS.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from h2.settings import SettingCodes

from pushgate.fakes.base import FakeServer
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import Script
from pushgate.fakes.tls import FakeCA
from pushgate.providers.transport import Http2Transport
from pushgate.providers.transport import Request as ClientRequest


@dataclass(frozen=True)
class Seen:
    connection_id: int
    stream_id: int
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    peer_certificate: bytes | None


class EchoFake(FakeServer[Seen, Script]):
    """Records each request and answers with its body; ``/drop`` drops the connection,
    ``/limits`` calls the HTTP/2-only knobs first, ``/fail`` raises."""

    def __init__(
        self, ca: FakeCA, protocols: tuple[str, ...], *, client_certificates: bool = False
    ) -> None:
        super().__init__(
            ca.server_context(protocols, client_certificates=client_certificates),
            {SettingCodes.MAX_CONCURRENT_STREAMS: 10},
            lambda seen: True,
            protocols=protocols,
        )
        self.made: list[int] = []
        self.lost: list[int] = []

    def connection_made(self, connection: Connection) -> int:
        self.made.append(connection.id)
        return 10

    def connection_lost(self, connection: Connection) -> None:
        self.lost.append(connection.id)

    async def handle(self, request: Request) -> Response | None:
        connection = request.connection
        self._records.add(
            Seen(
                connection.id,
                request.stream_id,
                request.method,
                request.path,
                request.headers,
                request.body,
                connection.peer_certificate,
            )
        )
        if request.path == "/drop":
            connection.drop()
            return None
        if request.path == "/fail":
            raise RuntimeError("handler bug")
        if request.path == "/limits":
            connection.set_stream_limit(1)
            connection.goaway(b"ignored")
        return Response(200, [("content-type", "text/plain"), ("x-seen", "yes")], request.body)


async def _echo(fakes: FakeProviders, protocols: tuple[str, ...]) -> AsyncIterator[EchoFake]:
    fake = EchoFake(fakes.ca, protocols)
    await fake.start()
    yield fake
    await fake.aclose()


@pytest.fixture
async def h1(fakes: FakeProviders) -> AsyncIterator[EchoFake]:
    async for fake in _echo(fakes, ("http/1.1",)):
        yield fake


@pytest.fixture
async def both(fakes: FakeProviders) -> AsyncIterator[EchoFake]:
    async for fake in _echo(fakes, ("h2", "http/1.1")):
        yield fake


@pytest.fixture
async def h2_only(fakes: FakeProviders) -> AsyncIterator[EchoFake]:
    async for fake in _echo(fakes, ("h2",)):
        yield fake


@pytest.fixture
async def client(fakes: FakeProviders) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(fakes.ca_file))
    async with httpx.AsyncClient(
        http1=True, http2=False, verify=context, trust_env=False, timeout=5
    ) as c:
        yield c


@pytest.fixture
async def transport(fakes: FakeProviders) -> AsyncIterator[Http2Transport]:
    transport = Http2Transport(ca_file=fakes.ca_file)
    yield transport
    await transport.close()


async def _raw(
    fake: EchoFake, ca_file: str, alpn: list[str] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = ssl.create_default_context(cafile=ca_file)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return await asyncio.open_connection("127.0.0.1", fake.port, ssl=context)


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The head and body of one response with a content-length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


async def test_transport_negotiates_http1_and_gets_the_same_request(
    h1: EchoFake, transport: Http2Transport
) -> None:
    responses = await transport.request_many(
        [
            ClientRequest(
                "POST",
                f"{h1.url}/rest/push?x=1",
                ["Content-Type: application/x-www-form-urlencoded", "X-Custom: A b"],
                b"a=1&b=2",
                capture_headers=True,
            )
        ]
    )
    response = responses[0]
    assert response.status == 200, response.error
    assert response.body == b"a=1&b=2"
    assert response.headers["content-length"] == "7"
    assert response.headers["x-seen"] == "yes"
    [seen] = h1.received
    assert seen.method == "POST"
    assert seen.path == "/rest/push?x=1"
    assert seen.stream_id == 1
    assert seen.headers[:4] == (
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", f"127.0.0.1:{h1.port}"),
        (":path", "/rest/push?x=1"),
    )
    fields = dict(seen.headers[4:])
    assert fields["content-type"] == "application/x-www-form-urlencoded"
    assert fields["x-custom"] == "A b"
    assert fields["host"] == f"127.0.0.1:{h1.port}"
    assert fields["content-length"] == "7"
    assert seen.body == b"a=1&b=2"


async def test_keep_alive_requests_share_a_connection_and_count_up(
    h1: EchoFake, client: httpx.AsyncClient
) -> None:
    for body in (b"one", b"two", b"three"):
        response = await client.post(f"{h1.url}/p", content=body)
        assert response.http_version == "HTTP/1.1"
        assert response.content == body
        assert response.headers["content-length"] == str(len(body))
    seen = h1.received
    assert [s.stream_id for s in seen] == [1, 2, 3]
    assert len({s.connection_id for s in seen}) == 1
    assert h1.made == [seen[0].connection_id]


async def test_get_without_body_and_large_body(h1: EchoFake, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{h1.url}/empty")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    big = b"x" * 300_000
    response = await client.post(f"{h1.url}/big", content=big)
    assert response.content == big
    assert h1.received[0].method == "GET"
    assert h1.received[1].body == big


async def test_client_without_alpn_is_served_http1(h1: EchoFake, fakes: FakeProviders) -> None:
    reader, writer = await _raw(h1, str(fakes.ca_file), alpn=None)
    writer.write(b"GET /plain HTTP/1.1\r\nHost: example\r\n\r\n")
    head, _ = await _read_response(reader)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert h1.received[0].headers[2] == (":authority", "example")


async def test_pipelined_requests_are_answered_in_order(h1: EchoFake, fakes: FakeProviders) -> None:
    reader, writer = await _raw(h1, str(fakes.ca_file), ["http/1.1"])
    writer.write(
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nA"
        b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nBB"
    )
    assert (await _read_response(reader))[1] == b"A"
    assert (await _read_response(reader))[1] == b"BB"
    writer.close()
    assert [(s.path, s.stream_id) for s in h1.received] == [("/a", 1), ("/b", 2)]


async def test_expect_100_continue_is_answered(h1: EchoFake, fakes: FakeProviders) -> None:
    reader, writer = await _raw(h1, str(fakes.ca_file), ["http/1.1"])
    writer.write(
        b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    interim = await reader.readuntil(b"\r\n\r\n")
    assert interim.startswith(b"HTTP/1.1 100 ")
    writer.write(b"abc")
    head, body = await _read_response(reader)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"abc"


async def test_connection_close_is_honoured(h1: EchoFake, fakes: FakeProviders) -> None:
    reader, writer = await _raw(h1, str(fakes.ca_file), ["http/1.1"])
    writer.write(b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _ = await _read_response(reader)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert await reader.read() == b""  # the server closed
    writer.close()


async def test_malformed_request_gets_400_and_close(h1: EchoFake, fakes: FakeProviders) -> None:
    reader, writer = await _raw(h1, str(fakes.ca_file), ["http/1.1"])
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    head, _ = await _read_response(reader)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert await reader.read() == b""
    writer.close()
    assert h1.received == []


async def test_handler_error_is_500_and_close(h1: EchoFake, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{h1.url}/fail")
    assert response.status_code == 500
    assert response.headers["connection"] == "close"


async def test_drop_closes_without_answer(h1: EchoFake, transport: Http2Transport) -> None:
    [response] = await transport.request_many([ClientRequest("POST", f"{h1.url}/drop", [], b"x")])
    assert response.status == 0
    assert response.error
    # the connection is gone; the next request opens another
    [again] = await transport.request_many([ClientRequest("POST", f"{h1.url}/ok", [], b"y")])
    assert again.status == 200
    assert h1.received[0].connection_id != h1.received[1].connection_id
    assert h1.received[0].connection_id in h1.lost


async def test_http2_knobs_are_no_ops(h1: EchoFake, client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.post(f"{h1.url}/limits", content=b"k")).content == b"k"
    assert len({s.connection_id for s in h1.received}) == 1


async def test_client_certificate_is_seen(fakes: FakeProviders) -> None:
    fake = EchoFake(fakes.ca, ("http/1.1",), client_certificates=True)
    await fake.start()
    try:
        cert, key = fakes.ca.issue_client_certificate("client", "uid-1")
        cert_file, key_file = fakes.ca.directory / "h1c.pem", fakes.ca.directory / "h1k.pem"
        cert_file.write_text(cert)
        key_file.write_text(key)
        context = ssl.create_default_context(cafile=str(fakes.ca_file))
        context.load_cert_chain(cert_file, key_file)
        async with httpx.AsyncClient(verify=context, trust_env=False, timeout=5) as c:
            assert (await c.get(f"{fake.url}/cert")).status_code == 200
        [seen] = fake.received
        assert seen.peer_certificate is not None
        assert ssl.DER_cert_to_PEM_cert(seen.peer_certificate).strip() == cert.strip()
    finally:
        await fake.aclose()


async def test_server_offering_both_serves_both(both: EchoFake, fakes: FakeProviders) -> None:
    context = ssl.create_default_context(cafile=str(fakes.ca_file))
    async with httpx.AsyncClient(http2=True, verify=context, trust_env=False, timeout=5) as c2:
        assert (await c2.post(f"{both.url}/two", content=b"2")).http_version == "HTTP/2"
    async with httpx.AsyncClient(verify=context, trust_env=False, timeout=5) as c1:
        assert (await c1.post(f"{both.url}/one", content=b"1")).http_version == "HTTP/1.1"
    assert [s.body for s in both.received] == [b"2", b"1"]


async def test_h2_only_server_still_refuses_http1(
    h2_only: EchoFake, client: httpx.AsyncClient, fakes: FakeProviders
) -> None:
    with pytest.raises(httpx.TransportError):
        await client.get(f"{h2_only.url}/x")
    reader, writer = await _raw(h2_only, str(fakes.ca_file), alpn=None)
    assert await reader.read() == b""
    writer.close()
    assert h2_only.received == []
    assert h2_only.made == []


def test_unknown_protocol_is_refused(fakes: FakeProviders) -> None:
    with pytest.raises(ValueError, match="spdy"):
        EchoFake(fakes.ca, ("spdy/3",))
