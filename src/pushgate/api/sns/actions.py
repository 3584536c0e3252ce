"""One function per SNS action: read parameters, call the domain, render the result.

Each handler returns the inner XML of ``<{Action}Result>``, or None for actions that have
no output shape. Errors are raised as :class:`pushgate.domain.errors.SnsError` and rendered
by the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from pushgate.api.sns.params import Params, attribute_map
from pushgate.api.sns.xml import attributes, el, members, next_token
from pushgate.domain import applications, endpoints, messages, subscriptions, topics
from pushgate.domain import publish as publish_domain
from pushgate.domain.arns import Scope
from pushgate.domain.errors import ValidationError
from pushgate.domain.publish import Published, PublishInput
from pushgate.domain.runtime import Runtime

Handler = Callable[[Runtime, Scope, Params], Awaitable[str | None]]


async def create_platform_application(rt: Runtime, scope: Scope, p: Params) -> str:
    name, platform = p.required("Name"), p.required("Platform")
    arn = await applications.create(rt, scope, name, platform, p.map("Attributes"))
    return el("PlatformApplicationArn", arn)


async def get_platform_application_attributes(rt: Runtime, scope: Scope, p: Params) -> str:
    arn = p.required("PlatformApplicationArn")
    return attributes(await applications.get_attributes(rt, arn))


async def set_platform_application_attributes(rt: Runtime, scope: Scope, p: Params) -> None:
    arn = p.required("PlatformApplicationArn")
    await applications.set_attributes(rt, scope, arn, p.map("Attributes"))


async def list_platform_applications(rt: Runtime, scope: Scope, p: Params) -> str:
    page = await applications.list_page(rt, scope, p.get("NextToken"))
    items = (el("PlatformApplicationArn", arn) + attributes(a) for arn, a in page.applications)
    return members("PlatformApplications", items) + next_token(page.next_token)


async def delete_platform_application(rt: Runtime, scope: Scope, p: Params) -> None:
    await applications.delete(rt, p.required("PlatformApplicationArn"))


async def create_platform_endpoint(rt: Runtime, scope: Scope, p: Params) -> str:
    app_arn, token = p.required("PlatformApplicationArn"), p.required("Token")
    arn = await endpoints.create(
        rt, scope, app_arn, token, p.get("CustomUserData"), p.map("Attributes")
    )
    return el("EndpointArn", arn)


async def get_endpoint_attributes(rt: Runtime, scope: Scope, p: Params) -> str:
    return attributes(await endpoints.get_attributes(rt, p.required("EndpointArn")))


async def set_endpoint_attributes(rt: Runtime, scope: Scope, p: Params) -> None:
    await endpoints.set_attributes(rt, p.required("EndpointArn"), p.map("Attributes"))


async def list_endpoints_by_platform_application(rt: Runtime, scope: Scope, p: Params) -> str:
    arn = p.required("PlatformApplicationArn")
    page = await endpoints.list_page(rt, arn, p.get("NextToken"))
    items = (el("EndpointArn", arn) + attributes(a) for arn, a in page.endpoints)
    return members("Endpoints", items) + next_token(page.next_token)


async def delete_endpoint(rt: Runtime, scope: Scope, p: Params) -> None:
    await endpoints.delete(rt, p.required("EndpointArn"))


def _tags(p: Params) -> list[tuple[str, str]]:
    return [(t.get("Key", ""), t.get("Value", "")) for t in p.structures("Tags") or []]


async def create_topic(rt: Runtime, scope: Scope, p: Params) -> str:
    name = p.required("Name")
    arn = await topics.create(rt, scope, name, p.map("Attributes"), _tags(p))
    return el("TopicArn", arn)


async def delete_topic(rt: Runtime, scope: Scope, p: Params) -> None:
    await topics.delete(rt, scope, p.required("TopicArn"))


async def list_topics(rt: Runtime, scope: Scope, p: Params) -> str:
    page = await topics.list_page(rt, scope, p.get("NextToken"))
    return members("Topics", (el("TopicArn", a) for a in page.arns)) + next_token(page.next_token)


async def get_topic_attributes(rt: Runtime, scope: Scope, p: Params) -> str:
    return attributes(await topics.get_attributes(rt, scope, p.required("TopicArn")))


async def set_topic_attributes(rt: Runtime, scope: Scope, p: Params) -> None:
    arn, name = p.required("TopicArn"), p.required("AttributeName")
    await topics.set_attribute(rt, scope, arn, name, p.get("AttributeValue"))


async def subscribe(rt: Runtime, scope: Scope, p: Params) -> str:
    topic_arn, protocol = p.required("TopicArn"), p.required("Protocol")
    arn = await subscriptions.subscribe(
        rt,
        scope,
        topic_arn,
        protocol,
        p.get("Endpoint"),
        p.map("Attributes"),
        p.boolean("ReturnSubscriptionArn"),
    )
    return el("SubscriptionArn", arn)


async def confirm_subscription(rt: Runtime, scope: Scope, p: Params) -> str:
    topic_arn, token = p.required("TopicArn"), p.required("Token")
    arn = await subscriptions.confirm(
        rt,
        scope,
        topic_arn,
        token,
        authenticate_on_unsubscribe=p.boolean("AuthenticateOnUnsubscribe"),
    )
    return el("SubscriptionArn", arn)


async def unsubscribe(rt: Runtime, scope: Scope, p: Params) -> None:
    await subscriptions.unsubscribe(rt, p.required("SubscriptionArn"))


# --- The links in the messages sent to HTTP/S subscribers -----------------------------
# A subscriber follows SubscribeURL and UnsubscribeURL with a plain GET, without
# credentials, as on SNS: the confirmation token is the credential of the first; the
# second works unless the subscription was confirmed with AuthenticateOnUnsubscribe.


def _scope_of(rt: Runtime, arn: str) -> Scope:
    """The scope an ARN names (its region), for calls that carry no signature."""
    parts = arn.split(":")
    return Scope(rt.account_id, parts[3] if len(parts) > 3 and parts[3] else "-")


async def confirm_subscription_link(rt: Runtime, p: Params) -> str:
    topic_arn, token = p.required("TopicArn"), p.required("Token")
    arn = await subscriptions.confirm(rt, _scope_of(rt, topic_arn), topic_arn, token)
    return el("SubscriptionArn", arn)


async def unsubscribe_link(rt: Runtime, p: Params) -> None:
    await subscriptions.unsubscribe(rt, p.required("SubscriptionArn"), signed=False)


def _subscription_list(page: subscriptions.SubscriptionPage) -> str:
    items = (
        el("SubscriptionArn", s.arn)
        + el("Owner", s.owner)
        + el("Protocol", s.protocol)
        + el("Endpoint", s.endpoint)
        + el("TopicArn", s.topic_arn)
        for s in page.subscriptions
    )
    return members("Subscriptions", items) + next_token(page.next_token)


async def list_subscriptions(rt: Runtime, scope: Scope, p: Params) -> str:
    return _subscription_list(await subscriptions.list_page(rt, scope, None, p.get("NextToken")))


async def list_subscriptions_by_topic(rt: Runtime, scope: Scope, p: Params) -> str:
    topic_arn = p.required("TopicArn")
    page = await subscriptions.list_page(rt, scope, topic_arn, p.get("NextToken"))
    return _subscription_list(page)


async def get_subscription_attributes(rt: Runtime, scope: Scope, p: Params) -> str:
    return attributes(await subscriptions.get_attributes(rt, p.required("SubscriptionArn")))


async def set_subscription_attributes(rt: Runtime, scope: Scope, p: Params) -> None:
    arn, name = p.required("SubscriptionArn"), p.required("AttributeName")
    await subscriptions.set_attribute(rt, arn, name, p.get("AttributeValue"))


async def tag_resource(rt: Runtime, scope: Scope, p: Params) -> str:
    arn = p.required("ResourceArn")
    tags = p.structures("Tags")
    if tags is None:
        raise ValidationError.null("tags")
    await topics.tag(rt, scope, arn, _tags(p))
    return ""


async def untag_resource(rt: Runtime, scope: Scope, p: Params) -> str:
    arn = p.required("ResourceArn")
    keys = p.strings("TagKeys")
    if keys is None:
        raise ValidationError.null("tagKeys")
    await topics.untag(rt, scope, arn, keys)
    return ""


async def list_tags_for_resource(rt: Runtime, scope: Scope, p: Params) -> str:
    tags = await topics.list_tags(rt, scope, p.required("ResourceArn"))
    return members("Tags", (el("Key", k) + el("Value", v) for k, v in tags.items()))


def _publish_input(
    fields: Mapping[str, str | None],
    attributes: dict[str, dict[str, str]],
    member: Callable[[str], str],
    attribute_prefix: str,
) -> PublishInput:
    message = fields.get("Message")
    if message is None:
        raise ValidationError.null(member("message"))
    return PublishInput(
        message=message,
        subject=fields.get("Subject"),
        structure=fields.get("MessageStructure"),
        attributes=messages.parse_message_attributes(attributes, attribute_prefix),
        dedup_id=fields.get("MessageDeduplicationId"),
        group_id=fields.get("MessageGroupId"),
    )


def _published(p: Published) -> str:
    return el("MessageId", p.message_id) + (
        el("SequenceNumber", p.sequence_number) if p.sequence_number else ""
    )


async def publish(rt: Runtime, scope: Scope, p: Params) -> str:
    fields = {
        name: p.get(name)
        for name in (
            "Message",
            "Subject",
            "MessageStructure",
            "MessageDeduplicationId",
            "MessageGroupId",
        )
    }
    if fields["Message"] is None:
        raise ValidationError.null("message")
    msg = _publish_input(
        fields, p.attribute_map("MessageAttributes"), lambda n: n, "messageAttributes"
    )
    published = await publish_domain.publish(
        rt,
        scope,
        msg,
        topic_arn=p.get("TopicArn"),
        target_arn=p.get("TargetArn"),
        phone_number=p.get("PhoneNumber"),
    )
    return _published(published)


async def publish_batch(rt: Runtime, scope: Scope, p: Params) -> str:
    topic_arn = p.required("TopicArn")
    entries = p.structures("PublishBatchRequestEntries")
    if entries is None:
        raise ValidationError.null("publishBatchRequestEntries")
    messages.validate_batch_entries(entries)
    inputs = []
    for n, entry in enumerate(entries, start=1):
        prefix = f"publishBatchRequestEntries.{n}.member."
        msg = _publish_input(
            entry,
            attribute_map(entry, "MessageAttributes"),
            lambda name, prefix=prefix: prefix + name,  # type: ignore[misc]
            prefix + "messageAttributes",
        )
        inputs.append((entry.get("Id", ""), msg))
    ok, failed = await publish_domain.publish_batch(rt, scope, topic_arn, inputs)
    successful = members("Successful", (el("Id", i) + _published(m) for i, m in ok))
    failures = members(
        "Failed",
        (
            el("Id", f.id)
            + el("Code", f.error.code)
            + el("Message", f.error.message)
            + el("SenderFault", "true" if f.error.sender_fault else "false")
            for f in failed
        ),
    )
    return successful + failures


ACTIONS: dict[str, Handler] = {
    "CreatePlatformApplication": create_platform_application,
    "GetPlatformApplicationAttributes": get_platform_application_attributes,
    "SetPlatformApplicationAttributes": set_platform_application_attributes,
    "ListPlatformApplications": list_platform_applications,
    "DeletePlatformApplication": delete_platform_application,
    "CreatePlatformEndpoint": create_platform_endpoint,
    "GetEndpointAttributes": get_endpoint_attributes,
    "SetEndpointAttributes": set_endpoint_attributes,
    "ListEndpointsByPlatformApplication": list_endpoints_by_platform_application,
    "DeleteEndpoint": delete_endpoint,
    "CreateTopic": create_topic,
    "DeleteTopic": delete_topic,
    "ListTopics": list_topics,
    "GetTopicAttributes": get_topic_attributes,
    "SetTopicAttributes": set_topic_attributes,
    "Subscribe": subscribe,
    "ConfirmSubscription": confirm_subscription,
    "Unsubscribe": unsubscribe,
    "ListSubscriptions": list_subscriptions,
    "ListSubscriptionsByTopic": list_subscriptions_by_topic,
    "GetSubscriptionAttributes": get_subscription_attributes,
    "SetSubscriptionAttributes": set_subscription_attributes,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "Publish": publish,
    "PublishBatch": publish_batch,
}

LinkHandler = Callable[[Runtime, Params], Awaitable[str | None]]
LINK_ACTIONS: dict[str, LinkHandler] = {
    "ConfirmSubscription": confirm_subscription_link,
    "Unsubscribe": unsubscribe_link,
}
