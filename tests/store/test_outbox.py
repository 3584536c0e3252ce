"""The outbox on both engines: claims are leases, fan-out is chunked and exactly-once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from pushgate.crypto import SecretBox
from pushgate.domain import applications, endpoints, subscriptions, topics
from pushgate.domain.arns import Scope
from pushgate.domain.runtime import Runtime
from pushgate.store import endpoints as endpoint_store
from pushgate.store import migrate, outbox
from pushgate.store.database import Database

SCOPE = Scope("123456789012", "us-east-1")
NOW = 1_800_000_000.0
LEASE = 60.0


@pytest.fixture
async def rt(fresh_database_url: str) -> AsyncIterator[Runtime]:
    db = Database(fresh_database_url, pool_size=8)
    await migrate.upgrade(db)
    yield Runtime(db=db, secrets=SecretBox("x" * 40), account_id="123456789012")
    await db.dispose()


async def _app(rt: Runtime) -> str:
    return await applications.create(
        rt, SCOPE, f"app-{uuid.uuid4().hex[:8]}", "GCM", {"PlatformCredential": "AIzaKey"}
    )


async def _endpoint_ids(rt: Runtime, app: str, count: int) -> list[int]:
    arns = [await endpoints.create(rt, SCOPE, app, f"tok-{i}", None, {}) for i in range(count)]
    rows = [await rt.db.read(endpoint_store.get, arn) for arn in arns]
    return [row.id for row in rows if row is not None]


def _message(**overrides: object) -> outbox.NewMessage:
    values: dict[str, object] = {
        "message_id": str(uuid.uuid4()),
        "region": "us-east-1",
        "target_arn": "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/a/b",
        "topic_id": None,
        "body": "hello",
        "structure": None,
        "subject": None,
        "attributes": {},
        "dedup_key": None,
        "published_at": NOW,
    }
    values.update(overrides)
    return outbox.NewMessage(**values)  # type: ignore[arg-type]


async def _claim(rt: Runtime, now: float, limit: int = 100) -> list[outbox.ClaimedDelivery]:
    return await rt.db.write(outbox.claim_due, now, now + LEASE, limit)


async def test_a_claim_is_a_lease_that_runs_out(rt: Runtime) -> None:
    ids = await _endpoint_ids(rt, await _app(rt), 3)
    await rt.db.write(outbox.insert_message, _message(), endpoint_ids=ids)

    first = await _claim(rt, NOW)
    assert sorted(c.endpoint_id for c in first) == sorted(ids)
    assert {c.attempts for c in first} == {1}
    assert await _claim(rt, NOW + LEASE - 1) == []  # leased: nobody else gets them

    again = await _claim(rt, NOW + LEASE + 1)  # the worker died: claimed again
    assert sorted(c.id for c in again) == sorted(c.id for c in first)
    assert {c.attempts for c in again} == {2}


async def test_outcomes_finish_retry_and_release(rt: Runtime) -> None:
    ids = await _endpoint_ids(rt, await _app(rt), 3)
    message = _message()
    await rt.db.write(outbox.insert_message, message, endpoint_ids=ids)
    sent, retried, released = await _claim(rt, NOW)

    await rt.db.write(
        outbox.record,
        [outbox.Finished(sent.id, outbox.SENT, 200, None, None, NOW + 1, 3.5)],
        [outbox.Retry(retried.id, NOW + 30, 503, "ServiceUnavailable", None)],
    )
    await rt.db.write(outbox.release, [(released.id, NOW + 5)])

    assert await _claim(rt, NOW + 4) == []
    (back,) = await _claim(rt, NOW + 5)
    assert (back.id, back.attempts) == (released.id, 1)  # a release is not an attempt
    (retry,) = await _claim(rt, NOW + 30)
    assert (retry.id, retry.attempts) == (retried.id, 2)

    status = await rt.db.read(outbox.message_status, message.message_id)
    assert status is not None
    assert status.counts == {"sent": 1, "queued": 2}
    by_id = {d.id: d for d in status.deliveries}
    assert (by_id[sent.id].status_code, by_id[sent.id].latency_ms) == (200, 3.5)
    assert by_id[retried.id].reason == "ServiceUnavailable"


async def test_fanout_expands_confirmed_enabled_application_subscriptions(rt: Runtime) -> None:
    app = await _app(rt)
    topic_arn = await topics.create(rt, SCOPE, f"t-{uuid.uuid4().hex[:8]}", {}, [])
    endpoint_arns = [await endpoints.create(rt, SCOPE, app, f"fan-{i}", None, {}) for i in range(7)]
    for arn in endpoint_arns:
        await subscriptions.subscribe(rt, SCOPE, topic_arn, "application", arn, {}, False)
    await endpoints.set_attributes(rt, endpoint_arns[3], {"Enabled": "false"})
    await subscriptions.subscribe(
        rt, SCOPE, topic_arn, "https", "https://example.com/hook", {}, False
    )  # pending, and not a device: no delivery
    topic = await rt.db.read(topics.get_or_404, topic_arn)
    message = _message(target_arn=topic_arn, topic_id=topic.id)
    await rt.db.write(outbox.insert_message, message, fanout=True)

    job = await rt.db.write(outbox.claim_fanout, NOW, NOW + LEASE)
    assert job is not None
    assert await rt.db.write(outbox.claim_fanout, NOW, NOW + LEASE) is None  # leased
    created = []
    while job is not None:
        job, n = await rt.db.write(outbox.expand_fanout, job, 3, NOW + LEASE)
        created.append(n)
    assert sum(created) == 6
    assert len(created) >= 3  # chunks of three subscriptions, never all at once

    claims = await _claim(rt, NOW)
    enabled = [a for i, a in enumerate(endpoint_arns) if i != 3]
    targets = await rt.db.read(outbox.targets, [c.endpoint_id for c in claims])
    assert sorted(t.arn for t in targets.values()) == sorted(enabled)
    status = await rt.db.read(outbox.message_status, message.message_id)
    assert status is not None and status.fanout_done and status.delivery_count == 6
    assert await rt.db.write(outbox.claim_fanout, NOW + 2 * LEASE, NOW + 3 * LEASE) is None


async def test_a_fanout_chunk_of_a_lost_lease_is_rolled_back(rt: Runtime) -> None:
    app = await _app(rt)
    topic_arn = await topics.create(rt, SCOPE, f"t-{uuid.uuid4().hex[:8]}", {}, [])
    for i in range(4):
        arn = await endpoints.create(rt, SCOPE, app, f"lost-{i}", None, {})
        await subscriptions.subscribe(rt, SCOPE, topic_arn, "application", arn, {}, False)
    topic = await rt.db.read(topics.get_or_404, topic_arn)
    await rt.db.write(
        outbox.insert_message, _message(target_arn=topic_arn, topic_id=topic.id), fanout=True
    )
    stale = await rt.db.write(outbox.claim_fanout, NOW, NOW + LEASE)
    assert stale is not None
    # The lease runs out; another worker takes the job over and expands a chunk.
    fresh = await rt.db.write(outbox.claim_fanout, NOW + LEASE + 1, NOW + 2 * LEASE)
    assert fresh is not None
    await rt.db.write(outbox.expand_fanout, fresh, 2, NOW + 2 * LEASE)
    with pytest.raises(outbox.LostLease):
        await rt.db.write(outbox.expand_fanout, stale, 2, NOW + 2 * LEASE)
    assert len(await _claim(rt, NOW + LEASE + 1)) == 2  # only the other worker's chunk


async def test_concurrent_claims_never_hand_out_a_delivery_twice(rt: Runtime) -> None:
    ids = await _endpoint_ids(rt, await _app(rt), 40)
    for _ in range(5):
        await rt.db.write(outbox.insert_message, _message(), endpoint_ids=ids)
    batches = await asyncio.gather(*(_claim(rt, NOW, limit=30) for _ in range(10)))
    claimed = [c.id for batch in batches for c in batch]
    assert len(claimed) == len(set(claimed)) == 200


async def test_duplicate_key_finds_the_first_message(rt: Runtime) -> None:
    first = _message(dedup_key="target\nkey-1")
    await rt.db.write(outbox.insert_message, first)
    assert await rt.db.read(outbox.find_duplicate, "target\nkey-1") == first.message_id
    assert await rt.db.read(outbox.find_duplicate, "target\nkey-2") is None
