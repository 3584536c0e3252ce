"""The ADM message for a message (sns-api.md sec. 5.1, 5.2, 5.6; providers.md 3.2), from the
``ADM`` key:

* text T (no ``ADM`` key): ``{"data": {"default": T}}`` (sec. 5.2).
* an ADM body ``{"data": {...}, "consolidationKey": K, "expiresAfter": N}``: ``data`` is
  required (``{}`` is a sync ping); values that are not strings are sent as compact JSON
  (``12`` → ``"12"``, as SNS does for FCM legacy data); ``consolidationKey`` a string of
  at most 64 characters; ``expiresAfter`` whole seconds in ADM's 1 ... 2678400. ``md5`` is
  dropped (ADM computes its own checksum; ours would follow an unverified algorithm); any
  other field is refused rather than silently lost.
* TTL: ``AWS.SNS.MOBILE.ADM.TTL`` (rewrites ``expiresAfter``; a value above ADM's 31 days
  is clamped to it, since ADM cannot keep a message longer; 0 is refused, as ADM gives it
  no meaning) > the body's ``expiresAfter`` > ADM's own default of a week, which sec. 5.6
  puts before SNS's 4 weeks. Without an attribute or ``expiresAfter`` the field stays out
  and ADM applies its default.
* ``data`` larger than 6 KB as ADM counts it (compact JSON) is refused: PayloadTooLarge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import SEPARATORS, PayloadError, json_object, ttl_attribute
from pushgate.providers.notifications import AdmNotification

TTL = "AWS.SNS.MOBILE.ADM.TTL"
ADM_MAX_DATA = 6144  # bytes of compact JSON data (providers.md 3.2, 3.4)
ADM_DEFAULT_TTL = 604800  # one week (providers.md 3.2)
ADM_MAX_TTL = 2678400  # 31 days
ADM_MAX_CONSOLIDATION_KEY = 64  # characters [unverified in providers.md 3.2]
_FIELDS = frozenset({"data", "consolidationKey", "expiresAfter", "md5"})


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> AdmNotification:
    consolidation_key: str | None = None
    expires_after: int | None = None
    if body is None:
        data: dict[str, str] = {"default": text or ""}
    else:
        parsed = json_object(body, "ADM")
        unknown = sorted(set(parsed) - _FIELDS)
        if unknown:
            raise PayloadError(f"Unsupported ADM field(s): {', '.join(unknown)}")
        data = _data(parsed.get("data"))
        consolidation_key = _consolidation_key(parsed.get("consolidationKey"))
        if "expiresAfter" in parsed:
            expires_after = _expires_after(parsed["expiresAfter"])

    ttl = ttl_attribute(attributes, TTL)
    if ttl is not None:
        if ttl == 0:
            raise PayloadError(f"Invalid {TTL}: 0 (ADM keeps a message at least 1 second)")
        expires_after = min(ttl, ADM_MAX_TTL)

    try:
        size = len(json.dumps(data, separators=SEPARATORS, ensure_ascii=False).encode())
        (consolidation_key or "").encode()
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise PayloadError("The ADM payload is not valid Unicode") from None
    if size > ADM_MAX_DATA:
        raise PayloadError(
            f"PayloadTooLarge: the ADM data is {size} bytes, more than the {ADM_MAX_DATA} allowed"
        )
    lifetime = ADM_DEFAULT_TTL if expires_after is None else expires_after
    return AdmNotification(
        data=data,
        consolidation_key=consolidation_key,
        expires_after=expires_after,
        expires_at=published_at + lifetime,
    )


def _data(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PayloadError("The ADM value needs a data object (string to string)")
    return {
        key: item
        if isinstance(item, str)
        else json.dumps(item, separators=SEPARATORS, ensure_ascii=False)
        for key, item in value.items()
    }


def _consolidation_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError("ADM consolidationKey must be a string")
    if len(value) > ADM_MAX_CONSOLIDATION_KEY:
        raise PayloadError(
            f"ADM consolidationKey is longer than {ADM_MAX_CONSOLIDATION_KEY} characters"
        )
    return value


def _expires_after(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ADM_MAX_TTL:
        raise PayloadError(
            f"Invalid ADM expiresAfter: {value!r} (whole seconds, 1 to {ADM_MAX_TTL})"
        )
    return value
