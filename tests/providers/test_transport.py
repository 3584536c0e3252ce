"""The libcurl HTTP/2 transport: pure helpers, then real sockets against the strict fakes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pushgate.fakes.apns import ApnsSigningKey
from pushgate.fakes.runner import FakeProviders
from pushgate.providers import transport as transport_module
from pushgate.providers.mpns import MpnsClient, build_headers
from pushgate.providers.notifications import MpnsNotification
from pushgate.providers.outcomes import Outcome
from pushgate.providers.retry_after import MAX_RETRY_AFTER, parse_retry_after
from pushgate.providers.transport import (
    CLOSED_ERROR,
    TIMEOUT_ERROR,
    ClientCert,
    Http2Transport,
    Request,
    find_system_ca_bundle,
    parse_header_lines,
)
from tests.providers import BUNDLE, PAYLOAD, apns_token

# -- pure parts --------------------------------------------------------------------------

NOW = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 7 ", 7.0, id="padded"),
        pytest.param("86400", MAX_RETRY_AFTER, id="capped"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Sun, 06 Nov 1994 08:50:07 GMT", 30.0, id="imf-fixdate"),
        pytest.param("Sunday, 06-Nov-94 08:50:07 GMT", 30.0, id="rfc850"),
        pytest.param("Sun Nov  6 08:50:07 1994", 30.0, id="asctime"),
        pytest.param("Sun, 06 Nov 1994 08:49:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param("Mon, 07 Nov 1994 08:49:37 GMT", MAX_RETRY_AFTER, id="date-capped"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_with_own_cap() -> None:
    assert parse_retry_after("600", cap=60) == 60


def test_header_lines_of_the_final_response_lower_cased() -> None:
    lines = [
        b"HTTP/2 100 \r\n",
        b"X-Early: 1\r\n",
        b"\r\n",
        b"HTTP/2 429 \r\n",
        b"Retry-After: 7\r\n",
        b"apns-id: 5e3d\r\n",
        b"\r\n",
    ]
    assert parse_header_lines(lines) == {"retry-after": "7", "apns-id": "5e3d"}


def test_system_ca_bundle_ignores_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = find_system_ca_bundle()
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    for name in ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR"):
        monkeypatch.setenv(name, str(bogus))
    assert find_system_ca_bundle() == before
    assert before is None or before != bogus


def test_transport_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        Http2Transport(max_connections_per_host=0)
    with pytest.raises(ValueError):
        Http2Transport(timeout=0)


async def test_close_without_use_and_twice() -> None:
    transport = Http2Transport()
    await transport.close()
    await transport.close()
    with pytest.raises(RuntimeError):
        await transport.request(Request("GET", "https://127.0.0.1:1/", ()))


async def test_empty_batch_starts_nothing() -> None:
    transport = Http2Transport()
    assert await transport.request_many([]) == []
    await transport.close()


async def test_a_submission_racing_the_wake_up_drain_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request_many between the thread's reading of the wake-up pipe and its clearing
    of the wake-pending flag must not leave the flag set with the pipe empty: every later
    submission would skip the write, and an idle thread would never see them (a 100,000
    fan-out on PostgreSQL stalled for good that way)."""
    transport = Http2Transport()
    real_os = transport_module.os
    raced = False

    class RacingOs:
        def __getattr__(self, name: str) -> object:
            return getattr(real_os, name)

        @staticmethod
        def read(fd: int, n: int) -> bytes:
            nonlocal raced
            if fd == transport._wake_r and not raced:
                raced = True
                transport._wake()  # the asyncio thread submitting at the worst moment
            return real_os.read(fd, n)

    monkeypatch.setattr(transport_module, "os", RacingOs())
    refused = Request("GET", "https://127.0.0.1:1/", ())  # answered at once: status 0
    try:
        first = await asyncio.wait_for(transport.request(refused), 10)
        assert raced and first.status == 0
        second = await asyncio.wait_for(transport.request(refused), 10)  # timed out here
        assert second.status == 0 and second.error != CLOSED_ERROR
    finally:
        await asyncio.wait_for(transport.close(), 10)


# -- over real sockets (fixtures fakes, key and transport: conftest.py) ------------------


def certificate(fakes: FakeProviders, bundle_id: str = BUNDLE) -> ClientCert:
    cert_pem, key_pem = fakes.apns.register_certificate(bundle_id=bundle_id)
    return ClientCert(cert_pem.encode(), key_pem.encode())


def push(
    fakes: FakeProviders,
    token: str | None = None,
    *,
    jwt: str | None = None,
    cert: ClientCert | None = None,
    topic: str = BUNDLE,
    capture_headers: bool = False,
    pool: str = "",
) -> Request:
    headers = [f"apns-topic: {topic}", "apns-push-type: alert", "content-type: application/json"]
    if jwt is not None:
        headers.insert(0, f"authorization: bearer {jwt}")
    return Request(
        "POST",
        f"{fakes.apns.url}/3/device/{token or apns_token()}",
        headers,
        PAYLOAD,
        client_cert=cert,
        pool=pool,
        capture_headers=capture_headers,
    )


async def test_responses_come_back_in_request_order(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    jwt = key.token()
    tokens = [apns_token() for _ in range(30)]
    for token in tokens[::3]:
        fakes.apns.set_token_state(token, "unregistered", timestamp_ms=1234)
    responses = await transport.request_many([push(fakes, t, jwt=jwt) for t in tokens])
    assert [r.status for r in responses] == [410 if i % 3 == 0 else 200 for i in range(30)], [
        r.error for r in responses if r.error
    ]
    assert responses[0].body == b'{"reason":"Unregistered","timestamp":1234}'
    assert responses[1].body == b"" and responses[1].error is None
    assert all(r.elapsed > 0 for r in responses)


async def test_headers_only_when_asked_for(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    jwt = key.token()
    plain, captured = await transport.request_many(
        [push(fakes, jwt=jwt), push(fakes, jwt=jwt, capture_headers=True)]
    )
    assert plain.headers == {}
    assert len(captured.headers["apns-id"]) == 36
    # the handle that captured goes back to not capturing
    again = await transport.request_many([push(fakes, jwt=jwt) for _ in range(5)])
    assert all(r.headers == {} for r in again)


@pytest.mark.parametrize("capture_headers", [False, True])
async def test_retry_after_read_with_or_without_headers(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey, capture_headers: bool
) -> None:
    fakes.apns.script(status=429, reason="TooManyRequests", retry_after=7)
    response = await transport.request(
        push(fakes, jwt=key.token(), capture_headers=capture_headers)
    )
    assert (response.status, response.retry_after) == (429, 7.0)
    ok = await transport.request(push(fakes, jwt=key.token()))
    assert (ok.status, ok.retry_after) == (200, None)


async def test_trust_comes_from_ca_file_not_the_environment(
    fakes: FakeProviders, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Environment variables naming the fake CA must not make an unconfigured transport
    # trust it, and ones naming garbage must not break a configured one.
    for name in ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, str(fakes.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(fakes.ca_file.parent))
    cert = certificate(fakes)
    unconfigured = Http2Transport()
    try:
        refused = await unconfigured.request(push(fakes, cert=cert))
    finally:
        await unconfigured.close()
    assert refused.status == 0
    assert refused.error is not None and "certificate" in refused.error.lower()

    bogus = tmp_path / "bogus.pem"
    bogus.write_text("garbage\n")
    for name in ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, str(bogus))
    configured = Http2Transport(ca_file=fakes.ca_file)
    try:
        ok = await configured.request(push(fakes, cert=cert))
    finally:
        await configured.close()
    assert ok.status == 200


async def test_connections_are_never_shared_across_client_certificates(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    first = certificate(fakes, "com.example.first")
    second = certificate(fakes, "com.example.second")
    jwt = key.token()
    requests = []
    for _ in range(40):
        requests.append(push(fakes, cert=first, topic="com.example.first"))
        requests.append(push(fakes, cert=second, topic="com.example.second"))
        requests.append(push(fakes, jwt=jwt))
    responses = await transport.request_many(requests)
    assert [r.status for r in responses] == [200] * len(requests)
    identities: dict[int, set[str | None]] = {}
    for received in fakes.apns.received:
        identity = received.certificate_uid or received.key_id
        identities.setdefault(received.connection_id, set()).add(identity)
    assert all(len(seen) == 1 for seen in identities.values()), identities
    assert set().union(*identities.values()) == {
        "com.example.first",
        "com.example.second",
        key.key_id,
    }


async def test_pools_partition_connections(fakes: FakeProviders, transport: Http2Transport) -> None:
    # Two APNs keys of two teams: APNs binds a connection to the first team it sees.
    one = fakes.apns.register_key("TEAMONE123", [BUNDLE])
    two = fakes.apns.register_key("TEAMTWO123", [BUNDLE])
    requests = []
    for _ in range(20):
        requests.append(push(fakes, jwt=one.token(), pool="one"))
        requests.append(push(fakes, jwt=two.token(), pool="two"))
    responses = await transport.request_many(requests)
    assert {r.status for r in responses} == {200}
    teams: dict[int, set[str | None]] = {}
    for received in fakes.apns.received:
        teams.setdefault(received.connection_id, set()).add(received.team_id)
    assert all(len(seen) == 1 for seen in teams.values())


MPNS_TOAST = (
    b'<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
    b"<wp:Toast><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>"
)


async def test_http1_partitions_get_the_connections_they_ask_for(
    fakes: FakeProviders, transport: Http2Transport
) -> None:
    # MPNS speaks HTTP/1.1: one request at a time per connection. The fake holds each
    # request a while, so 32 sends in flight need 32 connections; the transport's 4 per
    # host (right for HTTP/2) would queue them four at a time.
    mpns = fakes.mpns
    channel = mpns.create_channel()
    mpns.script(200, times=64, delay=0.2)
    note = MpnsNotification(MPNS_TOAST, "toast", 2)
    results = await MpnsClient(transport, [mpns.allowed_host]).send_many([(channel, note)] * 32)
    assert {r.outcome for r in results} == {Outcome.SUCCESS}
    assert len({r.connection_id for r in mpns.received}) > 4
    # The same requests in a partition that asks for nothing keep to the 4.
    headers = build_headers(note)
    assert isinstance(headers, tuple)
    plain = [Request("POST", channel, headers, note.body, pool="plain") for _ in range(32)]
    assert {r.status for r in await transport.request_many(plain)} == {200}
    assert len({r.connection_id for r in mpns.received[32:]}) <= 4


async def test_cold_start_at_one_stream_then_500_concurrent(
    fakes: FakeProviders, key: ApnsSigningKey
) -> None:
    # Token connections start at SETTINGS_MAX_CONCURRENT_STREAMS 1 and are raised after
    # the first valid JWT; streams sent before the SETTINGS arrived are refused and
    # libcurl replays them.
    transport = Http2Transport(ca_file=fakes.ca_file, max_connections_per_host=1)
    try:
        jwt = key.token()
        responses = await transport.request_many([push(fakes, jwt=jwt) for _ in range(500)])
    finally:
        await transport.close()
    assert Counter(r.status for r in responses) == {200: 500}
    assert len(fakes.apns.delivered) == 500


async def test_libcurl_keeps_within_the_servers_stream_limit(
    fakes: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once the server's SETTINGS is in, libcurl never opens more streams than it allows:
    # in strict mode one stream too many would close the connection with GOAWAY.
    monkeypatch.setattr(fakes.apns, "max_concurrent_streams", 3)
    cert = certificate(fakes)
    transport = Http2Transport(ca_file=fakes.ca_file, max_connections_per_host=1)
    try:
        assert (await transport.request(push(fakes, cert=cert))).status == 200
        monkeypatch.setattr(fakes.apns, "goaway_on_excess_streams", True)
        responses = await transport.request_many([push(fakes, cert=cert) for _ in range(200)])
    finally:
        await transport.close()
    assert Counter(r.status for r in responses) == {200: 200}
    assert len({p.connection_id for p in fakes.apns.received}) == 1


async def test_raised_limit_is_used_after_the_first_success(
    fakes: FakeProviders, key: ApnsSigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = Http2Transport(ca_file=fakes.ca_file, max_connections_per_host=1)
    try:
        jwt = key.token()
        assert (await transport.request(push(fakes, jwt=jwt))).status == 200
        monkeypatch.setattr(fakes.apns, "goaway_on_excess_streams", True)
        fakes.apns.script(status=None, delay=0.2, times=None)  # slow: streams pile up
        responses = await transport.request_many([push(fakes, jwt=jwt) for _ in range(300)])
    finally:
        await transport.close()
    assert Counter(r.status for r in responses) == {200: 300}
    assert len({p.connection_id for p in fakes.apns.received}) == 1


async def test_dropped_connection_is_status_zero_then_a_new_connection(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    jwt = key.token()
    assert (await transport.request(push(fakes, jwt=jwt))).status == 200
    fakes.apns.script(status=None, drop_connection=True, times=1)
    dropped = await transport.request(push(fakes, jwt=jwt))
    # The server dropped the connection without answering (sec. 0.2). libcurl replays
    # such a request on a new connection when it notices the drop before sending, which
    # depends on timing; otherwise the send is reported as no answer (status 0, the
    # engine's retry) and never as an answer.
    assert dropped.status == 200 or (dropped.status == 0 and dropped.error), dropped
    # libcurl checks a pooled connection for life before reusing it only after a second
    # idle; sooner, the reset of the dropped one can race the next send (error 55/56).
    await asyncio.sleep(1.2)
    after = await transport.request(push(fakes, jwt=jwt))
    assert after.status == 200, after
    received = fakes.apns.received
    assert received[0].connection_id != received[-1].connection_id  # a new connection


async def test_goaway_after_an_answer_moves_on_to_a_new_connection(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    jwt = key.token()
    fakes.apns.script(status=503, reason="Shutdown", goaway=True)
    shutdown = await transport.request(push(fakes, jwt=jwt))
    assert (shutdown.status, shutdown.body) == (503, b'{"reason":"Shutdown"}')
    # An idle connection's GOAWAY waits in its socket until libcurl checks it before
    # reusing it, which it skips within a second of the connection's last use.
    await asyncio.sleep(1.2)
    after = await transport.request_many([push(fakes, jwt=jwt) for _ in range(10)])
    assert {r.status for r in after} == {200}, [r.error for r in after]
    first, *rest = fakes.apns.received
    assert first.connection_id not in {r.connection_id for r in rest}


async def test_reuse_right_after_goaway_fails_fast_and_recovers(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    jwt = key.token()
    fakes.apns.script(status=503, reason="Shutdown", goaway=True)
    assert (await transport.request(push(fakes, jwt=jwt))).status == 503
    await asyncio.sleep(0.1)
    soon = await transport.request_many([push(fakes, jwt=jwt) for _ in range(10)])
    assert {r.status for r in soon} <= {0, 200}
    assert all(r.error for r in soon if r.status == 0)
    later = await transport.request_many([push(fakes, jwt=jwt) for _ in range(10)])
    assert {r.status for r in later} == {200}


async def test_timeout_is_status_zero(fakes: FakeProviders, key: ApnsSigningKey) -> None:
    transport = Http2Transport(ca_file=fakes.ca_file, timeout=0.3)
    try:
        fakes.apns.script(status=None, delay=2.0)
        response = await transport.request(push(fakes, jwt=key.token()))
    finally:
        await transport.close()
    assert response.status == 0
    assert response.error is not None and "curl error 28" in response.error


async def test_unsendable_request_is_answered_not_fatal(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    bad = Request("POST", f"{fakes.apns.url}/3/device/{apns_token()}", ["x-note: caf\u00e9"], b"{}")
    good = push(fakes, jwt=key.token())
    broken, ok = await transport.request_many([bad, good])
    assert broken.status == 0 and broken.error and broken.error.startswith("invalid request")
    assert ok.status == 200


async def test_close_answers_what_is_in_flight(fakes: FakeProviders, key: ApnsSigningKey) -> None:
    transport = Http2Transport(ca_file=fakes.ca_file)
    fakes.apns.script(status=None, delay=5.0)
    pending = asyncio.ensure_future(transport.request(push(fakes, jwt=key.token())))
    await asyncio.sleep(0.3)
    await transport.close()
    response = await asyncio.wait_for(pending, 2)
    assert (response.status, response.error) == (0, CLOSED_ERROR)
    with pytest.raises(RuntimeError):
        await transport.request(push(fakes, jwt=key.token()))


async def test_cancelled_caller_leaves_the_transport_working(
    fakes: FakeProviders, transport: Http2Transport, key: ApnsSigningKey
) -> None:
    fakes.apns.script(status=None, delay=0.5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(transport.request(push(fakes, jwt=key.token())), 0.1)
    assert (await transport.request(push(fakes, jwt=key.token()))).status == 200


async def test_thread_and_files_are_gone_after_close(fakes: FakeProviders) -> None:
    transport = Http2Transport(ca_file=fakes.ca_file)
    cert = certificate(fakes)
    assert (await transport.request(push(fakes, cert=cert))).status == 200
    combined = transport._cainfo
    assert combined is not None and exists(combined)
    await transport.close()
    assert transport._thread is not None and not transport._thread.is_alive()
    assert not exists(combined)


def exists(path: str) -> bool:
    return Path(path).exists()


async def test_idle_partitions_and_spare_handles_are_swept(
    fakes: FakeProviders, transport: Http2Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = certificate(fakes)
    responses = await transport.request_many([push(fakes, cert=cert, pool="a") for _ in range(100)])
    assert {r.status for r in responses} == {200}
    assert len(transport._pools[("a", cert)].free) == 100
    await transport.request(push(fakes, cert=cert, pool="b"))
    monkeypatch.setattr(transport_module, "_SWEEP_INTERVAL_S", 0)
    await transport.request(push(fakes, cert=cert, pool="b"))  # sweeps first
    assert len(transport._pools[("a", cert)].free) == 64
    monkeypatch.setattr(transport_module, "_MAX_IDLE_CONNECTION_S", 0)
    await asyncio.sleep(0.01)
    assert (await transport.request(push(fakes, cert=cert, pool="b"))).status == 200
    assert ("a", cert) not in transport._pools


# -- per-request options, against a plain HTTP/1.1 server (the subscriber sender's) ------

_REALM = "hooks"
_NONCE = "dcd98b7102dd2f0e8b11d0f600bfb0c093"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_ok(header: str, user: str, password: str) -> bool:
    """RFC 7616's MD5 response with qop=auth, computed here."""
    pairs = re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header.removeprefix("Digest "))
    fields = {name: quoted or bare for name, quoted, bare in pairs}
    if fields.get("username") != user or fields.get("nonce") != _NONCE:
        return False
    ha1 = _md5(f"{user}:{_REALM}:{password}")
    ha2 = _md5(f"POST:{fields.get('uri', '')}")
    expected = _md5(f"{ha1}:{_NONCE}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
    return fields.get("response") == expected


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class PlainServer:
    """A threaded HTTP/1.1 server with keep-alive: ``/slow`` answers after a second,
    ``/big`` sends 1000 bytes with a ``Content-Length``, ``/chunked`` 1000 bytes chunked,
    ``/digest`` wants Digest and ``/basic`` Basic credentials (user ``hook``, password
    ``pa:ss``); anything else answers 200 ``ok``."""

    USER, PASSWORD = "hook", "pa:ss"

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, answer, chunked = self._answer(self.path, headers)
                server.seen.append(Seen(self.path, headers, body, status))
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                if chunked:
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(answer), 100):
                        piece = answer[start : start + 100]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            def _answer(
                self, path: str, headers: dict[str, str]
            ) -> tuple[int, dict[str, str], bytes, bool]:
                given = headers.get("authorization", "")
                if path == "/slow":
                    time.sleep(1.0)
                elif path == "/big":
                    return 200, {}, b"x" * 1000, False
                elif path == "/chunked":
                    return 500, {}, b"y" * 1000, True
                elif path == "/digest" and not (
                    given.startswith("Digest ")
                    and _digest_ok(given, PlainServer.USER, PlainServer.PASSWORD)
                ):
                    challenge = f'Digest realm="{_REALM}", qop="auth", nonce="{_NONCE}"'
                    return 401, {"www-authenticate": challenge}, b"", False
                elif path == "/basic":
                    expected = base64.b64encode(b"hook:pa:ss").decode()
                    if given != f"Basic {expected}":
                        return 401, {"www-authenticate": f'Basic realm="{_REALM}"'}, b"", False
                return 200, {}, b"ok", False

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def plain() -> Iterator[PlainServer]:
    server = PlainServer()
    yield server
    server.close()


@pytest.fixture
async def one_handle() -> AsyncIterator[Http2Transport]:
    """A transport whose requests, sent one at a time, reuse one easy handle."""
    transport = Http2Transport(timeout=5.0)
    yield transport
    await transport.close()


def post(url: str, **options: Any) -> Request:
    return Request("POST", url, ["content-type: text/plain"], b"hello", pool="plain", **options)


async def test_connect_to_pins_the_address_and_is_not_kept(
    plain: PlainServer, one_handle: Http2Transport
) -> None:
    name = "pinned.invalid"  # never resolves: only CONNECT_TO can reach it
    url = f"http://{name}:{plain.port}/ok"
    pinned = await one_handle.request(
        post(url, connect_to=f"{name}:{plain.port}:127.0.0.1:{plain.port}")
    )
    assert (pinned.status, pinned.body) == (200, b"ok")
    assert plain.seen[-1].headers["host"] == f"{name}:{plain.port}"
    (handle,) = one_handle._pools[("plain", None)].slots.values()
    unpinned = await one_handle.request(post(url))
    assert unpinned.status == 0 and unpinned.error is not None
    assert list(one_handle._pools[("plain", None)].slots.values()) == [handle]
    assert len(plain.seen) == 1


async def test_timeout_ms_is_for_one_request(
    plain: PlainServer, one_handle: Http2Transport
) -> None:
    short = await one_handle.request(post(f"{plain.url}/slow", timeout_ms=200))
    assert short.status == 0 and short.error is not None
    assert short.error.startswith(TIMEOUT_ERROR) and short.elapsed < 0.9
    default = await one_handle.request(post(f"{plain.url}/slow"))  # the transport's 5 s
    assert (default.status, default.error) == (200, None)
    assert len(one_handle._pools[("plain", None)].slots) == 1


async def test_max_body_keeps_the_status_and_marks_the_cut(
    plain: PlainServer, one_handle: Http2Transport
) -> None:
    announced = await one_handle.request(post(f"{plain.url}/big", max_body=256))
    # Content-Length says 1000: libcurl stops at the headers.
    assert (announced.status, announced.error, announced.truncated) == (200, None, True)
    assert announced.body == b""
    chunked = await one_handle.request(post(f"{plain.url}/chunked", max_body=256))
    assert (chunked.status, chunked.error, chunked.truncated) == (500, None, True)
    assert chunked.body == b"y" * 256
    small = await one_handle.request(post(f"{plain.url}/ok", max_body=256))
    assert (small.status, small.body, small.truncated) == (200, b"ok", False)
    whole = await one_handle.request(post(f"{plain.url}/big"))
    assert (whole.status, len(whole.body), whole.truncated) == (200, 1000, False)
    # An error that is not the limit's stays an error.
    limited_timeout = await one_handle.request(
        post(f"{plain.url}/slow", max_body=256, timeout_ms=200)
    )
    assert limited_timeout.status == 0 and not limited_timeout.truncated
    assert len(one_handle._pools[("plain", None)].slots) == 1


async def test_basic_is_sent_with_the_request(
    plain: PlainServer, one_handle: Http2Transport
) -> None:
    response = await one_handle.request(
        post(f"{plain.url}/basic", userpwd=(PlainServer.USER, PlainServer.PASSWORD))
    )
    assert response.status == 200
    assert [s.status for s in plain.seen] == [200]


async def test_digest_answers_the_challenge(plain: PlainServer, one_handle: Http2Transport) -> None:
    credentials = (PlainServer.USER, PlainServer.PASSWORD)
    response = await one_handle.request(
        post(f"{plain.url}/digest", userpwd=credentials, digest=True)
    )
    assert (response.status, response.body) == (200, b"ok")
    challenge, answered = plain.seen
    assert challenge.status == 401 and "authorization" not in challenge.headers
    assert answered.status == 200 and answered.body == b"hello"
    wrong = await one_handle.request(
        post(f"{plain.url}/digest", userpwd=(PlainServer.USER, "nope"), digest=True)
    )
    assert wrong.status == 401


async def test_a_reused_handle_carries_no_option_of_its_last_request(
    plain: PlainServer, one_handle: Http2Transport
) -> None:
    name = "pinned.invalid"
    await one_handle.request(
        post(
            f"{plain.url}/digest",
            userpwd=(PlainServer.USER, PlainServer.PASSWORD),
            digest=True,
            timeout_ms=3000,
            max_body=1,
            connect_to=f"{name}:{plain.port}:127.0.0.1:{plain.port}",
        )
    )
    plain.seen.clear()
    slow = await one_handle.request(post(f"{plain.url}/slow"))  # not 3 s: the 5 s default
    big = await one_handle.request(post(f"{plain.url}/big"))
    basic = await one_handle.request(post(f"{plain.url}/basic"))
    digest = await one_handle.request(post(f"{plain.url}/digest"))
    assert [r.status for r in (slow, big, basic, digest)] == [200, 200, 401, 401]
    assert not big.truncated and len(big.body) == 1000
    assert all("authorization" not in s.headers for s in plain.seen)
    handle = one_handle._pools[("plain", None)].free[0]
    assert not (handle.extra or handle.pinned or handle.timed or handle.limited or handle.userpwd)
    assert len(one_handle._pools[("plain", None)].slots) == 1
