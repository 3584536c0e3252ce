"""The key that signs SNS messages to HTTP/S subscribers, and its certificate.

An RSA 2048 key and a self-signed X.509 certificate for it, generated on the first start
and kept in the database (``server_keys``), encrypted with the secret key like platform
credentials. Every process sharing the database, on any host, signs with the same key and
serves the same certificate, so a subscriber may fetch ``SigningCertURL`` from whichever
of them a load balancer picks. The certificate is public: subscribers fetch it from
``SigningCertURL`` (``/SimpleNotificationService-<id>.pem``, shaped like SNS's), where
``<id>`` is derived from the certificate, so a rotated key gets a new URL and messages
signed with the old one stop verifying instead of being checked against the wrong key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pushgate.domain.runtime import Runtime
from pushgate.store import server_keys

_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"
_VALIDITY = timedelta(days=3650)


@dataclass(frozen=True)
class SigningKey:
    """The private key that signs and the certificate subscribers verify with."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_id(self) -> str:
        """32 hex digits naming the certificate, as SNS's certificate file names do."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return hashlib.sha256(der).hexdigest()[:32]

    @property
    def cert_path(self) -> str:
        return f"/SimpleNotificationService-{self.cert_id}.pem"

    def cert_url(self, base_url: str) -> str:
        """The ``SigningCertURL`` of a server reachable at ``base_url``."""
        return base_url.rstrip("/") + self.cert_path


def generate(now: datetime | None = None) -> SigningKey:
    """A new RSA 2048 key and a self-signed certificate for it."""
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushgate SNS message signing")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key, cert)


def dumps(key: SigningKey) -> bytes:
    """The stored form: the private key (PKCS#8 PEM), then the certificate (PEM)."""
    private = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private + key.cert_pem


def loads(data: bytes) -> SigningKey:
    """Read what :func:`dumps` wrote."""
    at = data.find(_CERT_BEGIN)
    if at < 0:
        raise ValueError("the stored signing key holds no certificate")
    private = serialization.load_pem_private_key(data[:at], password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("the stored signing key is not an RSA private key")
    cert = x509.load_pem_x509_certificate(data[at:])
    if cert.public_key() != private.public_key():
        raise ValueError("the stored certificate is not the signing key's")
    return SigningKey(private, cert)


KEY_NAME = "sns-message-signing"


async def load_or_create(rt: Runtime) -> SigningKey:
    """The signing key kept in the database, created when there is none. Processes
    starting together may each generate one; the first insert wins and all use it."""
    stored = await rt.db.read(server_keys.get, KEY_NAME)
    if stored is None:
        fresh = rt.secrets.encrypt(dumps(generate()).decode())
        await rt.db.write(server_keys.insert_if_absent, KEY_NAME, fresh, rt.clock())
        stored = await rt.db.read(server_keys.get, KEY_NAME)
        assert stored is not None
    return loads(rt.secrets.decrypt(stored).encode())


class SigningKeyCache:
    """The signing key, loaded (or created) once at start-up (:meth:`load`)."""

    def __init__(self) -> None:
        self._key: SigningKey | None = None

    async def load(self, rt: Runtime) -> SigningKey:
        self._key = await load_or_create(rt)
        return self._key

    def get(self) -> SigningKey:
        if self._key is None:
            raise RuntimeError("the signing key is loaded at start-up")
        return self._key
