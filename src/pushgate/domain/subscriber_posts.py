"""The HTTP requests SNS makes to HTTP/S subscribers: headers, signed JSON body, links.

Headers are SNS's ("HTTP/HTTPS headers", https://docs.aws.amazon.com/sns/latest/dg/http-header.html):
``x-amz-sns-message-type``, ``x-amz-sns-message-id``, ``x-amz-sns-topic-arn``, and for a
Notification or an UnsubscribeConfirmation ``x-amz-sns-subscription-arn``; a raw delivery
(``RawMessageDelivery``) carries ``x-amz-sns-rawdelivery: true`` and the bare message as
its body. The JSON bodies and their signatures come from :mod:`pushgate.domain.signing`.

``SubscribeURL`` and ``UnsubscribeURL`` point at this server's SNS endpoint with a GET
query, as SNS's do (``https://sns.<region>.amazonaws.com/?Action=ConfirmSubscription&...``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from pushgate.domain import signing
from pushgate.signing_key import SigningKey

USER_AGENT = "Amazon Simple Notification Service Agent"
DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"


@dataclass(frozen=True, slots=True)
class Post:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Links:
    """Where this server is reached (``PUSHGATE_PUBLIC_URL``), its signing key, and the
    signer that remembers recent signatures (one per message, not per subscriber)."""

    public_url: str
    key: SigningKey
    signer: signing.Signer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signer", signing.Signer(self.key.private_key))

    def subscribe_url(self, topic_arn: str, token: str) -> str:
        query = urlencode({"Action": "ConfirmSubscription", "TopicArn": topic_arn, "Token": token})
        return f"{self.public_url}/?{query}"

    def unsubscribe_url(self, subscription_arn: str) -> str:
        query = urlencode({"Action": "Unsubscribe", "SubscriptionArn": subscription_arn})
        return f"{self.public_url}/?{query}"

    @property
    def cert_url(self) -> str:
        return self.key.cert_url(self.public_url)


def signature_version(topic_attributes: Mapping[str, str]) -> signing.SignatureVersion:
    """The topic's ``SignatureVersion`` attribute; SNS's default is 1 (SHA1)."""
    return "2" if topic_attributes.get("SignatureVersion") == "2" else "1"


def message_text(body: str, structure: Mapping[str, str] | None, protocol: str) -> str:
    """What an HTTP/S subscriber receives of a message: with ``MessageStructure=json``, the
    value for its protocol (``http`` or ``https``), else ``default``."""
    if structure is None:
        return body
    return structure.get(protocol) or structure.get("default") or ""


def envelope_attributes(stored: Mapping[str, list[str]]) -> dict[str, dict[str, str]]:
    """Message attributes as a Notification lists them: ``{"Type", "Value"}``, binary
    values in base64 (the outbox keeps them as latin-1 text)."""
    result: dict[str, dict[str, str]] = {}
    for name, (data_type, value) in sorted(stored.items()):
        if data_type.startswith("Binary"):
            value = base64.b64encode(value.encode("latin-1")).decode()
        result[name] = {"Type": data_type, "Value": value}
    return result


def _headers(kind: str, message_id: str, topic_arn: str, content_type: str) -> dict[str, str]:
    return {
        "x-amz-sns-message-type": kind,
        "x-amz-sns-message-id": message_id,
        "x-amz-sns-topic-arn": topic_arn,
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
    }


def notification(
    links: Links,
    *,
    url: str,
    message_id: str,
    topic_arn: str,
    subscription_arn: str,
    text: str,
    subject: str | None,
    attributes: Mapping[str, list[str]],
    published_at: float,
    raw: bool,
    version: signing.SignatureVersion,
    content_type: str = DEFAULT_CONTENT_TYPE,
) -> Post:
    headers = _headers(signing.NOTIFICATION, message_id, topic_arn, content_type)
    headers["x-amz-sns-subscription-arn"] = subscription_arn
    if raw:
        headers["x-amz-sns-rawdelivery"] = "true"
        return Post(url, headers, text.encode())
    message = signing.notification(
        message_id=message_id,
        topic_arn=topic_arn,
        message=text,
        timestamp=datetime.fromtimestamp(published_at, UTC),
        unsubscribe_url=links.unsubscribe_url(subscription_arn),
        subject=subject,
        message_attributes=envelope_attributes(attributes),
    )
    return _signed(links, url, headers, message, version)


def confirmation(
    links: Links,
    *,
    kind: str,
    url: str,
    message_id: str,
    topic_arn: str,
    subscription_arn: str,
    token: str,
    created_at: float,
    version: signing.SignatureVersion,
    content_type: str = DEFAULT_CONTENT_TYPE,
) -> Post:
    """A SubscriptionConfirmation, or an UnsubscribeConfirmation (``kind``)."""
    headers = _headers(kind, message_id, topic_arn, content_type)
    timestamp = datetime.fromtimestamp(created_at, UTC)
    subscribe_url = links.subscribe_url(topic_arn, token)
    if kind == signing.UNSUBSCRIBE_CONFIRMATION:
        headers["x-amz-sns-subscription-arn"] = subscription_arn
        message = signing.unsubscribe_confirmation(
            message_id=message_id,
            topic_arn=topic_arn,
            subscription_arn=subscription_arn,
            token=token,
            subscribe_url=subscribe_url,
            timestamp=timestamp,
        )
    else:
        message = signing.subscription_confirmation(
            message_id=message_id,
            topic_arn=topic_arn,
            token=token,
            subscribe_url=subscribe_url,
            timestamp=timestamp,
        )
    return _signed(links, url, headers, message, version)


def _signed(
    links: Links,
    url: str,
    headers: dict[str, str],
    message: signing.SnsMessage,
    version: signing.SignatureVersion,
) -> Post:
    signed = links.signer.sign(message, links.cert_url, version)
    return Post(url, headers, json.dumps(signed, indent=2).encode())
