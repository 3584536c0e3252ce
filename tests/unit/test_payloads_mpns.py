"""The MPNS notification of a message: body, target, notification class, TTL (sns-api.md 5.5)."""

from __future__ import annotations

import pytest

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import DEFAULT_TTL, PayloadError, build_notification
from pushgate.domain.platforms import Platform
from pushgate.providers.notifications import MpnsNotification

T = 1_800_000_000.25  # published_at
HEAD = '<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
TOAST = HEAD + "<wp:Toast><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>"
TILE = HEAD + "<wp:Tile><wp:Count>3</wp:Count></wp:Tile></wp:Notification>"


def attrs(**values: str) -> dict[str, MessageAttribute]:
    """``NotificationClass="regular"`` → ``{"AWS.SNS.MOBILE.MPNS.NotificationClass": ...}``."""
    names = {name: f"AWS.SNS.MOBILE.MPNS.{name}" for name in values}
    return {names[n]: MessageAttribute(names[n], "String", v) for n, v in values.items()}


def mpns(
    message: str = "hi",
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> MpnsNotification:
    built = build_notification(
        Platform.MPNS, message, structure, attributes or {}, published_at=T, bundle_id=None
    )
    assert isinstance(built, MpnsNotification)
    return built


def body(value: str, **attributes: str) -> MpnsNotification:
    return mpns("ignored", {"default": "d", "MPNS": value}, attrs(**attributes))


def reason(message: str, structure: dict[str, str] | None, **attributes: str) -> str:
    with pytest.raises(PayloadError) as exc:
        mpns(message, structure, attrs(**attributes))
    return exc.value.reason


def test_plain_text_is_a_realtime_toast() -> None:
    assert mpns("hi") == MpnsNotification(
        body=TOAST.encode(), target="toast", notification_class=2, expires_at=T + DEFAULT_TTL
    )


def test_plain_text_is_xml_escaped() -> None:
    assert b"<wp:Text1>a&lt;b&gt; &amp; c</wp:Text1>" in mpns("a<b> & c").body


def test_plain_text_as_raw() -> None:
    built = mpns("bytes", attributes=attrs(Type="raw"))
    assert (built.body, built.target, built.notification_class) == (b"bytes", None, 3)


def test_plain_text_cannot_be_a_tile() -> None:
    assert reason("hi", None, Type="token").startswith("Plain text cannot be a tile")


def test_text_with_a_control_character_is_refused() -> None:
    assert reason("a\x01", None) == "The MPNS payload is not well-formed XML, as a toast needs"


@pytest.mark.parametrize(
    ("value", "target", "notification_class"),
    [
        (TOAST, "toast", 2),
        (TILE, "token", 1),
        ("<wp:Notification xmlns:wp='WPNotification'><wp:Other/></wp:Notification>", None, 3),
        ("<Notification><Toast/></Notification>", None, 3),  # not in the WPNotification namespace
        ("raw data", None, 3),
    ],
)
def test_type_inferred_from_the_xml(
    value: str, target: str | None, notification_class: int
) -> None:
    built = body(value)
    assert (built.body, built.target, built.notification_class) == (
        value.encode(),
        target,
        notification_class,
    )


@pytest.mark.parametrize(
    ("kind", "name", "number"),
    [
        ("toast", "realtime", 2),
        ("toast", "priority", 12),
        ("toast", "regular", 22),
        ("token", "Regular", 21),
        ("raw", "priority", 13),
        ("toast", "12", 12),
        ("token", "1", 1),
        ("raw", "23", 23),
    ],
)
def test_notification_class(kind: str, name: str, number: int) -> None:
    value = {"toast": TOAST, "token": TILE, "raw": "r"}[kind]
    assert body(value, Type=kind, NotificationClass=name).notification_class == number


@pytest.mark.parametrize("value", ["2", "4", "urgent", "-1"])
def test_class_that_does_not_fit_the_type(value: str) -> None:
    assert reason("m", {"MPNS": TILE}, Type="token", NotificationClass=value) == (
        f"Invalid AWS.SNS.MOBILE.MPNS.NotificationClass for token: {value!r} "
        "(realtime, priority, regular or 1, 11, 21)"
    )


def test_unknown_type() -> None:
    assert reason("m", None, Type="tile") == (
        "Invalid AWS.SNS.MOBILE.MPNS.Type: 'tile' (must be toast, token or raw)"
    )


def test_xml_type_needs_its_element() -> None:
    assert reason("m", {"MPNS": TILE}, Type="toast") == (
        "A toast notification is a wp:Notification with a wp:Toast"
    )
    assert reason("m", {"MPNS": "<x"}, Type="token") == (
        "The MPNS payload is not well-formed XML, as a token needs"
    )


def test_payload_limit() -> None:
    assert len(body("x" * 3072).body) == 3072
    assert reason("m", {"MPNS": "x" * 3073}) == (
        "PayloadTooLarge: the MPNS payload is 3073 bytes, more than the 3072 allowed"
    )


def test_ttl_attribute_sets_the_expiry_only() -> None:
    assert mpns("hi", attributes=attrs(TTL="90")).expires_at == T + 90
    assert mpns("hi", attributes=attrs(TTL="0")).expires_at is None
    assert reason("hi", None, TTL="soon").startswith("Invalid AWS.SNS.MOBILE.MPNS.TTL")
