"""The WEBPUSH application credential: VAPID subject and key (domain/credentials.py)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushgate.domain.credentials import (
    CREDENTIAL_WITHOUT_PRINCIPAL,
    INVALID_CREDENTIALS,
    INVALID_VAPID_SUBJECT,
    PRINCIPAL_WITHOUT_CREDENTIAL,
    CredentialCheck,
    check_credentials,
    generate_vapid_key,
    vapid_key_pem,
)
from pushgate.domain.errors import InvalidParameter
from pushgate.domain.platforms import Platform
from pushgate.providers.webpush import load_private_key, public_key_text

KEY = ec.generate_private_key(ec.SECP256R1())
PKCS8 = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
SEC1 = KEY.private_bytes(  # "BEGIN EC PRIVATE KEY", as openssl ecparam writes
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
).decode()
# What web-push libraries print as the private key: the 32-byte scalar, base64url.
RAW = base64.urlsafe_b64encode(KEY.private_numbers().private_value.to_bytes(32, "big"))
RAW_TEXT = RAW.rstrip(b"=").decode()
PUBLIC = public_key_text(KEY)
SUBJECT = "mailto:ops@example.com"
P384 = (
    ec.generate_private_key(ec.SECP384R1())
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)
RSA = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)
ENCRYPTED = KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.BestAvailableEncryption(b"secret"),
).decode()
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 group order


def check(principal: str | None, credential: str | None, validate: bool = True) -> CredentialCheck:
    return check_credentials(Platform.WEBPUSH, principal, credential, {}, validate_format=validate)


def error(principal: str | None, credential: str | None, validate: bool = True) -> str:
    with pytest.raises(InvalidParameter) as caught:
        check(principal, credential, validate)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    return caught.value.message


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("credential", [PKCS8, SEC1, RAW_TEXT, RAW.decode(), f"  {RAW_TEXT}\n"])
def test_every_key_form_gives_the_public_key(credential: str, validate: bool) -> None:
    assert check(SUBJECT, credential, validate) == CredentialCheck(None, None, PUBLIC)


@pytest.mark.parametrize(
    "subject",
    ["mailto:ops@example.com", "https://example.com", "https://push.example.com/contact"],
)
def test_subjects(subject: str) -> None:
    assert check(subject, PKCS8).vapid_public_key == PUBLIC


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    "subject",
    [
        "ops@example.com",  # no scheme: Apple refuses it too
        "mailto:",
        "mailto:ops",
        "mailto:@example.com",
        "mailto:o ps@example.com",
        "http://example.com",
        "https://",
        "https:example.com",
        "https://exa mple.com",
        " mailto:ops@example.com",
        "urn:example:ops",
    ],
)
def test_bad_subjects_are_refused_whatever_validate_says(subject: str, validate: bool) -> None:
    assert error(subject, PKCS8, validate) == INVALID_VAPID_SUBJECT
    assert INVALID_VAPID_SUBJECT == (
        "Invalid parameter: Attributes Reason: PlatformPrincipal must be the VAPID subject: "
        "a mailto: address or an https: URL"
    )


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    "credential",
    [
        P384,
        RSA,
        ENCRYPTED,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        "not-a-key",
        RAW_TEXT[:-2],  # 31 bytes
        RAW_TEXT + "AAAA",  # 35 bytes
        base64.urlsafe_b64encode(bytes(32)).decode(),  # the scalar 0
        base64.urlsafe_b64encode(ORDER.to_bytes(32, "big")).decode(),  # >= the order
        RAW_TEXT.replace("-", "+").replace("_", "/") + "+",  # base64, not base64url
    ],
)
def test_unusable_keys_are_refused_whatever_validate_says(credential: str, validate: bool) -> None:
    message = error(SUBJECT, credential, validate)
    assert message == INVALID_CREDENTIALS
    assert credential.strip() not in message


def test_pairing_rules_are_the_generic_ones() -> None:
    """The application layer completes a missing half before it asks (applications.py)."""
    assert error(SUBJECT, None) == PRINCIPAL_WITHOUT_CREDENTIAL
    assert error(None, PKCS8) == CREDENTIAL_WITHOUT_PRINCIPAL
    assert check(None, None) == CredentialCheck(None, None)


@pytest.mark.parametrize("credential", [PKCS8, SEC1, RAW_TEXT])
def test_stored_form_is_pkcs8_pem_of_the_same_key(credential: str) -> None:
    pem = vapid_key_pem(credential)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public_key_text(load_private_key(pem)) == PUBLIC


def test_stored_form_of_a_bad_key() -> None:
    with pytest.raises(InvalidParameter) as caught:
        vapid_key_pem(RSA)
    assert caught.value.message == INVALID_CREDENTIALS


def test_generated_keys_are_new_p256_keys() -> None:
    first, second = generate_vapid_key(), generate_vapid_key()
    assert first != second
    for pem in (first, second):
        key = load_private_key(pem)
        assert isinstance(key.curve, ec.SECP256R1)
        assert check(SUBJECT, pem).vapid_public_key == public_key_text(key)
        assert len(base64.urlsafe_b64decode(public_key_text(key) + "=")) == 65
