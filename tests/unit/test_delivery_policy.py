"""The HTTP/S delivery policy without a database: schedules, effective policies, validation."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgate.domain import delivery_policy as dp
from pushgate.domain.delivery_policy import Backoff, HttpDeliveryPolicy, RetryPolicy
from pushgate.domain.errors import InvalidParameter
from tests.expected import HEALTHY_RETRY_POLICY

# sns-api.md sec. 4.14, as AWS returns it for a fresh topic.
TOPIC_DEFAULT = (
    '{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,'
    '"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,'
    '"backoffFunction":"linear"},"disableSubscriptionOverrides":false,'
    '"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}'
)
DEFAULT_RETRY_JSON = {
    "minDelayTarget": 20,
    "maxDelayTarget": 20,
    "numRetries": 3,
    "numMaxDelayRetries": 0,
    "numNoDelayRetries": 0,
    "numMinDelayRetries": 0,
    "backoffFunction": "linear",
}
# The AWS page's sample subscription policy: 3 immediate, 2 at 1 s, 10 backoff, 35 at 60 s.
AWS_SAMPLE = {
    "healthyRetryPolicy": {
        "minDelayTarget": 1,
        "maxDelayTarget": 60,
        "numRetries": 50,
        "numNoDelayRetries": 3,
        "numMinDelayRetries": 2,
        "numMaxDelayRetries": 35,
        "backoffFunction": "exponential",
    },
    "throttlePolicy": {"maxReceivesPerSecond": 10},
}


def topic_policy(**http: Any) -> str:
    return json.dumps({"http": http})


# --- schedules -------------------------------------------------------------------------------


def test_default_policy_is_three_retries_twenty_seconds_apart() -> None:
    policy = RetryPolicy()
    assert policy.schedule() == (20.0, 20.0, 20.0)
    assert policy.max_attempts == 4
    assert policy.total_delay == 60.0
    assert policy.num_backoff_retries == 3
    assert dp.DEFAULT_RETRY == policy


def test_default_matches_what_topics_show() -> None:
    assert RetryPolicy().to_json() == HEALTHY_RETRY_POLICY == DEFAULT_RETRY_JSON
    assert list(RetryPolicy().to_json()) == list(DEFAULT_RETRY_JSON)


def test_linear_example_of_the_aws_page() -> None:
    """Maximum delay 40, the rest default: "the first retry after 20 seconds, the second
    retry after 30 seconds, and the final retry after 40 seconds"."""
    assert RetryPolicy(max_delay=40).schedule() == (20.0, 30.0, 40.0)


# The AWS backoff graph: 10 retries from 5 to 260 seconds, t = (k-1)/9.
_T = [k / 9 for k in range(10)]


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        pytest.param(Backoff.LINEAR, [5 + 255 * t for t in _T], id="linear"),
        pytest.param(Backoff.ARITHMETIC, [5 + 255 * t * t for t in _T], id="arithmetic"),
        pytest.param(Backoff.GEOMETRIC, [5 * 52**t for t in _T], id="geometric"),
        pytest.param(
            Backoff.EXPONENTIAL, [5 + 255 * (2**k - 1) / 511 for k in range(10)], id="exponential"
        ),
    ],
)
def test_backoff_functions(backoff: Backoff, expected: list[float]) -> None:
    schedule = RetryPolicy(5, 260, 10, backoff=backoff).schedule()
    assert schedule == pytest.approx(expected, rel=1e-12)
    assert schedule[0] == 5.0
    assert schedule[-1] == 260.0
    assert list(schedule) == sorted(schedule)


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        (Backoff.LINEAR, [5.0, 33.333, 61.667, 90.0, 118.333]),
        (Backoff.ARITHMETIC, [5.0, 8.148, 17.593, 33.333, 55.37]),
        (Backoff.GEOMETRIC, [5.0, 7.756, 12.031, 18.663, 28.949]),
        (Backoff.EXPONENTIAL, [5.0, 5.499, 6.497, 8.493, 12.485]),
    ],
)
def test_backoff_functions_in_seconds(backoff: Backoff, expected: list[float]) -> None:
    """The first half of the graph in plain numbers: linear climbs fastest, exponential last."""
    schedule = RetryPolicy(5, 260, 10, backoff=backoff).schedule()
    assert [round(d, 3) for d in schedule[:5]] == expected


@pytest.mark.parametrize("backoff", list(Backoff))
def test_equal_delays_make_every_function_flat(backoff: Backoff) -> None:
    assert RetryPolicy(7, 7, 4, backoff=backoff).schedule() == (7.0,) * 4


@pytest.mark.parametrize("backoff", list(Backoff))
def test_a_single_backoff_retry_waits_the_minimum(backoff: Backoff) -> None:
    assert RetryPolicy(5, 50, 1, backoff=backoff).schedule() == (5.0,)


@pytest.mark.parametrize("backoff", list(Backoff))
def test_two_backoff_retries_are_min_then_max(backoff: Backoff) -> None:
    assert RetryPolicy(5, 50, 2, backoff=backoff).schedule() == (5.0, 50.0)


def test_the_four_phases_of_the_aws_sample() -> None:
    policy = RetryPolicy(1, 60, 50, 3, 2, 35, Backoff.EXPONENTIAL)
    schedule = policy.schedule()
    assert len(schedule) == 50
    assert policy.max_attempts == 51
    assert policy.num_backoff_retries == 10
    assert schedule[:3] == (0.0, 0.0, 0.0)  # immediate
    assert schedule[3:5] == (1.0, 1.0)  # pre-backoff
    backoff = schedule[5:15]
    assert backoff == pytest.approx([1 + 59 * (2**k - 1) / 511 for k in range(10)])
    assert (backoff[0], backoff[-1]) == (1.0, 60.0)
    assert schedule[15:] == (60.0,) * 35  # post-backoff
    assert policy.total_delay == pytest.approx(2 + 10 + 59 * 1013 / 511 + 35 * 60)


def test_phases_without_a_backoff_phase() -> None:
    policy = RetryPolicy(
        10, 30, 5, num_no_delay_retries=1, num_min_delay_retries=2, num_max_delay_retries=2
    )
    assert policy.num_backoff_retries == 0
    assert policy.schedule() == (0.0, 10.0, 10.0, 30.0, 30.0)


def test_no_retries() -> None:
    policy = RetryPolicy(num_retries=0)
    assert policy.schedule() == ()
    assert policy.max_attempts == 1
    assert policy.next_delay(1) is None


def test_delay_before_and_next_delay() -> None:
    policy = RetryPolicy(20, 40, 3)
    assert [policy.delay_before(r) for r in (1, 2, 3)] == [20.0, 30.0, 40.0]
    assert [policy.next_delay(a) for a in (1, 2, 3, 4, 9)] == [20.0, 30.0, 40.0, None, None]
    for retry in (0, 4, -1):
        with pytest.raises(ValueError):
            policy.delay_before(retry)
    with pytest.raises(ValueError):
        policy.next_delay(0)


def test_jitter_only_shortens() -> None:
    policy = RetryPolicy(20, 40, 3, num_no_delay_retries=1)
    rng = random.Random(7)
    for _ in range(200):
        assert policy.delay_before(1, 0.5, rng) == 0.0  # nothing to shorten
        delay = policy.delay_before(3, 0.5, rng)
        assert 20.0 <= delay <= 40.0
    draws = [policy.delay_before(3, 1.0, random.Random(seed)) for seed in range(50)]
    assert len(set(draws)) > 40
    assert all(0.0 <= d <= 40.0 for d in draws)


def test_jitter_is_reproducible_and_off_by_default() -> None:
    policy = RetryPolicy(20, 40, 3)
    assert policy.delay_before(2, 0.3, random.Random(1)) == policy.delay_before(
        2, 0.3, random.Random(1)
    )
    assert policy.delay_before(2) == 30.0
    assert policy.next_delay(2, 0.0, random.Random(1)) == 30.0
    assert 21.0 <= (policy.next_delay(2, 0.3) or 0.0) <= 30.0  # the random module


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_jitter_out_of_range(jitter: float) -> None:
    with pytest.raises(ValueError):
        RetryPolicy().delay_before(1, jitter)


# --- effective policy ------------------------------------------------------------------------


def test_effective_defaults() -> None:
    assert dp.effective(None, None) == HttpDeliveryPolicy(
        retry=RetryPolicy(), max_receives_per_second=None, content_type="text/plain; charset=UTF-8"
    )
    assert dp.effective("", "") == dp.effective(None, None)


def test_effective_from_the_topic() -> None:
    topic = topic_policy(
        defaultHealthyRetryPolicy={"numRetries": 5, "minDelayTarget": 1},
        defaultThrottlePolicy={"maxReceivesPerSecond": 3},
        defaultRequestPolicy={"headerContentType": "application/json"},
    )
    policy = dp.effective(topic, None)
    assert policy.retry == RetryPolicy(min_delay=1, num_retries=5)  # max stays 20
    assert policy.max_receives_per_second == 3.0
    assert policy.content_type == "application/json"


def test_the_subscription_overrides_the_topic_section_by_section() -> None:
    topic = topic_policy(
        defaultHealthyRetryPolicy={"numRetries": 5, "minDelayTarget": 1, "maxDelayTarget": 9},
        defaultThrottlePolicy={"maxReceivesPerSecond": 3},
        defaultRequestPolicy={"headerContentType": "application/json"},
    )
    sub = json.dumps({"healthyRetryPolicy": {"numRetries": 7}})
    policy = dp.effective(topic, sub)
    # The subscription's retry policy replaces the topic's; what it leaves out is SNS's default.
    assert policy.retry == RetryPolicy(num_retries=7)
    assert policy.max_receives_per_second == 3.0
    assert policy.content_type == "application/json"
    sub = json.dumps(
        {
            "throttlePolicy": {"maxReceivesPerSecond": 1},
            "requestPolicy": {"headerContentType": "application/xml"},
        }
    )
    policy = dp.effective(topic, sub)
    assert policy.retry == RetryPolicy(1, 9, 5)
    assert (policy.max_receives_per_second, policy.content_type) == (1.0, "application/xml")


def test_disable_subscription_overrides() -> None:
    topic = topic_policy(
        defaultHealthyRetryPolicy={"numRetries": 5},
        disableSubscriptionOverrides=True,
    )
    sub = json.dumps(AWS_SAMPLE)
    policy = dp.effective(topic, sub)
    assert policy == HttpDeliveryPolicy(retry=RetryPolicy(num_retries=5))
    on = dp.effective(topic.replace("true", "false"), sub)
    assert on.retry.num_retries == 50
    assert on.max_receives_per_second == 10.0


def test_disabled_overrides_without_a_topic_retry_policy_use_sns_defaults() -> None:
    topic = topic_policy(disableSubscriptionOverrides=True)
    assert dp.effective(topic, json.dumps(AWS_SAMPLE)) == HttpDeliveryPolicy()


def test_a_stored_policy_that_no_longer_validates_counts_as_unset() -> None:
    bad_topic = topic_policy(defaultHealthyRetryPolicy={"numRetries": 101})
    bad_sub = json.dumps({"healthyRetryPolicy": {"minDelayTarget": 0}})
    assert dp.effective(bad_topic, bad_sub) == HttpDeliveryPolicy()
    assert dp.effective("[", "not json") == HttpDeliveryPolicy()
    good_topic = topic_policy(defaultHealthyRetryPolicy={"numRetries": 1})
    assert dp.effective(good_topic, bad_sub).retry == RetryPolicy(num_retries=1)


def test_effective_json_default_is_the_current_shape() -> None:
    text = dp.effective_json(None, None)
    assert text == (
        '{"healthyRetryPolicy":'
        + json.dumps(DEFAULT_RETRY_JSON, separators=(",", ":"))
        + ',"sicklyRetryPolicy":null,"throttlePolicy":null,"guaranteed":false}'
    )
    assert json.loads(text) == {
        "healthyRetryPolicy": HEALTHY_RETRY_POLICY,
        "sicklyRetryPolicy": None,
        "throttlePolicy": None,
        "guaranteed": False,
    }


def test_effective_json_fills_the_retry_policy_and_shows_what_is_set() -> None:
    sub = json.dumps(
        {
            "healthyRetryPolicy": {"numRetries": 5, "backoffFunction": "EXPONENTIAL"},
            "requestPolicy": {"headerContentType": "application/json"},
            "sicklyRetryPolicy": None,
            "guaranteed": False,
        }
    )
    topic = topic_policy(defaultThrottlePolicy={"maxReceivesPerSecond": 2})
    document = json.loads(dp.effective_json(topic, sub))
    assert list(document) == [
        "healthyRetryPolicy",
        "sicklyRetryPolicy",
        "throttlePolicy",
        "requestPolicy",
        "guaranteed",
    ]
    assert document == {
        "healthyRetryPolicy": {
            **DEFAULT_RETRY_JSON,
            "numRetries": 5,
            "backoffFunction": "exponential",
        },
        "sicklyRetryPolicy": None,
        "throttlePolicy": {"maxReceivesPerSecond": 2},
        "requestPolicy": {"headerContentType": "application/json"},
        "guaranteed": False,
    }


def test_effective_json_echoes_sickly_and_guaranteed() -> None:
    sub = json.dumps({"sicklyRetryPolicy": {"numRetries": 1}, "guaranteed": True})
    document = json.loads(dp.effective_json(None, sub))
    assert document["sicklyRetryPolicy"] == {"numRetries": 1}
    assert document["guaranteed"] is True
    assert (
        json.loads(dp.effective_json(topic_policy(disableSubscriptionOverrides=True), sub))[
            "guaranteed"
        ]
        is False
    )


def test_effective_topic_json() -> None:
    assert dp.effective_topic_json(None) == TOPIC_DEFAULT
    assert dp.effective_topic_json("") == TOPIC_DEFAULT
    assert dp.effective_topic_json(topic_policy()) == TOPIC_DEFAULT
    text = topic_policy(
        defaultHealthyRetryPolicy={"numRetries": 5, "minDelayTarget": 1},
        disableSubscriptionOverrides=True,
        defaultThrottlePolicy={"maxReceivesPerSecond": 4},
    )
    assert json.loads(dp.effective_topic_json(text)) == {
        "http": {
            "defaultHealthyRetryPolicy": {
                **DEFAULT_RETRY_JSON,
                "numRetries": 5,
                "minDelayTarget": 1,
            },
            "disableSubscriptionOverrides": True,
            "defaultThrottlePolicy": {"maxReceivesPerSecond": 4},
            "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
        }
    }


# --- validation ------------------------------------------------------------------------------

VALID_TOPIC_POLICIES = [
    pytest.param("", id="unset"),
    pytest.param("{}", id="empty"),
    pytest.param(TOPIC_DEFAULT, id="sns-default"),
    pytest.param(topic_policy(), id="empty-http"),
    pytest.param(
        topic_policy(defaultHealthyRetryPolicy={"numRetries": 5, "minDelayTarget": 1}),
        id="partial-retry",
    ),
    pytest.param(
        topic_policy(
            defaultHealthyRetryPolicy=DEFAULT_RETRY_JSON,
            disableSubscriptionOverrides=False,
            defaultThrottlePolicy={"maxReceivesPerSecond": 1},
        ),
        id="terraform-example",
    ),
    pytest.param(
        topic_policy(
            defaultHealthyRetryPolicy=None,
            defaultThrottlePolicy=None,
            defaultRequestPolicy=None,
            disableSubscriptionOverrides=None,
        ),
        id="nulls",
    ),
    pytest.param(
        topic_policy(
            defaultHealthyRetryPolicy={
                "numRetries": 100,
                "minDelayTarget": 36,
                "maxDelayTarget": 36,
            }
        ),
        id="exactly-3600-seconds",
    ),
    pytest.param(
        topic_policy(defaultHealthyRetryPolicy={"minDelayTarget": 20.0, "numRetries": "4"}),
        id="lenient-numbers",
    ),
]


@pytest.mark.parametrize("text", VALID_TOPIC_POLICIES)
def test_valid_topic_policies(text: str) -> None:
    dp.validate_topic_policy(text)


VALID_SUBSCRIPTION_POLICIES = [
    pytest.param("", id="unset"),
    pytest.param("{}", id="empty"),
    pytest.param(json.dumps(AWS_SAMPLE), id="aws-sample"),
    pytest.param('{"healthyRetryPolicy":{"numRetries":5}}', id="aws-format-page-example"),
    pytest.param(dp.effective_json(None, None), id="effective-policy-copied-back"),
    pytest.param(
        json.dumps({"healthyRetryPolicy": {**DEFAULT_RETRY_JSON, "backoffFunction": "GEOMETRIC"}}),
        id="upper-case-backoff",
    ),
    pytest.param(json.dumps({"throttlePolicy": {}}), id="empty-throttle"),
    pytest.param(json.dumps({"throttlePolicy": {"maxReceivesPerSecond": 1.5}}), id="rate-float"),
    pytest.param(json.dumps({"healthyRetryPolicy": {"numRetries": 0}}), id="no-retries"),
]


@pytest.mark.parametrize("text", VALID_SUBSCRIPTION_POLICIES)
def test_valid_subscription_policies(text: str) -> None:
    dp.validate_subscription_policy(text)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/json",
        "application/xml",
        "text/plain; charset=UTF-8",
        "application/json;charset=utf-8",
        "APPLICATION/XML; Charset=ISO-8859-1",
        'text/plain; charset="UTF-8"',
    ],
)
def test_valid_content_types(content_type: str) -> None:
    request = {"headerContentType": content_type}
    dp.validate_subscription_policy(json.dumps({"requestPolicy": request}))
    dp.validate_topic_policy(topic_policy(defaultRequestPolicy=request))
    assert dp.effective(None, json.dumps({"requestPolicy": request})).content_type == content_type


_CONTENT = "must be text/plain, application/json or application/xml, with an optional charset"
_PHASES = (
    ": numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries must be less than or equal "
    "to numRetries"
)
_TOTAL = ": Total policy retry time cannot be greater than 3600 seconds"
_BACKOFF = ".backoffFunction must be one of linear, arithmetic, geometric, exponential"

# (the http.defaultHealthyRetryPolicy body, the reason after its path)
RETRY_ERRORS = [
    pytest.param({"numRetries": 101}, ".numRetries must be less than or equal to 100", id="101"),
    pytest.param({"numRetries": -1}, ".numRetries must be greater than or equal to 0", id="neg"),
    pytest.param({"numRetries": "five"}, ".numRetries must be an integer", id="text"),
    pytest.param({"numRetries": 2.5}, ".numRetries must be an integer", id="fraction"),
    pytest.param({"numRetries": True}, ".numRetries must be an integer", id="bool"),
    pytest.param(
        {"minDelayTarget": 0}, ".minDelayTarget must be greater than or equal to 1", id="min-0"
    ),
    pytest.param(
        {"maxDelayTarget": 3601}, ".maxDelayTarget must be less than or equal to 3600", id="max"
    ),
    pytest.param(
        {"minDelayTarget": 30},
        ".maxDelayTarget must be greater than or equal to minDelayTarget",
        id="min-over-max",
    ),
    pytest.param(
        {"numNoDelayRetries": -1},
        ".numNoDelayRetries must be greater than or equal to 0",
        id="no-delay-neg",
    ),
    pytest.param(
        {"numMinDelayRetries": -2},
        ".numMinDelayRetries must be greater than or equal to 0",
        id="min-delay-neg",
    ),
    pytest.param(
        {"numMaxDelayRetries": -3},
        ".numMaxDelayRetries must be greater than or equal to 0",
        id="max-delay-neg",
    ),
    pytest.param(
        {"numRetries": 3, "numNoDelayRetries": 2, "numMaxDelayRetries": 2}, _PHASES, id="phases"
    ),
    pytest.param({"backoffFunction": "cubic"}, _BACKOFF, id="backoff"),
    pytest.param({"backoffFunction": 1}, _BACKOFF, id="backoff-number"),
    pytest.param({"minDelayTarget": 3599, "maxDelayTarget": 3600}, _TOTAL, id="total-repost"),
    pytest.param(
        {"numRetries": 100, "minDelayTarget": 37, "maxDelayTarget": 37}, _TOTAL, id="total-3700"
    ),
    pytest.param(
        {"numRetries": 100, "minDelayTarget": 1, "maxDelayTarget": 3600, "numMaxDelayRetries": 1},
        _TOTAL,
        id="total-post-backoff",
    ),
]


@pytest.mark.parametrize(("retry", "reason"), RETRY_ERRORS)
def test_topic_retry_policy_errors(retry: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        dp.validate_topic_policy(topic_policy(defaultHealthyRetryPolicy=retry))
    assert err.value.message == (
        f"Invalid parameter: DeliveryPolicy: http.defaultHealthyRetryPolicy{reason}"
    )


@pytest.mark.parametrize(("retry", "reason"), RETRY_ERRORS)
def test_subscription_retry_policy_errors(retry: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        dp.validate_subscription_policy(json.dumps({"healthyRetryPolicy": retry}))
    assert err.value.message == f"Invalid parameter: DeliveryPolicy: healthyRetryPolicy{reason}"


def test_the_texts_aws_was_seen_answering() -> None:
    with pytest.raises(InvalidParameter) as err:
        dp.validate_topic_policy(topic_policy(defaultHealthyRetryPolicy={"numRetries": 101}))
    assert err.value.message == (
        "Invalid parameter: DeliveryPolicy: http.defaultHealthyRetryPolicy.numRetries must be "
        "less than or equal to 100"
    )
    with pytest.raises(InvalidParameter) as err:
        dp.validate_subscription_policy(
            json.dumps({"healthyRetryPolicy": {"minDelayTarget": 0, "maxDelayTarget": 0}}),
            dp.ATTRIBUTES_PREFIX,
        )
    assert err.value.message == (
        "Invalid parameter: Attributes Reason: DeliveryPolicy: healthyRetryPolicy.minDelayTarget "
        "must be greater than or equal to 1"
    )
    with pytest.raises(InvalidParameter) as err:
        dp.validate_topic_policy(
            topic_policy(defaultHealthyRetryPolicy={"minDelayTarget": 3599, "maxDelayTarget": 3600})
        )
    assert err.value.message == (
        "Invalid parameter: DeliveryPolicy: http.defaultHealthyRetryPolicy: Total policy retry "
        "time cannot be greater than 3600 seconds"
    )
    with pytest.raises(InvalidParameter) as err:
        dp.validate_topic_policy(json.dumps(AWS_SAMPLE))  # a subscription's shape on a topic
    assert err.value.message == (
        "Invalid parameter: DeliveryPolicy: Unexpected JSON member: healthyRetryPolicy"
    )
    assert err.value.code == "InvalidParameter"
    assert err.value.status == 400


TOPIC_ERRORS = [
    pytest.param("[", "failed to parse JSON.", id="not-json"),
    pytest.param("[]", "failed to parse JSON.", id="array"),
    pytest.param('"http"', "failed to parse JSON.", id="string"),
    pytest.param('{"throttlePolicy":{}}', "Unexpected JSON member: throttlePolicy", id="member"),
    pytest.param('{"http":[]}', "http must be a JSON object", id="http-array"),
    pytest.param(
        topic_policy(defaultSicklyRetryPolicy={}),
        "Unexpected JSON member: http.defaultSicklyRetryPolicy",
        id="http-member",
    ),
    pytest.param(
        topic_policy(defaultHealthyRetryPolicy={"numRetries": 3, "retries": 1}),
        "Unexpected JSON member: http.defaultHealthyRetryPolicy.retries",
        id="retry-member",
    ),
    pytest.param(
        topic_policy(defaultHealthyRetryPolicy=3),
        "http.defaultHealthyRetryPolicy must be a JSON object",
        id="retry-number",
    ),
    pytest.param(
        topic_policy(disableSubscriptionOverrides="true"),
        "http.disableSubscriptionOverrides must be a boolean",
        id="disable-text",
    ),
    pytest.param(
        topic_policy(defaultThrottlePolicy={"maxReceivesPerSecond": 0}),
        "http.defaultThrottlePolicy.maxReceivesPerSecond must be greater than or equal to 1",
        id="rate-0",
    ),
    pytest.param(
        topic_policy(defaultThrottlePolicy={"maxReceivesPerSecond": "fast"}),
        "http.defaultThrottlePolicy.maxReceivesPerSecond must be a number",
        id="rate-text",
    ),
    pytest.param(
        topic_policy(defaultThrottlePolicy={"rate": 1}),
        "Unexpected JSON member: http.defaultThrottlePolicy.rate",
        id="throttle-member",
    ),
    pytest.param(
        topic_policy(defaultRequestPolicy={"headerContentType": "text/html"}),
        f"http.defaultRequestPolicy.headerContentType {_CONTENT}",
        id="content-type",
    ),
    pytest.param(
        topic_policy(defaultRequestPolicy={"headerContentType": "text/plain; application/json"}),
        f"http.defaultRequestPolicy.headerContentType {_CONTENT}",
        id="content-type-two",
    ),
    pytest.param(
        topic_policy(defaultRequestPolicy={"contentType": "text/plain"}),
        "Unexpected JSON member: http.defaultRequestPolicy.contentType",
        id="request-member",
    ),
]


@pytest.mark.parametrize(("text", "reason"), TOPIC_ERRORS)
def test_topic_policy_errors(text: str, reason: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        dp.validate_topic_policy(text)
    assert err.value.message == f"Invalid parameter: DeliveryPolicy: {reason}"
    with pytest.raises(InvalidParameter) as err:
        dp.validate_topic_policy(text, dp.ATTRIBUTES_PREFIX)
    assert err.value.message == f"Invalid parameter: Attributes Reason: DeliveryPolicy: {reason}"


SUBSCRIPTION_ERRORS = [
    pytest.param("{", "failed to parse JSON.", id="not-json"),
    pytest.param("null", "failed to parse JSON.", id="null"),
    pytest.param(TOPIC_DEFAULT, "Unexpected JSON member: http", id="topic-shape"),
    pytest.param(
        json.dumps({"healthyRetryPolicy": {"numRetries": 3, "maxRetries": 1}}),
        "Unexpected JSON member: healthyRetryPolicy.maxRetries",
        id="retry-member",
    ),
    pytest.param(
        json.dumps({"healthyRetryPolicy": []}),
        "healthyRetryPolicy must be a JSON object",
        id="retry-array",
    ),
    pytest.param(
        json.dumps({"sicklyRetryPolicy": 1}),
        "sicklyRetryPolicy must be a JSON object",
        id="sickly",
    ),
    pytest.param(json.dumps({"guaranteed": "no"}), "guaranteed must be a boolean", id="guaranteed"),
    pytest.param(
        json.dumps({"throttlePolicy": {"maxReceivesPerSecond": 0.5}}),
        "throttlePolicy.maxReceivesPerSecond must be greater than or equal to 1",
        id="rate",
    ),
    pytest.param(
        json.dumps({"throttlePolicy": {"maxReceivesPerSecond": False}}),
        "throttlePolicy.maxReceivesPerSecond must be a number",
        id="rate-bool",
    ),
    pytest.param(
        '{"throttlePolicy":{"maxReceivesPerSecond":Infinity}}',
        "throttlePolicy.maxReceivesPerSecond must be a number",
        id="rate-infinite",
    ),
    pytest.param(
        json.dumps({"requestPolicy": {"headerContentType": 5}}),
        f"requestPolicy.headerContentType {_CONTENT}",
        id="content-type-number",
    ),
    pytest.param(
        json.dumps({"requestPolicy": {"headerContentType": "text/bogus"}}),
        f"requestPolicy.headerContentType {_CONTENT}",
        id="content-type-bogus",
    ),
    pytest.param(
        json.dumps({"requestPolicy": {"headerContentType": "application/json; boundary=x"}}),
        f"requestPolicy.headerContentType {_CONTENT}",
        id="content-type-parameter",
    ),
]


@pytest.mark.parametrize(("text", "reason"), SUBSCRIPTION_ERRORS)
def test_subscription_policy_errors(text: str, reason: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        dp.validate_subscription_policy(text)
    assert err.value.message == f"Invalid parameter: DeliveryPolicy: {reason}"
    with pytest.raises(InvalidParameter) as err:
        dp.validate_subscription_policy(text, dp.ATTRIBUTES_PREFIX)
    assert err.value.message == f"Invalid parameter: Attributes Reason: DeliveryPolicy: {reason}"


def test_the_first_problem_in_sns_order_is_named() -> None:
    retry = {"backoffFunction": "cubic", "numRetries": 101, "minDelayTarget": 0}
    with pytest.raises(InvalidParameter) as err:
        dp.validate_subscription_policy(json.dumps({"healthyRetryPolicy": retry}))
    assert err.value.message.endswith(
        "healthyRetryPolicy.minDelayTarget must be greater than or equal to 1"
    )


# --- properties ------------------------------------------------------------------------------


@st.composite
def retry_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Any policy within the field limits; the 3600 s budget decides whether it is valid."""
    retries = draw(st.integers(0, dp.MAX_RETRIES))
    no_delay = draw(st.integers(0, retries))
    min_delay_retries = draw(st.integers(0, retries - no_delay))
    max_delay_retries = draw(st.integers(0, retries - no_delay - min_delay_retries))
    high = draw(st.sampled_from([3600, 600, 60, 20]))
    low = draw(st.integers(1, high))
    return {
        "minDelayTarget": low,
        "maxDelayTarget": draw(st.integers(low, high)),
        "numRetries": retries,
        "numNoDelayRetries": no_delay,
        "numMinDelayRetries": min_delay_retries,
        "numMaxDelayRetries": max_delay_retries,
        "backoffFunction": draw(st.sampled_from([b.value for b in Backoff])),
    }


@given(retry_fields())
def test_valid_policies_keep_their_delays_in_bounds_and_budget(fields: dict[str, Any]) -> None:
    text = json.dumps({"healthyRetryPolicy": fields})
    policy = dp.effective(None, text).retry
    nominal = RetryPolicy(
        fields["minDelayTarget"],
        fields["maxDelayTarget"],
        fields["numRetries"],
        fields["numNoDelayRetries"],
        fields["numMinDelayRetries"],
        fields["numMaxDelayRetries"],
        Backoff(fields["backoffFunction"]),
    )
    if nominal.total_delay > dp.MAX_TOTAL_RETRY_SECONDS:
        with pytest.raises(InvalidParameter, match="Total policy retry time"):
            dp.validate_subscription_policy(text)
        assert policy == dp.DEFAULT_RETRY  # a stored one that does not validate is ignored
        return
    dp.validate_subscription_policy(text)
    assert policy == nominal
    schedule = policy.schedule()
    low, high = float(policy.min_delay), float(policy.max_delay)
    immediate = policy.num_no_delay_retries
    assert len(schedule) == policy.num_retries == policy.max_attempts - 1
    assert all(d == 0.0 for d in schedule[:immediate])
    assert all(low <= d <= high for d in schedule[immediate:])
    assert list(schedule) == sorted(schedule)  # monotonic, the backoff phase included
    start = immediate + policy.num_min_delay_retries
    backoff = schedule[start : start + policy.num_backoff_retries]
    if backoff:
        assert backoff[0] == low
        assert backoff[-1] == (high if len(backoff) > 1 else low)
    assert sum(schedule) <= dp.MAX_TOTAL_RETRY_SECONDS + 1e-9
    assert json.loads(dp.effective_json(None, text))["healthyRetryPolicy"] == fields


@given(retry_fields(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_jitter_stays_between_the_shortened_and_the_nominal_delay(
    fields: dict[str, Any], jitter: float, seed: int
) -> None:
    policy = RetryPolicy(
        fields["minDelayTarget"],
        fields["maxDelayTarget"],
        fields["numRetries"],
        fields["numNoDelayRetries"],
        fields["numMinDelayRetries"],
        fields["numMaxDelayRetries"],
        Backoff(fields["backoffFunction"]),
    )
    rng = random.Random(seed)
    for retry, nominal in enumerate(policy.schedule(), start=1):
        delay = policy.delay_before(retry, jitter, rng)
        assert nominal * (1 - jitter) - 1e-9 <= delay <= nominal
