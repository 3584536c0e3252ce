"""The Baidu ``push/single_device`` message for a message (sns-api.md sec. 5.1, 5.5, 5.6;
providers.md 5.1), from the ``BAIDU`` key. What SNS itself sends to Baidu is not
documented **[unverified]**; these are the choices:

* ``msg_type`` (``AWS.SNS.MOBILE.BAIDU.MessageType``, ``0`` pass-through or ``1``
  notification). Without it: ``1`` for text, and for a body that is a JSON object with
  ``description`` (an Android notification) or ``aps`` (an iOS one); else ``0``.
* text T (no ``BAIDU`` key): as a notification, the Android one
  ``{"title":"","description":T}`` (an empty title shows the application's name); as a
  pass-through message, T itself.
* a body: a notification must be a JSON object with ``description`` (Android) or
  ``aps`` (iOS), and is sent as compact JSON; a pass-through message is sent verbatim.
* ``device_type`` ``4`` (iOS) for a notification with ``aps``, with ``deploy_status``
  from ``AWS.SNS.MOBILE.BAIDU.DeployStatus`` (``1`` development, ``2`` production,
  the default). Otherwise neither is sent: Baidu's default device type is Android and it
  reads ``deploy_status`` for iOS only.
* ``AWS.SNS.MOBILE.BAIDU.MessageKey`` is checked to be a String and otherwise ignored:
  it matches API v2's ``msg_keys`` (a newer message replaces an older one with the same
  key), which ``push/single_device`` of v3 does not take **[unverified]**.
* TTL: ``AWS.SNS.MOBILE.BAIDU.TTL`` > SNS's 4 weeks, clamped to Baidu's 7 days
  (``msg_expires`` range 0 ... 604800) since Baidu cannot keep a message longer; a Baidu
  body carries no TTL of its own. ``msg_expires`` is always sent, so Baidu's own default
  (5 hours, providers.md 5.1, from memory) never applies. 0 is sent as 0 (keep no offline
  copy); its ``expires_at`` is None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import (
    DEFAULT_TTL,
    SEPARATORS,
    PayloadError,
    string_attribute,
    ttl_attribute,
)
from pushgate.providers.notifications import BaiduNotification

TTL = "AWS.SNS.MOBILE.BAIDU.TTL"
DEPLOY_STATUS = "AWS.SNS.MOBILE.BAIDU.DeployStatus"
MESSAGE_KEY = "AWS.SNS.MOBILE.BAIDU.MessageKey"
MESSAGE_TYPE = "AWS.SNS.MOBILE.BAIDU.MessageType"
BAIDU_MAX_TTL = 604800  # msg_expires: 7 days (providers.md 5.1)
PASS_THROUGH, NOTIFICATION = 0, 1
ANDROID, IOS = 3, 4
PRODUCTION = 2


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> BaiduNotification:
    msg_type = _choice(attributes, MESSAGE_TYPE, (PASS_THROUGH, NOTIFICATION))
    deploy_status = _choice(attributes, DEPLOY_STATUS, (1, 2))
    string_attribute(attributes, MESSAGE_KEY)  # a String, else refused; not sent (above)
    if body is None:
        msg, ios = _from_text(text or "", msg_type)
        msg_type = NOTIFICATION if msg_type is None else msg_type
    else:
        parsed = _json(body)
        if msg_type is None:
            msg_type = NOTIFICATION if _is_notification(parsed) else PASS_THROUGH
        msg, ios = _from_body(body, parsed, msg_type)
    if not msg:
        raise PayloadError("The BAIDU message is empty")
    ttl = ttl_attribute(attributes, TTL)
    ttl = min(DEFAULT_TTL if ttl is None else ttl, BAIDU_MAX_TTL)
    return BaiduNotification(
        msg=msg,
        msg_type=msg_type,
        msg_expires=ttl,
        device_type=IOS if ios else None,
        deploy_status=(deploy_status or PRODUCTION) if ios else None,
        expires_at=published_at + ttl if ttl else None,
    )


def _choice(
    attributes: Mapping[str, MessageAttribute], name: str, allowed: tuple[int, int]
) -> int | None:
    value = string_attribute(attributes, name)
    if value is None:
        return None
    if value not in {str(choice) for choice in allowed}:
        raise PayloadError(f"Invalid {name}: {value!r} (must be {allowed[0]} or {allowed[1]})")
    return int(value)


def _from_text(text: str, msg_type: int | None) -> tuple[str, bool]:
    if msg_type == PASS_THROUGH:
        return text, False
    notification = {"title": "", "description": text}
    return json.dumps(notification, separators=SEPARATORS, ensure_ascii=False), False


def _json(body: str) -> Any:
    """The body parsed, or None when it is not JSON (fine for a pass-through message)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _is_notification(parsed: Any) -> bool:
    return isinstance(parsed, dict) and ("description" in parsed or "aps" in parsed)


def _from_body(body: str, parsed: Any, msg_type: int) -> tuple[str, bool]:
    if msg_type == PASS_THROUGH:
        return body, False
    if not isinstance(parsed, dict):
        raise PayloadError("A BAIDU notification must be a JSON object")
    ios = "aps" in parsed
    if ios and not isinstance(parsed["aps"], dict):
        raise PayloadError("The aps of a BAIDU notification must be a JSON object")
    if not ios and not isinstance(parsed.get("description"), str):
        raise PayloadError(
            "A BAIDU notification needs a description (Android) or an aps object (iOS)"
        )
    return json.dumps(parsed, separators=SEPARATORS, ensure_ascii=False), ios
