"""A throw-away certificate authority for the fake providers.

One CA signs the fakes' server certificate (for ``127.0.0.1`` and ``localhost``) and the
client certificates of APNs certificate authentication. Clients trust the fakes by
loading :attr:`FakeCA.ca_file`, the way pushgate loads ``PUSHGATE_PROVIDER_CA_FILE``.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"

# OpenSSL's X509_V_FLAG_NO_CHECK_TIME. With it the TLS layer still checks that a client
# certificate chains to the CA, and the APNs fake itself answers an expired one with
# ``403 BadCertificate`` instead of a failed handshake (specs/providers.md sec. 10.1).
_NO_CHECK_TIME = 0x200000


def _name(common_name: str, uid: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if uid is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.USER_ID, uid))
    return x509.Name(attributes)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


@dataclass(frozen=True)
class FakeCA:
    """A CA key and certificate kept in ``directory``, with the server certificate it signed."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that clients of the fakes must trust."""
        return self.directory / CA_FILE

    @property
    def server_cert_file(self) -> Path:
        return self.directory / SERVER_CERT_FILE

    @property
    def server_key_file(self) -> Path:
        return self.directory / SERVER_KEY_FILE

    @classmethod
    def create(cls, directory: Path) -> FakeCA:
        """A new CA in ``directory`` (created if needed), overwriting any earlier one."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("pushgate fake providers CA")
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(directory / CA_KEY_FILE, _pem(key))
        (directory / CA_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        ca = cls(directory, key, certificate)
        ca._write_server_certificate()
        return ca

    @classmethod
    def load_or_create(cls, directory: Path) -> FakeCA:
        """The CA kept in ``directory`` from an earlier run, or a new one.

        Reusing it keeps a pushgate server that already trusts ``ca_file`` working across
        restarts of ``pushgate fake-providers``.
        """
        ca_file, key_file = directory / CA_FILE, directory / CA_KEY_FILE
        if not (ca_file.exists() and key_file.exists()):
            return cls.create(directory)
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            return cls.create(directory)
        ca = cls(directory, key, x509.load_pem_x509_certificate(ca_file.read_bytes()))
        ca._write_server_certificate()
        return ca

    def _write_server_certificate(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        certificate = self._issue(
            _name("localhost"),
            key,
            ExtendedKeyUsageOID.SERVER_AUTH,
            [x509.SubjectAlternativeName(names)],
        )
        _write_private(self.server_key_file, _pem(key))
        self.server_cert_file.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
            + self.certificate.public_bytes(serialization.Encoding.PEM)
        )

    def _issue(
        self,
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        usage: x509.ObjectIdentifier,
        extensions: Sequence[x509.ExtensionType] = (),
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> x509.Certificate:
        now = datetime.now(UTC)
        not_after = not_after or now + timedelta(days=365)
        not_before = not_before or min(now - timedelta(hours=1), not_after - timedelta(days=1))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_client_certificate(
        self,
        common_name: str,
        uid: str,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> tuple[str, str]:
        """A client certificate with subject UID ``uid`` (APNs: the bundle id) and its key.

        Returns ``(certificate PEM, PKCS#8 private key PEM)``. ``not_after`` in the past
        makes an expired certificate, which still completes the TLS handshake with the fakes.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self._issue(
            _name(common_name, uid),
            key,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            not_before=not_before,
            not_after=not_after,
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), _pem(key).decode()

    def server_context(
        self, alpn: Sequence[str] = ("h2",), *, client_certificates: bool = False
    ) -> ssl.SSLContext:
        """A TLS 1.2+ server context with the fakes' certificate, offering only ``alpn``.

        With ``client_certificates`` it asks for an optional client certificate and checks
        its chain to this CA, but not its validity dates (the APNs fake judges those).
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        context.set_alpn_protocols(list(alpn))
        if client_certificates:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(cafile=self.ca_file)
            context.verify_flags |= _NO_CHECK_TIME
        return context

    def client_context(self, alpn: Sequence[str] = ("h2",)) -> ssl.SSLContext:
        """A client context that trusts only this CA (tests and the CLI's self-check)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.set_alpn_protocols(list(alpn))
        return context
