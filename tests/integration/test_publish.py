"""Publish and PublishBatch validation through boto3: every error code and text of
specs/sns-api.md sec. 4.20 and 4.21, on both stores. Delivery itself is
``test_delivery.py``'s; here nothing needs a provider."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, unique


def _error(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def _invalid(text: str) -> tuple[str, str, int]:
    return ("InvalidParameter", text, 400)


@pytest.fixture(scope="module")
def app(sns: Any) -> str:
    return str(
        sns.create_platform_application(
            Name=unique("pub"), Platform="GCM", Attributes={"PlatformCredential": "AIzaKey"}
        )["PlatformApplicationArn"]
    )


@pytest.fixture
def target(sns: Any, app: str) -> str:
    return str(
        sns.create_platform_endpoint(PlatformApplicationArn=app, Token=unique("tok"))["EndpointArn"]
    )


@pytest.fixture(scope="module")
def topic(sns: Any) -> str:
    return str(sns.create_topic(Name=unique("pub"))["TopicArn"])


@pytest.fixture(scope="module")
def fifo(sns: Any) -> str:
    return str(
        sns.create_topic(Name=unique("pub") + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    )


def _attr(value: str, data_type: str = "String") -> dict[str, str]:
    return {"DataType": data_type, "StringValue": value}


def test_publish_answers_a_uuid(sns: Any, target: str, topic: str) -> None:
    for params in ({"TargetArn": target}, {"TopicArn": topic}, {"TargetArn": topic}):
        message_id = sns.publish(Message="hi", **params)["MessageId"]
        assert str(uuid.UUID(message_id)) == message_id


def test_target_rules(sns: Any, target: str, topic: str) -> None:
    assert _error(sns.publish, Message="m") == _invalid(
        "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter"
    )
    code, _, status = _error(sns.publish, Message="m", TopicArn=topic, TargetArn=target)
    assert (code, status) == ("InvalidParameter", 400)
    missing = target.rsplit("/", 1)[0] + "/" + str(uuid.uuid4())
    assert _error(sns.publish, Message="m", TargetArn=missing) == _invalid(
        "Invalid parameter: TargetArn Reason: No endpoint found for the target arn specified"
    )
    assert _error(sns.publish, Message="m", TopicArn=topic + "-gone") == (
        "NotFound",
        "Topic does not exist",
        404,
    )
    other_region = topic.replace(REGION, "eu-west-1")
    assert _error(sns.publish, Message="m", TopicArn=other_region) == _invalid(
        "Invalid parameter: TopicArn"
    )
    assert _error(sns.publish, Message="m", PhoneNumber="12") == _invalid(
        "Invalid parameter: PhoneNumber Reason: 12 is not valid to publish to"
    )


def test_subject_and_message(sns: Any, topic: str) -> None:
    assert _error(sns.publish, TopicArn=topic, Message="") == _invalid(
        "Invalid parameter: Empty message"
    )
    assert _error(sns.publish, TopicArn=topic, Message="m", Subject="") == _invalid(
        "Invalid parameter: Subject"
    )
    code, _, _ = _error(sns.publish, TopicArn=topic, Message="m", Subject="line\nbreak")
    assert code == "InvalidParameter"
    code, _, _ = _error(sns.publish, TopicArn=topic, Message="m", Subject="s" * 100)
    assert code == "InvalidParameter"


def test_message_too_long_counts_attributes(sns: Any, topic: str) -> None:
    limit = 262_144
    sns.publish(TopicArn=topic, Message="x" * limit)
    assert _error(sns.publish, TopicArn=topic, Message="x" * (limit + 1)) == _invalid(
        "Invalid parameter: Message too long"
    )
    attributes = {"a": _attr("v")}  # 1 + 6 + 1 bytes
    assert _error(
        sns.publish, TopicArn=topic, Message="x" * (limit - 7), MessageAttributes=attributes
    ) == _invalid("Invalid parameter: Message too long")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "n",
            {"DataType": "Float", "StringValue": "1"},
            "The message attribute 'n' has an invalid message attribute type, the set of "
            "supported type prefixes is Binary, Number, and String.",
        ),
        (
            "n",
            {"DataType": "String", "StringValue": ""},
            "The message attribute 'n' must contain non-empty message attribute value for "
            "message attribute type 'String'.",
        ),
        (
            "n",
            {"DataType": "String", "BinaryValue": b"x"},
            "The message attribute 'n' with type 'String' must use field 'String'.",
        ),
        (
            "n",
            {"DataType": "Number", "StringValue": "ten"},
            "Could not cast message attribute 'n' value to number.",
        ),
        (
            "a^b",
            _attr("v"),
            "Invalid non-alphanumeric character '#x5E' was found in the message attribute "
            "name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
        ),
        (".a", _attr("v"), "Invalid message attribute name starting with character '.' was found."),
        ("a.", _attr("v"), "Invalid message attribute name ending with character '.' was found."),
        ("a..b", _attr("v"), "Message attribute name can not have successive '.' character."),
        ("n" * 256, _attr("v"), "Length of message attribute name must be less than 256 bytes."),
    ],
)
def test_message_attribute_rules(
    sns: Any, topic: str, name: str, value: dict[str, Any], message: str
) -> None:
    assert _error(sns.publish, TopicArn=topic, Message="m", MessageAttributes={name: value}) == (
        "ParameterValueInvalid",
        message,
        400,
    )


def test_good_message_attributes_are_accepted(sns: Any, topic: str) -> None:
    sns.publish(
        TopicArn=topic,
        Message="m",
        MessageAttributes={
            "s": _attr("text"),
            "n": {"DataType": "Number", "StringValue": "-12.5"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
            "custom": {"DataType": "String.Custom", "StringValue": "x"},
            "AWS.SNS.MOBILE.APNS.PRIORITY": _attr("5"),
        },
    )


def test_json_structure_rules(sns: Any, topic: str, target: str) -> None:
    assert _error(
        sns.publish, TopicArn=topic, Message="{not json", MessageStructure="json"
    ) == _invalid("Invalid parameter: Message Structure - JSON message body failed to parse")
    no_default = _invalid(
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    )
    for body in ({"GCM": "{}"}, {"default": 1}):
        assert (
            _error(sns.publish, TopicArn=topic, Message=json.dumps(body), MessageStructure="json")
            == no_default
        )
    # To an endpoint, the platform's own key is enough.
    sns.publish(TargetArn=target, Message=json.dumps({"GCM": "{}"}), MessageStructure="json")
    assert (
        _error(
            sns.publish,
            TargetArn=target,
            Message=json.dumps({"APNS": "{}"}),
            MessageStructure="json",
        )
        == no_default
    )


def test_disabled_targets(sns: Any, app: str, target: str) -> None:
    sns.set_endpoint_attributes(EndpointArn=target, Attributes={"Enabled": "false"})
    assert _error(sns.publish, TargetArn=target, Message="m") == (
        "EndpointDisabled",
        "Endpoint is disabled",
        400,
    )
    # The target is checked before the JSON structure, as on AWS.
    assert _error(sns.publish, TargetArn=target, Message="{", MessageStructure="json")[0] == (
        "EndpointDisabled"
    )
    sns.set_endpoint_attributes(EndpointArn=target, Attributes={"Enabled": "true"})
    sns.set_platform_application_attributes(
        PlatformApplicationArn=app, Attributes={"Enabled": "false"}
    )
    try:
        assert _error(sns.publish, TargetArn=target, Message="m") == (
            "PlatformApplicationDisabled",
            "Platform application is disabled",
            400,
        )
    finally:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=app, Attributes={"Enabled": "true"}
        )


def test_fifo_rules(sns: Any, topic: str, fifo: str) -> None:
    assert _error(sns.publish, TopicArn=topic, Message="m", MessageDeduplicationId="d") == _invalid(
        "Invalid parameter: MessageDeduplicationId Reason: The request includes "
        "MessageDeduplicationId parameter that is not valid for this topic type"
    )
    assert _error(sns.publish, TopicArn=fifo, Message="m") == _invalid(
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
    )
    assert _error(sns.publish, TopicArn=fifo, Message="m", MessageGroupId="g") == _invalid(
        "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )
    first = sns.publish(TopicArn=fifo, Message="m", MessageGroupId="g", MessageDeduplicationId="d")
    again = sns.publish(TopicArn=fifo, Message="m", MessageGroupId="g", MessageDeduplicationId="d")
    assert first["MessageId"] == again["MessageId"]
    assert first["SequenceNumber"].isdigit() and len(first["SequenceNumber"]) == 20


# --- PublishBatch ---------------------------------------------------------------------


def _entries(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"Id": f"e{i}", "Message": f"message {i}", **extra} for i in range(count)]


def test_publish_batch_succeeds_per_entry(sns: Any, topic: str) -> None:
    result = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=_entries(10))
    assert [s["Id"] for s in result["Successful"]] == [f"e{i}" for i in range(10)]
    assert len({s["MessageId"] for s in result["Successful"]}) == 10
    assert result["Failed"] == []


def test_publish_batch_request_rules(sns: Any, topic: str) -> None:
    batch = sns.publish_batch
    assert _error(batch, TopicArn=topic, PublishBatchRequestEntries=_entries(11)) == (
        "TooManyEntriesInBatchRequest",
        "The batch request contains more entries than permissible.",
        400,
    )
    assert _error(batch, TopicArn=topic, PublishBatchRequestEntries=[]) == (
        "EmptyBatchRequest",
        "The batch request doesn't contain any entries.",
        400,
    )
    same = [{"Id": "x", "Message": "a"}, {"Id": "x", "Message": "b"}]
    assert _error(batch, TopicArn=topic, PublishBatchRequestEntries=same) == (
        "BatchEntryIdsNotDistinct",
        "Two or more batch entries in the request have the same Id.",
        400,
    )
    long_id = "i" * 81
    assert _error(
        batch, TopicArn=topic, PublishBatchRequestEntries=[{"Id": long_id, "Message": "a"}]
    ) == (
        "InvalidBatchEntryId",
        f"The Id of a batch entry in the batch request is too long: {long_id}",
        400,
    )
    assert _error(
        batch, TopicArn=topic, PublishBatchRequestEntries=[{"Id": "a.b", "Message": "a"}]
    ) == (
        "InvalidBatchEntryId",
        "The Id of a batch entry in the batch request contains an impermissible character: a.b",
        400,
    )
    big = [{"Id": f"e{i}", "Message": "x" * 30_000} for i in range(9)]
    assert _error(batch, TopicArn=topic, PublishBatchRequestEntries=big) == (
        "BatchRequestTooLong",
        "The length of all the messages put together is more than the limit.",
        400,
    )
    gone = f"arn:aws:sns:{REGION}:{ACCOUNT}:{unique('gone')}"
    assert _error(batch, TopicArn=gone, PublishBatchRequestEntries=_entries(1)) == (
        "NotFound",
        "Topic does not exist",
        404,
    )


def test_publish_batch_bad_attribute_fails_the_whole_call(sns: Any, topic: str) -> None:
    entries = _entries(2)
    entries[1]["MessageAttributes"] = {"n": {"DataType": "Number", "StringValue": "x"}}
    assert _error(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=entries) == (
        "ParameterValueInvalid",
        "Could not cast message attribute 'n' value to number.",
        400,
    )


def test_publish_batch_on_fifo_reports_failed_entries(sns: Any, fifo: str) -> None:
    entries = [
        {"Id": "ok", "Message": "a", "MessageGroupId": "g", "MessageDeduplicationId": "1"},
        {"Id": "nogroup", "Message": "b", "MessageDeduplicationId": "2"},
    ]
    result = sns.publish_batch(TopicArn=fifo, PublishBatchRequestEntries=entries)
    (ok,) = result["Successful"]
    assert ok["Id"] == "ok" and ok["SequenceNumber"].isdigit()
    (failed,) = result["Failed"]
    assert failed == {
        "Id": "nogroup",
        "Code": "InvalidParameter",
        "Message": "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
        "SenderFault": True,
    }
