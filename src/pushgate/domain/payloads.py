"""What SNS sends to one platform for one message (specs/sns-api.md sec. 5, providers.md 1, 2).

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

APNs (sec. 5.4, providers.md 1.3-1.5):

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

FCM (sec. 5.3, providers.md 2.3), the ``GCM`` key:

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
from pushgate.domain.platforms import APPLE_PLATFORMS, Platform
from pushgate.providers.notifications import ApnsNotification, FcmNotification

DEFAULT_TTL = 4 * 7 * 24 * 3600  # SNS's default push TTL: 4 weeks = 2419200 s
APNS_MAX_PAYLOAD = 4096
APNS_VOIP_MAX_PAYLOAD = 5120
APNS_MAX_COLLAPSE_ID = 64  # bytes

PUSH_TYPE = "AWS.SNS.MOBILE.APNS.PUSH_TYPE"
PRIORITY = "AWS.SNS.MOBILE.APNS.PRIORITY"
TOPIC = "AWS.SNS.MOBILE.APNS.TOPIC"
COLLAPSE_ID = "AWS.SNS.MOBILE.APNS.COLLAPSE_ID"
FCM_TTL = ("AWS.SNS.MOBILE.FCM.TTL", "AWS.SNS.MOBILE.GCM.TTL")  # first present wins

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
_SEPARATORS = (",", ":")
_SECONDS = re.compile(r"\d+")
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


class PayloadError(Exception):
    """The message can never be delivered to this platform; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def build_notification(
    platform: Platform,
    message: str,
    structure: Mapping[str, str] | None,
    attributes: Mapping[str, MessageAttribute],
    *,
    published_at: float,
    bundle_id: str | None,
) -> ApnsNotification | FcmNotification:
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
        return _apns(platform, text, body, attributes, published_at, bundle_id)
    if platform is Platform.GCM:
        return _fcm(text, body, attributes, published_at)
    raise PayloadError(f"Delivery to {platform.value} endpoints is not supported")


# --- APNs -----------------------------------------------------------------------------------


def _apns(
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
        payload = _json_object(body, platform.value)
    push_type = _string(attributes, PUSH_TYPE)
    if push_type is None:
        push_type = "voip" if platform in _VOIP else _infer_push_type(payload.get("aps"))

    topic = _string(attributes, TOPIC)
    if topic is None and bundle_id is not None:
        suffix = _TOPIC_SUFFIX.get(push_type, "")
        topic = bundle_id if bundle_id.endswith(suffix) else bundle_id + suffix

    priority: int | None = 5 if push_type == "background" else None
    raw_priority = _string(attributes, PRIORITY)
    if raw_priority is not None:
        if not _SECONDS.fullmatch(raw_priority) or int(raw_priority) not in _PRIORITIES:
            raise PayloadError(f"Invalid {PRIORITY}: {raw_priority!r} (must be 1, 5 or 10)")
        priority = int(raw_priority)

    collapse_id = _string(attributes, COLLAPSE_ID)
    if collapse_id is not None and len(collapse_id.encode()) > APNS_MAX_COLLAPSE_ID:
        raise PayloadError(f"{COLLAPSE_ID} is longer than {APNS_MAX_COLLAPSE_ID} bytes")

    ttl = _ttl(attributes, f"AWS.SNS.MOBILE.{platform.value}.TTL")
    if ttl is None:
        ttl = DEFAULT_TTL

    try:
        data = json.dumps(payload, separators=_SEPARATORS, ensure_ascii=False).encode()
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


# --- FCM ------------------------------------------------------------------------------------


def _fcm(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> FcmNotification:
    validate_only = False
    if body is None:
        message: dict[str, Any] = {"data": {"default": text}}
    else:
        parsed = _json_object(body, "GCM")
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
        ttl = _ttl(attributes, name)
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
            else json.dumps(value, separators=_SEPARATORS, ensure_ascii=False)
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


# --- shared -----------------------------------------------------------------------------------


def _json_object(body: str, key: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError(f"The {key} value is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise PayloadError(f"The {key} value is not a JSON object")
    return parsed


def _string(attributes: Mapping[str, MessageAttribute], name: str) -> str | None:
    attribute = attributes.get(name)
    if attribute is None:
        return None
    if not isinstance(attribute.value, str):
        raise PayloadError(f"{name} must be a String attribute")
    return attribute.value


def _ttl(attributes: Mapping[str, MessageAttribute], name: str) -> int | None:
    """A TTL attribute in whole seconds (0 allowed: now or never), or None when absent."""
    value = _string(attributes, name)
    if value is None:
        return None
    if not _SECONDS.fullmatch(value):
        raise PayloadError(f"Invalid {name}: {value!r} (must be whole seconds)")
    return int(value)
