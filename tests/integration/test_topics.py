"""Topics and their tags through boto3, on both stores (specs/sns-api.md sec. 4.11-4.15, 4.22)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, unique
from tests.expected import HEALTHY_RETRY_POLICY

PREFIX = f"arn:aws:sns:{REGION}:{ACCOUNT}:"
DEFAULT_EFFECTIVE_DELIVERY_POLICY = {
    "http": {
        "defaultHealthyRetryPolicy": HEALTHY_RETRY_POLICY,
        "disableSubscriptionOverrides": False,
        "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
    }
}


def error(err: pytest.ExceptionInfo[ClientError]) -> tuple[int, dict[str, str]]:
    response: Any = err.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]


def invalid(message: str) -> tuple[int, dict[str, str]]:
    return 400, {"Type": "Sender", "Code": "InvalidParameter", "Message": message}


def default_policy(topic_arn: str) -> dict[str, Any]:
    return {
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "SNS:GetTopicAttributes",
                    "SNS:SetTopicAttributes",
                    "SNS:AddPermission",
                    "SNS:RemovePermission",
                    "SNS:DeleteTopic",
                    "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic",
                    "SNS:Publish",
                ],
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}},
            }
        ],
    }


def decoded(attributes: dict[str, str]) -> dict[str, Any]:
    """The attribute map with its JSON-valued entries parsed, for exact comparison."""
    result: dict[str, Any] = dict(attributes)
    for key in ("Policy", "EffectiveDeliveryPolicy"):
        result[key] = json.loads(result[key])
    return result


def default_attributes(topic_arn: str, **counts: str) -> dict[str, Any]:
    return {
        "DisplayName": "",
        "EffectiveDeliveryPolicy": DEFAULT_EFFECTIVE_DELIVERY_POLICY,
        "Owner": ACCOUNT,
        "Policy": default_policy(topic_arn),
        "SubscriptionsConfirmed": counts.get("confirmed", "0"),
        "SubscriptionsDeleted": "0",
        "SubscriptionsPending": counts.get("pending", "0"),
        "TopicArn": topic_arn,
    }


@pytest.fixture(scope="module")
def endpoint_arn(sns: Any) -> str:
    app_arn = sns.create_platform_application(
        Name=unique("app"), Platform="GCM", Attributes={"PlatformCredential": "AIzaSyExample"}
    )["PlatformApplicationArn"]
    return str(
        sns.create_platform_endpoint(PlatformApplicationArn=app_arn, Token=unique("tok"))[
            "EndpointArn"
        ]
    )


# -- CreateTopic -------------------------------------------------------------------------------


def test_create_topic_returns_the_arn_of_the_name(sns: Any) -> None:
    name = unique("Topic_ok")
    assert sns.create_topic(Name=name)["TopicArn"] == PREFIX + name
    longest = "x" * 256
    assert sns.create_topic(Name=longest)["TopicArn"] == PREFIX + longest
    longest_fifo = "y" * 251 + ".fifo"
    arn = sns.create_topic(Name=longest_fifo, Attributes={"FifoTopic": "true"})["TopicArn"]
    assert arn == PREFIX + longest_fifo


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        ("", {}),
        ("x" * 257, {}),
        ("has space", {}),
        ("has.dot", {}),
        ("colon:name", {}),
        ("slash/name", {}),
        ("ünïcode", {}),
        ("plain.fifo", {}),  # .fifo without FifoTopic=true
        ("no-suffix", {"FifoTopic": "true"}),
        ("bad name.fifo", {"FifoTopic": "true"}),
        ("x" * 252 + ".fifo", {"FifoTopic": "true"}),  # 257 characters in all
    ],
)
def test_create_topic_rejects_bad_names(sns: Any, name: str, attributes: dict[str, str]) -> None:
    with pytest.raises(ClientError) as err:
        sns.create_topic(Name=name, Attributes=attributes)
    assert error(err) == invalid("Invalid parameter: Topic Name")


def test_create_fifo_topic(sns: Any) -> None:
    name = unique("fifo") + ".fifo"
    arn = sns.create_topic(Name=name, Attributes={"FifoTopic": "true"})["TopicArn"]
    assert arn == PREFIX + name
    attributes = decoded(sns.get_topic_attributes(TopicArn=arn)["Attributes"])
    assert attributes == {
        **default_attributes(arn),
        "FifoTopic": "true",
        "ContentBasedDeduplication": "false",
    }
    # Idempotent with the same attributes, and FifoTopic's case does not matter.
    assert sns.create_topic(Name=name, Attributes={"FifoTopic": "true"})["TopicArn"] == arn
    assert sns.create_topic(Name=name, Attributes={"FifoTopic": "TRUE"})["TopicArn"] == arn
    with pytest.raises(ClientError) as err:
        sns.create_topic(
            Name=name, Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
        )
    assert error(err) == invalid(
        "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
    )


def test_create_fifo_topic_with_content_based_deduplication(sns: Any) -> None:
    name = unique("fifo") + ".fifo"
    arn = sns.create_topic(
        Name=name, Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["FifoTopic"] == "true"
    assert attributes["ContentBasedDeduplication"] == "true"


def test_create_topic_is_idempotent(sns: Any) -> None:
    name = unique()
    arn = sns.create_topic(
        Name=name, Attributes={"DisplayName": "shown"}, Tags=[{"Key": "team", "Value": "push"}]
    )["TopicArn"]
    # Same attributes and tags, or none at all: the same ARN, nothing changed.
    again = sns.create_topic(
        Name=name, Attributes={"DisplayName": "shown"}, Tags=[{"Key": "team", "Value": "push"}]
    )
    assert again["TopicArn"] == arn
    assert sns.create_topic(Name=name)["TopicArn"] == arn
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "shown"
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "push"}]
    assert [t["TopicArn"] for t in all_topics(sns)].count(arn) == 1


def test_create_topic_with_different_attributes_fails(sns: Any) -> None:
    name = unique()
    arn = sns.create_topic(Name=name, Attributes={"DisplayName": "one"})["TopicArn"]
    for attributes in ({"DisplayName": "two"}, {"MaximumMessageSize": "2048"}):
        with pytest.raises(ClientError) as err:
            sns.create_topic(Name=name, Attributes=attributes)
        assert error(err) == invalid(
            "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
        )
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "one"
    assert "MaximumMessageSize" not in sns.get_topic_attributes(TopicArn=arn)["Attributes"]


def test_create_topic_with_different_tags_fails(sns: Any) -> None:
    name = unique()
    arn = sns.create_topic(Name=name, Tags=[{"Key": "a", "Value": "1"}])["TopicArn"]
    for tags in (
        [{"Key": "a", "Value": "2"}],
        [{"Key": "b", "Value": "1"}],
        [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
    ):
        with pytest.raises(ClientError) as err:
            sns.create_topic(Name=name, Tags=tags)
        assert error(err) == invalid(
            "Invalid parameter: Tags Reason: Topic already exists with different tags"
        )
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "1"}]


def test_create_topic_rejects_unknown_attribute(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.create_topic(Name=unique(), Attributes={"Bogus": "1"})
    assert error(err) == invalid(
        "Invalid parameter: Attributes Reason: Invalid attribute name: Bogus"
    )


def test_create_topic_with_too_many_tags(sns: Any) -> None:
    name = unique()
    tags = [{"Key": f"k{i}", "Value": str(i)} for i in range(51)]
    with pytest.raises(ClientError) as err:
        sns.create_topic(Name=name, Tags=tags)
    assert error(err) == (
        400,
        {
            "Type": "Sender",
            "Code": "TagLimitExceeded",
            "Message": "Could not complete request: tag quota of per resource exceeded",
        },
    )
    assert PREFIX + name not in {t["TopicArn"] for t in all_topics(sns)}
    arn = sns.create_topic(Name=name, Tags=tags[:50])["TopicArn"]
    assert len(sns.list_tags_for_resource(ResourceArn=arn)["Tags"]) == 50


# -- GetTopicAttributes / SetTopicAttributes ---------------------------------------------------


def test_get_topic_attributes_of_a_fresh_topic(sns: Any) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert decoded(attributes) == default_attributes(arn)
    assert all(isinstance(v, str) for v in attributes.values())


def test_subscription_counts_follow_subscribe_and_unsubscribe(sns: Any, endpoint_arn: str) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    confirmed = sns.subscribe(TopicArn=arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    sns.subscribe(TopicArn=arn, Protocol="https", Endpoint="https://127.0.0.1:9/hook")
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:9/hook")
    attributes = decoded(sns.get_topic_attributes(TopicArn=arn)["Attributes"])
    assert attributes == default_attributes(arn, confirmed="1", pending="2")
    sns.unsubscribe(SubscriptionArn=confirmed)
    attributes = decoded(sns.get_topic_attributes(TopicArn=arn)["Attributes"])
    assert attributes == default_attributes(arn, confirmed="0", pending="2")


def test_get_topic_attributes_of_unknown_topic(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.get_topic_attributes(TopicArn=PREFIX + unique("missing"))
    assert error(err) == (
        404,
        {"Type": "Sender", "Code": "NotFound", "Message": "Topic does not exist"},
    )


def test_get_topic_attributes_of_another_region(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.get_topic_attributes(TopicArn=f"arn:aws:sns:eu-west-1:{ACCOUNT}:{unique()}")
    assert error(err) == invalid("Invalid parameter: TopicArn")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DisplayName", "Shown name"),
        ("Policy", json.dumps({"Version": "2012-10-17", "Statement": []})),
        ("KmsMasterKeyId", "alias/aws/sns"),
        ("SignatureVersion", "2"),
        ("TracingConfig", "Active"),
        ("MaximumMessageSize", "1024"),
        ("MaximumMessageSize", "1048576"),
        ("ApplicationSuccessFeedbackRoleArn", f"arn:aws:iam::{ACCOUNT}:role/ok"),
        ("ApplicationSuccessFeedbackSampleRate", "50"),
        ("ApplicationFailureFeedbackRoleArn", f"arn:aws:iam::{ACCOUNT}:role/ko"),
    ],
)
def test_set_topic_attributes(sns: Any, name: str, value: str) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName=name, AttributeValue=value)
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes[name] == value
    expected = {k: v for k, v in default_attributes(arn).items() if k != name}
    if name != "Policy":
        assert decoded(attributes) == {**expected, name: value}


def test_set_delivery_policy_changes_the_effective_one(sns: Any) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    policy = json.dumps(
        {"http": {"defaultHealthyRetryPolicy": {"numRetries": 5, "minDelayTarget": 1}}}
    )
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy", AttributeValue=policy)
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["DeliveryPolicy"] == policy
    effective = json.loads(attributes["EffectiveDeliveryPolicy"])
    assert effective["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 5


def test_set_display_name_twice_and_to_empty(sns: Any) -> None:
    arn = sns.create_topic(Name=unique(), Attributes={"DisplayName": "first"})["TopicArn"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="second")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "second"
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName")  # no AttributeValue
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == ""


@pytest.mark.parametrize("name", ["FifoTopic", "Owner", "TopicArn", "Bogus", "displayname"])
def test_set_topic_attributes_rejects_unsettable_names(sns: Any, name: str) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.set_topic_attributes(TopicArn=arn, AttributeName=name, AttributeValue="true")
    assert error(err) == invalid("Invalid parameter: AttributeName")


@pytest.mark.parametrize(
    "value", ["1023", "1048577", "0", "-1", "big", "", "1024.0", "\uff11\uff10\uff12\uff14"]
)
def test_maximum_message_size_bounds(sns: Any, value: str) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.set_topic_attributes(
            TopicArn=arn, AttributeName="MaximumMessageSize", AttributeValue=value
        )
    reason = (
        f"MaximumMessageSize: Invalid value [{value}]. Must be an integer from 1024 to 1048576."
    )
    assert error(err) == invalid(f"Invalid parameter: {reason}")
    assert "MaximumMessageSize" not in sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    with pytest.raises(ClientError) as err:
        sns.create_topic(Name=unique(), Attributes={"MaximumMessageSize": value})
    assert error(err) == invalid(f"Invalid parameter: Attributes Reason: {reason}")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("SignatureVersion", "3", "SignatureVersion: Invalid value [3]. Must be 1 or 2."),
        ("Policy", "{not json", "Policy: failed to parse JSON."),
        ("DeliveryPolicy", "[", "DeliveryPolicy: failed to parse JSON."),
    ],
)
def test_attribute_values_are_checked(sns: Any, name: str, value: str, reason: str) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    before = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    with pytest.raises(ClientError) as err:
        sns.set_topic_attributes(TopicArn=arn, AttributeName=name, AttributeValue=value)
    assert error(err) == invalid(f"Invalid parameter: {reason}")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"] == before
    with pytest.raises(ClientError) as err:
        sns.create_topic(Name=unique(), Attributes={name: value})
    assert error(err) == invalid(f"Invalid parameter: Attributes Reason: {reason}")


def test_fifo_booleans_are_checked(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.create_topic(Name=unique() + ".fifo", Attributes={"FifoTopic": "yes"})
    assert error(err) == invalid(
        "Invalid parameter: Attributes Reason: FifoTopic: Invalid value [yes]. "
        "Must be true or false."
    )
    arn = sns.create_topic(Name=unique() + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.set_topic_attributes(
            TopicArn=arn, AttributeName="ContentBasedDeduplication", AttributeValue="yes"
        )
    assert error(err) == invalid(
        "Invalid parameter: ContentBasedDeduplication: Invalid value [yes]. Must be true or false."
    )
    sns.set_topic_attributes(
        TopicArn=arn, AttributeName="ContentBasedDeduplication", AttributeValue="TRUE"
    )
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["ContentBasedDeduplication"] == (
        "true"
    )


def test_content_based_deduplication_only_on_fifo_topics(sns: Any) -> None:
    standard = sns.create_topic(Name=unique())["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.set_topic_attributes(
            TopicArn=standard, AttributeName="ContentBasedDeduplication", AttributeValue="true"
        )
    assert error(err) == invalid(
        "Invalid parameter: Attributes Reason: Content-based deduplication can only be set for "
        "FIFO topics"
    )
    with pytest.raises(ClientError) as err:
        sns.create_topic(Name=unique(), Attributes={"ContentBasedDeduplication": "false"})
    assert error(err) == invalid(
        "Invalid parameter: Attributes Reason: Content-based deduplication can only be set for "
        "FIFO topics"
    )
    fifo = sns.create_topic(Name=unique() + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=fifo, AttributeName="ContentBasedDeduplication", AttributeValue="true"
    )
    assert sns.get_topic_attributes(TopicArn=fifo)["Attributes"]["ContentBasedDeduplication"] == (
        "true"
    )


def test_set_topic_attributes_of_unknown_topic(sns: Any) -> None:
    with pytest.raises(ClientError) as err:
        sns.set_topic_attributes(
            TopicArn=PREFIX + unique("missing"), AttributeName="DisplayName", AttributeValue="x"
        )
    assert error(err) == (
        404,
        {"Type": "Sender", "Code": "NotFound", "Message": "Topic does not exist"},
    )


# -- DeleteTopic -------------------------------------------------------------------------------


def test_delete_topic_is_idempotent(sns: Any) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=PREFIX + unique("never"))
    assert arn not in {t["TopicArn"] for t in all_topics(sns)}


def test_delete_topic_removes_its_subscriptions(sns: Any, endpoint_arn: str) -> None:
    name = unique()
    arn = sns.create_topic(Name=name)["TopicArn"]
    sub = sns.subscribe(TopicArn=arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    pending = sns.subscribe(
        TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:9/x", ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    sns.delete_topic(TopicArn=arn)
    for gone in (sub, pending):
        with pytest.raises(ClientError) as err:
            sns.get_subscription_attributes(SubscriptionArn=gone)
        assert error(err) == (
            404,
            {"Type": "Sender", "Code": "NotFound", "Message": "Subscription does not exist"},
        )
    listed = {s["SubscriptionArn"] for s in all_subscriptions(sns)}
    assert sub not in listed
    # A topic of the same name starts empty (SQLite may hand out the same row id again).
    again = sns.create_topic(Name=name)["TopicArn"]
    assert again == arn
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    assert decoded(sns.get_topic_attributes(TopicArn=arn)["Attributes"]) == default_attributes(arn)


# -- ListTopics --------------------------------------------------------------------------------


def all_topics(sns: Any) -> list[dict[str, str]]:
    pages = sns.get_paginator("list_topics").paginate()
    return [t for page in pages for t in page["Topics"]]


def all_subscriptions(sns: Any) -> list[dict[str, str]]:
    pages = sns.get_paginator("list_subscriptions").paginate()
    return [s for page in pages for s in page["Subscriptions"]]


def test_list_topics_pages_by_100(sns: Any) -> None:
    created = [sns.create_topic(Name=unique("page"))["TopicArn"] for _ in range(205)]
    pages = list(sns.get_paginator("list_topics").paginate())
    assert len(pages) >= 3
    for page in pages[:-1]:
        assert len(page["Topics"]) == 100
        assert page["NextToken"]
    assert 1 <= len(pages[-1]["Topics"]) <= 100
    assert "NextToken" not in pages[-1]
    listed = [t["TopicArn"] for page in pages for t in page["Topics"]]
    assert len(listed) == len(set(listed))
    assert [a for a in listed if a in set(created)] == created  # creation order
    # By hand: the token of page one leads to page two, and only to it.
    first = sns.list_topics()
    second = sns.list_topics(NextToken=first["NextToken"])
    assert [t["TopicArn"] for t in first["Topics"]] == listed[:100]
    assert [t["TopicArn"] for t in second["Topics"]] == listed[100:200]


@pytest.mark.parametrize("token", ["bogus", "", "djE6eA=="])
def test_list_topics_with_invalid_token(sns: Any, token: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.list_topics(NextToken=token)
    assert error(err) == invalid("Invalid parameter: NextToken")


# -- Tags --------------------------------------------------------------------------------------


def tags_of(sns: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}


def test_tag_untag_and_list(sns: Any) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == []
    response = sns.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]
    )
    assert set(response) == {"ResponseMetadata"}
    assert tags_of(sns, arn) == {"a": "1", "b": ""}
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "overwritten"}])
    assert tags_of(sns, arn) == {"a": "overwritten", "b": ""}
    sns.untag_resource(ResourceArn=arn, TagKeys=["a", "absent"])
    assert tags_of(sns, arn) == {"b": ""}
    sns.untag_resource(ResourceArn=arn, TagKeys=[])  # sent as a bare "TagKeys="
    assert tags_of(sns, arn) == {"b": ""}
    sns.untag_resource(ResourceArn=arn, TagKeys=["b"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == []


def test_tag_values_keep_unicode_and_markup(sns: Any) -> None:
    arn = sns.create_topic(Name=unique())["TopicArn"]
    tags = {"ü-key": '<v> & "ü"', "k": "x" * 256, "K" * 128: "long key"}
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    assert tags_of(sns, arn) == tags


def test_tag_resource_with_duplicate_keys(sns: Any) -> None:
    arn = sns.create_topic(Name=unique(), Tags=[{"Key": "keep", "Value": "1"}])["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.tag_resource(
            ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]
        )
    assert error(err) == invalid("Invalid parameter: Duplicated keys are not allowed.")
    with pytest.raises(ClientError) as err:
        sns.create_topic(
            Name=unique(), Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "1"}]
        )
    assert error(err) == invalid("Invalid parameter: Duplicated keys are not allowed.")
    assert tags_of(sns, arn) == {"keep": "1"}


def test_tag_limit(sns: Any) -> None:
    tag_limit = (
        400,
        {
            "Type": "Sender",
            "Code": "TagLimitExceeded",
            "Message": "Could not complete request: tag quota of per resource exceeded",
        },
    )
    arn = sns.create_topic(Name=unique())["TopicArn"]
    with pytest.raises(ClientError) as err:
        sns.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert error(err) == tag_limit
    assert tags_of(sns, arn) == {}
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "k0", "Value": "again"}])  # overwrite: 49
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "k49", "Value": "v"}])  # the 50th
    with pytest.raises(ClientError) as err:
        sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "k50", "Value": "v"}])
    assert error(err) == tag_limit
    tags = tags_of(sns, arn)
    assert len(tags) == 50
    assert tags["k0"] == "again"
    assert "k50" not in tags


def test_tagging_unknown_resources(sns: Any, endpoint_arn: str) -> None:
    not_found = (
        404,
        {"Type": "Sender", "Code": "ResourceNotFound", "Message": "Resource does not exist"},
    )
    application_arn = endpoint_arn.replace(":endpoint/", ":app/").rsplit("/", 1)[0]
    for arn in (PREFIX + unique("missing"), endpoint_arn, application_arn):
        with pytest.raises(ClientError) as err:
            sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}])
        assert error(err) == not_found
        with pytest.raises(ClientError) as err:
            sns.untag_resource(ResourceArn=arn, TagKeys=["a"])
        assert error(err) == not_found
        with pytest.raises(ClientError) as err:
            sns.list_tags_for_resource(ResourceArn=arn)
        assert error(err) == not_found


def test_tags_go_with_the_topic(sns: Any) -> None:
    name = unique()
    arn = sns.create_topic(Name=name, Tags=[{"Key": "a", "Value": "1"}])["TopicArn"]
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(ClientError) as err:
        sns.list_tags_for_resource(ResourceArn=arn)
    assert error(err)[1]["Code"] == "ResourceNotFound"
    sns.create_topic(Name=name)
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == []


# -- malformed ARNs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "elements"),
    [("nope", 1), ("arn:aws:sns", 3), (f"arn:aws:sns:{REGION}:{ACCOUNT}", 5)],
)
def test_malformed_topic_arns(sns: Any, value: str, elements: int) -> None:
    message = (
        f"Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not {elements}"
    )
    calls = [
        lambda: sns.get_topic_attributes(TopicArn=value),
        lambda: sns.set_topic_attributes(
            TopicArn=value, AttributeName="DisplayName", AttributeValue="x"
        ),
        lambda: sns.delete_topic(TopicArn=value),
        lambda: sns.subscribe(TopicArn=value, Protocol="http", Endpoint="http://127.0.0.1:9/"),
        lambda: sns.list_subscriptions_by_topic(TopicArn=value),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert error(err) == invalid(message)


@pytest.mark.parametrize(
    "value",
    [
        f"arn:aws:sns:{REGION}:{ACCOUNT}:app/GCM/name",
        f"arn:aws:sns:{REGION}:{ACCOUNT}:{'x'}:{'y'}",
    ],
)
def test_topic_arns_that_are_not_topics(sns: Any, value: str) -> None:
    with pytest.raises(ClientError) as err:
        sns.get_topic_attributes(TopicArn=value)
    assert error(err) == invalid("Invalid parameter: TopicArn")
