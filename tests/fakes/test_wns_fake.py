"""The WNS fake and its token endpoint, driven over real TLS sockets by httpx (HTTP/1.1).

Each check of specs/providers.md sec. 10.4 is exercised once, in the documented order,
with the headers the fake must answer with.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from pushgate.fakes.wns import FakeWns
from tests.fakes import granted_token

TOAST = (
    b'<toast><visual><binding template="ToastGeneric"><text>hi</text></binding></visual></toast>'
)


@pytest.fixture
def wns(fakes: FakeProviders) -> FakeWns:
    return fakes.wns


@pytest.fixture
def app(wns: FakeWns) -> tuple[str, str]:
    return wns.create_app()


@pytest.fixture
async def access(wns: FakeWns, app: tuple[str, str], client: httpx.AsyncClient) -> str:
    return await granted_token(
        client, wns.token_url, scope="notify.windows.com", client_id=app[0], client_secret=app[1]
    )


@pytest.fixture
def channel(wns: FakeWns, app: tuple[str, str]) -> str:
    return wns.create_channel(app[0])


async def grant(client: httpx.AsyncClient, wns: FakeWns, **fields: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "scope": "notify.windows.com", **fields}
    return await client.post(wns.token_url, data=form)


def toast_headers(access: str, **extra: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {access}",
        "x-wns-type": "wns/toast",
        "content-type": "text/xml",
        **extra,
    }


async def send(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: Any = TOAST,
    method: str = "POST",
) -> httpx.Response:
    return await client.request(method, url, headers=headers, content=body)


# --- token endpoint ------------------------------------------------------------------------------


async def test_grant(wns: FakeWns, app: tuple[str, str], client: httpx.AsyncClient) -> None:
    response = await grant(client, wns, client_id=app[0], client_secret=app[1])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("bearer", 86400)
    [record] = wns.token_requests
    assert (record.outcome, record.client_id, record.scope) == ("ok", app[0], "notify.windows.com")
    assert app[0].startswith("ms-app://s-1-15-2-")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "ms-app://s-1-15-2-0"}, "invalid_client"),
        ({"scope": "s.notify.windows.com"}, "invalid_scope"),
    ],
)
async def test_grant_refused(
    wns: FakeWns,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    fields: dict[str, str],
    error: str,
) -> None:
    form = {"client_id": app[0], "client_secret": app[1], **fields}
    response = await grant(client, wns, **form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert wns.token_requests[0].outcome == error


async def test_grant_needs_a_form_post(wns: FakeWns, client: httpx.AsyncClient) -> None:
    response = await client.post(wns.token_url, json={"grant_type": "client_credentials"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    missing = await grant(client, wns, client_id="x")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


# --- a valid notification ------------------------------------------------------------------------


async def test_toast_received(
    wns: FakeWns, app: tuple[str, str], access: str, channel: str, client: httpx.AsyncClient
) -> None:
    response = await send(client, channel, toast_headers(access, **{"x-wns-tag": "t" * 16}))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-wns-status"] == "received"
    assert response.headers["x-wns-notificationstatus"] == "received"
    assert len(response.headers["x-wns-msg-id"]) == 16
    assert response.headers["x-wns-debug-trace"]
    assert "x-wns-deviceconnectionstatus" not in response.headers
    [record] = wns.delivered
    assert (record.method, record.package_sid, record.xml_root) == ("POST", app[0], "toast")
    assert record.channel is not None and channel.endswith(record.channel)
    assert record.body == TOAST
    assert record.headers["x-wns-tag"] == "t" * 16
    assert record.msg_id == response.headers["x-wns-msg-id"]


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [
        ("wns/tile", "text/xml", b"<tile><visual/></tile>"),
        ("wns/badge", "text/xml; charset=utf-8", b'<badge value="3"/>'),
        ("wns/raw", "application/octet-stream", b"\x00\xffraw"),
    ],
)
async def test_other_types(
    wns: FakeWns,
    access: str,
    channel: str,
    client: httpx.AsyncClient,
    kind: str,
    content_type: str,
    body: bytes,
) -> None:
    headers = toast_headers(access, **{"x-wns-type": kind, "content-type": content_type})
    response = await send(client, channel, headers, body)
    assert response.status_code == 200, response.headers
    assert len(wns.delivered) == 1


async def test_request_for_status(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient
) -> None:
    headers = toast_headers(access, **{"x-wns-requestforstatus": "true"})
    response = await send(client, channel, headers)
    assert response.headers["x-wns-deviceconnectionstatus"] == "connected"


async def test_delete_with_match(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient
) -> None:
    headers = {"authorization": f"Bearer {access}", "x-wns-match": "type:wns/toast;tag=t"}
    response = await send(client, channel, headers, b"", method="DELETE")
    assert response.status_code == 200
    assert "x-wns-status" not in response.headers
    assert wns.delivered == [] and wns.received[0].method == "DELETE"
    headers["x-wns-match"] = "everything"
    response = await send(client, channel, headers, b"", method="DELETE")
    assert response.status_code == 400


# --- method, path, auth --------------------------------------------------------------------------


async def test_path_must_be_a_channel(wns: FakeWns, access: str, client: httpx.AsyncClient) -> None:
    for url in (wns.url + "/other?token=x", wns.url + "/"):
        response = await send(client, url, toast_headers(access))
        assert response.status_code == 404
        assert response.headers["x-wns-error-description"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_method(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient, method: str
) -> None:
    body = b"" if method == "GET" else TOAST
    response = await send(client, channel, toast_headers(access), body, method)
    assert response.status_code == 405
    assert response.headers["x-wns-error-description"].startswith("Invalid method")


async def test_missing_or_unknown_token(
    wns: FakeWns, channel: str, client: httpx.AsyncClient
) -> None:
    for authorization in ("", "Bearer nope", "Basic abc"):
        headers = toast_headers("x", authorization=authorization)
        response = await send(client, channel, headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == (
            'Bearer error="invalid_request",error_description="Invalid token"'
        )
    assert wns.delivered == [] and len(wns.received) == 3


async def test_expired_token(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient
) -> None:
    wns.expire_access_tokens()
    response = await send(client, channel, toast_headers(access))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_request",error_description="Token has expired"'
    )


async def test_channel_of_another_package(
    wns: FakeWns, access: str, client: httpx.AsyncClient
) -> None:
    other_sid, _ = wns.create_app()
    response = await send(client, wns.create_channel(other_sid), toast_headers(access))
    assert response.status_code == 403
    assert wns.received[0].description == response.headers["x-wns-error-description"]


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "description"),
    [
        ({"x-wns-type": "wns/push"}, "The X-WNS-Type header is missing or not valid."),
        ({"content-type": "application/xml"}, "The Content-Type for wns/toast must be text/xml."),
        ({"x-wns-type": "wns/raw"}, "The Content-Type for wns/raw must be application/"),
        ({"expect": "100-continue"}, "Expect: 100-continue is not supported."),
        ({"x-wns-cache-policy": "always"}, "X-WNS-Cache-Policy must be cache or no-cache."),
        ({"x-wns-requestforstatus": "yes"}, "X-WNS-RequestForStatus must be true or false."),
        ({"x-wns-ttl": "-5"}, "X-WNS-TTL must be a non-negative integer."),
        (
            {"x-wns-ttl": "60", "x-wns-cache-policy": "no-cache"},
            "X-WNS-TTL conflicts with X-WNS-Cache-Policy: no-cache.",
        ),
        ({"x-wns-tag": "t" * 17}, "X-WNS-Tag must be 1 to 16 characters."),
        ({"x-wns-suppresspopup": "1"}, "X-WNS-SuppressPopup must be true or false."),
        (
            {"x-wns-type": "wns/tile", "x-wns-group": "g"},
            "X-WNS-SuppressPopup and X-WNS-Group apply to toasts only.",
        ),
    ],
)
async def test_bad_headers(
    wns: FakeWns,
    access: str,
    channel: str,
    client: httpx.AsyncClient,
    extra: dict[str, str],
    description: str,
) -> None:
    body = b"<tile/>" if extra.get("x-wns-type") == "wns/tile" else TOAST
    response = await send(client, channel, toast_headers(access, **extra), body)
    assert response.status_code == 400
    assert response.headers["x-wns-error-description"].startswith(description)


async def test_content_length_required(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield TOAST

    response = await send(client, channel, toast_headers(access), chunks())
    assert response.status_code == 400
    assert wns.received[0].headers["transfer-encoding"] == "chunked"
    assert response.headers["x-wns-error-description"].startswith("The Content-Length")


async def test_knobs_allow_what_strict_mode_refuses(
    wns: FakeWns,
    access: str,
    channel: str,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wns, "reject_ttl_with_no_cache", False)
    monkeypatch.setattr(wns, "strict_xml", False)
    extra = {"x-wns-ttl": "60", "x-wns-cache-policy": "no-cache"}
    response = await send(client, channel, toast_headers(access, **extra), b"<tile/>")
    assert response.status_code == 200


# --- body ----------------------------------------------------------------------------------------


async def test_payload_limit(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient
) -> None:
    headers = toast_headers(access, **{"x-wns-type": "wns/raw"})
    headers["content-type"] = "application/octet-stream"
    assert (await send(client, channel, headers, b"x" * 5000)).status_code == 200
    response = await send(client, channel, headers, b"x" * 5001)
    assert response.status_code == 413
    assert "5000" in response.headers["x-wns-error-description"]


@pytest.mark.parametrize(
    "body",
    [
        b"<toast>",
        b"<tile/>",
        b"<toast>\xff</toast>",
        b'<!DOCTYPE toast [<!ENTITY a "b">]><toast>&a;</toast>',
    ],
)
async def test_xml_must_match_the_type(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient, body: bytes
) -> None:
    response = await send(client, channel, toast_headers(access), body)
    assert response.status_code == 400
    assert response.headers["x-wns-error-description"] == (
        "The payload must be well-formed XML with a <toast> root."
    )


# --- channel state, throttling, scripts ----------------------------------------------------------


async def test_unknown_channel(wns: FakeWns, access: str, client: httpx.AsyncClient) -> None:
    response = await send(client, wns.url + "/?token=unknown", toast_headers(access))
    assert response.status_code == 404
    assert wns.received[0].channel == "unknown"


async def test_forgotten_and_expired_channels(
    wns: FakeWns, app: tuple[str, str], access: str, client: httpx.AsyncClient
) -> None:
    gone, expired = wns.create_channel(app[0]), wns.create_channel(app[0])
    wns.forget_channel(gone)
    wns.set_channel_state(expired, "expired")
    assert (await send(client, gone, toast_headers(access))).status_code == 404
    response = await send(client, expired, toast_headers(access))
    assert response.status_code == 410
    assert response.headers["x-wns-error-description"] == "The channel expired."


async def test_channel_older_than_its_lifetime(
    wns: FakeWns,
    access: str,
    channel: str,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wns, "channel_lifetime", 60.0)  # 30 days by default
    monkeypatch.setattr(wns, "clock", lambda: time.time() + 61)  # the token lives a day
    response = await send(client, channel, toast_headers(access))
    assert response.status_code == 410


@pytest.mark.parametrize(
    ("state", "status"), [("throttled", "channelthrottled"), ("dropping", "dropped")]
)
async def test_throttled_and_dropping_channels(
    wns: FakeWns,
    access: str,
    channel: str,
    client: httpx.AsyncClient,
    state: Any,
    status: str,
) -> None:
    wns.set_channel_state(channel, state)
    headers = toast_headers(access, **{"x-wns-requestforstatus": "true"})
    response = await send(client, channel, headers)
    assert response.status_code == 200
    assert response.headers["x-wns-status"] == response.headers["x-wns-notificationstatus"]
    assert response.headers["x-wns-status"] == status
    assert response.headers["x-wns-deviceconnectionstatus"] == "disconnected"
    assert wns.delivered == []


async def test_app_throttle(
    wns: FakeWns,
    access: str,
    channel: str,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wns, "app_quota", RateLimiter(1, 60.0))
    assert (await send(client, channel, toast_headers(access))).status_code == 200
    response = await send(client, channel, toast_headers(access))
    assert response.status_code == 406
    assert int(response.headers["retry-after"]) >= 1


async def test_scripts(
    wns: FakeWns, app: tuple[str, str], access: str, channel: str, client: httpx.AsyncClient
) -> None:
    other = wns.create_channel(app[0])
    wns.script(503, retry_after=30, channel=other)
    wns.script(500, description="Boom.")
    wns.script(200, notification_status="channelthrottled")
    first = await send(client, channel, toast_headers(access))
    assert (first.status_code, first.headers["x-wns-error-description"]) == (500, "Boom.")
    unavailable = await send(client, other, toast_headers(access))
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "30")
    throttled = await send(client, channel, toast_headers(access))
    assert throttled.headers["x-wns-status"] == "channelthrottled"
    assert (await send(client, channel, toast_headers(access))).status_code == 200


async def test_scripted_drop(
    wns: FakeWns, access: str, channel: str, client: httpx.AsyncClient
) -> None:
    wns.script(drop_connection=True)
    with pytest.raises(httpx.TransportError):
        await send(client, channel, toast_headers(access))
    assert wns.received[0].status is None


async def test_invalid_requests_consume_no_script(
    wns: FakeWns, channel: str, client: httpx.AsyncClient
) -> None:
    wns.script(500)
    assert (await send(client, channel, toast_headers("bad"))).status_code == 401
    assert wns.received[0].status == 401
