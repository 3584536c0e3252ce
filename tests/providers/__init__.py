"""Provider clients and their HTTP/2 transport, against the strict fakes over real sockets."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushgate.providers.transport import Response
from tests.fakes import BUNDLE, PAYLOAD, TEAM

__all__ = [
    "BUNDLE",
    "PAYLOAD",
    "TEAM",
    "apns_token",
    "ec_key_pem",
    "fcm_token",
    "response",
    "rsa_key_pem",
]


def apns_token() -> str:
    """A fresh 64-hex-digit device token."""
    return secrets.token_hex(32)


def ec_key_pem() -> str:
    """A fresh P-256 private key as PKCS#8 PEM: an APNs signing key."""
    return _pkcs8_pem(ec.generate_private_key(ec.SECP256R1()))


def rsa_key_pem() -> str:
    """A fresh 2048-bit RSA private key as PKCS#8 PEM: a service account's key."""
    return _pkcs8_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _pkcs8_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def fcm_token() -> str:
    """A fresh registration token the FCM fake accepts."""
    return "fcm-" + secrets.token_urlsafe(40)


def response(
    status: int,
    body: bytes = b"",
    *,
    retry_after: float | None = None,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A transport response as the thread would build it."""
    lines = tuple(f"{name}: {value}\r\n".encode() for name, value in (headers or {}).items())
    return Response(status, lines, body, error, 0.002, retry_after)
