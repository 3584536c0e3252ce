"""Transactions on both engines: commit, rollback, and concurrent creation of one token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from pushgate.crypto import SecretBox
from pushgate.domain import applications, endpoints
from pushgate.domain.arns import Scope
from pushgate.domain.runtime import Runtime
from pushgate.store import migrate
from pushgate.store.database import Database
from pushgate.store.tables import endpoints as endpoint_table

SCOPE = Scope("123456789012", "us-east-1")


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    db = Database(database_url, pool_size=8)
    await migrate.upgrade(db)
    yield Runtime(db=db, secrets=SecretBox("x" * 40), account_id="123456789012")
    await db.dispose()


class Boom(Exception):
    pass


async def test_a_failing_transaction_leaves_nothing(rt: Runtime) -> None:
    app = await applications.create(rt, SCOPE, "rollback", "GCM", {"PlatformCredential": "AIzaKey"})

    def create_then_fail(conn):
        endpoints.store.insert_one(
            conn,
            endpoints.EndpointRow(0, 1, app + "/x", "tok", True, None, None),
            rt.clock(),
        )
        raise Boom

    with pytest.raises(Boom):
        await rt.db.write(create_then_fail)
    count = await rt.db.read(
        lambda c: c.execute(select(func.count()).select_from(endpoint_table)).scalar_one()
    )
    assert count == 0


async def test_concurrent_registrations_of_one_token_make_one_endpoint(rt: Runtime) -> None:
    app = await applications.create(rt, SCOPE, "race", "GCM", {"PlatformCredential": "AIzaKey"})
    arns = await asyncio.gather(
        *(endpoints.create(rt, SCOPE, app, "same-token", None, {}) for _ in range(16))
    )
    assert len(set(arns)) == 1
    page = await endpoints.list_page(rt, app, None)
    assert [arn for arn, _ in page.endpoints] == [arns[0]]


async def test_credentials_are_encrypted_at_rest(rt: Runtime) -> None:
    secret = "AIza-very-secret-server-key"
    arn = await applications.create(rt, SCOPE, "enc", "GCM", {"PlatformCredential": secret})
    raw = await rt.db.read(
        lambda c: c.exec_driver_sql(
            "SELECT credentials_encrypted FROM platform_applications WHERE name = 'enc'"
        ).scalar_one()
    )
    assert secret.encode() not in bytes(raw)
    app = await rt.db.read(applications.get_or_404, arn)
    assert applications.stored_credentials(rt, app) == {"PlatformCredential": secret}


async def test_the_one_statement_insert_stores_what_sqlalchemy_reads_back(rt: Runtime) -> None:
    """On SQLite the insert bypasses SQLAlchemy's execution; the values must be the same."""
    from datetime import UTC, datetime

    app_arn = await applications.create(
        rt, SCOPE, "raw", "BAIDU", {"PlatformPrincipal": "k", "PlatformCredential": "s"}
    )
    now = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
    row = endpoints.EndpointRow(
        0,
        0,
        app_arn.replace(":app/", ":endpoint/") + "/e1",
        "chan-1-tok",
        False,
        "cud",
        {"ChannelId": "chan-1", "UserId": "u"},
    )
    assert await rt.db.write(endpoints.store.insert_new, app_arn, row, now)
    assert not await rt.db.write(endpoints.store.insert_new, app_arn, row, now)  # token taken
    stored = await rt.db.read(
        lambda c: c.execute(select(endpoint_table).where(endpoint_table.c.arn == row.arn)).one()
    )
    assert (stored.enabled, stored.custom_user_data, stored.extra_attributes) == (
        False,
        "cud",
        {"ChannelId": "chan-1", "UserId": "u"},
    )
    assert stored.created_at.replace(tzinfo=UTC) == now == stored.disabled_at.replace(tzinfo=UTC)
