"""The delivery log store on both engines: filters, keyset pages, and pruning by age."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pushgate.crypto import SecretBox
from pushgate.domain.pruning import PrunePolicy, prune
from pushgate.domain.runtime import Runtime
from pushgate.store import delivery_logs as store
from pushgate.store import migrate
from pushgate.store.database import Database

APP_A, APP_B = "arn:aws:sns:us-east-1:1:app/GCM/a", "arn:aws:sns:us-east-1:1:app/GCM/b"


@pytest.fixture
async def rt(fresh_database_url: str) -> AsyncIterator[Runtime]:
    db = Database(fresh_database_url, pool_size=4)
    await migrate.upgrade(db)
    yield Runtime(db=db, secrets=SecretBox("x" * 40), account_id="123456789012")
    await db.dispose()


def _log(app_id: int, status: str, n: int, logged_at: float) -> store.NewLog:
    return store.NewLog(
        app_id,
        APP_A if app_id == 1 else APP_B,
        "GCM",
        status,
        f"msg-{n}",
        logged_at - 1,
        logged_at,
        200 if status == store.SUCCESS else 404,
        5,
        f"token-{n}",
        1,
        "{}",
        f"arn:aws:sns:us-east-1:1:endpoint/GCM/a/{n}",
        None if status == store.SUCCESS else "UNREGISTERED",
    )


async def test_filters_and_pages(rt: Runtime) -> None:
    now = time.time()
    logs = [
        _log(1 + n % 2, store.SUCCESS if n % 3 else store.FAILURE, n, now - n) for n in range(10)
    ]
    await rt.db.write(store.insert_many, logs)

    async def q(**kw: Any) -> list[store.LogRow]:
        rows: list[store.LogRow] = await rt.db.read(store.query, store.LogFilter(**kw))
        return rows

    every = await q()
    assert [r.message_id for r in every] == [f"msg-{n}" for n in range(10)]
    failures = await q(status=store.FAILURE)
    assert [r.message_id for r in failures] == ["msg-0", "msg-3", "msg-6", "msg-9"]
    assert [r.destination for r in await q(message_id="msg-4")] == [logs[4].destination]
    assert len(await q(destination=logs[7].destination)) == 1
    assert len(await q(since=now - 2.5)) == 3
    # An application ARN that names no stored application matches nothing.
    assert await q(application_arn=APP_A) == []
    page = await q(limit=4, after=every[3].id)
    assert [r.message_id for r in page] == ["msg-4", "msg-5", "msg-6", "msg-7"]


async def test_pruning_deletes_logs_past_the_message_retention(rt: Runtime) -> None:
    now = datetime.now(UTC)
    old, new = (now - timedelta(days=20)).timestamp(), now.timestamp()
    await rt.db.write(
        store.insert_many,
        [_log(1, store.SUCCESS, n, old) for n in range(5)] + [_log(1, store.FAILURE, 9, new)],
    )
    policy = PrunePolicy(
        disabled_after=None, stale_after=None, message_retention=timedelta(days=14)
    )
    dry = await prune(rt, policy, dry_run=True, now=now)
    assert dry.delivery_logs == 0
    report = await prune(rt, policy, dry_run=False, now=now, batch_size=2)
    assert report.delivery_logs == 5
    left = await rt.db.read(store.query, store.LogFilter())
    assert [r.message_id for r in left] == ["msg-9"]
