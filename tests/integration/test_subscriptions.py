"""Subscriptions through boto3, on both stores (specs/sns-api.md sec. 4.16-4.19, 4.10).

ConfirmSubscription is only tested with wrong tokens here: the right token travels in the
``SubscriptionConfirmation`` POST to the subscriber, which arrives with the delivery/events
work; a test of the full http/https handshake belongs with it.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, unique
from tests.expected import HEALTHY_RETRY_POLICY

PREFIX = f"arn:aws:sns:{REGION}:{ACCOUNT}:"
HOOK = "http://127.0.0.1:9/hook"  # never called: nothing is delivered in these tests
SECURE_HOOK = "https://127.0.0.1:9/hook"
HTTP_EFFECTIVE_DELIVERY_POLICY = {
    "healthyRetryPolicy": HEALTHY_RETRY_POLICY,
    "sicklyRetryPolicy": None,
    "throttlePolicy": None,
    "guaranteed": False,
}


def error(err: pytest.ExceptionInfo[ClientError]) -> tuple[int, dict[str, str]]:
    response: Any = err.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]


def invalid(message: str) -> tuple[int, dict[str, str]]:
    return 400, {"Type": "Sender", "Code": "InvalidParameter", "Message": message}


def not_found(message: str) -> tuple[int, dict[str, str]]:
    return 404, {"Type": "Sender", "Code": "NotFound", "Message": message}


@pytest.fixture(scope="module")
def app_arn(sns: Any) -> str:
    return str(
        sns.create_platform_application(
            Name=unique("app"), Platform="GCM", Attributes={"PlatformCredential": "AIzaSyExample"}
        )["PlatformApplicationArn"]
    )


@pytest.fixture
def endpoint_arn(sns: Any, app_arn: str) -> str:
    return str(
        sns.create_platform_endpoint(PlatformApplicationArn=app_arn, Token=unique("tok"))[
            "EndpointArn"
        ]
    )


@pytest.fixture
def topic_arn(sns: Any) -> str:
    return str(sns.create_topic(Name=unique())["TopicArn"])


def by_topic(sns: Any, topic_arn: str) -> list[dict[str, str]]:
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
    return [s for page in pages for s in page["Subscriptions"]]


def all_subscriptions(sns: Any) -> list[dict[str, str]]:
    pages = sns.get_paginator("list_subscriptions").paginate()
    return [s for page in pages for s in page["Subscriptions"]]


# -- application -------------------------------------------------------------------------------


def test_subscribe_an_endpoint(sns: Any, topic_arn: str, endpoint_arn: str) -> None:
    arn = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    assert re.fullmatch(re.escape(topic_arn) + r":[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", arn)
    assert sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"] == {
        "ConfirmationWasAuthenticated": "true",
        "Endpoint": endpoint_arn,
        "Owner": ACCOUNT,
        "PendingConfirmation": "false",
        "Protocol": "application",
        "RawMessageDelivery": "false",
        "SubscriptionArn": arn,
        "SubscriptionPrincipal": f"arn:aws:iam::{ACCOUNT}:root",
        "TopicArn": topic_arn,
    }
    entry = {
        "SubscriptionArn": arn,
        "Owner": ACCOUNT,
        "Protocol": "application",
        "Endpoint": endpoint_arn,
        "TopicArn": topic_arn,
    }
    assert sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"] == [entry]
    assert entry in all_subscriptions(sns)


def test_subscribe_an_endpoint_with_return_subscription_arn(
    sns: Any, topic_arn: str, endpoint_arn: str
) -> None:
    arn = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="application",
        Endpoint=endpoint_arn,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    assert arn.startswith(topic_arn + ":")
    # Idempotent: the same subscription however it is asked for.
    again = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)
    assert again["SubscriptionArn"] == arn
    assert len(by_topic(sns, topic_arn)) == 1


def test_subscribe_unknown_endpoint(sns: Any, topic_arn: str, app_arn: str) -> None:
    app_name = app_arn.rsplit("/", 1)[1]
    unknown = f"{PREFIX}endpoint/GCM/{app_name}/{uuid.uuid4()}"
    for endpoint in (unknown, app_arn, topic_arn, "not-an-arn"):
        with pytest.raises(ClientError) as err:
            sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint)
        assert error(err) == invalid(
            "Invalid parameter: Endpoint Reason: Endpoint does not exist for endpoint "
            f"arn{endpoint}"
        )
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=topic_arn, Protocol="application")
    assert error(err) == invalid(
        "Invalid parameter: Endpoint Reason: Endpoint does not exist for endpoint arn"
    )
    assert by_topic(sns, topic_arn) == []


def test_subscribe_to_unknown_topic(sns: Any, endpoint_arn: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.subscribe(
            TopicArn=PREFIX + unique("missing"), Protocol="application", Endpoint=endpoint_arn
        )
    assert error(err) == not_found("Topic does not exist")
    with pytest.raises(ClientError) as err:
        sns.subscribe(
            TopicArn=f"arn:aws:sns:eu-west-1:{ACCOUNT}:{unique()}",
            Protocol="application",
            Endpoint=endpoint_arn,
        )
    assert error(err) == invalid("Invalid parameter: TopicArn")


def test_subscriptions_survive_delete_endpoint(sns: Any, topic_arn: str, endpoint_arn: str) -> None:
    arn = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    sns.delete_endpoint(EndpointArn=endpoint_arn)
    assert by_topic(sns, topic_arn) == [
        {
            "SubscriptionArn": arn,
            "Owner": ACCOUNT,
            "Protocol": "application",
            "Endpoint": endpoint_arn,
            "TopicArn": topic_arn,
        }
    ]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attributes["Endpoint"] == endpoint_arn
    assert sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["SubscriptionsConfirmed"] == (
        "1"
    )
    # A new subscription to the deleted endpoint is refused; the old one can go.
    other = sns.create_topic(Name=unique())["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=other, Protocol="application", Endpoint=endpoint_arn)
    assert error(err) == invalid(
        "Invalid parameter: Endpoint Reason: Endpoint does not exist for endpoint "
        f"arn{endpoint_arn}"
    )
    sns.unsubscribe(SubscriptionArn=arn)
    assert by_topic(sns, topic_arn) == []


# -- http / https ------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "endpoint"), [("http", HOOK), ("https", SECURE_HOOK)])
def test_subscribe_http_is_pending(sns: Any, topic_arn: str, protocol: str, endpoint: str) -> None:
    response = sns.subscribe(TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint)
    assert response["SubscriptionArn"] == "pending confirmation"
    arn = sns.subscribe(
        TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint, ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    assert arn.startswith(topic_arn + ":")
    entry = {
        "SubscriptionArn": "PendingConfirmation",
        "Owner": ACCOUNT,
        "Protocol": protocol,
        "Endpoint": endpoint,
        "TopicArn": topic_arn,
    }
    assert by_topic(sns, topic_arn) == [entry]
    assert entry in all_subscriptions(sns)
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert json.loads(attributes.pop("EffectiveDeliveryPolicy")) == HTTP_EFFECTIVE_DELIVERY_POLICY
    assert attributes == {
        "ConfirmationWasAuthenticated": "false",
        "Endpoint": endpoint,
        "Owner": ACCOUNT,
        "PendingConfirmation": "true",
        "Protocol": protocol,
        "RawMessageDelivery": "false",
        "SubscriptionArn": arn,
        "SubscriptionPrincipal": f"arn:aws:iam::{ACCOUNT}:root",
        "TopicArn": topic_arn,
    }
    counts = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert (counts["SubscriptionsConfirmed"], counts["SubscriptionsPending"]) == ("0", "1")
    sns.unsubscribe(SubscriptionArn=arn)
    assert by_topic(sns, topic_arn) == []


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [("http", SECURE_HOOK), ("https", HOOK), ("http", "127.0.0.1:9/hook"), ("http", None)],
)
def test_subscribe_http_endpoint_must_match_protocol(
    sns: Any, topic_arn: str, protocol: str, endpoint: str | None
) -> None:
    kwargs = {} if endpoint is None else {"Endpoint": endpoint}
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=topic_arn, Protocol=protocol, **kwargs)
    assert error(err) == invalid("Invalid parameter: Endpoint must match the specified protocol")


def test_confirm_subscription_with_wrong_token(sns: Any, topic_arn: str) -> None:
    sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=HOOK)
    for token in ("0" * 128, "wrong", ""):
        with pytest.raises(ClientError) as err:
            sns.confirm_subscription(TopicArn=topic_arn, Token=token)
        assert error(err) == invalid("Invalid parameter: Token")
    with pytest.raises(ClientError) as err:
        sns.confirm_subscription(
            TopicArn=topic_arn, Token="0" * 128, AuthenticateOnUnsubscribe="true"
        )
    assert error(err) == invalid("Invalid parameter: Token")
    assert by_topic(sns, topic_arn)[0]["SubscriptionArn"] == "PendingConfirmation"
    with pytest.raises(ClientError) as err:
        sns.confirm_subscription(TopicArn=PREFIX + unique("missing"), Token="0" * 128)
    assert error(err) == not_found("Topic does not exist")


# -- protocols ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [
        ("sqs", f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue"),
        ("email", "someone@example.com"),
        ("email-json", "someone@example.com"),
        ("lambda", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"),
        ("firehose", f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/s"),
        ("sms", "+15555550100"),
        ("bogus", "anything"),
        ("", "anything"),
    ],
)
def test_unsupported_protocols(sns: Any, topic_arn: str, protocol: str, endpoint: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint)
    assert error(err) == invalid(
        f"Invalid parameter: Amazon SNS does not support this protocol string: {protocol}"
    )
    assert by_topic(sns, topic_arn) == []


# -- idempotency and attributes ----------------------------------------------------------------


def test_subscribe_again_with_the_same_attributes(
    sns: Any, topic_arn: str, endpoint_arn: str
) -> None:
    policy = json.dumps({"event": ["order_placed"]})
    attributes = {"RawMessageDelivery": "true", "FilterPolicy": policy}
    arn = sns.subscribe(
        TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn, Attributes=attributes
    )["SubscriptionArn"]
    reformatted = json.dumps({"event": ["order_placed"]}, indent=2)  # the same policy
    for again in (
        attributes,
        {},
        {"RawMessageDelivery": "true"},
        {"RawMessageDelivery": "TRUE"},
        {"FilterPolicy": policy},
        {"FilterPolicy": reformatted, "FilterPolicyScope": "MessageAttributes"},
    ):
        response = sns.subscribe(
            TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn, Attributes=again
        )
        assert response["SubscriptionArn"] == arn
    stored = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert stored["RawMessageDelivery"] == "true"
    assert stored["FilterPolicy"] == policy
    assert stored["FilterPolicyScope"] == "MessageAttributes"


def test_subscribe_again_with_default_attributes(
    sns: Any, topic_arn: str, endpoint_arn: str
) -> None:
    """Asking explicitly for the defaults is asking for the same subscription."""
    arn = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    for attributes in ({"RawMessageDelivery": "false"}, {"RawMessageDelivery": "FALSE"}):
        response = sns.subscribe(
            TopicArn=topic_arn,
            Protocol="application",
            Endpoint=endpoint_arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        assert response["SubscriptionArn"] == arn


@pytest.mark.parametrize(
    "attributes",
    [
        {"RawMessageDelivery": "true"},
        {"FilterPolicy": json.dumps({"event": ["other"]})},
        {"FilterPolicyScope": "MessageBody"},
    ],
)
def test_subscribe_again_with_different_attributes(
    sns: Any, topic_arn: str, endpoint_arn: str, attributes: dict[str, str]
) -> None:
    arn = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="application",
        Endpoint=endpoint_arn,
        Attributes={"FilterPolicy": json.dumps({"event": ["one"]})},
    )["SubscriptionArn"]
    with pytest.raises(ClientError) as err:
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="application",
            Endpoint=endpoint_arn,
            Attributes=attributes,
        )
    assert error(err) == invalid(
        "Invalid parameter: Attributes Reason: Subscription already exists with different "
        "attributes"
    )
    assert [s["SubscriptionArn"] for s in by_topic(sns, topic_arn)] == [arn]


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        (
            {"RawMessageDelivery": "yes"},
            "RawMessageDelivery: Invalid value [yes]. Must be true or false.",
        ),
        (
            {"RawMessageDelivery": ""},
            "RawMessageDelivery: Invalid value []. Must be true or false.",
        ),
        ({"FilterPolicy": "{not json"}, "FilterPolicy: failed to parse JSON."),
        (
            {"FilterPolicyScope": "Everything"},
            "FilterPolicyScope: Invalid value [Everything]. Please use either MessageBody or "
            "MessageAttributes",
        ),
        ({"Bogus": "1"}, "AttributeName"),
    ],
)
def test_subscribe_attribute_validation(
    sns: Any, topic_arn: str, endpoint_arn: str, attributes: dict[str, str], reason: str
) -> None:
    with pytest.raises(ClientError) as err:
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="application",
            Endpoint=endpoint_arn,
            Attributes=attributes,
        )
    assert error(err) == invalid(f"Invalid parameter: Attributes Reason: {reason}")
    assert by_topic(sns, topic_arn) == []


def test_set_subscription_attributes(sns: Any, topic_arn: str, endpoint_arn: str) -> None:
    arn = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]

    def attributes() -> dict[str, str]:
        return dict(sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"])

    base = attributes()
    sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="True"
    )
    assert attributes() == {**base, "RawMessageDelivery": "true"}
    policy = json.dumps({"store": ["example_corp"], "price_usd": [{"numeric": [">=", 100]}]})
    sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue=policy
    )
    assert attributes() == {
        **base,
        "RawMessageDelivery": "true",
        "FilterPolicy": policy,
        "FilterPolicyScope": "MessageAttributes",
    }
    sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="FilterPolicyScope", AttributeValue="MessageBody"
    )
    # A new policy keeps the scope the subscriber chose.
    newer = json.dumps({"store": ["other_corp"]})
    sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue=newer
    )
    assert attributes() == {
        **base,
        "RawMessageDelivery": "true",
        "FilterPolicy": newer,
        "FilterPolicyScope": "MessageBody",
    }
    sns.set_subscription_attributes(
        SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue=""
    )
    assert attributes() == {**base, "RawMessageDelivery": "true"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "RawMessageDelivery",
            "maybe",
            "Invalid parameter: RawMessageDelivery: Invalid value [maybe]. Must be true or false.",
        ),
        ("FilterPolicy", "{not json", "Invalid parameter: FilterPolicy: failed to parse JSON."),
        (
            "FilterPolicyScope",
            "Nope",
            "Invalid parameter: FilterPolicyScope: Invalid value [Nope]. Please use either "
            "MessageBody or MessageAttributes",
        ),
        ("Protocol", "http", "Invalid parameter: AttributeName"),
        ("Endpoint", HOOK, "Invalid parameter: AttributeName"),
        ("Bogus", "1", "Invalid parameter: AttributeName"),
    ],
)
def test_set_subscription_attributes_validation(
    sns: Any, topic_arn: str, endpoint_arn: str, name: str, value: str, message: str
) -> None:
    arn = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    before = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    with pytest.raises(ClientError) as err:
        sns.set_subscription_attributes(
            SubscriptionArn=arn, AttributeName=name, AttributeValue=value
        )
    assert error(err) == invalid(message)
    assert sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"] == before


def test_subscription_attributes_of_unknown_subscription(sns: Any, topic_arn: str) -> None:
    arn = f"{topic_arn}:{uuid.uuid4()}"
    with pytest.raises(ClientError) as err:
        sns.get_subscription_attributes(SubscriptionArn=arn)
    assert error(err) == not_found("Subscription does not exist")
    with pytest.raises(ClientError) as err:
        sns.set_subscription_attributes(
            SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="true"
        )
    assert error(err) == not_found("Subscription does not exist")


# -- Unsubscribe -------------------------------------------------------------------------------


def test_unsubscribe_is_idempotent(sns: Any, topic_arn: str, endpoint_arn: str) -> None:
    arn = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    sns.unsubscribe(SubscriptionArn=arn)
    sns.unsubscribe(SubscriptionArn=arn)
    sns.unsubscribe(SubscriptionArn=f"{PREFIX}{unique('never')}:{uuid.uuid4()}")
    assert by_topic(sns, topic_arn) == []
    with pytest.raises(ClientError) as err:
        sns.get_subscription_attributes(SubscriptionArn=arn)
    assert error(err) == not_found("Subscription does not exist")
    # Subscribing again makes a new subscription.
    again = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)
    assert again["SubscriptionArn"] != arn


def test_unsubscribe_a_topic_arn(sns: Any, topic_arn: str) -> None:
    for call in (sns.unsubscribe, sns.get_subscription_attributes):
        with pytest.raises(ClientError) as err:
            call(SubscriptionArn=topic_arn)
        assert error(err) == invalid("Invalid parameter: SubscriptionId")
    with pytest.raises(ClientError) as err:
        sns.set_subscription_attributes(
            SubscriptionArn=topic_arn, AttributeName="RawMessageDelivery", AttributeValue="true"
        )
    assert error(err) == invalid("Invalid parameter: SubscriptionId")


@pytest.mark.parametrize(
    ("value", "elements"),
    [("PendingConfirmation", 1), ("pending confirmation", 1), ("arn:aws:sns:x:y", 5)],
)
def test_malformed_subscription_arns(sns: Any, value: str, elements: int) -> None:
    message = (
        "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, "
        f"not {elements}"
    )
    for call in (sns.unsubscribe, sns.get_subscription_attributes):
        with pytest.raises(ClientError) as err:
            call(SubscriptionArn=value)
        assert error(err) == invalid(message)
    with pytest.raises(ClientError) as err:
        sns.set_subscription_attributes(
            SubscriptionArn=value, AttributeName="RawMessageDelivery", AttributeValue="true"
        )
    assert error(err) == invalid(message)


# -- lists -------------------------------------------------------------------------------------


def test_list_subscriptions_pages_by_100(sns: Any, topic_arn: str, endpoint_arn: str) -> None:
    other = sns.create_topic(Name=unique())["TopicArn"]
    sns.subscribe(TopicArn=other, Protocol="application", Endpoint=endpoint_arn)
    hooks = [f"{HOOK}/{i}" for i in range(150)]
    for hook in hooks:
        sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=hook)

    pages = list(sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn))
    assert [len(p["Subscriptions"]) for p in pages] == [100, 50]
    assert pages[0]["NextToken"]
    assert "NextToken" not in pages[1]
    listed = [s for p in pages for s in p["Subscriptions"]]
    assert [s["Endpoint"] for s in listed] == hooks
    assert {s["TopicArn"] for s in listed} == {topic_arn}

    pages = list(sns.get_paginator("list_subscriptions").paginate())
    assert all(len(p["Subscriptions"]) == 100 and p["NextToken"] for p in pages[:-1])
    assert "NextToken" not in pages[-1]
    everything = [(s["TopicArn"], s["Endpoint"]) for p in pages for s in p["Subscriptions"]]
    assert len(everything) == len(set(everything)) >= 151
    assert [e for t, e in everything if t == topic_arn] == hooks
    assert (other, endpoint_arn) in everything


def test_list_subscriptions_by_unknown_topic(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.list_subscriptions_by_topic(TopicArn=PREFIX + unique("missing"))
    assert error(err) == not_found("Topic does not exist")


def test_list_subscriptions_with_invalid_token(sns: Any, topic_arn: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.list_subscriptions(NextToken="bogus")
    assert error(err) == invalid("Invalid parameter: NextToken")
    with pytest.raises(ClientError) as err:
        sns.list_subscriptions_by_topic(TopicArn=topic_arn, NextToken="bogus")
    assert error(err) == invalid("Invalid parameter: NextToken")
