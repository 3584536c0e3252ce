"""Compact JWS parsing and signature checks for the fakes (ES256 for APNs, RS256 for OAuth).

The fakes take JWTs apart themselves instead of calling ``jwt.decode``: they must reject
what a lenient library accepts (extra header members, a DER-encoded ES256 signature, a
float ``iat``) and they must say which rule failed, because each maps to its own error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class JwsError(ValueError):
    """The string is not a compact JWS with JSON-object header and claims."""


@dataclass(frozen=True)
class Jws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _b64decode(segment: str) -> bytes:
    if not _SEGMENT.fullmatch(segment):
        raise JwsError("not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwsError("not base64url") from exc


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment))
    except (UnicodeDecodeError, ValueError) as exc:
        raise JwsError("not JSON") from exc
    if not isinstance(value, dict):
        raise JwsError("not a JSON object")
    return value


def parse(token: str) -> Jws:
    """Split ``header.claims.signature`` without verifying anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwsError("a JWS has three dot-separated parts")
    header, claims = _json_object(parts[0]), _json_object(parts[1])
    return Jws(header, claims, f"{parts[0]}.{parts[1]}".encode(), _b64decode(parts[2]))


def verify_es256(jws: Jws, key: ec.EllipticCurvePublicKey) -> bool:
    """True when the signature is the 64-byte JOSE form (r || s) and verifies."""
    if len(jws.signature) != 64:
        return False
    r = int.from_bytes(jws.signature[:32], "big")
    s = int.from_bytes(jws.signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify_rs256(jws: Jws, key: rsa.RSAPublicKey) -> bool:
    try:
        key.verify(jws.signature, jws.signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def is_int(value: object) -> bool:
    """An integer JSON number (JSON ``true`` is a bool, not a time)."""
    return isinstance(value, int) and not isinstance(value, bool)
