"""Provider-native notifications: what a client sends, already shaped, to one token.

Built once per (message, platform application) and sent to many tokens, so a topic
fan-out serialises its payload once. Nothing here knows SNS; the SNS message structure is
turned into these by :mod:`pushgate.domain.payloads`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ApnsNotification:
    """An APNs request minus the device token (specs/providers.md sec. 1.3-1.5).

    ``topic`` None means the application's bundle id. ``expiration`` is absolute epoch
    seconds (0 = deliver now or never), None to leave the header out.
    """

    payload: bytes
    push_type: str = "alert"
    priority: int | None = None
    topic: str | None = None
    collapse_id: str | None = None
    expiration: int | None = None
    # Epoch seconds after which the engine drops the delivery (message TTL).
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class FcmNotification:
    """An FCM HTTP v1 message minus ``token`` (specs/providers.md sec. 2.3)."""

    message: dict[str, Any] = field(default_factory=dict)
    validate_only: bool = False
    expires_at: float | None = None


Notification = ApnsNotification | FcmNotification
