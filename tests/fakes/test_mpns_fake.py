"""The MPNS fake, driven over real TLS sockets by httpx (HTTP/1.1), with and without a
client certificate: each check of specs/providers.md sec. 4.4 / 10.4 ("MPNS fake")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushgate.fakes.mpns import FakeMpns
from pushgate.fakes.runner import FakeProviders
from tests.fakes import certificate_files, trusting

HEAD = b'<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
TOAST = HEAD + b"<wp:Toast><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>"
TILE = HEAD + b"<wp:Tile><wp:Count>1</wp:Count></wp:Tile></wp:Notification>"
TOAST_HEADERS = {
    "content-type": "text/xml",
    "x-windowsphone-target": "toast",
    "x-notificationclass": "2",
}


@pytest.fixture
def mpns(fakes: FakeProviders) -> FakeMpns:
    return fakes.mpns


def presenting(
    fakes: FakeProviders, directory: Path, service: tuple[str, str]
) -> httpx.AsyncClient:
    """A client that presents ``service``'s certificate (PEM), from files in ``directory``."""
    context = trusting(fakes.ca_file, certificate_files(directory, service))
    return httpx.AsyncClient(verify=context, trust_env=False, timeout=5)


@pytest.fixture
def channel(mpns: FakeMpns) -> str:
    return mpns.create_channel()


async def post(
    client: httpx.AsyncClient, url: str, body: Any = TOAST, method: str = "POST", **headers: str
) -> httpx.Response:
    merged = {**TOAST_HEADERS, **{k.replace("_", "-"): v for k, v in headers.items()}}
    merged = {k: v for k, v in merged.items() if v}
    return await client.request(method, url, headers=merged, content=body)


def status_headers(response: httpx.Response) -> tuple[str | None, ...]:
    return tuple(
        response.headers.get(name)
        for name in ("x-notificationstatus", "x-deviceconnectionstatus", "x-subscriptionstatus")
    )


async def test_toast_received(mpns: FakeMpns, channel: str, client: httpx.AsyncClient) -> None:
    message_id = str(uuid.uuid4())
    response = await post(client, channel, x_messageid=message_id)
    assert response.status_code == 200 and response.content == b""
    assert status_headers(response) == ("Received", "Connected", "Active")
    assert response.headers["x-messageid"] == message_id
    [record] = mpns.delivered
    assert channel.endswith(record.channel or "-")
    assert "/throttledthirdparty/01.00/" in channel
    assert (record.xml_child, record.body, record.message_id) == (
        "{WPNotification}Toast",
        TOAST,
        message_id,
    )
    assert record.certificate_subject is None


@pytest.mark.parametrize(
    ("target", "notification_class", "body"),
    [("token", "11", TILE), ("", "23", b"raw \x00 bytes"), ("toast", "22", TOAST)],
)
async def test_tile_raw_and_classes(
    mpns: FakeMpns,
    channel: str,
    client: httpx.AsyncClient,
    target: str,
    notification_class: str,
    body: bytes,
) -> None:
    response = await post(
        client,
        channel,
        body,
        x_windowsphone_target=target,
        x_notificationclass=notification_class,
    )
    assert response.status_code == 200
    assert "x-messageid" in response.headers  # generated when the request had none
    assert len(mpns.delivered) == 1


async def test_method_and_path(mpns: FakeMpns, channel: str, client: httpx.AsyncClient) -> None:
    assert (await post(client, channel, method="PUT")).status_code == 405
    response = await post(client, mpns.url + "/other/path")
    assert response.status_code == 404
    assert status_headers(response) == (None, None, None)


@pytest.mark.parametrize(
    "headers",
    [
        {"content_type": "application/xml"},
        {"x_notificationclass": "4"},
        {"x_notificationclass": ""},
        {"x_notificationclass": "1"},  # a tile class with the toast target
        {"x_windowsphone_target": ""},  # a toast class without a target
        {"x_windowsphone_target": "tile"},
        {"x_messageid": "not-a-uuid"},
    ],
)
async def test_bad_headers(
    mpns: FakeMpns, channel: str, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await post(client, channel, **headers)
    assert response.status_code == 400
    assert status_headers(response) == (None, None, None)


@pytest.mark.parametrize(
    "body",
    [
        TOAST.replace(b"WPNotification", b"Other"),
        TILE,
        b"<wp:Notification",
        HEAD + b"</wp:Notification>",
        b"x" * 3073,
    ],
)
async def test_bad_bodies(
    mpns: FakeMpns, channel: str, client: httpx.AsyncClient, body: bytes
) -> None:
    assert (await post(client, channel, body)).status_code == 400


async def test_raw_at_the_size_limit(
    mpns: FakeMpns, channel: str, client: httpx.AsyncClient
) -> None:
    response = await post(
        client, channel, b"x" * 3072, x_windowsphone_target="", x_notificationclass="3"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("state", "status", "headers"),
    [
        ("expired", 404, ("Dropped", "Connected", "Expired")),
        ("inactive", 412, ("Dropped", "Disconnected", None)),
        ("queue_full", 200, ("QueueFull", "Connected", "Active")),
        ("suppressed", 200, ("Suppressed", "Connected", "Active")),
    ],
)
async def test_channel_states(
    mpns: FakeMpns,
    channel: str,
    client: httpx.AsyncClient,
    state: Any,
    status: int,
    headers: tuple[str | None, ...],
) -> None:
    mpns.set_channel_state(channel, state)
    response = await post(client, channel)
    assert (response.status_code, status_headers(response)) == (status, headers)
    assert mpns.delivered == []


async def test_unknown_channel(mpns: FakeMpns, client: httpx.AsyncClient) -> None:
    response = await post(client, mpns.url + "/throttledthirdparty/01.00/unknown")
    assert (response.status_code, status_headers(response)) == (
        404,
        ("Dropped", "Connected", "Expired"),
    )


async def test_daily_quota_of_unauthenticated_channels(
    mpns: FakeMpns, channel: str, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mpns, "daily_quota", 2)
    statuses = [(await post(client, channel)).status_code for _ in range(3)]
    assert statuses == [200, 200, 406]
    next_day = datetime.now(UTC).timestamp() + 86400
    monkeypatch.setattr(mpns, "clock", lambda: next_day)
    assert (await post(client, channel)).status_code == 200


async def test_authenticated_channel(
    fakes: FakeProviders,
    mpns: FakeMpns,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = mpns.create_service()
    channel = mpns.create_channel(service[0])
    assert "/unthrottledthirdparty/01.00/" in channel
    assert (await post(client, channel)).status_code == 401
    other = mpns.create_service("other")
    async with presenting(fakes, tmp_path, other) as wrong:
        assert (await post(wrong, channel)).status_code == 401
    async with presenting(fakes, tmp_path, service) as right:
        response = await post(right, channel)
        assert response.status_code == 200
    monkeypatch.setattr(mpns, "daily_quota", 0)  # authenticated services have no daily limit
    async with presenting(fakes, tmp_path, service) as right:
        assert (await post(right, channel)).status_code == 200
    assert mpns.delivered[0].certificate_subject == "CN=pushgate-mpns,UID=pushgate-mpns"
    assert [r.status for r in mpns.received] == [401, 401, 200, 200]


async def test_expired_certificate(fakes: FakeProviders, mpns: FakeMpns, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    service = fakes.ca.issue_client_certificate("old", "old", not_after=past)
    channel = mpns.create_channel(service[0])
    async with presenting(fakes, tmp_path, service) as old:
        assert (await post(old, channel)).status_code == 401


async def test_scripts(mpns: FakeMpns, channel: str, client: httpx.AsyncClient) -> None:
    mpns.script(503, retry_after=30)
    mpns.script(200, notification_status="QueueFull")
    mpns.script(404, subscription_status="Active", channel=channel)
    unavailable = await post(client, channel)
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "30")
    assert status_headers(unavailable) == (None, None, None)
    full = await post(client, channel)
    assert status_headers(full) == ("QueueFull", "Connected", "Active")
    not_found = await post(client, channel)
    assert status_headers(not_found) == ("Dropped", "Connected", "Active")
    assert (await post(client, channel)).status_code == 200


async def test_scripted_drop(mpns: FakeMpns, channel: str, client: httpx.AsyncClient) -> None:
    mpns.script(drop_connection=True)
    with pytest.raises(httpx.TransportError):
        await post(client, channel)
    assert mpns.received[0].status is None
