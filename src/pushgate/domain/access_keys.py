"""Access keys for SigV4: created by ``pushgate keys create`` or ensured from settings."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from sqlalchemy import Connection

from pushgate.domain.runtime import Runtime
from pushgate.store import access_keys as store

_ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str


def new_key() -> AccessKey:
    """An AWS-shaped key pair: ``AKIA`` + 16 characters, and a 40-character secret."""
    key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    return AccessKey(key_id, secrets.token_urlsafe(30)[:40])


async def create(rt: Runtime, name: str = "") -> AccessKey:
    key = new_key()
    secret = rt.secrets.encrypt(key.secret_access_key)
    await rt.db.write(store.insert_one, key.access_key_id, secret, name, rt.clock())
    return key


async def ensure(rt: Runtime, key: AccessKey, name: str = "settings") -> bool:
    """Store ``key`` unless a key of that id exists (its secret is then replaced). True if new."""

    def tx(conn: Connection) -> bool:
        existing = store.secret_of(conn, key.access_key_id)
        if existing is not None and rt.secrets.decrypt(existing) == key.secret_access_key:
            return False
        if existing is not None:
            store.delete_one(conn, key.access_key_id)
        encrypted = rt.secrets.encrypt(key.secret_access_key)
        store.insert_one(conn, key.access_key_id, encrypted, name, rt.clock())
        return existing is None

    return await rt.db.write(tx)


async def any_exist(rt: Runtime) -> bool:
    return await rt.db.read(store.count) > 0


async def secret_for(rt: Runtime, access_key_id: str) -> str | None:
    encrypted = await rt.db.read(store.secret_of, access_key_id)
    return rt.secrets.decrypt(encrypted) if encrypted is not None else None


async def list_keys(rt: Runtime) -> list[tuple[str, str, str]]:
    rows = await rt.db.read(store.all_keys)
    return [(key_id, name, created.isoformat()) for key_id, name, created in rows]


async def delete(rt: Runtime, access_key_id: str) -> bool:
    return await rt.db.write(store.delete_one, access_key_id)
