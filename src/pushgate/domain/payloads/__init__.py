"""What SNS sends to one platform for one message (specs/sns-api.md sec. 5, providers.md).

:func:`build_notification` turns a published message into the provider-native notification
of :mod:`pushgate.providers.notifications`, without I/O and without the device token. Its
result depends only on its arguments, so a topic fan-out builds it once per (message,
platform, bundle id) and sends the same object to every token; equal inputs give equal
objects. A message that can never be delivered to that platform raises
:class:`PayloadError`, which the engine records as a permanent failure with its reason.

Selection (sec. 5.1): a plain message is the notification text. With
``MessageStructure=json`` the value under the platform's key is a JSON string holding the
provider payload; without that key, the ``default`` value is the text. Text is wrapped
(sec. 5.2) as ``{"aps":{"alert":T}}`` for APNs and macOS and as the FCM v1 message
``{"data":{"default":T}}``.

One module per platform builds its notification from the selected text or body; this
module selects and dispatches. Every builder has the shape of :data:`Builder`; the APNs one
also needs the platform and the application's bundle id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import adm, apns, baidu, fcm, hms, mpns, webpush, wns
from pushgate.domain.payloads.common import DEFAULT_TTL, PayloadError
from pushgate.domain.platforms import APPLE_PLATFORMS, Platform
from pushgate.providers.notifications import Notification

__all__ = ["DEFAULT_TTL", "PayloadError", "build_notification"]

Builder = Callable[[str | None, str | None, Mapping[str, MessageAttribute], float], Notification]
"""``(text, body, attributes, published_at)``: ``body`` is the platform's own JSON string
from a JSON message structure, else None and ``text`` is the notification text."""

_BUILDERS: dict[Platform, Builder] = {
    Platform.GCM: fcm.build,
    Platform.ADM: adm.build,
    Platform.WNS: wns.build,
    Platform.MPNS: mpns.build,
    Platform.BAIDU: baidu.build,
    Platform.WEBPUSH: webpush.build,
    Platform.HMS: hms.build,
}


def build_notification(
    platform: Platform,
    message: str,
    structure: Mapping[str, str] | None,
    attributes: Mapping[str, MessageAttribute],
    *,
    published_at: float,
    bundle_id: str | None,
) -> Notification:
    """The notification ``platform`` gets for this message (see the module docstring)."""
    text: str | None = message
    body: str | None = None
    if structure is not None:
        body = structure.get(platform.value)
        if body is None:
            text = structure.get("default")
            if text is None:
                raise PayloadError(f"No {platform.value} or default entry in the message")
    if platform in APPLE_PLATFORMS:
        return apns.build(platform, text, body, attributes, published_at, bundle_id)
    return _BUILDERS[platform](text, body, attributes, published_at)
