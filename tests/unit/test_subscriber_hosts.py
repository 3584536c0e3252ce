"""The subscriber-host guard for HTTP/S subscriptions (subscriber_hosts.py): refusals,
allow and deny lists, send-time resolution, and pinned requests over a real TLS socket."""

from __future__ import annotations

import asyncio
import io
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pycurl  # type: ignore[import-untyped]
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pushgate import subscriber_hosts
from pushgate.subscriber_hosts import (
    HostRefused,
    ResolvedTarget,
    SubscriberHosts,
    curl_connect_to,
    is_public,
)

OPEN = SubscriberHosts()


# Refusals with the default settings (empty allow and deny lists)

NOT_PUBLIC = [
    pytest.param("http://169.254.169.254/latest/meta-data/", id="ec2-metadata-v4"),
    pytest.param("http://[fd00:ec2::254]/latest/meta-data/", id="ec2-metadata-v6"),
    pytest.param("http://127.0.0.1:8080/", id="loopback-v4"),
    pytest.param("http://127.8.9.10/", id="loopback-v4-range"),
    pytest.param("http://[::1]/", id="loopback-v6"),
    pytest.param("http://10.0.0.1/", id="rfc1918-10"),
    pytest.param("http://172.16.5.4/", id="rfc1918-172"),
    pytest.param("https://192.168.1.1/", id="rfc1918-192"),
    pytest.param("http://169.254.1.1/", id="link-local-v4"),
    pytest.param("http://[fe80::1]/", id="link-local-v6"),
    pytest.param("http://[fd12:3456::1]/", id="unique-local-v6"),
    pytest.param("http://[::ffff:127.0.0.1]/", id="v4-mapped-loopback"),
    pytest.param("http://[::ffff:7f00:1]/", id="v4-mapped-loopback-hex"),
    pytest.param("http://[::ffff:169.254.169.254]/", id="v4-mapped-metadata"),
    pytest.param("http://[64:ff9b::a9fe:a9fe]/", id="nat64-metadata"),
    pytest.param("http://[2002:a9fe:a9fe::1]/", id="6to4-metadata"),
    pytest.param("http://[::127.0.0.1]/", id="v4-compatible"),
    pytest.param("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", id="teredo"),
    pytest.param("http://0.0.0.0/", id="this-network"),
    pytest.param("http://[::]/", id="unspecified-v6"),
    pytest.param("http://100.64.0.1/", id="shared-cgnat"),
    pytest.param("http://224.0.0.1/", id="multicast-v4"),
    pytest.param("http://[ff02::1]/", id="multicast-v6"),
    pytest.param("http://255.255.255.255/", id="broadcast"),
    pytest.param("http://240.0.0.1/", id="reserved"),
    pytest.param("http://198.18.0.1/", id="benchmarking"),
    pytest.param("http://127.0.0.1./", id="trailing-dot"),
    pytest.param("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", id="fullwidth-digits"),
    pytest.param("http://127\u30020\u30020\u30021/", id="ideographic-full-stops"),
]


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_non_public_addresses_are_refused(url: str) -> None:
    reason = OPEN.refusal(url)
    assert reason is not None and reason.endswith("is not public"), reason


# What urlsplit and ipaddress make of the resolver's other IPv4 spellings: urlsplit keeps
# the host as written and ipaddress rejects it, but getaddrinfo (inet_aton) reads
# 127.0.0.1 in each. They must not pass as host names.
ODD_SPELLINGS = [
    pytest.param("http://2130706433/", id="decimal"),
    pytest.param("http://0177.0.0.1/", id="octal"),
    pytest.param("http://0x7f.0.0.1/", id="hex-octet"),
    pytest.param("http://0x7f000001/", id="hex"),
    pytest.param("http://127.1/", id="short"),
    pytest.param("http://017700000001/", id="octal-whole"),
    pytest.param("http://1.2.3.4.5/", id="five-parts"),
    pytest.param("http://example.0x/", id="hex-tld"),
]


@pytest.mark.parametrize("url", ODD_SPELLINGS)
def test_ipv4_spellings_other_than_dotted_quad_are_refused(url: str) -> None:
    assert socket.inet_aton("2130706433") == socket.inet_aton("127.0.0.1")
    assert OPEN.refusal(url) == "not a dotted-quad IPv4 address"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param("http://user:secret@example.com/", "https only", id="userinfo-http"),
        pytest.param("https://@example.com/", "credentials", id="empty-userinfo"),
        pytest.param("https://a:b@c@example.com/", "credentials", id="two-at-signs"),
        pytest.param("https://a b:c@example.com/", "credentials", id="space-in-user"),
        pytest.param("https://a:%zz@example.com/", "credentials", id="bad-escape"),
        pytest.param("http://example.com@127.0.0.1/", "credentials", id="userinfo-confusion"),
        pytest.param("http://example.com\\@127.0.0.1/", "credentials", id="backslash-confusion"),
        pytest.param("ftp://example.com/", "not an http or https URL", id="ftp"),
        pytest.param("file:///etc/passwd", "not an http or https URL", id="file"),
        pytest.param("gopher://127.0.0.1:70/_x", "not an http or https URL", id="gopher"),
        pytest.param("example.com/hook", "not an http or https URL", id="no-scheme"),
        pytest.param("//example.com/hook", "not an http or https URL", id="scheme-relative"),
        pytest.param("http:///hook", "the URL has no host", id="no-host"),
        pytest.param("http://example.com:99999/", "not a valid URL", id="port-range"),
        pytest.param("http://example.com:http/", "not a valid URL", id="port-name"),
        pytest.param("http://[::1/", "not a valid URL", id="open-bracket"),
        pytest.param("http://example.com:0/", "port 0", id="port-0"),
        pytest.param("http://a b.example/", "not a valid host name", id="space"),
        pytest.param("http://a..example/", "not a valid host name", id="empty-label"),
        pytest.param("http://a%00.example/", "not a valid host name", id="percent"),
        pytest.param(f"http://{'a' * 64}.example/", "not a valid host name", id="long-label"),
        pytest.param("http://[fe80::1%25eth0]/", "zone identifiers", id="zone-id"),
        pytest.param("http://[v1.example]/", "not a valid IPv6 address", id="ipvfuture"),
        pytest.param("http://[127.0.0.1]/", "not a valid", id="bracketed-v4"),
    ],
)
def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    refused = OPEN.refusal(url)
    assert refused is not None and reason in refused, refused


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://hooks.example.com:8080/sns?topic=a",
        "HTTPS://Example.COM./hook",
        "https://b\u00fccher.example/",
        "https://8.8.8.8/",
        "https://[2001:4860:4860::8888]:8443/",
        "http://[::ffff:8.8.8.8]/",
        "https://under_score.example/",
    ],
)
def test_public_hosts_pass(url: str) -> None:
    assert OPEN.refusal(url) is None


def test_is_public_judges_embedded_ipv4_addresses() -> None:
    from ipaddress import ip_address

    assert is_public(ip_address("64:ff9b::808:808"))  # NAT64 of 8.8.8.8
    assert is_public(ip_address("2002:808:808::1"))  # 6to4 of 8.8.8.8
    assert not is_public(ip_address("64:ff9b::a00:1"))  # NAT64 of 10.0.0.1
    assert not is_public(ip_address("64:ff9b:1::a00:1"))  # local-use NAT64


# Allow and deny lists


def check(hosts: SubscriberHosts, passing: Sequence[str], refused: dict[str, str]) -> None:
    for url in passing:
        assert hosts.refusal(url) is None, url
    for url, reason in refused.items():
        got = hosts.refusal(url)
        assert got is not None and reason in got, (url, got)


def test_allowed_names_match_exactly_on_any_port() -> None:
    hosts = SubscriberHosts.from_settings(" Hooks.Example.com , ,", "")
    assert hosts.allowed == ("hooks.example.com",)
    check(
        hosts,
        [
            "https://hooks.example.com/",
            "http://hooks.example.com:8080/",
            "http://HOOKS.example.com./",
        ],
        {
            "https://other.example.com/": "host other.example.com is not on the allow list",
            "https://example.com/": "not on the allow list",
            "https://8.8.8.8/": "address 8.8.8.8 is not on the allow list",
        },
    )


def test_allowed_name_with_a_port_matches_that_port_only() -> None:
    check(
        SubscriberHosts.from_settings("hooks.example.com:8443", ""),
        ["https://hooks.example.com:8443/", "http://hooks.example.com:8443/x"],
        {"https://hooks.example.com/": "not on the allow list"},
    )


def test_wildcards_match_subdomains_not_the_domain() -> None:
    check(
        SubscriberHosts.from_settings("*.example.com", ""),
        ["https://a.example.com/", "https://a.b.example.com/"],
        {
            "https://example.com/": "not on the allow list",
            "https://evilexample.com/": "not on the allow list",
            "https://example.com.evil.net/": "not on the allow list",
        },
    )


def test_allowed_addresses_and_ranges_admit_non_public_addresses() -> None:
    hosts = SubscriberHosts.from_settings(
        "127.0.0.1, 10.0.0.0/8, [fd00:ec2::254]:8080, 192.168.1.1:8080, fd12::/16", ""
    )
    check(
        hosts,
        [
            "http://127.0.0.1:9000/",
            "http://10.1.2.3/",
            "http://[::ffff:10.1.2.3]/",
            "http://[fd00:ec2::254]:8080/",
            "http://192.168.1.1:8080/",
            "http://[fd12::1]/",
            "https://example.com/",  # a name: its addresses decide, at send time
        ],
        {
            "http://127.0.0.2/": "address 127.0.0.2 is not on the allow list",
            "http://[fd00:ec2::254]/": "not on the allow list",
            "http://192.168.1.1/": "not on the allow list",
            "http://169.254.169.254/": "not on the allow list",
        },
    )


def test_star_allows_any_host_but_no_non_public_address() -> None:
    check(
        SubscriberHosts.from_settings("*, 10.0.0.0/8", ""),
        ["https://example.com/", "https://8.8.8.8/", "http://10.0.0.1/"],
        {
            "http://127.0.0.1/": "address 127.0.0.1 is not public",
            "http://169.254.169.254/": "is not public",
        },
    )
    check(
        SubscriberHosts.from_settings("*:443", ""),
        ["https://example.com/"],
        {"http://example.com/": "not on the allow list"},
    )


def test_denied_hosts_are_refused_on_every_port() -> None:
    check(
        SubscriberHosts.from_settings("", "evil.example.com, *.corp.example, 8.8.8.0/24"),
        ["https://example.com/", "https://corp.example/", "https://9.9.9.9/"],
        {
            "https://evil.example.com/": "host evil.example.com is on the deny list",
            "http://EVIL.example.com.:8080/": "on the deny list",
            "https://a.b.corp.example/": "on the deny list",
            "https://8.8.8.8/": "address 8.8.8.8 is on the deny list",
            "https://[::ffff:8.8.8.8]/": "on the deny list",
            "https://[64:ff9b::808:808]/": "on the deny list",
        },
    )


def test_deny_wins_over_allow() -> None:
    check(
        SubscriberHosts.from_settings(
            "10.0.0.0/8, hooks.example.com", "10.0.0.5, hooks.example.com:8080"
        ),
        ["http://10.0.0.6/", "https://hooks.example.com/"],
        {
            "http://10.0.0.5/": "address 10.0.0.5 is on the deny list",
            "http://hooks.example.com:8080/": "on the deny list",
        },
    )


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.0/33",
        "hooks.example.com:http",
        "hooks.example.com:0",
        "*.10.0.0.1",
        "[::1",
        "[::1]x",
        "a b",
        "0x7f.1",
        "2130706433",
        "::1/200",
    ],
)
def test_malformed_entries_stop_start_up(entry: str) -> None:
    with pytest.raises(ValueError):
        SubscriberHosts.from_settings(entry, "")
    with pytest.raises(ValueError):
        SubscriberHosts.from_settings("", entry)


# Send-time resolution


@pytest.fixture
async def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A stand-in for DNS: the running loop's getaddrinfo answers from this dict."""
    table: dict[str, list[str]] = {}
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return table


# The system resolver's first answer for localhost: 127.0.0.1, or ::1 on some machines.
LOCALHOST = str(socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0][4][0])
ADDRESS = f"[{LOCALHOST}]" if ":" in LOCALHOST else LOCALHOST  # as in a URL


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    for hosts in (OPEN, SubscriberHosts.from_settings("*", "")):
        with pytest.raises(HostRefused, match="is not public"):
            await hosts.resolve("http://localhost:8080/hook")  # the real resolver


async def test_a_name_resolving_to_loopback_passes_when_listed() -> None:
    for allowed in ("localhost", "localhost:8080", "127.0.0.0/8, ::1"):
        hosts = SubscriberHosts.from_settings(allowed, "")
        target = await hosts.resolve("http://LOCALHOST.:8080/hook")
        assert target == ResolvedTarget("http://LOCALHOST.:8080/hook", "localhost", 8080, LOCALHOST)


def test_localhost_names_are_loopback_already_at_subscribe() -> None:
    assert OPEN.refusal("http://localhost/") == "address 127.0.0.1 is not public"
    assert OPEN.refusal("http://api.localhost:8080/") == "address 127.0.0.1 is not public"
    assert SubscriberHosts.from_settings("localhost", "").refusal("http://localhost/") is None
    assert SubscriberHosts.from_settings("127.0.0.1", "").refusal("http://localhost/") is None


async def test_a_public_name_resolves_to_its_first_address(answers: dict[str, list[str]]) -> None:
    answers["hooks.example.com"] = ["2606:2800:220:1::1", "93.184.216.34"]
    target = await OPEN.resolve("https://hooks.example.com/sns")
    assert target == ResolvedTarget(
        "https://hooks.example.com/sns", "hooks.example.com", 443, "2606:2800:220:1::1"
    )


async def test_any_non_public_address_refuses_the_name(answers: dict[str, list[str]]) -> None:
    answers["rebind.example.com"] = ["93.184.216.34", "169.254.169.254"]
    answers["mapped.example.com"] = ["::ffff:127.0.0.1"]
    with pytest.raises(HostRefused, match=re.escape("address 169.254.169.254 is not public")):
        await OPEN.resolve("https://rebind.example.com/")
    with pytest.raises(HostRefused, match="not public"):
        await OPEN.resolve("https://mapped.example.com/")
    hosts = SubscriberHosts.from_settings("*, 169.254.169.254", "")
    assert (await hosts.resolve("https://rebind.example.com/")).address == "93.184.216.34"


async def test_ranges_on_the_allow_list_admit_names_by_their_addresses(
    answers: dict[str, list[str]],
) -> None:
    answers["internal.example.com"] = ["10.1.2.3", "10.1.2.4"]
    answers["split.example.com"] = ["10.1.2.3", "10.9.9.9"]
    answers["public.example.com"] = ["93.184.216.34"]
    hosts = SubscriberHosts.from_settings("10.1.0.0/16, hooks.example.com", "")
    assert hosts.refusal("https://internal.example.com/") is None  # only DNS can tell
    assert (await hosts.resolve("https://internal.example.com/")).address == "10.1.2.3"
    with pytest.raises(HostRefused, match=re.escape("address 10.9.9.9 is not on the allow list")):
        await hosts.resolve("https://split.example.com/")
    with pytest.raises(HostRefused, match="not on the allow list"):
        await hosts.resolve("https://public.example.com/")
    names_only = SubscriberHosts.from_settings("hooks.example.com", "")
    assert names_only.refusal("https://internal.example.com/") == (
        "host internal.example.com is not on the allow list"
    )


async def test_denied_ranges_apply_to_resolved_addresses(answers: dict[str, list[str]]) -> None:
    answers["cdn.example.com"] = ["93.184.216.34"]
    hosts = SubscriberHosts.from_settings("", "93.184.216.0/24")
    with pytest.raises(HostRefused, match=re.escape("address 93.184.216.34 is on the deny list")):
        await hosts.resolve("https://cdn.example.com/")


async def test_resolve_refuses_before_any_lookup(answers: dict[str, list[str]]) -> None:
    answers["2130706433"] = ["93.184.216.34"]
    for url in (
        "http://2130706433/",
        "http://0177.0.0.1/",
        "ftp://example.com/",
        "http://u@x.example/",
    ):
        with pytest.raises(HostRefused):
            await OPEN.resolve(url)
    with pytest.raises(HostRefused, match="on the allow list"):
        await SubscriberHosts.from_settings("a.example", "").resolve("https://b.example/")


async def test_address_literals_need_no_lookup(answers: dict[str, list[str]]) -> None:
    target = await OPEN.resolve("https://[2001:4860:4860::8888]:8443/x")
    assert target == ResolvedTarget(
        "https://[2001:4860:4860::8888]:8443/x",
        "2001:4860:4860::8888",
        8443,
        "2001:4860:4860::8888",
    )
    with pytest.raises(HostRefused, match="not public"):
        await OPEN.resolve("http://[::ffff:127.0.0.1]/")


async def test_an_unknown_name_is_a_transport_failure(answers: dict[str, list[str]]) -> None:
    with pytest.raises(socket.gaierror):
        await OPEN.resolve("https://nowhere.example/")


# Pinned requests


def test_curl_connect_to() -> None:
    target = ResolvedTarget("https://hooks.example.com/", "hooks.example.com", 443, "93.184.216.34")
    assert curl_connect_to(target) == "hooks.example.com:443:93.184.216.34:443"
    target = ResolvedTarget("http://h.example:8080/", "h.example", 8080, "2606:2800:220:1::1")
    assert curl_connect_to(target) == "h.example:8080:[2606:2800:220:1::1]:8080"


# Over a real socket: a TLS server whose certificate names localhost and
# hooks.pushgate.test (which no resolver knows), and no IP address.

NAMES = ("localhost", "hooks.pushgate.test")


@dataclass
class Hit:
    sni: str | None
    host: str
    body: bytes
    peer: str


@dataclass
class TlsServer:
    port: int
    ca_file: Path
    hits: list[Hit] = field(default_factory=list)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "subscriber hosts test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in NAMES]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    """A one-request-per-connection HTTP/1.1 server that records what it was sent."""
    ca_file, cert_file, key_file = _certificates(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    names: dict[int, str | None] = {}

    def on_sni(ssl_object: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        names[id(ssl_object)] = name

    context.sni_callback = on_sni
    hits: list[Hit] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            fields = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line
            )
            lower = {k.lower(): v for k, v in fields.items()}
            body = await reader.readexactly(int(lower.get("content-length", "0")))
            ssl_object = writer.get_extra_info("ssl_object")
            hits.append(
                Hit(
                    names.get(id(ssl_object)),
                    lower["host"],
                    body,
                    writer.get_extra_info("peername")[0],
                )
            )
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, LOCALHOST, 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield TlsServer(port, ca_file, hits)
    server.close()
    await server.wait_closed()


def _curl_post(url: str, connect_to: str, ca_file: Path) -> tuple[int, bytes]:
    curl = pycurl.Curl()
    body = io.BytesIO()
    try:
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.CONNECT_TO, [connect_to])
        curl.setopt(pycurl.CAINFO, str(ca_file))
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.POSTFIELDS, b"{}")
        curl.setopt(pycurl.WRITEDATA, body)
        curl.perform()
        return int(curl.getinfo(pycurl.RESPONSE_CODE)), body.getvalue()
    finally:
        curl.close()


async def test_libcurl_pinned_to_the_checked_address_verifies_the_name(
    tls_server: TlsServer,
) -> None:
    """The sender's pinning: libcurl connects to the checked address (CONNECT_TO), and
    TLS sends and verifies the name, which never goes to DNS (hooks.pushgate.test does
    not resolve)."""
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("hooks.pushgate.test", tls_server.port)
    target = ResolvedTarget(
        f"https://hooks.pushgate.test:{tls_server.port}/hook",
        "hooks.pushgate.test",
        tls_server.port,
        LOCALHOST,
    )
    status, body = await asyncio.to_thread(
        _curl_post, target.url, curl_connect_to(target), tls_server.ca_file
    )
    assert (status, body) == (200, b"ok")
    assert tls_server.hits == [
        Hit("hooks.pushgate.test", f"hooks.pushgate.test:{tls_server.port}", b"{}", LOCALHOST)
    ]


async def test_libcurl_refuses_a_certificate_for_another_name(tls_server: TlsServer) -> None:
    target = ResolvedTarget(
        f"https://other.pushgate.test:{tls_server.port}/",
        "other.pushgate.test",
        tls_server.port,
        LOCALHOST,
    )
    with pytest.raises(pycurl.error) as err:
        await asyncio.to_thread(_curl_post, target.url, curl_connect_to(target), tls_server.ca_file)
    assert err.value.args[0] == pycurl.E_PEER_FAILED_VERIFICATION
    assert tls_server.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@example.com/",
        "https://user@example.com/",
        "https://us%40er:p%2Fss:w0rd!@example.com:8443/hook",
        "https://user:@example.com/",
    ],
)
def test_https_urls_may_carry_credentials(url: str) -> None:
    """SNS's Basic and Digest authentication of HTTPS subscribers."""
    assert OPEN.refusal(url) is None


def test_credentials_do_not_hide_the_host() -> None:
    refused = OPEN.refusal("https://example.com:443@127.0.0.1/")
    assert refused is not None and "127.0.0.1" in refused


async def test_resolutions_are_reused_for_a_while(
    answers: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = SubscriberHosts()
    answers["cached.example"] = ["93.184.216.34"]
    first = await hosts.resolve("https://cached.example/a")
    answers["cached.example"] = ["93.184.216.35"]
    again = await hosts.resolve("https://cached.example/b")
    assert first.address == again.address == "93.184.216.34"
    assert again.url == "https://cached.example/b"
    # Past the TTL, the name is looked up again.
    clock = time.monotonic() + subscriber_hosts.RESOLVE_TTL + 1
    monkeypatch.setattr(subscriber_hosts.time, "monotonic", lambda: clock)
    assert (await hosts.resolve("https://cached.example/c")).address == "93.184.216.35"
