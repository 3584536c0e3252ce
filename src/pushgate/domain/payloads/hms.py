"""The HMS Push Kit message for a message (providers.md 7.2), from the ``HMS`` key.

HMS is beyond SNS; its shape follows SNS's FCM v1 opt-in (sns-api.md 5.3):

* text T (no ``HMS`` key): ``{"data": "{\\"default\\":\\"T\\"}"}``: sec. 5.2's data message,
  with ``data`` as the JSON *string* HMS requires (``message.data`` is not a map).
* ``{"message": M, "validate_only": B}`` (HMS's own request body) or a bare message object
  M: M as given, minus any target (``token``, ``topic``, ``condition``; pushgate supplies
  the token). A ``data`` (or ``android.data``) object or array is sent as its compact
  JSON text; any other non-string ``data`` is refused.
* TTL: ``AWS.SNS.MOBILE.HMS.TTL`` (our extension, by analogy with sns-api.md 5.5) rewrites
  ``android.ttl`` as ``"<n>s"`` (clamped to HMS's 15 days; 0 is refused, as HMS gives it
  no meaning we know of) > the body's ``android.ttl`` > HMS's maximum of 15 days (SNS's 4
  weeks capped). Without an attribute or ``android.ttl`` the field stays out and HMS
  applies its own default (a day, unverified).
* a message larger than 4096 bytes as compact JSON without its token: PayloadTooLarge.

``expires_at`` is published_at + TTL; the client puts the remaining TTL into an
``android.ttl`` it sends. ``message`` is shared by the whole fan-out: never mutate it.
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
from pushgate.providers.notifications import HmsNotification

TTL = "AWS.SNS.MOBILE.HMS.TTL"
HMS_MAX_MESSAGE = 4096  # bytes (providers.md 7.2)
HMS_MAX_TTL = 1296000  # 15 days [unverified: vendor tables, not providers.md]
_TARGETS = ("token", "topic", "condition")
_DURATION = re.compile(r"(\d+)(\.\d{1,9})?s")


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> HmsNotification:
    validate_only = False
    if body is None:
        message: dict[str, Any] = {"data": _json_text({"default": text or ""})}
    else:
        parsed = json_object(body, "HMS")
        if "message" in parsed:
            message = parsed["message"]
            if not isinstance(message, dict):
                raise PayloadError("HMS message must be an object")
            validate_only = parsed.get("validate_only", False)
            if not isinstance(validate_only, bool):
                raise PayloadError("HMS validate_only must be a boolean")
        else:
            message = parsed
        message = {key: value for key, value in message.items() if key not in _TARGETS}
        if "data" in message:
            message["data"] = _data(message["data"], "data")
        android = message.get("android")
        if android is not None:
            if not isinstance(android, dict):
                raise PayloadError("HMS message.android must be an object")
            if "data" in android:
                message["android"] = {**android, "data": _data(android["data"], "android.data")}

    ttl: float | None = ttl_attribute(attributes, TTL)
    if ttl is not None:
        if ttl == 0:
            raise PayloadError(f"Invalid {TTL}: 0 (HMS keeps a message at least 1 second)")
        ttl = min(ttl, HMS_MAX_TTL)
        message["android"] = {**message.get("android", {}), "ttl": f"{int(ttl)}s"}
    else:
        android = message.get("android")
        if isinstance(android, dict) and "ttl" in android:
            ttl = _duration(android["ttl"])
    if ttl is None:
        ttl = min(DEFAULT_TTL, HMS_MAX_TTL)

    try:
        size = len(json.dumps(message, separators=SEPARATORS, ensure_ascii=False).encode())
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise PayloadError("The HMS payload is not valid Unicode") from None
    if size > HMS_MAX_MESSAGE:
        raise PayloadError(
            f"PayloadTooLarge: the HMS message is {size} bytes, "
            f"more than the {HMS_MAX_MESSAGE} allowed"
        )
    return HmsNotification(
        message=message, validate_only=validate_only, expires_at=published_at + ttl
    )


def _json_text(value: object) -> str:
    return json.dumps(value, separators=SEPARATORS, ensure_ascii=False)


def _data(value: object, name: str) -> str:
    """HMS data is a string; an object or array becomes its JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return _json_text(value)
    raise PayloadError(f"HMS message.{name} must be a string (or a JSON object)")


def _duration(value: object) -> float:
    """Seconds of a duration string, ``"3600s"`` or ``"3.5s"``."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PayloadError(f"Invalid HMS android.ttl: {value!r}")
    seconds = int(match[1]) + float(match[2] or 0)
    if seconds <= 0:
        raise PayloadError(f"Invalid HMS android.ttl: {value!r} (must be positive)")
    return seconds
