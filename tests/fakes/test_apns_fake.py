"""The APNs fake, driven over real sockets by httpx (HTTP/2) and by a raw h2 client.

Each validation rule of specs/providers.md sec. 10.1 and each scripted failure is
exercised at least once, with the exact answer the fake must give.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h2.events
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from pushgate.fakes.apns import ApnsSigningKey, FakeApns
from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.state import RateLimiter
from tests.fakes import BUNDLE, PAYLOAD, TEAM, RawH2, certificate_files, trusting

TOKEN = "ab" * 32


@pytest.fixture
def apns(fakes: FakeProviders) -> FakeApns:
    return fakes.apns


@pytest.fixture
def client(fakes: FakeProviders) -> Iterator[httpx.Client]:
    with httpx.Client(http2=True, verify=trusting(fakes.ca_file), trust_env=False, timeout=5) as c:
        yield c


def push(
    client: httpx.Client,
    fake: FakeApns,
    key: ApnsSigningKey | None,
    *,
    token: str = TOKEN,
    path: str | None = None,
    method: str = "POST",
    headers: dict[str, str | bytes | None] | None = None,
    body: bytes = PAYLOAD,
) -> httpx.Response:
    """One request; ``headers`` override the defaults, None removes one."""
    sent: dict[str, str | bytes | None] = {"apns-topic": BUNDLE, "apns-push-type": "alert"}
    if key is not None:
        sent["authorization"] = f"bearer {key.token()}"
    sent.update(headers or {})
    final = {
        name.encode(): value if isinstance(value, bytes) else value.encode()
        for name, value in sent.items()
        if value is not None
    }
    url = fake.url + (path if path is not None else f"/3/device/{token}")
    return client.request(method, url, headers=final, content=body if method == "POST" else None)


def assert_error(response: httpx.Response, status: int, reason: str) -> None:
    assert (response.status_code, response.content) == (
        status,
        json.dumps({"reason": reason}, separators=(",", ":")).encode(),
    )
    assert response.headers["content-type"] == "application/json"
    assert "apns-id" in response.headers


def test_valid_push_is_accepted_and_recorded(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    apns_id = "123e4567-e89b-12d3-a456-426614174000"
    response = push(client, apns, key, headers={"apns-id": apns_id, "apns-priority": "10"})
    assert response.http_version == "HTTP/2"
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["apns-id"] == apns_id
    assert "apns-unique-id" not in response.headers  # sandbox only
    (received,) = apns.wait_for(1)
    assert received.token == TOKEN
    assert received.json == {"aps": {"alert": "hello"}}
    assert received.payload == PAYLOAD
    assert (received.key_id, received.team_id) == (key.key_id, TEAM)
    assert received.headers["apns-topic"] == BUNDLE
    assert received.headers[":method"] == "POST"
    assert (received.status, received.reason, received.apns_id) == (200, None, apns_id)
    assert apns.delivered == apns.received == [received]


def test_apns_id_is_generated_when_absent_even_on_errors(
    client: httpx.Client, apns: FakeApns
) -> None:
    response = push(client, apns, None)
    assert_error(response, 403, "MissingProviderToken")
    assert len(response.headers["apns-id"]) == 36


REQUEST_RULES = [
    pytest.param({"method": "GET"}, 405, "MethodNotAllowed", id="get"),
    pytest.param({"path": "/3/devices/" + TOKEN}, 404, "BadPath", id="bad-path"),
    pytest.param({"path": "/3/device/"}, 400, "MissingDeviceToken", id="no-token"),
    pytest.param({"token": "abc"}, 400, "BadDeviceToken", id="odd-length"),
    pytest.param({"token": "zz" * 32}, 400, "BadDeviceToken", id="not-hex"),
    pytest.param({"token": "ab" * 31}, 400, "BadDeviceToken", id="62-chars"),
    pytest.param({"headers": {"authorization": None}}, 403, "MissingProviderToken", id="no-jwt"),
    pytest.param(
        {"headers": {"authorization": "Basic dXNlcjpwYXNz"}},
        403,
        "InvalidProviderToken",
        id="basic-scheme",
    ),
    pytest.param(
        {"headers": {"authorization": "bearer not.a.jwt"}},
        403,
        "InvalidProviderToken",
        id="garbage-jwt",
    ),
    pytest.param({"headers": {"apns-topic": None}}, 400, "MissingTopic", id="no-topic"),
    pytest.param({"headers": {"apns-topic": "com example"}}, 400, "BadTopic", id="bad-topic"),
    pytest.param(
        {"headers": {"apns-topic": "com.other.app"}}, 400, "TopicDisallowed", id="other-topic"
    ),
    pytest.param({"headers": {"apns-push-type": "nope"}}, 400, "InvalidPushType", id="push-type"),
    pytest.param(
        {"headers": {"apns-push-type": "voip"}}, 400, "InvalidPushType", id="voip-bare-topic"
    ),
    pytest.param(
        {"headers": {"apns-topic": BUNDLE + ".voip"}},
        400,
        "InvalidPushType",
        id="alert-voip-topic",
    ),
    pytest.param(
        {"headers": {"apns-id": "123E4567-E89B-12D3-A456-426614174000"}},
        400,
        "BadMessageId",
        id="upper-case-id",
    ),
    pytest.param({"headers": {"apns-id": "1234"}}, 400, "BadMessageId", id="short-id"),
    pytest.param(
        {"headers": {"apns-expiration": "-1"}}, 400, "BadExpirationDate", id="negative-exp"
    ),
    pytest.param({"headers": {"apns-expiration": "soon"}}, 400, "BadExpirationDate", id="word-exp"),
    pytest.param({"headers": {"apns-priority": "7"}}, 400, "BadPriority", id="priority"),
    pytest.param(
        {
            "headers": {"apns-push-type": "background", "apns-priority": "10"},
            "body": b'{"aps":{"content-available":1}}',
        },
        400,
        "BadPriority",
        id="background-priority-10",
    ),
    pytest.param(
        {"headers": {"apns-collapse-id": "\u00e9".encode() * 33}},
        400,
        "BadCollapseId",
        id="collapse-id-66-bytes",
    ),
    pytest.param({"body": b""}, 400, "PayloadEmpty", id="empty"),
    pytest.param({"body": b" " * 4097}, 413, "PayloadTooLarge", id="4097-bytes"),
    pytest.param({"body": b"{not json"}, 400, "BadPayload", id="not-json"),
    pytest.param({"body": b"[1]"}, 400, "BadPayload", id="not-object"),
    pytest.param({"body": b'{"aps":"x"}'}, 400, "BadPayload", id="aps-string"),
    pytest.param({"body": b'{"aps":{"alert":5}}'}, 400, "BadPayload", id="alert-number"),
    pytest.param({"body": b'{"aps":{"badge":"5"}}'}, 400, "BadPayload", id="badge-string"),
    pytest.param({"body": b'{"aps":{"sound":{"volume":2}}}'}, 400, "BadPayload", id="sound-volume"),
    pytest.param({"body": b'{"aps":{"interruption-level":"loud"}}'}, 400, "BadPayload", id="level"),
    pytest.param({"body": b'{"aps":{"relevance-score":1.5}}'}, 400, "BadPayload", id="relevance"),
    pytest.param(
        {
            "headers": {"apns-push-type": "background", "apns-priority": "5"},
            "body": b'{"aps":{"content-available":1,"alert":"x"}}',
        },
        400,
        "BadPayload",
        id="background-with-alert",
    ),
    pytest.param(
        {"headers": {"apns-push-type": "background", "apns-priority": "5"}},
        400,
        "BadPayload",
        id="background-without-content-available",
    ),
]


@pytest.mark.parametrize(("change", "status", "reason"), REQUEST_RULES)
def test_request_rules(
    client: httpx.Client,
    apns: FakeApns,
    key: ApnsSigningKey,
    change: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    response = push(client, apns, key, **change)
    assert_error(response, status, reason)
    (received,) = apns.received
    assert (received.status, received.reason) == (status, reason)
    assert received.detail
    assert apns.delivered == []


def test_repeated_header_is_rejected(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    headers = [
        ("authorization", f"bearer {key.token()}"),
        ("apns-topic", BUNDLE),
        ("apns-topic", BUNDLE),
    ]
    response = client.post(f"{apns.url}/3/device/{TOKEN}", headers=headers, content=PAYLOAD)
    assert_error(response, 400, "DuplicateHeaders")


def test_accepted_edge_cases(client: httpx.Client, apns: FakeApns, key: ApnsSigningKey) -> None:
    """VoIP gets 5120 bytes; a relative-looking expiration is accepted with a warning."""
    voip = push(
        client,
        apns,
        key,
        headers={"apns-push-type": "voip", "apns-topic": BUNDLE + ".voip"},
        body=b'{"aps":{},"x":"' + b"v" * 5000 + b'"}',
    )
    assert voip.status_code == 200
    ttl = push(client, apns, key, headers={"apns-expiration": "300", "apns-collapse-id": "c" * 64})
    assert ttl.status_code == 200
    background = push(
        client,
        apns,
        key,
        headers={"apns-push-type": "background", "apns-priority": "5"},
        body=b'{"aps":{"content-available":1}}',
    )
    assert background.status_code == 200
    assert apns.received[1].warnings == ("apns-expiration looks like a relative TTL",)


def test_large_body_is_read_through_flow_control(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    """200 kB is more than the 65 535-byte initial window: the fake must grant more."""
    response = push(client, apns, key, body=b"x" * 200_000)
    assert_error(response, 413, "PayloadTooLarge")
    assert len(apns.received[0].payload) == 200_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _der_signed(key: ApnsSigningKey) -> str:
    """A token signed with a DER signature instead of JOSE's raw r||s."""
    header = _b64(json.dumps({"alg": "ES256", "kid": key.key_id}).encode())
    claims = _b64(json.dumps({"iss": TEAM, "iat": int(time.time())}).encode())
    private = serialization.load_pem_private_key(key.private_key_pem.encode(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    signature = private.sign(f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    return f"{header}.{claims}.{_b64(signature)}"


def _token(key: ApnsSigningKey, claims: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(claims, key.private_key_pem, algorithm="ES256", headers=headers)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(
            lambda k, now: _token(k, {"iss": TEAM, "iat": now}, kid=k.key_id, x5u="https://x"),
            "InvalidProviderToken",
            id="extra-header-member",
        ),
        pytest.param(
            lambda k, now: jwt.encode(
                {"iss": TEAM, "iat": now}, "s" * 32, headers={"kid": k.key_id}
            ),
            "InvalidProviderToken",
            id="hs256",
        ),
        pytest.param(
            lambda k, now: _token(k, {"iss": TEAM, "iat": now, "exp": now + 60}, kid=k.key_id),
            "InvalidProviderToken",
            id="extra-claim",
        ),
        pytest.param(
            lambda k, now: _token(k, {"iss": TEAM, "iat": now + 0.5}, kid=k.key_id),
            "InvalidProviderToken",
            id="float-iat",
        ),
        pytest.param(lambda k, now: _der_signed(k), "InvalidProviderToken", id="der-signature"),
        pytest.param(
            lambda k, now: _token(k, {"iss": TEAM, "iat": now}, kid="UNKNOWN123"),
            "InvalidProviderToken",
            id="unknown-kid",
        ),
        pytest.param(
            lambda k, now: _token(k, {"iss": "OTHERTEAM1", "iat": now}, kid=k.key_id),
            "InvalidProviderToken",
            id="wrong-iss",
        ),
        pytest.param(
            lambda k, now: jwt.encode(
                {"iss": TEAM, "iat": now},
                ec.generate_private_key(ec.SECP256R1()),
                algorithm="ES256",
                headers={"kid": k.key_id},
            ),
            "InvalidProviderToken",
            id="other-key-signed",
        ),
        pytest.param(lambda k, now: k.token(now + 600), "InvalidProviderToken", id="iat-in-future"),
        pytest.param(
            lambda k, now: k.token(now - 3601), "ExpiredProviderToken", id="iat-over-an-hour"
        ),
    ],
)
def test_provider_token_rules(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey, make: Any, reason: str
) -> None:
    token = make(key, int(time.time()))
    response = push(client, apns, None, headers={"authorization": f"bearer {token}"})
    assert_error(response, 403, reason)


def test_scheme_is_case_insensitive(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    response = push(client, apns, None, headers={"authorization": f"Bearer {key.token()}"})
    assert response.status_code == 200


def test_environment_scoped_key(fakes: FakeProviders, client: httpx.Client) -> None:
    key = fakes.apns.register_key(TEAM, [BUNDLE], environments=["sandbox"])
    assert_error(push(client, fakes.apns, key), 403, "BadEnvironmentKeyIdInToken")
    sandbox = push(client, fakes.apns_sandbox, key)
    assert sandbox.status_code == 200
    assert len(sandbox.headers["apns-unique-id"]) == 36
    assert fakes.apns_sandbox.delivered[0].environment == "sandbox"


def test_a_connection_is_bound_to_its_first_key_and_team(
    fakes: FakeProviders, client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    same_team = apns.register_key(TEAM, [BUNDLE])
    other_team = apns.register_key("OTHERTEAM1", [BUNDLE])
    assert push(client, apns, key).status_code == 200
    assert_error(push(client, apns, same_team), 403, "UnrelatedKeyIdInToken")
    assert_error(push(client, apns, other_team), 403, "InvalidProviderToken")
    with httpx.Client(http2=True, verify=trusting(fakes.ca_file), trust_env=False) as fresh:
        assert push(fresh, apns, same_team).status_code == 200


def test_topic_specific_key(client: httpx.Client, apns: FakeApns) -> None:
    key = apns.register_key(TEAM, [BUNDLE], topic_specific=True)
    response = push(client, apns, key, headers={"apns-topic": "com.example.other"})
    assert_error(response, 403, "UnrelatedKeyIdInToken")


def test_bring_your_own_key(client: httpx.Client, apns: FakeApns) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    apns.register_key_pem("MYKEY12345", TEAM, public_pem, [BUNDLE])
    token = jwt.encode(
        {"iss": TEAM, "iat": int(time.time())},
        private,
        algorithm="ES256",
        headers={"kid": "MYKEY12345"},
    )
    response = push(client, apns, None, headers={"authorization": f"bearer {token}"})
    assert response.status_code == 200


def test_too_many_provider_token_updates(
    fakes: FakeProviders, apns: FakeApns, key: ApnsSigningKey
) -> None:
    now = int(time.time())
    answers = []
    for iat in (now - 30, now - 20, now - 10, now - 30):
        with httpx.Client(http2=True, verify=trusting(fakes.ca_file), trust_env=False) as fresh:
            token = f"bearer {key.token(iat)}"
            answers.append(push(fresh, apns, None, headers={"authorization": token}))
    assert [a.status_code for a in answers] == [200, 200, 429, 200]
    assert_error(answers[2], 429, "TooManyProviderTokenUpdates")


@pytest.mark.parametrize(
    ("state", "status", "reason"),
    [
        ("expired", 410, "ExpiredToken"),
        ("other_env", 400, "BadDeviceToken"),
        ("other_topic", 400, "DeviceTokenNotForTopic"),
    ],
)
def test_token_states(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey, state: Any, status: int, reason: str
) -> None:
    apns.set_token_state(TOKEN, state)
    assert_error(push(client, apns, key), status, reason)
    assert push(client, apns, key, token="cd" * 32).status_code == 200


def test_unregistered_token_carries_its_timestamp(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    apns.set_token_state(TOKEN, "unregistered", timestamp_ms=1_600_000_000_000)
    response = push(client, apns, key)
    assert response.status_code == 410
    assert response.content == b'{"reason":"Unregistered","timestamp":1600000000000}'
    assert response.headers["content-type"] == "application/json"
    assert apns.received[0].timestamp == 1_600_000_000_000


def test_per_device_rate_limit(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apns, "device_rate_limit", RateLimiter(2, 60))
    statuses = [push(client, apns, key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert apns.received[2].reason == "TooManyRequests"


def test_scripted_replies(client: httpx.Client, apns: FakeApns, key: ApnsSigningKey) -> None:
    other = "cd" * 32
    apns.script(token=other)  # 410 Unregistered by default
    apns.script(status=429, reason="TooManyRequests", retry_after=30)
    apns.script(status=500, reason="InternalServerError", times=2)
    first = push(client, apns, key)
    assert_error(first, 429, "TooManyRequests")
    assert first.headers["retry-after"] == "30"
    assert_error(push(client, apns, key), 500, "InternalServerError")
    unregistered = push(client, apns, key, token=other)
    assert unregistered.status_code == 410
    assert json.loads(unregistered.content)["reason"] == "Unregistered"
    assert isinstance(json.loads(unregistered.content)["timestamp"], int)
    assert_error(push(client, apns, key), 500, "InternalServerError")
    assert push(client, apns, key).status_code == 200
    assert push(client, apns, key, token=other).status_code == 200


def test_scripts_apply_only_to_valid_requests(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    apns.script(status=500, reason="InternalServerError")
    assert_error(push(client, apns, key, token="zz"), 400, "BadDeviceToken")
    assert push(client, apns, key).status_code == 500


def test_scripted_delay(client: httpx.Client, apns: FakeApns, key: ApnsSigningKey) -> None:
    apns.script(status=None, delay=0.3)
    started = time.monotonic()
    assert push(client, apns, key).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_scripted_dropped_connection(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    apns.script(drop_connection=True)
    with pytest.raises(httpx.TransportError):
        push(client, apns, key)
    (dropped,) = apns.received
    assert dropped.status is None
    assert push(client, apns, key).status_code == 200  # on a new connection


def test_scripted_shutdown_ends_with_goaway(fakes: FakeProviders, key: ApnsSigningKey) -> None:
    fakes.apns.script(status=503, reason="Shutdown", goaway=True)
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        stream = raw.request(f"/3/device/{TOKEN}", _raw_headers(key), PAYLOAD)
        status, _, body = raw.response(stream)
        goaway = raw.read_until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
    assert (status, body) == (503, b'{"reason":"Shutdown"}')
    assert isinstance(goaway, h2.events.ConnectionTerminated)
    assert goaway.error_code == ErrorCodes.NO_ERROR
    assert goaway.last_stream_id == stream
    assert goaway.additional_data == b'{"reason": "Shutdown"}'


def test_goaway_and_idle_timeout(
    fakes: FakeProviders, key: ApnsSigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        stream = raw.request(f"/3/device/{TOKEN}", _raw_headers(key), PAYLOAD)
        assert raw.response(stream)[0] == 200
        fakes.apns.goaway("Shutdown")
        goaway = raw.read_until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
    assert isinstance(goaway, h2.events.ConnectionTerminated)
    assert (goaway.last_stream_id, goaway.additional_data) == (1, b'{"reason":"Shutdown"}')
    monkeypatch.setattr(fakes.apns, "idle_timeout", 0.2)
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        idle = raw.read_until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
    assert isinstance(idle, h2.events.ConnectionTerminated)
    assert (idle.last_stream_id, idle.additional_data) == (0, b'{"reason":"IdleTimeout"}')


def _raw_headers(key: ApnsSigningKey) -> list[tuple[str, str]]:
    return [
        ("authorization", f"bearer {key.token()}"),
        ("apns-topic", BUNDLE),
        ("apns-push-type", "alert"),
    ]


def test_stream_limit_starts_at_one_and_rises_after_a_valid_jwt(
    fakes: FakeProviders, key: ApnsSigningKey
) -> None:
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        raw.read_until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        settings = raw.conn.remote_settings
        assert settings.max_concurrent_streams == 1
        assert settings.header_table_size == 4096
        assert settings.initial_window_size == 65535
        assert settings.max_frame_size == 16384
        assert settings.max_header_list_size == 8000
        stream = raw.request(f"/3/device/{TOKEN}", _raw_headers(key), PAYLOAD)
        assert raw.response(stream)[0] == 200
        raw.read_until(
            lambda e: (
                isinstance(e, h2.events.RemoteSettingsChanged)
                and SettingCodes.MAX_CONCURRENT_STREAMS in e.changed_settings
            )
        )
        assert raw.conn.remote_settings.max_concurrent_streams == 1000


def test_streams_beyond_the_limit_are_refused(fakes: FakeProviders, key: ApnsSigningKey) -> None:
    """A second stream while the first is still open, before any SETTINGS were read."""
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        first = raw.request(f"/3/device/{TOKEN}", _raw_headers(key), end=False)
        second = raw.request(f"/3/device/{TOKEN}", _raw_headers(key), PAYLOAD)
        assert raw.response(second) == (0, {"error_code": str(ErrorCodes.REFUSED_STREAM)}, b"")
        raw.conn.send_data(first, PAYLOAD, end_stream=True)
        raw.flush()
        assert raw.response(first)[0] == 200
    assert len(fakes.apns.received) == 1


def test_strict_mode_closes_the_connection_on_excess_streams(
    fakes: FakeProviders, key: ApnsSigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fakes.apns, "goaway_on_excess_streams", True)
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        raw.request(f"/3/device/{TOKEN}", _raw_headers(key), end=False)
        raw.request(f"/3/device/{TOKEN}", _raw_headers(key), PAYLOAD)
        goaway = raw.read_until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
    assert isinstance(goaway, h2.events.ConnectionTerminated)
    assert goaway.error_code == ErrorCodes.PROTOCOL_ERROR
    assert goaway.additional_data is not None
    assert b"Maximum active streams violated" in goaway.additional_data


def test_limit_can_drop_to_one_after_a_rejection(
    fakes: FakeProviders, key: ApnsSigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optional 2016 behaviour: 1 after a rejected push, raised again after a success."""
    monkeypatch.setattr(fakes.apns, "lower_streams_after_rejection", True)
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        for token in (TOKEN, "zz", TOKEN):
            raw.response(raw.request(f"/3/device/{token}", _raw_headers(key), PAYLOAD))
        limits = [
            event.changed_settings[SettingCodes.MAX_CONCURRENT_STREAMS].new_value
            for event in raw.events
            if isinstance(event, h2.events.RemoteSettingsChanged)
            and SettingCodes.MAX_CONCURRENT_STREAMS in event.changed_settings
        ]
    assert limits == [1, 1000, 1, 1000]


def test_priority_frames_are_recorded(fakes: FakeProviders, key: ApnsSigningKey) -> None:
    with RawH2(fakes.apns.url, fakes.ca_file) as raw:
        stream = raw.request(f"/3/device/{TOKEN}", _raw_headers(key), end=False)
        raw.conn.prioritize(stream, weight=32)
        raw.conn.send_data(stream, PAYLOAD, end_stream=True)
        raw.flush()
        assert raw.response(stream)[0] == 200
    (frame,) = fakes.apns.priority_frames
    assert (frame.stream_id, frame.weight) == (stream, 32)


def test_http1_is_refused(fakes: FakeProviders) -> None:
    with (
        httpx.Client(http2=False, verify=trusting(fakes.ca_file), trust_env=False) as http1,
        pytest.raises(httpx.TransportError),
    ):
        http1.post(f"{fakes.apns.url}/3/device/{TOKEN}", content=PAYLOAD)


def test_certificate_auth(fakes: FakeProviders, tmp_path: Path) -> None:
    files = certificate_files(tmp_path, fakes.apns.register_certificate(BUNDLE))
    with RawH2(fakes.apns.url, fakes.ca_file, cert=files) as raw:
        raw.read_until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        assert raw.conn.remote_settings.max_concurrent_streams == 1000
        stream = raw.request(f"/3/device/{TOKEN}", [], PAYLOAD)  # topic from the certificate
        assert raw.response(stream)[0] == 200
        stream = raw.request(f"/3/device/{TOKEN}", [("apns-push-type", "liveactivity")], PAYLOAD)
        status, headers, body = raw.response(stream)
        assert (status, body) == (400, b'{"reason":"InvalidPushType"}')
        assert headers["content-type"] == "application/json"
    (push_,) = fakes.apns.delivered
    assert (push_.certificate_uid, push_.key_id) == (BUNDLE, None)
    assert fakes.apns.received[1].reason == "InvalidPushType"


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        pytest.param(
            lambda f: f.apns_sandbox.register_certificate(BUNDLE),
            403,
            "BadCertificateEnvironment",
            id="sandbox-cert",
        ),
        pytest.param(
            lambda f: f.apns.register_certificate(
                BUNDLE, not_after=datetime.now(UTC) - timedelta(days=1)
            ),
            403,
            "BadCertificate",
            id="expired",
        ),
        pytest.param(
            lambda f: f.ca.issue_client_certificate("stranger", BUNDLE),
            403,
            "BadCertificate",
            id="unregistered",
        ),
        pytest.param(
            lambda f: f.apns.register_certificate(BUNDLE, topics=[BUNDLE, "com.example.two"]),
            400,
            "MissingTopic",
            id="multi-topic-without-apns-topic",
        ),
    ],
)
def test_certificate_rules(
    fakes: FakeProviders, tmp_path: Path, make: Any, status: int, reason: str
) -> None:
    files = certificate_files(tmp_path, make(fakes))
    with httpx.Client(http2=True, verify=trusting(fakes.ca_file, files), trust_env=False) as client:
        assert_error(
            client.post(f"{fakes.apns.url}/3/device/{TOKEN}", content=PAYLOAD), status, reason
        )


def test_revoked_certificate_and_multi_topic(fakes: FakeProviders, tmp_path: Path) -> None:
    pem = fakes.apns.register_certificate(BUNDLE, topics=[BUNDLE, "com.example.two"])
    with httpx.Client(
        http2=True,
        verify=trusting(fakes.ca_file, certificate_files(tmp_path, pem)),
        trust_env=False,
    ) as client:
        url = f"{fakes.apns.url}/3/device/{TOKEN}"
        two = client.post(url, headers={"apns-topic": "com.example.two"}, content=PAYLOAD)
        assert two.status_code == 200
        fakes.apns.revoke_certificate(pem[0])
        revoked = client.post(url, headers={"apns-topic": BUNDLE}, content=PAYLOAD)
        assert_error(revoked, 403, "BadCertificate")


def test_reset_and_wait_for_timeout(
    client: httpx.Client, apns: FakeApns, key: ApnsSigningKey
) -> None:
    apns.set_token_state(TOKEN, "expired")
    apns.script(status=500, reason="InternalServerError")
    apns.reset()
    assert push(client, apns, key).status_code == 200
    apns.reset()
    assert apns.received == []
    with pytest.raises(TimeoutError):
        apns.wait_for(1, timeout=0.1)
