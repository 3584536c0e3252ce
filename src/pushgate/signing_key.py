"""The key that signs SNS messages to HTTP/S subscribers, and its certificate.

An RSA 2048 key and a self-signed X.509 certificate for it, generated into the data dir
(``sns-signing.pem``, mode 0600: the private key, then the certificate) on first start,
as ``crypto.load_or_create_key`` does for the secret key. The certificate is public:
subscribers fetch it from ``SigningCertURL`` (``/SimpleNotificationService-<id>.pem``,
shaped like SNS's), where ``<id>`` is derived from the certificate, so a rotated key gets
a new URL and messages signed with the old one stop verifying instead of being
checked against the wrong key.

The key is per data dir: the processes of one ``serve --workers N`` share it, but
servers on different hosts sharing a PostgreSQL database each sign with their own key and
serve only their own certificate, so a message must be verified against the certificate
of the server that signed it (its ``SigningCertURL`` must reach that server), or the data
dir's ``sns-signing.pem`` must be copied to every host.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SIGNING_KEY_FILE = "sns-signing.pem"
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
    """The file form: the private key (PKCS#8 PEM), then the certificate (PEM)."""
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
        raise ValueError(f"{SIGNING_KEY_FILE} holds no certificate")
    private = serialization.load_pem_private_key(data[:at], password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError(f"{SIGNING_KEY_FILE} holds no RSA private key")
    cert = x509.load_pem_x509_certificate(data[at:])
    if cert.public_key() != private.public_key():
        raise ValueError(f"the certificate in {SIGNING_KEY_FILE} is not the key's")
    return SigningKey(private, cert)


def load_or_create(data_dir: Path) -> SigningKey:
    """The signing key kept in the data dir, created with mode 0600 when absent.

    A new key is written to a file of its own and linked into place, so processes starting
    together never read a half-written file: one wins and the others read its key.
    """
    path = data_dir / SIGNING_KEY_FILE
    if path.exists():
        return loads(path.read_bytes())
    data_dir.mkdir(parents=True, exist_ok=True)
    key = generate()
    tmp = data_dir / f".{SIGNING_KEY_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(dumps(key))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race; use its key
            return loads(path.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    return key


class SigningKeyCache:
    """The data dir's signing key, read (or created) once, on first use."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._key: SigningKey | None = None

    def get(self) -> SigningKey:
        if self._key is None:
            self._key = load_or_create(self._data_dir)
        return self._key
