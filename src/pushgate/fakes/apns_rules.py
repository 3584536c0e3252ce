"""APNs request rules (specs/providers.md sec. 1.3-1.5 and 10.1) and their knobs.

:class:`ApnsRules` holds the path, header and body checks of the APNs fake with the
settings that tune them; the FCM fake applies :func:`header_reason` to
``message.apns.headers``, which FCM relays to APNs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pushgate.fakes.apns_auth import Credential, Reject
from pushgate.fakes.h2server import Request

# apns-push-type -> the suffix its apns-topic carries after the bundle id (sec. 1.4);
# None: the topic is not derived from a bundle id (mdm takes the certificate's UID).
PUSH_TYPE_SUFFIXES: dict[str, str | None] = {
    "alert": "",
    "background": "",
    "location": ".location-query",
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "mdm": None,
    "liveactivity": ".push-type.liveactivity",
    "pushtotalk": ".voip-ptt",
    "widgets": ".push-type.widgets",  # unverified suffix (sec. 9)
}
_SUFFIXES = sorted((s for s in PUSH_TYPE_SUFFIXES.values() if s), key=len, reverse=True)

_DEVICE_PATH = "/3/device/"
TOPIC = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
APNS_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PRIORITIES = frozenset({"10", "5", "1"})
INTERRUPTION_LEVELS = frozenset({"passive", "active", "time-sensitive", "critical"})
MAX_COLLAPSE_ID_BYTES = 64
# An apns-expiration below this (2001-09-09) is a relative TTL sent by mistake (sec. 1.3).
PLAUSIBLE_EXPIRATION = 1_000_000_000


def valid_apns_id(value: str, *, allow_upper_case: bool = False) -> bool:
    return APNS_ID.fullmatch(value.lower() if allow_upper_case else value) is not None


def valid_expiration(value: str) -> bool:
    return value.isascii() and value.isdigit()


def valid_collapse_id(value: str) -> bool:
    return len(value.encode("utf-8", "surrogateescape")) <= MAX_COLLAPSE_ID_BYTES


def header_reason(name: str, value: str) -> str | None:
    """The APNs reason a header value earns on its own, or None when it is fine."""
    if name == "apns-id" and not valid_apns_id(value):
        return "BadMessageId"
    if name == "apns-expiration" and not valid_expiration(value):
        return "BadExpirationDate"
    if name == "apns-priority" and value not in PRIORITIES:
        return "BadPriority"
    if name == "apns-push-type" and value not in PUSH_TYPE_SUFFIXES:
        return "InvalidPushType"
    if name == "apns-collapse-id" and not valid_collapse_id(value):
        return "BadCollapseId"
    return None


def bundle_of(topic: str, push_type: str | None) -> tuple[str, bool]:
    """``(bundle id, whether the topic's suffix fits the push type)`` of an apns-topic.

    Without a push type any known suffix is taken off; ``mdm`` topics are kept whole.
    """
    if push_type is None:
        for known in _SUFFIXES:
            if topic.endswith(known):
                return topic[: -len(known)], True
        return topic, True
    suffix = PUSH_TYPE_SUFFIXES.get(push_type)
    if suffix is None:
        return topic, True
    if suffix:
        if topic.endswith(suffix):
            return topic[: -len(suffix)], True
        return topic, False
    return topic, not any(topic.endswith(other) for other in _SUFFIXES)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _sound_problem(sound: object) -> str | None:
    if isinstance(sound, str):
        return None
    if not isinstance(sound, dict):
        return "aps.sound must be a string or an object"
    if set(sound) - {"critical", "name", "volume"}:
        return "aps.sound has keys other than critical, name and volume"
    volume = sound.get("volume", 0)
    if not _number(volume) or not 0 <= volume <= 1:
        return "aps.sound.volume must be a number in [0, 1]"
    return None


def payload_problem(payload: dict[str, Any], push_type: str | None, *, strict: bool) -> str | None:
    """What is wrong with a parsed payload's ``aps`` dictionary (sec. 1.5), or None."""
    aps = payload.get("aps", {})
    if not isinstance(aps, dict):
        return "aps must be an object"
    alert = aps.get("alert")
    if alert is not None and not isinstance(alert, str | dict):
        return "aps.alert must be a string or an object"
    if "badge" in aps and not _number(aps["badge"]):
        return "aps.badge must be a number"
    if "sound" in aps and (problem := _sound_problem(aps["sound"])) is not None:
        return problem
    level = aps.get("interruption-level")
    if level is not None and level not in INTERRUPTION_LEVELS:
        return "aps.interruption-level must be passive, active, time-sensitive or critical"
    score = aps.get("relevance-score")
    if score is not None and (not _number(score) or not 0 <= score <= 1):
        return "aps.relevance-score must be a number in [0, 1]"
    if strict and push_type == "background":
        available = aps.get("content-available")
        if not _number(available) or available != 1:
            return "a background push needs aps.content-available = 1"
        if {"alert", "badge", "sound"} & set(aps):
            return "a background push carries no alert, badge or sound"
    return None


@dataclass
class ApnsRules:
    """The APNs fake's method, path, header and body checks, with their knobs."""

    token_pattern: re.Pattern[str] = field(
        default_factory=lambda: re.compile(r"(?:[0-9a-fA-F]{2})+")
    )
    token_length: int | None = 64  # hex characters; None: any even length
    strict: bool = True  # background priority and payload rules, JSON syntax
    require_push_type: bool = False
    refuse_token_only_push_types_with_certificates: bool = True
    topic_mismatch_reason: str = "InvalidPushType"  # or "DeviceTokenNotForTopic"
    accept_upper_case_apns_id: bool = False
    max_payload: int = 4096
    max_voip_payload: int = 5120
    malformed_payload_reason: str = "BadPayload"  # Apple documents none (sec. 9)

    def check_path(self, request: Request) -> tuple[str, Reject | None]:
        """The device token in the path, and what is wrong with method or path."""
        if request.method != "POST":
            return "", Reject(405, "MethodNotAllowed", f"method {request.method}")
        path = request.path.partition("?")[0]
        if not path.startswith(_DEVICE_PATH) or "/" in path[len(_DEVICE_PATH) :]:
            return "", Reject(404, "BadPath", f"path {path!r}")
        token = path[len(_DEVICE_PATH) :]
        if not token:
            return token, Reject(400, "MissingDeviceToken", "no device token in the path")
        if not self.token_pattern.fullmatch(token) or (
            self.token_length is not None and len(token) != self.token_length
        ):
            return token, Reject(400, "BadDeviceToken", "malformed device token")
        return token, None

    def check_headers(
        self, request: Request, credential: Credential, warnings: list[str]
    ) -> Reject | None:
        """Header rules, in table order; ``warnings`` gets what is odd but allowed."""
        names = [name for name, _ in request.headers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            return Reject(400, "DuplicateHeaders", f"repeated {', '.join(repeated)}")
        push_type = request.header("apns-push-type")
        if push_type is None and self.require_push_type:
            return Reject(400, "InvalidPushType", "apns-push-type is required")
        if push_type is not None and push_type not in PUSH_TYPE_SUFFIXES:
            return Reject(400, "InvalidPushType", f"unknown push type {push_type!r}")
        if (
            credential.mode == "certificate"
            and push_type in ("location", "liveactivity")
            and self.refuse_token_only_push_types_with_certificates
        ):
            return Reject(400, "InvalidPushType", f"{push_type} needs token auth")
        reject = self.check_topic(request.header("apns-topic"), push_type, credential)
        if reject is not None:
            return reject
        apns_id = request.header("apns-id")
        if apns_id is not None and not valid_apns_id(
            apns_id, allow_upper_case=self.accept_upper_case_apns_id
        ):
            return Reject(400, "BadMessageId", f"apns-id {apns_id!r}")
        expiration = request.header("apns-expiration")
        if expiration is not None:
            if not valid_expiration(expiration):
                return Reject(400, "BadExpirationDate", f"apns-expiration {expiration!r}")
            if 0 < int(expiration) < PLAUSIBLE_EXPIRATION:
                warnings.append("apns-expiration looks like a relative TTL")
        priority = request.header("apns-priority")
        if priority is not None and priority not in PRIORITIES:
            return Reject(400, "BadPriority", f"apns-priority {priority!r}")
        if self.strict and push_type == "background" and priority == "10":
            return Reject(400, "BadPriority", "background pushes use priority 5")
        collapse_id = request.header("apns-collapse-id")
        if collapse_id is not None and not valid_collapse_id(collapse_id):
            return Reject(400, "BadCollapseId", "apns-collapse-id over 64 bytes")
        return None

    def check_topic(
        self, topic: str | None, push_type: str | None, credential: Credential
    ) -> Reject | None:
        """``apns-topic`` against the push type and the topics the credential may use."""
        if topic is None:
            if credential.mode == "token" or credential.multi_topic:
                return Reject(400, "MissingTopic", "apns-topic is required")
            topic = credential.certificate_uid or ""
        if not TOPIC.fullmatch(topic):
            return Reject(400, "BadTopic", f"apns-topic {topic!r}")
        bundle, fits = bundle_of(topic, push_type)
        if not fits:
            reason = self.topic_mismatch_reason
            return Reject(400, reason, f"topic {topic!r} does not fit push type {push_type}")
        allowed = credential.topics
        if allowed is not None and bundle not in allowed and topic not in allowed:
            if credential.topic_specific:
                return Reject(403, "UnrelatedKeyIdInToken", f"key does not cover {bundle}")
            return Reject(400, "TopicDisallowed", f"credential may not push to {bundle}")
        return None

    def check_body(self, request: Request) -> Reject | None:
        """Size, then JSON shape (sec. 1.5)."""
        body = request.body
        if not body:
            return Reject(400, "PayloadEmpty", "empty body")
        voip = request.header("apns-push-type") == "voip"
        limit = self.max_voip_payload if voip else self.max_payload
        if len(body) > limit:
            return Reject(413, "PayloadTooLarge", f"{len(body)} bytes, limit {limit}")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            payload = None
        if not isinstance(payload, dict):
            if self.strict:
                return Reject(400, self.malformed_payload_reason, "body is not a JSON object")
            return None
        problem = payload_problem(payload, request.header("apns-push-type"), strict=self.strict)
        if problem is not None:
            return Reject(400, self.malformed_payload_reason, problem)
        return None
