"""The Baidu message for a message (sns-api.md 5.1, 5.5, 5.6; providers.md 5.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import PayloadError, build_notification
from pushgate.domain.platforms import Platform
from pushgate.providers.notifications import BaiduNotification

T = 1_800_000_000.25  # published_at
WEEK = 604_800
PREFIX = "AWS.SNS.MOBILE.BAIDU."


def attrs(**values: str) -> dict[str, MessageAttribute]:
    """``MessageType="0"`` -> ``{"AWS.SNS.MOBILE.BAIDU.MessageType": ...}``."""
    return {
        PREFIX + name: MessageAttribute(PREFIX + name, "String", v) for name, v in values.items()
    }


def baidu(
    message: str,
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> BaiduNotification:
    built = build_notification(
        Platform.BAIDU, message, structure, attributes or {}, published_at=T, bundle_id=None
    )
    assert isinstance(built, BaiduNotification)
    return built


def body(value: Any, attributes: dict[str, MessageAttribute] | None = None) -> BaiduNotification:
    raw = value if isinstance(value, str) else json.dumps(value)
    return baidu("ignored", {"default": "d", "BAIDU": raw}, attributes)


def reason(value: Any, attributes: dict[str, MessageAttribute] | None = None) -> str:
    with pytest.raises(PayloadError) as exc:
        body(value, attributes)
    return exc.value.reason


def test_plain_text_is_an_android_notification() -> None:
    assert baidu('Grüße "✓"') == BaiduNotification(
        msg='{"title":"","description":"Grüße \\"✓\\""}',
        msg_type=1,
        msg_expires=WEEK,
        device_type=None,
        deploy_status=None,
        expires_at=T + WEEK,
    )


def test_default_text_of_a_structure_without_baidu_key() -> None:
    built = baidu("ignored", {"default": "fallback", "GCM": "{}"})
    assert json.loads(built.msg) == {"title": "", "description": "fallback"}


def test_plain_text_as_pass_through_is_the_text() -> None:
    built = baidu("just text", attributes=attrs(MessageType="0"))
    assert (built.msg, built.msg_type) == ("just text", 0)


def test_android_notification_body_is_compacted() -> None:
    value = {"title": "T", "description": "D", "custom_content": {"k": "v"}, "open_type": 2}
    built = body(json.dumps(value, indent=2))
    assert built.msg == json.dumps(value, separators=(",", ":"))
    assert (built.msg_type, built.device_type, built.deploy_status) == (1, None, None)


def test_ios_notification_is_device_type_4_in_production_by_default() -> None:
    built = body({"aps": {"alert": "hi", "badge": 1}, "k": "v"})
    assert json.loads(built.msg) == {"aps": {"alert": "hi", "badge": 1}, "k": "v"}
    assert (built.msg_type, built.device_type, built.deploy_status) == (1, 4, 2)


def test_deploy_status_attribute_for_ios() -> None:
    built = body({"aps": {"alert": "hi"}}, attrs(DeployStatus="1"))
    assert built.deploy_status == 1


def test_deploy_status_is_not_sent_for_android() -> None:
    built = body({"description": "D"}, attrs(DeployStatus="1"))
    assert (built.device_type, built.deploy_status) == (None, None)


def test_other_json_defaults_to_pass_through_verbatim() -> None:
    raw = '{"command": "sync",  "n": 1}'
    built = body(raw)
    assert (built.msg, built.msg_type) == (raw, 0)


def test_non_json_body_is_pass_through() -> None:
    assert body("not json {").msg == "not json {"


def test_message_type_attribute_overrides_the_guess() -> None:
    raw = '{"description": "D"}'
    built = body(raw, attrs(MessageType="0"))
    assert (built.msg, built.msg_type) == (raw, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"title": "only"}, "needs a description"),
        ({"description": 5}, "needs a description"),
        ({"aps": "hi"}, "aps of a BAIDU notification must be a JSON object"),
        ([1, 2], "must be a JSON object"),
        ("not json", "must be a JSON object"),
    ],
)
def test_invalid_notifications(value: Any, expected: str) -> None:
    assert expected in reason(value, attrs(MessageType="1"))


@pytest.mark.parametrize(
    ("name", "value"),
    [("MessageType", "2"), ("MessageType", "notification"), ("DeployStatus", "3")],
)
def test_invalid_choice_attributes(name: str, value: str) -> None:
    assert reason({"description": "D"}, attrs(**{name: value})) == (
        f"Invalid {PREFIX}{name}: {value!r} (must be "
        + ("0 or 1" if name == "MessageType" else "1 or 2")
        + ")"
    )


def test_empty_pass_through_is_refused() -> None:
    assert reason("", attrs(MessageType="0")) == "The BAIDU message is empty"


def test_ttl_attribute_sets_msg_expires() -> None:
    built = body({"description": "D"}, attrs(TTL="3600"))
    assert (built.msg_expires, built.expires_at) == (3600, T + 3600)


def test_ttl_above_seven_days_is_clamped() -> None:
    built = body({"description": "D"}, attrs(TTL=str(4 * WEEK)))
    assert (built.msg_expires, built.expires_at) == (WEEK, T + WEEK)


def test_ttl_zero_is_now_or_never() -> None:
    built = body({"description": "D"}, attrs(TTL="0"))
    assert (built.msg_expires, built.expires_at) == (0, None)


@pytest.mark.parametrize("value", ["-1", "1.5", "soon"])
def test_invalid_ttl(value: str) -> None:
    assert "whole seconds" in reason({"description": "D"}, attrs(TTL=value))


def test_message_key_is_accepted_and_not_sent() -> None:
    assert body({"description": "D"}, attrs(MessageKey="k1")) == body({"description": "D"})


def test_binary_attribute_is_refused() -> None:
    name = PREFIX + "MessageKey"
    attributes = {name: MessageAttribute(name, "Binary", b"k")}
    assert reason({"description": "D"}, attributes) == f"{name} must be a String attribute"


def test_equal_inputs_give_equal_notifications() -> None:
    assert body({"description": "D"}) == body({"description": "D"})
