"""The SNS message-signing key in the database: made once, shared by every process,
stored encrypted, and unreadable under another secret key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pushgate import signing_key
from pushgate.crypto import SecretBox, SecretKeyMismatch
from pushgate.domain import signing
from pushgate.domain.runtime import Runtime
from pushgate.store import migrate, server_keys
from pushgate.store.database import Database
from tests.sns_subscriber import verify_with_certificate


@pytest.fixture
async def db(fresh_database_url: str) -> AsyncIterator[Database]:
    database = Database(fresh_database_url, pool_size=4)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


def _runtime(db: Database, secret: str = "s" * 40) -> Runtime:
    return Runtime(db=db, secrets=SecretBox(secret), account_id="123456789012")


async def test_one_key_for_every_process(db: Database) -> None:
    # Processes starting together: each may generate a key; all end with the same one.
    keys = await asyncio.gather(*(signing_key.load_or_create(_runtime(db)) for _ in range(4)))
    assert len({k.cert_pem for k in keys}) == 1
    again = await signing_key.load_or_create(_runtime(db))
    assert again.cert_id == keys[0].cert_id
    message = signing.notification(
        message_id="m-1",
        topic_arn="arn:aws:sns:us-east-1:123456789012:t",
        message="hello",
        timestamp=signing.datetime.now(signing.UTC),
        unsubscribe_url="https://x/",
    )
    signed = signing.sign(message, again.private_key, again.cert_url("https://x"), "2")
    verify_with_certificate(signed, keys[0].cert_pem)


async def test_the_key_is_stored_encrypted(db: Database) -> None:
    key = await signing_key.load_or_create(_runtime(db))
    stored = await db.read(server_keys.get, signing_key.KEY_NAME)
    assert stored is not None
    assert b"PRIVATE KEY" not in stored and key.cert_pem not in stored
    with pytest.raises(SecretKeyMismatch):
        await signing_key.load_or_create(_runtime(db, "t" * 40))


async def test_the_cache_is_loaded_at_start(db: Database) -> None:
    cache = signing_key.SigningKeyCache()
    with pytest.raises(RuntimeError):
        cache.get()
    loaded = await cache.load(_runtime(db))
    assert cache.get() is loaded
