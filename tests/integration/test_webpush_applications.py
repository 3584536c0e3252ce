"""WEBPUSH platform applications through boto3 against a running server, on both stores:
the VAPID subject and key as PlatformPrincipal / PlatformCredential, the generated key and
the read-only ``VapidPublicKey``."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.crypto import SecretBox
from pushgate.providers.webpush import load_private_key, public_key_text
from pushgate.store import applications as store
from pushgate.store.database import Database
from tests.conftest import Server, unique

REASON = "Invalid parameter: Attributes Reason: "
INVALID_CREDENTIALS = REASON + "Platform credentials are invalid"
SUBJECT_REQUIRED = (
    REASON + "PlatformPrincipal is required for WEBPUSH: the VAPID subject, a mailto: address "
    "or an https: URL"
)
BAD_SUBJECT = (
    REASON + "PlatformPrincipal must be the VAPID subject: a mailto: address or an https: URL"
)
SUBJECT = "mailto:ops@example.com"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: ec.EllipticCurvePrivateKey, form: str = "pkcs8") -> str:
    private_format = (
        serialization.PrivateFormat.PKCS8
        if form == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()


def raw(key: ec.EllipticCurvePrivateKey) -> str:
    """The private scalar as web-push libraries print it (base64url, unpadded)."""
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(scalar).rstrip(b"=").decode()


def create(sns: Any, name: str | None = None, **attributes: str) -> str:
    arn: str = sns.create_platform_application(
        Name=name or unique("webpush"), Platform="WEBPUSH", Attributes=attributes
    )["PlatformApplicationArn"]
    return arn


def attributes_of(sns: Any, arn: str) -> dict[str, str]:
    result: dict[str, str] = sns.get_platform_application_attributes(PlatformApplicationArn=arn)[
        "Attributes"
    ]
    return result


def set_attributes(sns: Any, arn: str, **attributes: str) -> None:
    sns.set_platform_application_attributes(PlatformApplicationArn=arn, Attributes=attributes)


def stored(server: Server, arn: str) -> dict[str, str]:
    """The credentials as the server stored them, decrypted with its secret key."""

    async def row() -> Any:
        db = Database(server.database_url)
        try:
            return await db.read(store.get, arn)
        finally:
            await db.dispose()

    app = asyncio.run(row())
    secret_key = (server.data_dir / "secret.key").read_text().strip()
    creds: dict[str, str] = json.loads(SecretBox(secret_key).decrypt(app.credentials_encrypted))
    return creds


def invalid(err: pytest.ExceptionInfo[ClientError], message: str) -> None:
    assert err.value.response["Error"]["Code"] == "InvalidParameter"
    assert err.value.response["Error"]["Message"] == message
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_key_is_generated_when_absent(sns: Any, server: Server) -> None:
    arn = create(sns, PlatformPrincipal=SUBJECT)
    attributes = attributes_of(sns, arn)
    assert set(attributes) == {"Enabled", "VapidPublicKey"}
    assert attributes["Enabled"] == "true"
    point = base64.urlsafe_b64decode(attributes["VapidPublicKey"] + "=")
    assert len(point) == 65 and point[0] == 4
    assert "=" not in attributes["VapidPublicKey"]
    creds = stored(server, arn)
    assert creds["PlatformPrincipal"] == SUBJECT
    assert creds["PlatformCredential"].startswith("-----BEGIN PRIVATE KEY-----\n")
    key = load_private_key(creds["PlatformCredential"])
    assert public_key_text(key) == attributes["VapidPublicKey"]
    assert create(sns, PlatformPrincipal=SUBJECT) != arn
    other = create(sns, PlatformPrincipal=SUBJECT)
    assert attributes_of(sns, other)["VapidPublicKey"] != attributes["VapidPublicKey"]


@pytest.mark.parametrize("form", ["pkcs8", "sec1", "raw"])
def test_given_key_in_any_form(sns: Any, server: Server, form: str) -> None:
    key = new_key()
    credential = raw(key) if form == "raw" else pem(key, form)
    arn = create(
        sns, PlatformPrincipal="https://example.com/contact", PlatformCredential=credential
    )
    assert attributes_of(sns, arn) == {"Enabled": "true", "VapidPublicKey": public_key_text(key)}
    creds = stored(server, arn)
    assert creds["PlatformCredential"] == pem(key)  # stored as PKCS#8 PEM whatever came in
    assert creds["PlatformPrincipal"] == "https://example.com/contact"
    log = server.log()
    assert raw(key) not in log
    assert all(line not in log for line in pem(key).splitlines()[1:-1])


def test_listing_shows_the_public_key(sns: Any) -> None:
    key = new_key()
    arn = create(sns, PlatformPrincipal=SUBJECT, PlatformCredential=pem(key))
    pages = sns.get_paginator("list_platform_applications").paginate()
    listed = {
        app["PlatformApplicationArn"]: app["Attributes"]
        for page in pages
        for app in page["PlatformApplications"]
    }
    assert listed[arn] == {"Enabled": "true", "VapidPublicKey": public_key_text(key)}


def test_subject_is_required(sns: Any) -> None:
    for attributes in ({"PlatformCredential": pem(new_key())}, {"PlatformPrincipal": ""}):
        with pytest.raises(ClientError) as err:
            create(sns, **attributes)
        invalid(err, SUBJECT_REQUIRED)


@pytest.mark.parametrize(
    "subject", ["ops@example.com", "mailto:ops", "http://example.com", "https://", "ops"]
)
def test_subject_must_be_mailto_or_https(sns: Any, subject: str) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, PlatformPrincipal=subject)
    invalid(err, BAD_SUBJECT)


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("not-a-key", id="garbage"),
        pytest.param(
            pem(ec.generate_private_key(ec.SECP384R1())),
            id="p384",
        ),
        pytest.param("AAAA", id="short-scalar"),
    ],
)
def test_unusable_key(sns: Any, credential: str) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, PlatformPrincipal=SUBJECT, PlatformCredential=credential)
    invalid(err, INVALID_CREDENTIALS)
    assert credential not in err.value.response["Error"]["Message"]


def test_public_key_is_read_only(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        create(sns, PlatformPrincipal=SUBJECT, VapidPublicKey="x")
    invalid(err, REASON + "Invalid attribute name: VapidPublicKey")
    arn = create(sns, PlatformPrincipal=SUBJECT)
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, VapidPublicKey="x")
    invalid(err, REASON + "Invalid attribute name: VapidPublicKey")


def test_new_subject_keeps_the_key(sns: Any, server: Server) -> None:
    arn = create(sns, PlatformPrincipal=SUBJECT)
    before, key = attributes_of(sns, arn), stored(server, arn)["PlatformCredential"]
    set_attributes(sns, arn, PlatformPrincipal="https://example.org")
    assert attributes_of(sns, arn) == before
    assert stored(server, arn) == {
        "PlatformPrincipal": "https://example.org",
        "PlatformCredential": key,
    }
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, PlatformPrincipal="example.org")
    invalid(err, BAD_SUBJECT)
    assert stored(server, arn)["PlatformPrincipal"] == "https://example.org"


def test_new_key_replaces_the_key(sns: Any, server: Server) -> None:
    arn = create(sns, PlatformPrincipal=SUBJECT, SuccessFeedbackSampleRate="10")
    replacement = new_key()
    set_attributes(sns, arn, PlatformCredential=raw(replacement))
    assert attributes_of(sns, arn) == {
        "Enabled": "true",
        "SuccessFeedbackSampleRate": "10",
        "VapidPublicKey": public_key_text(replacement),
    }
    assert stored(server, arn) == {
        "PlatformPrincipal": SUBJECT,
        "PlatformCredential": pem(replacement),
    }
    both = new_key()
    set_attributes(
        sns, arn, PlatformPrincipal="mailto:b@example.com", PlatformCredential=pem(both, "sec1")
    )
    assert attributes_of(sns, arn)["VapidPublicKey"] == public_key_text(both)
    assert stored(server, arn) == {
        "PlatformPrincipal": "mailto:b@example.com",
        "PlatformCredential": pem(both),
    }
    with pytest.raises(ClientError) as err:
        set_attributes(sns, arn, PlatformCredential="not-a-key")
    invalid(err, INVALID_CREDENTIALS)
    assert attributes_of(sns, arn)["VapidPublicKey"] == public_key_text(both)


def test_other_settings_leave_the_credentials_alone(sns: Any, server: Server) -> None:
    arn = create(sns, PlatformPrincipal=SUBJECT)
    before = stored(server, arn)
    set_attributes(sns, arn, Enabled="false")
    assert attributes_of(sns, arn)["Enabled"] == "false"
    assert stored(server, arn) == before


def test_recreating_keeps_the_key(sns: Any) -> None:
    name = unique("webpush")
    arn = create(sns, name, PlatformPrincipal=SUBJECT)
    public = attributes_of(sns, arn)["VapidPublicKey"]
    assert create(sns, name, PlatformPrincipal="mailto:other@example.com") == arn
    assert attributes_of(sns, arn)["VapidPublicKey"] == public
