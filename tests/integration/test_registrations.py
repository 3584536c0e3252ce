"""The registration service over HTTP: apps register with their users' OpenID Connect
tokens (real JWTs from a local issuer with a JWKS endpoint), servers with access keys, and
boto3 sees the same endpoints. Delivery to a user reaches the fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from pushgate.fakes.runner import FakeProviders
from tests.conftest import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    Server,
    running_server,
    unique,
)
from tests.integration.delivery_helpers import (
    FAST_ENGINE,
    apns_app,
    apns_token,
    fcm_app,
    fcm_token,
    settled,
)
from tests.oidc_issuer import OidcIssuer

AUDIENCE = "pushgate-test-app"
SERVER = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    database_url: str,
    fakes: FakeProviders,
    issuer: OidcIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    env = fakes.env() | FAST_ENGINE
    env |= {"PUSHGATE_OIDC_ISSUER": issuer.url, "PUSHGATE_OIDC_AUDIENCE": AUDIENCE}
    with running_server(database_url, tmp_path_factory.mktemp("data"), env) as srv:
        yield srv


@pytest.fixture
def sns(server: Server, fakes: FakeProviders) -> Iterator[Any]:
    yield server.client()
    fakes.reset()


@pytest.fixture
def app(sns: Any, fakes: FakeProviders) -> str:
    return apns_app(sns, fakes)


class Api:
    """The REST API as an app (with a user's token) or a server (with an access key)."""

    def __init__(self, server: Server, issuer: OidcIssuer) -> None:
        self.server, self.issuer = server, issuer

    def user(self, sub: str, **claims: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.issuer.issue(sub, aud=AUDIENCE, **claims)}"}

    def call(
        self,
        method: str,
        path: str,
        *,
        as_user: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        auth: tuple[str, str] | None = None
        if as_user is not None:
            all_headers |= self.user(as_user)
        elif "authorization" not in all_headers:
            auth = SERVER
        return httpx.request(
            method,
            f"{self.server.url}{path}",
            headers=all_headers,
            auth=auth,
            timeout=10,
            **kwargs,
        )

    def register(
        self,
        *,
        as_user: str | None = None,
        headers: dict[str, str] | None = None,
        **body: Any,
    ) -> httpx.Response:
        return self.call("POST", "/v1/registrations", as_user=as_user, headers=headers, json=body)

    def devices(self, user: str) -> list[dict[str, Any]]:
        response = self.call("GET", f"/v1/users/{user}/devices")
        assert response.status_code == 200, response.text
        devices: list[dict[str, Any]] = response.json()["devices"]
        return devices


@pytest.fixture
def api(server: Server, issuer: OidcIssuer) -> Api:
    return Api(server, issuer)


def _endpoints(sns: Any, app: str) -> list[dict[str, Any]]:
    pages = sns.get_paginator("list_endpoints_by_platform_application").paginate(
        PlatformApplicationArn=app
    )
    return [e for page in pages for e in page["Endpoints"]]


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["detail"]
    return problem


# --- the token lifecycle (sns-api.md sec. 4.6) ---------------------------------------------


def test_register_creates_then_recovers_the_endpoint(api: Api, sns: Any, app: str) -> None:
    token = apns_token()
    first = api.register(as_user="alice", application=app, token=token, deviceId="d1")
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["created"] is True and created["user"] == "alice"
    again = api.register(as_user="alice", application=app, token=token, deviceId="d1")
    assert again.status_code == 200
    assert again.json()["endpointArn"] == created["endpointArn"]
    assert again.json()["created"] is False
    shown = sns.get_endpoint_attributes(EndpointArn=created["endpointArn"])["Attributes"]
    assert shown == {"Enabled": "true", "Token": token}


def test_a_token_refresh_replaces_the_old_token(api: Api, sns: Any, app: str) -> None:
    old, new = apns_token(), apns_token()
    arn = api.register(as_user="alice", application=app, token=old, deviceId="d1").json()[
        "endpointArn"
    ]
    refreshed = api.register(as_user="alice", application=app, token=new, deviceId="d1")
    assert refreshed.json()["endpointArn"] == arn
    assert [e["Attributes"]["Token"] for e in _endpoints(sns, app)] == [new]


def test_a_disabled_endpoint_is_enabled_and_a_deleted_one_recreated(
    api: Api, sns: Any, app: str
) -> None:
    token = apns_token()
    arn = api.register(as_user="alice", application=app, token=token).json()["endpointArn"]
    sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})
    assert api.register(as_user="alice", application=app, token=token).json()["enabled"]
    assert sns.get_endpoint_attributes(EndpointArn=arn)["Attributes"]["Enabled"] == "true"

    sns.delete_endpoint(EndpointArn=arn)
    recreated = api.register(as_user="alice", application=app, token=token)
    assert recreated.status_code == 201
    assert recreated.json()["endpointArn"] != arn
    assert len(_endpoints(sns, app)) == 1


def test_a_token_that_moved_to_the_device_leaves_no_stale_endpoint(
    api: Api, sns: Any, app: str
) -> None:
    """The device's endpoint had token T1; token T2 already has an endpoint (registered
    before the app knew its device id). The device now reports T2: one endpoint remains."""
    t1, t2 = apns_token(), apns_token()
    stale = api.register(as_user="alice", application=app, token=t1, deviceId="d1").json()
    holder = api.register(as_user="alice", application=app, token=t2).json()
    moved = api.register(as_user="alice", application=app, token=t2, deviceId="d1").json()
    assert moved["endpointArn"] == holder["endpointArn"]
    assert moved["replacedEndpointArn"] == stale["endpointArn"]
    assert [e["EndpointArn"] for e in _endpoints(sns, app)] == [holder["endpointArn"]]


# --- users ------------------------------------------------------------------------------------


def test_another_user_on_the_device_takes_it_over(api: Api, sns: Any, app: str) -> None:
    token = apns_token()
    alice = api.register(as_user="alice-2", application=app, token=token, deviceId="shared")
    bob = api.register(as_user="bob-2", application=app, token=token, deviceId="shared")
    assert bob.json()["endpointArn"] == alice.json()["endpointArn"]
    assert bob.json()["previousUser"] == "alice-2"
    assert api.devices("alice-2") == []
    (device,) = api.devices("bob-2")
    assert device["endpointArn"] == alice.json()["endpointArn"]
    assert device["deviceId"] == "shared" and device["platform"] == "APNS"


def test_a_user_has_devices_across_platforms_and_can_be_removed(
    api: Api, sns: Any, fakes: FakeProviders
) -> None:
    user = unique("carol")
    ios = apns_app(sns, fakes)
    android, _ = fcm_app(sns, fakes)
    arns = [
        api.register(as_user=user, application=ios, token=apns_token()).json()["endpointArn"],
        api.register(as_user=user, application=android, token=fcm_token()).json()["endpointArn"],
    ]
    assert [d["endpointArn"] for d in api.devices(user)] == arns

    # The app removes its own device at logout, with the user's token and "me".
    one = api.devices(user)[0]["id"]
    removed = api.call("DELETE", f"/v1/users/me/devices/{one}", as_user=user)
    assert removed.status_code == 204, removed.text
    with pytest.raises(ClientError):
        sns.get_endpoint_attributes(EndpointArn=arns[0])
    _problem(api.call("DELETE", f"/v1/users/me/devices/{one}", as_user=user), 404)

    # Account deletion, by the server: every endpoint goes.
    gone = api.call("DELETE", f"/v1/users/{user}")
    assert gone.json() == {"removedEndpointArns": arns[1:]}
    assert api.devices(user) == []
    with pytest.raises(ClientError):
        sns.get_endpoint_attributes(EndpointArn=arns[1])


def test_an_app_may_only_act_on_its_own_user(api: Api, app: str) -> None:
    api.register(as_user="dave", application=app, token=apns_token())
    mine = api.call("GET", "/v1/users/me/devices", as_user="dave")
    assert [d["platform"] for d in mine.json()["devices"]] == ["APNS"]
    _problem(api.call("GET", "/v1/users/erin/devices", as_user="dave"), 403)
    _problem(api.register(as_user="dave", application=app, token=apns_token(), user="erin"), 403)
    _problem(
        api.call("POST", "/v1/users/dave/messages", as_user="dave", json={"message": "x"}), 403
    )


def test_a_server_may_register_for_any_user(api: Api, app: str) -> None:
    response = api.register(application=app, token=apns_token(), user="frank", locale="de-CH")
    assert response.status_code == 201 and response.json()["user"] == "frank"
    (device,) = api.devices("frank")
    assert device["locale"] == "de-CH"


# --- who may register --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"exp_in": -120}, "expired"),
        ({"aud": "another-app"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"sign_with_unknown_key": True}, ""),
    ],
)
def test_bad_identity_tokens_are_refused_and_change_nothing(
    api: Api, issuer: OidcIssuer, sns: Any, app: str, claims: dict[str, Any], why: str
) -> None:
    token = issuer.issue("mallory", **({"aud": AUDIENCE} | claims))
    response = api.register(
        application=app, token=apns_token(), headers={"authorization": f"Bearer {token}"}
    )
    problem = _problem(response, 401)
    assert why in problem["detail"]
    assert token not in response.text
    assert _endpoints(sns, app) == []


def test_garbage_and_missing_credentials_are_refused(api: Api, app: str) -> None:
    garbage = {"authorization": "Bearer not.a.jwt"}
    _problem(api.register(application=app, token=apns_token(), headers=garbage), 401)
    anonymous = httpx.post(
        f"{api.server.url}/v1/registrations", json={"application": app, "token": apns_token()}
    )
    _problem(anonymous, 401)
    # Authentication comes first: an anonymous caller learns nothing about the body.
    _problem(httpx.post(f"{api.server.url}/v1/registrations", json={"x": 1}), 401)


def test_bad_registrations_are_json_problems(api: Api, sns: Any, app: str) -> None:
    assert "token" in _problem(api.register(as_user="u", application=app), 400)["detail"]
    _problem(api.register(as_user="u", application=app + "-missing", token=apns_token()), 404)
    short = _problem(api.register(as_user="u", application=app, token=""), 400)
    assert "Token" in short["detail"]
    name = app.rsplit("/", 1)[1]
    by_name = api.register(as_user="u", application=name, token=apns_token())
    assert by_name.status_code == 201 and by_name.json()["applicationArn"] == app


def test_concurrent_registrations_of_one_token_make_one_endpoint(
    api: Api, sns: Any, app: str
) -> None:
    token = apns_token()
    barrier = threading.Barrier(8)
    results: list[str] = []

    def one(index: int) -> None:
        barrier.wait()
        response = api.register(as_user="gina", application=app, token=token)
        results.append(response.json()["endpointArn"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 8
    assert len(_endpoints(sns, app)) == 1


# --- publish to a user -------------------------------------------------------------------------


def test_publish_to_a_user_reaches_every_device(
    api: Api, server: Server, sns: Any, fakes: FakeProviders
) -> None:
    user = unique("henry")
    ios = apns_app(sns, fakes)
    android, _ = fcm_app(sns, fakes)
    apns, fcm = apns_token(), fcm_token()
    api.register(as_user=user, application=ios, token=apns)
    api.register(as_user=user, application=android, token=fcm)
    structure = {
        "default": "hello",
        "APNS": json.dumps({"aps": {"alert": "hello iPhone"}}),
    }
    response = api.call(
        "POST",
        f"/v1/users/{user}/messages",
        json={"message": json.dumps(structure), "messageStructure": "json"},
        headers={"idempotency-key": "order-42"},
    )
    assert response.status_code == 202, response.text
    published = response.json()
    assert published["devices"] == 2
    status = settled(server, published["messageId"])
    assert status["counts"]["sent"] == 2
    (push,) = fakes.apns.wait_for(1)
    assert (push.token, json.loads(push.payload)) == (apns, {"aps": {"alert": "hello iPhone"}})
    (message,) = fakes.fcm.wait_for(1)
    assert message.body["message"] == {"token": fcm, "data": {"default": "hello"}}

    again = api.call(
        "POST",
        f"/v1/users/{user}/messages",
        json={"message": json.dumps(structure), "messageStructure": "json"},
        headers={"idempotency-key": "order-42"},
    )
    assert again.json()["messageId"] == published["messageId"]

    _problem(api.call("POST", f"/v1/users/{unique('nobody')}/messages", json={"message": "x"}), 404)


# --- an application's own issuer ---------------------------------------------------------------


def test_an_application_may_trust_its_own_issuer(api: Api, sns: Any, fakes: FakeProviders) -> None:
    """OidcIssuer/OidcAudience on one application: its users come from that issuer; the
    server-wide issuer's tokens are not accepted for it, nor its tokens elsewhere."""
    with OidcIssuer() as partner:
        own = apns_app(sns, fakes)
        sns.set_platform_application_attributes(
            PlatformApplicationArn=own,
            Attributes={
                "OidcIssuer": partner.url,
                "OidcAudience": "partner-app",
                "OidcUserClaim": "email",
            },
        )
        shown = sns.get_platform_application_attributes(PlatformApplicationArn=own)
        assert shown["Attributes"]["OidcIssuer"] == partner.url
        token = partner.issue("p-1", aud="partner-app", email="ida@example.com")
        bearer = {"authorization": f"Bearer {token}"}

        registered = api.register(application=own, token=apns_token(), headers=bearer)
        assert registered.status_code == 201, registered.text
        assert registered.json()["user"] == "ida@example.com"
        # The server-wide issuer does not vouch for this application's users ...
        _problem(api.register(as_user="ida", application=own, token=apns_token()), 401)
        # ... and the partner's tokens are worth nothing for other applications.
        other = apns_app(sns, fakes)
        _problem(api.register(application=other, token=apns_token(), headers=bearer), 401)

    with pytest.raises(ClientError) as err:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=own, Attributes={"OidcIssuer": "http://idp.example.com"}
        )
    assert "OidcIssuer must be an https URL" in err.value.response["Error"]["Message"]


def test_the_users_commands(api: Api, server: Server, sns: Any, fakes: FakeProviders) -> None:
    """`pushgate users devices|publish|remove` on the server's database."""
    user = unique("cli")
    app = apns_app(sns, fakes)
    token = apns_token()
    arn = api.register(application=app, token=token, user=user).json()["endpointArn"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env |= {
        "PUSHGATE_DATABASE_URL": server.database_url,
        "PUSHGATE_DATA_DIR": str(server.data_dir),
    }

    def pushgate(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pushgate.cli", "users", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    (device,) = json.loads(pushgate("devices", user, "--json"))
    assert (device["endpointArn"], device["platform"]) == (arn, "APNS")
    sent = pushgate(
        "publish", user, "from the shell", "--attribute", "AWS.SNS.MOBILE.APNS.PRIORITY=5"
    )
    message_id = sent.split()[1]
    assert settled(server, message_id)["counts"]["sent"] == 1
    (push,) = fakes.apns.wait_for(1)
    assert (push.token, push.headers["apns-priority"]) == (token, "5")
    assert "removed 1 endpoints" in pushgate("remove", user)
    assert json.loads(pushgate("devices", user, "--json")) == []
