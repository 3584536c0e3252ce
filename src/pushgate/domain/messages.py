"""What Publish and PublishBatch receive, validated (specs/sns-api.md sec. 4.20, 4.21, 7).

Pure functions, no I/O: the API layer decodes the form, calls these in the order of sec.
4.20 (subject, message, attributes, size, then the JSON structure), and looks up the target
in between where the spec says so. Every error is one of :mod:`pushgate.domain.errors`,
with SNS's exact text where the spec records it.

Message attributes on the wire (checked with botocore 1.44's own ``query`` serializer and the
``sns`` service model): ``MessageAttributeMap`` is a non-flattened map whose key is named
``Name`` and whose value is named ``Value``; the value is a structure of ``DataType``,
``StringValue`` and ``BinaryValue``, and a blob is sent base64-encoded::

    MessageAttributes.entry.1.Name=a
    MessageAttributes.entry.1.Value.DataType=String
    MessageAttributes.entry.1.Value.StringValue=v
    MessageAttributes.entry.2.Name=b
    MessageAttributes.entry.2.Value.DataType=Binary
    MessageAttributes.entry.2.Value.BinaryValue=AAFoaQ==

and inside PublishBatch the same under each entry,
``PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=a``.
``api.sns.params.attribute_map`` groups those keys into ``{name: {"DataType": ...}}``, the
input of :func:`parse_message_attributes`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pushgate.domain.errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidParameter,
    ParameterValueInvalid,
    TooManyEntriesInBatchRequest,
    ValidationError,
)

DEFAULT_MAX_MESSAGE_SIZE = 262_144  # a topic's default MaximumMessageSize (sec. 7)
MAX_SUBJECT_CHARS = 99  # "must be less than 100 characters"
MAX_ATTRIBUTE_NAME_BYTES = 255  # "must be less than 256 bytes"
MAX_BATCH_ENTRIES = 10
MAX_BATCH_ID_CHARS = 80
MAX_FIFO_ID_CHARS = 128  # MessageGroupId / MessageDeduplicationId
# Documented for Number attributes, but a filter-policy matching limit: SNS accepts larger
# numbers at Publish (they just never match a numeric filter). Kept here for the filter code.
NUMBER_FILTER_LIMIT = 10**9

# --- texts (sec. 4.20 / 4.21) -----------------------------------------------------------------

INVALID_SUBJECT = "Invalid parameter: Subject"
EMPTY_MESSAGE = "Invalid parameter: Empty message"
MESSAGE_TOO_LONG = "Invalid parameter: Message too long"
STRUCTURE_NOT_JSON = "Invalid parameter: Message Structure - JSON message body failed to parse"
NO_DEFAULT_ENTRY = "Invalid parameter: Message Structure - No default entry in JSON message body"
FIFO_GROUP_REQUIRED = "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
FIFO_DEDUP_REQUIRED = (
    "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or "
    "MessageDeduplicationId provided explicitly"
)
DEDUP_ON_STANDARD_TOPIC = (
    "Invalid parameter: MessageDeduplicationId Reason: The request includes "
    "MessageDeduplicationId parameter that is not valid for this topic type"
)
# [I] SNS's text for a bad FIFO id is not recorded; this is SQS's, which SNS mirrors elsewhere.
_FIFO_ID_TEXT = (
    "Invalid parameter: {param} Reason: {param} can only include alphanumeric and punctuation "
    "characters. 1 to 128 in length."
)
ATTRIBUTE_NAME_TOO_LONG = "Length of message attribute name must be less than 256 bytes."
ATTRIBUTE_NAME_LEADING_DOT = "Invalid message attribute name starting with character '.' was found."
ATTRIBUTE_NAME_TRAILING_DOT = "Invalid message attribute name ending with character '.' was found."
ATTRIBUTE_NAME_DOUBLE_DOT = "Message attribute name can not have successive '.' character."
ATTRIBUTE_NAME_EMPTY = "Message attribute name can not be empty."  # [I]

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_RESERVED_PREFIXES = ("aws.", "amazon.")
_ALLOWED_RESERVED = ("AWS.SNS.MOBILE.", "AWS.SNS.SMS.", "AWS.MM.SMS.")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\..+)?", re.DOTALL)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]+")
# Alphanumeric and punctuation, as SQS defines it for FIFO ids.
_FIFO_ID = re.compile(
    r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]" + f"{{1,{MAX_FIFO_ID_CHARS}}}"
)


@dataclass(frozen=True, slots=True)
class MessageAttribute:
    """One validated message attribute. ``value`` is ``bytes`` for Binary types, else ``str``."""

    name: str
    data_type: str
    value: str | bytes


# --- Publish, sec. 4.20 steps 2-6 ---------------------------------------------------------------


def validate_subject(subject: str | None) -> None:
    """Step 2: absent is fine; empty, 100 characters or more, or control characters are not."""
    if subject is None:
        return
    if (
        not subject
        or len(subject) > MAX_SUBJECT_CHARS
        or any(unicodedata.category(ch) == "Cc" for ch in subject)
    ):
        raise InvalidParameter(INVALID_SUBJECT)


def validate_message_text(message: str) -> None:
    """Step 3: the message may not be empty (absent is the caller's ``ValidationError``)."""
    if not message:
        raise InvalidParameter(EMPTY_MESSAGE)


def _attribute_name_error(name: str) -> str | None:
    if len(name.encode()) > MAX_ATTRIBUTE_NAME_BYTES:
        return ATTRIBUTE_NAME_TOO_LONG
    if not name:
        return ATTRIBUTE_NAME_EMPTY
    if name[0] == ".":
        return ATTRIBUTE_NAME_LEADING_DOT
    if name[-1] == ".":
        return ATTRIBUTE_NAME_TRAILING_DOT
    previous = ""
    for ch in name:
        if ch not in _NAME_CHARS:
            return (
                f"Invalid non-alphanumeric character '#x{ord(ch):X}' was found in the message "
                "attribute name. Can only include alphanumeric characters, hyphens, "
                "underscores, or dots."
            )
        if ch == "." and previous == ".":
            return ATTRIBUTE_NAME_DOUBLE_DOT
        previous = ch
    if name.lower().startswith(_RESERVED_PREFIXES) and not name.startswith(_ALLOWED_RESERVED):
        # [I] SNS documents the reservation but its error text is not recorded.
        return (
            f"The message attribute name '{name}' is reserved: names may not start with "
            "'AWS.' or 'Amazon.' (in any case)."
        )
    return None


def _parse_attribute(name: str, fields: Mapping[str, str], member_prefix: str) -> MessageAttribute:
    error = _attribute_name_error(name)
    if error:
        raise ParameterValueInvalid(error)
    data_type = fields.get("DataType")
    if data_type is None:
        raise ValidationError.null(f"{member_prefix}.{name}.member.dataType")
    if not _DATA_TYPE.fullmatch(data_type):
        raise ParameterValueInvalid(
            f"The message attribute '{name}' has an invalid message attribute type, the set of "
            "supported type prefixes is Binary, Number, and String."
        )
    empty = (
        f"The message attribute '{name}' must contain non-empty message attribute value for "
        f"message attribute type '{data_type}'."
    )
    if "StringValue" not in fields and "BinaryValue" not in fields:
        raise ParameterValueInvalid(empty)
    binary = data_type.startswith("Binary")
    field = "Binary" if binary else "String"
    raw = fields.get(field + "Value")
    if raw is None:
        raise ParameterValueInvalid(
            f"The message attribute '{name}' with type '{data_type}' must use field '{field}'."
        )
    if not raw:
        raise ParameterValueInvalid(empty)
    if binary:
        try:
            return MessageAttribute(name, data_type, base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            # [I] botocore always sends valid base64; raw clients get this text.
            raise ParameterValueInvalid(
                f"The message attribute '{name}' has an invalid base64 encoded binary value."
            ) from None
    if data_type.startswith("Number") and not _NUMBER.fullmatch(raw):
        raise ParameterValueInvalid(f"Could not cast message attribute '{name}' value to number.")
    return MessageAttribute(name, data_type, raw)


def parse_message_attributes(
    entries: Mapping[str, Mapping[str, str]], member_prefix: str = "messageAttributes"
) -> dict[str, MessageAttribute]:
    """Step 4: validate each attribute in order and return them by name.

    ``entries`` maps a name to its value fields (``DataType``, ``StringValue``,
    ``BinaryValue``; the binary one still base64), as ``params.attribute_map`` returns them.
    Per attribute the checks run as SNS's (AWS-recorded) texts imply: name length, name
    characters and dots, reserved prefix, missing DataType (``ValidationError`` at
    ``{member_prefix}.{name}.member.dataType``), type prefix, no value at all, wrong value
    field, empty value, then Number syntax or base64. For PublishBatch entry N pass
    ``member_prefix=batch_member_prefix(N)``.

    A Number must be a decimal literal (``12``, ``-1.5``, ``.5``, ``3e2``). Its documented
    ±10^9 / 5-decimal range is a filter-matching limit, not a Publish error: SNS accepts
    e.g. epoch milliseconds and only numeric filters ignore them (see NUMBER_FILTER_LIMIT).
    """
    return {name: _parse_attribute(name, fields, member_prefix) for name, fields in entries.items()}


def message_size(message: str, attributes: Mapping[str, MessageAttribute]) -> int:
    """Step 5's measure: UTF-8 bytes of the message and of every attribute's name, type, value."""
    size = len(message.encode())
    for attribute in attributes.values():
        value = attribute.value
        size += len(attribute.name.encode()) + len(attribute.data_type.encode())
        size += len(value) if isinstance(value, bytes) else len(value.encode())
    return size


def validate_message_size(
    message: str,
    attributes: Mapping[str, MessageAttribute],
    max_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> int:
    """Step 5: ``Message too long`` above the topic's MaximumMessageSize; returns the size."""
    size = message_size(message, attributes)
    if size > max_size:
        raise InvalidParameter(MESSAGE_TOO_LONG)
    return size


def parse_structure(message: str, *, require_default: bool) -> dict[str, str]:
    """Step 6: a ``MessageStructure=json`` body as ``{transport key: string value}``.

    Non-string values are dropped (so a non-string ``default`` counts as missing), unknown
    keys kept, a repeated key keeps its last value. A body that is valid JSON but not an
    object fails to parse, as a map-typed JSON reader fails on it [I]. Topic publishes pass
    ``require_default=True``; a direct endpoint publish passes False and then calls
    :func:`require_entry` with its platform key.
    """
    try:
        parsed = json.loads(message)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
        raise InvalidParameter(STRUCTURE_NOT_JSON) from None
    if not isinstance(parsed, dict):
        raise InvalidParameter(STRUCTURE_NOT_JSON)
    structure = {key: value for key, value in parsed.items() if isinstance(value, str)}
    if require_default and "default" not in structure:
        raise InvalidParameter(NO_DEFAULT_ENTRY)
    return structure


def require_entry(structure: Mapping[str, str], key: str) -> None:
    """A direct publish to a ``key`` endpoint needs either ``key`` or ``default`` [D][I]."""
    if key not in structure and "default" not in structure:
        raise InvalidParameter(NO_DEFAULT_ENTRY)


# --- FIFO (step 7) --------------------------------------------------------------------------


def validate_group_id(group_id: str | None) -> None:
    """MessageGroupId: 1-128 alphanumeric or punctuation characters when given."""
    if group_id is not None and not _FIFO_ID.fullmatch(group_id):
        raise InvalidParameter(_FIFO_ID_TEXT.format(param="MessageGroupId"))


def validate_deduplication_id(deduplication_id: str | None) -> None:
    """MessageDeduplicationId: 1-128 alphanumeric or punctuation characters when given."""
    if deduplication_id is not None and not _FIFO_ID.fullmatch(deduplication_id):
        raise InvalidParameter(_FIFO_ID_TEXT.format(param="MessageDeduplicationId"))


def validate_fifo(
    *,
    fifo_topic: bool,
    content_based_deduplication: bool,
    group_id: str | None,
    deduplication_id: str | None,
) -> None:
    """Step 7 once the topic is known. MessageGroupId on a standard topic is accepted."""
    validate_group_id(group_id)
    validate_deduplication_id(deduplication_id)
    if fifo_topic:
        if group_id is None:
            raise InvalidParameter(FIFO_GROUP_REQUIRED)
        if deduplication_id is None and not content_based_deduplication:
            raise InvalidParameter(FIFO_DEDUP_REQUIRED)
    elif deduplication_id is not None:
        raise InvalidParameter(DEDUP_ON_STANDARD_TOPIC)


# --- PublishBatch, sec. 4.21 --------------------------------------------------------------------


class Sized(Protocol):
    """What :func:`check_batch_size` reads of an entry (``publish.PublishInput`` fits)."""

    @property
    def message(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, MessageAttribute] | None: ...


def batch_member_prefix(index: int) -> str:
    """The attribute member path SNS reports for entry ``index`` (1-based) of PublishBatch."""
    return f"publishBatchRequestEntries.{index}.member.messageAttributes"


def validate_batch_count(count: int) -> None:
    """0 entries → EmptyBatchRequest, more than 10 → TooManyEntriesInBatchRequest."""
    if count == 0:
        raise EmptyBatchRequest()
    if count > MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest()


def validate_batch_id(entry_id: str) -> None:
    """An Id is 1-80 characters of ``[A-Za-z0-9_-]`` (an empty one is "impermissible" [I])."""
    if len(entry_id) > MAX_BATCH_ID_CHARS:
        raise InvalidBatchEntryId(
            f"The Id of a batch entry in the batch request is too long: {entry_id}"
        )
    if not _BATCH_ID.fullmatch(entry_id):
        raise InvalidBatchEntryId(
            "The Id of a batch entry in the batch request contains an impermissible "
            f"character: {entry_id}"
        )


def validate_batch_ids(ids: Sequence[str]) -> None:
    """Each Id well-formed (in entry order), then all of them distinct."""
    for entry_id in ids:
        validate_batch_id(entry_id)
    if len(set(ids)) != len(ids):
        raise BatchEntryIdsNotDistinct()


def validate_batch_entries(entries: Sequence[Mapping[str, str]]) -> None:
    """The request-level checks of PublishBatch that need no topic, in this order [I].

    ``entries`` are ``Params.structures("PublishBatchRequestEntries")`` (keys ``Id``,
    ``Message``, ``MessageAttributes.entry.N.Name``, ...): the entry count, then a missing
    ``Id`` or ``Message`` (``ValidationError`` at ``publishBatchRequestEntries.N.member.id``
    / ``.message``), the syntax of each Id, and distinct Ids.

    The rest of sec. 4.21 follows once the entries are parsed and the topic is known: each
    entry's attributes (:func:`parse_message_attributes` with :func:`batch_member_prefix`)
    and JSON structure fail the whole call; :func:`check_batch_size` against the topic's
    MaximumMessageSize; then per entry (a failure goes to ``Failed``)
    :func:`validate_subject`, :func:`validate_message_text`, :func:`validate_fifo`.
    """
    validate_batch_count(len(entries))
    for index, entry in enumerate(entries, start=1):
        for member in ("Id", "Message"):
            if member not in entry:
                raise ValidationError.null(
                    f"publishBatchRequestEntries.{index}.member.{member[0].lower()}{member[1:]}"
                )
    validate_batch_ids([entry["Id"] for entry in entries])


def batch_size(entries: Iterable[Sized]) -> int:
    """The size of all the entries together, each measured as :func:`message_size`."""
    return sum(message_size(entry.message, entry.attributes or {}) for entry in entries)


def check_batch_size(entries: Iterable[Sized], max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
    """BatchRequestTooLong when all the entries together exceed ``max_size``."""
    if batch_size(entries) > max_size:
        raise BatchRequestTooLong()
