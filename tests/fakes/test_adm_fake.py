"""The ADM fake and its Login with Amazon token endpoint, driven over real sockets by httpx
(HTTP/2): every check of specs/providers.md sec. 10.3, with the exact answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pushgate.fakes.adm import ACCEPT_TYPE, TYPE_VERSION, FakeAdm, data_checksum
from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from tests.fakes import granted_token


@pytest.fixture
def adm(fakes: FakeProviders) -> FakeAdm:
    return fakes.adm


@pytest.fixture
def credentials(adm: FakeAdm) -> tuple[str, str]:
    return adm.create_client()


async def grant(client: httpx.AsyncClient, adm: FakeAdm, **form: str) -> httpx.Response:
    return await client.post(adm.token_url, data=form)


@pytest.fixture
async def access_token(
    client: httpx.AsyncClient, adm: FakeAdm, credentials: tuple[str, str]
) -> str:
    client_id, client_secret = credentials
    return await granted_token(
        client,
        adm.token_url,
        scope="messaging:push",
        client_id=client_id,
        client_secret=client_secret,
    )


def headers(access_token: str, **overrides: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "authorization": f"Bearer {access_token}",
        "content-type": "application/json",
        "accept": "application/json",
        "x-amzn-type-version": TYPE_VERSION,
        "x-amzn-accept-type": ACCEPT_TYPE,
    }
    base.update({name.replace("_", "-"): value for name, value in overrides.items()})
    return {name: value for name, value in base.items() if value is not None}


async def send(
    client: httpx.AsyncClient,
    adm: FakeAdm,
    registration_id: str,
    body: Any,
    access_token: str,
    **header_overrides: str | None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = f"{adm.url}/messaging/registrations/{registration_id}/messages"
    return await client.post(url, content=raw, headers=headers(access_token, **header_overrides))


# -- the token endpoint ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/o2/token", "/auth/O2/token"])
async def test_token_granted(
    client: httpx.AsyncClient, adm: FakeAdm, credentials: tuple[str, str], path: str
) -> None:
    form = {
        "grant_type": "client_credentials",
        "scope": "messaging:push",
        "client_id": credentials[0],
        "client_secret": credentials[1],
    }
    answer = await client.post(adm.url + path, data=form)
    assert answer.status_code == 200
    assert answer.headers["x-amzn-requestid"]
    data = answer.json()
    assert data["access_token"].startswith("Atc|")
    assert {k: v for k, v in data.items() if k != "access_token"} == {
        "expires_in": 3600,
        "scope": "messaging:push",
        "token_type": "bearer",
    }
    [record] = adm.token_requests
    assert (record.status, record.client_id, record.access_token) == (
        200,
        credentials[0],
        data["access_token"],
    )


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"scope": "profile"}, 400, "invalid_scope"),
        ({"scope": None}, 400, "invalid_scope"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "amzn1.application-oa2-client.unknown"}, 401, "invalid_client"),
        ({"client_secret": None}, 400, "invalid_request"),
        ({"extra": "1"}, 400, "invalid_request"),
    ],
)
async def test_token_refused(
    client: httpx.AsyncClient,
    adm: FakeAdm,
    credentials: tuple[str, str],
    change: dict[str, str | None],
    status: int,
    error: str,
) -> None:
    form: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "scope": "messaging:push",
        "client_id": credentials[0],
        "client_secret": credentials[1],
        **change,
    }
    answer = await grant(client, adm, **{k: v for k, v in form.items() if v is not None})
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert adm.token_requests[0].error == error


async def test_token_needs_a_form_and_post(
    client: httpx.AsyncClient, adm: FakeAdm, credentials: tuple[str, str]
) -> None:
    as_json = await client.post(adm.token_url, json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    get = await client.get(adm.token_url)
    assert get.status_code == 405


async def test_disabled_client(
    client: httpx.AsyncClient, adm: FakeAdm, credentials: tuple[str, str], access_token: str
) -> None:
    adm.register_registration("amzn1.adm-registration.v3.dev1")
    adm.disable_client(credentials[0])
    refused = await grant(
        client,
        adm,
        grant_type="client_credentials",
        scope="messaging:push",
        client_id=credentials[0],
        client_secret=credentials[1],
    )
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    answer = await send(client, adm, "amzn1.adm-registration.v3.dev1", {"data": {}}, access_token)
    assert (answer.status_code, answer.json()) == (401, {"reason": "AccessTokenExpired"})


# -- the send endpoint -------------------------------------------------------------------

REG = "amzn1.adm-registration.v3.device-0001"


async def test_success(client: httpx.AsyncClient, adm: FakeAdm, access_token: str) -> None:
    adm.register_registration(REG)
    body = {"data": {"k": "v", "a": "ü"}, "consolidationKey": "c", "expiresAfter": 60}
    answer = await send(client, adm, REG, body, access_token)
    assert (answer.status_code, answer.json()) == (200, {"registrationID": REG})
    assert answer.headers["x-amzn-requestid"]
    assert answer.headers["x-amzn-data-md5"] == data_checksum({"k": "v", "a": "ü"})
    [record] = adm.delivered
    assert (record.registration_id, record.body, record.status, record.reason) == (
        REG,
        body,
        200,
        None,
    )
    assert record.client_id is not None and record.headers["x-amzn-type-version"] == TYPE_VERSION


async def test_rotated_registration_names_the_new_id(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str
) -> None:
    new = "amzn1.adm-registration.v3.device-0002"
    adm.register_registration(REG, "rotated", rotated_to=new)
    answer = await send(client, adm, REG, {"data": {}}, access_token)
    assert (answer.status_code, answer.json()) == (200, {"registrationID": new})
    assert adm.delivered[0].new_registration_id == new
    again = await send(client, adm, new, {"data": {}}, access_token)
    assert again.json() == {"registrationID": new}


@pytest.mark.parametrize(
    ("state", "reason"),
    [("unregistered", "Unregistered"), ("invalid", "InvalidRegistrationId")],
)
async def test_registration_states(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str, state: Any, reason: str
) -> None:
    adm.register_registration(REG, state)
    answer = await send(client, adm, REG, {"data": {}}, access_token)
    assert (answer.status_code, answer.json()) == (400, {"reason": reason})
    assert adm.delivered == [] and adm.received[0].reason == reason


async def test_unknown_and_malformed_registrations(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = await send(client, adm, REG, {"data": {}}, access_token)
    malformed = await send(client, adm, "bad%20id", {"data": {}}, access_token)
    for answer in (unknown, malformed):
        assert (answer.status_code, answer.json()) == (400, {"reason": "InvalidRegistrationId"})
    monkeypatch.setattr(adm, "accept_unknown_registrations", True)
    assert (await send(client, adm, REG, {"data": {}}, access_token)).status_code == 200


def test_register_registration_arguments(adm: FakeAdm) -> None:
    with pytest.raises(ValueError):
        adm.register_registration(REG, "rotated")
    with pytest.raises(ValueError):
        adm.register_registration(REG, "active", rotated_to="x")
    with pytest.raises(ValueError):
        adm.register_registration(REG, "gone")  # type: ignore[arg-type]
    assert adm.create_registration().startswith("amzn1.adm-registration.v3.")


@pytest.mark.parametrize(
    "overrides",
    [
        {"authorization": None},
        {"authorization": "Bearer Atc|unknown"},
        {"authorization": "Basic abc"},
    ],
)
async def test_unauthorised(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str, overrides: dict[str, str | None]
) -> None:
    adm.register_registration(REG)
    answer = await send(client, adm, REG, {"data": {}}, access_token, **overrides)
    assert (answer.status_code, answer.json()) == (401, {"reason": "AccessTokenExpired"})


async def test_expired_token(client: httpx.AsyncClient, adm: FakeAdm, access_token: str) -> None:
    adm.register_registration(REG)
    adm.issuer.expire_tokens()
    answer = await send(client, adm, REG, {"data": {}}, access_token)
    assert (answer.status_code, answer.json()) == (401, {"reason": "AccessTokenExpired"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"x_amzn_type_version": None},
        {"x_amzn_type_version": "com.amazon.device.messaging.ADMMessage@2.0"},
        {"x_amzn_accept_type": "com.amazon.device.messaging.ADMSendResult@1.1"},
        {"content_type": "text/plain"},
        {"accept": "text/html"},
    ],
)
async def test_wrong_headers_are_invalid_type(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str, overrides: dict[str, str | None]
) -> None:
    adm.register_registration(REG)
    answer = await send(client, adm, REG, {"data": {}}, access_token, **overrides)
    assert (answer.status_code, answer.json()) == (400, {"reason": "InvalidType"})


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"not json", 400, "InvalidData"),
        ([], 400, "InvalidData"),
        ({}, 400, "InvalidData"),
        ({"data": {"n": 1}}, 400, "InvalidData"),
        ({"data": "text"}, 400, "InvalidData"),
        ({"data": {}, "unknown": 1}, 400, "InvalidData"),
        ({"data": {}, "notification": "x"}, 400, "InvalidData"),
        ({"data": {"k": "x" * 6137}}, 413, "MessageTooLarge"),
        ({"data": {}, "consolidationKey": "k" * 65}, 400, "InvalidConsolidationKey"),
        ({"data": {}, "consolidationKey": 1}, 400, "InvalidConsolidationKey"),
        ({"data": {}, "expiresAfter": 0}, 400, "InvalidExpiration"),
        ({"data": {}, "expiresAfter": 2678401}, 400, "InvalidExpiration"),
        ({"data": {}, "expiresAfter": "60"}, 400, "InvalidExpiration"),
        ({"data": {"a": "b"}, "md5": "AAAA"}, 400, "InvalidChecksum"),
    ],
)
async def test_body_checks(
    client: httpx.AsyncClient,
    adm: FakeAdm,
    access_token: str,
    body: Any,
    status: int,
    reason: str,
) -> None:
    adm.register_registration(REG)
    answer = await send(client, adm, REG, body, access_token)
    assert (answer.status_code, answer.json()) == (status, {"reason": reason})


async def test_edges_that_pass(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    adm.register_registration(REG)
    bodies = [
        {"data": {"k": "x" * 6136}},  # exactly 6144 bytes
        {"data": {}, "consolidationKey": "k" * 64, "expiresAfter": 2678400},
        {"data": {"b": "2", "a": "1"}, "md5": data_checksum({"a": "1", "b": "2"})},
        {"data": {}, "notification": {"title": "t"}},
    ]
    for body in bodies:
        assert (await send(client, adm, REG, body, access_token)).status_code == 200
    monkeypatch.setattr(adm, "strict", False)
    assert (await send(client, adm, REG, {"data": {}, "x": 1}, access_token)).status_code == 200


async def test_order_auth_before_headers_before_body_before_registration(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str
) -> None:
    unknown_reg = "amzn1.adm-registration.v3.nobody"
    bad = await send(
        client, adm, unknown_reg, b"{", access_token, authorization="Bearer x", accept="x"
    )
    assert bad.json() == {"reason": "AccessTokenExpired"}
    bad = await send(client, adm, unknown_reg, b"{", access_token, accept="x")
    assert bad.json() == {"reason": "InvalidType"}
    bad = await send(client, adm, unknown_reg, b"{", access_token)
    assert bad.json() == {"reason": "InvalidData"}


async def test_path_and_method(client: httpx.AsyncClient, adm: FakeAdm, access_token: str) -> None:
    other = await client.post(adm.url + "/messaging/registrations", headers=headers(access_token))
    assert other.status_code == 404
    get = await client.get(
        f"{adm.url}/messaging/registrations/{REG}/messages", headers=headers(access_token)
    )
    assert get.status_code == 405


async def test_rate_limit(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    adm.register_registration(REG)
    monkeypatch.setattr(adm, "rate_limit", RateLimiter(1, 3600))
    first = await send(client, adm, REG, {"data": {}}, access_token)
    second = await send(client, adm, REG, {"data": {}}, access_token)
    assert first.status_code == 200
    assert (second.status_code, second.json()) == (429, {"reason": "MaxRateExceeded"})
    assert int(second.headers["retry-after"]) >= 3599


@pytest.mark.parametrize(
    ("status", "reason", "body"),
    [
        (500, None, {"reason": "InternalServerError"}),
        (500, "UnknownError", {"reason": "UnknownError"}),
        (503, None, None),
        (429, None, {"reason": "MaxRateExceeded"}),
    ],
)
async def test_scripts(
    client: httpx.AsyncClient,
    adm: FakeAdm,
    access_token: str,
    status: int,
    reason: str | None,
    body: Any,
) -> None:
    adm.register_registration(REG)
    adm.script(status, reason, retry_after=7)
    answer = await send(client, adm, REG, {"data": {}}, access_token)
    assert answer.status_code == status
    assert (answer.json() if answer.content else None) == body
    assert answer.headers["retry-after"] == "7"
    assert (await send(client, adm, REG, {"data": {}}, access_token)).status_code == 200


async def test_scripted_drop_for_one_registration(
    client: httpx.AsyncClient, adm: FakeAdm, access_token: str
) -> None:
    other = "amzn1.adm-registration.v3.other"
    adm.register_registration(REG)
    adm.register_registration(other)
    adm.script(drop_connection=True, token=REG)
    assert (await send(client, adm, other, {"data": {}}, access_token)).status_code == 200
    with pytest.raises(httpx.HTTPError):
        await send(client, adm, REG, {"data": {}}, access_token)
    assert [r.status for r in adm.received] == [200, None]


async def test_reset_forgets_registrations_not_clients(
    client: httpx.AsyncClient, adm: FakeAdm, credentials: tuple[str, str], access_token: str
) -> None:
    adm.register_registration(REG)
    assert (await send(client, adm, REG, {"data": {}}, access_token)).status_code == 200
    adm.reset()
    assert adm.received == [] and adm.token_requests == []
    answer = await send(client, adm, REG, {"data": {}}, access_token)
    assert answer.json() == {"reason": "InvalidRegistrationId"}
