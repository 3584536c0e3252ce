"""The JSON messages SNS POSTs to HTTP/S subscribers, signed the way SNS signs them.

The algorithm is AWS's "Verifying the signatures of Amazon SNS messages"
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html and its
step-by-step page ``sns-verify-signature-of-message-verify-message-signature.html``):

* the string to sign is ``Name\\nValue\\n`` for each of a fixed list of fields, in this
  order: for a ``Notification`` ``Message``, ``MessageId``, ``Subject`` (only if present),
  ``Timestamp``, ``TopicArn``, ``Type``; for a ``SubscriptionConfirmation`` or an
  ``UnsubscribeConfirmation`` ``Message``, ``MessageId``, ``SubscribeURL``, ``Timestamp``,
  ``Token``, ``TopicArn``, ``Type``. Values are the unescaped strings of the JSON body;
* ``SignatureVersion`` ``1`` signs it with SHA1withRSA, ``2`` with SHA256withRSA (RSASSA
  PKCS#1 v1.5); ``Signature`` is the base64 of the signature;
* ``SigningCertURL`` names the PEM X.509 certificate whose public key verifies it.

The field names and their order in the body follow the documented examples and
``specs/sns-api.md`` sec. 4.16. Nothing here knows about HTTP: the caller supplies the
URLs, and the key (``pushgate.signing_key``).

Existing validators (``sns-validator`` on npm, the AWS SDKs' ``MessageValidator``,
Python's ``validatesns``) also require by default that ``SigningCertURL`` is on
``sns.<region>.amazonaws.com``; pointed at pushgate, their host pattern option must be set
to pushgate's host. pushgate serves the certificate under a path shaped like SNS's,
``/SimpleNotificationService-<hex>.pem``, so path checks pass unchanged.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SignatureVersion = Literal["1", "2"]
SnsMessage = dict[str, Any]

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

# The signed fields, in the order the string to sign lists them.
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_OPTIONAL = frozenset({"Subject"})
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: NOTIFICATION_FIELDS,
    SUBSCRIPTION_CONFIRMATION: CONFIRMATION_FIELDS,
    UNSUBSCRIBE_CONFIRMATION: CONFIRMATION_FIELDS,
}
# The order of the fields in the JSON body, as SNS sends them.
_BODY_ORDER = (
    "Type",
    "MessageId",
    "Token",
    "TopicArn",
    "Subject",
    "Message",
    "SubscribeURL",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "UnsubscribeURL",
    "MessageAttributes",
)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def sns_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as SNS writes ``Timestamp``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs for ``message`` (any of the three types)."""
    kind = message.get("Type")
    fields = SIGNED_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise ValueError(f"not a signed SNS message type: {kind!r}")
    parts: list[str] = []
    for name in fields:
        value = message.get(name)
        if value is None and name in _OPTIONAL:
            continue
        if not isinstance(value, str):
            raise ValueError(f"a {kind} message needs a string {name}")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


class Signer:
    """Signs SNS messages with one key, remembering the latest signatures.

    Every subscriber of a topic message gets the same signed fields (the
    ``UnsubscribeURL`` that differs is not signed), so one RSA operation serves them all;
    bench/subscribers.py measured signing at 15% of the sender's time before this.
    """

    def __init__(self, key: rsa.RSAPrivateKey, remember: int = 1024) -> None:
        self._key = key
        self._remember = remember
        self._signatures: dict[tuple[str, bytes], str] = {}

    def sign(
        self, message: Mapping[str, Any], signing_cert_url: str, version: SignatureVersion = "1"
    ) -> SnsMessage:
        """``message`` with ``SignatureVersion``, ``Signature`` and ``SigningCertURL``
        added, its fields in SNS's order. Version 1 (SHA1) is SNS's default for a topic."""
        if version not in _HASHES:
            raise ValueError(f"SignatureVersion must be 1 or 2, not {version!r}")
        data = string_to_sign(message)
        signature = self._signatures.get((version, data))
        if signature is None:
            raw = self._key.sign(data, padding.PKCS1v15(), _HASHES[version]())
            signature = base64.b64encode(raw).decode()
            if self._remember:
                if len(self._signatures) >= self._remember:
                    self._signatures.clear()
                self._signatures[(version, data)] = signature
        signed = {
            **message,
            "SignatureVersion": version,
            "Signature": signature,
            "SigningCertURL": signing_cert_url,
        }
        ordered = {name: signed[name] for name in _BODY_ORDER if name in signed}
        return ordered | {name: value for name, value in signed.items() if name not in ordered}


def sign(
    message: Mapping[str, Any],
    key: rsa.RSAPrivateKey,
    signing_cert_url: str,
    version: SignatureVersion = "1",
) -> SnsMessage:
    """One message signed with ``key`` (see :meth:`Signer.sign`)."""
    return Signer(key, remember=0).sign(message, signing_cert_url, version)


def notification(
    *,
    message_id: str,
    topic_arn: str,
    message: str,
    timestamp: datetime,
    unsubscribe_url: str,
    subject: str | None = None,
    message_attributes: Mapping[str, Mapping[str, str]] | None = None,
) -> SnsMessage:
    """An unsigned ``Notification``; ``message_attributes`` maps a name to its
    ``{"Type": ..., "Value": ...}`` (they are not signed, as in SNS)."""
    body: SnsMessage = {
        "Type": NOTIFICATION,
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": sns_timestamp(timestamp),
        "UnsubscribeURL": unsubscribe_url,
    }
    if subject is not None:
        body["Subject"] = subject
    if message_attributes:
        body["MessageAttributes"] = {k: dict(v) for k, v in message_attributes.items()}
    return body


def subscription_confirmation(
    *, message_id: str, topic_arn: str, token: str, subscribe_url: str, timestamp: datetime
) -> SnsMessage:
    """An unsigned ``SubscriptionConfirmation``, with SNS's wording in ``Message``."""
    return _confirmation(
        SUBSCRIPTION_CONFIRMATION,
        message_id=message_id,
        topic_arn=topic_arn,
        token=token,
        subscribe_url=subscribe_url,
        timestamp=timestamp,
        message=(
            f"You have chosen to subscribe to the topic {topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message."
        ),
    )


def unsubscribe_confirmation(
    *,
    message_id: str,
    topic_arn: str,
    subscription_arn: str,
    token: str,
    subscribe_url: str,
    timestamp: datetime,
) -> SnsMessage:
    """An unsigned ``UnsubscribeConfirmation``: its ``SubscribeURL`` restores the
    subscription, as in SNS."""
    return _confirmation(
        UNSUBSCRIBE_CONFIRMATION,
        message_id=message_id,
        topic_arn=topic_arn,
        token=token,
        subscribe_url=subscribe_url,
        timestamp=timestamp,
        message=(
            f"You have chosen to deactivate subscription {subscription_arn}.\n"
            "To cancel this operation and restore the subscription, visit the SubscribeURL "
            "included in this message."
        ),
    )


def _confirmation(
    kind: str,
    *,
    message_id: str,
    topic_arn: str,
    token: str,
    subscribe_url: str,
    timestamp: datetime,
    message: str,
) -> SnsMessage:
    return {
        "Type": kind,
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": message,
        "SubscribeURL": subscribe_url,
        "Timestamp": sns_timestamp(timestamp),
    }
