"""What each provider's answers do, end to end: boto3 against a running server, the strict
fakes over real sockets (specs/providers.md sec. 0.1, 8.1).

For every platform beyond APNs and FCM (those are in test_delivery.py): a dead token
disables its endpoint and the next Publish says EndpointDisabled; refused credentials mark
the application unhealthy and leave every endpoint enabled; a transient failure is
retried until delivered. Then the rules that only one provider has.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from botocore.exceptions import ClientError

from pushgate.fakes.runner import FakeProviders
from tests.conftest import Server, unique
from tests.integration.delivery_helpers import (
    endpoint,
    settled,
    status,
    wait_until,
)


@pytest.fixture(scope="module")
def server(delivering_server: Server) -> Server:
    return delivering_server


@pytest.fixture
def sns(server: Server, fakes: FakeProviders) -> Iterator[Any]:
    yield server.client()
    fakes.reset()


def _app(sns: Any, platform: str, principal: str, credential: str) -> str:
    return str(
        sns.create_platform_application(
            Name=unique(platform.lower()),
            Platform=platform,
            Attributes={"PlatformPrincipal": principal, "PlatformCredential": credential},
        )["PlatformApplicationArn"]
    )


class Platform(Protocol):
    """One platform's application, devices and failure scripts on its fake."""

    name: str

    def app(self, sns: Any, fakes: FakeProviders, *, valid: bool = True) -> str: ...
    def device(self, fakes: FakeProviders) -> str: ...
    def kill(self, fakes: FakeProviders, token: str) -> None: ...
    def fail_once(self, fakes: FakeProviders) -> None: ...
    def received(self, fakes: FakeProviders) -> list[Any]: ...


def _endpoint(sns: Any, platform: Platform, app: str, token: str) -> str:
    if platform.name != "BAIDU":
        return endpoint(sns, app, token)
    attributes = {"ChannelId": token, "UserId": "763971201"}  # SNS requires both for Baidu
    return str(
        sns.create_platform_endpoint(
            PlatformApplicationArn=app, Token=token, Attributes=attributes
        )["EndpointArn"]
    )


class Adm:
    name = "ADM"

    def app(self, sns: Any, fakes: FakeProviders, *, valid: bool = True) -> str:
        client_id, secret = fakes.adm.create_client()
        return _app(sns, "ADM", client_id, secret if valid else "not-the-secret")

    def device(self, fakes: FakeProviders) -> str:
        return fakes.adm.create_registration()

    def kill(self, fakes: FakeProviders, token: str) -> None:
        fakes.adm.register_registration(token, "unregistered")

    def fail_once(self, fakes: FakeProviders) -> None:
        fakes.adm.script(status=500)

    def received(self, fakes: FakeProviders) -> list[Any]:
        return fakes.adm.received


class Hms:
    name = "HMS"

    def app(self, sns: Any, fakes: FakeProviders, *, valid: bool = True) -> str:
        app_id, secret = fakes.hms.create_app()
        return _app(sns, "HMS", app_id, secret if valid else "not-the-secret")

    def device(self, fakes: FakeProviders) -> str:
        return fakes.hms.create_token()

    def kill(self, fakes: FakeProviders, token: str) -> None:
        fakes.hms.set_token_state(token, "invalid")

    def fail_once(self, fakes: FakeProviders) -> None:
        fakes.hms.script(code="81000001")

    def received(self, fakes: FakeProviders) -> list[Any]:
        return fakes.hms.received


class Wns:
    name = "WNS"
    package_sid = ""

    def app(self, sns: Any, fakes: FakeProviders, *, valid: bool = True) -> str:
        self.package_sid, secret = fakes.wns.create_app()
        return _app(sns, "WNS", self.package_sid, secret if valid else "not-the-secret")

    def device(self, fakes: FakeProviders) -> str:
        return fakes.wns.create_channel(self.package_sid)

    def kill(self, fakes: FakeProviders, token: str) -> None:
        fakes.wns.set_channel_state(token, "expired")

    def fail_once(self, fakes: FakeProviders) -> None:
        fakes.wns.script(status=503)

    def received(self, fakes: FakeProviders) -> list[Any]:
        return fakes.wns.received


class Mpns:
    name = "MPNS"
    certificate = ""

    def app(self, sns: Any, fakes: FakeProviders, *, valid: bool = True) -> str:
        certificate, key = fakes.mpns.create_service(unique("svc"))
        # Channels belong to one service's certificate; an invalid application presents
        # another certificate of the same CA.
        self.certificate = certificate if valid else fakes.mpns.create_service(unique("svc"))[0]
        return _app(sns, "MPNS", certificate, key)

    def device(self, fakes: FakeProviders) -> str:
        return fakes.mpns.create_channel(self.certificate)

    def kill(self, fakes: FakeProviders, token: str) -> None:
        fakes.mpns.set_channel_state(token, "expired")

    def fail_once(self, fakes: FakeProviders) -> None:
        fakes.mpns.script(status=503)

    def received(self, fakes: FakeProviders) -> list[Any]:
        return fakes.mpns.received


class Baidu:
    name = "BAIDU"

    def app(self, sns: Any, fakes: FakeProviders, *, valid: bool = True) -> str:
        api_key, secret = fakes.baidu.create_app()
        return _app(sns, "BAIDU", api_key, secret if valid else "0" * 32)

    def device(self, fakes: FakeProviders) -> str:
        channel = str(secrets.randbelow(10**19)).zfill(19)
        fakes.baidu.register_channel(channel)
        return channel

    def kill(self, fakes: FakeProviders, token: str) -> None:
        fakes.baidu.register_channel(token, "expired")

    def fail_once(self, fakes: FakeProviders) -> None:
        fakes.baidu.script(error_code=30600, status=500)

    def received(self, fakes: FakeProviders) -> list[Any]:
        return fakes.baidu.received


class WebPush:
    name = "WEBPUSH"
    public_key = ""

    def app(self, sns: Any, fakes: FakeProviders, *, valid: bool = True) -> str:
        arn = str(
            sns.create_platform_application(
                Name=unique("web"),
                Platform="WEBPUSH",
                Attributes={"PlatformPrincipal": "mailto:ops@example.com"},
            )["PlatformApplicationArn"]
        )
        shown = sns.get_platform_application_attributes(PlatformApplicationArn=arn)
        self.public_key = shown["Attributes"]["VapidPublicKey"]
        if not valid:  # browsers subscribed with another application server key
            self.public_key = fakes.webpush.create_vapid_credentials()["VapidPublicKey"]
        return arn

    def device(self, fakes: FakeProviders) -> str:
        subscription = fakes.webpush.create_subscription(application_server_key=self.public_key)
        return json.dumps(subscription)

    def kill(self, fakes: FakeProviders, token: str) -> None:
        fakes.webpush.set_subscription_state(json.loads(token)["endpoint"], "expired")

    def fail_once(self, fakes: FakeProviders) -> None:
        fakes.webpush.script(status=503)

    def received(self, fakes: FakeProviders) -> list[Any]:
        return fakes.webpush.received


PLATFORMS = [Adm, Hms, Wns, Mpns, Baidu, WebPush]


@pytest.fixture(params=PLATFORMS, ids=lambda kind: kind.name)
def platform(request: pytest.FixtureRequest) -> Platform:
    kind: type[Platform] = request.param
    return kind()


def _publish(sns: Any, target: str, text: str) -> str:
    return str(sns.publish(TargetArn=target, Message=text)["MessageId"])


def _enabled(sns: Any, target: str) -> str:
    return str(sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]["Enabled"])


def test_a_dead_token_disables_the_endpoint(
    server: Server, sns: Any, fakes: FakeProviders, platform: Platform
) -> None:
    app = platform.app(sns, fakes)
    token = platform.device(fakes)
    target = _endpoint(sns, platform, app, token)
    platform.kill(fakes, token)

    (item,) = settled(server, _publish(sns, target, "to an uninstalled app"))["items"]
    assert item["state"] == "failed", item
    assert _enabled(sns, target) == "false"
    with pytest.raises(ClientError) as raised:
        _publish(sns, target, "again")
    assert raised.value.response["Error"]["Code"] == "EndpointDisabled"


def test_refused_credentials_mark_the_application_not_the_endpoints(
    server: Server, sns: Any, fakes: FakeProviders, platform: Platform
) -> None:
    app = platform.app(sns, fakes, valid=False)
    target = _endpoint(sns, platform, app, platform.device(fakes))
    message_id = _publish(sns, target, "never arrives")

    def unhealthy() -> dict[str, str] | None:
        shown: dict[str, str] = sns.get_platform_application_attributes(PlatformApplicationArn=app)[
            "Attributes"
        ]
        return shown if shown.get("DeliveryHealth") == "Unhealthy" else None

    shown = wait_until(unhealthy, what=f"the {platform.name} application to be unhealthy")
    assert shown["DeliveryHealthReason"]
    assert _enabled(sns, target) == "true"
    (item,) = status(server, message_id)["items"]
    assert item["state"] == "queued", item


def test_a_transient_failure_is_retried_until_delivered(
    server: Server, sns: Any, fakes: FakeProviders, platform: Platform
) -> None:
    app = platform.app(sns, fakes)
    target = _endpoint(sns, platform, app, platform.device(fakes))
    platform.fail_once(fakes)
    (item,) = settled(server, _publish(sns, target, "eventually"), timeout=30)["items"]
    assert (item["state"], item["attempts"]) == ("sent", 2), item
    assert len(platform.received(fakes)) == 2


# --- rules of one provider ------------------------------------------------------------------


def test_an_adm_canonical_registration_id_replaces_the_token(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = Adm().app(sns, fakes)
    old, new = fakes.adm.create_registration(), fakes.adm.create_registration()
    fakes.adm.register_registration(old, "rotated", rotated_to=new)
    target = endpoint(sns, app, old)
    (item,) = settled(server, _publish(sns, target, "hello"))["items"]
    assert item["state"] == "sent"
    attributes = sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]
    assert (attributes["Token"], attributes["Enabled"]) == (new, "true")
    settled(server, _publish(sns, target, "to the new id"))
    assert fakes.adm.delivered[-1].registration_id == new


def test_hms_without_push_permission_never_disables_tokens(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    """80300002 means the app may not push (not enabled, wrong project or region); a bridge
    that disabled tokens on it wiped a fleet (specs/providers.md sec. 7.3)."""
    app_id, secret = fakes.hms.create_app()
    fakes.hms.set_push_enabled(app_id, False)
    app = _app(sns, "HMS", app_id, secret)
    target = endpoint(sns, app, fakes.hms.create_token())
    _publish(sns, target, "not allowed")

    def reason() -> str | None:
        shown = sns.get_platform_application_attributes(PlatformApplicationArn=app)
        value: str | None = shown["Attributes"].get("DeliveryHealthReason")
        return value

    assert wait_until(reason) == "80300002"
    assert _enabled(sns, target) == "true"
