"""What a platform application's PlatformPrincipal / PlatformCredential pair means, and whether it
is usable.

SNS overloads two opaque attributes for every push service (spec §4.1): for APNs they are either a
TLS certificate and its key or a signing-key id and a ``.p8`` key; for FCM only the credential
exists and is either a legacy server key or a service-account JSON file. Callers need three
answers from that pair, and this module gives them in one pure function:

* **pairing** — a principal without a credential (or the reverse) is rejected with SNS's recorded
  messages. This is structural and always enforced;
* **which authentication method** — SNS reports it as the read-only ``AuthenticationMethod``
  attribute, and the delivery code needs it to pick a provider client;
* **whether the material is well-formed** — real SNS rejects bad credentials at create time with
  ``Platform credentials are invalid``. A self-hosted server must also run with fake credentials
  (tests, local development), so this check is switched by ``validate_format``.

WEBPUSH (pushgate's own platform) is the exception to the last rule: its principal is the VAPID
subject and its credential a P-256 key that pushgate itself signs with, so a fake one can never
work, not even against the fake push service; both are always checked. :func:`vapid_key_pem`
reads the key forms users have (PEM, or the base64url scalar web-push libraries print) and
:func:`generate_vapid_key` makes one when none is given.

Nothing here talks to Apple or Google: "valid" means parseable and self-consistent (the key matches
the certificate, the .p8 is a P-256 key, the service account is complete). Credential contents are
never logged and never appear in an error message or in an exception chain: the loaders below
turn every parse failure into ``None`` and errors are raised outside any ``except`` block.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeGuard
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from pushgate.domain.errors import InvalidParameter
from pushgate.domain.platforms import APPLE_PLATFORMS, Platform
from pushgate.providers.webpush import b64url_decode, public_key_text

_REASON = "Invalid parameter: Attributes Reason: "
# Recorded from real AWS (spec §4.1, [A]).
PRINCIPAL_WITHOUT_CREDENTIAL = (
    _REASON + "PlatformPrincipal attribute provided without PlatformCredential"
)
CREDENTIAL_WITHOUT_PRINCIPAL = (
    _REASON + "PlatformCredential attribute provided without PlatformPrincipal"
)
INVALID_CREDENTIALS = _REASON + "Platform credentials are invalid"
# No recorded AWS message was found for a token-auth app missing its team / bundle id (searched
# AWS docs, GitHub issues and code); this wording follows the SNS "Reason:" style. [I]
APPLE_TOKEN_IDS_REQUIRED = (
    _REASON + "ApplePlatformTeamID and ApplePlatformBundleID are required for token-based "
    "authentication"
)

_CERTIFICATE_MARKER = "-----BEGIN CERTIFICATE-----"
# SNS shows the certificate's notAfter as ISO 8601 UTC with a literal Z, e.g.
# "2016-06-21T09:29:15Z". Sources: a captured ListPlatformApplications output quoted in
# filelug/filelug-cloud src/main/java/org/clopuccino/service/sns/PlatformApplicationFactory.java
# (value equals the notAfter of the APNS_SANDBOX certificate in the same file), and AWS's own
# sample aws-samples/amazon-sns-apns-certificate-expiration-notifier (lambda_function.py parses it
# with strptime "%Y-%m-%dT%H:%M:%SZ"). Both read it under the key "AppleCertificateExpirationDate",
# while the API reference documents "AppleCertificateExpiryDate".
_EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# RFC 8292 sec. 2.1: the contact is a mailto: or an https: URI. No SNS text exists (WEBPUSH is
# not an SNS platform); the wording follows the SNS "Reason:" style.
VAPID_SUBJECT_REQUIRED = (
    _REASON + "PlatformPrincipal is required for WEBPUSH: the VAPID subject, a mailto: address "
    "or an https: URL"
)
INVALID_VAPID_SUBJECT = (
    _REASON + "PlatformPrincipal must be the VAPID subject: a mailto: address or an https: URL"
)
_VAPID_SCALAR_SIZE = 32
_SERVICE_ACCOUNT_STRINGS = ("project_id", "private_key_id", "client_email")


@dataclass(frozen=True)
class CredentialCheck:
    """What a principal/credential pair means for a platform application."""

    authentication_method: str | None  # "Token" | "Certificate" (Apple), "Token" | "Key" (GCM)
    apple_certificate_expiry: str | None  # Apple certificate auth: notAfter, as SNS shows it
    vapid_public_key: str | None = None  # WEBPUSH: the applicationServerKey, base64url


_NONE = CredentialCheck(None, None)


def check_credentials(
    platform: Platform,
    principal: str | None,
    credential: str | None,
    attributes: Mapping[str, str],
    *,
    validate_format: bool,
) -> CredentialCheck:
    """Check a PlatformPrincipal / PlatformCredential pair; raise :class:`InvalidParameter`.

    Empty strings count as absent. When neither is given the result is ``CredentialCheck(None,
    None)``; whether that is acceptable (creation) is the caller's decision. ``attributes`` is the
    full merged attribute map (Apple token auth reads the team and bundle ids from it).
    """
    if platform is Platform.GCM:  # FCM has no principal: one given is ignored.
        return _check_gcm(credential, validate_format) if credential else _NONE
    if principal and not credential:
        raise InvalidParameter(PRINCIPAL_WITHOUT_CREDENTIAL)
    if credential and not principal:
        raise InvalidParameter(CREDENTIAL_WITHOUT_PRINCIPAL)
    if not principal or not credential:
        return _NONE
    checker = _CHECKERS.get(platform, _check_pair_only)
    return checker(principal, credential, attributes, validate_format)


# --- per-platform checkers -------------------------------------------------------------------


def _check_apple(
    principal: str, credential: str, attributes: Mapping[str, str], validate: bool
) -> CredentialCheck:
    if _CERTIFICATE_MARKER in principal:
        cert = _load_certificate(principal)
        expiry = cert.not_valid_after_utc.strftime(_EXPIRY_FORMAT) if cert else None
        # An expired certificate is rejected: AWS lists "APNs — Principal is an expired
        # certificate" as a 400 error of CreatePlatformApplication (SNS developer guide,
        # mobile-push-api-error). The page gives no wording; the only message observed for
        # rejected credentials is "Platform credentials are invalid" (spec §4.1), so we use it.
        if validate and (
            cert is None
            or cert.not_valid_after_utc <= datetime.now(UTC)
            or not _key_matches(cert, _load_private_key(credential))
        ):
            raise InvalidParameter(INVALID_CREDENTIALS)
        return CredentialCheck("Certificate", expiry)
    # Token auth: principal is the signing key id, credential the .p8 content.
    if not attributes.get("ApplePlatformTeamID") or not attributes.get("ApplePlatformBundleID"):
        raise InvalidParameter(APPLE_TOKEN_IDS_REQUIRED)
    if validate and not _is_p256_key(_load_private_key(credential)):
        raise InvalidParameter(INVALID_CREDENTIALS)
    return CredentialCheck("Token", None)


def _check_gcm(credential: str, validate: bool) -> CredentialCheck:
    if not credential.strip().startswith("{"):
        return CredentialCheck("Key", None)  # legacy server key: any non-empty string
    document = _load_json(credential)
    if not validate:
        return CredentialCheck("Token" if isinstance(document, dict) else "Key", None)
    if not _is_service_account(document):
        raise InvalidParameter(INVALID_CREDENTIALS)
    return CredentialCheck("Token", None)


def _check_mpns(
    principal: str, credential: str, attributes: Mapping[str, str], validate: bool
) -> CredentialCheck:
    if validate and not _key_matches(_load_certificate(principal), _load_private_key(credential)):
        raise InvalidParameter(INVALID_CREDENTIALS)
    return _NONE


def _check_webpush(
    principal: str, credential: str, attributes: Mapping[str, str], validate: bool
) -> CredentialCheck:
    """The VAPID subject and key, whatever ``validate`` says (see the module docstring)."""
    if not _is_vapid_subject(principal):
        raise InvalidParameter(INVALID_VAPID_SUBJECT)
    key = _load_vapid_key(credential)
    if key is None:
        raise InvalidParameter(INVALID_CREDENTIALS)
    return CredentialCheck(None, None, public_key_text(key))


def _check_pair_only(
    principal: str, credential: str, attributes: Mapping[str, str], validate: bool
) -> CredentialCheck:
    """ADM (client id / secret), WNS (package SID / secret), Baidu (API key / secret key)."""
    return _NONE


_Checker = Callable[[str, str, Mapping[str, str], bool], CredentialCheck]
_CHECKERS: dict[Platform, _Checker] = {
    **dict.fromkeys(APPLE_PLATFORMS, _check_apple),
    Platform.MPNS: _check_mpns,
    Platform.WEBPUSH: _check_webpush,
}


# --- VAPID keys (WEBPUSH) ----------------------------------------------------------------------


def vapid_key_pem(credential: str) -> str:
    """A VAPID key given as PEM (PKCS#8 or SEC1) or as the base64url 32-byte private scalar,
    as the PKCS#8 PEM that is stored; :class:`InvalidParameter` when it is neither."""
    key = _load_vapid_key(credential)
    if key is None:
        raise InvalidParameter(INVALID_CREDENTIALS)
    return _pkcs8_pem(key)


def generate_vapid_key() -> str:
    """A new VAPID key, PKCS#8 PEM: for a WEBPUSH application created without one."""
    return _pkcs8_pem(ec.generate_private_key(ec.SECP256R1()))


def _load_vapid_key(credential: str) -> ec.EllipticCurvePrivateKey | None:
    text = credential.strip()
    if "-----BEGIN" in text:
        key = _load_private_key(text)
        return key if _is_p256_key(key) else None
    try:
        scalar = b64url_decode(text)
    except ValueError:
        return None
    if len(scalar) != _VAPID_SCALAR_SIZE:
        return None
    try:  # ValueError for 0 and for scalars >= the group order
        return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    except ValueError:
        return None


def _pkcs8_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# --- loaders: every failure becomes None, so no exception (or its text) escapes --------------


def _load_certificate(pem: str) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _load_private_key(pem: str) -> PrivateKeyTypes | None:
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # TypeError: key is encrypted
        return None


def _load_json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


# --- predicates --------------------------------------------------------------------------------


def _key_matches(cert: x509.Certificate | None, key: PrivateKeyTypes | None) -> bool:
    if cert is None or key is None:
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    except (ValueError, UnsupportedAlgorithm):
        return False


def _is_p256_key(key: PrivateKeyTypes | None) -> TypeGuard[ec.EllipticCurvePrivateKey]:
    return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)


def _is_vapid_subject(subject: str) -> bool:
    """``mailto:`` with an address, or an ``https:`` URL with a host (RFC 8292 sec. 2.1).
    Apple refuses ``localhost`` and reserved TLDs too; that is left to the docs."""
    if any(c.isspace() for c in subject):
        return False
    if subject.startswith("mailto:"):
        local, at, domain = subject[len("mailto:") :].rpartition("@")
        return bool(at and local and domain)
    try:
        parts = urlsplit(subject)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def _is_service_account(document: object) -> bool:
    """A complete Google service-account key file, as FCM HTTP v1 token auth needs."""
    if not isinstance(document, dict) or document.get("type") != "service_account":
        return False
    if not all(_non_empty_str(document.get(field)) for field in _SERVICE_ACCOUNT_STRINGS):
        return False
    private_key, token_uri = document.get("private_key"), document.get("token_uri")
    return (
        _non_empty_str(private_key)
        and _non_empty_str(token_uri)
        and isinstance(_load_private_key(private_key), rsa.RSAPrivateKey)
        and _is_http_url(token_uri)
    )


def _non_empty_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
