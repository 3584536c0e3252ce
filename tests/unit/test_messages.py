"""Tests for pushgate.domain.messages: every Publish / PublishBatch text of sec. 4.20-4.21."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import botocore.session
import pytest
from botocore.serialize import create_serializer
from hypothesis import given
from hypothesis import strategies as st

from pushgate.api.sns.params import Params, attribute_map
from pushgate.domain import messages
from pushgate.domain.errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidParameter,
    ParameterValueInvalid,
    SnsError,
    TooManyEntriesInBatchRequest,
    ValidationError,
)
from pushgate.domain.messages import MessageAttribute


def _error(exc: pytest.ExceptionInfo[SnsError]) -> tuple[str, int, str]:
    return exc.value.code, exc.value.status, exc.value.message


def _attrs(**fields: dict[str, str]) -> dict[str, MessageAttribute]:
    return messages.parse_message_attributes(fields)


# --- steps 2 and 3: subject and message ----------------------------------------------------------


@pytest.mark.parametrize("subject", [None, "s", "x" * 99, "Grüße ✓", "a; b: c!"])
def test_valid_subjects(subject: str | None) -> None:
    messages.validate_subject(subject)


@pytest.mark.parametrize("subject", ["", "x" * 100, "line\nbreak", "cr\r", "tab\t", "nul\x00"])
def test_invalid_subjects(subject: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        messages.validate_subject(subject)
    assert _error(exc) == ("InvalidParameter", 400, "Invalid parameter: Subject")


def test_empty_message() -> None:
    messages.validate_message_text(" ")
    with pytest.raises(InvalidParameter) as exc:
        messages.validate_message_text("")
    assert _error(exc) == ("InvalidParameter", 400, "Invalid parameter: Empty message")


# --- step 4: message attributes ------------------------------------------------------------------


def test_attribute_values_by_type() -> None:
    parsed = _attrs(
        s={"DataType": "String", "StringValue": "v"},
        n={"DataType": "Number", "StringValue": "12.5"},
        b={"DataType": "Binary", "BinaryValue": "AAFoaQ=="},
        a={"DataType": "String.Array", "StringValue": '["a","b"]'},
        c={"DataType": "Binary.gif", "BinaryValue": "R0lG"},
    )
    assert parsed == {
        "s": MessageAttribute("s", "String", "v"),
        "n": MessageAttribute("n", "Number", "12.5"),
        "b": MessageAttribute("b", "Binary", b"\x00\x01hi"),
        "a": MessageAttribute("a", "String.Array", '["a","b"]'),
        "c": MessageAttribute("c", "Binary.gif", b"GIF"),
    }
    assert list(parsed) == ["s", "n", "b", "a", "c"]


def test_both_value_fields_use_the_one_of_the_type() -> None:
    parsed = _attrs(s={"DataType": "String", "StringValue": "v", "BinaryValue": "AA=="})
    assert parsed["s"].value == "v"


_BAD_CHAR = (
    "Invalid non-alphanumeric character '{}' was found in the message attribute name. Can only "
    "include alphanumeric characters, hyphens, underscores, or dots."
)
_INVALID_TYPE = (
    "The message attribute '{}' has an invalid message attribute type, the set of supported "
    "type prefixes is Binary, Number, and String."
)
_EMPTY = (
    "The message attribute '{}' must contain non-empty message attribute value for message "
    "attribute type '{}'."
)


@pytest.mark.parametrize(
    ("name", "fields", "text"),
    [
        pytest.param(
            "a",
            {"DataType": "Integer", "StringValue": "1"},
            _INVALID_TYPE.format("a"),
            id="unknown-type",
        ),
        pytest.param(
            "a", {"DataType": "string", "StringValue": "1"}, _INVALID_TYPE.format("a"), id="case"
        ),
        pytest.param(
            "a", {"DataType": "String.", "StringValue": "1"}, _INVALID_TYPE.format("a"), id="dot"
        ),
        pytest.param(
            "a", {"DataType": "", "StringValue": "1"}, _INVALID_TYPE.format("a"), id="empty-type"
        ),
        pytest.param(
            "a", {"DataType": "Strings", "StringValue": "1"}, _INVALID_TYPE.format("a"), id="suffix"
        ),
        pytest.param("a", {"DataType": "String"}, _EMPTY.format("a", "String"), id="no-value"),
        pytest.param(
            "a", {"DataType": "String", "StringValue": ""}, _EMPTY.format("a", "String"), id="s"
        ),
        pytest.param(
            "a", {"DataType": "Binary", "BinaryValue": ""}, _EMPTY.format("a", "Binary"), id="b"
        ),
        pytest.param(
            "a", {"DataType": "Number", "StringValue": ""}, _EMPTY.format("a", "Number"), id="n"
        ),
        pytest.param(
            "a",
            {"DataType": "String.x", "StringValue": ""},
            _EMPTY.format("a", "String.x"),
            id="custom",
        ),
        pytest.param(
            "a",
            {"DataType": "String", "BinaryValue": "AA=="},
            "The message attribute 'a' with type 'String' must use field 'String'.",
            id="string-binary",
        ),
        pytest.param(
            "a",
            {"DataType": "Number", "BinaryValue": "AA=="},
            "The message attribute 'a' with type 'Number' must use field 'String'.",
            id="number-binary",
        ),
        pytest.param(
            "a",
            {"DataType": "Binary", "StringValue": "x"},
            "The message attribute 'a' with type 'Binary' must use field 'Binary'.",
            id="binary-string",
        ),
        pytest.param(
            "a" * 256,
            {"DataType": "String", "StringValue": "x"},
            "Length of message attribute name must be less than 256 bytes.",
            id="name-256",
        ),
        pytest.param(
            "ü" * 128,
            {"DataType": "String", "StringValue": "x"},
            "Length of message attribute name must be less than 256 bytes.",
            id="name-256-bytes",
        ),
        pytest.param(
            "a^b", {"DataType": "String", "StringValue": "x"}, _BAD_CHAR.format("#x5E"), id="^"
        ),
        pytest.param(
            "a b", {"DataType": "String", "StringValue": "x"}, _BAD_CHAR.format("#x20"), id="space"
        ),
        pytest.param(
            "ü", {"DataType": "String", "StringValue": "x"}, _BAD_CHAR.format("#xFC"), id="umlaut"
        ),
        pytest.param(
            "a😀",
            {"DataType": "String", "StringValue": "x"},
            _BAD_CHAR.format("#x1F600"),
            id="emoji",
        ),
        pytest.param(
            ".a",
            {"DataType": "String", "StringValue": "x"},
            "Invalid message attribute name starting with character '.' was found.",
            id="leading-dot",
        ),
        pytest.param(
            "a.",
            {"DataType": "String", "StringValue": "x"},
            "Invalid message attribute name ending with character '.' was found.",
            id="trailing-dot",
        ),
        pytest.param(
            "a..b",
            {"DataType": "String", "StringValue": "x"},
            "Message attribute name can not have successive '.' character.",
            id="double-dot",
        ),
        pytest.param(
            "a..b#",
            {"DataType": "String", "StringValue": "x"},
            "Message attribute name can not have successive '.' character.",
            id="first-problem-wins",
        ),
        pytest.param(
            "",
            {"DataType": "String", "StringValue": "x"},
            messages.ATTRIBUTE_NAME_EMPTY,
            id="empty-name",
        ),
        pytest.param(
            "n",
            {"DataType": "Number", "StringValue": "abc"},
            "Could not cast message attribute 'n' value to number.",
            id="nan",
        ),
    ],
)
def test_attribute_errors(name: str, fields: dict[str, str], text: str) -> None:
    with pytest.raises(ParameterValueInvalid) as exc:
        messages.parse_message_attributes({name: fields})
    assert _error(exc) == ("ParameterValueInvalid", 400, text)


def test_name_of_255_bytes_is_fine() -> None:
    assert _attrs(**{"a" * 255: {"DataType": "String", "StringValue": "x"}})


def test_missing_data_type_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as exc:
        _attrs(k={"StringValue": "x"})
    assert _error(exc) == (
        "ValidationError",
        400,
        "1 validation error detected: Value null at 'messageAttributes.k.member.dataType' "
        "failed to satisfy constraint: Member must not be null",
    )


def test_missing_data_type_in_a_batch_entry_names_the_entry() -> None:
    with pytest.raises(ValidationError) as exc:
        messages.parse_message_attributes(
            {"k": {"StringValue": "x"}}, messages.batch_member_prefix(3)
        )
    assert exc.value.message == (
        "1 validation error detected: Value null at "
        "'publishBatchRequestEntries.3.member.messageAttributes.k.member.dataType' "
        "failed to satisfy constraint: Member must not be null"
    )


def test_name_is_checked_before_data_type() -> None:
    with pytest.raises(ParameterValueInvalid):
        _attrs(**{"a#": {"StringValue": "x"}})


def test_attributes_are_checked_in_order() -> None:
    with pytest.raises(ParameterValueInvalid) as exc:
        _attrs(
            first={"DataType": "Bogus", "StringValue": "x"},
            second={"DataType": "String", "StringValue": ""},
        )
    assert "'first'" in exc.value.message


@pytest.mark.parametrize(
    "value",
    ["0", "-1", "+1", "12.5", ".5", "5.", "1e3", "-2.5E-3", "1700000000123", "1" * 40],
)
def test_numbers(value: str) -> None:
    # Beyond ±10^9 is a filter-matching limit, not a Publish error (epoch milliseconds pass).
    assert _attrs(n={"DataType": "Number", "StringValue": value})["n"].value == value


@pytest.mark.parametrize(
    "value", ["abc", "1,5", "1 ", " 1", "NaN", "inf", "0x10", "1e", "--1", "."]
)
def test_not_numbers(value: str) -> None:
    with pytest.raises(ParameterValueInvalid, match="Could not cast message attribute 'n'"):
        _attrs(n={"DataType": "Number.float", "StringValue": value})


def test_invalid_base64() -> None:
    with pytest.raises(ParameterValueInvalid) as exc:
        _attrs(b={"DataType": "Binary", "BinaryValue": "not base64!"})
    assert exc.value.message == (
        "The message attribute 'b' has an invalid base64 encoded binary value."
    )


@pytest.mark.parametrize(
    "name",
    [
        "AWS.SNS.MOBILE.APNS.TTL",
        "AWS.SNS.MOBILE.FCM.TTL",
        "AWS.SNS.SMS.SenderID",
        "AWS.MM.SMS.OriginationNumber",
        "AWSx",
        "aws",
        "Amazonian",
        "pushgate.IdempotencyKey",
    ],
)
def test_allowed_names(name: str) -> None:
    assert name in _attrs(**{name: {"DataType": "String", "StringValue": "1"}})


@pytest.mark.parametrize(
    "name",
    ["AWS.x", "aws.x", "Aws.SNS.MOBILE.x", "aws.sns.mobile.APNS.TTL", "Amazon.x", "AMAZON.y"],
)
def test_reserved_prefixes(name: str) -> None:
    with pytest.raises(ParameterValueInvalid) as exc:
        _attrs(**{name: {"DataType": "String", "StringValue": "1"}})
    assert exc.value.message == (
        f"The message attribute name '{name}' is reserved: names may not start with 'AWS.' or "
        "'Amazon.' (in any case)."
    )


_NAME_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SEGMENT = st.text(_NAME_CHARS, min_size=1, max_size=20)


@given(st.lists(_SEGMENT, min_size=1, max_size=8).map(".".join), st.text(min_size=1))
def test_any_valid_name_round_trips(name: str, value: str) -> None:
    if name.lower().startswith(("aws.", "amazon.")):
        name = "x" + name
    parsed = _attrs(**{name: {"DataType": "String", "StringValue": value}})
    assert parsed == {name: MessageAttribute(name, "String", value)}


def test_botocore_wire_format_parses() -> None:
    """The exact form botocore produces decodes and validates to the attributes it was given."""
    model = botocore.session.get_session().get_service_model("sns")
    request = create_serializer("query").serialize_to_request(
        {
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": "m",
            "MessageAttributes": {
                "s": {"DataType": "String", "StringValue": "v"},
                "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01hi"},
                "n": {"DataType": "Number", "StringValue": "1"},
            },
        },
        model.operation_model("Publish"),
    )
    body = request["body"]
    assert body["MessageAttributes.entry.2.Name"] == "b"
    assert body["MessageAttributes.entry.2.Value.BinaryValue"] == "AAFoaQ=="
    parsed = messages.parse_message_attributes(Params(body).attribute_map("MessageAttributes"))
    assert parsed == {
        "s": MessageAttribute("s", "String", "v"),
        "b": MessageAttribute("b", "Binary", b"\x00\x01hi"),
        "n": MessageAttribute("n", "Number", "1"),
    }

    batch = create_serializer("query").serialize_to_request(
        {
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "PublishBatchRequestEntries": [
                {
                    "Id": "m1",
                    "Message": "m",
                    "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
                }
            ],
        },
        model.operation_model("PublishBatch"),
    )
    entries = Params(batch["body"]).structures("PublishBatchRequestEntries")
    assert entries is not None
    messages.validate_batch_entries(entries)
    attrs = attribute_map(entries[0], "MessageAttributes")
    assert messages.parse_message_attributes(attrs, messages.batch_member_prefix(1)) == {
        "k": MessageAttribute("k", "String", "v")
    }


# --- step 5: size ------------------------------------------------------------------------------


def test_message_size_counts_utf8_bytes_of_every_part() -> None:
    attrs = _attrs(
        k={"DataType": "String", "StringValue": "é"},
        bin={"DataType": "Binary", "BinaryValue": "AAFoaQ=="},
    )
    # "hé" 3 + k/String/é 1+6+2 + bin/Binary/4 bytes 3+6+4
    assert messages.message_size("hé", attrs) == 3 + 9 + 13
    assert messages.message_size("", {}) == 0


def test_message_too_long() -> None:
    attrs = _attrs(k={"DataType": "String", "StringValue": "v"})  # 1 + 6 + 1 = 8
    assert messages.validate_message_size("x" * 92, attrs, 100) == 100
    with pytest.raises(InvalidParameter) as exc:
        messages.validate_message_size("x" * 93, attrs, 100)
    assert _error(exc) == ("InvalidParameter", 400, "Invalid parameter: Message too long")


def test_default_maximum_is_256_kib() -> None:
    messages.validate_message_size("x" * 262_144, {})
    with pytest.raises(InvalidParameter):
        messages.validate_message_size("é" * 131_073, {})


# --- step 6: JSON structure ----------------------------------------------------------------------

_NOT_JSON = "Invalid parameter: Message Structure - JSON message body failed to parse"
_NO_DEFAULT = "Invalid parameter: Message Structure - No default entry in JSON message body"


@pytest.mark.parametrize(
    "body", ["", "{", "not json", '{"default": "x"', "[1, 2]", '"text"', "1", "[" * 100_000]
)
def test_structure_that_does_not_parse(body: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        messages.parse_structure(body, require_default=False)
    assert _error(exc) == ("InvalidParameter", 400, _NOT_JSON)


@pytest.mark.parametrize(
    "body", ["{}", '{"GCM": "{}"}', '{"default": 1}', '{"default": null}', '{"default": {"a": 1}}']
)
def test_structure_without_a_string_default(body: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        messages.parse_structure(body, require_default=True)
    assert _error(exc) == ("InvalidParameter", 400, _NO_DEFAULT)


def test_structure_keeps_strings_and_the_last_duplicate() -> None:
    body = '{"default": "a", "APNS": {"aps": {}}, "GCM": "{}", "x": 1, "default": "b", "any": ""}'
    assert messages.parse_structure(body, require_default=True) == {
        "default": "b",
        "GCM": "{}",
        "any": "",
    }


def test_structure_without_default_for_a_direct_publish() -> None:
    structure = messages.parse_structure('{"APNS": "{}"}', require_default=False)
    assert structure == {"APNS": "{}"}
    messages.require_entry(structure, "APNS")
    messages.require_entry({"default": "x"}, "GCM")
    with pytest.raises(InvalidParameter) as exc:
        messages.require_entry(structure, "GCM")
    assert exc.value.message == _NO_DEFAULT


@given(st.dictionaries(st.text(), st.text()).map(lambda d: {**d, "default": d.get("default", "")}))
def test_structure_round_trips(structure: dict[str, str]) -> None:
    body = json.dumps(structure)
    assert messages.parse_structure(body, require_default=True) == structure


# --- step 7: FIFO --------------------------------------------------------------------------------


def _fifo(
    *,
    fifo_topic: bool = True,
    content_based_deduplication: bool = False,
    group_id: str | None = "g",
    deduplication_id: str | None = "d",
) -> None:
    messages.validate_fifo(
        fifo_topic=fifo_topic,
        content_based_deduplication=content_based_deduplication,
        group_id=group_id,
        deduplication_id=deduplication_id,
    )


def test_fifo_rules() -> None:
    _fifo()
    _fifo(deduplication_id=None, content_based_deduplication=True)
    _fifo(fifo_topic=False, deduplication_id=None)  # a group id on a standard topic is fine
    with pytest.raises(InvalidParameter) as exc:
        _fifo(group_id=None)
    assert (
        exc.value.message
        == messages.FIFO_GROUP_REQUIRED
        == ("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
    )
    with pytest.raises(InvalidParameter) as exc:
        _fifo(deduplication_id=None)
    assert exc.value.message == (
        "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )
    with pytest.raises(InvalidParameter) as exc:
        _fifo(fifo_topic=False)
    assert exc.value.message == (
        "Invalid parameter: MessageDeduplicationId Reason: The request includes "
        "MessageDeduplicationId parameter that is not valid for this topic type"
    )


@pytest.mark.parametrize("value", ["a" * 128, "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "x"])
def test_fifo_ids(value: str) -> None:
    messages.validate_group_id(value)
    messages.validate_deduplication_id(value)


@pytest.mark.parametrize("value", ["a" * 129, "", "a b", "é"])
def test_bad_fifo_ids(value: str) -> None:
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: MessageGroupId Reason: "):
        messages.validate_group_id(value)
    with pytest.raises(InvalidParameter) as exc:
        messages.validate_deduplication_id(value)
    assert exc.value.message == (
        "Invalid parameter: MessageDeduplicationId Reason: MessageDeduplicationId can only "
        "include alphanumeric and punctuation characters. 1 to 128 in length."
    )


# --- PublishBatch, sec. 4.21 ----------------------------------------------------------------------


def _entries(*ids: str) -> list[dict[str, str]]:
    return [{"Id": i, "Message": "m"} for i in ids]


def test_batch_of_one_to_ten() -> None:
    messages.validate_batch_entries(_entries("a"))
    messages.validate_batch_entries(_entries(*"abcdefghij"))


def test_empty_batch() -> None:
    with pytest.raises(EmptyBatchRequest) as exc:
        messages.validate_batch_entries([])
    assert _error(exc) == (
        "EmptyBatchRequest",
        400,
        "The batch request doesn't contain any entries.",
    )


def test_too_many_entries() -> None:
    with pytest.raises(TooManyEntriesInBatchRequest) as exc:
        messages.validate_batch_entries(_entries(*"abcdefghijk"))
    assert _error(exc) == (
        "TooManyEntriesInBatchRequest",
        400,
        "The batch request contains more entries than permissible.",
    )


def test_batch_ids_not_distinct() -> None:
    with pytest.raises(BatchEntryIdsNotDistinct) as exc:
        messages.validate_batch_entries(_entries("a", "b", "a"))
    assert _error(exc) == (
        "BatchEntryIdsNotDistinct",
        400,
        "Two or more batch entries in the request have the same Id.",
    )


def test_batch_id_rules() -> None:
    messages.validate_batch_entries(_entries("A-z_0" + "x" * 75))
    with pytest.raises(InvalidBatchEntryId) as exc:
        messages.validate_batch_entries(_entries("x" * 81))
    assert _error(exc) == (
        "InvalidBatchEntryId",
        400,
        "The Id of a batch entry in the batch request is too long: " + "x" * 81,
    )
    for bad in ("a.b", "a b", "ü", ""):
        with pytest.raises(InvalidBatchEntryId) as exc:
            messages.validate_batch_entries(_entries("ok", bad))
        assert exc.value.message == (
            "The Id of a batch entry in the batch request contains an impermissible "
            f"character: {bad}"
        )


def test_invalid_id_is_reported_before_duplicates() -> None:
    with pytest.raises(InvalidBatchEntryId):
        messages.validate_batch_entries(_entries("a", "a", "b!"))


@pytest.mark.parametrize(("member", "path"), [("Id", "id"), ("Message", "message")])
def test_batch_entry_without_a_required_member(member: str, path: str) -> None:
    entries = _entries("a", "b")
    del entries[1][member]
    with pytest.raises(ValidationError) as exc:
        messages.validate_batch_entries(entries)
    assert exc.value.message == (
        f"1 validation error detected: Value null at 'publishBatchRequestEntries.2.member.{path}' "
        "failed to satisfy constraint: Member must not be null"
    )


@dataclass(frozen=True)
class _Entry:
    message: str
    attributes: dict[str, MessageAttribute] | None = field(default=None)


def test_batch_size() -> None:
    attrs = _attrs(k={"DataType": "String", "StringValue": "v"})  # 8 bytes
    entries = [_Entry("x" * 50, attrs), _Entry("é" * 21)]  # 58 + 42
    assert messages.batch_size(entries) == 100
    messages.check_batch_size(entries, 100)
    with pytest.raises(BatchRequestTooLong) as exc:
        messages.check_batch_size(entries, 99)
    assert _error(exc) == (
        "BatchRequestTooLong",
        400,
        "The length of all the messages put together is more than the limit.",
    )
    messages.check_batch_size([_Entry("x" * 262_144)])
    with pytest.raises(BatchRequestTooLong):
        messages.check_batch_size([_Entry("x" * 262_144), _Entry("y")])
