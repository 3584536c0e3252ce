"""Platform applications: the credentials of one app on one push platform (SNS sec. 4.1-4.5).

WEBPUSH (pushgate's own platform) keeps a VAPID subject and key as its principal and
credential, with rules of its own (:func:`_vapid_pair`): the key is optional (pushgate makes
one), a half given on its own keeps the stored other half, and the read-only
``VapidPublicKey`` shows the key that browsers subscribe with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from pushgate import oidc
from pushgate.domain import arns, pagination
from pushgate.domain.attributes import bool_text, parse_bool, reject_unknown, require_map
from pushgate.domain.credentials import (
    PRINCIPAL_WITHOUT_CREDENTIAL,
    VAPID_SUBJECT_REQUIRED,
    check_credentials,
    generate_vapid_key,
    vapid_key_pem,
)
from pushgate.domain.errors import InvalidParameter, NotFound
from pushgate.domain.platforms import Platform, parse_platform
from pushgate.domain.runtime import Runtime
from pushgate.store import applications as store
from pushgate.store import topics as topic_store
from pushgate.store.applications import ApplicationRow

PRINCIPAL, CREDENTIAL = "PlatformPrincipal", "PlatformCredential"
EVENT_ATTRIBUTES = (
    "EventEndpointCreated",
    "EventEndpointDeleted",
    "EventEndpointUpdated",
    "EventDeliveryFailure",
)
# Beyond SNS: which OpenID Connect issuer vouches for the users who register devices of
# this application (the registration service); without them, the server-wide settings.
OIDC_ATTRIBUTES = ("OidcIssuer", "OidcAudience", "OidcJwksUrl", "OidcUserClaim")
SETTABLE = (
    PRINCIPAL,
    CREDENTIAL,
    "Enabled",
    *EVENT_ATTRIBUTES,
    "SuccessFeedbackRoleArn",
    "FailureFeedbackRoleArn",
    "SuccessFeedbackSampleRate",
    "ApplePlatformTeamID",
    "ApplePlatformBundleID",
    *OIDC_ATTRIBUTES,
)
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class ApplicationPage:
    applications: list[tuple[str, dict[str, str]]]
    next_token: str | None


def public_attributes(app: ApplicationRow) -> dict[str, str]:
    """What GetPlatformApplicationAttributes shows: never the credentials.

    Beyond SNS, an application whose credentials the provider rejected shows
    ``DeliveryHealth=Unhealthy`` with the provider's reason and since when, until the
    credentials are fixed (any SetPlatformApplicationAttributes clears it).
    """
    shown = {"Enabled": bool_text(app.enabled), **app.attributes}
    if app.unhealthy_reason is not None:
        shown["DeliveryHealth"] = "Unhealthy"
        shown["DeliveryHealthReason"] = app.unhealthy_reason
        if app.unhealthy_since is not None:
            shown["DeliveryHealthSince"] = app.unhealthy_since.isoformat()
    return shown


def _check_name(name: str) -> None:
    if not name:
        raise InvalidParameter("Invalid parameter:  Reason: cannot be empty")
    if len(name) > 256:
        raise InvalidParameter(
            f"Invalid parameter: {name} Reason: must be at most 256 characters long"
        )
    if not _NAME.fullmatch(name):
        raise InvalidParameter(
            f"Invalid parameter: {name} Reason: must contain only characters 'a'-'z', 'A'-'Z', "
            "'0'-'9', '_', '-', and '.'"
        )


def _check_settings(
    conn: Connection,
    attributes: Mapping[str, str],
    region: str,
    stored: Mapping[str, str] | None = None,
) -> None:
    """Event topics must be existing topics; the sample rate a percentage."""
    for name in EVENT_ATTRIBUTES:
        value = attributes.get(name)
        if not value:
            continue
        if arns.kind_of(value) != "topic":
            raise InvalidParameter(
                f"Invalid parameter: Attributes Reason: {name} has invalid ARN format"
            )
        if topic_store.get(conn, value) is None:
            raise InvalidParameter(
                f"Invalid parameter: Attributes Reason: {name} is not an existing Topic"
            )
    rate = attributes.get("SuccessFeedbackSampleRate")
    if rate is not None and not (rate.isdigit() and 0 <= int(rate) <= 100):
        raise InvalidParameter(
            "Invalid parameter: Attributes Reason: SuccessFeedbackSampleRate must be an "
            "integer from 0 to 100"
        )
    for name in ("OidcIssuer", "OidcJwksUrl"):
        value = attributes.get(name)
        if value and oidc.url_refusal(value) is not None:
            raise InvalidParameter(
                f"Invalid parameter: Attributes Reason: {name} {oidc.url_refusal(value)}"
            )
    audience = attributes.get("OidcAudience", (stored or {}).get("OidcAudience"))
    if attributes.get("OidcIssuer") and not audience:
        raise InvalidParameter(
            "Invalid parameter: Attributes Reason: OidcAudience is required with OidcIssuer"
        )
    for name in ("SuccessFeedbackRoleArn", "FailureFeedbackRoleArn"):
        value = attributes.get(name)
        if value and not value.startswith("arn:"):
            raise InvalidParameter(
                f"Invalid parameter: Attributes Reason: {name} has invalid ARN format"
            )


def _require_credential(platform: Platform, attributes: Mapping[str, str]) -> None:
    """A (non-empty) credential on every platform, FCM included; WEBPUSH needs its subject
    instead (the key can be generated)."""
    if platform is Platform.WEBPUSH:
        if not attributes.get(PRINCIPAL):
            raise InvalidParameter(VAPID_SUBJECT_REQUIRED)
        return
    if attributes.get(CREDENTIAL):
        return
    if attributes.get(PRINCIPAL):
        raise InvalidParameter(PRINCIPAL_WITHOUT_CREDENTIAL)
    # SNS's exact text for this case is not recorded (specs/sns-api.md sec. 4.1).
    raise InvalidParameter(
        "Invalid parameter: Attributes Reason: PlatformCredential attribute is required"
    )


def _apply_credentials(
    rt: Runtime, app: ApplicationRow, creds: Mapping[str, str], merged: dict[str, str]
) -> None:
    """Check, encrypt and store a new credential pair; ``merged`` gets the derived attributes.

    The pair given replaces the stored one whole, on creation as on
    SetPlatformApplicationAttributes: SNS wants principal and credential together in the
    request, so a half is never completed with the other half of the old pair (except on
    WEBPUSH, :func:`_vapid_pair`).
    """
    platform = parse_platform(app.platform)
    assert platform is not None
    if platform is Platform.WEBPUSH:
        creds = _vapid_pair(rt, app, creds)
    _require_credential(platform, creds)
    check = check_credentials(
        platform,
        creds.get(PRINCIPAL),
        creds.get(CREDENTIAL),
        merged,
        validate_format=rt.validate_credentials,
    )
    merged.pop("AuthenticationMethod", None)
    merged.pop("AppleCertificateExpiryDate", None)
    merged.pop("VapidPublicKey", None)
    if check.vapid_public_key:
        merged["VapidPublicKey"] = check.vapid_public_key
    if check.authentication_method:
        merged["AuthenticationMethod"] = check.authentication_method
    if check.apple_certificate_expiry:
        merged["AppleCertificateExpiryDate"] = check.apple_certificate_expiry
    app.credentials_encrypted = rt.secrets.encrypt(json.dumps(dict(creds)))
    app.enabled = True  # new credentials re-enable an application SNS disabled


def _vapid_pair(rt: Runtime, app: ApplicationRow, given: Mapping[str, str]) -> dict[str, str]:
    """The WEBPUSH subject and key after a create or set: a half not given is the stored
    one (a new subject keeps the key; a new key keeps the subject), a key never given is
    generated, and the key is stored as PKCS#8 PEM whichever form it came in."""
    stored = stored_credentials(rt, app)
    principal = given.get(PRINCIPAL) or stored.get(PRINCIPAL, "")
    credential = given.get(CREDENTIAL)
    if credential:
        credential = vapid_key_pem(credential)
    else:
        credential = stored.get(CREDENTIAL) or generate_vapid_key()
    return {PRINCIPAL: principal, CREDENTIAL: credential}


def _apply(rt: Runtime, app: ApplicationRow, given: Mapping[str, str]) -> None:
    """Merge ``given`` into ``app``: credentials checked and encrypted, the rest stored."""
    creds = {k: v for k, v in given.items() if k in (PRINCIPAL, CREDENTIAL)}
    settings = {k: v for k, v in given.items() if k not in (PRINCIPAL, CREDENTIAL, "Enabled")}
    merged = {**app.attributes, **settings}
    merged = {k: v for k, v in merged.items() if v != "" or k not in EVENT_ATTRIBUTES}
    if creds or app.credentials_encrypted is None:
        _apply_credentials(rt, app, creds, merged)
    if "Enabled" in given:
        app.enabled = parse_bool(given["Enabled"], "Enabled")
    app.attributes = merged


def stored_credentials(rt: Runtime, app: ApplicationRow) -> dict[str, str]:
    """The decrypted credentials, for the delivery side only; never returned by an API."""
    if app.credentials_encrypted is None:
        return {}
    creds: dict[str, str] = json.loads(rt.secrets.decrypt(app.credentials_encrypted))
    return creds


async def create(
    rt: Runtime, scope: arns.Scope, name: str, platform_name: str, attributes: Mapping[str, str]
) -> str:
    require_map(attributes)
    _check_name(name)
    platform = parse_platform(platform_name)
    if platform is None:
        raise InvalidParameter(
            f"Invalid parameter: Platform Reason: {platform_name} is not supported"
        )
    reject_unknown(attributes, SETTABLE)
    _require_credential(platform, attributes)
    arn = scope.application_arn(platform_name, name)

    def tx(conn: Connection) -> str:
        _check_settings(conn, attributes, scope.region)
        now = rt.clock()
        existing = store.get(conn, arn)
        if existing is not None:  # SNS returns the same ARN and applies the attributes
            _apply(rt, existing, attributes)
            store.save(conn, existing, now)
            return arn
        app = ApplicationRow(
            id=0,
            arn=arn,
            region=scope.region,
            platform=platform_name,
            name=name,
            enabled=True,
            attributes={},
            credentials_encrypted=None,
        )
        _apply(rt, app, attributes)
        store.insert_one(conn, app, now)
        return arn

    return await rt.db.write(tx)


def get_or_404(conn: Connection, arn: str) -> ApplicationRow:
    app = store.get(conn, arn)
    if app is None:
        raise NotFound("PlatformApplication does not exist")
    return app


async def get_attributes(rt: Runtime, arn: str) -> dict[str, str]:
    arns.check_application_arn(arn)
    app = await rt.db.read(get_or_404, arn)
    return public_attributes(app)


async def set_attributes(
    rt: Runtime, scope: arns.Scope, arn: str, attributes: Mapping[str, str]
) -> None:
    arns.check_application_arn(arn)
    require_map(attributes)

    def tx(conn: Connection) -> None:
        app = get_or_404(conn, arn)
        reject_unknown(attributes, SETTABLE)
        _check_settings(conn, attributes, scope.region, app.attributes)
        _apply(rt, app, attributes)
        store.save(conn, app, rt.clock())

    await rt.db.write(tx)


async def delete(rt: Runtime, arn: str) -> None:
    """Idempotent; the application's endpoints go with it, without EndpointDeleted
    events: the application and its event settings are gone (domain/events.py)."""
    arns.check_application_arn(arn)
    await rt.db.write(store.delete_one, arn)


async def list_page(rt: Runtime, scope: arns.Scope, next_token: str | None) -> ApplicationPage:
    after = pagination.decode(next_token)
    rows = await rt.db.read(store.page, scope.region, after, pagination.PAGE_SIZE + 1)
    return ApplicationPage(
        applications=[(r.arn, public_attributes(r)) for r in rows[: pagination.PAGE_SIZE]],
        next_token=pagination.next_token([r.id for r in rows]),
    )
