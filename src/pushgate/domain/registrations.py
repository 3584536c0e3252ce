"""The registration service: a device registers its push token after login, and pushgate
keeps one endpoint per device and knows whose device it is (issue 6).

Amazon SNS knows devices, not people; its token-management guidance (sns-api.md sec. 4.6)
leaves every app to create the endpoint if missing, recover it when the token exists,
re-create it when deleted, and update the token and re-enable it when they changed. One
:func:`register` call does all of that in one transaction:

1. The endpoint of the **device** (``device_id``, unique within an application) and the
   endpoint of the **token** are looked up.
2. Both exist and differ: the token moved to this device (a reinstall), so the device's
   old endpoint, whose token is stale, is deleted and the token's endpoint becomes the
   device's. Otherwise whichever exists is the device's endpoint.
3. None exists: a new endpoint. One exists: its token is replaced if the device refreshed
   it, it is enabled again (a fresh registration proves the token works), and it now
   belongs to the user who registered: whoever had it before loses it, so nobody
   receives someone else's notifications.

Concurrent registrations of the same token end with one endpoint: the token (and the
device id) are unique per application, and the loser of an insert race is retried and
finds the winner's endpoint (:meth:`pushgate.store.database.Database.write`).

Application events (:mod:`pushgate.domain.events`) report what a registration changed:
EndpointCreated for a new endpoint, EndpointDeleted for a device's stale endpoint, and
EndpointUpdated when the token, the user, CustomUserData or Enabled changed; a
registration that changes none of them reports nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from pushgate.domain import arns, events
from pushgate.domain.applications import get_or_404 as get_application_or_404
from pushgate.domain.endpoints import endpoint_row
from pushgate.domain.errors import InvalidParameter, NotFound, SnsError
from pushgate.domain.platforms import parse_platform
from pushgate.domain.runtime import Runtime
from pushgate.oidc import OidcConfig
from pushgate.store import applications as app_store
from pushgate.store import endpoints as store
from pushgate.store.applications import ApplicationRow
from pushgate.store.endpoints import EndpointRow, UserDevice


class ApplicationMisconfigured(SnsError):
    """The application's settings make the request impossible (an operator's to fix)."""

    code, status = "ApplicationMisconfigured", 500


MAX_ID = 256  # user and device ids (the columns' length)
MAX_LOCALE = 35  # BCP 47 tags in practice stay far below


@dataclass(frozen=True)
class Registration:
    """What a device sends. ``application`` is an application ARN, or its name (with
    ``platform`` when several applications share the name). ``user`` None registers the
    device without a user (logged out)."""

    application: str
    token: str
    platform: str | None = None
    device_id: str | None = None
    user: str | None = None
    locale: str | None = None
    custom_data: str | None = None
    attributes: Mapping[str, str] | None = None  # Baidu's ChannelId and UserId


@dataclass(frozen=True)
class Registered:
    endpoint_arn: str
    application_arn: str
    created: bool
    enabled: bool
    user: str | None
    device_id: str | None
    previous_user: str | None  # another user the device belonged to until now
    replaced_endpoint_arn: str | None  # the device's old endpoint, deleted


def _check_id(value: str | None, what: str) -> None:
    if value is not None and (not value or len(value) > MAX_ID or not value.isprintable()):
        raise InvalidParameter(f"{what} must be 1 to {MAX_ID} printable characters")


def _check(reg: Registration) -> None:
    _check_id(reg.user, "user")
    _check_id(reg.device_id, "deviceId")
    if reg.locale is not None and (
        not reg.locale or len(reg.locale) > MAX_LOCALE or not reg.locale.isascii()
    ):
        raise InvalidParameter(f"locale must be a language tag of at most {MAX_LOCALE} characters")


def resolve_application(
    conn: Connection, scope: arns.Scope, name: str, platform: str | None
) -> ApplicationRow:
    """The application named by ARN, or by name (and platform, when the name is shared)."""
    if name.startswith("arn:"):
        arns.check_application_arn(name, "application")
        app = get_application_or_404(conn, name)
        if platform is not None and platform != app.platform:
            raise InvalidParameter(
                f"platform {platform} does not match the application's platform {app.platform}"
            )
        return app
    if platform is not None:
        if parse_platform(platform) is None:
            raise InvalidParameter(f"platform {platform} is not supported")
        return get_application_or_404(conn, scope.application_arn(platform, name))
    found = app_store.by_name(conn, scope.region, name)
    if not found:
        raise NotFound("PlatformApplication does not exist")
    if len(found) > 1:
        platforms = ", ".join(sorted(app.platform for app in found))
        raise InvalidParameter(
            f"several applications are called {name} ({platforms}): name the platform"
        )
    return found[0]


def _apply(
    conn: Connection, scope: arns.Scope, rt: Runtime, reg: Registration, now: datetime
) -> tuple[Registered, int]:
    """The registration, and how many events it wrote."""
    app = resolve_application(conn, scope, reg.application, reg.platform)
    emitter = events.Emitter(conn, now)
    platform = parse_platform(app.platform)
    assert platform is not None
    given = dict(reg.attributes or {})
    if reg.custom_data is not None:
        given["CustomUserData"] = reg.custom_data
    wanted = endpoint_row(
        scope, platform, app.platform, app.name, reg.token, given, rt.device_hosts
    )

    device = store.by_device(conn, app.id, reg.device_id) if reg.device_id else None
    holder = store.by_token(conn, app.id, wanted.token)
    replaced: str | None = None
    if device is not None and holder is not None and device.id != holder.id:
        store.delete_by_id(conn, device.id)  # the device's old token is dead
        replaced, device = device.arn, None
        emitter.emit(app, events.DELETED, replaced)
    current = holder or device
    if current is None:
        wanted.application_id = app.id
        wanted.user_id, wanted.device_id, wanted.locale = reg.user, reg.device_id, reg.locale
        store.insert_one(conn, wanted, now)
        emitter.emit(app, events.CREATED, wanted.arn)
        registered = Registered(
            wanted.arn, app.arn, True, True, reg.user, reg.device_id, None, replaced
        )
    else:
        registered = _update(conn, app, current, wanted, reg, now, replaced, emitter)
    return registered, emitter.count


def _update(
    conn: Connection,
    app: ApplicationRow,
    current: EndpointRow,
    wanted: EndpointRow,
    reg: Registration,
    now: datetime,
    replaced: str | None,
    emitter: events.Emitter,
) -> Registered:
    previous = current.user_id if current.user_id != reg.user else None
    before = (current.token, current.enabled, current.user_id, current.custom_user_data)
    before_extra = current.extra_attributes
    enabled_changed = not current.enabled
    current.token, current.enabled = wanted.token, True
    current.user_id = reg.user
    if reg.device_id is not None:
        current.device_id = reg.device_id
    if reg.locale is not None:
        current.locale = reg.locale
    if reg.custom_data is not None:
        current.custom_user_data = reg.custom_data
    if wanted.extra_attributes:
        current.extra_attributes = {**(current.extra_attributes or {}), **wanted.extra_attributes}
    # Every registration refreshes the token (token_updated_at), changed or not: the device
    # proved it is alive, and stale-token pruning must not take it.
    store.save(conn, current, now, token_changed=True, enabled_changed=enabled_changed)
    after = (current.token, current.enabled, current.user_id, current.custom_user_data)
    if after != before or current.extra_attributes != before_extra:
        emitter.emit(app, events.UPDATED, current.arn)
    return Registered(
        current.arn,
        app.arn,
        False,
        True,
        current.user_id,
        current.device_id,
        previous,
        replaced,
    )


def _oidc_config(app: ApplicationRow) -> OidcConfig | None:
    attributes = app.attributes
    issuer = attributes.get("OidcIssuer")
    if not issuer:
        return None
    audience = attributes.get("OidcAudience", "")
    try:
        return OidcConfig(
            issuer=issuer,
            audience=tuple(a.strip() for a in audience.split(",") if a.strip()),
            jwks_url=attributes.get("OidcJwksUrl") or None,
            user_claim=attributes.get("OidcUserClaim") or "sub",
        )
    except ValueError as exc:
        raise ApplicationMisconfigured(f"the application's Oidc* attributes: {exc}") from None


class OidcConfigs:
    """Applications' own OpenID Connect settings (their Oidc* attributes), cached for
    ``ttl`` seconds: without the cache an identity-token registration read its
    application twice. A changed setting applies within ``ttl``."""

    def __init__(self, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._cache: dict[tuple[str, str | None], tuple[float, OidcConfig | None]] = {}

    async def get(
        self, rt: Runtime, scope: arns.Scope, application: str, platform: str | None
    ) -> OidcConfig | None:
        """None when the application has none of its own (the server-wide ones apply)."""
        key, now = (application, platform), self.clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached[0]:
            return cached[1]
        app = await rt.db.read(resolve_application, scope, application, platform)
        config = _oidc_config(app)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, config)
        return config


def _application_arn(scope: arns.Scope, reg: Registration) -> str | None:
    """The application's ARN when the request names it without a lookup."""
    if reg.application.startswith("arn:"):
        return reg.application if reg.platform is None else None
    if reg.platform is not None and parse_platform(reg.platform) is not None:
        return scope.application_arn(reg.platform, reg.application)
    return None


def _fast_row(
    rt: Runtime, scope: arns.Scope, reg: Registration, app_arn: str
) -> EndpointRow | None:
    """The endpoint a registration describes, from the ARN alone; None when the request
    needs the full path (invalid input is reported there, in order)."""
    if reg.attributes:
        return None
    try:
        _, platform_name, app_name = app_arn.split(":", 5)[5].split("/")
    except ValueError:
        return None
    platform = parse_platform(platform_name)
    if platform is None:
        return None
    given = {} if reg.custom_data is None else {"CustomUserData": reg.custom_data}
    try:
        row = endpoint_row(
            scope, platform, platform_name, app_name, reg.token, given, rt.device_hosts
        )
    except InvalidParameter:
        return None
    row.user_id, row.device_id, row.locale = reg.user, reg.device_id, reg.locale
    return row


async def register(rt: Runtime, scope: arns.Scope, reg: Registration) -> Registered:
    """Create or update the device's endpoint (see the module docstring).

    The two common calls take one statement each: a new device (an insert that does
    nothing when the token or the device id is taken) and the same device registering
    again as the same user (an update that matches only then); on PostgreSQL one upsert
    does both, a round trip each. Anything else, and both when they do not apply, takes
    the full transaction; so does every registration in an application with an
    EventEndpointCreated or EventEndpointUpdated topic (the one-statement paths skip it),
    since only the transaction can write the events with the change.
    """
    _check(reg)
    app_arn = _application_arn(scope, reg)
    row = None if app_arn is None else _fast_row(rt, scope, reg, app_arn)
    if app_arn is not None and row is not None and rt.db.dialect == "postgresql":
        arn = await rt.db.write_one_statement(store.upsert_registration, app_arn, row, rt.clock())
        if arn is not None:
            return Registered(
                arn, app_arn, arn == row.arn, True, reg.user, reg.device_id, None, None
            )
    elif app_arn is not None and row is not None:
        now = rt.clock()
        arn = await rt.db.write_one_statement(store.refresh_registration, app_arn, row, now)
        if arn is not None:
            return Registered(arn, app_arn, False, True, reg.user, reg.device_id, None, None)
        if await rt.db.write_one_statement(store.insert_new, app_arn, row, now):
            return Registered(row.arn, app_arn, True, True, reg.user, reg.device_id, None, None)
    registered, emitted = await rt.db.write(lambda conn: _apply(conn, scope, rt, reg, rt.clock()))
    if emitted:
        rt.work.notify()
    return registered


async def devices(rt: Runtime, user: str) -> list[UserDevice]:
    """Every endpoint of ``user``, across applications."""
    _check_id(user, "user")
    return await rt.db.read(store.of_user, user)


async def remove_device(rt: Runtime, user: str, endpoint_arn: str) -> None:
    """Delete one endpoint of ``user``; NotFound when it is not theirs (or gone)."""
    _check_id(user, "user")

    def tx(conn: Connection) -> int:
        endpoint = store.get(conn, endpoint_arn)
        if endpoint is None or endpoint.user_id != user:
            raise NotFound("Endpoint does not exist")
        store.delete_by_id(conn, endpoint.id)
        return _emit_deleted(conn, [(endpoint.arn, endpoint.application_id)], rt.clock())

    if await rt.db.write(tx):
        rt.work.notify()


async def remove_user(rt: Runtime, user: str) -> list[str]:
    """Logout everywhere, or account deletion: every endpoint of ``user`` is deleted."""
    _check_id(user, "user")

    def tx(conn: Connection) -> tuple[list[str], int]:
        deleted = store.delete_of_user(conn, user)
        return [arn for arn, _ in deleted], _emit_deleted(conn, deleted, rt.clock())

    removed, emitted = await rt.db.write(tx)
    if emitted:
        rt.work.notify()
    return removed


def _emit_deleted(conn: Connection, deleted: list[tuple[str, int]], now: datetime) -> int:
    """EndpointDeleted for each ``(endpoint ARN, application id)``; how many were written."""
    if not deleted:
        return 0
    apps = {a.id: a for a in app_store.by_ids(conn, sorted({app_id for _, app_id in deleted}))}
    emitter = events.Emitter(conn, now)
    for arn, app_id in deleted:
        app = apps.get(app_id)
        if app is not None:
            emitter.emit(app, events.DELETED, arn)
    return emitter.count
