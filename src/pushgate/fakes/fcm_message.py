"""Validation of an FCM v1 send request body (specs/providers.md sec. 2.3 and 10.2).

Two passes, as Google's front end makes them: the proto3 JSON mapping first (field names
in snake_case or lowerCamelCase, unknown names and wrong JSON types rejected with a
``google.rpc.BadRequest`` detail only), then FCM's own rules on the message (one target,
reserved data keys, TTL range, APNs headers, size...), which also carry an ``FcmError``
``INVALID_ARGUMENT`` detail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.fakes import apns_rules


@dataclass(frozen=True)
class Violation:
    """One rejected field: the answer's message and its BadRequest field violation."""

    field: str | None
    description: str
    fcm_error: bool = False  # an FcmError INVALID_ARGUMENT detail goes with it


class _Invalid(Exception):
    def __init__(self, violation: Violation) -> None:
        self.violation = violation


# Field types of the proto3 JSON mapping


@dataclass(frozen=True)
class Scalar:
    proto: str  # TYPE_STRING, TYPE_BOOL, TYPE_INT32, TYPE_FLOAT


@dataclass(frozen=True)
class WellKnown:
    name: str  # google.protobuf.Duration, .Timestamp, .Struct


@dataclass(frozen=True)
class Enum:
    name: str
    values: frozenset[str]
    any_case: bool = False


@dataclass(frozen=True)
class MapOf:
    name: str
    value: FieldType


@dataclass(frozen=True)
class ListOf:
    item: FieldType


@dataclass(frozen=True)
class Message:
    name: str
    fields: Mapping[str, FieldType]  # snake_case names


FieldType = Scalar | WellKnown | Enum | MapOf | ListOf | Message

_V1 = "google.firebase.fcm.v1."
STRING, BOOL, INT32, FLOAT = (
    Scalar(t) for t in ("TYPE_STRING", "TYPE_BOOL", "TYPE_INT32", "TYPE_FLOAT")
)
DURATION = WellKnown("google.protobuf.Duration")
TIMESTAMP = WellKnown("google.protobuf.Timestamp")
STRUCT = WellKnown("google.protobuf.Struct")


def _strings(entry: str) -> MapOf:
    return MapOf(_V1 + entry, STRING)


def _enum(name: str, *values: str, any_case: bool = False) -> Enum:
    return Enum(_V1 + name, frozenset(values), any_case)


ANDROID_NOTIFICATION = Message(
    _V1 + "AndroidNotification",
    {
        **dict.fromkeys(
            "title body icon color sound tag click_action body_loc_key title_loc_key "
            "channel_id ticker image".split(),
            STRING,
        ),
        **dict.fromkeys(
            "sticky local_only default_sound default_vibrate_timings "
            "default_light_settings".split(),
            BOOL,
        ),
        "body_loc_args": ListOf(STRING),
        "title_loc_args": ListOf(STRING),
        "event_time": TIMESTAMP,
        "notification_priority": _enum(
            "AndroidNotification.NotificationPriority",
            "PRIORITY_UNSPECIFIED",
            "PRIORITY_MIN",
            "PRIORITY_LOW",
            "PRIORITY_DEFAULT",
            "PRIORITY_HIGH",
            "PRIORITY_MAX",
        ),
        "vibrate_timings": ListOf(DURATION),
        "visibility": _enum(
            "AndroidNotification.Visibility",
            "VISIBILITY_UNSPECIFIED",
            "PRIVATE",
            "PUBLIC",
            "SECRET",
        ),
        "notification_count": INT32,
        "light_settings": Message(
            _V1 + "LightSettings",
            {
                "color": Message(
                    "google.type.Color", dict.fromkeys(("red", "green", "blue", "alpha"), FLOAT)
                ),
                "light_on_duration": DURATION,
                "light_off_duration": DURATION,
            },
        ),
        "proxy": _enum(
            "AndroidNotification.Proxy", "PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"
        ),
    },
)
ANDROID = Message(
    _V1 + "AndroidConfig",
    {
        "collapse_key": STRING,
        # firebase-admin sends "normal"/"high" (sec. 2.3)
        "priority": _enum("AndroidMessagePriority", "NORMAL", "HIGH", any_case=True),
        "ttl": DURATION,
        "restricted_package_name": STRING,
        "data": _strings("AndroidConfig.DataEntry"),
        "notification": ANDROID_NOTIFICATION,
        "fcm_options": Message(_V1 + "AndroidFcmOptions", {"analytics_label": STRING}),
        "direct_boot_ok": BOOL,
        "bandwidth_constrained_ok": BOOL,
        "restricted_satellite_ok": BOOL,
    },
)
APNS = Message(
    _V1 + "ApnsConfig",
    {
        "headers": _strings("ApnsConfig.HeadersEntry"),
        "payload": STRUCT,
        "fcm_options": Message(
            _V1 + "ApnsFcmOptions", {"analytics_label": STRING, "image": STRING}
        ),
        "live_activity_token": STRING,
    },
)
WEBPUSH = Message(
    _V1 + "WebpushConfig",
    {
        "headers": _strings("WebpushConfig.HeadersEntry"),
        "data": _strings("WebpushConfig.DataEntry"),
        "notification": STRUCT,
        "fcm_options": Message(
            _V1 + "WebpushFcmOptions", {"link": STRING, "analytics_label": STRING}
        ),
    },
)
MESSAGE = Message(
    _V1 + "Message",
    {
        "name": STRING,
        "data": _strings("Message.DataEntry"),
        "notification": Message(
            _V1 + "Notification", dict.fromkeys(("title", "body", "image"), STRING)
        ),
        "android": ANDROID,
        "webpush": WEBPUSH,
        "apns": APNS,
        "fcm_options": Message(_V1 + "FcmOptions", {"analytics_label": STRING}),
        "token": STRING,
        "topic": STRING,
        "condition": STRING,
    },
)
SEND_REQUEST = Message(_V1 + "SendMessageRequest", {"validate_only": BOOL, "message": MESSAGE})

_DURATION = re.compile(r"-?\d+(?:\.\d{1,9})?s")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")
_CAMEL = re.compile(r"[A-Z]")


def _invalid_value(path: str, type_name: str, value: object) -> _Invalid:
    text = f"Invalid value at '{path}' ({type_name}), {json.dumps(value)}"
    return _Invalid(Violation(path, text))


def _scalar(value: object, kind: Scalar, path: str) -> object:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind.proto == "TYPE_STRING":
        ok = isinstance(value, str)
    elif kind.proto == "TYPE_BOOL":
        ok = isinstance(value, bool)
    elif kind.proto == "TYPE_INT32":  # proto3 JSON takes integers as numbers or strings
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ok = (number and whole) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None
        )
    else:
        ok = number
    if not ok:
        raise _invalid_value(path, kind.proto, value)
    return value


def _well_known(value: object, kind: WellKnown, path: str) -> object:
    type_name = "type.googleapis.com/" + kind.name
    if kind is STRUCT:
        ok = isinstance(value, dict)
    else:
        pattern = _DURATION if kind is DURATION else _TIMESTAMP
        ok = isinstance(value, str) and pattern.fullmatch(value) is not None
    if not ok:
        raise _invalid_value(path, type_name, value)
    return value


def _check(value: object, kind: FieldType, path: str) -> Any:
    if isinstance(kind, Message):
        return _message(value, kind, path)
    if isinstance(kind, MapOf):
        if not isinstance(value, dict):
            raise _invalid_value(path, "type.googleapis.com/" + kind.name, value)
        return {
            key: _check(item, kind.value, f"{path}[{index}].value")
            for index, (key, item) in enumerate(value.items())
        }
    if isinstance(kind, ListOf):
        if not isinstance(value, list):
            raise _invalid_value(path, "TYPE_LIST", value)
        return [_check(item, kind.item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(kind, Enum):
        name = value.upper() if isinstance(value, str) and kind.any_case else value
        if name not in kind.values:
            raise _invalid_value(path, "type.googleapis.com/" + kind.name, value)
        return name
    if isinstance(kind, WellKnown):
        return _well_known(value, kind, path)
    return _scalar(value, kind, path)


def _message(value: object, kind: Message, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid_value(path, "type.googleapis.com/" + kind.name, value)
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = _CAMEL.sub(lambda m: "_" + m.group().lower(), key)
        if name not in kind.fields:
            where = f" at '{path}'" if path else ""
            text = f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'
            raise _Invalid(Violation(path or None, text))
        if item is None:  # proto3 JSON: null is the default value
            continue
        child = f"{path}.{name}" if path else name
        result[name] = _check(item, kind.fields[name], child)
    return result


def parse_request(body: bytes) -> dict[str, Any] | Violation:
    """The request, normalised to snake_case names without nulls, or its first violation."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return Violation(None, "Invalid JSON payload received. Unexpected token.")
    try:
        return _message(value, SEND_REQUEST, "")
    except _Invalid as exc:
        return exc.violation


# FCM's rules on a well-typed message

TOPIC = re.compile(r"[a-zA-Z0-9\-_.~%]+")
ANALYTICS_LABEL = re.compile(r"[a-zA-Z0-9\-_.~%]{1,50}")
COLOR = re.compile(r"#[0-9a-fA-F]{6}")
RESERVED_DATA_KEYS = ("from", "message_type")
RESERVED_DATA_PREFIXES = ("google", "gcm")
MAX_TTL_SECONDS = 2_419_200
MAX_CONDITION_TOPICS = 5
_CONDITION_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))|'(?P<q1>[^']*)'\s+in\s+topics|\"(?P<q2>[^\"]*)\"\s+in\s+topics)"
)


def _rule(field: str, description: str) -> Violation:
    return Violation(field, description, fcm_error=True)


def condition_problem(condition: str) -> str | None:
    """Why a topic condition is malformed (grammar, topic names, at most 5 topics)."""
    tokens: list[str] = []
    position, topics = 0, 0
    while position < len(condition.rstrip()):
        match = _CONDITION_TOKEN.match(condition, position)
        if match is None:
            return f"unexpected text at offset {position}"
        topic = match["q1"] if match["q1"] is not None else match["q2"]
        if topic is not None:
            if not TOPIC.fullmatch(topic):
                return f"invalid topic name {topic!r}"
            topics += 1
            tokens.append("T")
        else:
            tokens.append(match["op"])
        position = match.end()
    if topics > MAX_CONDITION_TOPICS:
        return f"{topics} topics; at most {MAX_CONDITION_TOPICS}"
    return None if _expression(tokens, 0) == len(tokens) else "not a well-formed condition"


def _expression(tokens: list[str], at: int) -> int:
    """Where an ``a && b || !(c)`` expression starting at ``at`` ends; -1 if none does."""
    while True:
        while at < len(tokens) and tokens[at] == "!":
            at += 1
        if at < len(tokens) and tokens[at] == "(":
            at = _expression(tokens, at + 1)
            if at < 0 or at >= len(tokens) or tokens[at] != ")":
                return -1
            at += 1
        elif at < len(tokens) and tokens[at] == "T":
            at += 1
        else:
            return -1
        if at < len(tokens) and tokens[at] in ("&&", "||"):
            at += 1
            continue
        return at


def _duration_seconds(value: str) -> float:
    return float(value[:-1])


def _data_problem(data: Mapping[str, str], field: str) -> Violation | None:
    for key in data:
        if key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES):
            return _rule(field, f"Invalid data payload key: {key}")
    return None


def _android_problem(android: Mapping[str, Any]) -> Violation | None:
    ttl = android.get("ttl")
    if ttl is not None and not 0 <= _duration_seconds(ttl) <= MAX_TTL_SECONDS:
        return _rule("message.android.ttl", f"TTL must be 0 to {MAX_TTL_SECONDS}s: {ttl}")
    notification = android.get("notification", {})
    color = notification.get("color")
    if color is not None and not COLOR.fullmatch(color):
        return _rule("message.android.notification.color", "color must be #rrggbb")
    for kind in ("title", "body"):
        if notification.get(f"{kind}_loc_args") and not notification.get(f"{kind}_loc_key"):
            field = f"message.android.notification.{kind}_loc_args"
            return _rule(field, f"{kind}_loc_args requires {kind}_loc_key")
    return _data_problem(android.get("data", {}), "message.android.data")


def _apns_problem(apns: Mapping[str, Any]) -> Violation | None:
    for index, (name, value) in enumerate(apns.get("headers", {}).items()):
        reason = apns_rules.header_reason(name.lower(), value)
        if reason is not None:
            field = f"message.apns.headers[{index}].value"
            return _rule(field, f"Invalid APNs header {name}: {value!r} ({reason})")
    payload = apns.get("payload")
    if payload is not None and len(json.dumps(payload).encode()) > 4096:
        return _rule("message.apns.payload", "Message is too big")
    return None


def _size(message: Mapping[str, Any]) -> int:
    """Bytes of data and notification keys and values, as FCM counts them (sec. 2.6)."""
    total = 0
    android = message.get("android", {})
    for data in (message.get("data", {}), android.get("data", {})):
        total += sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    for notification in (message.get("notification", {}), android.get("notification", {})):
        for key, value in notification.items():
            if isinstance(value, str):
                total += len(key.encode()) + len(value.encode())
    return total


def message_problem(
    message: Mapping[str, Any], *, max_size: int, max_topic_size: int
) -> Violation | None:
    """The first FCM rule a normalised message breaks, or None."""
    if "name" in message:
        return _rule("message.name", "Output only field name must not be set")
    targets = [t for t in ("token", "topic", "condition") if message.get(t)]
    if len(targets) != 1:
        return _rule("message", "Exactly one of token, topic or condition must be specified")
    topic = message.get("topic")
    if topic is not None and not TOPIC.fullmatch(topic):
        return _rule("message.topic", f"Invalid topic name {topic!r}")
    condition = message.get("condition")
    if condition is not None and (problem := condition_problem(condition)) is not None:
        return _rule("message.condition", f"Invalid condition: {problem}")
    for data, field in (
        (message.get("data", {}), "message.data"),
        (message.get("webpush", {}).get("data", {}), "message.webpush.data"),
    ):
        if (violation := _data_problem(data, field)) is not None:
            return violation
    violation = _android_problem(message.get("android", {})) or _apns_problem(
        message.get("apns", {})
    )
    if violation is not None:
        return violation
    link = message.get("webpush", {}).get("fcm_options", {}).get("link")
    if link is not None and not link.startswith("https://"):
        return _rule("message.webpush.fcm_options.link", "link must be an HTTPS URL")
    for section in ("", "android.", "apns.", "webpush."):
        parent = message
        for part in filter(None, section.rstrip(".").split(".")):
            parent = parent.get(part, {})
        label = parent.get("fcm_options", {}).get("analytics_label")
        if label is not None and not ANALYTICS_LABEL.fullmatch(label):
            field = f"message.{section}fcm_options.analytics_label"
            return _rule(field, "analytics_label must match ^[a-zA-Z0-9-_.~%]{1,50}$")
    limit = max_size if "token" in targets else max_topic_size
    if _size(message) > limit:
        return _rule("message", f"Message is too big: over {limit} bytes")
    return None
