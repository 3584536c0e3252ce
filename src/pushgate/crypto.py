"""Encryption of secrets at rest (provider credentials, access-key secrets).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under one key: the
``PUSHGATE_SECRET_KEY`` setting, or a key generated into the data dir (mode 0600) on
first start. Every process that shares a database must share this key.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_KEY_FILE = "secret.key"


class SecretKeyMismatch(RuntimeError):
    """A stored secret cannot be decrypted with the configured key."""


class SecretBox:
    """Encrypts and decrypts short secrets with the server's key."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(_fernet_key(key))

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise SecretKeyMismatch(
                "a stored secret cannot be decrypted: PUSHGATE_SECRET_KEY differs from the "
                "key it was encrypted with"
            ) from None


def _fernet_key(key: str) -> bytes:
    """A Fernet key as given, or one derived from any other string of 32+ characters."""
    raw = key.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    if len(raw) < 32:
        raise ValueError("PUSHGATE_SECRET_KEY must be a Fernet key or at least 32 characters")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pushgate").derive(raw)
    return base64.urlsafe_b64encode(derived)


def load_or_create_key(data_dir: Path) -> str:
    """The key kept in the data dir, created with mode 0600 when absent."""
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
