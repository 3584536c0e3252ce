"""The ADM message for a message (sns-api.md 5.1, 5.2, 5.6; providers.md 3.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import PayloadError, build_notification
from pushgate.domain.platforms import Platform
from pushgate.providers.notifications import AdmNotification

T = 1_800_000_000.25  # published_at
WEEK = 604_800
TTL = "AWS.SNS.MOBILE.ADM.TTL"


def ttl(value: str) -> dict[str, MessageAttribute]:
    return {TTL: MessageAttribute(TTL, "String", value)}


def adm(
    message: str,
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> AdmNotification:
    built = build_notification(
        Platform.ADM, message, structure, attributes or {}, published_at=T, bundle_id=None
    )
    assert isinstance(built, AdmNotification)
    return built


def body(value: Any, attributes: dict[str, MessageAttribute] | None = None) -> AdmNotification:
    return adm("ignored", {"default": "d", "ADM": json.dumps(value)}, attributes)


def reason(value: Any, attributes: dict[str, MessageAttribute] | None = None) -> str:
    raw = value if isinstance(value, str) else json.dumps(value)
    with pytest.raises(PayloadError) as exc:
        adm("m", {"default": "d", "ADM": raw}, attributes)
    return exc.value.reason


def test_plain_text_is_wrapped_as_data_default() -> None:
    assert adm('Grüße "✓"') == AdmNotification(
        data={"default": 'Grüße "✓"'},
        consolidation_key=None,
        expires_after=None,
        expires_at=T + WEEK,  # ADM's own default comes before SNS's 4 weeks (sec. 5.6)
    )


def test_default_entry_when_there_is_no_adm_key() -> None:
    assert adm("m", {"default": "fallback", "GCM": "{}"}).data == {"default": "fallback"}


def test_sns_example_body() -> None:
    assert body({"data": {"message": "Your order shipped"}}) == AdmNotification(
        data={"message": "Your order shipped"}, expires_at=T + WEEK
    )


def test_every_field() -> None:
    built = body({"data": {"a": "1"}, "consolidationKey": "sync", "expiresAfter": 3600})
    assert built == AdmNotification(
        data={"a": "1"}, consolidation_key="sync", expires_after=3600, expires_at=T + 3600
    )


def test_empty_data_is_a_sync_ping() -> None:
    assert body({"data": {}}).data == {}


def test_values_that_are_not_strings_become_compact_json() -> None:
    built = body({"data": {"n": 12, "ok": True, "none": None, "obj": {"k": ["ü", 1]}}})
    assert built.data == {"n": "12", "ok": "true", "none": "null", "obj": '{"k":["ü",1]}'}


def test_md5_is_dropped() -> None:
    assert body({"data": {"a": "b"}, "md5": "abc="}) == AdmNotification(
        data={"a": "b"}, expires_at=T + WEEK
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({}, "needs a data object"),
        ({"data": "text"}, "needs a data object"),
        ({"data": ["a"]}, "needs a data object"),
        ({"data": {}, "notification": {"title": "t"}}, "Unsupported ADM field(s): notification"),
        ({"data": {}, "b": 1, "a": 2}, "Unsupported ADM field(s): a, b"),
        ({"data": {}, "consolidationKey": 5}, "consolidationKey must be a string"),
        ({"data": {}, "consolidationKey": "k" * 65}, "longer than 64 characters"),
        ({"data": {}, "expiresAfter": 0}, "Invalid ADM expiresAfter: 0"),
        ({"data": {}, "expiresAfter": 2678401}, "Invalid ADM expiresAfter: 2678401"),
        ({"data": {}, "expiresAfter": "60"}, "Invalid ADM expiresAfter: '60'"),
        ({"data": {}, "expiresAfter": True}, "Invalid ADM expiresAfter: True"),
        ({"data": {}, "expiresAfter": 1.5}, "Invalid ADM expiresAfter: 1.5"),
        ("[]", "The ADM value is not a JSON object"),
        ("nope", "The ADM value is not valid JSON"),
        ('{"data":{"a":"\\ud800"}}', "The ADM payload is not valid Unicode"),
    ],
)
def test_invalid_bodies(value: Any, why: str) -> None:
    assert why in reason(value)


def test_consolidation_key_of_64_characters() -> None:
    assert body({"data": {}, "consolidationKey": "ü" * 64}).consolidation_key == "ü" * 64


def test_ttl_attribute_rewrites_expires_after() -> None:
    built = body({"data": {}, "expiresAfter": 3600}, ttl("60"))
    assert (built.expires_after, built.expires_at) == (60, T + 60)


def test_ttl_attribute_with_text() -> None:
    assert adm("hi", None, ttl("86400")).expires_after == 86400


def test_ttl_attribute_above_adms_maximum_is_clamped() -> None:
    built = adm("hi", None, ttl("99999999"))
    assert (built.expires_after, built.expires_at) == (2678400, T + 2678400)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0", "Invalid AWS.SNS.MOBILE.ADM.TTL: 0 (ADM keeps a message at least 1 second)"),
        ("-5", "Invalid AWS.SNS.MOBILE.ADM.TTL: '-5' (must be whole seconds)"),
        ("1h", "Invalid AWS.SNS.MOBILE.ADM.TTL: '1h' (must be whole seconds)"),
    ],
)
def test_invalid_ttl_attribute(value: str, why: str) -> None:
    with pytest.raises(PayloadError) as exc:
        adm("hi", None, ttl(value))
    assert exc.value.reason == why


def test_data_of_6_kb_is_accepted_and_one_byte_more_refused() -> None:
    overhead = len('{"k":""}')
    assert len(body({"data": {"k": "x" * (6144 - overhead)}}).data["k"]) == 6144 - overhead
    assert reason({"data": {"k": "x" * (6145 - overhead)}}) == (
        "PayloadTooLarge: the ADM data is 6145 bytes, more than the 6144 allowed"
    )


def test_size_counts_utf8_bytes_without_whitespace() -> None:
    overhead = len('{"k":""}')
    too_big = {"data": {"k": "é" * ((6144 - overhead) // 2 + 1)}}
    assert reason(json.dumps(too_big, indent=4)).startswith("PayloadTooLarge")
    fits = {"data": {"k": "é" * ((6144 - overhead) // 2)}}
    assert body(fits).data == fits["data"]
