"""The HTTP/S delivery policy of SNS: its validation, its effective value, its retry schedule.

SNS retries a failed HTTP/S delivery in four phases (AWS, "Amazon SNS message delivery
retries", https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html,
section "Creating an HTTP/S delivery policy"):

1. immediate: ``numNoDelayRetries`` retries without delay;
2. pre-backoff: ``numMinDelayRetries`` retries ``minDelayTarget`` apart;
3. backoff: the remaining retries, from ``minDelayTarget`` (the first) to ``maxDelayTarget``
   (the last) along ``backoffFunction``;
4. post-backoff: ``numMaxDelayRetries`` retries ``maxDelayTarget`` apart.

``numRetries`` counts the retries of all four phases, so a delivery is attempted at most
``1 + numRetries`` times. Limits, from the same page: ``numRetries`` 0..100, ``minDelayTarget``
1..``maxDelayTarget``, ``maxDelayTarget`` ..3600, phase counts >= 0, ``maxReceivesPerSecond``
>= 1, and "the total policy retry time for an HTTP/S endpoint cannot be greater than 3,600
seconds". The JSON shapes are those of "SetTopicAttributes delivery policy JSON format"
(https://docs.aws.amazon.com/sns/latest/dg/set-topic-attributes-delivery-policy-json.html) and
its SetSubscriptionAttributes twin, which also list the ``headerContentType`` values
(``text/plain | application/json | application/xml``).

Error texts are those AWS was seen answering where known ("...numRetries must be less than
or equal to 100", "...minDelayTarget must be greater than or equal to 1", "...: Total policy
retry time cannot be greater than 3600 seconds", "Unexpected JSON member: ..."); the others
follow their pattern. The module is pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pushgate.domain.errors import InvalidParameter

MAX_RETRIES = 100
MAX_DELAY_SECONDS = 3600
MAX_TOTAL_RETRY_SECONDS = 3600
DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"
SET_PREFIX = "Invalid parameter: "  # SetTopicAttributes / SetSubscriptionAttributes
ATTRIBUTES_PREFIX = "Invalid parameter: Attributes Reason: "  # CreateTopic / Subscribe
_CONTENT_TYPE = re.compile(
    r"\s*(?:text/plain|application/json|application/xml)\s*"
    r"(?:;\s*charset\s*=\s*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|\"[^\"]+\")\s*)?",
    re.IGNORECASE,
)
_INTEGER_TEXT = re.compile(r"-?[0-9]+")


class Backoff(StrEnum):
    LINEAR = "linear"
    ARITHMETIC = "arithmetic"
    GEOMETRIC = "geometric"
    EXPONENTIAL = "exponential"


@dataclass(frozen=True)
class RetryPolicy:
    """A ``healthyRetryPolicy``; the defaults are SNS's (3 retries, 20 s apart).

    Within the backoff phase of ``n`` retries, retry ``k`` (1..n) sits at ``t = (k-1)/(n-1)``
    and waits ``min`` at ``t = 0`` and ``max`` at ``t = 1``; with a single backoff retry it
    waits ``min``. AWS only draws the four curves (the backoff graph of the page above), all
    rising from ``min`` to ``max``; pushgate's choice of formulas, all non-decreasing:

    * ``linear``: ``min + (max - min) * t``, a constant step (AWS's example: 20..40 s over
      3 retries waits 20, 30 and 40 s);
    * ``arithmetic``: ``min + (max - min) * t**2``, steps that grow by a constant amount;
    * ``geometric``: ``min * (max / min) ** t``, a constant ratio between two retries;
    * ``exponential``: ``min + (max - min) * (2**(k-1) - 1) / (2**(n-1) - 1)``, steps that
      double, so the delay stays near ``min`` and climbs to ``max`` at the end.

    With ``min == max`` all four wait ``min``.
    """

    min_delay: int = 20
    max_delay: int = 20
    num_retries: int = 3
    num_no_delay_retries: int = 0
    num_min_delay_retries: int = 0
    num_max_delay_retries: int = 0
    backoff: Backoff = Backoff.LINEAR

    @property
    def max_attempts(self) -> int:
        """The first attempt and every retry."""
        return 1 + self.num_retries

    @property
    def num_backoff_retries(self) -> int:
        """SNS's formula: numRetries minus the three other phase counts."""
        return (
            self.num_retries
            - self.num_no_delay_retries
            - self.num_min_delay_retries
            - self.num_max_delay_retries
        )

    def delay_before(
        self, retry: int, jitter: float = 0.0, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry`` (1-based: retry 1 follows the first
        attempt).

        ``jitter`` (0..1) shortens the delay by a random share of at most ``jitter``: the
        result is uniform in ``[d * (1 - jitter), d]``. SNS jitters its retries too (same
        page, note on the AWS Architecture Blog's "Exponential Backoff and Jitter"); jitter
        only ever shortens, so a jittered schedule still fits the 3600 s budget. ``rng``
        defaults to the ``random`` module.
        """
        if not 1 <= retry <= self.num_retries:
            raise ValueError(f"retry {retry} is not in 1..{self.num_retries}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter {jitter} is not in 0..1")
        delay = self._nominal(retry)
        if jitter and delay:
            draw = rng.random() if rng is not None else random.random()
            delay *= 1.0 - jitter * draw
        return delay

    def next_delay(
        self, attempts: int, jitter: float = 0.0, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait after ``attempts`` failed attempts, or None when none is left."""
        if attempts < 1:
            raise ValueError(f"attempts {attempts} is not at least 1")
        if attempts > self.num_retries:
            return None
        return self.delay_before(attempts, jitter, rng)

    def schedule(self) -> tuple[float, ...]:
        """The delays before retries 1..numRetries, without jitter."""
        return tuple(self._nominal(retry) for retry in range(1, self.num_retries + 1))

    @property
    def total_delay(self) -> float:
        """What SNS calls the total policy retry time: the sum of the delays."""
        return sum(self.schedule())

    def to_json(self) -> dict[str, Any]:
        """The policy as SNS shows it, in SNS's key order."""
        return {
            "minDelayTarget": self.min_delay,
            "maxDelayTarget": self.max_delay,
            "numRetries": self.num_retries,
            "numMaxDelayRetries": self.num_max_delay_retries,
            "numNoDelayRetries": self.num_no_delay_retries,
            "numMinDelayRetries": self.num_min_delay_retries,
            "backoffFunction": self.backoff.value,
        }

    def _nominal(self, retry: int) -> float:
        if retry <= self.num_no_delay_retries:
            return 0.0
        step = retry - self.num_no_delay_retries
        if step <= self.num_min_delay_retries:
            return float(self.min_delay)
        step -= self.num_min_delay_retries
        if step > self.num_backoff_retries:
            return float(self.max_delay)
        return self._backoff_delay(step, self.num_backoff_retries)

    def _backoff_delay(self, k: int, n: int) -> float:
        low, high = float(self.min_delay), float(self.max_delay)
        if k == 1 or low == high:
            return low
        if k == n:
            return high
        t = (k - 1) / (n - 1)
        match self.backoff:
            case Backoff.LINEAR:
                delay = low + (high - low) * t
            case Backoff.ARITHMETIC:
                delay = low + (high - low) * t * t
            case Backoff.GEOMETRIC:
                delay = low * (high / low) ** t
            case Backoff.EXPONENTIAL:
                delay = low + (high - low) * (2.0 ** (k - 1) - 1) / (2.0 ** (n - 1) - 1)
        return min(high, max(low, delay))


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class HttpDeliveryPolicy:
    """What a worker needs to deliver to one HTTP/S subscription."""

    retry: RetryPolicy = DEFAULT_RETRY
    max_receives_per_second: float | None = None  # None: no throttling
    content_type: str = DEFAULT_CONTENT_TYPE


class _Invalid(Exception):
    """A reason a policy is refused; the public functions add the SNS prefix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Sections:
    """The sections one policy document sets; None where it leaves SNS's default."""

    retry: RetryPolicy | None = None
    max_receives: int | float | None = None
    content_type: str | None = None
    disable_overrides: bool = False  # topic documents only
    sickly: Any = None  # subscription documents only, echoed
    guaranteed: bool = False  # subscription documents only, echoed


def _load(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise _Invalid("failed to parse JSON.") from None
    if not isinstance(value, dict):
        raise _Invalid("failed to parse JSON.")
    return value


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
    """A JSON object with only ``allowed`` keys, or None for an absent (null) section."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(f"{path} must be a JSON object")
    for key in value:
        if key not in allowed:
            raise _Invalid(f"Unexpected JSON member: {_member(path, key)}")
    return value


def _integer(value: Any, path: str) -> int:
    """An integer; integral floats and digit strings pass, as lenient JSON readers let them."""
    if isinstance(value, bool):
        raise _Invalid(f"{path} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value)
    raise _Invalid(f"{path} must be an integer")


def _boolean(value: Any, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Invalid(f"{path} must be a boolean")
    return value


# JSON name -> (RetryPolicy field, lowest value, highest value), in SNS's order.
_RETRY_FIELDS: dict[str, tuple[str, int | None, int | None]] = {
    "minDelayTarget": ("min_delay", 1, None),
    "maxDelayTarget": ("max_delay", None, MAX_DELAY_SECONDS),
    "numRetries": ("num_retries", 0, MAX_RETRIES),
    "numMaxDelayRetries": ("num_max_delay_retries", 0, None),
    "numNoDelayRetries": ("num_no_delay_retries", 0, None),
    "numMinDelayRetries": ("num_min_delay_retries", 0, None),
}
_RETRY_KEYS = (*_RETRY_FIELDS, "backoffFunction")


def _retry(value: Any, path: str) -> RetryPolicy | None:
    """A retry policy; a field it leaves out takes SNS's default, not the topic's."""
    section = _object(value, path, _RETRY_KEYS)
    if section is None:
        return None
    fields: dict[str, Any] = {}
    for key, (name, low, high) in _RETRY_FIELDS.items():
        if section.get(key) is None:
            continue
        number = _integer(section[key], f"{path}.{key}")
        if low is not None and number < low:
            raise _Invalid(f"{path}.{key} must be greater than or equal to {low}")
        if high is not None and number > high:
            raise _Invalid(f"{path}.{key} must be less than or equal to {high}")
        fields[name] = number
    backoff = section.get("backoffFunction")
    if backoff is not None:
        # Any case: the AWS CDK sends its enum values (``EXPONENTIAL``) as they are.
        if not isinstance(backoff, str) or backoff.lower() not in tuple(Backoff):
            choices = ", ".join(b.value for b in Backoff)
            raise _Invalid(f"{path}.backoffFunction must be one of {choices}")
        fields["backoff"] = Backoff(backoff.lower())
    policy = RetryPolicy(**fields)
    if policy.max_delay < policy.min_delay:
        raise _Invalid(f"{path}.maxDelayTarget must be greater than or equal to minDelayTarget")
    if policy.num_backoff_retries < 0:
        raise _Invalid(
            f"{path}: numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries must be "
            "less than or equal to numRetries"
        )
    if policy.total_delay > MAX_TOTAL_RETRY_SECONDS + 1e-9:
        raise _Invalid(
            f"{path}: Total policy retry time cannot be greater than "
            f"{MAX_TOTAL_RETRY_SECONDS} seconds"
        )
    return policy


def _throttle(value: Any, path: str) -> int | float | None:
    section = _object(value, path, ("maxReceivesPerSecond",))
    if section is None or section.get("maxReceivesPerSecond") is None:
        return None
    rate = section["maxReceivesPerSecond"]
    key = f"{path}.maxReceivesPerSecond"
    if isinstance(rate, str) and _INTEGER_TEXT.fullmatch(rate.strip()):
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise _Invalid(f"{key} must be a number")
    if rate < 1:
        raise _Invalid(f"{key} must be greater than or equal to 1")
    return int(rate) if float(rate).is_integer() else rate


def _content_type(value: Any, path: str) -> str | None:
    section = _object(value, path, ("headerContentType",))
    if section is None or section.get("headerContentType") is None:
        return None
    content_type = section["headerContentType"]
    if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type):
        raise _Invalid(
            f"{path}.headerContentType must be text/plain, application/json or "
            "application/xml, with an optional charset"
        )
    return content_type


_TOPIC_HTTP_KEYS = (
    "defaultHealthyRetryPolicy",
    "disableSubscriptionOverrides",
    "defaultThrottlePolicy",
    "defaultRequestPolicy",
)
_SUBSCRIPTION_KEYS = (
    "healthyRetryPolicy",
    "sicklyRetryPolicy",
    "throttlePolicy",
    "requestPolicy",
    "guaranteed",
)


def _parse_topic(text: str | None) -> _Sections:
    if not text:
        return _Sections()
    http = _object(_load(text), "", ("http",))
    section = _object(http.get("http") if http else None, "http", _TOPIC_HTTP_KEYS)
    if section is None:
        return _Sections()
    return _Sections(
        retry=_retry(section.get("defaultHealthyRetryPolicy"), "http.defaultHealthyRetryPolicy"),
        max_receives=_throttle(section.get("defaultThrottlePolicy"), "http.defaultThrottlePolicy"),
        content_type=_content_type(
            section.get("defaultRequestPolicy"), "http.defaultRequestPolicy"
        ),
        disable_overrides=_boolean(
            section.get("disableSubscriptionOverrides"), "http.disableSubscriptionOverrides"
        ),
    )


def _parse_subscription(text: str | None) -> _Sections:
    if not text:
        return _Sections()
    section = _object(_load(text), "", _SUBSCRIPTION_KEYS) or {}
    sickly = section.get("sicklyRetryPolicy")
    if sickly is not None and not isinstance(sickly, dict):
        raise _Invalid("sicklyRetryPolicy must be a JSON object")
    return _Sections(
        retry=_retry(section.get("healthyRetryPolicy"), "healthyRetryPolicy"),
        max_receives=_throttle(section.get("throttlePolicy"), "throttlePolicy"),
        content_type=_content_type(section.get("requestPolicy"), "requestPolicy"),
        sickly=sickly,
        guaranteed=_boolean(section.get("guaranteed"), "guaranteed"),
    )


def _validate(parse: Callable[[str | None], _Sections], json_text: str, prefix: str) -> None:
    try:
        parse(json_text)
    except _Invalid as exc:
        raise InvalidParameter(f"{prefix}DeliveryPolicy: {exc.reason}") from None


def validate_topic_policy(json_text: str, prefix: str = SET_PREFIX) -> None:
    """Refuse a topic ``DeliveryPolicy`` SNS would refuse; ``""`` (unset) is fine.

    ``prefix`` is ``SET_PREFIX`` for SetTopicAttributes and ``ATTRIBUTES_PREFIX`` for
    CreateTopic's Attributes map.
    """
    _validate(_parse_topic, json_text, prefix)


def validate_subscription_policy(json_text: str, prefix: str = SET_PREFIX) -> None:
    """Refuse a subscription ``DeliveryPolicy`` SNS would refuse; ``""`` (unset) is fine.

    ``prefix`` is ``SET_PREFIX`` for SetSubscriptionAttributes and ``ATTRIBUTES_PREFIX``
    for Subscribe's Attributes map.
    """
    _validate(_parse_subscription, json_text, prefix)


def _stored(parse: Callable[[str | None], _Sections], text: str | None) -> _Sections:
    """A stored document; one that does not validate (kept from before validation existed)
    counts as unset rather than breaking deliveries and GetAttributes."""
    try:
        return parse(text)
    except _Invalid:
        return _Sections()


def _merged(topic_policy_json: str | None, subscription_policy_json: str | None) -> _Sections:
    """Section by section, the subscription's over the topic's, unless the topic disables
    subscription overrides ("Applying delivery policies to topics and subscriptions",
    https://docs.aws.amazon.com/sns/latest/dg/DeliveryPolicies.html)."""
    topic = _stored(_parse_topic, topic_policy_json)
    sub = _Sections()
    if not topic.disable_overrides:
        sub = _stored(_parse_subscription, subscription_policy_json)
    return _Sections(
        retry=sub.retry if sub.retry is not None else topic.retry,
        max_receives=sub.max_receives if sub.max_receives is not None else topic.max_receives,
        content_type=sub.content_type if sub.content_type is not None else topic.content_type,
        sickly=sub.sickly,
        guaranteed=sub.guaranteed,
    )


def effective(
    topic_policy_json: str | None, subscription_policy_json: str | None
) -> HttpDeliveryPolicy:
    """The policy in force for an HTTP/S subscription, given the two stored attributes."""
    merged = _merged(topic_policy_json, subscription_policy_json)
    rate = merged.max_receives
    return HttpDeliveryPolicy(
        retry=merged.retry if merged.retry is not None else DEFAULT_RETRY,
        max_receives_per_second=float(rate) if rate is not None else None,
        content_type=merged.content_type or DEFAULT_CONTENT_TYPE,
    )


def _dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def effective_json(topic_policy_json: str | None, subscription_policy_json: str | None) -> str:
    """A subscription's ``EffectiveDeliveryPolicy`` attribute (sns-api.md sec. 4.19).

    With nothing set it is SNS's ``{"healthyRetryPolicy":{...},"sicklyRetryPolicy":null,
    "throttlePolicy":null,"guaranteed":false}``; a throttle or request policy set on the
    topic or the subscription shows up in its place.
    """
    merged = _merged(topic_policy_json, subscription_policy_json)
    retry = merged.retry if merged.retry is not None else DEFAULT_RETRY
    rate = merged.max_receives
    document: dict[str, Any] = {
        "healthyRetryPolicy": retry.to_json(),
        "sicklyRetryPolicy": merged.sickly,
        "throttlePolicy": {"maxReceivesPerSecond": rate} if rate is not None else None,
    }
    if merged.content_type is not None:
        document["requestPolicy"] = {"headerContentType": merged.content_type}
    document["guaranteed"] = merged.guaranteed
    return _dumps(document)


def effective_topic_json(topic_policy_json: str | None) -> str:
    """A topic's ``EffectiveDeliveryPolicy`` attribute (sns-api.md sec. 4.14): the topic's
    sections over SNS's defaults, missing retry fields filled in."""
    topic = _stored(_parse_topic, topic_policy_json)
    retry = topic.retry if topic.retry is not None else DEFAULT_RETRY
    http: dict[str, Any] = {
        "defaultHealthyRetryPolicy": retry.to_json(),
        "disableSubscriptionOverrides": topic.disable_overrides,
    }
    if topic.max_receives is not None:
        http["defaultThrottlePolicy"] = {"maxReceivesPerSecond": topic.max_receives}
    http["defaultRequestPolicy"] = {"headerContentType": topic.content_type or DEFAULT_CONTENT_TYPE}
    return _dumps({"http": http})
