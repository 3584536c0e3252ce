"""The WEBPUSH notification of a message: payload wrap, attributes, TTL (payloads/webpush.py)."""

from __future__ import annotations

import json

import pytest

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import DEFAULT_TTL, PayloadError, build_notification
from pushgate.domain.platforms import Platform
from pushgate.providers.notifications import WebPushNotification

T = 1_800_000_000.25  # published_at


def attrs(**values: str | bytes) -> dict[str, MessageAttribute]:
    """``TTL="60"`` -> ``{"AWS.SNS.MOBILE.WEBPUSH.TTL": String "60"}`` (bytes: Binary)."""
    out = {}
    for key, value in values.items():
        name = f"AWS.SNS.MOBILE.WEBPUSH.{key}"
        out[name] = MessageAttribute(
            name, "Binary" if isinstance(value, bytes) else "String", value
        )
    return out


def webpush(
    message: str,
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> WebPushNotification:
    built = build_notification(
        Platform.WEBPUSH, message, structure, attributes or {}, published_at=T, bundle_id=None
    )
    assert isinstance(built, WebPushNotification)
    return built


def reason(
    message: str,
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> str:
    with pytest.raises(PayloadError) as caught:
        webpush(message, structure, attributes)
    return caught.value.reason


def test_plain_text_is_wrapped_as_default() -> None:
    assert webpush("Hello \u2603") == WebPushNotification(
        payload='{"default":"Hello \u2603"}'.encode(),
        ttl=DEFAULT_TTL,
        urgency=None,
        topic=None,
        expires_at=T + DEFAULT_TTL,
    )


def test_default_of_a_structure_is_wrapped_too() -> None:
    built = webpush("ignored", {"default": 'say "hi"', "GCM": "{}"})
    assert json.loads(built.payload) == {"default": 'say "hi"'}


@pytest.mark.parametrize(
    "value",
    ['{"title":"Order","body":"shipped","data":{"id":42}}', "not json at all", "[1, 2]"],
)
def test_webpush_value_is_the_payload_as_is(value: str) -> None:
    built = webpush("x", {"default": "fallback", "WEBPUSH": value})
    assert built.payload == value.encode()


def test_empty_webpush_value_is_a_push_without_payload() -> None:
    assert webpush("x", {"WEBPUSH": ""}).payload == b""


def test_payload_limit_is_what_fits_in_4096_encrypted_bytes() -> None:
    assert len(webpush("x", {"WEBPUSH": "a" * 3993}).payload) == 3993
    assert reason("x", {"WEBPUSH": "a" * 3994}) == (
        "PayloadTooLarge: the WEBPUSH payload is 3994 bytes, more than the 3993 allowed"
    )
    # the limit is in bytes of UTF-8, not characters
    assert reason("x", {"WEBPUSH": "\u00e9" * 1997}).startswith("PayloadTooLarge: ")
    # the wrap counts: 3981 characters of text become 3994 bytes
    assert reason("a" * 3981).startswith("PayloadTooLarge: ")


def test_lone_surrogate_is_refused() -> None:
    assert reason("x", {"WEBPUSH": "\ud800"}) == "The WEBPUSH payload is not valid Unicode"


@pytest.mark.parametrize(("ttl", "expires_at"), [("60", T + 60), ("0", None)])
def test_ttl_attribute(ttl: str, expires_at: float | None) -> None:
    built = webpush("x", attributes=attrs(TTL=ttl))
    assert (built.ttl, built.expires_at) == (int(ttl), expires_at)


def test_ttl_attribute_must_be_whole_seconds() -> None:
    assert reason("x", attributes=attrs(TTL="1.5")) == (
        "Invalid AWS.SNS.MOBILE.WEBPUSH.TTL: '1.5' (must be whole seconds)"
    )


def test_ttl_attribute_of_another_platform_is_ignored() -> None:
    other = {"AWS.SNS.MOBILE.GCM.TTL": MessageAttribute("AWS.SNS.MOBILE.GCM.TTL", "String", "60")}
    assert webpush("x", attributes=other).ttl == DEFAULT_TTL


@pytest.mark.parametrize("urgency", ["very-low", "low", "normal", "high"])
def test_urgency(urgency: str) -> None:
    assert webpush("x", attributes=attrs(URGENCY=urgency)).urgency == urgency


@pytest.mark.parametrize("urgency", ["HIGH", "urgent", "", "very low"])
def test_invalid_urgency(urgency: str) -> None:
    assert reason("x", attributes=attrs(URGENCY=urgency)) == (
        f"Invalid AWS.SNS.MOBILE.WEBPUSH.URGENCY: {urgency!r} "
        "(must be very-low, low, normal or high)"
    )


@pytest.mark.parametrize("topic", ["a", "order-42_status", "A" * 32])
def test_topic(topic: str) -> None:
    assert webpush("x", attributes=attrs(TOPIC=topic)).topic == topic


@pytest.mark.parametrize("topic", ["", "A" * 33, "has space", "slash/", "pad=", "t\u00e9"])
def test_invalid_topic(topic: str) -> None:
    assert reason("x", attributes=attrs(TOPIC=topic)) == (
        "Invalid AWS.SNS.MOBILE.WEBPUSH.TOPIC: must be 1 to 32 characters of A-Z, a-z, 0-9, "
        "'-' and '_'"
    )


def test_binary_attribute_is_refused() -> None:
    assert reason("x", attributes=attrs(URGENCY=b"high")) == (
        "AWS.SNS.MOBILE.WEBPUSH.URGENCY must be a String attribute"
    )


def test_no_webpush_nor_default_entry() -> None:
    assert reason("x", {"GCM": "{}"}) == "No WEBPUSH or default entry in the message"


def test_equal_inputs_give_equal_notifications() -> None:
    a = webpush("x", {"WEBPUSH": "p"}, attrs(TTL="5", URGENCY="low", TOPIC="t"))
    b = webpush("x", {"WEBPUSH": "p"}, attrs(TTL="5", URGENCY="low", TOPIC="t"))
    assert a == b and hash(a) == hash(b)
