"""What the payload builders of every platform share: the error, SNS's default TTL and the
readers of JSON values and ``AWS.SNS.MOBILE.*`` attributes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pushgate.domain.messages import MessageAttribute

DEFAULT_TTL = 4 * 7 * 24 * 3600  # SNS's default push TTL: 4 weeks = 2419200 s
SEPARATORS = (",", ":")
SECONDS = re.compile(r"\d+")


class PayloadError(Exception):
    """The message can never be delivered to this platform; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def json_object(body: str, key: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError(f"The {key} value is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise PayloadError(f"The {key} value is not a JSON object")
    return parsed


def string_attribute(attributes: Mapping[str, MessageAttribute], name: str) -> str | None:
    attribute = attributes.get(name)
    if attribute is None:
        return None
    if not isinstance(attribute.value, str):
        raise PayloadError(f"{name} must be a String attribute")
    return attribute.value


def ttl_attribute(attributes: Mapping[str, MessageAttribute], name: str) -> int | None:
    """A TTL attribute in whole seconds (0 allowed: now or never), or None when absent."""
    value = string_attribute(attributes, name)
    if value is None:
        return None
    if not SECONDS.fullmatch(value):
        raise PayloadError(f"Invalid {name}: {value!r} (must be whole seconds)")
    return int(value)
