"""Platform endpoints through boto3 against a running server, on both stores.

Covers specs/sns-api.md sec. 4.6-4.10: the duplicate-token rule exactly as recorded from AWS,
attribute validation, APNs token normalisation, Baidu's extra attributes, merging on
SetEndpointAttributes, pagination, idempotent deletion, and the registration procedure of
the SNS token-management guidance run end to end.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import ACCOUNT, REGION, Server, unique

REASON = "Invalid parameter: Attributes Reason: "
TOO_LONG = (
    REASON + "Invalid value for attribute: CustomUserData: must be at most 2048 bytes long in "
    "UTF-8 encoding"
)
NO_SUCH_APP = ("NotFound", "PlatformApplication does not exist")
NO_SUCH_ENDPOINT = ("NotFound", "Endpoint does not exist")
PAIRS = {  # principal / credential pairs that need no particular format
    "ADM": {"PlatformPrincipal": "adm-client", "PlatformCredential": "adm-secret"},
    "BAIDU": {"PlatformPrincipal": "api-key", "PlatformCredential": "secret-key"},
    "Baidu": {"PlatformPrincipal": "api-key", "PlatformCredential": "secret-key"},
    "WNS": {"PlatformPrincipal": "ms-app://s-1-15-2-1", "PlatformCredential": "secret"},
}


# --- helpers -----------------------------------------------------------------------------------


def _p8() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def credentials_for(platform: str) -> dict[str, str]:
    if platform == "GCM":
        return {"PlatformCredential": "AIzaSyEndpointTests"}
    if platform.startswith(("APNS", "MACOS")):
        return {
            "PlatformPrincipal": "KEYID12345",
            "PlatformCredential": _p8(),
            "ApplePlatformTeamID": "TEAM123456",
            "ApplePlatformBundleID": "com.example.pushgate",
        }
    return PAIRS[platform]


def new_app(sns: Any, platform: str = "GCM", name: str | None = None) -> str:
    arn: str = sns.create_platform_application(
        Name=name or unique("app"), Platform=platform, Attributes=credentials_for(platform)
    )["PlatformApplicationArn"]
    return arn


@pytest.fixture
def app(sns: Any) -> Iterator[str]:
    arn = new_app(sns)
    yield arn
    sns.delete_platform_application(PlatformApplicationArn=arn)


def endpoint(sns: Any, app_arn: str, token: str, **kwargs: Any) -> str:
    arn: str = sns.create_platform_endpoint(PlatformApplicationArn=app_arn, Token=token, **kwargs)[
        "EndpointArn"
    ]
    return arn


def attributes_of(sns: Any, arn: str) -> dict[str, str]:
    result: dict[str, str] = sns.get_endpoint_attributes(EndpointArn=arn)["Attributes"]
    return result


def set_attributes(sns: Any, arn: str, **attributes: str) -> None:
    sns.set_endpoint_attributes(EndpointArn=arn, Attributes=attributes)


def assert_error(
    err: pytest.ExceptionInfo[ClientError], status: int, code: str, message: str
) -> None:
    response = err.value.response
    assert response["Error"] == {
        "Type": "Sender" if status < 500 else "Receiver",
        "Code": code,
        "Message": message,
    }
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status


def assert_invalid(err: pytest.ExceptionInfo[ClientError], message: str) -> None:
    assert_error(err, 400, "InvalidParameter", message)


def already_exists(arn: str) -> str:
    return (
        f"Invalid parameter: Token Reason: Endpoint {arn} already exists with the same Token, "
        "but different attributes."
    )


def assert_already_exists(err: pytest.ExceptionInfo[ClientError], arn: str) -> None:
    assert_invalid(err, already_exists(arn))


def listed(sns: Any, app_arn: str) -> list[dict[str, Any]]:
    pages = sns.get_paginator("list_endpoints_by_platform_application").paginate(
        PlatformApplicationArn=app_arn
    )
    return [e for page in pages for e in page["Endpoints"]]


def token() -> str:
    return "fcm-" + uuid.uuid4().hex


# --- creation ----------------------------------------------------------------------------------


def test_new_endpoint_arn_and_attributes(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t)
    app_name = app.rsplit("/", 1)[1]
    assert re.fullmatch(
        rf"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/GCM/{re.escape(app_name)}/"
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        arn,
    )
    # Recorded from AWS: a fresh endpoint is exactly {"Enabled": "true", "Token": ...}.
    assert attributes_of(sns, arn) == {"Enabled": "true", "Token": t}


def test_unknown_application(sns: Any) -> None:
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:app/GCM/{unique('missing')}"
    with pytest.raises(ClientError) as err:
        endpoint(sns, missing, token())
    assert_error(err, 404, *NO_SUCH_APP)


def test_empty_token(sns: Any, app: str) -> None:
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, "")
    assert_invalid(err, "Invalid parameter: Token Reason: Token is not specified")


def test_custom_user_data_parameter_is_the_attribute(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t, CustomUserData="user=42&x=ü")
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "Token": t,
        "CustomUserData": "user=42&x=ü",
    }


def test_custom_user_data_attribute_wins_over_parameter(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t, CustomUserData="bar", Attributes={"CustomUserData": "foo"})
    assert attributes_of(sns, arn)["CustomUserData"] == "foo"
    # The precedence also decides what the duplicate check compares.
    assert endpoint(sns, app, t, CustomUserData="baz", Attributes={"CustomUserData": "foo"}) == arn
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, t, CustomUserData="foo", Attributes={"CustomUserData": "bar"})
    assert_already_exists(err, arn)


def test_created_disabled(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t, Attributes={"Enabled": "false"})
    assert attributes_of(sns, arn) == {"Enabled": "false", "Token": t}


@pytest.mark.parametrize("name", ["PlatformPrincipal", "enabled", "ChannelId", "Foo"])
def test_invalid_attribute_name(sns: Any, app: str, name: str) -> None:
    t = token()
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, t, Attributes={name: "x"})
    assert_invalid(err, f"{REASON}Invalid attribute name: {name}")
    assert listed(sns, app) == []


@pytest.mark.parametrize("value", ["yes", "1", ""])
def test_invalid_enabled_value(sns: Any, app: str, value: str) -> None:
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, token(), Attributes={"Enabled": value})
    assert_invalid(err, f"{REASON}Enabled: Invalid value [{value}]. Must be true or false.")


def test_custom_user_data_limit_counts_utf8_bytes(sns: Any, app: str) -> None:
    two_byte = "é" * 1024  # 1024 characters, 2048 bytes: the limit
    arn = endpoint(sns, app, token(), CustomUserData=two_byte)
    assert attributes_of(sns, arn)["CustomUserData"] == two_byte
    for too_long in ("é" * 1024 + "x", "€" * 683, "😀" * 513, "x" * 2049):
        assert len(too_long) < 2050 and len(too_long.encode()) > 2048
        with pytest.raises(ClientError) as err:
            endpoint(sns, app, token(), CustomUserData=too_long)
        assert_invalid(err, TOO_LONG)
        with pytest.raises(ClientError) as err:
            endpoint(sns, app, token(), Attributes={"CustomUserData": too_long})
        assert_invalid(err, TOO_LONG)
        with pytest.raises(ClientError) as err:
            set_attributes(sns, arn, CustomUserData=too_long)
        assert_invalid(err, TOO_LONG)
    assert attributes_of(sns, arn)["CustomUserData"] == two_byte
    assert len(listed(sns, app)) == 1


# --- the duplicate-token rule (sec. 4.6) -------------------------------------------------------


def test_same_token_without_attributes_is_the_same_endpoint(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t)
    assert endpoint(sns, app, t) == arn
    assert endpoint(sns, app, t, Attributes={"Enabled": "true"}) == arn
    assert endpoint(sns, app, t, Attributes={"Enabled": "TRUE"}) == arn
    assert [e["EndpointArn"] for e in listed(sns, app)] == [arn]


def test_same_token_created_disabled(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t, Attributes={"Enabled": "false"})
    assert endpoint(sns, app, t, Attributes={"Enabled": "false"}) == arn
    # Without attributes: the existing ARN, and it stays disabled.
    assert endpoint(sns, app, t) == arn
    assert attributes_of(sns, arn)["Enabled"] == "false"
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, t, Attributes={"Enabled": "true"})
    assert_already_exists(err, arn)
    assert attributes_of(sns, arn) == {"Enabled": "false", "Token": t}


def test_enabled_false_against_an_enabled_endpoint(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t)
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, t, Attributes={"Enabled": "false"})
    assert_already_exists(err, arn)
    assert attributes_of(sns, arn)["Enabled"] == "true"


def test_custom_user_data_differs(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t)
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, t, CustomUserData="new data")
    assert_already_exists(err, arn)
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, t, Attributes={"CustomUserData": "new data"})
    assert_already_exists(err, arn)
    assert attributes_of(sns, arn) == {"Enabled": "true", "Token": t}

    other = token()
    with_data = endpoint(sns, app, other, CustomUserData="X")
    assert endpoint(sns, app, other, CustomUserData="X") == with_data
    assert endpoint(sns, app, other, Attributes={"CustomUserData": "X"}) == with_data
    assert endpoint(sns, app, other) == with_data  # omitted counts as not supplied
    assert endpoint(sns, app, other, Attributes={"Enabled": "true"}) == with_data
    for different in ("Y", "x", "", "X "):
        with pytest.raises(ClientError) as err:
            endpoint(sns, app, other, CustomUserData=different)
        assert_already_exists(err, with_data)
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, other, CustomUserData="X", Attributes={"Enabled": "false"})
    assert_already_exists(err, with_data)
    assert attributes_of(sns, with_data) == {
        "Enabled": "true",
        "Token": other,
        "CustomUserData": "X",
    }


def test_message_matches_the_client_regex(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t, CustomUserData="a")
    with pytest.raises(ClientError) as err:
        endpoint(sns, app, t, CustomUserData="b")
    message = err.value.response["Error"]["Message"]
    match = re.fullmatch(
        r".*Endpoint (arn:aws:sns[^ ]+) already exists with the same [Tt]oken.*", message
    )
    assert match is not None
    assert match[1] == arn
    assert isinstance(err.value, sns.exceptions.InvalidParameterException)


def test_concurrent_creation_of_one_token_makes_one_endpoint(server: Server, app: str) -> None:
    clients = [server.client() for _ in range(12)]
    t = token()
    with ThreadPoolExecutor(len(clients)) as pool:
        arns = set(pool.map(lambda client: endpoint(client, app, t), clients))
    assert len(arns) == 1
    assert [e["EndpointArn"] for e in listed(clients[0], app)] == list(arns)


def test_token_is_unique_per_application_not_globally(sns: Any, app: str) -> None:
    other_app = new_app(sns)
    try:
        t = token()
        here = endpoint(sns, app, t, CustomUserData="here")
        there = endpoint(sns, other_app, t, CustomUserData="there")
        assert here != there
        assert attributes_of(sns, here)["CustomUserData"] == "here"
        assert attributes_of(sns, there)["CustomUserData"] == "there"
        assert [e["EndpointArn"] for e in listed(sns, app)] == [here]
        assert [e["EndpointArn"] for e in listed(sns, other_app)] == [there]
    finally:
        sns.delete_platform_application(PlatformApplicationArn=other_app)


def test_tokens_are_case_sensitive_outside_apple(sns: Any, app: str) -> None:
    lower = endpoint(sns, app, "abcDEF-token")
    upper = endpoint(sns, app, "ABCDEF-TOKEN")
    assert lower != upper
    assert attributes_of(sns, lower)["Token"] == "abcDEF-token"


# --- APNs tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["APNS", "APNS_SANDBOX", "APNS_VOIP", "MACOS_SANDBOX"])
def test_apple_tokens_are_lower_cased(sns: Any, platform: str) -> None:
    app_arn = new_app(sns, platform)
    try:
        hex_token = uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex characters, like APNs
        arn = endpoint(sns, app_arn, hex_token.upper())
        assert attributes_of(sns, arn) == {"Enabled": "true", "Token": hex_token}
        assert endpoint(sns, app_arn, hex_token) == arn
        assert endpoint(sns, app_arn, hex_token.upper()) == arn
        newer = uuid.uuid4().hex * 2
        set_attributes(sns, arn, Token=newer.upper())
        assert attributes_of(sns, arn)["Token"] == newer
        assert endpoint(sns, app_arn, newer) == arn
        assert listed(sns, app_arn)[0]["Attributes"]["Token"] == newer
    finally:
        sns.delete_platform_application(PlatformApplicationArn=app_arn)


# --- Baidu -------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["BAIDU", "Baidu"])
def test_baidu_requires_channel_id_and_user_id(sns: Any, platform: str) -> None:
    app_arn = new_app(sns, platform)
    message = REASON + "ChannelId and UserId are required for Baidu endpoints"
    try:
        channel = "5886986629885642830"
        for attributes in ({}, {"ChannelId": channel}, {"UserId": "763971201"}):
            with pytest.raises(ClientError) as err:
                endpoint(sns, app_arn, channel, Attributes=attributes)
            assert_invalid(err, message)
        with pytest.raises(ClientError) as err:
            endpoint(sns, app_arn, "other-token", Attributes={"ChannelId": channel, "UserId": "1"})
        assert_invalid(err, "Invalid parameter: Token Reason: Token must contain the ChannelId")
        assert listed(sns, app_arn) == []

        arn = endpoint(
            sns, app_arn, channel, Attributes={"ChannelId": channel, "UserId": "763971201"}
        )
        assert arn.split(":")[5].startswith(f"endpoint/{platform}/")
        assert attributes_of(sns, arn) == {
            "Enabled": "true",
            "Token": channel,
            "ChannelId": channel,
            "UserId": "763971201",
        }
        set_attributes(sns, arn, UserId="42")
        assert attributes_of(sns, arn)["UserId"] == "42"
    finally:
        sns.delete_platform_application(PlatformApplicationArn=app_arn)


# --- channel URIs (WNS, MPNS): device-chosen URLs are allow-listed ---------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://169.254.169.254/latest/meta-data/", "host 169.254.169.254:443 is not on"),
        ("https://notify.windows.com.evil.example/?token=x", "is not on the allow-list"),
        ("https://notify.windows.com/?token=x", "host notify.windows.com:443 is not on"),
        ("http://db5.notify.windows.com/?token=x", "not an https URL"),
        ("https://db5.notify.windows.com:8443/?token=x", "host db5.notify.windows.com:8443"),
        ("https://user:pw@db5.notify.windows.com/?token=x", "the URL carries credentials"),
        ("not a url", "not an https URL"),
    ],
)
def test_wns_channel_hosts_are_allow_listed(sns: Any, url: str, why: str) -> None:
    app_arn = new_app(sns, "WNS")
    try:
        with pytest.raises(ClientError) as err:
            endpoint(sns, app_arn, url)
        message = err.value.response["Error"]["Message"]
        assert message.startswith("Invalid parameter: Token Reason: the channel URI is refused: ")
        assert why in message and message.endswith("(PUSHGATE_WNS_ALLOWED_HOSTS)")
        good = endpoint(sns, app_arn, "https://db5.notify.windows.com/?token=AwYAAAB")
        with pytest.raises(ClientError) as err:
            set_attributes(sns, good, Token=url)
        assert why in err.value.response["Error"]["Message"]
        assert [e["EndpointArn"] for e in listed(sns, app_arn)] == [good]
        assert attributes_of(sns, good)["Token"] == "https://db5.notify.windows.com/?token=AwYAAAB"
    finally:
        sns.delete_platform_application(PlatformApplicationArn=app_arn)


def _subscription(endpoint_url: str) -> dict[str, Any]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {
        "endpoint": endpoint_url,
        "expirationTime": None,
        "keys": {"p256dh": _b64url(point), "auth": _b64url(os.urandom(16))},
    }


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_webpush_tokens_are_subscriptions_on_allowed_push_services(sns: Any) -> None:
    app_arn = sns.create_platform_application(
        Name=unique("web"), Platform="WEBPUSH", Attributes={"PlatformPrincipal": "mailto:a@b.c"}
    )["PlatformApplicationArn"]
    try:
        good = _subscription("https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91b")
        arn = endpoint(sns, app_arn, json.dumps(good))
        # The same subscription spelt differently is the same endpoint: tokens are canonical.
        reordered = {"keys": dict(reversed(good["keys"].items())), "endpoint": good["endpoint"]}
        assert endpoint(sns, app_arn, json.dumps(reordered, indent=2)) == arn
        stored = json.loads(attributes_of(sns, arn)["Token"])
        assert stored == {"endpoint": good["endpoint"], "keys": good["keys"]}

        for token, why in [
            ("not json", "Invalid parameter: Token Reason: "),
            (json.dumps({"endpoint": good["endpoint"]}), "Invalid parameter: Token Reason: "),
            (
                json.dumps(_subscription("https://169.254.169.254/push/1")),
                "the push service endpoint is refused: host 169.254.169.254:443 is not on the "
                "allow-list (PUSHGATE_WEBPUSH_ALLOWED_HOSTS)",
            ),
            (
                json.dumps(_subscription("http://fcm.googleapis.com/fcm/send/x")),
                "not an https URL",
            ),
        ]:
            with pytest.raises(ClientError) as err:
                endpoint(sns, app_arn, token)
            assert err.value.response["Error"]["Code"] == "InvalidParameter"
            assert why in err.value.response["Error"]["Message"]
            assert token not in err.value.response["Error"]["Message"]
        assert [e["EndpointArn"] for e in listed(sns, app_arn)] == [arn]
    finally:
        sns.delete_platform_application(PlatformApplicationArn=app_arn)


def test_baidu_attributes_are_not_valid_elsewhere(sns: Any, app: str) -> None:
    arn = endpoint(sns, app, token())
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, UserId="42")
    assert_invalid(err, f"{REASON}Invalid attribute name: UserId")


# --- Get / Set attributes ----------------------------------------------------------------------


def test_set_attributes_merges(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t, CustomUserData="one")
    set_attributes(sns, arn, CustomUserData="two")
    assert attributes_of(sns, arn) == {"Enabled": "true", "Token": t, "CustomUserData": "two"}
    set_attributes(sns, arn, Enabled="false")
    assert attributes_of(sns, arn) == {"Enabled": "false", "Token": t, "CustomUserData": "two"}
    set_attributes(sns, arn, Enabled="True")
    assert attributes_of(sns, arn) == {"Enabled": "true", "Token": t, "CustomUserData": "two"}
    set_attributes(sns, arn, CustomUserData="")
    assert attributes_of(sns, arn)["CustomUserData"] == ""


def test_set_enabled_and_token_together(sns: Any, app: str) -> None:
    # The exact request of sec. 2.2.
    t, new = token(), token()
    arn = endpoint(sns, app, t)
    set_attributes(sns, arn, Enabled="false", Token=new)
    assert attributes_of(sns, arn) == {"Enabled": "false", "Token": new}
    assert [e["Attributes"] for e in listed(sns, app)] == [{"Enabled": "false", "Token": new}]


def test_token_change_rekeys_the_endpoint(sns: Any, app: str) -> None:
    old, new = token(), token()
    arn = endpoint(sns, app, old)
    set_attributes(sns, arn, Token=new)
    assert attributes_of(sns, arn)["Token"] == new
    assert endpoint(sns, app, new) == arn  # the new token finds it
    fresh = endpoint(sns, app, old)  # the old token is free again
    assert fresh != arn
    assert {e["EndpointArn"] for e in listed(sns, app)} == {arn, fresh}
    set_attributes(sns, arn, Token=new)  # setting the token it has is no change
    assert attributes_of(sns, arn)["Token"] == new


def test_token_cannot_move_onto_another_endpoint(sns: Any, app: str) -> None:
    first_token, second_token = token(), token()
    first = endpoint(sns, app, first_token)
    second = endpoint(sns, app, second_token)
    with pytest.raises(ClientError) as err:
        set_attributes(sns, second, Token=first_token, CustomUserData="lost")
    assert_already_exists(err, first)
    assert attributes_of(sns, first) == {"Enabled": "true", "Token": first_token}
    assert attributes_of(sns, second) == {"Enabled": "true", "Token": second_token}


def test_set_attributes_errors(sns: Any, app: str) -> None:
    arn = endpoint(sns, app, token())
    with pytest.raises(ClientError) as err:
        sns.set_endpoint_attributes(EndpointArn=arn, Attributes={})
    assert_error(
        err,
        400,
        "ValidationError",
        "1 validation error detected: Value null at 'attributes' failed to satisfy constraint: "
        "Member must not be null",
    )
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, PlatformCredential="x")
    assert_invalid(err, f"{REASON}Invalid attribute name: PlatformCredential")
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, Enabled="maybe")
    assert_invalid(err, f"{REASON}Enabled: Invalid value [maybe]. Must be true or false.")
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, Token="")
    assert_invalid(err, "Invalid parameter: Token Reason: Token is not specified")
    missing = arn.rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
    with pytest.raises(ClientError) as err:
        set_attributes(sns, missing, Enabled="true")
    assert_error(err, 404, *NO_SUCH_ENDPOINT)


def test_get_unknown_endpoint(sns: Any, app: str) -> None:
    missing = f"{app.replace(':app/', ':endpoint/')}/{uuid.uuid4()}"
    with pytest.raises(ClientError) as err:
        attributes_of(sns, missing)
    assert_error(err, 404, *NO_SUCH_ENDPOINT)
    assert isinstance(err.value, sns.exceptions.NotFoundException)


MALFORMED = [
    ("foo", "An ARN must have at least 6 elements, not 1"),
    ("arn:aws:sns:us-east-1", "An ARN must have at least 6 elements, not 4"),
    (
        f"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/GCM/app",
        "Wrong number of slashes in relative portion of the ARN.",
    ),
    (
        f"arn:aws:sns:{REGION}:{ACCOUNT}:app/GCM/app",
        "Wrong number of slashes in relative portion of the ARN.",
    ),
    (
        f"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/GCM/app/{uuid.uuid4()}/x",
        "Wrong number of slashes in relative portion of the ARN.",
    ),
]


@pytest.mark.parametrize(("arn", "reason"), MALFORMED)
def test_malformed_endpoint_arns(sns: Any, arn: str, reason: str) -> None:
    message = f"Invalid parameter: EndpointArn Reason: {reason}"
    calls = [
        lambda: sns.get_endpoint_attributes(EndpointArn=arn),
        lambda: sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "true"}),
        lambda: sns.delete_endpoint(EndpointArn=arn),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert_invalid(err, message)


# --- ListEndpointsByPlatformApplication --------------------------------------------------------


def test_list_of_an_empty_application(sns: Any, app: str) -> None:
    response = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)
    assert response["Endpoints"] == []
    assert "NextToken" not in response


def test_list_of_an_unknown_application(sns: Any) -> None:
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:app/GCM/{unique('missing')}"
    with pytest.raises(ClientError) as err:
        sns.list_endpoints_by_platform_application(PlatformApplicationArn=missing)
    assert_error(err, 404, *NO_SUCH_APP)


def test_list_pages_through_more_than_a_hundred_endpoints(sns: Any, app: str) -> None:
    other_app = new_app(sns)
    try:
        endpoint(sns, other_app, "not-mine")
        created = [
            endpoint(sns, app, f"tok-{i:03d}", CustomUserData=f"user-{i}") for i in range(230)
        ]
        sns.delete_endpoint(EndpointArn=created[7])
        set_attributes(sns, created[120], Enabled="false")

        pages = list(
            sns.get_paginator("list_endpoints_by_platform_application").paginate(
                PlatformApplicationArn=app
            )
        )
        assert [len(p["Endpoints"]) for p in pages] == [100, 100, 29]
        assert all(p["NextToken"] for p in pages[:-1])
        assert "NextToken" not in pages[-1]
        items = [e for p in pages for e in p["Endpoints"]]
        arns = [e["EndpointArn"] for e in items]
        assert len(set(arns)) == len(arns)
        assert arns == [arn for i, arn in enumerate(created) if i != 7]  # creation order
        by_arn = {e["EndpointArn"]: e["Attributes"] for e in items}
        assert by_arn[created[0]] == {
            "Enabled": "true",
            "Token": "tok-000",
            "CustomUserData": "user-0",
        }
        assert by_arn[created[120]]["Enabled"] == "false"
        # A page boundary that was deleted meanwhile does not lose the next page.
        first = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)
        sns.delete_endpoint(EndpointArn=first["Endpoints"][-1]["EndpointArn"])
        second = sns.list_endpoints_by_platform_application(
            PlatformApplicationArn=app, NextToken=first["NextToken"]
        )
        assert second["Endpoints"][0]["EndpointArn"] == arns[100]
    finally:
        sns.delete_platform_application(PlatformApplicationArn=other_app)


def test_list_with_an_invalid_next_token(sns: Any, app: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.list_endpoints_by_platform_application(PlatformApplicationArn=app, NextToken="bogus")
    assert_invalid(err, "Invalid parameter: NextToken")


# --- DeleteEndpoint ----------------------------------------------------------------------------


def test_delete_is_idempotent_and_frees_the_token(sns: Any, app: str) -> None:
    t = token()
    arn = endpoint(sns, app, t, CustomUserData="old")
    for _ in range(2):
        response = sns.delete_endpoint(EndpointArn=arn)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as err:
        attributes_of(sns, arn)
    assert_error(err, 404, *NO_SUCH_ENDPOINT)
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, Enabled="true")
    assert_error(err, 404, *NO_SUCH_ENDPOINT)
    assert listed(sns, app) == []
    again = endpoint(sns, app, t, CustomUserData="new")  # no "already exists": the token is free
    assert again != arn
    assert attributes_of(sns, again) == {"Enabled": "true", "Token": t, "CustomUserData": "new"}


def test_delete_of_a_never_existing_endpoint(sns: Any, app: str) -> None:
    missing = f"{app.replace(':app/', ':endpoint/')}/{uuid.uuid4()}"
    assert sns.delete_endpoint(EndpointArn=missing)["ResponseMetadata"]["HTTPStatusCode"] == 200


# --- the registration procedure of the SNS token-management guidance ---------------------------

EXISTS = re.compile(r".*Endpoint (arn:aws:sns[^ ]+) already exists with the same [Tt]oken.*")


def create_endpoint(sns: Any, app_arn: str, token: str, custom_user_data: str | None) -> str:
    """The guidance's createEndpoint: an existing endpoint's ARN is taken from the error."""
    request = {"PlatformApplicationArn": app_arn, "Token": token}
    if custom_user_data is not None:
        request["CustomUserData"] = custom_user_data
    try:
        arn: str = sns.create_platform_endpoint(**request)["EndpointArn"]
    except sns.exceptions.InvalidParameterException as exc:
        match = EXISTS.fullmatch(exc.response["Error"]["Message"])
        if match is None:
            raise  # the input is actually bad
        # The endpoint exists for this token, with custom data this call does not overwrite.
        arn = match[1]
    return arn


def register(
    sns: Any, app_arn: str, token: str, stored_arn: str | None, custom_user_data: str | None = None
) -> str:
    """registerWithSNS of the guidance; returns the ARN the app should store."""
    endpoint_arn = stored_arn
    update_needed = False
    create_needed = endpoint_arn is None
    if create_needed:
        # No platform endpoint ARN is stored: first-time registration.
        endpoint_arn = create_endpoint(sns, app_arn, token, custom_user_data)
        create_needed = False
    assert endpoint_arn is not None
    # Look the endpoint up and make sure its data is current, even if it was just created.
    try:
        attributes = sns.get_endpoint_attributes(EndpointArn=endpoint_arn)["Attributes"]
        update_needed = attributes["Token"] != token or attributes["Enabled"].lower() != "true"
    except sns.exceptions.NotFoundException:
        # A stored ARN whose endpoint was deleted: recreate it.
        create_needed = True
    if create_needed:
        endpoint_arn = create_endpoint(sns, app_arn, token, custom_user_data)
    if update_needed:
        # Out of sync: set the latest token and enable the endpoint.
        sns.set_endpoint_attributes(
            EndpointArn=endpoint_arn, Attributes={"Token": token, "Enabled": "true"}
        )
    return endpoint_arn


@pytest.fixture
def recorded(server: Server) -> tuple[Any, list[str]]:
    """A client of its own that records the name of every call it makes."""
    client = server.client()
    calls: list[str] = []
    client.meta.events.register("before-call.sns.*", lambda model, **_: calls.append(model.name))
    return client, calls


def test_registration_procedure_of_the_guidance(
    sns: Any, app: str, recorded: tuple[Any, list[str]]
) -> None:
    client, calls = recorded

    def run(token: str, stored: str | None, data: str | None = None) -> str:
        calls.clear()
        return register(client, app, token, stored, data)

    # First registration: create, then the check finds it current.
    first_token = token()
    arn = run(first_token, None)
    assert calls == ["CreatePlatformEndpoint", "GetEndpointAttributes"]
    assert attributes_of(sns, arn) == {"Enabled": "true", "Token": first_token}

    # Re-registration with the stored ARN: one read, nothing to do.
    assert run(first_token, arn) == arn
    assert calls == ["GetEndpointAttributes"]

    # Re-registration after the app lost its stored ARN (e.g. reinstalled): the same endpoint.
    assert run(first_token, None) == arn
    assert calls == ["CreatePlatformEndpoint", "GetEndpointAttributes"]

    # SNS disabled the endpoint (the provider said the token was invalid): re-enabled.
    set_attributes(sns, arn, Enabled="false")
    assert run(first_token, arn) == arn
    assert calls == ["GetEndpointAttributes", "SetEndpointAttributes"]
    assert attributes_of(sns, arn) == {"Enabled": "true", "Token": first_token}

    # Reinstalled while disabled: creating without attributes returns the disabled endpoint
    # (and does not enable it), so the check enables it.
    set_attributes(sns, arn, Enabled="false")
    assert run(first_token, None) == arn
    assert calls == ["CreatePlatformEndpoint", "GetEndpointAttributes", "SetEndpointAttributes"]
    assert attributes_of(sns, arn)["Enabled"] == "true"

    # The provider rotated the token: the endpoint takes the new one, the old is free.
    second_token = token()
    assert run(second_token, arn) == arn
    assert calls == ["GetEndpointAttributes", "SetEndpointAttributes"]
    assert attributes_of(sns, arn) == {"Enabled": "true", "Token": second_token}
    assert endpoint(sns, app, first_token) != arn

    # The endpoint was deleted: the stored ARN is stale, a new endpoint is made.
    sns.delete_endpoint(EndpointArn=arn)
    recreated = run(second_token, arn)
    assert recreated != arn
    assert calls == ["GetEndpointAttributes", "CreatePlatformEndpoint"]
    assert attributes_of(sns, recreated) == {"Enabled": "true", "Token": second_token}
    assert run(second_token, recreated) == recreated
    assert calls == ["GetEndpointAttributes"]


def test_registration_when_the_token_exists_with_other_custom_data(
    sns: Any, app: str, recorded: tuple[Any, list[str]]
) -> None:
    client, calls = recorded
    shared = token()
    existing = endpoint(sns, app, shared, CustomUserData="user=1")

    # Another user signs in on the same device: creating with other custom data is refused
    # with "already exists", and the guidance takes the ARN from that message.
    calls.clear()
    arn = register(client, app, shared, None, custom_user_data="user=2")
    assert arn == existing
    assert calls == ["CreatePlatformEndpoint", "GetEndpointAttributes"]
    assert attributes_of(sns, existing) == {
        "Enabled": "true",
        "Token": shared,
        "CustomUserData": "user=1",  # not overwritten
    }

    # Same, while the endpoint is disabled: found through the message, then re-enabled.
    set_attributes(sns, existing, Enabled="false")
    calls.clear()
    assert register(client, app, shared, None, custom_user_data="user=3") == existing
    assert calls == ["CreatePlatformEndpoint", "GetEndpointAttributes", "SetEndpointAttributes"]
    assert attributes_of(sns, existing)["Enabled"] == "true"

    # The stored ARN was deleted and the token meanwhile registered with other custom data.
    gone = endpoint(sns, app, token())
    sns.delete_endpoint(EndpointArn=gone)
    calls.clear()
    assert register(client, app, shared, gone, custom_user_data="user=4") == existing
    assert calls == ["GetEndpointAttributes", "CreatePlatformEndpoint"]

    # Input that is actually bad is not mistaken for "already exists".
    with pytest.raises(ClientError) as err:
        register(client, app, token(), None, custom_user_data="é" * 1025)
    assert_invalid(err, TOO_LONG)
    assert [e["EndpointArn"] for e in listed(sns, app)] == [existing]
