"""The SNS signing certificate, fetched anonymously from a running server, verifies a
message signed with that server's key (read from its data dir, as the sender will use
it). The verifier (tests/sns_subscriber.py) follows AWS's documented algorithm, not pushgate's code.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.exceptions import InvalidSignature

from pushgate import signing_key
from pushgate.app import build_runtime
from pushgate.domain import signing
from pushgate.settings import Settings
from tests.conftest import Server
from tests.sns_subscriber import verify_with_certificate

CERT_PATH = re.compile(r"/SimpleNotificationService-[0-9a-f]{32}\.pem")


def verify_with_fetched_cert(body: str) -> None:
    """What a subscriber does: fetch SigningCertURL (no credentials), verify Signature."""
    msg = json.loads(body)
    answer = httpx.get(msg["SigningCertURL"], timeout=10)
    assert answer.status_code == 200
    verify_with_certificate(msg, answer.content)


@pytest.fixture(scope="module")
def server_key(server: Server) -> signing_key.SigningKey:
    """The server's own key, read from its database with its secret key, as a second
    process sharing the database would."""
    rt = build_runtime(Settings(database_url=server.database_url, data_dir=server.data_dir))

    async def load() -> signing_key.SigningKey:
        try:
            return await signing_key.load_or_create(rt)
        finally:
            await rt.db.dispose()

    return asyncio.run(load())


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_message_verifies_with_the_served_certificate(
    server: Server, server_key: signing_key.SigningKey, version: signing.SignatureVersion
) -> None:
    cert_url = server_key.cert_url(server.url)
    assert CERT_PATH.fullmatch(httpx.URL(cert_url).path)
    message = signing.notification(
        message_id="5b7c1e2a-0000-4000-8000-000000000001",
        topic_arn="arn:aws:sns:us-east-1:123456789012:signed",
        message="hello\nsubscriber",
        subject="greeting",
        timestamp=datetime.now(UTC),
        unsubscribe_url=f"{server.url}/?Action=Unsubscribe",
    )
    body = json.dumps(signing.sign(message, server_key.private_key, cert_url, version))
    verify_with_fetched_cert(body)

    tampered = json.loads(body)
    tampered["Message"] = "hello\nattacker"
    with pytest.raises(InvalidSignature):
        verify_with_fetched_cert(json.dumps(tampered))


def test_the_certificate_is_served_without_credentials(
    server: Server, server_key: signing_key.SigningKey
) -> None:
    answer = httpx.get(server_key.cert_url(server.url), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-pem-file")
    assert answer.content == server_key.cert_pem
    assert b"PRIVATE KEY" not in answer.content


def test_an_unknown_certificate_id_is_not_found(
    server: Server, server_key: signing_key.SigningKey
) -> None:
    other = "f" * 32 if server_key.cert_id != "f" * 32 else "e" * 32
    answer = httpx.get(f"{server.url}/SimpleNotificationService-{other}.pem", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["status"] == 404
