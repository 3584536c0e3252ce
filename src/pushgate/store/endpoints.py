"""Queries on ``endpoints``: millions per application, so every lookup is indexed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pushgate.store.sqlite import RawStatement
from pushgate.store.tables import endpoints as t
from pushgate.store.tables import platform_applications as apps


@dataclass
class EndpointRow:
    id: int
    application_id: int
    arn: str
    token: str
    enabled: bool
    custom_user_data: str | None
    extra_attributes: dict[str, str] | None
    # The registration service's: who is logged in on the device, and which device it is.
    user_id: str | None = None
    device_id: str | None = None
    locale: str | None = None


_COLUMNS = (
    t.c.id,
    t.c.application_id,
    t.c.arn,
    t.c.token,
    t.c.enabled,
    t.c.custom_user_data,
    t.c.extra_attributes,
    t.c.user_id,
    t.c.device_id,
    t.c.locale,
)


def _row(r: Any) -> EndpointRow:
    extra = dict(r.extra_attributes) if r.extra_attributes else None
    return EndpointRow(
        r.id,
        r.application_id,
        r.arn,
        r.token,
        r.enabled,
        r.custom_user_data,
        extra,
        r.user_id,
        r.device_id,
        r.locale,
    )


# The hot statements are built once: building a statement costs more than running it.
_BY_ARN = select(*_COLUMNS).where(t.c.arn == bindparam("arn"))
_BY_TOKEN = select(*_COLUMNS).where(
    t.c.application_id == bindparam("application_id"), t.c.token == bindparam("token")
)
_INSERT = insert(t).returning(t.c.id)


_NEW_COLUMNS = (
    "arn",
    "token",
    "enabled",
    "custom_user_data",
    "extra_attributes",
    "user_id",
    "device_id",
    "locale",
    "created_at",
    "updated_at",
    "token_updated_at",
    "disabled_at",
)


def _no_topic_for(*attributes: str) -> list[ColumnElement[bool]]:
    """The application names no topic for these events (domain/events.py).

    The one-statement fast paths cannot write an event in their statement, so they skip an
    application that wants one, and its request takes the full path, which does.
    """
    return [apps.c.attributes[name].as_string().is_(None) for name in attributes]


def _insert_new(dialect_insert: Any) -> Insert:
    """INSERT .. SELECT the application's id .. ON CONFLICT DO NOTHING: the token, or the
    device id of a registration, is already taken."""
    source = select(
        apps.c.id, *(bindparam(name, type_=t.c[name].type) for name in _NEW_COLUMNS)
    ).where(apps.c.arn == bindparam("application_arn"), *_no_topic_for("EventEndpointCreated"))
    stmt: Insert = (
        dialect_insert(t)
        .from_select(["application_id", *_NEW_COLUMNS], source)
        .on_conflict_do_nothing()
        .returning(t.c.id)
    )
    return stmt


_INSERT_NEW_POSTGRESQL = _insert_new(postgresql.insert)
_INSERT_NEW_SQLITE = RawStatement(_insert_new(sqlite.insert))


def _values(e: EndpointRow, now: datetime) -> dict[str, Any]:
    return {
        "arn": e.arn,
        "token": e.token,
        "enabled": e.enabled,
        "custom_user_data": e.custom_user_data,
        "extra_attributes": e.extra_attributes,
        "user_id": e.user_id,
        "device_id": e.device_id,
        "locale": e.locale,
        "created_at": now,
        "updated_at": now,
        "token_updated_at": now,
        "disabled_at": None if e.enabled else now,
    }


def insert_new(conn: Connection, application_arn: str, e: EndpointRow, now: datetime) -> bool:
    """Insert ``e`` into the application named by ARN in one statement, unless the application
    does not exist, already has the token, or wants EndpointCreated events: False then, and
    nothing is written.

    The common case of CreatePlatformEndpoint, a new token, costs one statement instead of
    three (read the application, look for the token, insert).
    """
    values = _values(e, now)
    values["application_arn"] = application_arn
    if conn.dialect.name == "sqlite":
        return bool(_INSERT_NEW_SQLITE.execute(conn, values))
    return conn.execute(_INSERT_NEW_POSTGRESQL, values).first() is not None


def get(conn: Connection, arn: str) -> EndpointRow | None:
    r = conn.execute(_BY_ARN, {"arn": arn}).first()
    return _row(r) if r else None


def by_token(conn: Connection, application_id: int, token: str) -> EndpointRow | None:
    r = conn.execute(_BY_TOKEN, {"application_id": application_id, "token": token}).first()
    return _row(r) if r else None


def insert_one(conn: Connection, e: EndpointRow, now: datetime) -> int:
    values = _values(e, now)
    values["application_id"] = e.application_id
    return int(conn.execute(_INSERT, values).scalar_one())


# Built once, one per combination of what else changes: building an UPDATE costs five
# times what running it does (bench/README.md, registrations).
_SAVED_COLUMNS = (
    "token",
    "enabled",
    "custom_user_data",
    "extra_attributes",
    "user_id",
    "device_id",
    "locale",
    "updated_at",
)
_SAVES = {
    (token_changed, enabled_changed): update(t)
    .where(t.c.id == bindparam("eid"))
    .values(
        {
            **{name: bindparam(f"v_{name}") for name in _SAVED_COLUMNS},
            **({"token_updated_at": bindparam("v_updated_at")} if token_changed else {}),
            **({"disabled_at": bindparam("v_disabled_at")} if enabled_changed else {}),
        }
    )
    for token_changed in (False, True)
    for enabled_changed in (False, True)
}


def save(
    conn: Connection, e: EndpointRow, now: datetime, *, token_changed: bool, enabled_changed: bool
) -> None:
    values: dict[str, Any] = {
        "eid": e.id,
        "v_token": e.token,
        "v_enabled": e.enabled,
        "v_custom_user_data": e.custom_user_data,
        "v_extra_attributes": e.extra_attributes,
        "v_user_id": e.user_id,
        "v_device_id": e.device_id,
        "v_locale": e.locale,
        "v_updated_at": now,
        "v_disabled_at": None if e.enabled else now,
    }
    conn.execute(_SAVES[(token_changed, enabled_changed)], values)


def delete_one(conn: Connection, arn: str) -> int | None:
    """Delete the endpoint; its application's id, None when there was none."""
    row = conn.execute(delete(t).where(t.c.arn == arn).returning(t.c.application_id)).first()
    return None if row is None else int(row[0])


# --- the registration service: devices and users ------------------------------------------

_BY_DEVICE = select(*_COLUMNS).where(
    t.c.application_id == bindparam("application_id"), t.c.device_id == bindparam("device_id")
)


def by_device(conn: Connection, application_id: int, device_id: str) -> EndpointRow | None:
    r = conn.execute(_BY_DEVICE, {"application_id": application_id, "device_id": device_id}).first()
    return _row(r) if r else None


_REFRESH = (
    update(t)
    .where(
        t.c.application_id
        == select(apps.c.id)
        .where(apps.c.arn == bindparam("application_arn"), *_no_topic_for("EventEndpointUpdated"))
        .scalar_subquery(),
        t.c.token == bindparam("b_token"),
        t.c.device_id.is_not_distinct_from(bindparam("b_device_id", type_=t.c.device_id.type)),
        t.c.user_id.is_not_distinct_from(bindparam("b_user_id", type_=t.c.user_id.type)),
    )
    .values(
        enabled=True,
        disabled_at=None,
        locale=func.coalesce(bindparam("b_locale", type_=t.c.locale.type), t.c.locale),
        custom_user_data=func.coalesce(
            bindparam("b_custom_user_data", type_=t.c.custom_user_data.type),
            t.c.custom_user_data,
        ),
        updated_at=bindparam("now"),
        token_updated_at=bindparam("now"),
    )
    .returning(t.c.arn)
)
_REFRESH_SQLITE = RawStatement(_REFRESH)


def refresh_registration(
    conn: Connection,
    application_arn: str,
    e: EndpointRow,
    now: datetime,
) -> str | None:
    """The common re-registration in one statement: the same device (or none), token and
    user as stored. Enables the endpoint and refreshes its token's age; the ARN, or None
    when nothing matched exactly, or the application wants EndpointUpdated events (the
    caller then takes the full path)."""
    values = {
        "application_arn": application_arn,
        "b_token": e.token,
        "b_device_id": e.device_id,
        "b_user_id": e.user_id,
        "b_locale": e.locale,
        "b_custom_user_data": e.custom_user_data,
        "now": now,
    }
    if conn.dialect.name == "sqlite":
        rows = _REFRESH_SQLITE.execute(conn, values)
        return str(rows[0][0]) if rows else None
    row = conn.execute(_REFRESH, values).first()
    return None if row is None else str(row.arn)


def _upsert_registration() -> Insert:
    """PostgreSQL's one statement for both common registrations: insert the device's
    endpoint, or, when the token is taken by the same device and user, refresh it. Not for
    an application that wants EndpointCreated or EndpointUpdated events."""
    source = select(
        apps.c.id, *(bindparam(name, type_=t.c[name].type) for name in _NEW_COLUMNS)
    ).where(
        apps.c.arn == bindparam("application_arn"),
        *_no_topic_for("EventEndpointCreated", "EventEndpointUpdated"),
    )
    stmt = postgresql.insert(t).from_select(["application_id", *_NEW_COLUMNS], source)
    refreshed = stmt.on_conflict_do_update(
        index_elements=["application_id", "token"],
        set_={
            "enabled": True,
            "disabled_at": None,
            "locale": func.coalesce(stmt.excluded.locale, t.c.locale),
            "custom_user_data": func.coalesce(stmt.excluded.custom_user_data, t.c.custom_user_data),
            "updated_at": stmt.excluded.updated_at,
            "token_updated_at": stmt.excluded.updated_at,
        },
        where=t.c.device_id.is_not_distinct_from(stmt.excluded.device_id)
        & t.c.user_id.is_not_distinct_from(stmt.excluded.user_id),
    )
    result: Insert = refreshed.returning(t.c.arn)
    return result


_UPSERT_REGISTRATION = _upsert_registration()


def upsert_registration(
    conn: Connection, application_arn: str, e: EndpointRow, now: datetime
) -> str | None:
    """PostgreSQL: ``e``'s ARN when inserted, the existing endpoint's when refreshed; None
    when the token belongs to another device or user, the device id is taken, or the
    application wants endpoint events (the caller then takes the full path). One round
    trip for the two common cases."""
    values = _values(e, now)
    values["application_arn"] = application_arn
    try:
        row = conn.execute(_UPSERT_REGISTRATION, values).first()
    except IntegrityError:  # the device id is taken, by an endpoint with another token
        return None
    return None if row is None else str(row.arn)


def delete_by_id(conn: Connection, endpoint_id: int) -> None:
    conn.execute(delete(t).where(t.c.id == endpoint_id))


@dataclass(frozen=True)
class UserDevice:
    """One endpoint of a user, with its application."""

    endpoint: EndpointRow
    application_arn: str
    platform: str
    created_at: datetime
    updated_at: datetime


def of_user(conn: Connection, user_id: str, *, enabled_only: bool = False) -> list[UserDevice]:
    """Every endpoint of ``user_id``, across applications, oldest first."""
    query = (
        select(
            *_COLUMNS, apps.c.arn.label("app_arn"), apps.c.platform, t.c.created_at, t.c.updated_at
        )
        .join(apps, apps.c.id == t.c.application_id)
        .where(t.c.user_id == user_id)
        .order_by(t.c.id)
    )
    if enabled_only:
        query = query.where(t.c.enabled.is_(True))
    return [
        UserDevice(_row(r), r.app_arn, r.platform, r.created_at, r.updated_at)
        for r in conn.execute(query)
    ]


def delete_of_user(conn: Connection, user_id: str) -> list[tuple[str, int]]:
    """Delete every endpoint of ``user_id``; their ARNs and application ids."""
    rows = conn.execute(
        delete(t).where(t.c.user_id == user_id).returning(t.c.arn, t.c.application_id)
    )
    return [(r.arn, int(r.application_id)) for r in rows]


def page(conn: Connection, application_id: int, after_id: int, limit: int) -> list[EndpointRow]:
    rows = conn.execute(
        select(*_COLUMNS)
        .where(t.c.application_id == application_id, t.c.id > after_id)
        .order_by(t.c.id)
        .limit(limit)
    )
    return [_row(r) for r in rows]


_DISABLE = (
    update(t)
    .where(t.c.id == bindparam("eid"), t.c.token == bindparam("sent_token"), t.c.enabled.is_(True))
    .values(enabled=False, disabled_at=bindparam("now"), updated_at=bindparam("now"))
)


def disable_dead(conn: Connection, dead: list[tuple[int, str]], now: datetime) -> None:
    """Disable endpoints whose token the provider declared dead, as SNS does; an endpoint
    whose token changed since the send keeps its new token and stays enabled."""
    if dead:
        conn.execute(_DISABLE, [{"eid": i, "sent_token": tok, "now": now} for i, tok in dead])


def disable_if_dead(conn: Connection, endpoint_id: int, sent_token: str, now: datetime) -> bool:
    """:func:`disable_dead` for one endpoint: True when it was disabled just now (for an
    EndpointUpdated event), False when it was disabled already or has a new token."""
    result = conn.execute(_DISABLE, {"eid": endpoint_id, "sent_token": sent_token, "now": now})
    return result.rowcount == 1


def replace_token(conn: Connection, endpoint_id: int, old: str, new: str, now: datetime) -> bool:
    """Apply a provider's canonical token; False if another endpoint of the application
    already holds it (or the token changed meanwhile)."""
    row = conn.execute(select(t.c.application_id).where(t.c.id == endpoint_id)).first()
    if row is None or by_token(conn, row[0], new) is not None:
        return False
    result = conn.execute(
        update(t)
        .where(t.c.id == endpoint_id, t.c.token == old)
        .values(token=new, token_updated_at=now, updated_at=now)
    )
    return result.rowcount == 1
