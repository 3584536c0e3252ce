"""The HMS Push Kit fake and its OAuth token endpoint, driven over real sockets by httpx
(HTTP/2): every check of specs/providers.md sec. 10.7, with the exact answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pushgate.fakes.hms import FakeHms
from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from tests.fakes import granted_token

TOKEN = "IQAAAACy0" + "a" * 100


@pytest.fixture
def hms(fakes: FakeProviders) -> FakeHms:
    return fakes.hms


@pytest.fixture
def app(hms: FakeHms) -> tuple[str, str]:
    return hms.create_app()


async def grant(client: httpx.AsyncClient, hms: FakeHms, **form: str) -> httpx.Response:
    return await client.post(hms.token_url, data=form)


@pytest.fixture
async def access_token(client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str]) -> str:
    return await granted_token(client, hms.token_url, client_id=app[0], client_secret=app[1])


async def send(
    client: httpx.AsyncClient,
    hms: FakeHms,
    app_id: str,
    body: Any,
    access_token: str | None,
    content_type: str = "application/json;charset=utf-8",
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type}
    if access_token is not None:
        headers["authorization"] = f"Bearer {access_token}"
    return await client.post(f"{hms.url}/v1/{app_id}/messages:send", content=raw, headers=headers)


def code(answer: httpx.Response) -> tuple[int, str]:
    data = answer.json()
    assert set(data) == {"code", "msg", "requestId"} and data["requestId"]
    return answer.status_code, data["code"]


def message(**fields: Any) -> dict[str, Any]:
    return {"message": {"data": "{}", "token": [TOKEN], **fields}}


# -- the token endpoint ------------------------------------------------------------------


async def test_token_granted(client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str]) -> None:
    answer = await grant(
        client, hms, grant_type="client_credentials", client_id=app[0], client_secret=app[1]
    )
    data = answer.json()
    assert answer.status_code == 200
    assert {k: v for k, v in data.items() if k != "access_token"} == {
        "expires_in": 3600,
        "token_type": "Bearer",
    }
    [record] = hms.token_requests
    assert (record.status, record.client_id, record.access_token) == (
        200,
        app[0],
        data["access_token"],
    )


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"client_secret": None}, 400, "invalid_request"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "999"}, 401, "invalid_client"),
    ],
)
async def test_token_refused(
    client: httpx.AsyncClient,
    hms: FakeHms,
    app: tuple[str, str],
    change: dict[str, str | None],
    status: int,
    error: str,
) -> None:
    form: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_id": app[0],
        "client_secret": app[1],
        **change,
    }
    answer = await grant(client, hms, **{k: v for k, v in form.items() if v is not None})
    assert (answer.status_code, answer.json()["error"]) == (status, error)


async def test_token_needs_a_form_and_post(client: httpx.AsyncClient, hms: FakeHms) -> None:
    as_json = await client.post(hms.token_url, json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    assert (await client.get(hms.token_url)).status_code == 405


# -- the send endpoint -------------------------------------------------------------------


async def test_success(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    body = message(android={"urgency": "HIGH", "collapse_key": 3, "ttl": "86400s"})
    answer = await send(client, hms, app[0], body, access_token)
    assert code(answer) == (200, "80000000")
    assert answer.json()["msg"] == "Success"
    [record] = hms.delivered
    assert (record.app_id, record.tokens, record.body, record.client_id) == (
        app[0],
        (TOKEN,),
        body,
        app[0],
    )


async def test_validate_only_is_not_delivered(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    answer = await send(client, hms, app[0], {**message(), "validate_only": True}, access_token)
    assert code(answer) == (200, "80000000")
    assert hms.delivered == [] and hms.received[0].validate_only


async def test_topic_target(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    answer = await send(client, hms, app[0], {"message": {"topic": "news"}}, access_token)
    assert code(answer) == (200, "80000000")


@pytest.mark.parametrize(
    ("token", "expected"), [(None, "80200001"), ("CF3Xl2XV6jMKunknown", "80200001")]
)
async def test_unauthorised(
    client: httpx.AsyncClient,
    hms: FakeHms,
    app: tuple[str, str],
    token: str | None,
    expected: str,
) -> None:
    assert code(await send(client, hms, app[0], message(), token)) == (401, expected)


async def test_expired_token(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    hms.issuer.expire_tokens()
    assert code(await send(client, hms, app[0], message(), access_token)) == (401, "80200003")


async def test_token_of_another_app(
    client: httpx.AsyncClient, hms: FakeHms, access_token: str
) -> None:
    other, _ = hms.create_app()
    assert code(await send(client, hms, other, message(), access_token)) == (401, "80200001")


async def test_content_type(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    answer = await send(client, hms, app[0], message(), access_token, content_type="text/plain")
    assert code(answer) == (200, "80100001")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "80100003"),
        ([], "80100003"),
        ({"message": "x"}, "80100003"),
        ({**message(), "extra": 1}, "80100003"),
        ({**message(), "validate_only": "no"}, "80100001"),
        ({"message": {"data": "x"}}, "80100003"),
        ({"message": {"token": [TOKEN], "topic": "t"}}, "80100003"),
        ({"message": {"token": TOKEN}}, "80100003"),
        ({"message": {"token": [1]}}, "80100003"),
        ({"message": {"token": []}}, "80100001"),
        ({"message": {"topic": 5}}, "80100003"),
        (message(data={"k": "v"}), "80100003"),
        (message(notification="x"), "80100003"),
        (message(android=[]), "80100003"),
        (message(android={"data": {}}), "80100003"),
        (message(android={"urgency": "LOW"}), "80100001"),
        (message(android={"collapse_key": 101}), "80100013"),
        (message(android={"collapse_key": -2}), "80100013"),
        (message(android={"collapse_key": "1"}), "80100013"),
        (message(android={"ttl": "60"}), "80100001"),
        (message(android={"ttl": "0s"}), "80100004"),
        (message(android={"ttl": "1296001s"}), "80100001"),
        (message(data="x" * 4096), "80300008"),
        ({"message": {"data": "x", "token": [TOKEN] * 1001}}, "80300010"),
    ],
)
async def test_body_checks(
    client: httpx.AsyncClient,
    hms: FakeHms,
    app: tuple[str, str],
    access_token: str,
    body: Any,
    expected: str,
) -> None:
    assert code(await send(client, hms, app[0], body, access_token)) == (200, expected)


async def test_size_excludes_tokens(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    data = "x" * (4096 - len('{"data":""}'))
    body = {"message": {"data": data, "token": [TOKEN] * 1000}}
    assert code(await send(client, hms, app[0], body, access_token)) == (200, "80000000")


async def test_app_permissions(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    hms.set_high_priority_allowed(app[0], False)
    high = message(android={"urgency": "HIGH"})
    assert code(await send(client, hms, app[0], high, access_token)) == (200, "80300011")
    assert code(await send(client, hms, app[0], message(), access_token)) == (200, "80000000")
    hms.set_push_enabled(app[0], False)
    assert code(await send(client, hms, app[0], message(), access_token)) == (200, "80300002")
    hms.set_push_enabled(app[0], True)
    hms.set_high_priority_allowed(app[0], True)
    assert code(await send(client, hms, app[0], high, access_token)) == (200, "80000000")


async def test_invalid_tokens(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    bad = hms.create_token()
    hms.set_token_state(bad, "invalid")
    only_bad = {"message": {"data": "x", "token": [bad, "short"]}}
    assert code(await send(client, hms, app[0], only_bad, access_token)) == (200, "80300007")
    mixed = {"message": {"data": "x", "token": [TOKEN, bad]}}
    answer = await send(client, hms, app[0], mixed, access_token)
    assert code(answer) == (200, "80100000")
    assert json.loads(answer.json()["msg"]) == {
        "success": 1,
        "failure": 1,
        "illegal_tokens": [bad],
    }
    assert [r.illegal_tokens for r in hms.delivered] == [(bad,)]
    with pytest.raises(ValueError):
        hms.set_token_state(bad, "gone")  # type: ignore[arg-type]


async def test_order_auth_before_body_before_app_before_tokens(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    hms.set_push_enabled(app[0], False)
    hms.set_token_state(TOKEN, "invalid")
    assert code(await send(client, hms, app[0], b"{", None)) == (401, "80200001")
    assert code(await send(client, hms, app[0], b"{", access_token)) == (200, "80100003")
    assert code(await send(client, hms, app[0], message(), access_token)) == (200, "80300002")
    hms.set_push_enabled(app[0], True)
    assert code(await send(client, hms, app[0], message(), access_token)) == (200, "80300007")


async def test_path_and_method(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    assert (await client.post(f"{hms.url}/v2/{app[0]}/messages:send")).status_code == 404
    assert (await client.get(f"{hms.url}/v1/{app[0]}/messages:send")).status_code == 405


async def test_flow_control(
    client: httpx.AsyncClient,
    hms: FakeHms,
    app: tuple[str, str],
    access_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hms, "rate_limit", RateLimiter(1, 3600))
    assert code(await send(client, hms, app[0], message(), access_token)) == (200, "80000000")
    answer = await send(client, hms, app[0], message(), access_token)
    assert (answer.status_code, answer.content) == (503, b"")


@pytest.mark.parametrize(
    ("status", "script_code"),
    [(200, "81000001"), (200, "80600003"), (401, "80200003"), (503, "")],
)
async def test_scripts(
    client: httpx.AsyncClient,
    hms: FakeHms,
    app: tuple[str, str],
    access_token: str,
    status: int,
    script_code: str,
) -> None:
    hms.script(script_code, status, retry_after=5)
    answer = await send(client, hms, app[0], message(), access_token)
    assert answer.status_code == status
    assert answer.headers["retry-after"] == "5"
    if script_code:
        assert answer.json()["code"] == script_code
    else:
        assert answer.content == b""
    assert code(await send(client, hms, app[0], message(), access_token)) == (200, "80000000")


async def test_scripted_drop(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    hms.script(drop_connection=True, token=TOKEN)
    with pytest.raises(httpx.HTTPError):
        await send(client, hms, app[0], message(), access_token)
    assert [r.status for r in hms.received] == [None]


async def test_reset_keeps_apps(
    client: httpx.AsyncClient, hms: FakeHms, app: tuple[str, str], access_token: str
) -> None:
    hms.set_push_enabled(app[0], False)
    hms.reset()
    assert hms.received == [] and hms.token_requests == []
    assert code(await send(client, hms, app[0], message(), access_token)) == (200, "80000000")
