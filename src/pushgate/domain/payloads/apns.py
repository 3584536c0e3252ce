"""The APNs request for a message (sns-api.md sec. 5.4, providers.md 1.3-1.5).


* push type: ``AWS.SNS.MOBILE.APNS.PUSH_TYPE`` as given; else ``voip`` on the VoIP
  platforms; else ``background`` iff ``aps`` has ``content-available`` equal to integer
  (or boolean) 1 and none of ``alert``, ``badge``, ``sound``; else ``alert``.
* topic: ``AWS.SNS.MOBILE.APNS.TOPIC`` as given; else the bundle id with the suffix the
  push type needs (``voip`` → ``.voip`` ...; not doubled when the bundle id already ends
  with it); None without a bundle id (the client then uses the application's).
* priority: ``AWS.SNS.MOBILE.APNS.PRIORITY`` (1, 5 or 10); else 5 for ``background``, else
  unset (APNs means 10).
* collapse id: ``AWS.SNS.MOBILE.APNS.COLLAPSE_ID``, at most 64 bytes.
* TTL (sec. 5.6): ``AWS.SNS.MOBILE.{PLATFORM}.TTL`` for the platform itself, else 4 weeks;
  ``expiration`` = published_at + TTL in whole epoch seconds, and a TTL of 0 stays 0
  (deliver now or never).
* body: the JSON re-encoded compactly in UTF-8, at most 4096 bytes (5120 for ``voip``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import (
    DEFAULT_TTL,
    SECONDS,
    SEPARATORS,
    PayloadError,
    json_object,
    string_attribute,
    ttl_attribute,
)
from pushgate.domain.platforms import Platform
from pushgate.providers.notifications import ApnsNotification

APNS_MAX_PAYLOAD = 4096
APNS_VOIP_MAX_PAYLOAD = 5120
APNS_MAX_COLLAPSE_ID = 64  # bytes

PUSH_TYPE = "AWS.SNS.MOBILE.APNS.PUSH_TYPE"
PRIORITY = "AWS.SNS.MOBILE.APNS.PRIORITY"
TOPIC = "AWS.SNS.MOBILE.APNS.TOPIC"
COLLAPSE_ID = "AWS.SNS.MOBILE.APNS.COLLAPSE_ID"

_VOIP = frozenset({Platform.APNS_VOIP, Platform.APNS_VOIP_SANDBOX})
# apns-topic suffix per push type (providers.md 1.4); mdm's topic comes from the certificate.
_TOPIC_SUFFIX = {
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "location": ".location-query",
    "liveactivity": ".push-type.liveactivity",
    "pushtotalk": ".voip-ptt",
    "widgets": ".push-type.widgets",
}
_PRIORITIES = frozenset({1, 5, 10})


def build(
    platform: Platform,
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
    bundle_id: str | None,
) -> ApnsNotification:
    if body is None:
        payload: dict[str, Any] = {"aps": {"alert": text}}
    else:
        payload = json_object(body, platform.value)
    push_type = string_attribute(attributes, PUSH_TYPE)
    if push_type is None:
        push_type = "voip" if platform in _VOIP else _infer_push_type(payload.get("aps"))

    topic = string_attribute(attributes, TOPIC)
    if topic is None and bundle_id is not None:
        suffix = _TOPIC_SUFFIX.get(push_type, "")
        topic = bundle_id if bundle_id.endswith(suffix) else bundle_id + suffix

    priority: int | None = 5 if push_type == "background" else None
    raw_priority = string_attribute(attributes, PRIORITY)
    if raw_priority is not None:
        if not SECONDS.fullmatch(raw_priority) or int(raw_priority) not in _PRIORITIES:
            raise PayloadError(f"Invalid {PRIORITY}: {raw_priority!r} (must be 1, 5 or 10)")
        priority = int(raw_priority)

    collapse_id = string_attribute(attributes, COLLAPSE_ID)
    if collapse_id is not None and len(collapse_id.encode()) > APNS_MAX_COLLAPSE_ID:
        raise PayloadError(f"{COLLAPSE_ID} is longer than {APNS_MAX_COLLAPSE_ID} bytes")

    ttl = ttl_attribute(attributes, f"AWS.SNS.MOBILE.{platform.value}.TTL")
    if ttl is None:
        ttl = DEFAULT_TTL

    try:
        data = json.dumps(payload, separators=SEPARATORS, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise PayloadError(f"The {platform.value} payload is not valid Unicode") from None
    limit = APNS_VOIP_MAX_PAYLOAD if push_type == "voip" else APNS_MAX_PAYLOAD
    if len(data) > limit:
        raise PayloadError(
            f"PayloadTooLarge: the {platform.value} payload is {len(data)} bytes, "
            f"more than the {limit} allowed"
        )
    return ApnsNotification(
        payload=data,
        push_type=push_type,
        priority=priority,
        topic=topic,
        collapse_id=collapse_id,
        expiration=int(published_at) + ttl if ttl else 0,
        expires_at=published_at + ttl if ttl else None,
    )


def _infer_push_type(aps: object) -> str:
    """``background`` iff aps holds ``content-available: 1`` and nothing user-visible."""
    if isinstance(aps, dict):
        available = aps.get("content-available")
        if (
            isinstance(available, int)
            and available == 1
            and "alert" not in aps
            and "badge" not in aps
            and "sound" not in aps
        ):
            return "background"
    return "alert"
