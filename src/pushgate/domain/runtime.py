"""What the domain services need from the running server, passed explicitly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pushgate.crypto import SecretBox
from pushgate.providers.hosts import DeviceHosts
from pushgate.store.database import Database
from pushgate.subscriber_hosts import SubscriberHosts


def utcnow() -> datetime:
    return datetime.now(UTC)


class WorkSignal:
    """Wakes this process's delivery engine when a publish stored new work, so that a
    delivery starts at once rather than at the engine's next poll."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()

    async def wait(self, seconds: float) -> None:
        """Return when notified, or after ``seconds``."""
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            pass
        self._event.clear()


@dataclass(frozen=True)
class Runtime:
    """The database, the secret box and the few settings that shape domain behaviour."""

    db: Database
    secrets: SecretBox
    account_id: str
    validate_credentials: bool = True
    clock: Callable[[], datetime] = field(default=utcnow)
    work: WorkSignal = field(default_factory=WorkSignal)
    # Where device-supplied URLs (WNS/MPNS channels, Web Push endpoints) may point.
    device_hosts: DeviceHosts = field(default_factory=DeviceHosts)
    # Where HTTP/S subscriptions may POST.
    subscriber_hosts: SubscriberHosts = field(default_factory=SubscriberHosts)
