"""The WNS notification of a message: body, type, X-WNS-* attributes, TTL (sns-api.md 5.5)."""

from __future__ import annotations

import pytest

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import DEFAULT_TTL, PayloadError, build_notification
from pushgate.domain.payloads.wns import xml_outline
from pushgate.domain.platforms import Platform
from pushgate.providers.notifications import WnsNotification

T = 1_800_000_000.25  # published_at
TOAST = (
    b'<toast><visual><binding template="ToastGeneric"><text>hi</text></binding></visual></toast>'
)
TILE = '<tile><visual><binding template="TileMedium"><text>7</text></binding></visual></tile>'
BADGE = '<badge value="7"/>'


def attrs(**values: str) -> dict[str, MessageAttribute]:
    """``CachePolicy="cache"`` → ``{"AWS.SNS.MOBILE.WNS.CachePolicy": ...}``."""
    names = {name: f"AWS.SNS.MOBILE.WNS.{name}" for name in values}
    return {names[n]: MessageAttribute(names[n], "String", v) for n, v in values.items()}


def wns(
    message: str = "hi",
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> WnsNotification:
    built = build_notification(
        Platform.WNS, message, structure, attributes or {}, published_at=T, bundle_id=None
    )
    assert isinstance(built, WnsNotification)
    return built


def body(value: str, **attributes: str) -> WnsNotification:
    return wns("ignored", {"default": "d", "WNS": value}, attrs(**attributes))


def reason(message: str, structure: dict[str, str] | None, **attributes: str) -> str:
    with pytest.raises(PayloadError) as exc:
        wns(message, structure, attrs(**attributes))
    return exc.value.reason


# --- text, selection -----------------------------------------------------------------------------


def test_plain_text_is_a_toast_with_default_ttl() -> None:
    assert wns("hi") == WnsNotification(kind="wns/toast", body=TOAST, expires_at=T + DEFAULT_TTL)


def test_plain_text_is_xml_escaped() -> None:
    built = wns('a<b & "c">')
    assert built.body == (
        b'<toast><visual><binding template="ToastGeneric"><text>a&lt;b &amp; "c"&gt;'
        b"</text></binding></visual></toast>"
    )
    assert xml_outline(built.body) == ("toast", ("visual",))


def test_plain_text_keeps_unicode() -> None:
    assert "h\u00e9\u2603".encode() in wns("h\u00e9\u2603").body


def test_default_text_when_there_is_no_wns_key() -> None:
    assert wns("ignored", {"default": "hi", "GCM": "{}"}).body == TOAST


def test_text_with_a_control_character_is_refused() -> None:
    assert reason("a\x01b", None) == "The text has characters that XML cannot carry"


def test_plain_text_as_raw() -> None:
    built = wns("just bytes", attributes=attrs(Type="wns/raw"))
    assert (built.kind, built.body) == ("wns/raw", b"just bytes")


@pytest.mark.parametrize("kind", ["wns/tile", "wns/badge"])
def test_plain_text_cannot_be_a_tile_or_badge(kind: str) -> None:
    assert reason("hi", None, Type=kind).startswith(f"Plain text cannot be a {kind}")


# --- bodies and types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (TOAST.decode(), "wns/toast"),
        (TILE, "wns/tile"),
        (BADGE, "wns/badge"),
        ('<?xml version="1.0" encoding="utf-8"?>' + BADGE, "wns/badge"),
        ("<other/>", "wns/raw"),
        ('{"json": "is raw"}', "wns/raw"),
        ("<toast>unclosed", "wns/raw"),
    ],
)
def test_type_inferred_from_the_xml_root(value: str, kind: str) -> None:
    built = body(value)
    assert (built.kind, built.body) == (kind, value.encode())


def test_type_attribute_wins() -> None:
    assert body(TOAST.decode(), Type="wns/raw").kind == "wns/raw"
    assert body(TILE, Type="wns/tile").kind == "wns/tile"


def test_unknown_type_is_refused() -> None:
    assert reason("m", None, Type="wns/push") == (
        "Invalid AWS.SNS.MOBILE.WNS.Type: 'wns/push' "
        "(must be one of wns/toast, wns/tile, wns/badge, wns/raw)"
    )


def test_xml_type_needs_the_matching_root() -> None:
    structure = {"WNS": TILE}
    assert reason("m", structure, Type="wns/toast") == (
        "A wns/toast notification needs a <toast> root, not <tile>"
    )


def test_xml_type_needs_well_formed_xml() -> None:
    assert reason("m", {"WNS": "<badge value='1'>"}, Type="wns/badge") == (
        "The WNS value is not well-formed XML, as wns/badge needs"
    )


def test_a_dtd_is_never_expanded() -> None:
    bomb = '<!DOCTYPE toast [<!ENTITY a "aaaaaaaaaa">]><toast>&a;</toast>'
    assert xml_outline(bomb.encode()) is None
    assert body(bomb).kind == "wns/raw"  # sent as raw bytes, never parsed further
    assert reason("m", {"WNS": bomb}, Type="wns/toast").startswith("The WNS value is not")


def test_namespaced_names_in_the_outline() -> None:
    assert xml_outline(b'<a:x xmlns:a="urn:n"><y/><a:z/></a:x>') == (
        "{urn:n}x",
        ("y", "{urn:n}z"),
    )


def test_payload_at_the_limit_and_over_it() -> None:
    at_limit = "x" * 5000
    assert len(body(at_limit).body) == 5000
    assert reason("m", {"WNS": at_limit + "y"}) == (
        "PayloadTooLarge: the WNS payload is 5001 bytes, more than the 5000 allowed"
    )


def test_long_plain_text_is_too_large() -> None:
    assert reason("x" * 5000, None).startswith("PayloadTooLarge: the WNS payload is 5088 bytes")


def test_lone_surrogate_is_refused() -> None:
    assert reason("m", {"WNS": "\ud800"}) == "The WNS payload is not valid Unicode"


# --- X-WNS-* attributes -----------------------------------------------------------------------


def test_every_header_attribute() -> None:
    built = wns(
        "hi",
        attributes=attrs(CachePolicy="cache", Tag="t1", Group="g1", SuppressPopup="true", TTL="60"),
    )
    assert built == WnsNotification(
        kind="wns/toast",
        body=TOAST,
        cache_policy="cache",
        tag="t1",
        group="g1",
        ttl=60,
        suppress_popup=True,
        expires_at=T + 60,
    )


def test_suppress_popup_false_any_case() -> None:
    assert wns("hi", attributes=attrs(SuppressPopup="False")).suppress_popup is False


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("CachePolicy", "always", "Invalid AWS.SNS.MOBILE.WNS.CachePolicy: 'always'"),
        ("Tag", "x" * 17, "Invalid AWS.SNS.MOBILE.WNS.Tag: at most 16"),
        ("Tag", "", "Invalid AWS.SNS.MOBILE.WNS.Tag"),
        ("Tag", "t\u00e9", "Invalid AWS.SNS.MOBILE.WNS.Tag"),
        ("Group", "a\nb", "Invalid AWS.SNS.MOBILE.WNS.Group"),
        ("SuppressPopup", "yes", "Invalid AWS.SNS.MOBILE.WNS.SuppressPopup: 'yes'"),
        ("TTL", "-1", "Invalid AWS.SNS.MOBILE.WNS.TTL: '-1'"),
        ("TTL", "1.5", "Invalid AWS.SNS.MOBILE.WNS.TTL"),
    ],
)
def test_bad_attribute_values(attribute: str, value: str, message: str) -> None:
    assert reason("hi", None, **{attribute: value}).startswith(message)


def test_a_tag_of_sixteen_is_fine() -> None:
    assert wns("hi", attributes=attrs(Tag="x" * 16)).tag == "x" * 16


@pytest.mark.parametrize("attribute", ["Group", "SuppressPopup"])
def test_toast_only_attributes(attribute: str) -> None:
    value = "true" if attribute == "SuppressPopup" else "g"
    assert reason("m", {"WNS": TILE}, **{attribute: value}) == (
        "AWS.SNS.MOBILE.WNS.Group and AWS.SNS.MOBILE.WNS.SuppressPopup apply to "
        "wns/toast only, not wns/tile"
    )


def test_label_and_match_are_read_but_not_sent() -> None:
    assert wns("hi", attributes=attrs(Label="l", Match="type:wns/toast;all")) == wns("hi")


def test_binary_label_is_refused() -> None:
    name = "AWS.SNS.MOBILE.WNS.Label"
    with pytest.raises(PayloadError, match="must be a String attribute"):
        wns("hi", attributes={name: MessageAttribute(name, "Binary", b"x")})


# --- TTL (sec. 5.6) ----------------------------------------------------------------------------


def test_ttl_zero_is_sent_and_never_expires_locally() -> None:
    built = wns("hi", attributes=attrs(TTL="0"))
    assert (built.ttl, built.expires_at) == (0, None)


def test_no_cache_leaves_the_ttl_header_out_but_keeps_the_expiry() -> None:
    built = wns("hi", attributes=attrs(TTL="60", CachePolicy="no-cache"))
    assert (built.cache_policy, built.ttl, built.expires_at) == ("no-cache", None, T + 60)
