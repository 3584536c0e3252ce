"""Subscriptions of topics: ``application`` (platform endpoints), ``http`` and ``https``.

Application subscriptions are confirmed at once. HTTP/S subscriptions wait, as on SNS,
for ``ConfirmSubscription`` with the token of their ``SubscriptionConfirmation`` message,
which Subscribe queues for the subscriber (``store/subscription_deliveries.py``; the
delivery worker POSTs it). The token confirms for two days (specs/sns-api.md sec. 7).
Unsubscribing a confirmed HTTP/S subscription queues an ``UnsubscribeConfirmation`` whose
token restores the subscription, as SNS's does.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection

from pushgate.domain import arns, delivery_policy, pagination, topics
from pushgate.domain.attributes import bool_text, parse_bool
from pushgate.domain.errors import AuthorizationError, InvalidParameter, NotFound
from pushgate.domain.runtime import Runtime
from pushgate.store import endpoints as endpoint_store
from pushgate.store import subscription_deliveries as posts
from pushgate.store import subscriptions as store
from pushgate.store.subscriptions import SubscriptionRow

SUPPORTED_PROTOCOLS = ("application", "http", "https")
SETTABLE = (
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
)
PENDING_ARN = "PendingConfirmation"
HTTP_PROTOCOLS = ("http", "https")
TOKEN_LIFETIME_SECONDS = 2 * 24 * 3600
PASSWORD_MASK = "****"
# What an attribute that was never set reads as, when a repeated Subscribe names it.
_DEFAULTS = {"RawMessageDelivery": "false"}
_JSON_ATTRIBUTES = ("FilterPolicy", "DeliveryPolicy", "RedrivePolicy", "ReplayPolicy")


@dataclass(frozen=True)
class SubscriptionSummary:
    arn: str
    owner: str
    protocol: str
    endpoint: str
    topic_arn: str


@dataclass(frozen=True)
class SubscriptionPage:
    subscriptions: list[SubscriptionSummary]
    next_token: str | None


def _check_attribute(name: str, value: str, prefix: str) -> None:
    if name == "RawMessageDelivery" and value.lower() not in ("true", "false"):
        raise InvalidParameter(
            f"{prefix}RawMessageDelivery: Invalid value [{value}]. Must be true or false."
        )
    if name == "FilterPolicyScope" and value not in ("MessageAttributes", "MessageBody"):
        raise InvalidParameter(
            f"{prefix}FilterPolicyScope: Invalid value [{value}]. Please use either "
            "MessageBody or MessageAttributes"
        )
    if name == "DeliveryPolicy" and value:
        delivery_policy.validate_subscription_policy(value, prefix)
    if name in _JSON_ATTRIBUTES and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidParameter(f"{prefix}{name}: failed to parse JSON.")


def _normalised_value(name: str, value: str) -> str:
    return bool_text(parse_bool(value, name)) if name == "RawMessageDelivery" else value


def _stored(attributes: Mapping[str, str]) -> dict[str, str]:
    """The attributes a new subscription keeps: normalised, with the default filter scope."""
    values = {k: _normalised_value(k, v) for k, v in attributes.items()}
    if not values.get("FilterPolicy"):
        values.pop("FilterPolicy", None)
    elif "FilterPolicyScope" not in values:
        values["FilterPolicyScope"] = "MessageAttributes"
    return values


def _same(name: str, stored: str | None, wanted: str) -> bool:
    """Whether a supplied attribute asks for what the subscription already has."""
    current = stored if stored is not None else _DEFAULTS.get(name, "")
    value = _normalised_value(name, wanted)
    if current == value:
        return True
    if name in _JSON_ATTRIBUTES and current and value:
        return bool(json.loads(current) == json.loads(value))
    return False


async def subscribe(
    rt: Runtime,
    scope: arns.Scope,
    topic_arn: str,
    protocol: str,
    endpoint: str | None,
    attributes: Mapping[str, str],
    return_arn: bool,
) -> str:
    topics.check_arn(topic_arn, scope)
    if protocol.lower() not in SUPPORTED_PROTOCOLS:
        raise InvalidParameter(
            f"Invalid parameter: Amazon SNS does not support this protocol string: {protocol}"
        )
    protocol = protocol.lower()
    target = endpoint or ""
    if protocol in HTTP_PROTOCOLS and not target.lower().startswith(protocol + "://"):
        raise InvalidParameter("Invalid parameter: Endpoint must match the specified protocol")
    if protocol in HTTP_PROTOCOLS and (refused := rt.subscriber_hosts.refusal(target)):
        raise InvalidParameter(f"Invalid parameter: Endpoint Reason: {refused}")
    for key in attributes:
        if key not in SETTABLE:
            raise InvalidParameter("Invalid parameter: Attributes Reason: AttributeName")
    for key, value in attributes.items():
        _check_attribute(key, value, "Invalid parameter: Attributes Reason: ")
    now = rt.clock()
    expires_at = now.timestamp() + TOKEN_LIFETIME_SECONDS  # of a confirmation sent now
    target, password = hide_password(target)

    def tx(conn: Connection) -> str:
        topic = topics.get_or_404(conn, topic_arn)
        if protocol == "application":
            if arns.kind_of(target) != "endpoint" or endpoint_store.get(conn, target) is None:
                raise InvalidParameter(
                    "Invalid parameter: Endpoint Reason: Endpoint does not exist for endpoint "
                    f"arn{target}"
                )
        existing = store.find(conn, topic.id, protocol, target)
        if existing is not None:
            if not all(_same(k, existing.attributes.get(k), v) for k, v in attributes.items()):
                raise InvalidParameter(
                    "Invalid parameter: Attributes Reason: Subscription already exists with "
                    "different attributes"
                )
            sub = existing
            if sub.pending:  # SNS sends the confirmation again, valid two days anew
                sub.confirmation_expires_at = expires_at
                store.save(conn, sub)
                _request_confirmation(conn, sub, now.timestamp())
        else:
            pending = protocol != "application"
            sub = SubscriptionRow(
                id=0,
                arn=scope.subscription_arn(topic_arn, str(uuid.uuid4())),
                topic_id=topic.id,
                topic_arn=topic_arn,
                protocol=protocol,
                endpoint=target,
                attributes=_stored(attributes),
                pending=pending,
                confirmation_token=secrets.token_hex(64) if pending else None,
                confirmation_expires_at=expires_at if pending else None,
            )
            sub.id = store.insert_one(conn, sub, now)
            if pending:
                _request_confirmation(conn, sub, now.timestamp())
        if password is not None:
            store.set_password(conn, sub.id, rt.secrets.encrypt(password))
        if sub.pending and not return_arn:
            return "pending confirmation"
        return sub.arn

    arn = await rt.db.write(tx)
    if protocol in HTTP_PROTOCOLS:
        rt.work.notify()
    return arn


def hide_password(url: str) -> tuple[str, str | None]:
    """``url`` with the password of its user info masked, and the password (still
    percent-encoded), which is stored encrypted and never shown: an HTTPS subscriber's
    Basic or Digest credentials (``https://user:password@host/``, as on SNS). A password
    that is the mask itself (a listed Endpoint subscribed again) is no password."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon:
        return url, None
    masked = urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD_MASK}@{hostport}"))
    return masked, (None if password == PASSWORD_MASK else password)


def _request_confirmation(conn: Connection, sub: SubscriptionRow, now: float) -> None:
    """Queue a SubscriptionConfirmation with the subscription's token."""
    assert sub.confirmation_token is not None
    _send(conn, posts.SUBSCRIPTION_CONFIRMATION, sub, sub.confirmation_token, now)


def _send(conn: Connection, kind: str, sub: SubscriptionRow, token: str, now: float) -> None:
    """Queue a (Un)SubscriptionConfirmation carrying ``token`` for the subscriber."""
    posts.enqueue_confirmation(
        conn,
        posts.NewConfirmation(
            kind=kind,
            sns_message_id=str(uuid.uuid4()),
            subscription_id=sub.id,
            subscription_arn=sub.arn,
            topic_arn=sub.topic_arn,
            url=sub.endpoint,
            token=token,
        ),
        now,
    )


async def unsubscribe(rt: Runtime, arn: str, *, signed: bool = True) -> None:
    """Idempotent for a well-formed ARN that names nothing. A confirmed HTTP/S subscriber
    is told with an UnsubscribeConfirmation. ``signed`` False is the UnsubscribeURL
    followed without credentials: refused when the subscription was confirmed with
    AuthenticateOnUnsubscribe."""
    arns.check_subscription_arn(arn)
    now = rt.clock().timestamp()

    def tx(conn: Connection) -> bool:
        sub = store.get(conn, arn)
        if sub is None:
            return False
        if not signed and sub.authenticate_on_unsubscribe:
            raise AuthorizationError("Unsubscribe of this subscription requires authentication")
        store.delete_one(conn, arn)
        if sub.protocol not in HTTP_PROTOCOLS or sub.pending:
            return False
        _send(conn, posts.UNSUBSCRIBE_CONFIRMATION, sub, secrets.token_hex(64), now)
        return True

    if await rt.db.write(tx):
        rt.work.notify()


def _get_or_404(conn: Connection, arn: str) -> SubscriptionRow:
    sub = store.get(conn, arn)
    if sub is None:
        raise NotFound("Subscription does not exist")
    return sub


async def get_attributes(rt: Runtime, arn: str) -> dict[str, str]:
    arns.check_subscription_arn(arn)

    def tx(conn: Connection) -> tuple[SubscriptionRow, str | None]:
        sub = _get_or_404(conn, arn)
        return sub, topics.get_or_404(conn, sub.topic_arn).attributes.get("DeliveryPolicy")

    sub, topic_policy = await rt.db.read(tx)
    attributes = {
        "ConfirmationWasAuthenticated": bool_text(not sub.pending),
        "Endpoint": sub.endpoint,
        "Owner": rt.account_id,
        "PendingConfirmation": bool_text(sub.pending),
        "Protocol": sub.protocol,
        "RawMessageDelivery": "false",
        "SubscriptionArn": sub.arn,
        "SubscriptionPrincipal": f"arn:aws:iam::{rt.account_id}:root",
        "TopicArn": sub.topic_arn,
    }
    attributes.update(sub.attributes)
    if sub.protocol in HTTP_PROTOCOLS:
        attributes["EffectiveDeliveryPolicy"] = delivery_policy.effective_json(
            topic_policy, sub.attributes.get("DeliveryPolicy")
        )
    return attributes


async def set_attribute(rt: Runtime, arn: str, name: str, value: str | None) -> None:
    arns.check_subscription_arn(arn)
    if name not in SETTABLE:
        raise InvalidParameter("Invalid parameter: AttributeName")
    text = value or ""
    _check_attribute(name, text, "Invalid parameter: ")

    def tx(conn: Connection) -> None:
        sub = _get_or_404(conn, arn)
        if name == "FilterPolicy" and not text:
            sub.attributes.pop("FilterPolicy", None)
            sub.attributes.pop("FilterPolicyScope", None)
        else:
            sub.attributes[name] = _normalised_value(name, text)
        if name == "FilterPolicy" and text:
            sub.attributes.setdefault("FilterPolicyScope", "MessageAttributes")
        store.save(conn, sub)

    await rt.db.write(tx)


async def confirm(
    rt: Runtime,
    scope: arns.Scope,
    topic_arn: str,
    token: str,
    *,
    authenticate_on_unsubscribe: bool = False,
) -> str:
    """Confirm the pending subscription that ``token`` was sent to (again: idempotent), or
    restore the one an UnsubscribeConfirmation with ``token`` said goodbye to."""
    topics.check_arn(topic_arn, scope)
    now = rt.clock()

    def tx(conn: Connection) -> str:
        topic = topics.get_or_404(conn, topic_arn)
        sub = store.by_confirmation_token(conn, token)
        if sub is None:
            return _restore(conn, topic.id, topic_arn, token, now)
        expires_at = sub.confirmation_expires_at
        if sub.topic_arn != topic_arn or (
            sub.pending and expires_at is not None and expires_at < now.timestamp()
        ):
            raise InvalidParameter("Invalid parameter: Token")
        sub.pending = False
        sub.authenticate_on_unsubscribe |= authenticate_on_unsubscribe
        store.save(conn, sub)
        return sub.arn

    return await rt.db.write(tx)


def _restore(conn: Connection, topic_id: int, topic_arn: str, token: str, now: datetime) -> str:
    sent = posts.unsubscribe_by_token(conn, token)
    if (
        sent is None
        or sent.topic_arn != topic_arn
        or sent.created_at + TOKEN_LIFETIME_SECONDS < now.timestamp()
    ):
        raise InvalidParameter("Invalid parameter: Token")
    protocol = sent.url.split(":", 1)[0].lower()
    existing = store.find(conn, topic_id, protocol, sent.url) or store.get(
        conn, sent.subscription_arn
    )
    if existing is not None:
        return existing.arn
    restored = SubscriptionRow(
        id=0,
        arn=sent.subscription_arn,
        topic_id=topic_id,
        topic_arn=topic_arn,
        protocol=protocol,
        endpoint=sent.url,
        attributes={},
        pending=False,
        confirmation_token=None,
    )
    store.insert_one(conn, restored, now)
    return restored.arn


async def list_page(
    rt: Runtime, scope: arns.Scope, topic_arn: str | None, next_token: str | None
) -> SubscriptionPage:
    after = pagination.decode(next_token)

    def tx(conn: Connection) -> list[SubscriptionRow]:
        topic_id = None
        if topic_arn is not None:
            topics.check_arn(topic_arn, scope)
            topic_id = topics.get_or_404(conn, topic_arn).id
        return store.page(conn, scope.region, topic_id, after, pagination.PAGE_SIZE + 1)

    rows = await rt.db.read(tx)
    return SubscriptionPage(
        subscriptions=[
            SubscriptionSummary(
                arn=PENDING_ARN if r.pending else r.arn,
                owner=rt.account_id,
                protocol=r.protocol,
                endpoint=r.endpoint,
                topic_arn=r.topic_arn,
            )
            for r in rows[: pagination.PAGE_SIZE]
        ],
        next_token=pagination.next_token([r.id for r in rows]),
    )
