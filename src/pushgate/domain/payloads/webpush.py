"""The Web Push message for a message (providers.md sec. 6; WEBPUSH is pushgate's own
platform, so the SNS conventions of sns-api.md sec. 5 are carried over to it).

* payload: the ``WEBPUSH`` value of a JSON message structure, UTF-8, handed to the service
  worker as is (``event.data.text()``; commonly JSON). Plain text T is sent as the JSON
  ``{"default":"T"}``: the wrap SNS gives text for FCM and ADM data messages (sns-api.md
  5.2), so a service worker can always call ``event.data.json()`` and finds the text
  where FCM and ADM apps find it. An empty ``WEBPUSH`` value is a push without payload
  (RFC 8030 sec. 5), which wakes the service worker with ``event.data`` null.
* at most 3993 bytes: what fits in the 4096-byte encrypted body push services must
  accept (RFC 8291 sec. 4); more is ``PayloadTooLarge``.
* ``AWS.SNS.MOBILE.WEBPUSH.TTL`` (whole seconds, 0 = now or never) else 4 weeks: the
  payload is opaque, so no TTL comes from it (sns-api.md 5.6 precedence otherwise).
* ``AWS.SNS.MOBILE.WEBPUSH.URGENCY``: ``very-low``, ``low``, ``normal`` or ``high``
  (RFC 8030 sec. 5.3); ``AWS.SNS.MOBILE.WEBPUSH.TOPIC``: at most 32 characters of the
  base64url alphabet (sec. 5.4), replacing an undelivered message of the same topic.

``expires_at`` is published_at + TTL (None for 0); the client sends what is left of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import (
    DEFAULT_TTL,
    SEPARATORS,
    PayloadError,
    string_attribute,
    ttl_attribute,
)
from pushgate.providers.notifications import WebPushNotification
from pushgate.providers.webpush import MAX_PLAINTEXT, TOPIC, URGENCIES

TTL = "AWS.SNS.MOBILE.WEBPUSH.TTL"
URGENCY = "AWS.SNS.MOBILE.WEBPUSH.URGENCY"
TOPIC_ATTRIBUTE = "AWS.SNS.MOBILE.WEBPUSH.TOPIC"


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> WebPushNotification:
    if body is None:
        body = json.dumps({"default": text}, separators=SEPARATORS, ensure_ascii=False)
    try:
        payload = body.encode()
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise PayloadError("The WEBPUSH payload is not valid Unicode") from None
    if len(payload) > MAX_PLAINTEXT:
        raise PayloadError(
            f"PayloadTooLarge: the WEBPUSH payload is {len(payload)} bytes, more than the "
            f"{MAX_PLAINTEXT} allowed"
        )

    urgency = string_attribute(attributes, URGENCY)
    if urgency is not None and urgency not in URGENCIES:
        raise PayloadError(
            f"Invalid {URGENCY}: {urgency!r} (must be very-low, low, normal or high)"
        )
    topic = string_attribute(attributes, TOPIC_ATTRIBUTE)
    if topic is not None and not TOPIC.fullmatch(topic):
        raise PayloadError(
            f"Invalid {TOPIC_ATTRIBUTE}: must be 1 to 32 characters of A-Z, a-z, 0-9, '-' and '_'"
        )

    ttl = ttl_attribute(attributes, TTL)
    if ttl is None:
        ttl = DEFAULT_TTL
    return WebPushNotification(
        payload=payload,
        ttl=ttl,
        urgency=urgency,
        topic=topic,
        expires_at=published_at + ttl if ttl else None,
    )
