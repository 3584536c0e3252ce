"""The HTTP/S subscribers' outbox on both engines: what Subscribe, a topic fan-out and
Unsubscribe queue, claiming with a lease, outcomes, and pruning of confirmations."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from pushgate.crypto import SecretBox
from pushgate.domain import publish, subscriptions, topics
from pushgate.domain.arns import Scope
from pushgate.domain.errors import InvalidParameter
from pushgate.domain.pruning import PrunePolicy, prune
from pushgate.domain.publish import PublishInput
from pushgate.domain.runtime import Runtime
from pushgate.store import migrate, outbox
from pushgate.store import subscription_deliveries as store
from pushgate.store.database import Database
from pushgate.subscriber_hosts import SubscriberHosts

SCOPE = Scope("123456789012", "us-east-1")
HOOK = "https://hooks.example.com/sns"


@pytest.fixture
async def rt(fresh_database_url: str) -> AsyncIterator[Runtime]:
    db = Database(fresh_database_url, pool_size=4)
    await migrate.upgrade(db)
    yield Runtime(
        db=db,
        secrets=SecretBox("x" * 40),
        account_id=SCOPE.account_id,
        subscriber_hosts=SubscriberHosts(),
    )
    await db.dispose()


async def _claim(rt: Runtime, lease: float = 60.0) -> list[store.ClaimedPost]:
    now = time.time()
    claimed: list[store.ClaimedPost] = await rt.db.write(store.claim_due, now, now + lease, 100)
    return claimed


async def _fan_out(rt: Runtime) -> None:
    now = time.time()
    job = await rt.db.write(outbox.claim_fanout, now, now + 60)
    while job is not None:
        job, _ = await rt.db.write(outbox.expand_fanout, job, 1000, now + 60)


async def test_subscribe_queues_a_confirmation_and_the_fanout_a_notification(
    rt: Runtime,
) -> None:
    topic = await topics.create(rt, SCOPE, "hooks", {}, [])
    await subscriptions.subscribe(rt, SCOPE, topic, "https", HOOK, {}, False)
    (confirmation,) = await _claim(rt)
    assert confirmation.kind == store.SUBSCRIPTION_CONFIRMATION
    assert (confirmation.url, confirmation.topic_arn, confirmation.attempts) == (HOOK, topic, 1)
    assert confirmation.token is not None and len(confirmation.token) == 128
    assert await _claim(rt) == []  # leased

    # Nothing goes to a pending subscription.
    await publish.publish(rt, SCOPE, PublishInput("before"), topic_arn=topic)
    await _fan_out(rt)
    assert await _claim(rt) == []

    arn = await subscriptions.confirm(rt, SCOPE, topic, confirmation.token)
    published = await publish.publish(rt, SCOPE, PublishInput("after"), topic_arn=topic)
    await _fan_out(rt)
    (note,) = await _claim(rt)
    assert note.kind == store.NOTIFICATION
    assert (note.subscription_arn, note.sns_message_id) == (arn, published.message_id)
    assert note.message_pk is not None
    context = await rt.db.read(store.messages_by_pk, [note.message_pk])
    assert context[note.message_pk].body == "after"


async def test_outcomes_retry_release_and_finish(rt: Runtime) -> None:
    topic = await topics.create(rt, SCOPE, "retries", {}, [])
    await subscriptions.subscribe(rt, SCOPE, topic, "https", HOOK, {}, False)
    (first,) = await _claim(rt)
    now = time.time()
    retry = store.PostOutcome(first.id, store.QUEUED, 503, "HTTP 503", "busy", now, due_at=now)
    await rt.db.write(store.record, [retry])
    (again,) = await _claim(rt)
    assert again.attempts == 2
    await rt.db.write(store.release, [(again.id, time.time())])
    (third,) = await _claim(rt)
    assert third.attempts == 2  # a release is not an attempt
    await rt.db.write(
        store.record, [store.PostOutcome(third.id, store.SENT, 200, None, None, time.time())]
    )
    assert await _claim(rt, lease=0.0) == []


async def test_unsubscribe_confirmation_restores_and_is_pruned(rt: Runtime) -> None:
    topic = await topics.create(rt, SCOPE, "leaving", {}, [])
    await subscriptions.subscribe(rt, SCOPE, topic, "https", HOOK, {}, False)
    (confirmation,) = await _claim(rt)
    assert confirmation.token is not None
    arn = await subscriptions.confirm(rt, SCOPE, topic, confirmation.token)
    await subscriptions.unsubscribe(rt, arn)
    (bye,) = await _claim(rt)
    assert bye.kind == store.UNSUBSCRIBE_CONFIRMATION and bye.subscription_arn == arn
    assert bye.token is not None and bye.token != confirmation.token
    with pytest.raises(InvalidParameter):
        await subscriptions.confirm(
            rt, SCOPE, await topics.create(rt, SCOPE, "x", {}, []), bye.token
        )
    assert await subscriptions.confirm(rt, SCOPE, topic, bye.token) == arn
    assert (await subscriptions.get_attributes(rt, arn))["PendingConfirmation"] == "false"

    finished = [
        store.PostOutcome(c.id, store.SENT, 200, None, None, time.time() - 3600) for c in (bye,)
    ]
    await rt.db.write(store.record, finished)
    policy = PrunePolicy(message_retention=timedelta(minutes=30))
    report = await prune(rt, policy, dry_run=False, now=datetime.now(UTC))
    assert report.confirmations == 1
    # The SubscribeURL of a pruned UnsubscribeConfirmation no longer restores.
    await subscriptions.unsubscribe(rt, arn)
    with pytest.raises(InvalidParameter):
        await subscriptions.confirm(rt, SCOPE, topic, bye.token)


async def test_an_expired_token_does_not_confirm(rt: Runtime) -> None:
    topic = await topics.create(rt, SCOPE, "slow", {}, [])
    await subscriptions.subscribe(rt, SCOPE, topic, "https", HOOK, {}, False)
    (confirmation,) = await _claim(rt)
    assert confirmation.token is not None
    later = Runtime(
        db=rt.db,
        secrets=rt.secrets,
        account_id=rt.account_id,
        clock=lambda: datetime.now(UTC) + timedelta(days=2, minutes=1),
    )
    with pytest.raises(InvalidParameter):
        await subscriptions.confirm(later, SCOPE, topic, confirmation.token)
    assert await subscriptions.confirm(rt, SCOPE, topic, confirmation.token)
