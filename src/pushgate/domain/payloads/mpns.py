"""The MPNS request for a message (sns-api.md sec. 5.5, providers.md 4.4; MPNS is retired).

* body: the ``MPNS`` value as is; plain text ``T`` becomes the toast
  ``<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">
  <wp:Toast><wp:Text1>T</wp:Text1></wp:Toast></wp:Notification>`` (without line breaks).
* type: ``AWS.SNS.MOBILE.MPNS.Type`` (``toast``, ``token`` for tiles, ``raw``), which is
  the ``X-WindowsPhone-Target`` header (left out for raw); else from the XML, a
  ``wp:Notification`` root whose first child is ``wp:Toast`` or ``wp:Tile``; else raw.
  Toast and tile bodies must be that XML.
* ``AWS.SNS.MOBILE.MPNS.NotificationClass``: ``realtime`` (deliver now), ``priority``
  (within 450 s) or ``regular`` (within 900 s), as SNS names them, or the class number
  itself; ``X-NotificationClass`` is 1/11/21 for tiles, 2/12/22 for toasts, 3/13/23 for raw.
  Default ``realtime``.
* TTL (sec. 5.6): MPNS has no TTL header, so ``AWS.SNS.MOBILE.MPNS.TTL`` (default 4 weeks)
  only sets when the engine gives up.
* size: at most :data:`PAYLOAD_LIMIT` bytes. **[unverified]** A 2012 MPNS talk gives a
  3 KB payload; a Windows Phone 8 book says 1 KB for every type, answered with 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import (
    DEFAULT_TTL,
    SECONDS,
    PayloadError,
    string_attribute,
    ttl_attribute,
)
from pushgate.domain.payloads.wns import xml_outline
from pushgate.providers.mpns import PAYLOAD_LIMIT
from pushgate.providers.notifications import MpnsNotification

TYPE = "AWS.SNS.MOBILE.MPNS.Type"
NOTIFICATION_CLASS = "AWS.SNS.MOBILE.MPNS.NotificationClass"
TTL = "AWS.SNS.MOBILE.MPNS.TTL"

NAMESPACE = "WPNotification"
# Type → (X-WindowsPhone-Target, the root's first child, the realtime class number).
TYPES: dict[str, tuple[str | None, str | None, int]] = {
    "token": ("token", "{WPNotification}Tile", 1),
    "toast": ("toast", "{WPNotification}Toast", 2),
    "raw": (None, None, 3),
}
# SNS's class names → what they add to the realtime class number (immediate, 450 s, 900 s).
CLASS_DELAYS = {"realtime": 0, "priority": 10, "regular": 20}
_ROOT = "{WPNotification}Notification"


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> MpnsNotification:
    kind = string_attribute(attributes, TYPE)
    if kind is not None and kind not in TYPES:
        raise PayloadError(f"Invalid {TYPE}: {kind!r} (must be toast, token or raw)")
    if body is None:
        if kind == "token":
            raise PayloadError("Plain text cannot be a tile (token) notification: give its XML")
        data = _encode(text or "") if kind == "raw" else toast_xml(text or "")
        kind = kind or "toast"
    else:
        data = _encode(body)
    kind = _check_type(data, kind)
    target, _, base = TYPES[kind]

    ttl = ttl_attribute(attributes, TTL)
    effective = DEFAULT_TTL if ttl is None else ttl
    return MpnsNotification(
        body=data,
        target=target,
        notification_class=base + _class_delay(attributes, kind, base),
        expires_at=published_at + effective if effective else None,
    )


def toast_xml(text: str) -> bytes:
    """SNS's toast for plain text, the text XML-escaped."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
        "<wp:Toast><wp:Text1>" + escape(text) + "</wp:Text1></wp:Toast></wp:Notification>"
    ).encode()


def _check_type(data: bytes, kind: str | None) -> str:
    """The type of a body, checked against its XML (module docstring)."""
    if len(data) > PAYLOAD_LIMIT:
        raise PayloadError(
            f"PayloadTooLarge: the MPNS payload is {len(data)} bytes, "
            f"more than the {PAYLOAD_LIMIT} allowed"
        )
    if kind == "raw":
        return kind
    outline = xml_outline(data)
    child = outline[1][0] if outline is not None and outline[0] == _ROOT and outline[1] else None
    if kind is None:
        return next((name for name, spec in TYPES.items() if spec[1] == child), "raw")
    if outline is None:
        raise PayloadError(f"The MPNS payload is not well-formed XML, as a {kind} needs")
    if child != TYPES[kind][1]:
        expected = TYPES[kind][1] or ""
        raise PayloadError(
            f"A {kind} notification is a wp:Notification with a wp:{expected.partition('}')[2]}"
        )
    return kind


def _class_delay(attributes: Mapping[str, MessageAttribute], kind: str, base: int) -> int:
    value = string_attribute(attributes, NOTIFICATION_CLASS)
    if value is None:
        return 0
    delay = CLASS_DELAYS.get(value.lower())
    if delay is not None:
        return delay
    if SECONDS.fullmatch(value) and int(value) - base in CLASS_DELAYS.values():
        return int(value) - base
    allowed = ", ".join(str(base + d) for d in CLASS_DELAYS.values())
    raise PayloadError(
        f"Invalid {NOTIFICATION_CLASS} for {kind}: {value!r} "
        f"(realtime, priority, regular or {allowed})"
    )


def _encode(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise PayloadError("The MPNS payload is not valid Unicode") from None
