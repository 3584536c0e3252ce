"""What the domain services need from the running server, passed explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pushgate.crypto import SecretBox
from pushgate.store.database import Database


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    """The database, the secret box and the few settings that shape domain behaviour."""

    db: Database
    secrets: SecretBox
    account_id: str
    validate_credentials: bool = True
    clock: Callable[[], datetime] = field(default=utcnow)
