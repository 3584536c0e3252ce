"""``PUSHGATE_TLS_CERT_FILE`` / ``PUSHGATE_TLS_KEY_FILE``: pushgate serves HTTPS itself, and
the public URL its links to subscribers start with (SigningCertURL, SubscribeURL) is https."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pushgate.fakes.runner import FakeProviders
from pushgate.settings import Settings
from tests.conftest import Server, running_server, unique


@pytest.fixture(scope="module")
def tls_server(fakes: FakeProviders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("data")
    env = fakes.env() | {
        "PUSHGATE_TLS_CERT_FILE": str(fakes.ca.server_cert_file),
        "PUSHGATE_TLS_KEY_FILE": str(fakes.ca.server_key_file),
        "PUSHGATE_ACCESS_LOG": "false",
    }
    with running_server(f"sqlite:///{data / 'pushgate.db'}", data, env) as srv:
        yield srv


def test_https_with_the_configured_certificate(tls_server: Server, fakes: FakeProviders) -> None:
    assert tls_server.url.startswith("https://")
    trusted = ssl.create_default_context(cafile=str(fakes.ca.ca_file))
    assert httpx.get(f"{tls_server.url}/healthz", verify=trusted, timeout=10).status_code == 200
    with pytest.raises(httpx.ConnectError):  # not trusted without the CA
        httpx.get(f"{tls_server.url}/healthz", verify=ssl.create_default_context(), timeout=10)
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/healthz", timeout=10)
    sns = tls_server.client(verify=str(fakes.ca.ca_file))
    assert sns.create_topic(Name=unique("tls"))["TopicArn"]


def test_the_public_url_follows_tls(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    assert Settings(port=8443, tls_cert_file=cert).effective_public_url == (
        "https://127.0.0.1:8443"
    )
    assert Settings(port=80, host="::1").effective_public_url == "http://[::1]:80"
    given = Settings(public_url="https://push.example.org/", tls_cert_file=cert)
    assert given.effective_public_url == "https://push.example.org"
