"""What the delivery tests share: fakes, a server pointed at them, apps, and waiting."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from pushgate.fakes.runner import FakeProviders
from tests.conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Server, unique

TEAM_ID = "TEAM123456"

# Short leases and fast polling, so that crash and retry tests take seconds.
FAST_ENGINE = {
    "PUSHGATE_DELIVERY_LEASE_SECONDS": "10",
    "PUSHGATE_ACCESS_LOG": "false",
}


def apns_token() -> str:
    return secrets.token_hex(32)


def fcm_token() -> str:
    return "f" + secrets.token_urlsafe(110)


def apns_app(sns: Any, fakes: FakeProviders, *, sandbox: bool = False, voip: bool = False) -> str:
    """A token-auth APNs application whose key the fake knows."""
    bundle = f"com.example.{unique('app').replace('-', '')}"
    fake = fakes.apns_sandbox if sandbox else fakes.apns
    key = fake.register_key(team_id=TEAM_ID, topics=[bundle, bundle + ".voip"])
    platform = ("APNS_VOIP" if voip else "APNS") + ("_SANDBOX" if sandbox else "")
    return str(
        sns.create_platform_application(
            Name=unique("apns"),
            Platform=platform,
            Attributes={
                "PlatformPrincipal": key.key_id,
                "PlatformCredential": key.private_key_pem,
                "ApplePlatformTeamID": TEAM_ID,
                "ApplePlatformBundleID": bundle,
            },
        )["PlatformApplicationArn"]
    )


def bundle_of(sns: Any, app_arn: str) -> str:
    attrs = sns.get_platform_application_attributes(PlatformApplicationArn=app_arn)
    return str(attrs["Attributes"]["ApplePlatformBundleID"])


def fcm_app(sns: Any, fakes: FakeProviders) -> tuple[str, str]:
    """An FCM application with a service account the fake knows; (ARN, project id)."""
    project = unique("proj")
    account = fakes.fcm.create_service_account(project_id=project)
    arn = sns.create_platform_application(
        Name=unique("fcm"),
        Platform="GCM",
        Attributes={"PlatformCredential": json.dumps(account)},
    )["PlatformApplicationArn"]
    return str(arn), project


def endpoint(sns: Any, app_arn: str, token: str) -> str:
    return str(
        sns.create_platform_endpoint(PlatformApplicationArn=app_arn, Token=token)["EndpointArn"]
    )


def many_endpoints(server: Server, app_arn: str, tokens: list[str], topic_arn: str) -> None:
    """Create and subscribe endpoints for ``tokens``, eight requests at a time."""

    def one(chunk: list[str]) -> None:
        sns = server.client()
        for token in chunk:
            arn = endpoint(sns, app_arn, token)
            sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=arn)

    chunks = [tokens[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, chunks))


def status(server: Server, message_id: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/v1/messages/{message_id}",
        params=params,
        auth=(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        timeout=10,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def wait_until(
    check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(interval)


def settled(server: Server, message_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The message's status once nothing of it is queued any more."""

    def done() -> dict[str, Any] | None:
        s = status(server, message_id)
        return s if s["fanoutComplete"] and s["counts"]["queued"] == 0 else None

    result: dict[str, Any] = wait_until(done, timeout, what=f"message {message_id} to settle")
    return result
