"""Provider-native notifications: what a client sends, already shaped, to one token.

Built once per (message, platform application) and sent to many tokens, so a topic
fan-out serialises its payload once. Nothing here knows SNS; the SNS message structure is
turned into these by :mod:`pushgate.domain.payloads`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pushgate.providers.outcomes import SendResult, unsendable


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


@dataclass(frozen=True, slots=True)
class AdmNotification:
    """An ADM message minus the registration id (specs/providers.md sec. 3.2).

    ``data`` is string to string; ``expires_after`` seconds (1 ... 2678400), None for ADM's
    default of a week.
    """

    data: dict[str, str] = field(default_factory=dict)
    consolidation_key: str | None = None
    expires_after: int | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class WnsNotification:
    """A WNS request minus the channel URI (specs/providers.md sec. 4.2).

    ``kind`` is the ``X-WNS-Type`` (``wns/toast``, ``wns/tile``, ``wns/badge``,
    ``wns/raw``); ``body`` the XML (or raw bytes); the rest become ``X-WNS-*`` headers
    when not None.
    """

    kind: str
    body: bytes
    cache_policy: str | None = None
    tag: str | None = None
    group: str | None = None
    ttl: int | None = None
    suppress_popup: bool | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class MpnsNotification:
    """An MPNS request minus the channel URI (specs/providers.md sec. 4.4).

    ``target`` is ``X-WindowsPhone-Target`` (``toast``, ``token`` for tiles, None for raw);
    ``notification_class`` the ``X-NotificationClass`` (1-3, 11-13, 21-23).
    """

    body: bytes
    target: str | None
    notification_class: int
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class BaiduNotification:
    """A Baidu ``push/single_device`` request minus the channel id (sec. 5.1).

    ``msg_type`` 0 is a pass-through message, 1 a notification; ``device_type`` 3 Android,
    4 iOS; ``deploy_status`` 1 development, 2 production (iOS only).
    """

    msg: str
    msg_type: int = 0
    msg_expires: int | None = None
    device_type: int | None = None
    deploy_status: int | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class WebPushNotification:
    """A Web Push message before encryption (specs/providers.md sec. 6.1).

    ``payload`` is the plaintext (encrypted per subscription, RFC 8291); ``ttl`` the
    required ``TTL`` header in seconds.
    """

    payload: bytes
    ttl: int
    urgency: str | None = None
    topic: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class HmsNotification:
    """An HMS Push Kit message minus ``token`` (specs/providers.md sec. 7.2)."""

    message: dict[str, Any] = field(default_factory=dict)
    validate_only: bool = False
    expires_at: float | None = None


Notification = (
    ApnsNotification
    | FcmNotification
    | AdmNotification
    | WnsNotification
    | MpnsNotification
    | BaiduNotification
    | WebPushNotification
    | HmsNotification
)

N = TypeVar("N", bound=Notification)
T = TypeVar("T")


def wrong_platform(name: str) -> SendResult:
    """The result of a notification handed to another provider's client (``name`` as in
    "not an ADM notification"): clients are typed for any :data:`Notification`, so that
    every client fits one protocol."""
    return unsendable("WrongPlatform", f"not {name} notification")


def per_notification(
    kind: type[N], build: Callable[[N], T | SendResult], name: str
) -> Callable[[Notification], T | SendResult]:
    """``build`` for the notifications of one ``send_many`` call, run once per notification:
    a fan-out hands the same notification with many tokens, so what ``build`` makes of it
    (a body, header lines, or why it cannot be sent) is kept by identity while the call
    holds the notification. One of another provider than ``kind`` is ``FAIL_PERMANENT``
    ``WrongPlatform`` (:func:`wrong_platform`)."""
    wrong = wrong_platform(name)
    built: dict[int, T | SendResult] = {}

    def get(notification: Notification) -> T | SendResult:
        result = built.get(id(notification))
        if result is None:
            result = built[id(notification)] = (
                build(notification) if isinstance(notification, kind) else wrong
            )
        return result

    return get
