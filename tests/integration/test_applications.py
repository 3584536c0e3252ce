"""Platform applications through boto3 against a running server, on both stores.

Covers specs/sns-api.md sec. 4.1-4.5 (and the 4 conventions, sec. 7 limits): creation on every
platform with real-looking credentials made here with ``cryptography``, every validation with
its exact error, credentials never shown, attribute merging, idempotent re-creation and
deletion (which takes the endpoints along), malformed ARNs and pagination.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from tests import certs
from tests.conftest import ACCOUNT, REGION, Server, start_server, unique

APPLE = ["APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "MACOS", "MACOS_SANDBOX"]
PAIRED = [*APPLE, "ADM", "WNS", "MPNS", "BAIDU", "Baidu"]  # every platform but GCM
REASON = "Invalid parameter: Attributes Reason: "
INVALID_CREDENTIALS = REASON + "Platform credentials are invalid"
PRINCIPAL_ONLY = REASON + "PlatformPrincipal attribute provided without PlatformCredential"
CREDENTIAL_ONLY = REASON + "PlatformCredential attribute provided without PlatformPrincipal"
NO_SUCH_APP = ("NotFound", "PlatformApplication does not exist")
SECRET_ATTRIBUTES = ("PlatformCredential", "PlatformPrincipal")


# --- credentials, generated here ---------------------------------------------------------------


def _pem_key(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@functools.cache
def _rsa_key(n: int = 0) -> rsa.RSAPrivateKey:
    """RSA key number ``n``, made once: RSA generation is the slow part of these tests."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def p8_key() -> str:
    """An APNs token-auth signing key: a P-256 key in PKCS#8 PEM, like Apple's .p8 files."""
    return _pem_key(ec.generate_private_key(ec.SECP256R1()))


def self_signed(
    key: CertificateIssuerPrivateKeyTypes,
    *,
    not_after: dt.datetime | None = None,
) -> tuple[str, dt.datetime]:
    """A self-signed certificate for ``key`` (PEM) and its notAfter, whole seconds, UTC."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    not_after = not_after or now + dt.timedelta(days=365)
    cert = certs.self_signed(
        key, now - dt.timedelta(days=400), not_after, "Apple Push Services: t.pushgate"
    )
    return cert, not_after


def apns_certificate() -> tuple[str, str, dt.datetime]:
    """(certificate PEM, its private key PEM, notAfter)."""
    key = _rsa_key()
    cert, not_after = self_signed(key)
    return cert, _pem_key(key), not_after


def service_account(**overrides: Any) -> str:
    document = {
        "type": "service_account",
        "project_id": "pushgate-test",
        "private_key_id": uuid.uuid4().hex,
        "private_key": _pem_key(_rsa_key(1)),
        "client_email": "firebase-adminsdk@pushgate-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not None})


def apple_token_attributes(**extra: str) -> dict[str, str]:
    return {
        "PlatformPrincipal": "ABC123DEFG",
        "PlatformCredential": p8_key(),
        "ApplePlatformTeamID": "TEAM123456",
        "ApplePlatformBundleID": "com.example.pushgate",
        **extra,
    }


def apple_certificate_attributes() -> dict[str, str]:
    cert, key, _ = apns_certificate()
    return {"PlatformPrincipal": cert, "PlatformCredential": key}


def valid_attributes(platform: str) -> dict[str, str]:
    """Credentials that pass validation on ``platform``."""
    if platform in APPLE:
        return apple_token_attributes()
    if platform == "GCM":
        return {"PlatformCredential": "AIzaSy" + uuid.uuid4().hex}
    if platform == "MPNS":
        return apple_certificate_attributes()
    return {"PlatformPrincipal": "principal-" + uuid.uuid4().hex, "PlatformCredential": "secret"}


def expiry_text(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- helpers -----------------------------------------------------------------------------------


def app_arn(platform: str, name: str) -> str:
    return f"arn:aws:sns:{REGION}:{ACCOUNT}:app/{platform}/{name}"


def create(sns: Any, platform: str = "GCM", name: str | None = None, **attributes: str) -> str:
    arn: str = sns.create_platform_application(
        Name=name or unique("app"),
        Platform=platform,
        Attributes=attributes or valid_attributes(platform),
    )["PlatformApplicationArn"]
    return arn


def attributes_of(sns: Any, arn: str) -> dict[str, str]:
    result: dict[str, str] = sns.get_platform_application_attributes(PlatformApplicationArn=arn)[
        "Attributes"
    ]
    return result


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


def all_applications(sns: Any) -> list[dict[str, Any]]:
    pages = sns.get_paginator("list_platform_applications").paginate()
    return [app for page in pages for app in page["PlatformApplications"]]


# --- creation on every platform ----------------------------------------------------------------


@pytest.mark.parametrize("platform", APPLE)
def test_apple_token_authentication(sns: Any, platform: str) -> None:
    name = unique("apple-token")
    arn = create(sns, platform, name, **apple_token_attributes())
    assert arn == app_arn(platform, name)
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "AuthenticationMethod": "Token",
        "ApplePlatformTeamID": "TEAM123456",
        "ApplePlatformBundleID": "com.example.pushgate",
    }


@pytest.mark.parametrize("platform", APPLE)
def test_apple_certificate_authentication(sns: Any, platform: str) -> None:
    cert, key, not_after = apns_certificate()
    name = unique("apple-cert")
    arn = create(sns, platform, name, PlatformPrincipal=cert, PlatformCredential=key)
    assert arn == app_arn(platform, name)
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "AuthenticationMethod": "Certificate",
        "AppleCertificateExpiryDate": expiry_text(not_after),
    }


def test_apple_certificate_with_ec_key(sns: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert, _ = self_signed(key, not_after=dt.datetime(2031, 5, 17, 8, 30, 5, tzinfo=dt.UTC))
    arn = create(sns, "APNS", PlatformPrincipal=cert, PlatformCredential=_pem_key(key))
    assert attributes_of(sns, arn)["AppleCertificateExpiryDate"] == "2031-05-17T08:30:05Z"


def test_gcm_legacy_server_key(sns: Any) -> None:
    name = unique("fcm-key")
    arn = create(sns, "GCM", name, PlatformCredential="AIzaSyExampleServerKey0123456789")
    assert arn == app_arn("GCM", name)
    assert attributes_of(sns, arn) == {"Enabled": "true", "AuthenticationMethod": "Key"}


def test_gcm_service_account(sns: Any) -> None:
    arn = create(sns, "GCM", PlatformCredential=service_account())
    assert attributes_of(sns, arn) == {"Enabled": "true", "AuthenticationMethod": "Token"}


@pytest.mark.parametrize(
    ("platform", "principal", "credential"),
    [
        ("ADM", "amzn1.application-oa2-client.0123456789abcdef", "adm-client-secret"),
        ("WNS", "ms-app://s-1-15-2-1234567890-1234567890", "wns-secret-key"),
        ("BAIDU", "baidu-api-key", "baidu-secret-key"),
        ("Baidu", "baidu-api-key", "baidu-secret-key"),
    ],
)
def test_key_pair_platforms(sns: Any, platform: str, principal: str, credential: str) -> None:
    name = unique("pair")
    arn = create(sns, platform, name, PlatformPrincipal=principal, PlatformCredential=credential)
    assert arn == app_arn(platform, name)
    # A fresh ADM application shows exactly {"Enabled": "true"} (sec. 4.1, recorded).
    assert attributes_of(sns, arn) == {"Enabled": "true"}


def test_mpns_certificate_and_key(sns: Any) -> None:
    cert, key, _ = apns_certificate()
    name = unique("mpns")
    arn = create(sns, "MPNS", name, PlatformPrincipal=cert, PlatformCredential=key)
    assert arn == app_arn("MPNS", name)
    assert attributes_of(sns, arn) == {"Enabled": "true"}


def test_both_baidu_spellings_are_distinct_applications(sns: Any) -> None:
    name = unique("baidu")
    upper = create(sns, "BAIDU", name)
    legacy = create(sns, "Baidu", name)
    assert upper == app_arn("BAIDU", name)
    assert legacy == app_arn("Baidu", name)
    listed = {a["PlatformApplicationArn"] for a in all_applications(sns)}
    assert {upper, legacy} <= listed


def test_same_name_on_another_platform_is_another_application(sns: Any) -> None:
    name = unique("shared")
    gcm = create(sns, "GCM", name)
    apns = create(sns, "APNS", name)
    assert gcm != apns
    sns.delete_platform_application(PlatformApplicationArn=gcm)
    assert attributes_of(sns, apns)["AuthenticationMethod"] == "Token"


def test_creation_with_every_settable_attribute(sns: Any) -> None:
    topic = sns.create_topic(Name=unique("events"))["TopicArn"]
    role = f"arn:aws:iam::{ACCOUNT}:role/SNSLogs"
    settings = {
        "EventEndpointCreated": topic,
        "EventEndpointDeleted": topic,
        "EventEndpointUpdated": topic,
        "EventDeliveryFailure": topic,
        "SuccessFeedbackRoleArn": role,
        "FailureFeedbackRoleArn": role,
        "SuccessFeedbackSampleRate": "25",
    }
    arn = create(sns, "GCM", PlatformCredential="AIzaSyKey", Enabled="false", **settings)
    assert attributes_of(sns, arn) == {
        "Enabled": "false",
        "AuthenticationMethod": "Key",
        **settings,
    }


# --- validation of CreatePlatformApplication --------------------------------------------------


def test_missing_attributes_is_a_validation_error(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.create_platform_application(Name=unique(), Platform="GCM", Attributes={})
    assert_error(
        err,
        400,
        "ValidationError",
        "1 validation error detected: Value null at 'attributes' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_empty_name(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.create_platform_application(
            Name="", Platform="GCM", Attributes={"PlatformCredential": "k"}
        )
    assert_invalid(err, "Invalid parameter:  Reason: cannot be empty")


def test_name_of_256_characters_is_accepted_257_is_not(sns: Any) -> None:
    longest = "n" * 246 + uuid.uuid4().hex[:10]
    assert create(sns, "GCM", longest) == app_arn("GCM", longest)
    too_long = longest + "x"
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", too_long)
    assert_invalid(
        err, f"Invalid parameter: {too_long} Reason: must be at most 256 characters long"
    )


def test_name_allows_letters_digits_underscore_dash_dot(sns: Any) -> None:
    name = "Az09_.-" + uuid.uuid4().hex[:8]
    assert create(sns, "GCM", name) == app_arn("GCM", name)


@pytest.mark.parametrize("name", ["has space", "slash/name", "colon:name", "ümlaut", "star*"])
def test_name_with_a_forbidden_character(sns: Any, name: str) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", name)
    assert_invalid(
        err,
        f"Invalid parameter: {name} Reason: must contain only characters 'a'-'z', 'A'-'Z', "
        "'0'-'9', '_', '-', and '.'",
    )


@pytest.mark.parametrize("platform", ["FCM", "gcm", "apns", "hms", "webpush", "BaIdU", ""])
def test_unsupported_platform(sns: Any, platform: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.create_platform_application(
            Name=unique(), Platform=platform, Attributes={"PlatformCredential": "k"}
        )
    assert_invalid(err, f"Invalid parameter: Platform Reason: {platform} is not supported")


@pytest.mark.parametrize("platform", PAIRED)
def test_principal_without_credential(sns: Any, platform: str) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, platform, PlatformPrincipal="principal")
    assert_invalid(err, PRINCIPAL_ONLY)


@pytest.mark.parametrize("platform", PAIRED)
def test_credential_without_principal(sns: Any, platform: str) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, platform, PlatformCredential=valid_attributes(platform)["PlatformCredential"])
    assert_invalid(err, CREDENTIAL_ONLY)


def test_gcm_needs_no_principal_but_a_credential(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformPrincipal="ignored-for-fcm")
    assert_invalid(err, PRINCIPAL_ONLY)


@pytest.mark.parametrize("platform", ["GCM", "APNS", "ADM"])
def test_no_credentials_at_all(sns: Any, platform: str) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, platform, SuccessFeedbackSampleRate="10")
    assert_invalid(err, REASON + "PlatformCredential attribute is required")


def test_empty_credentials_count_as_absent(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformCredential="")
    assert_invalid(err, REASON + "PlatformCredential attribute is required")
    with pytest.raises(ClientError) as err:
        create(sns, "ADM", PlatformPrincipal="client-id", PlatformCredential="")
    assert_invalid(err, PRINCIPAL_ONLY)


def test_unknown_and_read_only_attributes_are_rejected(sns: Any) -> None:
    for name in ("Colour", "AuthenticationMethod", "AppleCertificateExpiryDate"):
        with pytest.raises(ClientError) as err:
            create(sns, "GCM", PlatformCredential="k", **{name: "x"})
        assert_invalid(err, f"{REASON}Invalid attribute name: {name}")


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("not a key", id="garbage"),
        pytest.param(_pem_key(ec.generate_private_key(ec.SECP384R1())), id="p384"),
        pytest.param("RSA", id="rsa"),
    ],
)
def test_invalid_p8_key(sns: Any, credential: str) -> None:
    if credential == "RSA":
        credential = _pem_key(_rsa_key())
    with pytest.raises(ClientError) as err:
        create(sns, "APNS", **apple_token_attributes(PlatformCredential=credential))
    assert_invalid(err, INVALID_CREDENTIALS)


def test_apple_token_authentication_needs_team_and_bundle(sns: Any) -> None:
    attributes = apple_token_attributes()
    for missing in ("ApplePlatformTeamID", "ApplePlatformBundleID"):
        given = {k: v for k, v in attributes.items() if k != missing}
        with pytest.raises(ClientError) as err:
            create(sns, "APNS_SANDBOX", **given)
        assert_invalid(
            err,
            REASON + "ApplePlatformTeamID and ApplePlatformBundleID are required for token-based "
            "authentication",
        )


@pytest.mark.parametrize("platform", ["APNS", "MPNS"])
def test_certificate_and_key_that_do_not_match(sns: Any, platform: str) -> None:
    cert, _, _ = apns_certificate()
    other_key = _pem_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(ClientError) as err:
        create(sns, platform, PlatformPrincipal=cert, PlatformCredential=other_key)
    assert_invalid(err, INVALID_CREDENTIALS)


def test_expired_and_unparseable_certificates(sns: Any) -> None:
    key = _rsa_key()
    expired, _ = self_signed(key, not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    for principal in (expired, broken):
        with pytest.raises(ClientError) as err:
            create(sns, "APNS", PlatformPrincipal=principal, PlatformCredential=_pem_key(key))
        assert_invalid(err, INVALID_CREDENTIALS)


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_email": None},
        {"private_key": None},
        {"private_key": "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n"},
        {"project_id": ""},
        {"type": "authorized_user"},
        {"token_uri": "not a url"},
    ],
    ids=["no-email", "no-key", "bad-key", "empty-project", "wrong-type", "bad-token-uri"],
)
def test_incomplete_service_account(sns: Any, overrides: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformCredential=service_account(**overrides))
    assert_invalid(err, INVALID_CREDENTIALS)


def test_service_account_that_is_not_json(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformCredential='{"type": "service_account",')
    assert_invalid(err, INVALID_CREDENTIALS)


@pytest.mark.parametrize("name", ["EventEndpointCreated", "EventDeliveryFailure"])
def test_event_topics_must_be_existing_topics(sns: Any, name: str) -> None:
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:{unique('no-such-topic')}"
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformCredential="k", **{name: missing})
    assert_invalid(err, f"{REASON}{name} is not an existing Topic")
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformCredential="k", **{name: "my-topic"})
    assert_invalid(err, f"{REASON}{name} has invalid ARN format")


@pytest.mark.parametrize("rate", ["-1", "101", "abc", "", "5.5"])
def test_success_feedback_sample_rate_must_be_a_percentage(sns: Any, rate: str) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformCredential="k", SuccessFeedbackSampleRate=rate)
    assert_invalid(err, f"{REASON}SuccessFeedbackSampleRate must be an integer from 0 to 100")


def test_enabled_must_be_a_boolean(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, "GCM", PlatformCredential="k", Enabled="yes")
    assert_invalid(err, f"{REASON}Enabled: Invalid value [yes]. Must be true or false.")


def test_failed_creation_leaves_nothing_behind(sns: Any) -> None:
    name = unique("failed")
    with pytest.raises(ClientError):
        create(sns, "APNS", name, PlatformPrincipal="kid", PlatformCredential="not a key")
    with pytest.raises(ClientError) as err:
        attributes_of(sns, app_arn("APNS", name))
    assert_error(err, 404, *NO_SUCH_APP)


# --- credentials are never shown ---------------------------------------------------------------


def test_credentials_are_never_returned(sns: Any) -> None:
    token = create(sns, "APNS", **apple_token_attributes())
    cert, key, _ = apns_certificate()
    certificate = create(sns, "APNS", PlatformPrincipal=cert, PlatformCredential=key)
    fcm = create(sns, "GCM", PlatformCredential=service_account())
    adm = create(sns, "ADM", PlatformPrincipal="adm-id", PlatformCredential="adm-secret")
    mine = {token, certificate, fcm, adm}
    shown = [attributes_of(sns, arn) for arn in mine]
    shown += [a["Attributes"] for a in all_applications(sns) if a["PlatformApplicationArn"] in mine]
    assert len(shown) == 8
    for attributes in shown:
        assert not set(SECRET_ATTRIBUTES) & set(attributes)
        for value in attributes.values():
            assert "PRIVATE KEY" not in value
            assert "CERTIFICATE" not in value
            assert "secret" not in value


# --- Get / Set attributes ----------------------------------------------------------------------


def test_set_attributes_merges(sns: Any) -> None:
    arn = create(sns, "GCM", PlatformCredential="AIzaSyKey")
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"SuccessFeedbackSampleRate": "50"}
    )
    # Recorded from AWS (sec. 4.2).
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "AuthenticationMethod": "Key",
        "SuccessFeedbackSampleRate": "50",
    }
    role = f"arn:aws:iam::{ACCOUNT}:role/SNSFailure"
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"FailureFeedbackRoleArn": role}
    )
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "AuthenticationMethod": "Key",
        "SuccessFeedbackSampleRate": "50",
        "FailureFeedbackRoleArn": role,
    }
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"SuccessFeedbackSampleRate": "0"}
    )
    assert attributes_of(sns, arn)["SuccessFeedbackSampleRate"] == "0"


@pytest.mark.parametrize("value", ["false", "FALSE", "False"])
def test_set_enabled(sns: Any, value: str) -> None:
    arn = create(sns, "ADM")
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"Enabled": value}
    )
    assert attributes_of(sns, arn) == {"Enabled": "false"}
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"Enabled": "true"}
    )
    assert attributes_of(sns, arn) == {"Enabled": "true"}
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=arn, Attributes={"Enabled": "1"}
        )
    assert_invalid(err, f"{REASON}Enabled: Invalid value [1]. Must be true or false.")


def test_new_credentials_re_enable_and_switch_authentication_method(sns: Any) -> None:
    arn = create(sns, "GCM", PlatformCredential="AIzaSyLegacy")
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"Enabled": "false"}
    )
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"PlatformCredential": service_account()}
    )
    assert attributes_of(sns, arn) == {"Enabled": "true", "AuthenticationMethod": "Token"}


def test_switching_apple_from_certificate_to_token(sns: Any) -> None:
    cert, key, not_after = apns_certificate()
    arn = create(sns, "APNS", PlatformPrincipal=cert, PlatformCredential=key)
    assert attributes_of(sns, arn)["AppleCertificateExpiryDate"] == expiry_text(not_after)
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes=apple_token_attributes()
    )
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "AuthenticationMethod": "Token",
        "ApplePlatformTeamID": "TEAM123456",
        "ApplePlatformBundleID": "com.example.pushgate",
    }


def test_set_attributes_validates_like_create(sns: Any) -> None:
    arn = create(sns, "APNS", **apple_token_attributes())
    cases = [
        ({"PlatformPrincipal": "KEYID", "PlatformCredential": "not a key"}, INVALID_CREDENTIALS),
        ({"PlatformCredential": p8_key()}, CREDENTIAL_ONLY),
        (
            {"SuccessFeedbackSampleRate": "200"},
            f"{REASON}SuccessFeedbackSampleRate must be an integer from 0 to 100",
        ),
        ({"EventEndpointDeleted": "nope"}, f"{REASON}EventEndpointDeleted has invalid ARN format"),
        ({"Colour": "blue"}, f"{REASON}Invalid attribute name: Colour"),
        (
            {"AuthenticationMethod": "Certificate"},
            f"{REASON}Invalid attribute name: AuthenticationMethod",
        ),
    ]
    before = attributes_of(sns, arn)
    for attributes, message in cases:
        with pytest.raises(ClientError) as err:
            sns.set_platform_application_attributes(
                PlatformApplicationArn=arn, Attributes=attributes
            )
        assert_invalid(err, message)
    assert attributes_of(sns, arn) == before


@pytest.mark.parametrize("platform", ["ADM", "APNS", "MPNS"])
def test_set_attributes_takes_principal_and_credential_together(sns: Any, platform: str) -> None:
    # As on creation: a new pair replaces the old whole, one half alone is rejected.
    arn = create(sns, platform)
    before = attributes_of(sns, arn)
    rotated = valid_attributes(platform)
    for half, message in (
        ("PlatformCredential", CREDENTIAL_ONLY),
        ("PlatformPrincipal", PRINCIPAL_ONLY),
    ):
        with pytest.raises(ClientError) as err:
            sns.set_platform_application_attributes(
                PlatformApplicationArn=arn, Attributes={half: rotated[half]}
            )
        assert_invalid(err, message)
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=arn,
            Attributes={
                "PlatformPrincipal": rotated["PlatformPrincipal"],
                "PlatformCredential": "",
            },
        )
    assert_invalid(err, PRINCIPAL_ONLY)
    assert attributes_of(sns, arn) == before
    sns.set_platform_application_attributes(PlatformApplicationArn=arn, Attributes=rotated)
    assert attributes_of(sns, arn).keys() == before.keys()


def test_set_attributes_cannot_remove_the_fcm_credential(sns: Any) -> None:
    arn = create(sns, "GCM", PlatformCredential="AIzaSyKey")
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=arn, Attributes={"PlatformCredential": ""}
        )
    assert_invalid(err, REASON + "PlatformCredential attribute is required")
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=arn, Attributes={"PlatformPrincipal": "x"}
        )
    assert_invalid(err, PRINCIPAL_ONLY)
    assert attributes_of(sns, arn) == {"Enabled": "true", "AuthenticationMethod": "Key"}


def test_event_topics_on_set(sns: Any) -> None:
    topic = sns.create_topic(Name=unique("app-events"))["TopicArn"]
    arn = create(sns, "GCM", PlatformCredential="k")
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn,
        Attributes={"EventEndpointCreated": topic, "EventEndpointUpdated": topic},
    )
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "AuthenticationMethod": "Key",
        "EventEndpointCreated": topic,
        "EventEndpointUpdated": topic,
    }
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:{unique('gone')}"
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=arn, Attributes={"EventEndpointDeleted": missing}
        )
    assert_invalid(err, f"{REASON}EventEndpointDeleted is not an existing Topic")
    # An empty value clears an event topic.
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn, Attributes={"EventEndpointCreated": ""}
    )
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "AuthenticationMethod": "Key",
        "EventEndpointUpdated": topic,
    }


def test_set_attributes_order_of_checks(sns: Any) -> None:
    # (1) malformed ARN, even with no attributes (recorded with Attributes={}).
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(PlatformApplicationArn="foo", Attributes={})
    assert_invalid(
        err,
        "Invalid parameter: PlatformApplicationArn Reason: An ARN must have at least 6 "
        "elements, not 1",
    )
    # (2) empty attributes before existence.
    missing = app_arn("GCM", unique("missing"))
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(PlatformApplicationArn=missing, Attributes={})
    assert_error(
        err,
        400,
        "ValidationError",
        "1 validation error detected: Value null at 'attributes' failed to satisfy constraint: "
        "Member must not be null",
    )
    # (3) unknown application, before attribute validation.
    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=missing, Attributes={"Colour": "x"}
        )
    assert_error(err, 404, *NO_SUCH_APP)


def test_get_unknown_application(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        attributes_of(sns, app_arn("GCM", unique("missing")))
    assert_error(err, 404, *NO_SUCH_APP)


# --- re-creation and deletion ------------------------------------------------------------------


def test_re_creation_returns_the_same_arn_and_applies_the_attributes(sns: Any) -> None:
    name = unique("again")
    first = create(sns, "GCM", name, PlatformCredential="AIzaSyOne", SuccessFeedbackSampleRate="10")
    again = create(sns, "GCM", name, PlatformCredential="AIzaSyTwo", SuccessFeedbackSampleRate="20")
    assert again == first
    assert attributes_of(sns, first) == {
        "Enabled": "true",
        "AuthenticationMethod": "Key",
        "SuccessFeedbackSampleRate": "20",
    }
    third = create(sns, "GCM", name, PlatformCredential=service_account())
    assert third == first
    assert attributes_of(sns, first) == {
        "Enabled": "true",
        "AuthenticationMethod": "Token",
        "SuccessFeedbackSampleRate": "20",
    }
    listed = [a for a in all_applications(sns) if a["PlatformApplicationArn"] == first]
    assert len(listed) == 1


def test_concurrent_creation_of_one_application(server: Server) -> None:
    clients = [server.client() for _ in range(12)]
    name = unique("race")
    with ThreadPoolExecutor(len(clients)) as pool:
        arns = set(pool.map(lambda client: create(client, "GCM", name), clients))
    assert arns == {app_arn("GCM", name)}
    listed = [a for a in all_applications(clients[0]) if a["PlatformApplicationArn"] in arns]
    assert len(listed) == 1


def test_re_creation_checks_the_pairing_of_what_it_is_given(sns: Any) -> None:
    name = unique("again-apns")
    arn = create(sns, "APNS", name, **apple_token_attributes())
    with pytest.raises(ClientError) as err:
        create(sns, "APNS", name, PlatformCredential=p8_key())
    assert_invalid(err, CREDENTIAL_ONLY)
    assert attributes_of(sns, arn)["AuthenticationMethod"] == "Token"


def test_delete_is_idempotent_and_takes_the_endpoints(sns: Any) -> None:
    arn = create(sns, "GCM", PlatformCredential="AIzaSyKey")
    endpoints = [
        sns.create_platform_endpoint(PlatformApplicationArn=arn, Token=f"tok-{i}")["EndpointArn"]
        for i in range(3)
    ]
    response = sns.delete_platform_application(PlatformApplicationArn=arn)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    again = sns.delete_platform_application(PlatformApplicationArn=arn)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200

    with pytest.raises(ClientError) as err:
        attributes_of(sns, arn)
    assert_error(err, 404, *NO_SUCH_APP)
    with pytest.raises(ClientError) as err:
        sns.list_endpoints_by_platform_application(PlatformApplicationArn=arn)
    assert_error(err, 404, *NO_SUCH_APP)
    for endpoint in endpoints:
        with pytest.raises(ClientError) as err:
            sns.get_endpoint_attributes(EndpointArn=endpoint)
        assert_error(err, 404, "NotFound", "Endpoint does not exist")
        deleted = sns.delete_endpoint(EndpointArn=endpoint)
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert arn not in {a["PlatformApplicationArn"] for a in all_applications(sns)}
    with pytest.raises(ClientError) as err:
        sns.create_platform_endpoint(PlatformApplicationArn=arn, Token="tok-0")
    assert_error(err, 404, *NO_SUCH_APP)


def test_deleting_application_or_endpoint_keeps_subscriptions(sns: Any) -> None:
    topic = sns.create_topic(Name=unique("keep"))["TopicArn"]
    arn = create(sns, "GCM", PlatformCredential="AIzaSyKey")
    first, second = (
        sns.create_platform_endpoint(PlatformApplicationArn=arn, Token=t)["EndpointArn"]
        for t in ("keep-1", "keep-2")
    )
    for endpoint in (first, second):
        sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=endpoint)
    sns.delete_endpoint(EndpointArn=first)
    sns.delete_platform_application(PlatformApplicationArn=arn)
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Endpoint"] for s in subscriptions) == sorted([first, second])


@pytest.mark.parametrize(
    ("region", "partition"),
    [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_arns_carry_the_region_of_the_call(
    sns: Any, server: Server, region: str, partition: str
) -> None:
    client = server.client(region_name=region)
    name = unique("regional")
    arn = create(client, "GCM", name)
    assert arn == f"arn:{partition}:sns:{region}:{ACCOUNT}:app/GCM/{name}"
    assert arn in {a["PlatformApplicationArn"] for a in all_applications(client)}
    assert arn not in {a["PlatformApplicationArn"] for a in all_applications(sns)}
    endpoint = client.create_platform_endpoint(PlatformApplicationArn=arn, Token="t")
    assert endpoint["EndpointArn"].startswith(
        f"arn:{partition}:sns:{region}:{ACCOUNT}:endpoint/GCM/{name}/"
    )
    client.delete_platform_application(PlatformApplicationArn=arn)


def test_delete_unknown_application_is_200(sns: Any) -> None:
    response = sns.delete_platform_application(
        PlatformApplicationArn=app_arn("GCM", unique("never"))
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_re_created_application_starts_without_endpoints(sns: Any) -> None:
    name = unique("phoenix")
    arn = create(sns, "GCM", name)
    sns.create_platform_endpoint(PlatformApplicationArn=arn, Token="old-token")
    sns.delete_platform_application(PlatformApplicationArn=arn)
    assert create(sns, "GCM", name) == arn
    listed = sns.list_endpoints_by_platform_application(PlatformApplicationArn=arn)
    assert listed["Endpoints"] == []
    assert "NextToken" not in listed


# --- malformed ARNs ----------------------------------------------------------------------------

MALFORMED = [
    ("foo", "An ARN must have at least 6 elements, not 1"),
    ("", "An ARN must have at least 6 elements, not 1"),
    ("arn:aws:sns:us-east-1:123456789012", "An ARN must have at least 6 elements, not 5"),
    (
        f"arn:aws:sns:{REGION}:{ACCOUNT}:app/GCM",
        "Wrong number of slashes in relative portion of the ARN.",
    ),
    (
        f"arn:aws:sns:{REGION}:{ACCOUNT}:app/GCM/name/extra",
        "Wrong number of slashes in relative portion of the ARN.",
    ),
    (
        f"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/GCM/name/{uuid.uuid4()}",
        "Wrong number of slashes in relative portion of the ARN.",
    ),
]


@pytest.mark.parametrize(("arn", "reason"), MALFORMED)
def test_malformed_application_arns(sns: Any, arn: str, reason: str) -> None:
    message = f"Invalid parameter: PlatformApplicationArn Reason: {reason}"
    calls = [
        lambda: sns.get_platform_application_attributes(PlatformApplicationArn=arn),
        lambda: sns.set_platform_application_attributes(
            PlatformApplicationArn=arn, Attributes={"Enabled": "true"}
        ),
        lambda: sns.delete_platform_application(PlatformApplicationArn=arn),
        lambda: sns.list_endpoints_by_platform_application(PlatformApplicationArn=arn),
        lambda: sns.create_platform_endpoint(PlatformApplicationArn=arn, Token="t"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert_invalid(err, message)


# --- ListPlatformApplications ------------------------------------------------------------------


def test_list_shows_the_same_attributes_as_get(sns: Any) -> None:
    cert, key, not_after = apns_certificate()
    arn = create(sns, "APNS_SANDBOX", PlatformPrincipal=cert, PlatformCredential=key)
    listed = {a["PlatformApplicationArn"]: a["Attributes"] for a in all_applications(sns)}
    assert listed[arn] == attributes_of(sns, arn)
    assert listed[arn]["AppleCertificateExpiryDate"] == expiry_text(not_after)


def test_list_pages_through_more_than_a_hundred_applications(sns: Any) -> None:
    prefix = unique("many")
    created = [create(sns, "GCM", f"{prefix}-{i:03d}", PlatformCredential="k") for i in range(205)]
    deleted = created[150]
    sns.delete_platform_application(PlatformApplicationArn=deleted)

    pages = list(sns.get_paginator("list_platform_applications").paginate())
    assert len(pages) >= 3
    for page in pages[:-1]:
        assert len(page["PlatformApplications"]) == 100
        assert page["NextToken"]
    assert "NextToken" not in pages[-1]
    assert 1 <= len(pages[-1]["PlatformApplications"]) <= 100

    arns = [a["PlatformApplicationArn"] for page in pages for a in page["PlatformApplications"]]
    assert len(arns) == len(set(arns)), "an application was listed twice"
    expected = [arn for arn in created if arn != deleted]
    assert [arn for arn in arns if arn.rsplit("/", 1)[1].startswith(prefix)] == expected
    mine = {
        a["PlatformApplicationArn"]: a["Attributes"]
        for p in pages
        for a in p["PlatformApplications"]
    }
    assert mine[created[0]] == {"Enabled": "true", "AuthenticationMethod": "Key"}


def test_list_pages_by_hand(sns: Any) -> None:
    for _ in range(3):
        create(sns, "GCM")
    first = sns.list_platform_applications()
    seen = [a["PlatformApplicationArn"] for a in first["PlatformApplications"]]
    token = first.get("NextToken")
    while token:
        page = sns.list_platform_applications(NextToken=token)
        seen += [a["PlatformApplicationArn"] for a in page["PlatformApplications"]]
        token = page.get("NextToken")
    assert len(seen) == len(set(seen))
    assert {a["PlatformApplicationArn"] for a in all_applications(sns)} == set(seen)


@pytest.mark.parametrize("token", ["garbage", "djE6YWJj", "!!!"])
def test_invalid_next_token(sns: Any, token: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.list_platform_applications(NextToken=token)
    assert_invalid(err, "Invalid parameter: NextToken")


# --- PUSHGATE_VALIDATE_CREDENTIALS=false -------------------------------------------------------


def test_unvalidated_credentials_are_accepted_but_pairing_is_enforced(
    server: Server, database_url: str, tmp_path: Path
) -> None:
    dummy = {
        "GCM": {"PlatformCredential": '{"type": "service_account"}'},
        "APNS": {
            "PlatformPrincipal": "KEYID",
            "PlatformCredential": "dummy-p8",
            "ApplePlatformTeamID": "TEAM",
            "ApplePlatformBundleID": "com.example",
        },
        "APNS_SANDBOX": {
            "PlatformPrincipal": "-----BEGIN CERTIFICATE-----\ndummy\n-----END CERTIFICATE-----",
            "PlatformCredential": "dummy-key",
        },
        "MPNS": {"PlatformPrincipal": "dummy-cert", "PlatformCredential": "dummy-key"},
    }
    strict = server.client()
    for platform, attributes in dummy.items():
        with pytest.raises(ClientError) as err:
            create(strict, platform, **attributes)
        assert_invalid(err, INVALID_CREDENTIALS)

    # Every process sharing a database must share the key that encrypts its secrets.
    secret_key = (server.data_dir / "secret.key").read_text().strip()
    lax_server = start_server(
        database_url,
        tmp_path,
        {"PUSHGATE_VALIDATE_CREDENTIALS": "false", "PUSHGATE_SECRET_KEY": secret_key},
    )
    try:
        lax = lax_server.client()
        created = {platform: create(lax, platform, **a) for platform, a in dummy.items()}
        assert attributes_of(lax, created["GCM"]) == {
            "Enabled": "true",
            "AuthenticationMethod": "Token",
        }
        assert attributes_of(lax, created["APNS"])["AuthenticationMethod"] == "Token"
        assert attributes_of(lax, created["APNS_SANDBOX"]) == {
            "Enabled": "true",
            "AuthenticationMethod": "Certificate",
        }
        assert attributes_of(lax, created["MPNS"]) == {"Enabled": "true"}
        with pytest.raises(ClientError) as err:
            create(lax, "ADM", PlatformPrincipal="client-id")
        assert_invalid(err, PRINCIPAL_ONLY)
        with pytest.raises(ClientError) as err:
            create(lax, "APNS", PlatformCredential="dummy-p8")
        assert_invalid(err, CREDENTIAL_ONLY)
        with pytest.raises(ClientError) as err:
            create(lax, "APNS", PlatformPrincipal="KEYID", PlatformCredential="dummy-p8")
        assert_invalid(
            err,
            REASON + "ApplePlatformTeamID and ApplePlatformBundleID are required for token-based "
            "authentication",
        )
    finally:
        lax_server.stop()
    # Visible to the validating server too: same database.
    assert attributes_of(strict, created["MPNS"]) == {"Enabled": "true"}


# --- credentials stay secret at rest and in logs -----------------------------------------------


def _key_body(pem: str) -> list[str]:
    """The base64 lines of a PEM block: what would show if it leaked in any form."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


async def _postgres_dump(url: str) -> bytes:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT t::text AS row, credentials_encrypted AS raw FROM platform_applications t"
        )
    finally:
        await conn.close()
    # The row as text shows a bytea in hex: add the column's raw bytes too.
    return b"\n".join(r["row"].encode() + b"\n" + (r["raw"] or b"") for r in rows)


def _database_bytes(server: Server) -> bytes:
    if server.database_url.startswith("sqlite:///"):
        path = Path(server.database_url.removeprefix("sqlite:///"))
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert path in files
        return b"".join(p.read_bytes() for p in files)
    return asyncio.run(_postgres_dump(server.database_url))


def test_credentials_are_not_in_the_log_nor_in_the_database(sns: Any, server: Server) -> None:
    fcm_key = "AIzaSy" + uuid.uuid4().hex + "LEAKCHECK"
    p8 = p8_key()
    cert, cert_key, _ = apns_certificate()
    account = service_account()
    adm_secret = "adm-secret-" + uuid.uuid4().hex
    create(sns, "GCM", PlatformCredential=fcm_key)
    create(sns, "APNS", **apple_token_attributes(PlatformCredential=p8))
    create(sns, "APNS", PlatformPrincipal=cert, PlatformCredential=cert_key)
    create(sns, "GCM", PlatformCredential=account)
    arn = create(sns, "ADM", PlatformPrincipal="adm-client", PlatformCredential=adm_secret)
    sns.set_platform_application_attributes(
        PlatformApplicationArn=arn,
        Attributes={"PlatformPrincipal": "adm-client-2", "PlatformCredential": adm_secret + "-2"},
    )
    # Rejected credentials must not be echoed either.
    rejected_key = "AIzaSy-rejected-" + uuid.uuid4().hex
    with pytest.raises(ClientError) as err:
        create(sns, "APNS", **apple_token_attributes(PlatformCredential=rejected_key))
    assert rejected_key not in err.value.response["Error"]["Message"]

    secrets = [fcm_key, adm_secret, rejected_key, "LEAKCHECK"]
    secrets += _key_body(p8) + _key_body(cert_key) + _key_body(cert)
    secrets += _key_body(json.loads(account)["private_key"])
    secrets = [s for s in secrets if len(s) >= 8]
    log = server.log()
    stored = _database_bytes(server)
    assert "CreatePlatformApplication" in log  # the log is the server's, and it is written
    assert arn.encode() in stored  # and the database is the one the server writes to
    for secret in secrets:
        assert secret not in log
        assert secret.encode() not in stored
    assert "firebase-adminsdk@" not in log
    assert b"firebase-adminsdk@" not in stored
