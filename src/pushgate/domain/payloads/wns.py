"""The WNS request for a message (sns-api.md sec. 5.5, providers.md 4.2).

* body: the ``WNS`` value as is (SNS passes it through: toast, tile or badge XML, or raw
  text); plain text ``T`` becomes the toast
  ``<toast><visual><binding template="ToastGeneric"><text>T</text></binding></visual></toast>``.
* type (``X-WNS-Type``): ``AWS.SNS.MOBILE.WNS.Type`` (``wns/toast``, ``wns/tile``,
  ``wns/badge``, ``wns/raw``); else the XML root element (``toast``, ``tile``, ``badge``);
  else ``wns/raw``. A toast, tile or badge body must be well-formed UTF-8 XML with the
  matching root, and the whole body at most 5000 bytes (WNS answers 400 and 413).
* ``.CachePolicy`` ``cache`` | ``no-cache``; ``.Tag`` at most 16 characters;
  ``.Group`` and ``.SuppressPopup`` (``true`` | ``false``) with toasts only.
* TTL (sec. 5.6): ``AWS.SNS.MOBILE.WNS.TTL`` becomes ``X-WNS-TTL``; without it nothing is
  sent (the XML carries no TTL) and the engine keeps the message for SNS's 4 weeks. With
  ``no-cache`` the header is left out: WNS does not store such a notification, so there is
  nothing to expire, and the fake treats the pair as conflicting headers (providers.md 10.4).
* ``.Label`` and ``.Match`` are read (they must be String attributes) and not sent:
  ``X-WNS-Match`` only accompanies a DELETE that removes toasts from the Action Center
  (providers.md 4.2), and a publish is a POST; no WNS header of sec. 4.2 carries a label.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.parsers import expat
from xml.sax.saxutils import escape

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import (
    DEFAULT_TTL,
    PayloadError,
    string_attribute,
    ttl_attribute,
)
from pushgate.providers.notifications import WnsNotification
from pushgate.providers.transport import header_safe
from pushgate.providers.wns import CACHE_POLICIES, CONTENT_TYPES, PAYLOAD_LIMIT, TAG_LIMIT

TYPE = "AWS.SNS.MOBILE.WNS.Type"
CACHE_POLICY = "AWS.SNS.MOBILE.WNS.CachePolicy"
GROUP = "AWS.SNS.MOBILE.WNS.Group"
LABEL = "AWS.SNS.MOBILE.WNS.Label"
TAG = "AWS.SNS.MOBILE.WNS.Tag"
MATCH = "AWS.SNS.MOBILE.WNS.Match"
SUPPRESS_POPUP = "AWS.SNS.MOBILE.WNS.SuppressPopup"
TTL = "AWS.SNS.MOBILE.WNS.TTL"

TYPES = tuple(CONTENT_TYPES)
_ROOTS = {"toast": "wns/toast", "tile": "wns/tile", "badge": "wns/badge"}
_BOOLEANS = {"true": True, "false": False}


class _Refused(Exception):
    """A DTD in a payload: entity declarations are never expanded (defusedxml's rule)."""


def xml_outline(data: bytes) -> tuple[str, tuple[str, ...]] | None:
    """The root element's name and its children's names, as ``{namespace}local`` (or
    ``local`` outside any namespace); None when ``data`` is not well-formed UTF-8 XML or
    declares a DTD. Only the outline is kept: providers check the root, not the schema."""
    parser = expat.ParserCreate("UTF-8", "}")
    names: list[str] = []
    depth = 0

    def start(name: str, attributes: object) -> None:
        nonlocal depth
        if depth <= 1:
            names.append("{" + name if "}" in name else name)
        depth += 1

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    def refuse(*args: object) -> None:
        raise _Refused

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, _Refused):
        return None
    return (names[0], tuple(names[1:])) if names else None


def local_name(name: str) -> str:
    """``{namespace}local`` → ``local``."""
    return name.rpartition("}")[2]


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> WnsNotification:
    kind = string_attribute(attributes, TYPE)
    if kind is not None and kind not in TYPES:
        raise PayloadError(f"Invalid {TYPE}: {kind!r} (must be one of {', '.join(TYPES)})")
    if body is None:
        data, kind = _from_text(text or "", kind)
    else:
        data = _encode(body)
        kind = _body_type(data, kind)

    cache_policy = string_attribute(attributes, CACHE_POLICY)
    if cache_policy is not None and cache_policy not in CACHE_POLICIES:
        raise PayloadError(f"Invalid {CACHE_POLICY}: {cache_policy!r} (cache or no-cache)")
    tag = string_attribute(attributes, TAG)
    if tag is not None and (len(tag) > TAG_LIMIT or not header_safe(tag)):
        raise PayloadError(f"Invalid {TAG}: at most {TAG_LIMIT} printable ASCII characters")
    group = string_attribute(attributes, GROUP)
    if group is not None and not header_safe(group):
        raise PayloadError(f"Invalid {GROUP}: printable ASCII characters only")
    raw_suppress = string_attribute(attributes, SUPPRESS_POPUP)
    suppress = None
    if raw_suppress is not None:
        suppress = _BOOLEANS.get(raw_suppress.lower())
        if suppress is None:
            raise PayloadError(f"Invalid {SUPPRESS_POPUP}: {raw_suppress!r} (true or false)")
    if kind != "wns/toast" and (group is not None or suppress is not None):
        raise PayloadError(f"{GROUP} and {SUPPRESS_POPUP} apply to wns/toast only, not {kind}")
    string_attribute(attributes, LABEL)  # read for its type; not sent (module docstring)
    string_attribute(attributes, MATCH)

    ttl = ttl_attribute(attributes, TTL)
    effective = DEFAULT_TTL if ttl is None else ttl
    return WnsNotification(
        kind=kind,
        body=data,
        cache_policy=cache_policy,
        tag=tag,
        group=group,
        ttl=None if cache_policy == "no-cache" else ttl,
        suppress_popup=suppress,
        expires_at=published_at + effective if effective else None,
    )


def toast_xml(text: str) -> bytes:
    """SNS's toast for plain text, the text XML-escaped."""
    return (
        '<toast><visual><binding template="ToastGeneric"><text>'
        + escape(text)
        + "</text></binding></visual></toast>"
    ).encode()


def _from_text(text: str, kind: str | None) -> tuple[bytes, str]:
    if kind == "wns/raw":
        return _encode(text), kind
    if kind not in (None, "wns/toast"):
        raise PayloadError(f"Plain text cannot be a {kind} notification: give its XML as WNS")
    data = toast_xml(text)
    _check_size(data)
    if xml_outline(data) is None:  # a control character XML 1.0 cannot carry
        raise PayloadError("The text has characters that XML cannot carry")
    return data, "wns/toast"


def _body_type(data: bytes, kind: str | None) -> str:
    """The type of a ``WNS`` body, checked against its XML (module docstring)."""
    if kind == "wns/raw":
        return kind
    outline = xml_outline(data)
    root = local_name(outline[0]) if outline is not None else None
    if kind is None:
        return _ROOTS.get(root or "", "wns/raw")
    if outline is None:
        raise PayloadError(f"The WNS value is not well-formed XML, as {kind} needs")
    if _ROOTS.get(root or "") != kind:
        raise PayloadError(f"A {kind} notification needs a <{kind[4:]}> root, not <{root}>")
    return kind


def _encode(value: str) -> bytes:
    try:
        data = value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise PayloadError("The WNS payload is not valid Unicode") from None
    _check_size(data)
    return data


def _check_size(data: bytes) -> None:
    if len(data) > PAYLOAD_LIMIT:
        raise PayloadError(
            f"PayloadTooLarge: the WNS payload is {len(data)} bytes, "
            f"more than the {PAYLOAD_LIMIT} allowed"
        )
