"""Tests for pushgate.domain.payloads: byte-exact payloads for every shaping rule of sec. 5."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads import DEFAULT_TTL, PayloadError, build_notification
from pushgate.domain.platforms import APPLE_PLATFORMS, Platform
from pushgate.providers.notifications import ApnsNotification, FcmNotification

T = 1_800_000_000.25  # published_at
FOUR_WEEKS = 2_419_200
BUNDLE = "com.example.app"


_NAMES = ("PUSH_TYPE", "COLLAPSE_ID", "PRIORITY", "TOPIC", "TTL")


def _mobile(**values: str) -> dict[str, MessageAttribute]:
    """``APNS_SANDBOX_TTL="60"`` → ``{"AWS.SNS.MOBILE.APNS_SANDBOX.TTL": ...}``."""
    out = {}
    for key, value in values.items():
        name = next(n for n in _NAMES if key.endswith("_" + n))
        full = f"AWS.SNS.MOBILE.{key[: -len(name) - 1]}.{name}"
        out[full] = MessageAttribute(full, "String", value)
    return out


def apns(
    message: str,
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
    platform: Platform = Platform.APNS,
    bundle_id: str | None = BUNDLE,
) -> ApnsNotification:
    built = build_notification(
        platform, message, structure, attributes or {}, published_at=T, bundle_id=bundle_id
    )
    assert isinstance(built, ApnsNotification)
    return built


def fcm(
    message: str,
    structure: dict[str, str] | None = None,
    attributes: dict[str, MessageAttribute] | None = None,
) -> FcmNotification:
    built = build_notification(
        Platform.GCM, message, structure, attributes or {}, published_at=T, bundle_id=None
    )
    assert isinstance(built, FcmNotification)
    return built


def gcm(value: dict[str, Any], attributes: dict[str, MessageAttribute] | None = None) -> Any:
    return fcm("ignored", {"default": "d", "GCM": json.dumps(value)}, attributes)


def reason(platform: Platform, structure: dict[str, str] | None, **attributes: str) -> str:
    with pytest.raises(PayloadError) as exc:
        build_notification(
            platform, "m", structure, _mobile(**attributes), published_at=T, bundle_id=BUNDLE
        )
    return exc.value.reason


# --- selection and wrapping (sec. 5.1, 5.2) ------------------------------------------------------


def test_plain_text_for_apns() -> None:
    assert apns("hello") == ApnsNotification(
        payload=b'{"aps":{"alert":"hello"}}',
        push_type="alert",
        priority=None,
        topic=BUNDLE,
        collapse_id=None,
        expiration=1_800_000_000 + FOUR_WEEKS,
        expires_at=T + FOUR_WEEKS,
    )


def test_plain_text_is_utf8_not_escaped() -> None:
    built = apns('Grüße "✓"\n')
    assert built.payload == '{"aps":{"alert":"Grüße \\"✓\\"\\n"}}'.encode()


def test_plain_text_that_looks_like_json_is_still_text() -> None:
    assert apns('{"aps":{}}').payload == b'{"aps":{"alert":"{\\"aps\\":{}}"}}'


@pytest.mark.parametrize("platform", sorted(APPLE_PLATFORMS))
def test_every_apple_platform_wraps_text(platform: Platform) -> None:
    assert apns("hi", platform=platform).payload == b'{"aps":{"alert":"hi"}}'


def test_plain_text_for_fcm() -> None:
    assert fcm("hello") == FcmNotification(
        message={"data": {"default": "hello"}}, validate_only=False, expires_at=T + FOUR_WEEKS
    )


def test_platform_value_is_reencoded_compactly() -> None:
    structure = {
        "default": "fallback",
        "APNS": '{ "aps" : { "alert" : {"title": "T", "body": "Grüße"}, "badge": 3 }, "id": 7 }',
    }
    assert apns("ignored", structure).payload == (
        '{"aps":{"alert":{"title":"T","body":"Grüße"},"badge":3},"id":7}'.encode()
    )


def test_default_entry_when_the_platform_has_none() -> None:
    structure = {"default": "fallback", "GCM": '{"data":{"a":"1"}}', "APNS_SANDBOX": "{}"}
    assert apns("ignored", structure).payload == b'{"aps":{"alert":"fallback"}}'
    assert fcm("ignored", {"default": "fallback", "APNS": "{}"}).message == {
        "data": {"default": "fallback"}
    }


def test_the_exact_platform_key_only() -> None:
    structure = {"default": "d", "APNS": '{"aps":{"alert":"prod"}}'}
    assert apns("m", structure, platform=Platform.APNS_SANDBOX).payload == (
        b'{"aps":{"alert":"d"}}'
    )


def test_no_entry_for_the_platform() -> None:
    assert reason(Platform.APNS, {"GCM": "{}"}) == "No APNS or default entry in the message"


@pytest.mark.parametrize("platform", [Platform.APNS, Platform.GCM])
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("not json", "is not valid JSON"),
        ('"text"', "is not a JSON object"),
        ("[]", "object"),
        ('{"a":' * 100_000, "is not valid JSON"),
    ],
)
def test_platform_value_must_be_a_json_object(platform: Platform, value: str, why: str) -> None:
    assert why in reason(platform, {"default": "d", platform.value: value})


@pytest.mark.parametrize("platform", list(Platform))
def test_every_platform_builds_a_notification_from_text(platform: Platform) -> None:
    built = build_notification(platform, "hello", None, {}, published_at=T, bundle_id="b")
    assert built.expires_at is not None and built.expires_at > T


# --- APNs (sec. 5.4) ---------------------------------------------------------------------------


def _aps(aps: dict[str, Any], **attributes: str) -> ApnsNotification:
    return apns("m", {"default": "d", "APNS": json.dumps({"aps": aps})}, _mobile(**attributes))


@pytest.mark.parametrize(
    ("aps", "push_type", "priority"),
    [
        ({"content-available": 1}, "background", 5),
        ({"content-available": True}, "background", 5),
        ({"content-available": 1, "thread-id": "t", "category": "c"}, "background", 5),
        ({"content-available": 1, "alert": "a"}, "alert", None),
        ({"content-available": 1, "badge": 0}, "alert", None),
        ({"content-available": 1, "sound": "default"}, "alert", None),
        ({"content-available": 0}, "alert", None),
        ({"content-available": "1"}, "alert", None),
        ({"content-available": 1.0}, "alert", None),
        ({"content-available": 2}, "alert", None),
        ({}, "alert", None),
        ({"badge": 1}, "alert", None),
    ],
)
def test_push_type_inference(aps: dict[str, Any], push_type: str, priority: int | None) -> None:
    built = _aps(aps)
    assert (built.push_type, built.priority, built.topic) == (push_type, priority, BUNDLE)


def test_no_aps_at_all_is_alert() -> None:
    assert apns("m", {"APNS": '{"custom":1}'}).push_type == "alert"
    assert apns("m", {"APNS": '{"aps":"x"}'}).push_type == "alert"


def test_push_type_attribute_wins() -> None:
    built = _aps({"content-available": 1}, APNS_PUSH_TYPE="alert")
    assert (built.push_type, built.priority) == ("alert", None)
    built = _aps({"alert": "x"}, APNS_PUSH_TYPE="background")
    assert (built.push_type, built.priority) == ("background", 5)


@pytest.mark.parametrize(
    ("push_type", "topic"),
    [
        ("alert", BUNDLE),
        ("background", BUNDLE),
        ("voip", BUNDLE + ".voip"),
        ("complication", BUNDLE + ".complication"),
        ("fileprovider", BUNDLE + ".pushkit.fileprovider"),
        ("location", BUNDLE + ".location-query"),
        ("liveactivity", BUNDLE + ".push-type.liveactivity"),
        ("pushtotalk", BUNDLE + ".voip-ptt"),
        ("widgets", BUNDLE + ".push-type.widgets"),
        ("mdm", BUNDLE),
    ],
)
def test_topic_suffix_per_push_type(push_type: str, topic: str) -> None:
    assert _aps({"alert": "x"}, APNS_PUSH_TYPE=push_type).topic == topic


def test_topic_attribute_is_taken_as_given() -> None:
    built = _aps({"alert": "x"}, APNS_TOPIC="com.other.app", APNS_PUSH_TYPE="voip")
    assert built.topic == "com.other.app"


def test_no_bundle_id_leaves_the_topic_to_the_client() -> None:
    assert apns("m", bundle_id=None).topic is None
    assert apns("m", platform=Platform.APNS_VOIP, bundle_id=None).topic is None


@pytest.mark.parametrize("platform", [Platform.APNS_VOIP, Platform.APNS_VOIP_SANDBOX])
def test_voip_platforms(platform: Platform) -> None:
    built = apns("ring", platform=platform)
    assert (built.push_type, built.topic, built.payload) == (
        "voip",
        BUNDLE + ".voip",
        b'{"aps":{"alert":"ring"}}',
    )
    assert apns("m", platform=platform, bundle_id=BUNDLE + ".voip").topic == BUNDLE + ".voip"


def test_priority_and_collapse_id() -> None:
    built = _aps({"alert": "x"}, APNS_PRIORITY="5", APNS_COLLAPSE_ID="score")
    assert (built.priority, built.collapse_id) == (5, "score")
    assert _aps({"content-available": 1}, APNS_PRIORITY="10").priority == 10
    assert _aps({"alert": "x"}, APNS_COLLAPSE_ID="é" * 32).collapse_id == "é" * 32


@pytest.mark.parametrize("value", ["high", "7", "", "05x", "-5"])
def test_invalid_priority(value: str) -> None:
    assert reason(Platform.APNS, None, APNS_PRIORITY=value) == (
        f"Invalid AWS.SNS.MOBILE.APNS.PRIORITY: {value!r} (must be 1, 5 or 10)"
    )


def test_collapse_id_over_64_bytes() -> None:
    assert reason(Platform.APNS, None, APNS_COLLAPSE_ID="é" * 33) == (
        "AWS.SNS.MOBILE.APNS.COLLAPSE_ID is longer than 64 bytes"
    )


@pytest.mark.parametrize(
    ("platform", "attribute"),
    [
        (Platform.APNS, "APNS_TTL"),
        (Platform.APNS_SANDBOX, "APNS_SANDBOX_TTL"),
        (Platform.APNS_VOIP, "APNS_VOIP_TTL"),
        (Platform.APNS_VOIP_SANDBOX, "APNS_VOIP_SANDBOX_TTL"),
        (Platform.MACOS, "MACOS_TTL"),
        (Platform.MACOS_SANDBOX, "MACOS_SANDBOX_TTL"),
    ],
)
def test_ttl_attribute_of_the_platform(platform: Platform, attribute: str) -> None:
    built = apns("m", attributes=_mobile(**{attribute: "60"}), platform=platform)
    assert (built.expiration, built.expires_at) == (1_800_000_060, T + 60)
    other = "APNS_TTL" if platform is not Platform.APNS else "APNS_SANDBOX_TTL"
    built = apns("m", attributes=_mobile(**{other: "60"}), platform=platform)
    assert (built.expiration, built.expires_at) == (1_800_000_000 + FOUR_WEEKS, T + FOUR_WEEKS)


def test_ttl_zero_is_now_or_never() -> None:
    built = apns("m", attributes=_mobile(APNS_TTL="0"))
    assert (built.expiration, built.expires_at) == (0, None)


@pytest.mark.parametrize("value", ["-1", "1.5", "", "1h", " 60"])
def test_invalid_ttl(value: str) -> None:
    assert reason(Platform.APNS, None, APNS_TTL=value) == (
        f"Invalid AWS.SNS.MOBILE.APNS.TTL: {value!r} (must be whole seconds)"
    )


def test_binary_reserved_attribute_is_refused() -> None:
    attributes = {"AWS.SNS.MOBILE.APNS.TTL": MessageAttribute("x", "Binary", b"60")}
    with pytest.raises(PayloadError, match="must be a String attribute"):
        build_notification(Platform.APNS, "m", None, attributes, published_at=T, bundle_id=None)


def test_number_attribute_is_accepted() -> None:
    attributes = {"AWS.SNS.MOBILE.APNS.TTL": MessageAttribute("x", "Number", "60")}
    assert apns("m", attributes=attributes).expiration == 1_800_000_060


_OVERHEAD = len(b'{"aps":{"alert":""}}')


def test_apns_payload_limit() -> None:
    assert len(apns("x" * (4096 - _OVERHEAD)).payload) == 4096
    assert reason(Platform.APNS, {"default": "x" * (4097 - _OVERHEAD)}) == (
        "PayloadTooLarge: the APNS payload is 4097 bytes, more than the 4096 allowed"
    )
    # Bytes, not characters: 2 bytes each.
    with pytest.raises(PayloadError, match="4098 bytes"):
        apns("é" * ((4098 - _OVERHEAD) // 2))


def test_voip_payload_limit() -> None:
    assert len(apns("x" * (5120 - _OVERHEAD), platform=Platform.APNS_VOIP).payload) == 5120
    with pytest.raises(PayloadError, match="5121 bytes, more than the 5120 allowed"):
        apns("x" * (5121 - _OVERHEAD), platform=Platform.APNS_VOIP)
    big = _mobile(APNS_PUSH_TYPE="voip")
    assert len(apns("x" * (5120 - _OVERHEAD), attributes=big).payload) == 5120


def test_lone_surrogate_is_a_payload_error() -> None:
    assert reason(Platform.APNS, {"APNS": '{"aps":{"alert":"\\ud800"}}'}) == (
        "The APNS payload is not valid Unicode"
    )


@given(st.text())
def test_any_text_wraps_and_decodes_back(text: str) -> None:
    try:
        built = apns(text)
    except PayloadError:
        assert len(json.dumps(text, ensure_ascii=False).encode()) + _OVERHEAD - 2 > 4096
    else:
        assert json.loads(built.payload) == {"aps": {"alert": text}}
        assert built.payload == json.dumps(
            {"aps": {"alert": text}}, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    assert fcm(text).message == {"data": {"default": text}}


# --- FCM (sec. 5.3) ------------------------------------------------------------------------------


def test_fcm_v1_message_is_passed_through() -> None:
    v1 = {
        "notification": {"title": "Order", "body": "Shipped"},
        "data": {"orderId": "42"},
        "android": {"priority": "HIGH", "notification": {"channel_id": "c"}},
        "apns": {"headers": {"apns-priority": "5"}, "payload": {"aps": {"badge": 1}}},
        "webpush": {"headers": {"TTL": "60"}},
        "fcm_options": {"analytics_label": "x"},
    }
    built = gcm({"fcmV1Message": {"message": v1}})
    assert built == FcmNotification(message=v1, validate_only=False, expires_at=T + FOUR_WEEKS)


def test_fcm_v1_targets_are_dropped_and_validate_only_kept() -> None:
    v1 = {"token": "t", "topic": "x", "condition": "c", "name": "n", "data": {"a": "b"}}
    built = gcm({"fcmV1Message": {"message": v1, "validate_only": True}, "priority": "high"})
    assert (built.message, built.validate_only) == ({"data": {"a": "b"}}, True)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"fcmV1Message": "x"}, "fcmV1Message must be an object holding a message object"),
        ({"fcmV1Message": {}}, "fcmV1Message must be an object holding a message object"),
        ({"fcmV1Message": {"message": []}}, "fcmV1Message must be an object holding"),
        ({"fcmV1Message": {"message": {}, "validate_only": "yes"}}, "validate_only must be a"),
        ({"fcmV1Message": {"message": {"android": []}}, "x": 1}, None),
    ],
)
def test_bad_fcm_v1_shapes(value: dict[str, Any], why: str | None) -> None:
    if why is None:  # android not an object is only a problem when a TTL must go there
        assert gcm(value).message == {"android": []}
        with pytest.raises(PayloadError, match=r"message\.android must be an object"):
            gcm(value, _mobile(FCM_TTL="60"))
        return
    with pytest.raises(PayloadError) as exc:
        gcm(value)
    assert why in exc.value.reason


def test_legacy_shape_is_translated() -> None:
    legacy = {
        "notification": {
            "title": "T",
            "body": "B",
            "image": "https://i",
            "icon": "ic",
            "color": "#ff0000",
            "sound": "default",
            "tag": "t",
            "click_action": "OPEN",
            "body_loc_key": "bk",
            "body_loc_args": ["1"],
            "title_loc_key": "tk",
            "title_loc_args": ["2"],
            "android_channel_id": "ch",
            "badge": 3,
            "subtitle": "dropped",
        },
        "data": {"s": "v", "n": 12, "f": 1.5, "b": True, "z": None, "o": {"k": [1, "é"]}},
        "time_to_live": 3600,
        "collapse_key": "ck",
        "priority": "high",
        "restricted_package_name": "com.example",
        "direct_boot_ok": True,
        "content_available": True,
        "mutable_content": True,
        "dry_run": True,
        "to": "token",
        "registration_ids": ["a"],
        "condition": "'a' in topics",
        "unknown": 1,
    }
    built = gcm(legacy)
    assert built == FcmNotification(
        message={
            "notification": {"title": "T", "body": "B", "image": "https://i"},
            "android": {
                "notification": {
                    "icon": "ic",
                    "color": "#ff0000",
                    "sound": "default",
                    "tag": "t",
                    "click_action": "OPEN",
                    "body_loc_key": "bk",
                    "body_loc_args": ["1"],
                    "title_loc_key": "tk",
                    "title_loc_args": ["2"],
                    "channel_id": "ch",
                },
                "ttl": "3600s",
                "collapse_key": "ck",
                "priority": "HIGH",
                "restricted_package_name": "com.example",
                "direct_boot_ok": True,
            },
            "apns": {
                "payload": {
                    "aps": {
                        "sound": "default",
                        "badge": 3,
                        "content-available": 1,
                        "mutable-content": 1,
                    }
                }
            },
            "data": {
                "s": "v",
                "n": "12",
                "f": "1.5",
                "b": "true",
                "z": "null",
                "o": '{"k":[1,"é"]}',
            },
        },
        validate_only=True,
        expires_at=T + 3600,
    )


def test_minimal_legacy_shapes() -> None:
    assert gcm({"data": {"a": "b"}}).message == {"data": {"a": "b"}}
    assert gcm({"notification": {"title": "t"}}).message == {"notification": {"title": "t"}}
    assert gcm({}).message == {}
    assert gcm({"content_available": False, "dry_run": False}).validate_only is False


@pytest.mark.parametrize(
    ("priority", "expected"),
    [("normal", "NORMAL"), ("HIGH", "HIGH"), ("High", "HIGH"), (10, "HIGH"), ("5", "NORMAL")],
)
def test_legacy_priority(priority: object, expected: str) -> None:
    assert gcm({"priority": priority}).message == {"android": {"priority": expected}}


@pytest.mark.parametrize(
    ("legacy", "why"),
    [
        ({"priority": "urgent"}, "Invalid GCM priority: 'urgent'"),
        ({"priority": 1}, "Invalid GCM priority: 1"),
        ({"time_to_live": "60"}, "Invalid GCM time_to_live: '60'"),
        ({"time_to_live": -1}, "Invalid GCM time_to_live: -1"),
        ({"time_to_live": True}, "Invalid GCM time_to_live: True"),
        ({"data": ["a"]}, "GCM data must be an object"),
        ({"notification": "x"}, "GCM notification must be an object"),
    ],
)
def test_bad_legacy_values(legacy: dict[str, Any], why: str) -> None:
    with pytest.raises(PayloadError) as exc:
        gcm(legacy)
    assert exc.value.reason == why


def test_fcm_ttl_attribute_rewrites_the_body() -> None:
    built = gcm({"time_to_live": 3600, "data": {"a": "b"}}, _mobile(FCM_TTL="60"))
    assert built.message == {"data": {"a": "b"}, "android": {"ttl": "60s"}}
    assert built.expires_at == T + 60
    v1 = {"fcmV1Message": {"message": {"android": {"ttl": "3600s", "priority": "HIGH"}}}}
    built = gcm(v1, _mobile(GCM_TTL="120"))
    assert built.message == {"android": {"ttl": "120s", "priority": "HIGH"}}
    assert built.expires_at == T + 120


def test_fcm_ttl_beats_gcm_ttl() -> None:
    built = fcm("hi", attributes=_mobile(GCM_TTL="120", FCM_TTL="60"))
    assert built.message == {"data": {"default": "hi"}, "android": {"ttl": "60s"}}


def test_fcm_ttl_attribute_on_plain_text() -> None:
    built = fcm("hi", attributes=_mobile(FCM_TTL="0"))
    assert built == FcmNotification(
        message={"data": {"default": "hi"}, "android": {"ttl": "0s"}}, expires_at=None
    )


def test_fcm_ignores_apns_ttl() -> None:
    assert fcm("hi", attributes=_mobile(APNS_TTL="60")).expires_at == T + FOUR_WEEKS


@pytest.mark.parametrize(
    ("ttl", "expires_at"),
    [("3600s", T + 3600), ("3.5s", T + 3.5), ("0s", None), ("0.000000001s", T + 1e-9)],
)
def test_fcm_body_ttl(ttl: str, expires_at: float | None) -> None:
    built = gcm({"fcmV1Message": {"message": {"android": {"ttl": ttl}}}})
    assert built.expires_at == expires_at
    assert built.message == {"android": {"ttl": ttl}}


@pytest.mark.parametrize("ttl", ["3600", 3600, "1h", "-1s", "1.s"])
def test_fcm_invalid_body_ttl(ttl: object) -> None:
    with pytest.raises(PayloadError, match=r"Invalid GCM android\.ttl"):
        gcm({"fcmV1Message": {"message": {"android": {"ttl": ttl}}}})


def test_invalid_fcm_ttl_attribute() -> None:
    assert reason(Platform.GCM, None, FCM_TTL="1.5") == (
        "Invalid AWS.SNS.MOBILE.FCM.TTL: '1.5' (must be whole seconds)"
    )


# --- caching --------------------------------------------------------------------------------------


def test_equal_inputs_give_equal_objects_and_inputs_stay_untouched() -> None:
    structure = {
        "default": "d",
        "APNS": '{"aps":{"alert":"a"}}',
        "GCM": '{"fcmV1Message":{"message":{"token":"t","data":{"a":"b"}}}}',
    }
    attributes = _mobile(FCM_TTL="60", APNS_TTL="60")
    snapshot = (dict(structure), dict(attributes))
    for platform in (Platform.APNS, Platform.GCM):
        first = build_notification(
            platform, "m", structure, attributes, published_at=T, bundle_id=BUNDLE
        )
        second = build_notification(
            platform, "m", structure, attributes, published_at=T, bundle_id=BUNDLE
        )
        assert first == second
        assert first is not second
    assert (structure, attributes) == snapshot


def test_default_ttl_constant() -> None:
    assert DEFAULT_TTL == FOUR_WEEKS
