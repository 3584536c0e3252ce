"""Tests for pushgate.domain.credentials, with real keys and certificates (no mocks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushgate.domain.credentials import (
    APPLE_TOKEN_IDS_REQUIRED,
    CREDENTIAL_WITHOUT_PRINCIPAL,
    INVALID_CREDENTIALS,
    PRINCIPAL_WITHOUT_CREDENTIAL,
    CredentialCheck,
    check_credentials,
)
from pushgate.domain.errors import InvalidParameter
from pushgate.domain.platforms import APPLE_PLATFORMS, Platform
from tests.certs import self_signed

# --- key material, generated once per module -------------------------------------------------


def _pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes = b"") -> str:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


NOW = datetime.now(UTC)
RSA_KEY_OBJ = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY_OBJ = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY_OBJ = ec.generate_private_key(ec.SECP256R1())

RSA_KEY = _pkcs8(RSA_KEY_OBJ)
RSA_KEY_TRADITIONAL = RSA_KEY_OBJ.private_bytes(  # "BEGIN RSA PRIVATE KEY", as Apple exports
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
).decode()
RSA_KEY_ENCRYPTED = _pkcs8(RSA_KEY_OBJ, password=b"secret")
MISMATCHED_KEY = _pkcs8(OTHER_RSA_KEY_OBJ)
P8_KEY = _pkcs8(EC_KEY_OBJ)  # an APNs .p8 signing key is a PKCS#8 P-256 key
P384_KEY = _pkcs8(ec.generate_private_key(ec.SECP384R1()))
P8_ENCRYPTED = _pkcs8(EC_KEY_OBJ, password=b"secret")

VALID_NOT_AFTER = datetime(2048, 11, 30, 12, 34, 56, tzinfo=UTC)
VALID_CERT = self_signed(RSA_KEY_OBJ, NOW - timedelta(days=1), VALID_NOT_AFTER)
VALID_EXPIRY = "2048-11-30T12:34:56Z"
EXPIRED_CERT = self_signed(
    RSA_KEY_OBJ, datetime(2020, 6, 21, tzinfo=UTC), datetime(2021, 6, 21, 9, 29, 15, tzinfo=UTC)
)
EXPIRED_EXPIRY = "2021-06-21T09:29:15Z"
EC_CERT = self_signed(EC_KEY_OBJ, NOW - timedelta(days=1), VALID_NOT_AFTER)

GARBAGE = "definitely-not-a-pem-secret-value"
BROKEN_CERT = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
BROKEN_KEY = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"

SERVICE_ACCOUNT: dict[str, object] = {
    "type": "service_account",
    "project_id": "pushgate-test",
    "private_key_id": "0123456789abcdef",
    "private_key": RSA_KEY,
    "client_email": "fcm@pushgate-test.iam.gserviceaccount.com",
    "client_id": "1234567890",
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
}
SERVICE_ACCOUNT_JSON = json.dumps(SERVICE_ACCOUNT)
INCOMPLETE_SERVICE_ACCOUNT_JSON = json.dumps({"type": "service_account", "project_id": "x"})
LEGACY_SERVER_KEY = "AAAAexample:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"

TOKEN_IDS = {"ApplePlatformTeamID": "TEAM123456", "ApplePlatformBundleID": "com.example.app"}
NON_GCM = [p for p in Platform if p is not Platform.GCM]
APPLE = sorted(APPLE_PLATFORMS)
PAIR_ONLY = [Platform.ADM, Platform.WNS, Platform.BAIDU]
NOTHING = CredentialCheck(None, None)


def _error(
    platform: Platform,
    principal: str | None,
    credential: str | None,
    *,
    attributes: dict[str, str] | None = None,
    validate: bool = True,
) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as caught:
        check_credentials(
            platform, principal, credential, attributes or {}, validate_format=validate
        )
    return caught.value


def _check(
    platform: Platform,
    principal: str | None,
    credential: str | None,
    *,
    attributes: dict[str, str] | None = None,
    validate: bool = True,
) -> CredentialCheck:
    return check_credentials(
        platform, principal, credential, attributes or {}, validate_format=validate
    )


def _without(field: str) -> str:
    return json.dumps({k: v for k, v in SERVICE_ACCOUNT.items() if k != field})


def _with(**changes: object) -> str:
    return json.dumps({**SERVICE_ACCOUNT, **changes})


# --- rule 1: pairing --------------------------------------------------------------------------


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("platform", NON_GCM)
def test_principal_without_credential_is_rejected(platform: Platform, validate: bool) -> None:
    for credential in (None, ""):
        error = _error(platform, VALID_CERT, credential, attributes=TOKEN_IDS, validate=validate)
        assert error.message == PRINCIPAL_WITHOUT_CREDENTIAL
        assert error.message == (
            "Invalid parameter: Attributes Reason: "
            "PlatformPrincipal attribute provided without PlatformCredential"
        )
        assert (error.code, error.status) == ("InvalidParameter", 400)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("platform", NON_GCM)
def test_credential_without_principal_is_rejected(platform: Platform, validate: bool) -> None:
    for principal in (None, ""):
        error = _error(platform, principal, RSA_KEY, attributes=TOKEN_IDS, validate=validate)
        assert error.message == (
            "Invalid parameter: Attributes Reason: "
            "PlatformCredential attribute provided without PlatformPrincipal"
        )
        assert error.message == CREDENTIAL_WITHOUT_PRINCIPAL


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("platform", list(Platform))
@pytest.mark.parametrize(("principal", "credential"), [(None, None), ("", ""), (None, "")])
def test_neither_given_returns_nothing(
    platform: Platform, principal: str | None, credential: str | None, validate: bool
) -> None:
    assert _check(platform, principal, credential, validate=validate) == NOTHING


@pytest.mark.parametrize("validate", [True, False])
def test_gcm_ignores_a_principal(validate: bool) -> None:
    assert _check(Platform.GCM, "some-principal", None, validate=validate) == NOTHING
    assert _check(Platform.GCM, "some-principal", LEGACY_SERVER_KEY, validate=validate) == (
        CredentialCheck("Key", None)
    )
    assert _check(Platform.GCM, GARBAGE, SERVICE_ACCOUNT_JSON, validate=validate) == (
        CredentialCheck("Token", None)
    )


# --- rule 2: Apple certificate auth -------------------------------------------------------------


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("platform", APPLE)
@pytest.mark.parametrize(
    ("principal", "credential"),
    [(VALID_CERT, RSA_KEY), (VALID_CERT, RSA_KEY_TRADITIONAL), (EC_CERT, P8_KEY)],
    ids=["rsa-pkcs8", "rsa-traditional", "ec"],
)
def test_apple_certificate_valid(
    platform: Platform, principal: str, credential: str, validate: bool
) -> None:
    # No team / bundle id needed for certificate auth.
    result = _check(platform, principal, credential, validate=validate)
    assert result == CredentialCheck("Certificate", VALID_EXPIRY)


def test_apple_certificate_in_a_bundle_with_its_key() -> None:
    bundle = "Bag Attributes\n" + VALID_CERT + RSA_KEY_TRADITIONAL
    assert _check(Platform.APNS, bundle, RSA_KEY) == CredentialCheck("Certificate", VALID_EXPIRY)


INVALID_CERT_PAIRS = [
    pytest.param(BROKEN_CERT, RSA_KEY, None, id="cert-does-not-parse"),
    pytest.param(VALID_CERT, MISMATCHED_KEY, VALID_EXPIRY, id="key-does-not-match"),
    pytest.param(VALID_CERT, P8_KEY, VALID_EXPIRY, id="ec-key-for-rsa-cert"),
    pytest.param(VALID_CERT, GARBAGE, VALID_EXPIRY, id="key-garbage"),
    pytest.param(VALID_CERT, BROKEN_KEY, VALID_EXPIRY, id="key-does-not-parse"),
    pytest.param(VALID_CERT, RSA_KEY_ENCRYPTED, VALID_EXPIRY, id="key-encrypted"),
    pytest.param(VALID_CERT, VALID_CERT, VALID_EXPIRY, id="cert-as-key"),
    pytest.param(EXPIRED_CERT, RSA_KEY, EXPIRED_EXPIRY, id="cert-expired"),
]


@pytest.mark.parametrize("platform", APPLE)
@pytest.mark.parametrize(("principal", "credential", "expiry"), INVALID_CERT_PAIRS)
def test_apple_certificate_invalid_is_rejected(
    platform: Platform, principal: str, credential: str, expiry: str | None
) -> None:
    error = _error(platform, principal, credential)
    assert error.message == "Invalid parameter: Attributes Reason: Platform credentials are invalid"
    assert error.message == INVALID_CREDENTIALS


@pytest.mark.parametrize(("principal", "credential", "expiry"), INVALID_CERT_PAIRS)
def test_apple_certificate_unvalidated_still_reports_method_and_expiry(
    principal: str, credential: str, expiry: str | None
) -> None:
    result = _check(Platform.APNS_SANDBOX, principal, credential, validate=False)
    assert result == CredentialCheck("Certificate", expiry)


# --- rule 2: Apple token auth -------------------------------------------------------------------


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("platform", APPLE)
def test_apple_token_valid(platform: Platform, validate: bool) -> None:
    attributes = {**TOKEN_IDS, "Enabled": "true"}
    result = _check(platform, "ABC123DEFG", P8_KEY, attributes=attributes, validate=validate)
    assert result == CredentialCheck("Token", None)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"ApplePlatformTeamID": "TEAM123456"},
        {"ApplePlatformBundleID": "com.example.app"},
        {"ApplePlatformTeamID": "", "ApplePlatformBundleID": "com.example.app"},
        {"ApplePlatformTeamID": "TEAM123456", "ApplePlatformBundleID": ""},
    ],
    ids=["none", "team-only", "bundle-only", "team-empty", "bundle-empty"],
)
def test_apple_token_requires_team_and_bundle(attributes: dict[str, str], validate: bool) -> None:
    error = _error(Platform.APNS, "ABC123DEFG", P8_KEY, attributes=attributes, validate=validate)
    assert error.message == (
        "Invalid parameter: Attributes Reason: ApplePlatformTeamID and ApplePlatformBundleID "
        "are required for token-based authentication"
    )
    assert error.message == APPLE_TOKEN_IDS_REQUIRED


BAD_P8 = [
    pytest.param(GARBAGE, id="garbage"),
    pytest.param(BROKEN_KEY, id="does-not-parse"),
    pytest.param(RSA_KEY, id="rsa"),
    pytest.param(P384_KEY, id="p384"),
    pytest.param(P8_ENCRYPTED, id="encrypted"),
    pytest.param(VALID_CERT, id="certificate"),
]


@pytest.mark.parametrize("platform", APPLE)
@pytest.mark.parametrize("credential", BAD_P8)
def test_apple_token_bad_p8_is_rejected(platform: Platform, credential: str) -> None:
    error = _error(platform, "ABC123DEFG", credential, attributes=TOKEN_IDS)
    assert error.message == INVALID_CREDENTIALS


@pytest.mark.parametrize("credential", BAD_P8)
def test_apple_token_unvalidated_accepts_anything(credential: str) -> None:
    result = _check(Platform.APNS, "ABC123DEFG", credential, attributes=TOKEN_IDS, validate=False)
    assert result == CredentialCheck("Token", None)


# --- rule 3: GCM --------------------------------------------------------------------------------


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    "credential",
    [SERVICE_ACCOUNT_JSON, "\n  " + json.dumps(SERVICE_ACCOUNT, indent=2) + "\n"],
    ids=["compact", "indented"],
)
def test_gcm_service_account_is_token(credential: str, validate: bool) -> None:
    assert _check(Platform.GCM, None, credential, validate=validate) == (
        CredentialCheck("Token", None)
    )


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("credential", [LEGACY_SERVER_KEY, GARBAGE, "[1, 2]", " x"])
def test_gcm_anything_else_is_a_legacy_key(credential: str, validate: bool) -> None:
    assert _check(Platform.GCM, None, credential, validate=validate) == CredentialCheck("Key", None)


BAD_SERVICE_ACCOUNTS = [
    pytest.param(INCOMPLETE_SERVICE_ACCOUNT_JSON, id="incomplete"),
    pytest.param("{}", id="empty-object"),
    *(
        pytest.param(_without(field), id=f"missing-{field}")
        for field in (
            "type",
            "project_id",
            "private_key_id",
            "private_key",
            "client_email",
            "token_uri",
        )
    ),
    pytest.param(_with(type="authorized_user"), id="wrong-type"),
    pytest.param(_with(project_id=""), id="empty-project-id"),
    pytest.param(_with(private_key_id="  "), id="blank-private-key-id"),
    pytest.param(_with(client_email=42), id="non-string-client-email"),
    pytest.param(_with(private_key=GARBAGE), id="private-key-garbage"),
    pytest.param(_with(private_key=BROKEN_KEY), id="private-key-does-not-parse"),
    pytest.param(_with(private_key=P8_KEY), id="private-key-not-rsa"),
    pytest.param(_with(private_key=RSA_KEY_ENCRYPTED), id="private-key-encrypted"),
    pytest.param(_with(token_uri="ftp://oauth2.googleapis.com/token"), id="token-uri-ftp"),
    pytest.param(_with(token_uri="not a url"), id="token-uri-not-url"),
    pytest.param(_with(token_uri="https://"), id="token-uri-no-host"),
    pytest.param(_with(token_uri=["https://oauth2.googleapis.com/token"]), id="token-uri-list"),
]


@pytest.mark.parametrize("credential", BAD_SERVICE_ACCOUNTS)
def test_gcm_bad_service_account_is_rejected(credential: str) -> None:
    assert _error(Platform.GCM, None, credential).message == INVALID_CREDENTIALS


@pytest.mark.parametrize("credential", BAD_SERVICE_ACCOUNTS)
def test_gcm_unvalidated_json_object_is_token(credential: str) -> None:
    assert _check(Platform.GCM, None, credential, validate=False) == CredentialCheck("Token", None)


@pytest.mark.parametrize("credential", ["{not json", '{"a": 1', '{"a": ' + "[" * 100_000])
def test_gcm_json_that_does_not_parse(credential: str) -> None:
    assert _error(Platform.GCM, None, credential).message == INVALID_CREDENTIALS
    assert _check(Platform.GCM, None, credential, validate=False) == CredentialCheck("Key", None)


# --- rule 4: MPNS, ADM, WNS, Baidu ----------------------------------------------------------------


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    ("principal", "credential"), [(VALID_CERT, RSA_KEY), (EC_CERT, P8_KEY), (EXPIRED_CERT, RSA_KEY)]
)
def test_mpns_matching_pair(principal: str, credential: str, validate: bool) -> None:
    # MPNS checks parse + match only; expiry is an APNs rule (see module comments).
    assert _check(Platform.MPNS, principal, credential, validate=validate) == NOTHING


@pytest.mark.parametrize(
    ("principal", "credential"),
    [
        (VALID_CERT, MISMATCHED_KEY),
        (VALID_CERT, GARBAGE),
        (BROKEN_CERT, RSA_KEY),
        (GARBAGE, RSA_KEY),
        (VALID_CERT, RSA_KEY_ENCRYPTED),
    ],
)
def test_mpns_bad_pair(principal: str, credential: str) -> None:
    assert _error(Platform.MPNS, principal, credential).message == INVALID_CREDENTIALS
    assert _check(Platform.MPNS, principal, credential, validate=False) == NOTHING


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("platform", PAIR_ONLY)
@pytest.mark.parametrize(
    ("principal", "credential"),
    [("amzn1.application-oa2-client.abc", "secret"), (GARBAGE, GARBAGE), (VALID_CERT, " ")],
)
def test_pair_only_platforms_accept_any_strings(
    platform: Platform, principal: str, credential: str, validate: bool
) -> None:
    assert _check(platform, principal, credential, validate=validate) == NOTHING


# --- rule 5: no credential material in errors ----------------------------------------------


SECRET_CASES = [
    (Platform.APNS, VALID_CERT, MISMATCHED_KEY, {}),
    (Platform.APNS, BROKEN_CERT, RSA_KEY, {}),
    (Platform.APNS, "ABC123DEFG", RSA_KEY, TOKEN_IDS),
    (Platform.APNS, "ABC123DEFG", P8_KEY, {}),
    (Platform.GCM, None, _with(private_key=P8_KEY), {}),
    (Platform.GCM, None, "{" + GARBAGE, {}),
    (Platform.MPNS, VALID_CERT, GARBAGE, {}),
    (Platform.ADM, GARBAGE, None, {}),
    (Platform.WNS, None, GARBAGE, {}),
]


@pytest.mark.parametrize(("platform", "principal", "credential", "attributes"), SECRET_CASES)
def test_errors_never_carry_credential_material(
    platform: Platform,
    principal: str | None,
    credential: str | None,
    attributes: dict[str, str],
) -> None:
    error = _error(platform, principal, credential, attributes=attributes)
    assert error.message in {
        INVALID_CREDENTIALS,
        APPLE_TOKEN_IDS_REQUIRED,
        PRINCIPAL_WITHOUT_CREDENTIAL,
        CREDENTIAL_WITHOUT_PRINCIPAL,
    }
    assert error.__cause__ is None
    assert error.__context__ is None
    text = str(error) + repr(error.args)
    for secret in (principal, credential):
        if secret:
            assert secret not in text
    for fragment in ("BEGIN", "PRIVATE", GARBAGE, "MII"):
        assert fragment not in text


def test_result_is_frozen() -> None:
    result = _check(Platform.APNS, VALID_CERT, RSA_KEY)
    with pytest.raises(AttributeError):
        result.authentication_method = "Token"  # type: ignore[misc]
