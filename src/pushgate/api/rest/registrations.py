"""The registration service's REST API: devices register, users have devices, and a
message goes to a user (issue 6; the logic is :mod:`pushgate.domain.registrations`).

``POST /v1/registrations`` is what a mobile app calls after login, with the user's own
OpenID Connect token; the user id comes from the token, never from the body. A server
with an access key may register for any user and name it. The ``/v1/users/{user}`` calls
are for servers; an app may use them on ``me`` (its own user) with its identity token,
except publishing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from pushgate.api.rest.callers import (
    Caller,
    authenticate,
    authenticate_user,
    server_unless_bearer,
)
from pushgate.api.rest.problems import Problem
from pushgate.domain import arns, registrations
from pushgate.domain.messages import parse_message_attributes
from pushgate.domain.publish import IDEMPOTENCY_ATTRIBUTE, PublishInput, publish_to_user
from pushgate.domain.runtime import Runtime
from pushgate.store.endpoints import UserDevice

router = APIRouter(prefix="/v1", tags=["registrations"])
ME = "me"


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RegistrationBody(_Body):
    application: str = Field(description="the platform application's ARN, or its name")
    platform: str | None = Field(
        None, description="APNS, GCM, ...: needed with a name that several platforms share"
    )
    token: str = Field(description="the device's push token (Web Push: its subscription JSON)")
    device_id: str | None = Field(None, description="a stable id of the device installation")
    locale: str | None = None
    custom_data: str | None = Field(None, description="stored as the endpoint's CustomUserData")
    attributes: dict[str, str] | None = Field(
        None, description="platform extras: Baidu's ChannelId and UserId"
    )
    user: str | None = Field(
        None, description="servers only: the user to register for (apps: the token's user)"
    )


class AttributeValue(_Body):
    data_type: str = Field("String", description="String, Number, String.Array or Binary")
    string_value: str


class UserMessageBody(_Body):
    message: str
    message_structure: str | None = Field(None, description='"json": per-platform payloads')
    subject: str | None = None
    message_attributes: dict[str, AttributeValue] | None = Field(
        None, description="AWS.SNS.MOBILE.* and other message attributes"
    )


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _scope(request: Request) -> arns.Scope:
    scope: arns.Scope = request.app.state.scope
    return scope


def _device(device: UserDevice) -> dict[str, Any]:
    e = device.endpoint
    return {
        "id": e.arn.rsplit("/", 1)[1],
        "endpointArn": e.arn,
        "applicationArn": device.application_arn,
        "platform": device.platform,
        "deviceId": e.device_id,
        "locale": e.locale,
        "customData": e.custom_user_data,
        "enabled": e.enabled,
        "createdAt": device.created_at.isoformat(),
        "updatedAt": device.updated_at.isoformat(),
    }


def _user_of(caller: Caller, user: str) -> str:
    """The user a call is about: apps may only name themselves (``me``)."""
    if caller.user is None:
        if user == ME:
            raise Problem(400, "Bad Request", "'me' needs a user's identity token")
        return user
    if user not in (ME, caller.user):
        raise Problem(403, "Forbidden", "an identity token may only act on its own user")
    return caller.user


@router.post(
    "/registrations",
    summary="Register a device's push token (create or update its endpoint)",
    status_code=200,
    responses={201: {"description": "a new endpoint"}},
)
async def register(
    request: Request,
    response: Response,
    body: RegistrationBody,
    server: Annotated[Caller | None, Depends(server_unless_bearer)],
) -> dict[str, Any]:
    caller = server
    if caller is None:
        configs: registrations.OidcConfigs = request.app.state.oidc_configs
        config = await configs.get(
            _runtime(request), _scope(request), body.application, body.platform
        )
        caller = await authenticate_user(request, config or request.app.state.oidc_config)
    if caller.user is not None and body.user is not None and body.user != caller.user:
        raise Problem(403, "Forbidden", "the user comes from the identity token")
    registered = await registrations.register(
        _runtime(request),
        _scope(request),
        registrations.Registration(
            application=body.application,
            token=body.token,
            platform=body.platform,
            device_id=body.device_id,
            user=caller.user if caller.user is not None else body.user,
            locale=body.locale,
            custom_data=body.custom_data,
            attributes=body.attributes,
        ),
    )
    if registered.created:
        response.status_code = 201
    return {
        "endpointArn": registered.endpoint_arn,
        "applicationArn": registered.application_arn,
        "created": registered.created,
        "enabled": registered.enabled,
        "user": registered.user,
        "deviceId": registered.device_id,
        "previousUser": registered.previous_user,
        "replacedEndpointArn": registered.replaced_endpoint_arn,
    }


CallerDep = Annotated[Caller, Depends(authenticate)]


@router.get("/users/{user}/devices", summary="A user's devices, across applications")
async def list_devices(request: Request, user: str, caller: CallerDep) -> dict[str, Any]:
    devices = await registrations.devices(_runtime(request), _user_of(caller, user))
    return {"devices": [_device(d) for d in devices]}


@router.delete(
    "/users/{user}/devices/{device}", summary="Remove one of a user's devices", status_code=204
)
async def remove_device(request: Request, user: str, device: str, caller: CallerDep) -> None:
    rt, owner = _runtime(request), _user_of(caller, user)
    for candidate in await registrations.devices(rt, owner):
        if candidate.endpoint.arn.rsplit("/", 1)[1] == device:
            await registrations.remove_device(rt, owner, candidate.endpoint.arn)
            return
    raise Problem(404, "Not Found", f"User {owner} has no device {device}")


@router.delete(
    "/users/{user}",
    summary="Remove a user: every device's endpoint is deleted (logout everywhere)",
)
async def remove_user(request: Request, user: str, caller: CallerDep) -> dict[str, Any]:
    removed = await registrations.remove_user(_runtime(request), _user_of(caller, user))
    return {"removedEndpointArns": removed}


@router.post(
    "/users/{user}/messages",
    summary="Send one message to every enabled device of a user",
    status_code=202,
)
async def publish(
    request: Request,
    user: str,
    body: UserMessageBody,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    if caller.user is not None:
        raise Problem(403, "Forbidden", "publishing needs an access key, not a user's token")
    given = {
        name: {"DataType": value.data_type, "StringValue": value.string_value}
        for name, value in (body.message_attributes or {}).items()
    }
    if idempotency_key is not None:
        given[IDEMPOTENCY_ATTRIBUTE] = {"DataType": "String", "StringValue": idempotency_key}
    attributes = parse_message_attributes(given)
    published = await publish_to_user(
        _runtime(request),
        _scope(request),
        user,
        PublishInput(
            message=body.message,
            subject=body.subject,
            structure=body.message_structure,
            attributes=attributes,
        ),
    )
    return {"messageId": published.message_id, "devices": published.devices}
