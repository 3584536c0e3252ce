"""Topics and their tags (SNS sec. 4.11-4.15, 4.22)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from pushgate.domain import arns, delivery_policy, pagination
from pushgate.domain.attributes import reject_unknown
from pushgate.domain.errors import (
    InvalidParameter,
    NotFound,
    ResourceNotFound,
    TagLimitExceeded,
)
from pushgate.domain.runtime import Runtime
from pushgate.store import subscriptions as subscription_store
from pushgate.store import topics as store
from pushgate.store.topics import TopicRow

MAX_TAGS = 50
# Attributes a caller may set (CreateTopic's map, SetTopicAttributes' AttributeName).
SETTABLE = (
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
    "MaximumMessageSize",
    "ContentBasedDeduplication",
    "ArchivePolicy",
    "FifoThroughputScope",
    "DataProtectionPolicy",
    *(
        f"{proto}{kind}"
        for proto in ("Application", "HTTP", "Lambda", "SQS", "Firehose")
        for kind in (
            "SuccessFeedbackRoleArn",
            "SuccessFeedbackSampleRate",
            "FailureFeedbackRoleArn",
        )
    ),
)
CREATE_ONLY = ("FifoTopic",)
_NOT_FIFO = (
    "Invalid parameter: Attributes Reason: Content-based deduplication can only be set for FIFO "
    "topics"
)
_NAME = re.compile(r"[A-Za-z0-9_\-]+")
MAX_NAME = 256  # with the ".fifo" suffix of a FIFO topic


@dataclass(frozen=True)
class TopicPage:
    arns: list[str]
    next_token: str | None


def _default_policy(topic_arn: str, account_id: str) -> str:
    actions = [
        "SNS:GetTopicAttributes",
        "SNS:SetTopicAttributes",
        "SNS:AddPermission",
        "SNS:RemovePermission",
        "SNS:DeleteTopic",
        "SNS:Subscribe",
        "SNS:ListSubscriptionsByTopic",
        "SNS:Publish",
    ]
    statement = {
        "Sid": "__default_statement_ID",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": actions,
        "Resource": topic_arn,
        "Condition": {"StringEquals": {"AWS:SourceOwner": account_id}},
    }
    return json.dumps(
        {"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": [statement]},
        separators=(",", ":"),
    )


_CREATE_PREFIX = "Invalid parameter: Attributes Reason: "  # CreateTopic's Attributes map
_SET_PREFIX = "Invalid parameter: "  # SetTopicAttributes, as SetSubscriptionAttributes
_BOOLEANS = ("ContentBasedDeduplication", "FifoTopic")


def _check_value(name: str, value: str, prefix: str) -> str:
    """The value as stored (booleans in lower case), or InvalidParameter."""
    if name == "MaximumMessageSize" and not (
        value.isascii() and value.isdigit() and 1024 <= int(value) <= 1048576
    ):
        raise InvalidParameter(
            f"{prefix}MaximumMessageSize: Invalid value [{value}]. "
            "Must be an integer from 1024 to 1048576."
        )
    if name == "SignatureVersion" and value not in ("1", "2"):
        raise InvalidParameter(
            f"{prefix}SignatureVersion: Invalid value [{value}]. Must be 1 or 2."
        )
    if name == "DeliveryPolicy" and value:
        delivery_policy.validate_topic_policy(value, prefix)
    if name in ("Policy", "DataProtectionPolicy", "ArchivePolicy") and value:
        try:
            json.loads(value)
        except ValueError:
            raise InvalidParameter(f"{prefix}{name}: failed to parse JSON.") from None
    if name in _BOOLEANS:
        if value.lower() not in ("true", "false"):
            raise InvalidParameter(
                f"{prefix}{name}: Invalid value [{value}]. Must be true or false."
            )
        return value.lower()
    return value


def _check_tags(tags: list[tuple[str, str]]) -> dict[str, str]:
    keys = [k for k, _ in tags]
    if len(set(keys)) != len(keys):
        raise InvalidParameter("Invalid parameter: Duplicated keys are not allowed.")
    for key, value in tags:
        if not 1 <= len(key) <= 128:
            raise InvalidParameter(
                "Invalid parameter: Tags Reason: Tag keys must be 1-128 characters"
            )
        if len(value) > 256:
            raise InvalidParameter(
                "Invalid parameter: Tags Reason: Tag values must be at most 256 characters"
            )
    return dict(tags)


async def create(
    rt: Runtime,
    scope: arns.Scope,
    name: str,
    attributes: Mapping[str, str],
    tags: list[tuple[str, str]],
) -> str:
    reject_unknown(attributes, (*SETTABLE, *CREATE_ONLY))
    stored = {k: _check_value(k, v, _CREATE_PREFIX) for k, v in attributes.items()}
    fifo = stored.get("FifoTopic") == "true"
    base = name.removesuffix(".fifo") if fifo else name
    valid = _NAME.fullmatch(base) and len(name) <= MAX_NAME
    if not valid or (fifo and not name.endswith(".fifo")):
        raise InvalidParameter("Invalid parameter: Topic Name")
    if "ContentBasedDeduplication" in stored and not fifo:
        raise InvalidParameter(_NOT_FIFO)
    new_tags = _check_tags(tags)
    if len(new_tags) > MAX_TAGS:
        raise TagLimitExceeded()
    arn = scope.topic_arn(name)
    if fifo:
        stored["FifoTopic"] = "true"
        stored.setdefault("ContentBasedDeduplication", "false")
    else:
        stored.pop("FifoTopic", None)

    def tx(conn: Connection) -> str:
        existing = store.get(conn, arn)
        if existing is not None:  # idempotent, unless the caller asks for something else
            if any(existing.attributes.get(k, "") != v for k, v in stored.items()):
                raise InvalidParameter(
                    "Invalid parameter: Attributes Reason: Topic already exists with different "
                    "attributes"
                )
            if tags and new_tags != existing.tags:
                raise InvalidParameter(
                    "Invalid parameter: Tags Reason: Topic already exists with different tags"
                )
            return arn
        store.insert_one(conn, TopicRow(0, arn, name, stored, new_tags), scope.region, rt.clock())
        return arn

    return await rt.db.write(tx)


def get_or_404(conn: Connection, arn: str) -> TopicRow:
    topic = store.get(conn, arn)
    if topic is None:
        raise NotFound("Topic does not exist")
    return topic


def check_arn(arn: str, scope: arns.Scope, param: str = "TopicArn") -> None:
    arns.check_topic_arn(arn, param)
    arns.check_region(arn, param, scope)


async def get_attributes(rt: Runtime, scope: arns.Scope, arn: str) -> dict[str, str]:
    check_arn(arn, scope)

    def tx(conn: Connection) -> dict[str, str]:
        topic = get_or_404(conn, arn)
        confirmed, pending = subscription_store.counts(conn, topic.id)
        attributes = {
            "DisplayName": "",
            "EffectiveDeliveryPolicy": delivery_policy.effective_topic_json(None),
            "Owner": rt.account_id,
            "Policy": _default_policy(arn, rt.account_id),
            "SubscriptionsConfirmed": str(confirmed),
            "SubscriptionsDeleted": "0",
            "SubscriptionsPending": str(pending),
            "TopicArn": arn,
        }
        attributes.update(topic.attributes)
        if "DeliveryPolicy" in topic.attributes:
            attributes["EffectiveDeliveryPolicy"] = delivery_policy.effective_topic_json(
                topic.attributes["DeliveryPolicy"]
            )
        return attributes

    return await rt.db.read(tx)


async def set_attribute(
    rt: Runtime, scope: arns.Scope, arn: str, name: str, value: str | None
) -> None:
    check_arn(arn, scope)
    if name not in SETTABLE:
        raise InvalidParameter("Invalid parameter: AttributeName")
    text = _check_value(name, value or "", _SET_PREFIX)

    def tx(conn: Connection) -> None:
        topic = get_or_404(conn, arn)
        if name == "ContentBasedDeduplication" and topic.attributes.get("FifoTopic") != "true":
            raise InvalidParameter(_NOT_FIFO)
        topic.attributes[name] = text
        store.save(conn, topic)

    await rt.db.write(tx)


async def delete(rt: Runtime, scope: arns.Scope, arn: str) -> None:
    """Idempotent; the topic's subscriptions go with it."""
    check_arn(arn, scope)
    await rt.db.write(store.delete_one, arn)


async def list_page(rt: Runtime, scope: arns.Scope, next_token: str | None) -> TopicPage:
    after = pagination.decode(next_token)
    rows = await rt.db.read(store.page, scope.region, after, pagination.PAGE_SIZE + 1)
    return TopicPage(
        arns=[a for _, a in rows[: pagination.PAGE_SIZE]],
        next_token=pagination.next_token([i for i, _ in rows]),
    )


def _taggable(conn: Connection, scope: arns.Scope, arn: str) -> TopicRow:
    """The topic to tag; anything else, or a topic of another region, is not found."""
    mine = arns.kind_of(arn) == "topic" and arn.startswith(scope.prefix)
    topic = store.get(conn, arn) if mine else None
    if topic is None:
        raise ResourceNotFound()
    return topic


async def tag(rt: Runtime, scope: arns.Scope, arn: str, tags: list[tuple[str, str]]) -> None:
    new_tags = _check_tags(tags)

    def tx(conn: Connection) -> None:
        topic = _taggable(conn, scope, arn)
        merged = {**topic.tags, **new_tags}
        if len(merged) > MAX_TAGS:
            raise TagLimitExceeded()
        topic.tags = merged
        store.save(conn, topic)

    await rt.db.write(tx)


async def untag(rt: Runtime, scope: arns.Scope, arn: str, keys: list[str]) -> None:
    def tx(conn: Connection) -> None:
        topic = _taggable(conn, scope, arn)
        topic.tags = {k: v for k, v in topic.tags.items() if k not in keys}
        store.save(conn, topic)

    await rt.db.write(tx)


async def list_tags(rt: Runtime, scope: arns.Scope, arn: str) -> dict[str, str]:
    topic = await rt.db.read(_taggable, scope, arn)
    return topic.tags
