"""The HMS Push Kit message for a message (providers.md 7.2; sns-api.md 5.2, 5.6 by analogy)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import PayloadError, build_notification
from pushgate.domain.platforms import Platform
from pushgate.providers.notifications import HmsNotification

T = 1_800_000_000.25  # published_at
FIFTEEN_DAYS = 1_296_000
TTL = "AWS.SNS.MOBILE.HMS.TTL"


def ttl(value: str) -> dict[str, MessageAttribute]:
    return {TTL: MessageAttribute(TTL, "String", value)}


def hms(
    message: str,
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> HmsNotification:
    built = build_notification(
        Platform.HMS, message, structure, attributes or {}, published_at=T, bundle_id=None
    )
    assert isinstance(built, HmsNotification)
    return built


def body(value: Any, attributes: dict[str, MessageAttribute] | None = None) -> HmsNotification:
    return hms("ignored", {"default": "d", "HMS": json.dumps(value)}, attributes)


def reason(value: Any, attributes: dict[str, MessageAttribute] | None = None) -> str:
    raw = value if isinstance(value, str) else json.dumps(value)
    with pytest.raises(PayloadError) as exc:
        hms("m", {"default": "d", "HMS": raw}, attributes)
    return exc.value.reason


def test_plain_text_is_a_data_string() -> None:
    assert hms('Grüße "✓"') == HmsNotification(
        message={"data": '{"default":"Grüße \\"✓\\""}'},
        validate_only=False,
        expires_at=T + FIFTEEN_DAYS,  # SNS's 4 weeks capped at HMS's maximum
    )


def test_default_entry_when_there_is_no_hms_key() -> None:
    assert hms("m", {"default": "fb", "GCM": "{}"}).message == {"data": '{"default":"fb"}'}


def test_hms_request_body_without_its_target() -> None:
    message = {
        "notification": {"title": "T", "body": "B"},
        "android": {"urgency": "HIGH", "collapse_key": -1, "ttl": "86400s"},
        "token": ["someone-else"],
    }
    built = body({"validate_only": True, "message": message})
    assert built == HmsNotification(
        message={
            "notification": {"title": "T", "body": "B"},
            "android": {"urgency": "HIGH", "collapse_key": -1, "ttl": "86400s"},
        },
        validate_only=True,
        expires_at=T + 86400,
    )


@pytest.mark.parametrize("target", ["token", "topic", "condition"])
def test_a_bare_message_loses_its_target(target: str) -> None:
    built = body({"data": "x", target: "t"})
    assert (built.message, built.validate_only) == ({"data": "x"}, False)


def test_data_objects_become_json_text() -> None:
    built = body({"data": {"k": "ü", "n": 1}, "android": {"data": ["a"]}})
    assert built.message == {"data": '{"k":"ü","n":1}', "android": {"data": '["a"]'}}


def test_ttl_attribute_rewrites_android_ttl() -> None:
    built = body({"message": {"data": "x", "android": {"ttl": "86400s", "urgency": "NORMAL"}}},
                 ttl("60"))  # fmt: skip
    assert built.message == {"data": "x", "android": {"ttl": "60s", "urgency": "NORMAL"}}
    assert built.expires_at == T + 60


def test_ttl_attribute_with_text_adds_android() -> None:
    built = hms("hi", None, ttl("3600"))
    assert built.message == {"data": '{"default":"hi"}', "android": {"ttl": "3600s"}}
    assert built.expires_at == T + 3600


def test_ttl_attribute_above_the_maximum_is_clamped() -> None:
    assert hms("hi", None, ttl("2419200")).message["android"] == {"ttl": "1296000s"}


def test_fractional_android_ttl() -> None:
    assert body({"android": {"ttl": "1.5s"}}).expires_at == T + 1.5


def test_the_shared_input_is_not_mutated() -> None:
    message: dict[str, Any] = {"android": {"ttl": "5s"}}
    structure = {"HMS": json.dumps(message)}
    first = hms("m", structure, ttl("60"))
    second = hms("m", structure)
    assert first.message["android"]["ttl"] == "60s"
    assert second.message["android"]["ttl"] == "5s"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"message": "x"}, "HMS message must be an object"),
        ({"message": {}, "validate_only": "yes"}, "validate_only must be a boolean"),
        ({"data": 5}, "HMS message.data must be a string"),
        ({"android": {"data": True}}, "HMS message.android.data must be a string"),
        ({"android": []}, "HMS message.android must be an object"),
        ({"android": {"ttl": 60}}, "Invalid HMS android.ttl: 60"),
        ({"android": {"ttl": "60"}}, "Invalid HMS android.ttl: '60'"),
        ({"android": {"ttl": "0s"}}, "Invalid HMS android.ttl: '0s' (must be positive)"),
        ("[]", "The HMS value is not a JSON object"),
        ('{"data":"\\ud800"}', "The HMS payload is not valid Unicode"),
    ],
)
def test_invalid_bodies(value: Any, why: str) -> None:
    assert why in reason(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0", "Invalid AWS.SNS.MOBILE.HMS.TTL: 0 (HMS keeps a message at least 1 second)"),
        ("1.5", "Invalid AWS.SNS.MOBILE.HMS.TTL: '1.5' (must be whole seconds)"),
    ],
)
def test_invalid_ttl_attribute(value: str, why: str) -> None:
    with pytest.raises(PayloadError) as exc:
        hms("hi", None, ttl(value))
    assert exc.value.reason == why


def test_message_of_4096_bytes_is_accepted_and_one_more_refused() -> None:
    overhead = len('{"data":""}')
    assert body({"data": "x" * (4096 - overhead)}).message["data"] == "x" * (4096 - overhead)
    assert reason({"data": "x" * (4097 - overhead)}) == (
        "PayloadTooLarge: the HMS message is 4097 bytes, more than the 4096 allowed"
    )


def test_size_excludes_the_token() -> None:
    overhead = len('{"data":""}')
    value = {"data": "x" * (4096 - overhead), "token": ["t" * 200]}
    assert "token" not in body(value).message
