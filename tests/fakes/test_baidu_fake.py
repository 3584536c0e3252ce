"""The Baidu Cloud Push fake, driven over real TLS by httpx (HTTP/1.1).

Each rule of specs/providers.md sec. 10.5 and each scripted failure is exercised at least
once, with the exact error envelope the fake gives.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import httpx
import pytest

from pushgate.fakes.baidu import FakeBaidu
from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from pushgate.providers.baidu import USER_AGENT, sign

CHANNEL = "3868470218571374398"
PATH = "/rest/3.0/push/single_device"
FORM = "application/x-www-form-urlencoded;charset=utf-8"
ANDROID = '{"title":"T","description":"D"}'


@pytest.fixture
def baidu(fakes: FakeProviders) -> FakeBaidu:
    return fakes.baidu


@pytest.fixture
def app(baidu: FakeBaidu) -> tuple[str, str]:
    baidu.register_channel(CHANNEL)
    return baidu.create_app()


def signed(
    baidu: FakeBaidu,
    app: tuple[str, str],
    path: str = PATH,
    *,
    url: str | None = None,
    **params: str,
) -> dict[str, str]:
    """Every parameter of a valid push (overridden by ``params``), signed over ``url``."""
    apikey, secret = app
    fields = {
        "apikey": apikey,
        "timestamp": str(int(time.time())),
        "channel_id": CHANNEL,
        "msg_type": "1",
        "msg": ANDROID,
        **params,
    }
    fields = {name: value for name, value in fields.items() if value != "-"}
    fields["sign"] = sign("POST", url or baidu.url + path, fields, secret)
    return fields


async def submit(
    client: httpx.AsyncClient,
    baidu: FakeBaidu,
    fields: dict[str, str] | bytes,
    path: str = PATH,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``fields`` (or a raw body) as the SDK sends them, headers overridden by ``headers``."""
    content = fields if isinstance(fields, bytes) else urllib.parse.urlencode(fields).encode()
    return await client.request(
        method,
        baidu.url + path,
        content=content,
        headers={"content-type": FORM, "user-agent": USER_AGENT, **(headers or {})},
    )


async def post(
    client: httpx.AsyncClient,
    baidu: FakeBaidu,
    fields: dict[str, str] | bytes,
    path: str = PATH,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    response = await submit(client, baidu, fields, path, method=method, headers=headers)
    return response.status_code, response.json()


def error(reply: tuple[int, dict[str, Any]]) -> tuple[int, int, str]:
    status, body = reply
    assert set(body) == {"request_id", "error_code", "error_msg"}
    assert isinstance(body["request_id"], int)
    assert status != 200
    return status, body["error_code"], body["error_msg"]


async def test_success(baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient) -> None:
    fields = signed(baidu, app, msg_expires="3600")
    status, body = await post(client, baidu, fields)
    assert status == 200
    assert set(body) == {"request_id", "response_params"}
    params = body["response_params"]
    assert set(params) == {"msg_id", "send_time"}
    assert params["msg_id"].isdigit() and isinstance(params["send_time"], int)
    [push] = baidu.delivered
    assert push.apikey == app[0]
    assert push.channel_id == CHANNEL
    assert push.url == f"https://127.0.0.1:{baidu.port}{PATH}"
    assert push.params == fields
    assert push.msg_id == params["msg_id"] and push.request_id == body["request_id"]
    assert push.headers["user-agent"] == USER_AGENT


async def test_echo_checks_the_signature_and_answers_empty(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    path = "/rest/3.0/test/echo"
    fields = signed(baidu, app, path, channel_id="-", msg_type="-", msg="-")
    status, body = await post(client, baidu, fields, path)
    assert (status, body["response_params"]) == (200, {})
    assert baidu.delivered == []  # only pushes count
    assert baidu.received[0].status == 200


@pytest.mark.parametrize(
    ("path", "method", "detail"),
    [
        (PATH, "GET", "GET is not allowed, use POST"),
        ("/rest/3.0/push/nothing", "POST", "unknown method /rest/3.0/push/nothing"),
        ("/rest/2.0/channel/channel", "POST", "unknown method /rest/2.0/channel/channel"),
        ("/rest/3.0/push/all", "POST", "push/all is not implemented by the fake"),
    ],
)
async def test_method_and_path(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    path: str,
    method: str,
    detail: str,
) -> None:
    reply = await post(client, baidu, signed(baidu, app, path), path, method=method)
    assert error(reply) == (405, 30601, f"Method Not Allowed, {detail}")


async def test_content_type(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    reply = await post(
        client, baidu, signed(baidu, app), headers={"content-type": "application/json"}
    )
    assert error(reply)[1:] == (
        30602,
        "Request Params Not Valid, Content-Type must be application/x-www-form-urlencoded",
    )


async def test_user_agent_strict_and_relaxed(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reply = await post(client, baidu, signed(baidu, app), headers={"user-agent": "curl/8"})
    assert error(reply)[1:] == (
        30602,
        "Request Params Not Valid, User-Agent must start with BCCS_SDK/3.0",
    )
    monkeypatch.setattr(baidu, "require_sdk_user_agent", False)
    status, _ = await post(client, baidu, signed(baidu, app), headers={"user-agent": "curl/8"})
    assert status == 200


@pytest.mark.parametrize("name", ["apikey", "timestamp", "sign"])
async def test_required_common_parameters(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient, name: str
) -> None:
    fields = signed(baidu, app)
    del fields[name]
    reply = await post(client, baidu, fields)
    assert error(reply) == (400, 30602, f"Request Params Not Valid, {name} is required")


async def test_body_must_be_a_utf8_form_without_repeats(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    assert error(await post(client, baidu, b"apikey=\xff"))[2].endswith("not a UTF-8 form")
    repeated = urllib.parse.urlencode(signed(baidu, app)) + "&msg_type=0"
    assert error(await post(client, baidu, repeated.encode()))[2].endswith("msg_type is repeated")


async def test_unknown_apikey(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    reply = await post(client, baidu, signed(baidu, ("nobody", "secret")))
    assert error(reply) == (401, 30603, "Authentication Failed, apikey is unknown")


@pytest.mark.parametrize(
    "tamper",
    ["secret", "http", "param", "sign"],
)
async def test_signature_mismatch(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient, tamper: str
) -> None:
    if tamper == "secret":
        fields = signed(baidu, (app[0], "WRONG"))
    elif tamper == "http":  # signed for http://, posted to https://
        fields = signed(baidu, app, url=baidu.url.replace("https", "http") + PATH)
    elif tamper == "param":
        fields = {**signed(baidu, app), "msg_type": "0"}
    else:
        fields = {**signed(baidu, app), "sign": "0" * 32}
    reply = await post(client, baidu, fields)
    assert error(reply) == (401, 30603, "Authentication Failed, sign is not valid")
    assert baidu.received[0].apikey is None


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"timestamp": str(int(time.time()) - 601)}, "timestamp is too old"),
        ({"timestamp": str(int(time.time()) + 3600)}, "timestamp is in the future"),
        ({"expires": str(int(time.time()) - 1)}, "expires has passed"),
    ],
)
async def test_request_time(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    params: dict[str, str],
    detail: str,
) -> None:
    reply = await post(client, baidu, signed(baidu, app, **params))
    assert error(reply) == (401, 30606, f"Request Time Expires Timeout, {detail}")


async def test_request_time_knobs(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(baidu, "clock", lambda: time.time() + 10_000)
    reply = await post(client, baidu, signed(baidu, app))
    assert error(reply)[1] == 30606
    monkeypatch.setattr(baidu, "signature_lifetime", 20_000)
    assert (await post(client, baidu, signed(baidu, app)))[0] == 200


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"device_type": "5"}, "device_type is invalid"),
        ({"channel_id": "abc"}, "channel_id is invalid"),
        ({"channel_id": "-"}, "channel_id is invalid"),
        ({"msg_type": "2"}, "msg_type is invalid"),
        ({"msg": ""}, "msg is required"),
        ({"msg": "-"}, "msg is required"),
        ({"msg_type": "0", "msg": "x" * 4097}, "msg is too long"),
        ({"msg": "not json"}, "msg is not a JSON object"),
        ({"msg": '{"title":"T"}'}, "msg of an Android notification needs description"),
        ({"device_type": "4", "msg": ANDROID}, "msg of an iOS notification needs aps"),
        ({"msg_expires": "604801"}, "msg_expires is invalid"),
        ({"msg_expires": "-1"}, "msg_expires is invalid"),
        ({"deploy_status": "3"}, "deploy_status is invalid"),
        (
            {"device_type": "4", "msg": '{"aps":{"alert":"a"}}'},
            "deploy_status is required for iOS",
        ),
    ],
)
async def test_single_device_parameters(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    params: dict[str, str],
    detail: str,
) -> None:
    reply = await post(client, baidu, signed(baidu, app, **params))
    assert error(reply) == (400, 30602, f"Request Params Not Valid, {detail}")


async def test_valid_variants(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ios = '{"aps":{"alert":"a"}}'
    for params in (
        {"msg_type": "0", "msg": "x" * 4096},
        {"msg_type": "-", "msg": "anything"},  # msg_type defaults to 0
        {"device_type": "4", "msg": ios, "deploy_status": "1", "msg_expires": "0"},
        {"device_type": "3", "msg_expires": "604800"},
    ):
        status, body = await post(client, baidu, signed(baidu, app, **params))
        assert status == 200, body
    monkeypatch.setattr(baidu, "require_deploy_status", False)
    reply = await post(client, baidu, signed(baidu, app, device_type="4", msg=ios))
    assert reply[0] == 200


@pytest.mark.parametrize(
    ("state", "code", "message"),
    [
        (None, 30608, "Bind Relation Not Found"),
        ("unbound", 30608, "Bind Relation Not Found"),
        ("expired", 30607, "Channel Token Timeout"),
    ],
)
async def test_channel_states(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    state: Any,
    code: int,
    message: str,
) -> None:
    channel = "1111"
    if state is not None:
        baidu.register_channel(channel, state)
    reply = await post(client, baidu, signed(baidu, app, channel_id=channel))
    assert error(reply) == (400, code, message)


async def test_unknown_channels_may_be_accepted(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(baidu, "accept_unknown_channels", True)
    assert (await post(client, baidu, signed(baidu, app, channel_id="42")))[0] == 200


async def test_quota_and_frequency(
    baidu: FakeBaidu,
    app: tuple[str, str],
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    baidu.set_quota_exhausted(app[0])
    reply = await post(client, baidu, signed(baidu, app))
    assert error(reply) == (402, 30604, "Quota Use Up Payment Required")
    baidu.set_quota_exhausted(app[0], False)
    monkeypatch.setattr(baidu, "frequency_limit", RateLimiter(1, 3600))
    assert (await post(client, baidu, signed(baidu, app)))[0] == 200
    reply = await post(client, baidu, signed(baidu, app))
    assert error(reply)[:2] == (503, 30699)


async def test_scripts(baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient) -> None:
    baidu.script(30600, times=2)
    baidu.script(30699, status=429, retry_after=7)
    for _ in range(2):
        assert error(await post(client, baidu, signed(baidu, app))) == (
            500,
            30600,
            "Internal Server Error",
        )
    response = await submit(client, baidu, signed(baidu, app))
    assert (response.status_code, response.json()["error_code"]) == (429, 30699)
    assert response.headers["retry-after"] == "7"
    assert (await post(client, baidu, signed(baidu, app)))[0] == 200
    assert [push.error_code for push in baidu.received] == [30600, 30600, 30699, None]


async def test_script_for_one_channel_and_invalid_requests_skip_scripts(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    baidu.register_channel("2222")
    baidu.script(30607, channel_id="2222")
    assert (await post(client, baidu, signed(baidu, app)))[0] == 200
    invalid = signed(baidu, app, channel_id="2222", msg_type="9")
    assert error(await post(client, baidu, invalid))[1] == 30602
    assert error(await post(client, baidu, signed(baidu, app, channel_id="2222")))[1] == 30607


async def test_scripted_drop_and_delay(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    baidu.script(None, drop_connection=True)
    with pytest.raises(httpx.TransportError):
        await post(client, baidu, signed(baidu, app))
    assert baidu.received[0].status is None
    baidu.script(None, delay=0.01)
    assert (await post(client, baidu, signed(baidu, app)))[0] == 200
    assert len(baidu.delivered) == 1


async def test_reset_keeps_applications(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    assert (await post(client, baidu, signed(baidu, app)))[0] == 200
    baidu.reset()
    assert baidu.received == []
    assert error(await post(client, baidu, signed(baidu, app)))[1] == 30608  # channel gone
    baidu.register_channel(CHANNEL)
    assert (await post(client, baidu, signed(baidu, app)))[0] == 200


def test_create_app_and_channel_state_checks(fakes: FakeProviders) -> None:
    fake = FakeBaidu(fakes.ca)
    apikey, secret = fake.create_app()
    assert len(apikey) == 24 and len(secret) == 32 and secret == secret.upper()
    assert fake.create_app() != (apikey, secret)
    with pytest.raises(ValueError, match="unknown channel state"):
        fake.register_channel("1", "gone")  # type: ignore[arg-type]


async def test_error_body_is_compact_json(
    baidu: FakeBaidu, app: tuple[str, str], client: httpx.AsyncClient
) -> None:
    response = await client.get(baidu.url + PATH, headers={"user-agent": USER_AGENT})
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert response.http_version == "HTTP/1.1"
    body = json.loads(response.content)
    assert response.content == json.dumps(body, separators=(",", ":")).encode()
