"""APNs credentials as the fake knows them: signing keys, client certificates, JWT checks.

Apple knows a team's keys and certificates in both environments, so one
:class:`ApnsRegistry` is shared by the production and the sandbox fake; a credential
limited to one environment is then refused by the other with the environment error
(specs/providers.md sec. 1.2 and 10.1).
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.fakes import jose

Environment = Literal["production", "sandbox"]
ENVIRONMENTS: tuple[Environment, ...] = ("production", "sandbox")
_ID_ALPHABET = string.ascii_uppercase + string.digits
_MAX_TOKEN_AGE = 3600.0


def new_key_id() -> str:
    """A 10-character key id like Apple's."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class ApnsSigningKey:
    """A generated token-auth key: what Apple's developer portal hands out (a ``.p8``)."""

    key_id: str
    team_id: str
    private_key_pem: str  # PKCS#8 "BEGIN PRIVATE KEY"
    topics: tuple[str, ...] | None

    def token(self, issued_at: int | None = None) -> str:
        """A provider token (ES256 JWT) for this key, issued now or at ``issued_at``."""
        iat = int(time.time()) if issued_at is None else issued_at
        return jwt.encode(
            {"iss": self.team_id, "iat": iat},
            self.private_key_pem,
            algorithm="ES256",
            headers={"kid": self.key_id},
        )


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    team_id: str
    public_key: ec.EllipticCurvePublicKey
    topics: tuple[str, ...] | None  # None: any topic
    environments: frozenset[Environment]
    topic_specific: bool


@dataclass(frozen=True)
class CertificateRecord:
    serial: int
    uid: str
    topics: tuple[str, ...]
    multi_topic: bool
    environments: frozenset[Environment]
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Credential:
    """Who a request authenticated as."""

    mode: Literal["token", "certificate"]
    topics: tuple[str, ...] | None
    key_id: str | None = None
    team_id: str | None = None
    issued_at: int | None = None
    topic_specific: bool = False
    certificate_uid: str | None = None
    multi_topic: bool = False


@dataclass(frozen=True)
class Reject:
    """An APNs error answer; ``detail`` says why, for the record (never sent)."""

    status: int
    reason: str
    detail: str = ""


class ApnsRegistry:
    """Signing keys by key id and client certificates by serial number."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, KeyRecord] = {}
        self._certificates: dict[int, CertificateRecord] = {}
        self._revoked: set[int] = set()

    def add_key(self, record: KeyRecord) -> None:
        with self._lock:
            self._keys[record.key_id] = record

    def key(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            return self._keys.get(key_id)

    def add_certificate(self, record: CertificateRecord) -> None:
        with self._lock:
            self._certificates[record.serial] = record

    def revoke(self, serial: int) -> None:
        with self._lock:
            self._revoked.add(serial)

    def certificate(self, serial: int) -> tuple[CertificateRecord | None, bool]:
        """The certificate's record (None if never registered) and whether it is revoked."""
        with self._lock:
            return self._certificates.get(serial), serial in self._revoked


def environments(given: Iterable[Environment] | None) -> frozenset[Environment]:
    chosen = frozenset(ENVIRONMENTS if given is None else given)
    if not chosen or not chosen <= set(ENVIRONMENTS):
        raise ValueError(f"environments must be a non-empty subset of {ENVIRONMENTS}")
    return chosen


def generate_key(
    registry: ApnsRegistry,
    team_id: str,
    topics: Iterable[str] | None,
    envs: frozenset[Environment],
    topic_specific: bool,
) -> ApnsSigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    scoped = None if topics is None else tuple(topics)
    key_id = new_key_id()
    registry.add_key(
        KeyRecord(key_id, team_id, private_key.public_key(), scoped, envs, topic_specific)
    )
    return ApnsSigningKey(key_id, team_id, pem, scoped)


def check_token(
    authorization: str | None,
    registry: ApnsRegistry,
    environment: Environment,
    now: float,
    *,
    max_age: float,
    skew: float,
) -> Credential | Reject:
    """Check a token-auth request's ``authorization`` header (sec. 10.1, token mode)."""
    if authorization is None:
        return Reject(403, "MissingProviderToken", "no authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Reject(403, "InvalidProviderToken", "authorization scheme is not bearer")
    try:
        jws = jose.parse(token.strip())
    except jose.JwsError as exc:
        return Reject(403, "InvalidProviderToken", f"not a JWT: {exc}")
    header, claims = jws.header, jws.claims
    if set(header) - {"typ"} != {"alg", "kid"} or header["alg"] != "ES256":
        return Reject(403, "InvalidProviderToken", f"JWT header must be alg ES256 + kid: {header}")
    if set(claims) != {"iss", "iat"} or not jose.is_int(claims["iat"]):
        return Reject(
            403, "InvalidProviderToken", f"JWT claims must be iss + integer iat: {claims}"
        )
    key = registry.key(header["kid"]) if isinstance(header["kid"], str) else None
    if key is None:
        return Reject(403, "InvalidProviderToken", f"unknown key id {header['kid']!r}")
    if not jose.verify_es256(jws, key.public_key):
        return Reject(403, "InvalidProviderToken", "signature does not verify (ES256, r||s form)")
    if claims["iss"] != key.team_id:
        return Reject(403, "InvalidProviderToken", f"iss is not the key's team {key.team_id}")
    if environment not in key.environments:
        return Reject(403, "BadEnvironmentKeyIdInToken", f"key not valid for {environment}")
    iat: int = claims["iat"]
    if iat > now + skew:
        return Reject(403, "InvalidProviderToken", "iat is in the future")
    if now - iat > max_age:
        return Reject(403, "ExpiredProviderToken", "iat is more than an hour old")
    return Credential(
        "token",
        key.topics,
        key_id=key.key_id,
        team_id=key.team_id,
        issued_at=iat,
        topic_specific=key.topic_specific,
    )


def check_certificate(
    der: bytes, registry: ApnsRegistry, environment: Environment, now: datetime
) -> Credential | Reject:
    """Check a certificate-auth connection's client certificate (sec. 10.1, cert mode)."""
    serial = x509.load_der_x509_certificate(der).serial_number
    record, revoked = registry.certificate(serial)
    if record is None:
        return Reject(403, "BadCertificate", "certificate not registered with the fake")
    if environment not in record.environments:
        return Reject(403, "BadCertificateEnvironment", f"certificate not valid for {environment}")
    if revoked:
        return Reject(403, "BadCertificate", "certificate revoked")
    if not record.not_before <= now <= record.not_after:
        return Reject(403, "BadCertificate", "certificate expired or not yet valid")
    return Credential(
        "certificate",
        record.topics,
        certificate_uid=record.uid,
        multi_topic=record.multi_topic,
    )


class TokenChurn:
    """Distinct provider tokens (distinct ``iat``) per key in a sliding window.

    APNs answers ``429 TooManyProviderTokenUpdates`` when a key's token changes too
    often; the fake allows ``limit`` distinct tokens per ``window`` seconds (sec. 10.1).
    """

    def __init__(self, limit: int = 2, window: float = 20 * 60) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._seen: dict[str, dict[int, float]] = {}  # key id -> iat -> first seen

    def allow(self, key_id: str, iat: int, now: float) -> bool:
        """Whether a request with this token may pass; a new token counts as an update."""
        with self._lock:
            seen = self._seen.setdefault(key_id, {})
            for old, first in list(seen.items()):
                if first <= now - self.window - _MAX_TOKEN_AGE:  # expired by now anyway
                    del seen[old]
            if iat in seen:
                return True
            if sum(1 for first in seen.values() if first > now - self.window) >= self.limit:
                return False
            seen[iat] = now
            return True

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
