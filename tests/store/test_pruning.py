"""Pruning on both engines: which endpoints and messages go, in batches, and the job."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Connection, func, select, update

from pushgate.crypto import SecretBox
from pushgate.domain import applications, endpoints, subscriptions, topics
from pushgate.domain.arns import Scope
from pushgate.domain.pruning import PrunePolicy, prune
from pushgate.domain.runtime import Runtime
from pushgate.jobs import PRUNE_LOCK_KEY, PeriodicPruner
from pushgate.store import endpoints as endpoint_store
from pushgate.store import migrate, outbox
from pushgate.store import pruning as store
from pushgate.store.database import Database
from pushgate.store.tables import deliveries as d
from pushgate.store.tables import endpoints as e
from pushgate.store.tables import messages as m

SCOPE = Scope("123456789012", "us-east-1")
DAY = timedelta(days=1)
OFF = PrunePolicy(disabled_after=None, stale_after=None, message_retention=None)


@pytest.fixture
async def rt(fresh_database_url: str) -> AsyncIterator[Runtime]:
    db = Database(fresh_database_url, pool_size=4)
    await migrate.upgrade(db)
    yield Runtime(db=db, secrets=SecretBox("x" * 40), account_id="123456789012")
    await db.dispose()


async def _app(rt: Runtime) -> str:
    return await applications.create(
        rt, SCOPE, f"app-{uuid.uuid4().hex[:8]}", "GCM", {"PlatformCredential": "AIzaKey"}
    )


async def _endpoint(rt: Runtime, app: str) -> str:
    return await endpoints.create(rt, SCOPE, app, f"tok-{uuid.uuid4().hex}", None, {})


async def _set(rt: Runtime, arn: str, **values: Any) -> None:
    def run(conn: Connection) -> None:
        conn.execute(update(e).where(e.c.arn == arn).values(values))

    await rt.db.write(run)


async def _disable(rt: Runtime, arn: str, at: datetime) -> None:
    await _set(rt, arn, enabled=False, disabled_at=at, updated_at=at)


async def _exists(rt: Runtime, arn: str) -> bool:
    return await rt.db.read(endpoint_store.get, arn) is not None


async def _count(rt: Runtime, table: Any) -> int:
    return int(
        await rt.db.read(lambda c: c.execute(select(func.count()).select_from(table)).scalar_one())
    )


# --- endpoints ----------------------------------------------------------------------


async def test_endpoints_disabled_for_longer_than_the_policy_go(rt: Runtime) -> None:
    now = rt.clock()
    app = await _app(rt)
    enabled, recent, old, older = [await _endpoint(rt, app) for _ in range(4)]
    await _set(rt, enabled, token_updated_at=now - 400 * DAY)  # old, but the rule is off
    await _disable(rt, recent, now - 29 * DAY)
    await _disable(rt, old, now - 31 * DAY)
    await _disable(rt, older, now - 300 * DAY)
    policy = PrunePolicy(disabled_after=30 * DAY, stale_after=None, message_retention=None)

    report = await prune(rt, policy, dry_run=False, now=now)

    assert (report.disabled, report.stale, report.endpoints) == (2, 0, 2)
    assert list(report.applications) == [app]
    assert sorted(report.applications[app].sample) == sorted([old, older])
    assert [await _exists(rt, a) for a in (enabled, recent, old, older)] == [
        True,
        True,
        False,
        False,
    ]


async def test_a_disabled_endpoint_without_disabled_at_ages_from_its_last_update(
    rt: Runtime,
) -> None:
    now = rt.clock()
    app = await _app(rt)
    old, recent = await _endpoint(rt, app), await _endpoint(rt, app)
    await _set(rt, old, enabled=False, disabled_at=None, updated_at=now - 40 * DAY)
    await _set(rt, recent, enabled=False, disabled_at=None, updated_at=now - DAY)

    report = await prune(rt, PrunePolicy(message_retention=None), dry_run=False, now=now)

    assert report.disabled == 1
    assert (await _exists(rt, old), await _exists(rt, recent)) == (False, True)


async def test_endpoints_not_refreshed_for_longer_than_the_policy_go(rt: Runtime) -> None:
    now = rt.clock()
    app = await _app(rt)
    fresh, stale, stale_and_disabled = [await _endpoint(rt, app) for _ in range(3)]
    await _set(rt, fresh, token_updated_at=now - 179 * DAY)
    await _set(rt, stale, token_updated_at=now - 181 * DAY)
    await _set(rt, stale_and_disabled, token_updated_at=now - 181 * DAY)
    await _disable(rt, stale_and_disabled, now - 60 * DAY)
    policy = PrunePolicy(disabled_after=30 * DAY, stale_after=180 * DAY, message_retention=None)

    report = await prune(rt, policy, dry_run=False, now=now)

    # An endpoint both rules condemn counts once, as disabled.
    assert (report.applications[app].disabled, report.applications[app].stale) == (1, 1)
    assert [await _exists(rt, a) for a in (fresh, stale, stale_and_disabled)] == [
        True,
        False,
        False,
    ]


async def test_default_policy_keeps_stale_enabled_endpoints_as_sns_does(rt: Runtime) -> None:
    now = rt.clock()
    arn = await _endpoint(rt, await _app(rt))
    await _set(rt, arn, token_updated_at=now - 3650 * DAY, updated_at=now - 3650 * DAY)

    report = await prune(rt, PrunePolicy(), dry_run=False, now=now)

    assert report.endpoints == 0 and await _exists(rt, arn)


async def test_a_dry_run_deletes_nothing_and_reports_what_a_run_deletes(rt: Runtime) -> None:
    now = rt.clock()
    apps = [await _app(rt), await _app(rt)]
    condemned = []
    for i in range(9):
        arn = await _endpoint(rt, apps[i % 2])
        if i % 3:
            await _disable(rt, arn, now - 90 * DAY)
            condemned.append(arn)
    policy = PrunePolicy(disabled_after=30 * DAY)

    dry = await prune(rt, policy, dry_run=True, now=now, batch_size=2)
    assert all([await _exists(rt, a) for a in condemned])
    real = await prune(rt, policy, dry_run=False, now=now, batch_size=2)

    assert dry.dry_run and not real.dry_run
    assert {**dry.to_json(), "dryRun": False} == real.to_json()
    assert real.endpoints == len(condemned) == 6
    assert not any([await _exists(rt, a) for a in condemned])
    assert await _count(rt, e) == 3


async def test_many_endpoints_go_in_batches(rt: Runtime) -> None:
    now = rt.clock()
    app = await _app(rt)
    arns = [await _endpoint(rt, app) for _ in range(23)]
    for arn in arns[::2]:
        await _disable(rt, arn, now - 31 * DAY)

    report = await prune(rt, PrunePolicy(), dry_run=False, now=now, batch_size=5)

    assert report.disabled == 12
    assert len(report.applications[app].sample) == 5  # a sample, not the whole list
    assert await _count(rt, e) == 11


async def test_subscriptions_of_a_pruned_endpoint_stay(rt: Runtime) -> None:
    now = rt.clock()
    arn = await _endpoint(rt, await _app(rt))
    topic = await topics.create(rt, SCOPE, f"t-{uuid.uuid4().hex[:8]}", {}, [])
    sub = await subscriptions.subscribe(rt, SCOPE, topic, "application", arn, {}, False)
    await _disable(rt, arn, now - 31 * DAY)

    await prune(rt, PrunePolicy(), dry_run=False, now=now)

    assert not await _exists(rt, arn)
    attributes = await subscriptions.get_attributes(rt, sub)
    assert attributes["Endpoint"] == arn


async def test_the_delete_repeats_the_rules(rt: Runtime) -> None:
    now = rt.clock()
    arn = await _endpoint(rt, await _app(rt))
    await _disable(rt, arn, now - 31 * DAY)
    rules = store.EndpointRules(disabled_before=now - 30 * DAY, stale_before=None)

    def reenable_then_delete(conn: Connection) -> tuple[list[store.PrunableEndpoint], int | None]:
        found = store.prunable_endpoints(conn, rules, 0, 10)
        assert [f.arn for f in found] == [arn]
        conn.execute(update(e).where(e.c.arn == arn).values(enabled=True, disabled_at=None))
        return store.delete_endpoints(conn, rules, 0, 10)

    assert await rt.db.write(reenable_then_delete) == ([], None)
    assert await _exists(rt, arn)


async def test_an_endpoint_re_enabled_by_a_concurrent_transaction_stays(
    rt: Runtime, fresh_database_url: str
) -> None:
    """PostgreSQL: the DELETE waits for the re-enabling transaction, then re-checks."""
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; there is no concurrent transaction")
    now = rt.clock()
    arn = await _endpoint(rt, await _app(rt))
    await _disable(rt, arn, now - 31 * DAY)
    other = await asyncpg.connect(fresh_database_url)
    # A third session watches: inside a transaction, pg_stat_activity is a snapshot.
    watcher = await asyncpg.connect(fresh_database_url)
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "UPDATE endpoints SET enabled = true, disabled_at = NULL WHERE arn = $1", arn
        )
        pruning = asyncio.create_task(prune(rt, PrunePolicy(), dry_run=False, now=now))
        while not await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM endpoints%'"
        ):
            assert not pruning.done(), pruning
            await asyncio.sleep(0.01)
        await tx.commit()
        report = await pruning
    finally:
        await other.close()
        await watcher.close()
    assert report.endpoints == 0
    assert await _exists(rt, arn)


# --- messages -----------------------------------------------------------------------


def _message(published_at: float, **overrides: Any) -> outbox.NewMessage:
    values: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "region": "us-east-1",
        "target_arn": "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/a/b",
        "topic_id": None,
        "body": "hello",
        "structure": None,
        "subject": None,
        "attributes": {},
        "dedup_key": None,
        "published_at": published_at,
    }
    values.update(overrides)
    return outbox.NewMessage(**values)


async def _publish(
    rt: Runtime, published_at: float, endpoint_ids: list[int], *, settle: tuple[str, ...] = ()
) -> str:
    """A message with a delivery to each endpoint; the first ``len(settle)`` deliveries are
    claimed and finished in those states, the rest stay queued."""
    msg = _message(published_at)
    pk = await rt.db.write(outbox.insert_message, msg, endpoint_ids=endpoint_ids)

    def finish(conn: Connection) -> None:
        ids = conn.execute(
            select(d.c.id).where(d.c.message_id == pk).order_by(d.c.id).limit(len(settle))
        ).scalars()
        outbox.record(
            conn,
            [
                outbox.Finished(i, state, 200, None, None, published_at + 1, 1.0)
                for i, state in zip(ids, settle, strict=True)
            ],
            [],
        )

    if settle:
        await rt.db.write(finish)
    return msg.message_id


async def _message_exists(rt: Runtime, message_id: str) -> bool:
    return await rt.db.read(outbox.message_status, message_id) is not None


async def _endpoint_ids(rt: Runtime, count: int) -> list[int]:
    app = await _app(rt)
    rows = [await rt.db.read(endpoint_store.get, await _endpoint(rt, app)) for _ in range(count)]
    return [row.id for row in rows if row is not None]


async def test_settled_messages_past_retention_go_with_their_deliveries(rt: Runtime) -> None:
    now = rt.clock()
    old, recent = (now - 15 * DAY).timestamp(), (now - 13 * DAY).timestamp()
    ids = await _endpoint_ids(rt, 3)
    settled = await _publish(rt, old, ids, settle=("sent", "failed", "expired"))
    pending = await _publish(rt, old, ids, settle=("sent", "sent"))  # one still queued
    young = await _publish(rt, recent, ids, settle=("sent", "sent", "sent"))
    policy = PrunePolicy(disabled_after=None, message_retention=14 * DAY)

    report = await prune(rt, policy, dry_run=False, now=now)

    assert (report.messages, report.deliveries) == (1, 3)
    assert [await _message_exists(rt, i) for i in (settled, pending, young)] == [
        False,
        True,
        True,
    ]
    assert await _count(rt, d) == 6


async def test_a_topic_message_whose_fanout_is_pending_stays(rt: Runtime) -> None:
    now = rt.clock()
    old = (now - 30 * DAY).timestamp()
    topic_arn = await topics.create(rt, SCOPE, f"t-{uuid.uuid4().hex[:8]}", {}, [])
    topic = await rt.db.read(topics.get_or_404, topic_arn)
    done = _message(old, target_arn=topic_arn, topic_id=topic.id)
    await rt.db.write(outbox.insert_message, done, fanout=True)
    # Due after the claim below: its fan-out stays pending.
    fanning = _message(old + 10, target_arn=topic_arn, topic_id=topic.id)
    await rt.db.write(outbox.insert_message, fanning, fanout=True)
    job = await rt.db.write(outbox.claim_fanout, old + 1, old + 60)
    assert job is not None and job.published_at == old
    while job is not None:  # no subscribers: the fan-out ends with no delivery
        job, _ = await rt.db.write(outbox.expand_fanout, job, 10, old + 60)

    report = await prune(rt, PrunePolicy(disabled_after=None), dry_run=False, now=now)

    assert (report.messages, report.deliveries) == (1, 0)
    assert await _message_exists(rt, fanning.message_id)
    assert not await _message_exists(rt, done.message_id)


async def test_deliveries_of_a_large_message_go_in_batches(rt: Runtime) -> None:
    now = rt.clock()
    old = (now - 15 * DAY).timestamp()
    ids = await _endpoint_ids(rt, 7)
    messages = [await _publish(rt, old, ids, settle=("sent",) * 7) for _ in range(3)]
    young = await _publish(rt, now.timestamp(), ids, settle=("sent",) * 7)
    policy = PrunePolicy(disabled_after=None)

    dry = await prune(rt, policy, dry_run=True, now=now, batch_size=2)
    assert await _count(rt, d) == 28
    real = await prune(rt, policy, dry_run=False, now=now, batch_size=2)

    assert (dry.messages, dry.deliveries) == (real.messages, real.deliveries) == (3, 21)
    assert not any([await _message_exists(rt, i) for i in messages])
    assert await _message_exists(rt, young)
    assert (await _count(rt, m), await _count(rt, d)) == (1, 7)


async def test_a_second_run_finds_nothing_left(rt: Runtime) -> None:
    now = rt.clock()
    ids = await _endpoint_ids(rt, 2)
    await _disable(rt, (await rt.db.read(_arn_of, ids[0])), now - 31 * DAY)
    await _publish(rt, (now - 20 * DAY).timestamp(), ids, settle=("sent", "sent"))

    first = await prune(rt, PrunePolicy(), dry_run=False, now=now)
    second = await prune(rt, PrunePolicy(), dry_run=False, now=now)

    assert (first.endpoints, first.messages, first.deliveries) == (1, 1, 2)
    assert (second.endpoints, second.messages, second.deliveries) == (0, 0, 0)


def _arn_of(conn: Connection, endpoint_id: int) -> str:
    return str(conn.execute(select(e.c.arn).where(e.c.id == endpoint_id)).scalar_one())


async def test_all_rules_off_touches_nothing(rt: Runtime) -> None:
    now = rt.clock()
    ids = await _endpoint_ids(rt, 1)
    await _disable(rt, await rt.db.read(_arn_of, ids[0]), now - 999 * DAY)
    await _publish(rt, (now - 999 * DAY).timestamp(), ids, settle=("sent",))

    report = await prune(rt, OFF, dry_run=False, now=now)

    assert (report.endpoints, report.messages) == (0, 0)
    assert (await _count(rt, e), await _count(rt, m), await _count(rt, d)) == (1, 1, 1)


# --- the periodic job ---------------------------------------------------------------


async def _until(condition: Callable[[], bool]) -> None:
    """Poll for a state no event announces (pytest-timeout ends a hang)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def _pruner(rt: Runtime, url: str, **kwargs: Any) -> PeriodicPruner:
    kwargs.setdefault("interval", timedelta(milliseconds=10))
    kwargs.setdefault("first_run_after", timedelta(0))
    return PeriodicPruner(rt, PrunePolicy(), database_url=url, **kwargs)


async def test_the_job_prunes_every_interval_until_stopped(
    rt: Runtime, fresh_database_url: str
) -> None:
    arn = await _endpoint(rt, await _app(rt))
    await _disable(rt, arn, rt.clock() - 31 * DAY)
    pruner = _pruner(rt, fresh_database_url)
    pruner.start()
    try:
        await _until(lambda: pruner.runs >= 3)
    finally:
        await pruner.stop()
    assert not await _exists(rt, arn)
    assert pruner.last_report is not None and pruner.last_report.endpoints == 0


async def test_stop_cancels_a_job_that_waits_for_its_first_run(
    rt: Runtime, fresh_database_url: str
) -> None:
    pruner = _pruner(rt, fresh_database_url, first_run_after=timedelta(hours=1))
    pruner.start()
    await asyncio.sleep(0)
    await pruner.stop()
    assert pruner.runs == 0


async def test_only_the_holder_of_the_advisory_lock_prunes(
    rt: Runtime, fresh_database_url: str
) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite takes no lock: concurrent runs are harmless there")
    arn = await _endpoint(rt, await _app(rt))
    await _disable(rt, arn, rt.clock() - 31 * DAY)
    pruner = _pruner(rt, fresh_database_url)
    other = await asyncpg.connect(fresh_database_url)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", PRUNE_LOCK_KEY)
        assert await pruner.run_once() is None
        assert (pruner.skipped, pruner.runs) == (1, 0) and await _exists(rt, arn)
        await other.execute("SELECT pg_advisory_unlock($1)", PRUNE_LOCK_KEY)

        report = await pruner.run_once()
        assert report is not None and report.endpoints == 1
        # The job let go of the lock when the run ended.
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", PRUNE_LOCK_KEY)
    finally:
        await other.close()
        await pruner.stop()


async def test_a_database_outage_is_logged_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 9 of the loopback interface: every run fails to connect.
    url = "postgresql://postgres@127.0.0.1:9/none"
    db = Database(url, pool_size=1)
    rt = Runtime(db=db, secrets=SecretBox("x" * 40), account_id="123456789012")
    pruner = _pruner(rt, url)
    with caplog.at_level(logging.ERROR, logger="pushgate.jobs"):
        pruner.start()
        try:
            await _until(lambda: sum(_action(r) == "prune_error" for r in caplog.records) >= 2)
        finally:
            await pruner.stop()
            await db.dispose()
    assert pruner.runs == 0
    assert not any(_action(r) == "prune_job_died" for r in caplog.records)


def _action(record: logging.LogRecord) -> str | None:
    return getattr(record, "action", None)
