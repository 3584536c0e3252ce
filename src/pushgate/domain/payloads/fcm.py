"""The FCM HTTP v1 message for a message (sns-api.md sec. 5.3, providers.md 2.3), from the
``GCM`` key:

* ``{"fcmV1Message": {"message": M, "validate_only": B}}``: M as given, minus any target
  (``token``, ``topic``, ``condition``) and the output-only ``name``; SNS supplies the token.
* any other object is the legacy shape, translated to a v1 message:

  ======================================  =============================================
  legacy                                  v1
  ======================================  =============================================
  ``notification.title/body/image``       ``notification.title/body/image``
  ``notification.icon/color/sound/tag/``  ``android.notification.<same>``
  ``click_action/*_loc_key/*_loc_args``
  ``notification.android_channel_id``     ``android.notification.channel_id``
  ``notification.sound``, ``.badge``      also ``apns.payload.aps.sound/badge``
  ``data`` (any JSON values)              ``data``, non-strings as compact JSON (12 → "12")
  ``time_to_live`` (seconds)              ``android.ttl`` ``"<n>s"``
  ``collapse_key``                        ``android.collapse_key``
  ``priority`` normal/high (or 5/10)      ``android.priority`` NORMAL/HIGH
  ``restricted_package_name``             ``android.restricted_package_name``
  ``direct_boot_ok``                      ``android.direct_boot_ok``
  ``content_available: true``             ``apns.payload.aps.content-available: 1``
  ``mutable_content: true``               ``apns.payload.aps.mutable-content: 1``
  ``dry_run``                             ``validate_only``
  ``to``, ``registration_ids``, others    dropped (FCM v1 would reject them)
  ======================================  =============================================

* TTL: ``AWS.SNS.MOBILE.FCM.TTL`` (else ``AWS.SNS.MOBILE.GCM.TTL``) rewrites
  ``android.ttl``; else the body's ``android.ttl``; else 4 weeks (FCM's own default, so
  nothing is added).

``expires_at`` is published_at + TTL, after which the engine drops the delivery; it is None
for a TTL of 0, whose meaning the provider enforces (the first attempt is still made). A
client sending an FCM message later should put the remaining TTL into ``android.ttl``, and
must copy ``message`` before adding the token: the dict is shared by the whole fan-out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import (
    DEFAULT_TTL,
    SEPARATORS,
    PayloadError,
    json_object,
    ttl_attribute,
)
from pushgate.providers.notifications import FcmNotification

FCM_TTL = ("AWS.SNS.MOBILE.FCM.TTL", "AWS.SNS.MOBILE.GCM.TTL")  # first present wins

_DURATION = re.compile(r"(\d+)(\.\d{1,9})?s")
_V1_TARGETS = ("token", "topic", "condition", "name")
_LEGACY_NOTIFICATION = ("title", "body", "image")
_LEGACY_ANDROID_NOTIFICATION = {
    "icon": "icon",
    "color": "color",
    "sound": "sound",
    "tag": "tag",
    "click_action": "click_action",
    "body_loc_key": "body_loc_key",
    "body_loc_args": "body_loc_args",
    "title_loc_key": "title_loc_key",
    "title_loc_args": "title_loc_args",
    "android_channel_id": "channel_id",
}
_LEGACY_ANDROID = ("restricted_package_name", "direct_boot_ok")
_LEGACY_PRIORITY = {"normal": "NORMAL", "high": "HIGH", "5": "NORMAL", "10": "HIGH"}


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> FcmNotification:
    validate_only = False
    if body is None:
        message: dict[str, Any] = {"data": {"default": text}}
    else:
        parsed = json_object(body, "GCM")
        v1 = parsed.get("fcmV1Message")
        if v1 is None:
            message, validate_only = _from_legacy(parsed)
        else:
            if not isinstance(v1, dict) or not isinstance(v1.get("message"), dict):
                raise PayloadError("fcmV1Message must be an object holding a message object")
            message = v1["message"]
            validate_only = v1.get("validate_only", False)
            if not isinstance(validate_only, bool):
                raise PayloadError("fcmV1Message.validate_only must be a boolean")
            for key in _V1_TARGETS:
                message.pop(key, None)

    ttl: float | None = None
    for name in FCM_TTL:
        ttl = ttl_attribute(attributes, name)
        if ttl is not None:
            _android(message)["ttl"] = f"{ttl}s"
            break
    else:
        android = message.get("android")
        if isinstance(android, dict) and "ttl" in android:
            ttl = _duration(android["ttl"])
    if ttl is None:
        ttl = DEFAULT_TTL
    return FcmNotification(
        message=message,
        validate_only=validate_only,
        expires_at=published_at + ttl if ttl else None,
    )


def _from_legacy(legacy: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The legacy GCM/FCM body as a v1 message (the table in the module docstring)."""
    message: dict[str, Any] = {}
    notification = legacy.get("notification")
    if notification is not None:
        if not isinstance(notification, dict):
            raise PayloadError("GCM notification must be an object")
        common = {k: notification[k] for k in _LEGACY_NOTIFICATION if k in notification}
        if common:
            message["notification"] = common
        android_notification = {
            v1: notification[key]
            for key, v1 in _LEGACY_ANDROID_NOTIFICATION.items()
            if key in notification
        }
        if android_notification:
            _android(message)["notification"] = android_notification
        for key in ("sound", "badge"):
            if key in notification:
                _aps(message)[key] = notification[key]
    data = legacy.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise PayloadError("GCM data must be an object")
        message["data"] = {
            key: value
            if isinstance(value, str)
            else json.dumps(value, separators=SEPARATORS, ensure_ascii=False)
            for key, value in data.items()
        }
    if "time_to_live" in legacy:
        seconds = legacy["time_to_live"]
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise PayloadError(f"Invalid GCM time_to_live: {seconds!r}")
        _android(message)["ttl"] = f"{seconds}s"
    if "collapse_key" in legacy:
        _android(message)["collapse_key"] = legacy["collapse_key"]
    if "priority" in legacy:
        priority = _LEGACY_PRIORITY.get(str(legacy["priority"]).lower())
        if priority is None:
            raise PayloadError(f"Invalid GCM priority: {legacy['priority']!r}")
        _android(message)["priority"] = priority
    for key in _LEGACY_ANDROID:
        if key in legacy:
            _android(message)[key] = legacy[key]
    if legacy.get("content_available") is True:
        _aps(message)["content-available"] = 1
    if legacy.get("mutable_content") is True:
        _aps(message)["mutable-content"] = 1
    return message, legacy.get("dry_run") is True


def _android(message: dict[str, Any]) -> dict[str, Any]:
    android = message.setdefault("android", {})
    if not isinstance(android, dict):
        raise PayloadError("GCM message.android must be an object")
    return android


def _aps(message: dict[str, Any]) -> dict[str, Any]:
    apns: dict[str, Any] = message.setdefault("apns", {})
    payload: dict[str, Any] = apns.setdefault("payload", {})
    aps: dict[str, Any] = payload.setdefault("aps", {})
    return aps


def _duration(value: object) -> float:
    """Seconds of a protobuf JSON duration, ``"3600s"`` or ``"3.5s"``."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PayloadError(f"Invalid GCM android.ttl: {value!r}")
    return int(match[1]) + float(match[2] or 0)
