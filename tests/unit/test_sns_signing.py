"""SNS message signing, checked by a verifier written here from AWS's documented algorithm
("Verifying the signatures of Amazon SNS messages"), sharing no code with pushgate's
signer: its own field lists, its own string to sign, cryptography's RSA verify.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgate import signing_key
from pushgate.domain import signing
from tests.sns_subscriber import verify_with_certificate

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
CERT_URL = "https://pushgate.example/SimpleNotificationService-0123.pem"
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


# --- the independent verifier -------------------------------------------------------------


def verify(body: str, cert_pem: bytes) -> dict[str, Any]:
    """Verify an SNS message body as a subscriber would (tests/sns_subscriber.py, which
    shares no code with pushgate's signer); return it parsed."""
    msg: dict[str, Any] = json.loads(body)
    verify_with_certificate(msg, cert_pem)
    return msg


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> signing_key.SigningKey:
    return signing_key.generate()


def _messages() -> dict[str, dict[str, Any]]:
    return {
        "notification": signing.notification(
            message_id="6f1a7b30-0000-4000-8000-000000000001",
            topic_arn=TOPIC,
            message='{"order": 7}\nsecond line "quoted" é',
            timestamp=WHEN,
            unsubscribe_url="https://pushgate.example/?Action=Unsubscribe&SubscriptionArn=x",
            message_attributes={"color": {"Type": "String", "Value": "blue"}},
        ),
        "notification-with-subject": signing.notification(
            message_id="6f1a7b30-0000-4000-8000-000000000002",
            topic_arn=TOPIC,
            message="hello",
            subject="Greetings\nfrom pushgate",
            timestamp=WHEN,
            unsubscribe_url="https://pushgate.example/?Action=Unsubscribe&SubscriptionArn=x",
        ),
        "subscription-confirmation": signing.subscription_confirmation(
            message_id="6f1a7b30-0000-4000-8000-000000000003",
            topic_arn=TOPIC,
            token="2336412f37fb687f5d51e6e2425c464de12884",
            subscribe_url="https://pushgate.example/?Action=ConfirmSubscription&Token=2336",
            timestamp=WHEN,
        ),
        "unsubscribe-confirmation": signing.unsubscribe_confirmation(
            message_id="6f1a7b30-0000-4000-8000-000000000004",
            topic_arn=TOPIC,
            subscription_arn=TOPIC + ":2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
            token="2336412f37fb687f5d51e6e2425c464de12884",
            subscribe_url="https://pushgate.example/?Action=ConfirmSubscription&Token=2336",
            timestamp=WHEN,
        ),
    }


MESSAGES = _messages()


# --- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("name", list(MESSAGES))
def test_signed_messages_verify_independently(
    key: signing_key.SigningKey, name: str, version: signing.SignatureVersion
) -> None:
    signed = signing.sign(MESSAGES[name], key.private_key, CERT_URL, version)
    body = json.dumps(signed)  # as posted: JSON escapes the newlines and quotes
    got = verify(body, key.cert_pem)
    assert got["SignatureVersion"] == version
    assert got["SigningCertURL"] == CERT_URL


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("name", list(MESSAGES))
@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp", "TopicArn"])
def test_tampering_with_a_signed_field_fails(
    key: signing_key.SigningKey, name: str, version: signing.SignatureVersion, field: str
) -> None:
    signed = signing.sign(MESSAGES[name], key.private_key, CERT_URL, version)
    signed[field] += "x"
    with pytest.raises(InvalidSignature):
        verify(json.dumps(signed), key.cert_pem)


@pytest.mark.parametrize("version", ["1", "2"])
def test_tampering_with_the_type_fails(
    key: signing_key.SigningKey, version: signing.SignatureVersion
) -> None:
    """The two confirmations sign the same fields: only Type tells them apart."""
    signed = signing.sign(MESSAGES["unsubscribe-confirmation"], key.private_key, CERT_URL, version)
    signed["Type"] = "SubscriptionConfirmation"
    with pytest.raises(InvalidSignature):
        verify(json.dumps(signed), key.cert_pem)


@pytest.mark.parametrize("version", ["1", "2"])
def test_tampering_with_confirmation_token_and_url_fails(
    key: signing_key.SigningKey, version: signing.SignatureVersion
) -> None:
    for field in ("Token", "SubscribeURL"):
        signed = signing.sign(
            MESSAGES["subscription-confirmation"], key.private_key, CERT_URL, version
        )
        signed[field] += "x"
        with pytest.raises(InvalidSignature):
            verify(json.dumps(signed), key.cert_pem)


def test_adding_or_changing_a_subject_fails(key: signing_key.SigningKey) -> None:
    signed = signing.sign(MESSAGES["notification"], key.private_key, CERT_URL, "2")
    signed["Subject"] = "injected"
    with pytest.raises(InvalidSignature):
        verify(json.dumps(signed), key.cert_pem)
    signed = signing.sign(MESSAGES["notification-with-subject"], key.private_key, CERT_URL, "2")
    del signed["Subject"]
    with pytest.raises(InvalidSignature):
        verify(json.dumps(signed), key.cert_pem)


def test_the_versions_are_not_interchangeable(key: signing_key.SigningKey) -> None:
    signed = signing.sign(MESSAGES["notification"], key.private_key, CERT_URL, "1")
    signed["SignatureVersion"] = "2"
    with pytest.raises(InvalidSignature):
        verify(json.dumps(signed), key.cert_pem)


def test_another_key_does_not_verify(key: signing_key.SigningKey) -> None:
    other = signing_key.generate()
    signed = signing.sign(MESSAGES["notification"], other.private_key, CERT_URL, "2")
    with pytest.raises(InvalidSignature):
        verify(json.dumps(signed), key.cert_pem)


def test_unsigned_fields_may_change(key: signing_key.SigningKey) -> None:
    """As in SNS: UnsubscribeURL and MessageAttributes are outside the signature."""
    signed = signing.sign(MESSAGES["notification"], key.private_key, CERT_URL, "2")
    signed["UnsubscribeURL"] = "https://elsewhere.example/"
    signed["MessageAttributes"] = {}
    verify(json.dumps(signed), key.cert_pem)


def test_field_names_and_order_follow_sns() -> None:
    key = signing_key.generate()
    note = signing.sign(MESSAGES["notification-with-subject"], key.private_key, CERT_URL, "1")
    assert list(note) == [
        "Type",
        "MessageId",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
        "UnsubscribeURL",
    ]
    conf = signing.sign(MESSAGES["subscription-confirmation"], key.private_key, CERT_URL, "1")
    assert list(conf) == [
        "Type",
        "MessageId",
        "Token",
        "TopicArn",
        "Message",
        "SubscribeURL",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ]
    assert conf["Type"] == "SubscriptionConfirmation"
    assert conf["Message"] == (
        f"You have chosen to subscribe to the topic {TOPIC}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )
    unsub = MESSAGES["unsubscribe-confirmation"]
    assert unsub["Type"] == "UnsubscribeConfirmation"
    assert "restore the subscription" in unsub["Message"]
    assert MESSAGES["notification"]["MessageAttributes"] == {
        "color": {"Type": "String", "Value": "blue"}
    }
    assert "Subject" not in MESSAGES["notification"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (WHEN, "2024-05-06T07:08:09.123Z"),
        (datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01T00:00:00.000Z"),
        (datetime.fromisoformat("2024-01-01T02:00:00.999999+02:00"), "2024-01-01T00:00:00.999Z"),
    ],
)
def test_timestamp_is_utc_with_milliseconds(moment: datetime, expected: str) -> None:
    assert signing.sns_timestamp(moment) == expected


def test_bad_input_is_refused(key: signing_key.SigningKey) -> None:
    with pytest.raises(ValueError, match="SignatureVersion"):
        signing.sign(MESSAGES["notification"], key.private_key, CERT_URL, "3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="message type"):
        signing.string_to_sign({"Type": "Other"})
    with pytest.raises(ValueError, match="Token"):
        signing.string_to_sign({**MESSAGES["subscription-confirmation"], "Token": None})


def test_certificate_names_and_url(key: signing_key.SigningKey) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", key.cert_id)
    assert key.cert_path == f"/SimpleNotificationService-{key.cert_id}.pem"
    assert key.cert_url("https://push.example.org/") == (
        f"https://push.example.org/SimpleNotificationService-{key.cert_id}.pem"
    )
    public = key.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert key.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_a_stored_key_with_a_foreign_certificate_is_refused() -> None:
    a, b = signing_key.generate(), signing_key.generate()
    mixed = signing_key.dumps(a).split(b"-----BEGIN CERTIFICATE-----")[0] + b.cert_pem
    with pytest.raises(ValueError, match="not the signing key's"):
        signing_key.loads(mixed)
    with pytest.raises(ValueError, match="no certificate"):
        signing_key.loads(b"garbage")


def test_a_signer_signs_a_message_once_for_every_subscriber(
    key: signing_key.SigningKey,
) -> None:
    """The UnsubscribeURL differs per subscriber but is not signed: one RSA operation."""
    calls: list[bytes] = []

    class CountingKey:
        def sign(self, data: bytes, *args: Any) -> bytes:
            calls.append(data)
            return key.private_key.sign(data, *args)

    signer = signing.Signer(CountingKey(), remember=2)  # type: ignore[arg-type]
    base = dict(MESSAGES["notification"])
    first = signer.sign(base | {"UnsubscribeURL": "https://x/?a=1"}, CERT_URL, "2")
    second = signer.sign(base | {"UnsubscribeURL": "https://x/?a=2"}, CERT_URL, "2")
    assert first["Signature"] == second["Signature"] and len(calls) == 1
    for signed in (first, second):
        verify(json.dumps(signed), key.cert_pem)
    signer.sign(base, CERT_URL, "1")  # another version: another signature
    signer.sign(base | {"Message": "other"}, CERT_URL, "2")  # the memory is full: cleared
    signer.sign(base, CERT_URL, "2")
    assert len(calls) == 4
