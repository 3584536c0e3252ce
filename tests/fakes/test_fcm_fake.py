"""The FCM fake and its OAuth token endpoint, driven over real sockets by httpx (HTTP/2).

Each rule of specs/providers.md sec. 10.2 and each scripted failure is exercised at least
once, with the exact error envelope the fake must give.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from typing import Any

import h2.events
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from pushgate.fakes.fcm import FakeFcm
from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from tests.fakes import RawH2, trusting

PROJECT = "my-project"
TOKEN = "device-token:" + "a" * 40
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@pytest.fixture(scope="module")
def account(running_fakes: FakeProviders) -> dict[str, str]:
    return running_fakes.fcm.create_service_account(PROJECT)


@pytest.fixture
def fcm(fakes: FakeProviders) -> FakeFcm:
    return fakes.fcm


@pytest.fixture
def client(fakes: FakeProviders) -> Iterator[httpx.Client]:
    with httpx.Client(http2=True, verify=trusting(fakes.ca_file), trust_env=False, timeout=5) as c:
        yield c


@functools.cache
def _private_key(pem: str) -> Any:
    """The loaded key: cryptography checks an RSA key on each load, which takes a while."""
    return serialization.load_pem_private_key(
        pem.encode(), None, unsafe_skip_rsa_key_validation=True
    )


def assertion(account: dict[str, str], *, key: Any = None, kid: Any = ..., **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": account["client_email"], "scope": SCOPE, "aud": GOOGLE, "iat": now}
    body["exp"] = now + 3600
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    headers = {"kid": account["private_key_id"] if kid is ... else kid}
    signer = key or _private_key(account["private_key"])
    return jwt.encode(body, signer, algorithm="RS256", headers=headers)


def grant(client: httpx.Client, fcm: FakeFcm, **form: str) -> httpx.Response:
    return client.post(fcm.token_uri, data=form)


@pytest.fixture(scope="module")
def access_token(running_fakes: FakeProviders, account: dict[str, str]) -> str:
    """One token for the module: it outlives ``reset()``, as a client's cached token would."""
    context = trusting(running_fakes.ca_file)
    with httpx.Client(http2=True, verify=context, trust_env=False) as client:
        fcm = running_fakes.fcm
        response = grant(client, fcm, grant_type=GRANT, assertion=assertion(account))
    token: str = response.json()["access_token"]
    return token


def send(
    client: httpx.Client,
    fcm: FakeFcm,
    access_token: str | None,
    body: Any,
    *,
    project: str = PROJECT,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"content-type": "application/json"}
    if access_token is not None:
        sent["authorization"] = f"Bearer {access_token}"
    sent.update(headers or {})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        f"{fcm.url}/v1/projects/{project}/messages:send", headers=sent, content=content
    )


def message(**fields: Any) -> dict[str, Any]:
    return {"message": {"token": TOKEN, **fields}}


def error_of(response: httpx.Response, status: int, canonical: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["status"]) == (status, canonical)
    return error


def fcm_error_code(error: dict[str, Any]) -> str | None:
    codes = [d["errorCode"] for d in error.get("details", []) if d["@type"] == FCM_ERROR]
    return codes[0] if codes else None


def violation_field(error: dict[str, Any]) -> str | None:
    for detail in error.get("details", []):
        if detail["@type"] == BAD_REQUEST:
            field: str | None = detail["fieldViolations"][0].get("field")
            return field
    raise AssertionError(f"no BadRequest detail in {error}")


# OAuth token endpoint


@pytest.mark.parametrize("audience", [GOOGLE, "fake"])
def test_token_grant(
    client: httpx.Client,
    fcm: FakeFcm,
    account: dict[str, str],
    audience: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fcm, "access_token_lifetime", 120)
    aud = fcm.token_uri if audience == "fake" else GOOGLE
    response = grant(client, fcm, grant_type=GRANT, assertion=assertion(account, aud=aud))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body.keys() == {"access_token", "expires_in", "token_type"}
    assert (body["expires_in"], body["token_type"]) == (120, "Bearer")
    (record,) = fcm.token_requests
    assert (record.outcome, record.client_id, record.audience) == (
        "ok",
        account["client_email"],
        aud,
    )
    assert record.access_token == body["access_token"]
    assert account["token_uri"] == fcm.token_uri
    assert account["type"] == "service_account"
    assert "BEGIN PRIVATE KEY" in account["private_key"]


SIGNATURE = ("invalid_grant", "Invalid JWT Signature.")
WINDOW = (
    "invalid_grant",
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim.",
)
NOW = int(time.time())


@pytest.mark.parametrize(
    ("form", "status", "expected"),
    [
        pytest.param(
            lambda a: {"grant_type": GRANT},
            400,
            ("invalid_request", "Missing required parameter: assertion"),
            id="no-assertion",
        ),
        pytest.param(
            lambda a: {"assertion": assertion(a)},
            400,
            ("invalid_request", "Missing required parameter: grant_type"),
            id="no-grant-type",
        ),
        pytest.param(
            lambda a: {"grant_type": "client_credentials", "assertion": assertion(a)},
            400,
            ("unsupported_grant_type", "Invalid grant_type: client_credentials"),
            id="grant-type",
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": "garbage"}, 400, SIGNATURE, id="garbage"
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": assertion(a, iss="who@x.com")},
            400,
            ("invalid_grant", "Invalid grant: account not found"),
            id="unknown-account",
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": assertion(a, kid="0" * 40)},
            400,
            SIGNATURE,
            id="deleted-key-id",
        ),
        pytest.param(
            lambda a: {
                "grant_type": GRANT,
                "assertion": assertion(
                    a, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
                ),
            },
            400,
            SIGNATURE,
            id="other-key",
        ),
        pytest.param(
            lambda a: {
                "grant_type": GRANT,
                "assertion": jwt.encode({"iss": a["client_email"]}, "s" * 32, algorithm="HS256"),
            },
            400,
            SIGNATURE,
            id="hs256",
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": assertion(a, aud="https://x/token")},
            400,
            ("invalid_grant", "Invalid JWT: Failed audience check."),
            id="audience",
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": assertion(a, scope="openid email")},
            400,
            ("invalid_scope", "Invalid OAuth scope or ID token audience provided."),
            id="scope",
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": assertion(a, scope=None)},
            400,
            ("invalid_scope", "Invalid OAuth scope or ID token audience provided."),
            id="no-scope",
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": assertion(a, iat=NOW + 600)},
            400,
            WINDOW,
            id="iat-future",
        ),
        pytest.param(
            lambda a: {
                "grant_type": GRANT,
                "assertion": assertion(a, iat=NOW - 7200, exp=NOW - 3600),
            },
            400,
            WINDOW,
            id="expired",
        ),
        pytest.param(
            lambda a: {"grant_type": GRANT, "assertion": assertion(a, exp=NOW + 7200)},
            400,
            WINDOW,
            id="over-an-hour",
        ),
    ],
)
def test_token_grant_errors(
    client: httpx.Client,
    fcm: FakeFcm,
    account: dict[str, str],
    form: Any,
    status: int,
    expected: tuple[str, str],
) -> None:
    response = grant(client, fcm, **form(account))
    assert response.status_code == status
    assert response.json() == {"error": expected[0], "error_description": expected[1]}
    assert fcm.token_requests[0].outcome == expected[0]


def test_token_grant_must_be_form_encoded(client: httpx.Client, fcm: FakeFcm) -> None:
    response = client.post(fcm.token_uri, json={"grant_type": GRANT})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_disabled_account(client: httpx.Client, fcm: FakeFcm) -> None:
    other = fcm.create_service_account(PROJECT)
    token = grant(client, fcm, grant_type=GRANT, assertion=assertion(other)).json()
    fcm.disable_service_account(other["client_email"])
    refused = grant(client, fcm, grant_type=GRANT, assertion=assertion(other))
    assert refused.status_code == 401
    assert refused.json() == {
        "error": "invalid_client",
        "error_description": "The OAuth client was disabled.",
    }
    error = error_of(send(client, fcm, token["access_token"], message()), 401, "UNAUTHENTICATED")
    assert "details" not in error


# Send endpoint


def test_send_is_accepted_and_recorded(
    client: httpx.Client, fcm: FakeFcm, access_token: str
) -> None:
    response = send(client, fcm, access_token, message(data={"k": "v"}))
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    name = response.json()["name"]
    assert name.startswith(f"projects/{PROJECT}/messages/0:")
    (received,) = fcm.wait_for(1)
    assert (received.project, received.token, received.status) == (PROJECT, TOKEN, 200)
    assert received.body == message(data={"k": "v"})
    assert received.headers["authorization"] == f"Bearer {access_token}"
    assert name.endswith(received.message_id or "?")
    assert fcm.delivered == [received]


def test_validate_only_and_camel_case(
    client: httpx.Client, fcm: FakeFcm, access_token: str
) -> None:
    body = {
        "validateOnly": True,
        "message": {
            "token": TOKEN,
            "android": {"collapseKey": "k", "priority": "high", "ttl": "3.5s"},
            "fcmOptions": {"analyticsLabel": "label-1"},
        },
    }
    response = send(client, fcm, access_token, body)
    assert response.json() == {"name": f"projects/{PROJECT}/messages/fake_message_id"}
    assert fcm.received[0].validate_only
    assert fcm.delivered == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"token": None, "topic": "news.daily~1"}, id="topic"),
        pytest.param(
            {"token": None, "condition": "'a' in topics && ('b' in topics || !('c' in topics))"},
            id="condition",
        ),
        pytest.param({"data": {"k": "v" * 3000}}, id="3000-bytes-to-a-token"),
        pytest.param(
            {
                "apns": {
                    "headers": {"apns-priority": "5", "apns-push-type": "background"},
                    "payload": {"aps": {"content-available": 1}},
                },
                "webpush": {"fcm_options": {"link": "https://example.com"}},
                "android": {
                    "notification": {
                        "color": "#aabbcc",
                        "title_loc_key": "k",
                        "title_loc_args": ["a"],
                        "notification_priority": "PRIORITY_HIGH",
                        "visibility": "PUBLIC",
                        "event_time": "2026-01-01T00:00:00Z",
                        "vibrate_timings": ["1s", "0.5s"],
                        "notification_count": 3,
                    }
                },
            },
            id="platform-options",
        ),
    ],
)
def test_valid_messages(
    client: httpx.Client, fcm: FakeFcm, access_token: str, fields: dict[str, Any]
) -> None:
    body = {"message": {k: v for k, v in {"token": TOKEN, **fields}.items() if v is not None}}
    assert send(client, fcm, access_token, body).status_code == 200


def test_transport_path_and_method(
    fakes: FakeProviders, client: httpx.Client, fcm: FakeFcm
) -> None:
    wrong_path = client.post(f"{fcm.url}/v1/projects/{PROJECT}/messages:sendAll", content=b"{}")
    assert error_of(wrong_path, 404, "NOT_FOUND")["message"] == "Requested entity was not found."
    wrong_method = client.get(f"{fcm.url}/v1/projects/{PROJECT}/messages:send")
    error_of(wrong_method, 405, "UNIMPLEMENTED")
    path = f"/v1/projects/{PROJECT}/messages:send"
    with RawH2(fcm.url, fakes.ca_file, validate=False) as raw:
        headers = [("host", raw.authority), ("content-type", "application/json")]
        stream = raw.request(path, headers, b"{}", authority=False)
        status, _, body = raw.response(stream)
        assert status == 400
        assert json.loads(body)["error"]["message"] == "HTTP/2 requests need :authority."
    with RawH2(fcm.url, fakes.ca_file, validate=False) as raw:  # h2 itself refuses this one
        raw.request(path, [("content-type", "application/json")], b"{}", authority=False)
        goaway = raw.read_until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
        assert isinstance(goaway, h2.events.ConnectionTerminated)
        assert goaway.error_code == ErrorCodes.PROTOCOL_ERROR


def test_authentication_and_permission(
    client: httpx.Client, fcm: FakeFcm, access_token: str
) -> None:
    missing = error_of(send(client, fcm, None, message()), 401, "UNAUTHENTICATED")
    assert missing["message"].startswith("Request is missing required authentication credential")
    assert "details" not in missing
    invalid = error_of(send(client, fcm, "ya29.nope", message()), 401, "UNAUTHENTICATED")
    assert invalid["message"].startswith("Request had invalid authentication credentials")
    other = error_of(
        send(client, fcm, access_token, message(), project="other"), 403, "PERMISSION_DENIED"
    )
    assert "cloudmessaging.messages.create" in other["message"]
    fcm.set_api_enabled(PROJECT, False)
    disabled = error_of(send(client, fcm, access_token, message()), 403, "PERMISSION_DENIED")
    assert "has not been used in project my-project" in disabled["message"]
    assert fcm_error_code(disabled) is None


def test_expired_access_token(
    client: httpx.Client, fcm: FakeFcm, access_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fcm, "clock", lambda: time.time() + 3600)
    error_of(send(client, fcm, access_token, message()), 401, "UNAUTHENTICATED")


def test_content_type_must_be_json(client: httpx.Client, fcm: FakeFcm, access_token: str) -> None:
    response = send(client, fcm, access_token, message(), headers={"content-type": "text/plain"})
    error_of(response, 400, "INVALID_ARGUMENT")


def test_error_envelope_is_byte_exact(
    client: httpx.Client, fcm: FakeFcm, access_token: str
) -> None:
    fcm.set_token_state(TOKEN, "unregistered")
    response = send(client, fcm, access_token, message())
    assert response.status_code == 404
    assert response.content == (
        b'{\n  "error": {\n    "code": 404,\n    "message": "Requested entity was not found.",\n'
        b'    "status": "NOT_FOUND",\n    "details": [\n      {\n'
        b'        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",\n'
        b'        "errorCode": "UNREGISTERED"\n      }\n    ]\n  }\n}'
    )
    assert fcm.received[0].error_code == "UNREGISTERED"


SCHEMA = [
    pytest.param(b"{not json", None, "Unexpected token", id="not-json"),
    pytest.param(
        {**message(), "foo": 1}, None, 'Unknown name "foo": Cannot find field.', id="unknown-top"
    ),
    pytest.param(
        message(android={"foo": 1}),
        "message.android",
        "Unknown name \"foo\" at 'message.android': Cannot find field.",
        id="unknown-nested",
    ),
    pytest.param(
        message(data={"a": "x", "b": 12}),
        "message.data[1].value",
        "Invalid value at 'message.data[1].value' (TYPE_STRING), 12",
        id="data-number",
    ),
    pytest.param({**message(), "validate_only": "yes"}, "validate_only", "TYPE_BOOL", id="bool"),
    pytest.param(message(android="x"), "message.android", "AndroidConfig", id="object"),
    pytest.param(
        message(android={"priority": "urgent"}), "message.android.priority", "Priority", id="enum"
    ),
    pytest.param(message(android={"ttl": "abc"}), "message.android.ttl", "Duration", id="ttl"),
    pytest.param(
        message(android={"notification": {"visibility": "HIDDEN"}}),
        "message.android.notification.visibility",
        "Visibility",
        id="visibility",
    ),
    pytest.param(
        message(android={"notification": {"proxy": "MAYBE"}}),
        "message.android.notification.proxy",
        "Proxy",
        id="proxy",
    ),
    pytest.param(
        message(android={"notification": {"notification_priority": "LOUD"}}),
        "message.android.notification.notification_priority",
        "NotificationPriority",
        id="notification-priority",
    ),
    pytest.param(
        message(android={"notification": {"body_loc_args": "a"}}),
        "message.android.notification.body_loc_args",
        "TYPE_LIST",
        id="list",
    ),
    pytest.param(message(apns={"payload": [1]}), "message.apns.payload", "Struct", id="struct"),
]


@pytest.mark.parametrize(("body", "field", "text"), SCHEMA)
def test_schema_violations(
    client: httpx.Client, fcm: FakeFcm, access_token: str, body: Any, field: Any, text: str
) -> None:
    error = error_of(send(client, fcm, access_token, body), 400, "INVALID_ARGUMENT")
    assert text in error["message"]
    assert violation_field(error) == field
    assert fcm_error_code(error) is None  # a schema error carries no FcmError


RULES = [
    pytest.param({"token": None}, "message", id="no-target"),
    pytest.param({"topic": "news"}, "message", id="two-targets"),
    pytest.param({"name": "projects/p/messages/1"}, "message.name", id="name"),
    pytest.param({"token": None, "topic": "/topics/news"}, "message.topic", id="topic-prefix"),
    pytest.param(
        {"token": None, "condition": " || ".join(f"'t{i}' in topics" for i in range(6))},
        "message.condition",
        id="six-topics",
    ),
    pytest.param(
        {"token": None, "condition": "'a' in topics &&"}, "message.condition", id="malformed"
    ),
    pytest.param({"data": {"from": "x"}}, "message.data", id="data-from"),
    pytest.param({"data": {"message_type": "x"}}, "message.data", id="data-message-type"),
    pytest.param({"data": {"google.x": "x"}}, "message.data", id="data-google"),
    pytest.param({"android": {"data": {"gcm.x": "x"}}}, "message.android.data", id="android-gcm"),
    pytest.param({"webpush": {"data": {"from": "x"}}}, "message.webpush.data", id="webpush-from"),
    pytest.param({"android": {"ttl": "2419201s"}}, "message.android.ttl", id="ttl-over-28-days"),
    pytest.param(
        {"android": {"notification": {"color": "red"}}},
        "message.android.notification.color",
        id="color",
    ),
    pytest.param(
        {"android": {"notification": {"title_loc_args": ["a"]}}},
        "message.android.notification.title_loc_args",
        id="loc-args-without-key",
    ),
    pytest.param(
        {"apns": {"headers": {"apns-priority": "7"}}},
        "message.apns.headers[0].value",
        id="apns-priority",
    ),
    pytest.param(
        {"apns": {"headers": {"apns-expiration": "tomorrow"}}},
        "message.apns.headers[0].value",
        id="apns-expiration",
    ),
    pytest.param(
        {"apns": {"payload": {"aps": {}, "x": "y" * 5000}}}, "message.apns.payload", id="apns-size"
    ),
    pytest.param(
        {"webpush": {"fcm_options": {"link": "http://example.com"}}},
        "message.webpush.fcm_options.link",
        id="http-link",
    ),
    pytest.param(
        {"fcm_options": {"analytics_label": "no spaces"}},
        "message.fcm_options.analytics_label",
        id="analytics-label",
    ),
    pytest.param({"data": {"k": "v" * 5000}}, "message", id="too-big"),
    pytest.param(
        {"token": None, "topic": "news", "data": {"k": "v" * 3000}}, "message", id="topic-too-big"
    ),
]


@pytest.mark.parametrize(("fields", "field"), RULES)
def test_message_rules(
    client: httpx.Client, fcm: FakeFcm, access_token: str, fields: dict[str, Any], field: str
) -> None:
    body = {"message": {k: v for k, v in {"token": TOKEN, **fields}.items() if v is not None}}
    error = error_of(send(client, fcm, access_token, body), 400, "INVALID_ARGUMENT")
    assert fcm_error_code(error) == "INVALID_ARGUMENT"
    assert violation_field(error) == field


def test_message_is_required(client: httpx.Client, fcm: FakeFcm, access_token: str) -> None:
    error = error_of(send(client, fcm, access_token, {}), 400, "INVALID_ARGUMENT")
    assert fcm_error_code(error) == "INVALID_ARGUMENT"


def test_malformed_token(client: httpx.Client, fcm: FakeFcm, access_token: str) -> None:
    response = send(client, fcm, access_token, {"message": {"token": "short"}})
    error = error_of(response, 400, "INVALID_ARGUMENT")
    assert error["message"] == "The registration token is not a valid FCM registration token"
    assert fcm_error_code(error) == "INVALID_ARGUMENT"
    assert fcm.received[0].token == "short"


@pytest.mark.parametrize(
    ("state", "status", "canonical", "code"),
    [
        ("unregistered", 404, "NOT_FOUND", "UNREGISTERED"),
        ("invalid", 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        ("other_project", 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
        ("apns_auth_error", 401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
    ],
)
def test_token_states(
    client: httpx.Client,
    fcm: FakeFcm,
    access_token: str,
    state: Any,
    status: int,
    canonical: str,
    code: str,
) -> None:
    fcm.set_token_state(TOKEN, state)
    error = error_of(send(client, fcm, access_token, message()), status, canonical)
    assert fcm_error_code(error) == code
    other = {"message": {"token": "another-token-" + "b" * 30}}
    assert send(client, fcm, access_token, other).status_code == 200


@pytest.mark.parametrize("quota", ["project_quota", "device_quota"])
def test_quotas(
    client: httpx.Client,
    fcm: FakeFcm,
    access_token: str,
    quota: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fcm, quota, RateLimiter(2, 60))
    answers = [send(client, fcm, access_token, message()) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    error = error_of(answers[2], 429, "RESOURCE_EXHAUSTED")
    assert fcm_error_code(error) == "QUOTA_EXCEEDED"
    assert 1 <= int(answers[2].headers["retry-after"]) <= 30


def test_scripted_replies(client: httpx.Client, fcm: FakeFcm, access_token: str) -> None:
    other = "another-token-" + "c" * 30
    fcm.script(token=other)  # 404 UNREGISTERED by default
    fcm.script(status=503, retry_after=7)
    fcm.script(status=500, times=2)
    fcm.script(status=403, error_code="")
    unavailable = send(client, fcm, access_token, message())
    assert fcm_error_code(error_of(unavailable, 503, "UNAVAILABLE")) == "UNAVAILABLE"
    assert unavailable.headers["retry-after"] == "7"
    internal = error_of(send(client, fcm, access_token, message()), 500, "INTERNAL")
    assert fcm_error_code(internal) == "INTERNAL"
    gone = error_of(
        send(client, fcm, access_token, {"message": {"token": other}}), 404, "NOT_FOUND"
    )
    assert fcm_error_code(gone) == "UNREGISTERED"
    error_of(send(client, fcm, access_token, message()), 500, "INTERNAL")
    denied = error_of(send(client, fcm, access_token, message()), 403, "PERMISSION_DENIED")
    assert "details" not in denied
    assert send(client, fcm, access_token, message()).status_code == 200


def test_scripted_delay_and_drop(client: httpx.Client, fcm: FakeFcm, access_token: str) -> None:
    fcm.script(status=None, delay=0.3)
    started = time.monotonic()
    assert send(client, fcm, access_token, message()).status_code == 200
    assert time.monotonic() - started >= 0.3
    fcm.script(drop_connection=True)
    with pytest.raises(httpx.TransportError):
        send(client, fcm, access_token, message())
    assert fcm.received[-1].status is None
    assert send(client, fcm, access_token, message()).status_code == 200


def test_advertises_100_concurrent_streams(fakes: FakeProviders) -> None:
    with RawH2(fakes.fcm.url, fakes.ca_file) as raw:
        raw.read_until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        assert raw.conn.remote_settings.max_concurrent_streams == 100
        assert SettingCodes.MAX_CONCURRENT_STREAMS in raw.conn.remote_settings
