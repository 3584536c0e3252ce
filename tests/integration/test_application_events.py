"""Application events (specs/sns-api.md sec. 6.2) on both stores.

First the domain services with the stored event messages read back: what each change
emits, exactly once, and that no-ops, rolled-back changes, missing topics and
applications without event topics emit nothing. Then end to end: a running
``pushgate serve``, boto3, the REST registration API and the strict fakes, with an FCM
endpoint of a second application subscribed to the four event topics; it receives each
event's JSON as its push's default message.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, select, update

from pushgate.crypto import SecretBox
from pushgate.domain import applications, endpoints, events, registrations, topics
from pushgate.domain.arns import Scope
from pushgate.domain.pruning import PrunePolicy, prune
from pushgate.domain.registrations import Registration
from pushgate.domain.runtime import Runtime
from pushgate.fakes.runner import FakeProviders
from pushgate.store import applications as app_store
from pushgate.store import endpoints as endpoint_store
from pushgate.store import migrate
from pushgate.store.database import Database
from pushgate.store.tables import endpoints as endpoint_table
from pushgate.store.tables import messages
from tests.conftest import (
    ACCESS_KEY_ID,
    ACCOUNT,
    REGION,
    SECRET_ACCESS_KEY,
    Server,
    unique,
)
from tests.integration.delivery_helpers import (
    apns_app,
    apns_token,
    endpoint,
    fcm_app,
    fcm_token,
    settled,
    wait_until,
)

SCOPE = Scope(ACCOUNT, REGION)
ALL = tuple(events.ATTRIBUTES.values())
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CREATED, UPDATED, DELETED, FAILURE = (
    events.CREATED,
    events.UPDATED,
    events.DELETED,
    events.DELIVERY_FAILURE,
)


# --- the domain services, events read back from the store -----------------------------------


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    db = Database(database_url, pool_size=2)
    await migrate.upgrade(db)
    yield Runtime(db=db, secrets=SecretBox("x" * 40), account_id=ACCOUNT)
    await db.dispose()


async def _topic(rt: Runtime) -> str:
    return await topics.create(rt, SCOPE, unique("events"), {}, [])


async def _app(rt: Runtime, **event_topics: str) -> str:
    attributes = {"PlatformCredential": "AIzaKey", **event_topics}
    return await applications.create(rt, SCOPE, unique("app"), "GCM", attributes)


async def _watched_app(rt: Runtime) -> tuple[str, str]:
    """An application whose four events go to one new topic; (application, topic)."""
    topic = await _topic(rt)
    return await _app(rt, **dict.fromkeys(ALL, topic)), topic


async def _stored(rt: Runtime, topic: str) -> list[dict[str, Any]]:
    """The events published to ``topic``, oldest first."""

    def read(conn: Connection) -> list[dict[str, Any]]:
        query = select(messages.c.body).where(messages.c.target_arn == topic)
        return [json.loads(body) for body in conn.execute(query.order_by(messages.c.id)).scalars()]

    return await rt.db.read(read)


async def _kinds(rt: Runtime, topic: str) -> list[tuple[str, str]]:
    return [(e["EventType"], e["EndpointArn"]) for e in await _stored(rt, topic)]


def _token() -> str:
    return f"tok-{uuid.uuid4().hex}"


async def test_a_new_endpoint_emits_endpoint_created_once(rt: Runtime) -> None:
    app, topic = await _watched_app(rt)
    arn = await endpoints.create(rt, SCOPE, app, "tok-1", None, {})
    assert await endpoints.create(rt, SCOPE, app, "tok-1", None, {}) == arn  # idempotent

    (event,) = await _stored(rt, topic)
    assert event == {
        "EventType": "EndpointCreated",
        "EndpointArn": arn,
        "Resource": app,
        "Service": "SNS",
        "Time": event["Time"],
    }
    assert TIME.fullmatch(event["Time"])

    def message(conn: Connection) -> Any:
        return conn.execute(
            select(messages.c.topic_id, messages.c.region, messages.c.structure).where(
                messages.c.target_arn == topic
            )
        ).one()

    stored = await rt.db.read(message)
    assert stored.topic_id is not None and (stored.region, stored.structure) == (REGION, None)


async def test_changed_attributes_emit_endpoint_updated_and_unchanged_ones_nothing(
    rt: Runtime,
) -> None:
    app, topic = await _watched_app(rt)
    arn = await endpoints.create(rt, SCOPE, app, _token(), None, {})
    for attributes in (
        {"CustomUserData": "a"},
        {"CustomUserData": "a"},  # the same: no event
        {"Enabled": "true"},  # already: no event
        {"Enabled": "false"},
        {"Token": "tok-new"},
        {"Token": "tok-new", "Enabled": "false"},  # no event
    ):
        await endpoints.set_attributes(rt, arn, attributes)
    assert await _kinds(rt, topic) == [
        (CREATED, arn),
        (UPDATED, arn),
        (UPDATED, arn),
        (UPDATED, arn),
    ]


async def test_a_deleted_endpoint_emits_endpoint_deleted_once(rt: Runtime) -> None:
    app, topic = await _watched_app(rt)
    arn = await endpoints.create(rt, SCOPE, app, _token(), None, {})
    await endpoints.delete(rt, arn)
    await endpoints.delete(rt, arn)  # idempotent: nothing was deleted
    await endpoints.delete(rt, arn.rsplit("/", 1)[0] + f"/{uuid.uuid4()}")
    assert await _kinds(rt, topic) == [(CREATED, arn), (DELETED, arn)]


async def test_each_event_goes_to_the_topic_its_attribute_names(rt: Runtime) -> None:
    created, deleted = await _topic(rt), await _topic(rt)
    app = await _app(rt, EventEndpointCreated=created, EventEndpointDeleted=deleted)
    arn = await endpoints.create(rt, SCOPE, app, _token(), None, {})
    await endpoints.set_attributes(rt, arn, {"CustomUserData": "no topic for this"})
    await endpoints.delete(rt, arn)
    assert await _kinds(rt, created) == [(CREATED, arn)]
    assert await _kinds(rt, deleted) == [(DELETED, arn)]


async def test_an_event_topic_deleted_since_gets_nothing(rt: Runtime) -> None:
    app, topic = await _watched_app(rt)
    await topics.delete(rt, SCOPE, topic)
    arn = await endpoints.create(rt, SCOPE, app, _token(), None, {})
    await endpoints.set_attributes(rt, arn, {"CustomUserData": "x"})
    await endpoints.delete(rt, arn)
    assert await _stored(rt, topic) == []


async def test_an_event_rolls_back_with_its_change(rt: Runtime) -> None:
    app, topic = await _watched_app(rt)

    class Boom(Exception):
        pass

    def emit_then_fail(conn: Connection) -> None:
        row = app_store.get(conn, app)
        assert row is not None
        assert events.emit(conn, row, CREATED, app + "/x", rt.clock())
        raise Boom

    with pytest.raises(Boom):
        await rt.db.write(emit_then_fail)
    assert await _stored(rt, topic) == []


async def test_the_one_statement_paths_skip_only_applications_that_want_events(
    rt: Runtime,
) -> None:
    """Without event topics an endpoint is still made (and refreshed) in one statement;
    with them, the fast paths write nothing and leave the request to the full path."""
    plain = await _app(rt)
    topic = await _topic(rt)
    created = await _app(rt, EventEndpointCreated=topic)
    updated = await _app(rt, EventEndpointUpdated=topic)
    now = rt.clock()

    def row(app: str, token: str) -> endpoint_store.EndpointRow:
        return endpoint_store.EndpointRow(
            0, 0, app.replace(":app/", ":endpoint/") + f"/{uuid.uuid4()}", token, True, None, None
        )

    plain_row = row(plain, _token())
    assert await rt.db.write(endpoint_store.insert_new, plain, plain_row, now)
    assert await rt.db.write(endpoint_store.refresh_registration, plain, plain_row, now)
    assert not await rt.db.write(endpoint_store.insert_new, created, row(created, _token()), now)
    assert await rt.db.write(endpoint_store.insert_new, updated, row(updated, "t"), now)
    assert not await rt.db.write(
        endpoint_store.refresh_registration, updated, row(updated, "t"), now
    )
    if rt.db.dialect == "postgresql":
        for app in (created, updated):
            fresh = row(app, _token())
            assert await rt.db.write(endpoint_store.upsert_registration, app, fresh, now) is None
        fresh = row(plain, _token())
        assert await rt.db.write(endpoint_store.upsert_registration, plain, fresh, now) == fresh.arn
    assert await _stored(rt, topic) == []


async def test_registrations_emit_what_they_change(rt: Runtime) -> None:
    app, topic = await _watched_app(rt)
    t1, t2, t3 = _token(), _token(), _token()

    async def register(token: str, user: str, device: str | None = "d1") -> str:
        registration = Registration(app, token, device_id=device, user=user)
        return (await registrations.register(rt, SCOPE, registration)).endpoint_arn

    e1 = await register(t1, "u1")  # created
    assert await register(t1, "u1") == e1  # the same again: nothing
    await register(t2, "u1")  # a new token
    await register(t2, "u2")  # a new user
    await endpoints.set_attributes(rt, e1, {"Enabled": "false"})
    await register(t2, "u2")  # enabled again
    e3 = await register(t3, "u2", device=None)  # created
    assert await register(t3, "u2") == e3  # the token moved to d1: e1 is stale, deleted
    await registrations.remove_device(rt, "u2", e3)
    e4 = await register(t1, "u2", device="d4")
    e5 = await register(t2, "u2", device="d5")
    assert sorted(await registrations.remove_user(rt, "u2")) == sorted([e4, e5])

    kinds = await _kinds(rt, topic)
    assert kinds[:10] == [
        (CREATED, e1),
        (UPDATED, e1),  # the token
        (UPDATED, e1),  # the user
        (UPDATED, e1),  # SetEndpointAttributes
        (UPDATED, e1),  # Enabled
        (CREATED, e3),
        (DELETED, e1),
        (DELETED, e3),
        (CREATED, e4),
        (CREATED, e5),
    ]
    assert sorted(kinds[10:]) == sorted([(DELETED, e4), (DELETED, e5)])


async def test_pruned_endpoints_emit_endpoint_deleted(rt: Runtime) -> None:
    app, topic = await _watched_app(rt)
    plain = await _app(rt)
    old = rt.clock() - timedelta(days=31)
    gone = [await endpoints.create(rt, SCOPE, a, _token(), None, {}) for a in (app, app, plain)]
    kept = await endpoints.create(rt, SCOPE, app, _token(), None, {})

    def disable(conn: Connection) -> None:
        conn.execute(
            update(endpoint_table)
            .where(endpoint_table.c.arn.in_(gone))
            .values(enabled=False, disabled_at=old, updated_at=old)
        )

    await rt.db.write(disable)
    policy = PrunePolicy(message_retention=None)
    report = await prune(rt, policy, dry_run=True)
    assert report.endpoints >= 3
    assert await _kinds(rt, topic) == [(CREATED, gone[0]), (CREATED, gone[1]), (CREATED, kept)]

    await prune(rt, policy, dry_run=False, batch_size=2)
    assert (await _kinds(rt, topic))[3:] == [(DELETED, gone[0]), (DELETED, gone[1])]


# --- end to end: boto3, the REST API and the fakes -----------------------------------------

QUIET_SECONDS = 1.0  # how long to wait for an event that must not come


@pytest.fixture(scope="module")
def server(delivering_server: Server) -> Server:
    return delivering_server


@pytest.fixture
def sns(server: Server, fakes: FakeProviders) -> Iterator[Any]:
    yield server.client()
    fakes.reset()


@dataclass
class Watch:
    """Four event topics, each with an FCM endpoint of another application subscribed."""

    topics: dict[str, str]
    receiver_token: str
    fakes: FakeProviders

    @classmethod
    def create(cls, sns: Any, fakes: FakeProviders) -> Watch:
        receiver_app, _ = fcm_app(sns, fakes)
        token = fcm_token()
        receiver = endpoint(sns, receiver_app, token)
        watched = {}
        for attribute in ALL:
            topic = sns.create_topic(Name=unique(attribute.lower()))["TopicArn"]
            sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=receiver)
            watched[attribute] = topic
        return cls(watched, token, fakes)

    def configure(self, sns: Any, app: str) -> None:
        sns.set_platform_application_attributes(PlatformApplicationArn=app, Attributes=self.topics)

    def received(self, app: str) -> list[dict[str, Any]]:
        """The events about ``app`` the receiver got, as pushes' default message."""
        found = []
        for push in self.fakes.fcm.received:
            if push.token == self.receiver_token and push.status == 200:
                event = json.loads(push.body["message"]["data"]["default"])
                if event["Resource"] == app:
                    found.append(event)
        return found

    def wait(self, app: str, count: int) -> list[dict[str, Any]]:
        """Exactly ``count`` events about ``app``: waits for them, then for no more."""
        wait_until(lambda: len(self.received(app)) >= count, what=f"{count} events")
        time.sleep(QUIET_SECONDS)
        got = self.received(app)
        assert len(got) == count, got
        for event in got:
            assert event["Service"] == "SNS" and TIME.fullmatch(event["Time"]), event
        return got


@pytest.fixture
def watch(sns: Any, fakes: FakeProviders) -> Watch:
    return Watch.create(sns, fakes)


def _kinds_of(got: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((e["EventType"], e["EndpointArn"]) for e in got)


def _rest(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    auth = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    response = httpx.request(method, f"{server.url}{path}", auth=auth, timeout=10, **kwargs)
    assert response.is_success, response.text
    return response


def _dead(fakes: FakeProviders, token: str) -> None:
    """APNs answers 410 Unregistered for ``token`` (not registered again since)."""
    fakes.apns.set_token_state(token, "unregistered", timestamp_ms=int(time.time() * 1000) + 1000)


def test_boto3_endpoint_calls_reach_the_event_topics_subscribers(
    sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    app = apns_app(sns, fakes)
    watch.configure(sns, app)
    token = apns_token()
    arn = endpoint(sns, app, token)
    assert endpoint(sns, app, token) == arn  # nothing created: no event
    for _ in range(2):  # the second changes nothing: no event
        sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"CustomUserData": "v2"})
    for _ in range(2):  # the second deletes nothing: no event
        sns.delete_endpoint(EndpointArn=arn)

    got = watch.wait(app, 3)
    assert _kinds_of(got) == Counter({(CREATED, arn): 1, (UPDATED, arn): 1, (DELETED, arn): 1})


def test_registrations_over_rest_report_what_they_change(
    server: Server, sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    app = apns_app(sns, fakes)
    watch.configure(sns, app)
    t1, t2, t3 = apns_token(), apns_token(), apns_token()
    user = unique("user")

    def register(token: str, device: str | None = "d1") -> str:
        body = {"application": app, "token": token, "deviceId": device, "user": user}
        return str(_rest(server, "POST", "/v1/registrations", json=body).json()["endpointArn"])

    e1 = register(t1)
    assert register(t1) == e1  # nothing changed: no event
    register(t2)  # a new token
    sns.set_endpoint_attributes(EndpointArn=e1, Attributes={"Enabled": "false"})
    register(t2)  # enabled again
    e3 = register(t3, device=None)
    assert register(t3) == e3  # the token moved to d1: e1, stale, is deleted
    _rest(server, "DELETE", f"/v1/users/{user}/devices/{e3.rsplit('/', 1)[1]}")
    e4 = register(t1, device="d4")
    _rest(server, "DELETE", f"/v1/users/{user}")

    got = watch.wait(app, 9)
    assert _kinds_of(got) == Counter(
        {
            (CREATED, e1): 1,
            (UPDATED, e1): 3,
            (DELETED, e1): 1,
            (CREATED, e3): 1,
            (DELETED, e3): 1,
            (CREATED, e4): 1,
            (DELETED, e4): 1,
        }
    )


def test_a_direct_publish_to_a_dead_token_reports_the_disabling_and_the_failure(
    server: Server, sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    app = apns_app(sns, fakes)
    watch.configure(sns, app)
    token = apns_token()
    arn = endpoint(sns, app, token)
    _dead(fakes, token)
    message_id = sns.publish(TargetArn=arn, Message="hello")["MessageId"]
    (item,) = settled(server, message_id)["items"]
    assert item["state"] == "failed"

    got = watch.wait(app, 3)
    assert _kinds_of(got) == Counter({(CREATED, arn): 1, (UPDATED, arn): 1, (FAILURE, arn): 1})
    (failure,) = [e for e in got if e["EventType"] == FAILURE]
    assert failure["Resource"] == app
    assert failure["MessageId"] == message_id
    assert failure["DeliveryAttempts"] == 1
    assert failure["FailureType"] == "InvalidPlatformToken"
    assert "Unregistered" in failure["FailureMessage"]
    attributes = sns.get_endpoint_attributes(EndpointArn=arn)["Attributes"]
    assert attributes["Enabled"] == "false"


def test_a_message_that_expires_while_retried_reports_ttl_expired(
    server: Server, sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    app = apns_app(sns, fakes)
    watch.configure(sns, app)
    token = apns_token()
    arn = endpoint(sns, app, token)
    fakes.apns.script(status=429, reason="TooManyRequests", token=token, retry_after=60)
    ttl = {"AWS.SNS.MOBILE.APNS.TTL": {"DataType": "String", "StringValue": "5"}}
    message_id = sns.publish(TargetArn=arn, Message="soon stale", MessageAttributes=ttl)[
        "MessageId"
    ]
    (item,) = settled(server, message_id)["items"]
    assert item["state"] == "expired"

    got = watch.wait(app, 2)
    assert _kinds_of(got) == Counter({(CREATED, arn): 1, (FAILURE, arn): 1})
    (failure,) = [e for e in got if e["EventType"] == FAILURE]
    assert (failure["MessageId"], failure["FailureType"]) == (message_id, "NotificationTTLExpired")


def test_a_publish_to_a_user_is_direct_and_reports_its_failure(
    server: Server, sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    app = apns_app(sns, fakes)
    watch.configure(sns, app)
    token, user = apns_token(), unique("user")
    body = {"application": app, "token": token, "user": user}
    arn = _rest(server, "POST", "/v1/registrations", json=body).json()["endpointArn"]
    _dead(fakes, token)
    message_id = _rest(server, "POST", f"/v1/users/{user}/messages", json={"message": "hi"}).json()[
        "messageId"
    ]
    settled(server, message_id)

    got = watch.wait(app, 3)
    assert _kinds_of(got) == Counter({(CREATED, arn): 1, (UPDATED, arn): 1, (FAILURE, arn): 1})
    (failure,) = [e for e in got if e["EventType"] == FAILURE]
    assert failure["MessageId"] == message_id


def test_a_failed_topic_delivery_reports_no_delivery_failure(
    server: Server, sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    app = apns_app(sns, fakes)
    watch.configure(sns, app)
    token = apns_token()
    arn = endpoint(sns, app, token)
    topic = sns.create_topic(Name=unique("news"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=arn)
    _dead(fakes, token)
    message_id = sns.publish(TopicArn=topic, Message="to everyone")["MessageId"]
    (item,) = settled(server, message_id)["items"]
    assert item["state"] == "failed"

    got = watch.wait(app, 2)  # the endpoint is disabled, but the failure is not reported
    assert _kinds_of(got) == Counter({(CREATED, arn): 1, (UPDATED, arn): 1})


def test_a_canonical_token_from_the_provider_reports_endpoint_updated(
    server: Server, sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    client_id, secret = fakes.adm.create_client()
    app = sns.create_platform_application(
        Name=unique("adm"),
        Platform="ADM",
        Attributes={"PlatformPrincipal": client_id, "PlatformCredential": secret},
    )["PlatformApplicationArn"]
    watch.configure(sns, app)
    old, new = fakes.adm.create_registration(), fakes.adm.create_registration()
    fakes.adm.register_registration(old, "rotated", rotated_to=new)
    arn = endpoint(sns, app, old)
    settled(server, sns.publish(TargetArn=arn, Message="hello")["MessageId"])

    got = watch.wait(app, 2)
    assert _kinds_of(got) == Counter({(CREATED, arn): 1, (UPDATED, arn): 1})
    assert sns.get_endpoint_attributes(EndpointArn=arn)["Attributes"]["Token"] == new


def test_an_application_without_event_topics_emits_nothing(
    server: Server, sns: Any, fakes: FakeProviders, watch: Watch
) -> None:
    app = apns_app(sns, fakes)
    token = apns_token()
    arn = endpoint(sns, app, token)
    sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"CustomUserData": "x"})
    _dead(fakes, token)
    settled(server, sns.publish(TargetArn=arn, Message="hello")["MessageId"])
    sns.delete_endpoint(EndpointArn=arn)
    time.sleep(QUIET_SECONDS)
    assert watch.received(app) == []
