"""Platform endpoints: one device token in one application (SNS sec. 4.6-4.10).

The duplicate-token rule is the one clients depend on most: the same token with the same
(explicitly given) attributes returns the existing ARN; with different ones it is an error
whose message carries the existing ARN, which clients extract with a regular expression.

Each change reports its application event (:mod:`pushgate.domain.events`): EndpointCreated
only for a new endpoint (not for the existing one returned again), EndpointUpdated only
when an attribute changed, EndpointDeleted only when an endpoint was deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from pushgate.domain import arns, events, pagination
from pushgate.domain.applications import get_or_404 as get_application_or_404
from pushgate.domain.attributes import bool_text, parse_bool, reject_unknown, require_map
from pushgate.domain.errors import InvalidParameter, NotFound
from pushgate.domain.platforms import APPLE_PLATFORMS, Platform, parse_platform
from pushgate.domain.runtime import Runtime
from pushgate.providers import hosts, webpush
from pushgate.providers.hosts import DeviceHosts
from pushgate.store import applications as app_store
from pushgate.store import endpoints as store
from pushgate.store.endpoints import EndpointRow

ATTRIBUTES = ("CustomUserData", "Enabled", "Token")
BAIDU_ATTRIBUTES = ("ChannelId", "UserId")
MAX_CUSTOM_USER_DATA = 2048


@dataclass(frozen=True)
class EndpointPage:
    endpoints: list[tuple[str, dict[str, str]]]
    next_token: str | None


def public_attributes(e: EndpointRow) -> dict[str, str]:
    attributes = {"Enabled": bool_text(e.enabled), "Token": e.token}
    if e.custom_user_data is not None:
        attributes["CustomUserData"] = e.custom_user_data
    if e.extra_attributes:
        attributes.update(e.extra_attributes)
    return attributes


def _allowed(platform: Platform) -> tuple[str, ...]:
    return ATTRIBUTES + BAIDU_ATTRIBUTES if platform is Platform.BAIDU else ATTRIBUTES


def _check_custom_user_data(value: str) -> None:
    if len(value.encode()) > MAX_CUSTOM_USER_DATA:
        raise InvalidParameter(
            "Invalid parameter: Attributes Reason: Invalid value for attribute: CustomUserData: "
            "must be at most 2048 bytes long in UTF-8 encoding"
        )


def _check_baidu(token: str, extra: Mapping[str, str] | None) -> None:
    """Baidu endpoints need ChannelId and UserId, and the token must contain the ChannelId."""
    if not extra or not all(extra.get(k) for k in BAIDU_ATTRIBUTES):
        raise InvalidParameter(
            "Invalid parameter: Attributes Reason: ChannelId and UserId are required for "
            "Baidu endpoints"
        )
    # Documented for CreatePlatformEndpoint; SNS's wording is not recorded. [I]
    if extra["ChannelId"] not in token:
        raise InvalidParameter("Invalid parameter: Token Reason: Token must contain the ChannelId")


def _normalise_token(platform: Platform, token: str, device_hosts: DeviceHosts) -> str:
    if not token:
        raise InvalidParameter("Invalid parameter: Token Reason: Token is not specified")
    # SNS reports APNs tokens in lower case: normalise on write (sns-api.md sec. 4.6).
    if platform in APPLE_PLATFORMS:
        return token.lower()
    if platform is Platform.WNS:
        _check_device_url(token, device_hosts.wns, "PUSHGATE_WNS_ALLOWED_HOSTS", ("https",))
    elif platform is Platform.MPNS:
        schemes = ("http", "https")
        _check_device_url(token, device_hosts.mpns, "PUSHGATE_MPNS_ALLOWED_HOSTS", schemes)
    elif platform is Platform.WEBPUSH:
        return _webpush_token(token, device_hosts)
    return token


def _webpush_token(token: str, device_hosts: DeviceHosts) -> str:
    """A browser's PushSubscription JSON, checked and in one canonical spelling, so that
    the same subscription is always the same token (tokens are unique per application)."""
    try:
        subscription = webpush.parse_subscription(token)
    except ValueError as exc:
        raise InvalidParameter(f"Invalid parameter: Token Reason: {exc}") from None
    _check_device_url(
        subscription.endpoint,
        device_hosts.webpush,
        "PUSHGATE_WEBPUSH_ALLOWED_HOSTS",
        ("https",),
        what="push service endpoint",
    )
    return webpush.canonical_token(subscription)


def _check_device_url(
    url: str,
    allowed: tuple[str, ...],
    setting: str,
    schemes: tuple[str, ...],
    what: str = "channel URI",
) -> None:
    """A URL chosen by a device must point at the provider: pushgate would otherwise
    send requests wherever a client tells it (server-side request forgery)."""
    reason = hosts.refusal(url, allowed, schemes)
    if reason is not None:
        raise InvalidParameter(
            f"Invalid parameter: Token Reason: the {what} is refused: {reason} ({setting})"
        )


def _platform_of(app_platform: str) -> Platform:
    platform = parse_platform(app_platform)
    assert platform is not None
    return platform


def already_exists(arn: str) -> InvalidParameter:
    return InvalidParameter(
        f"Invalid parameter: Token Reason: Endpoint {arn} already exists with the same Token, "
        "but different attributes."
    )


def endpoint_row(
    scope: arns.Scope,
    platform: Platform,
    platform_name: str,
    app_name: str,
    token: str,
    given: Mapping[str, str],
    device_hosts: DeviceHosts,
) -> EndpointRow:
    """The endpoint a create request describes, validated (application id left at 0)."""
    reject_unknown(given, _allowed(platform))
    if "CustomUserData" in given:
        _check_custom_user_data(given["CustomUserData"])
    enabled = parse_bool(given["Enabled"], "Enabled") if "Enabled" in given else None
    extra = {k: given[k] for k in BAIDU_ATTRIBUTES if k in given} or None
    normalised = _normalise_token(platform, token, device_hosts)
    if platform is Platform.BAIDU:
        _check_baidu(normalised, extra)
    return EndpointRow(
        id=0,
        application_id=0,
        arn=scope.endpoint_arn(platform_name, app_name, str(uuid.uuid4())),
        token=normalised,
        enabled=True if enabled is None else enabled,
        custom_user_data=given.get("CustomUserData"),
        extra_attributes=extra,
    )


def _new_endpoint(
    scope: arns.Scope,
    application_arn: str,
    token: str,
    given: Mapping[str, str],
    device_hosts: DeviceHosts,
) -> EndpointRow | None:
    """The endpoint to insert on the fast path, built from the application ARN alone; None
    when the request needs the full path (it is invalid, or names no known platform)."""
    _, platform_name, app_name = application_arn.split(":", 5)[5].split("/")
    platform = parse_platform(platform_name)
    if platform is None:
        return None
    try:
        return endpoint_row(scope, platform, platform_name, app_name, token, given, device_hosts)
    except InvalidParameter:
        return None


async def create(
    rt: Runtime,
    scope: arns.Scope,
    application_arn: str,
    token: str,
    custom_user_data: str | None,
    attributes: Mapping[str, str],
) -> str:
    arns.check_application_arn(application_arn)
    given = dict(attributes)
    if custom_user_data is not None and "CustomUserData" not in given:
        given["CustomUserData"] = custom_user_data  # the attribute wins over the parameter
    token = given.pop("Token", token)

    fast = _new_endpoint(scope, application_arn, token, given, rt.device_hosts)
    if fast is not None and await rt.db.write_one_statement(
        store.insert_new, application_arn, fast, rt.clock()
    ):
        return fast.arn

    def tx(conn: Connection) -> tuple[str, bool]:
        # The application is missing, the token is taken, the request is invalid, or the
        # application wants EndpointCreated events: the full path, with its checks in
        # SNS's order.
        app = get_application_or_404(conn, application_arn)
        platform = _platform_of(app.platform)
        row = endpoint_row(scope, platform, app.platform, app.name, token, given, rt.device_hosts)
        row.application_id = app.id
        existing = store.by_token(conn, app.id, row.token)
        if existing is not None:
            enabled = parse_bool(given["Enabled"], "Enabled") if "Enabled" in given else None
            same = (enabled is None or enabled == existing.enabled) and (
                "CustomUserData" not in given
                or given["CustomUserData"] == existing.custom_user_data
            )
            if not same:
                raise already_exists(existing.arn)
            return existing.arn, False  # nothing was created: no event
        now = rt.clock()
        store.insert_one(conn, row, now)
        return row.arn, events.emit(conn, app, events.CREATED, row.arn, now)

    arn, emitted = await rt.db.write(tx)
    if emitted:
        rt.work.notify()
    return arn


def _get_or_404(conn: Connection, arn: str) -> EndpointRow:
    endpoint = store.get(conn, arn)
    if endpoint is None:
        raise NotFound("Endpoint does not exist")
    return endpoint


def _emit_for(
    conn: Connection, application_id: int, event_type: str, endpoint_arn: str, now: datetime
) -> bool:
    """Emit ``event_type`` for an endpoint of the application with this id (when the
    application wants it); True when an event was written."""
    apps = app_store.by_ids(conn, [application_id])
    return bool(apps) and events.emit(conn, apps[0], event_type, endpoint_arn, now)


async def get_attributes(rt: Runtime, arn: str) -> dict[str, str]:
    arns.check_endpoint_arn(arn)
    return public_attributes(await rt.db.read(_get_or_404, arn))


async def set_attributes(rt: Runtime, arn: str, attributes: Mapping[str, str]) -> None:
    arns.check_endpoint_arn(arn)
    require_map(attributes)

    def tx(conn: Connection) -> bool:
        endpoint = _get_or_404(conn, arn)
        before = public_attributes(endpoint)
        app_platform = arn.split(":", 5)[5].split("/")[1]
        platform = _platform_of(app_platform)
        reject_unknown(attributes, _allowed(platform))
        token_changed = enabled_changed = False
        if "CustomUserData" in attributes:
            _check_custom_user_data(attributes["CustomUserData"])
            endpoint.custom_user_data = attributes["CustomUserData"]
        if "Enabled" in attributes:
            enabled = parse_bool(attributes["Enabled"], "Enabled")
            enabled_changed = enabled != endpoint.enabled
            endpoint.enabled = enabled
        if "Token" in attributes:
            token = _normalise_token(platform, attributes["Token"], rt.device_hosts)
            if token != endpoint.token:
                other = store.by_token(conn, endpoint.application_id, token)
                if other is not None:
                    raise already_exists(other.arn)
                endpoint.token, token_changed = token, True
        extra = {k: attributes[k] for k in BAIDU_ATTRIBUTES if k in attributes}
        if extra:
            endpoint.extra_attributes = {**(endpoint.extra_attributes or {}), **extra}
        if platform is Platform.BAIDU and (extra or token_changed):
            _check_baidu(endpoint.token, endpoint.extra_attributes)
        now = rt.clock()
        store.save(
            conn, endpoint, now, token_changed=token_changed, enabled_changed=enabled_changed
        )
        if public_attributes(endpoint) == before:
            return False  # nothing changed: no EndpointUpdated
        return _emit_for(conn, endpoint.application_id, events.UPDATED, arn, now)

    if await rt.db.write(tx):
        rt.work.notify()


async def delete(rt: Runtime, arn: str) -> None:
    """Idempotent; subscriptions naming the endpoint stay, as on SNS."""
    arns.check_endpoint_arn(arn)

    def tx(conn: Connection) -> bool:
        application_id = store.delete_one(conn, arn)
        if application_id is None:
            return False  # nothing was deleted: no EndpointDeleted
        return _emit_for(conn, application_id, events.DELETED, arn, rt.clock())

    if await rt.db.write(tx):
        rt.work.notify()


async def list_page(rt: Runtime, application_arn: str, next_token: str | None) -> EndpointPage:
    arns.check_application_arn(application_arn)
    after = pagination.decode(next_token)

    def tx(conn: Connection) -> list[EndpointRow]:
        app = get_application_or_404(conn, application_arn)
        return store.page(conn, app.id, after, pagination.PAGE_SIZE + 1)

    rows = await rt.db.read(tx)
    return EndpointPage(
        endpoints=[(r.arn, public_attributes(r)) for r in rows[: pagination.PAGE_SIZE]],
        next_token=pagination.next_token([r.id for r in rows]),
    )
