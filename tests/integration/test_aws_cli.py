"""The real AWS CLI (v1) against the server, on both stores.

Each call starts a Python process (about a second), so the module makes about fifteen.
The CLI sees no configuration of the machine: only the variables set here, and empty
config and credentials files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACCESS_KEY_ID, ACCOUNT, REGION, SECRET_ACCESS_KEY, Server, unique

AWS = Path(sys.executable).with_name("aws")
PREFIX = f"arn:aws:sns:{REGION}:{ACCOUNT}:"
# CLI v1 exits 255 on any error, a service error included (v2 uses 254 for those).
SERVICE_ERROR_RC = 255


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("aws-cli")
    config, credentials = home / "config", home / "credentials"
    config.write_text("")
    credentials.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "HOME": str(home),
        }
    )
    return env


def run(
    server: Server, env: dict[str, str], *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AWS), "--endpoint-url", server.url, "--output", "json", "sns", *args],
        env={**env, **(extra or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def aws(server: Server, env: dict[str, str], *args: str, **kwargs: Any) -> Any:
    """Run ``aws sns ...``; its JSON output (None when it prints nothing)."""
    done = run(server, env, *args, **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture(scope="module")
def app_arn(server: Server, cli_env: dict[str, str]) -> str:
    name = unique("cli-app")
    out = aws(
        server,
        cli_env,
        "create-platform-application",
        "--name",
        name,
        "--platform",
        "GCM",
        "--attributes",
        "PlatformCredential=AIzaSyExample",
    )
    assert out == {"PlatformApplicationArn": f"{PREFIX}app/GCM/{name}"}
    return str(out["PlatformApplicationArn"])


@pytest.fixture(scope="module")
def endpoint_arn(server: Server, cli_env: dict[str, str], app_arn: str) -> str:
    out = aws(
        server,
        cli_env,
        "create-platform-endpoint",
        "--platform-application-arn",
        app_arn,
        "--token",
        "abcdef0123",
        "--custom-user-data",
        "u=1",
        "--attributes",
        "Enabled=true",
    )
    assert set(out) == {"EndpointArn"}
    assert out["EndpointArn"].startswith(app_arn.replace(":app/", ":endpoint/") + "/")
    return str(out["EndpointArn"])


@pytest.fixture(scope="module")
def topic_arn(server: Server, cli_env: dict[str, str]) -> str:
    name = unique("cli-topic")
    out = aws(
        server,
        cli_env,
        "create-topic",
        "--name",
        name,
        "--attributes",
        "DisplayName=from-cli",
        "--tags",
        "Key=k1,Value=v1",
    )
    assert out == {"TopicArn": PREFIX + name}
    return str(out["TopicArn"])


def test_endpoint_attributes(server: Server, cli_env: dict[str, str], endpoint_arn: str) -> None:
    out = aws(server, cli_env, "get-endpoint-attributes", "--endpoint-arn", endpoint_arn)
    assert out == {
        "Attributes": {"Enabled": "true", "Token": "abcdef0123", "CustomUserData": "u=1"}
    }


def test_list_endpoints_across_pages(
    server: Server, cli_env: dict[str, str], app_arn: str, endpoint_arn: str
) -> None:
    sns = server.client()
    created = [
        sns.create_platform_endpoint(PlatformApplicationArn=app_arn, Token=f"tok-{i:03}")[
            "EndpointArn"
        ]
        for i in range(100)
    ]
    out = aws(
        server,
        cli_env,
        "list-endpoints-by-platform-application",
        "--platform-application-arn",
        app_arn,
    )
    assert set(out) == {"Endpoints"}  # the CLI followed NextToken to the end
    arns = [e["EndpointArn"] for e in out["Endpoints"]]
    assert arns == [endpoint_arn, *created]
    assert out["Endpoints"][1]["Attributes"] == {"Enabled": "true", "Token": "tok-000"}


def test_subscribe_and_list(
    server: Server, cli_env: dict[str, str], topic_arn: str, endpoint_arn: str
) -> None:
    out = aws(
        server,
        cli_env,
        "subscribe",
        "--topic-arn",
        topic_arn,
        "--protocol",
        "application",
        "--notification-endpoint",
        endpoint_arn,
        "--return-subscription-arn",
    )
    arn = out["SubscriptionArn"]
    assert arn.startswith(topic_arn + ":")
    out = aws(server, cli_env, "list-subscriptions-by-topic", "--topic-arn", topic_arn)
    assert out == {
        "Subscriptions": [
            {
                "SubscriptionArn": arn,
                "Owner": ACCOUNT,
                "Protocol": "application",
                "Endpoint": endpoint_arn,
                "TopicArn": topic_arn,
            }
        ]
    }


def test_tags(server: Server, cli_env: dict[str, str], topic_arn: str) -> None:
    out = aws(
        server,
        cli_env,
        "tag-resource",
        "--resource-arn",
        topic_arn,
        "--tags",
        "Key=a,Value=1",
        "Key=k1,Value=overwritten",
    )
    assert out is None  # TagResource has an empty result
    out = aws(server, cli_env, "list-tags-for-resource", "--resource-arn", topic_arn)
    assert sorted(out["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "a", "Value": "1"},
        {"Key": "k1", "Value": "overwritten"},
    ]
    assert (
        aws(server, cli_env, "untag-resource", "--resource-arn", topic_arn, "--tag-keys", "a")
        is None
    )
    assert server.client().list_tags_for_resource(ResourceArn=topic_arn)["Tags"] == [
        {"Key": "k1", "Value": "overwritten"}
    ]


def test_errors(server: Server, cli_env: dict[str, str]) -> None:
    missing = PREFIX + unique("missing")
    done = run(server, cli_env, "get-topic-attributes", "--topic-arn", missing)
    assert (done.returncode, done.stdout) == (SERVICE_ERROR_RC, "")
    assert done.stderr.strip() == (
        "An error occurred (NotFound) when calling the GetTopicAttributes operation: "
        "Topic does not exist"
    )
    done = run(server, cli_env, "list-topics", extra={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    assert (done.returncode, done.stdout) == (SERVICE_ERROR_RC, "")
    assert done.stderr.strip() == (
        "An error occurred (SignatureDoesNotMatch) when calling the ListTopics operation: "
        "The request signature we calculated does not match the signature you provided. Check "
        "your AWS Secret Access Key and signing method. Consult the service documentation for "
        "details."
    )


def test_session_token(server: Server, cli_env: dict[str, str], topic_arn: str) -> None:
    out = aws(
        server,
        cli_env,
        "get-topic-attributes",
        "--topic-arn",
        topic_arn,
        extra={"AWS_SESSION_TOKEN": "FwoGZXIvYXdzEBYaDHqa0AP1/SESSION+TOKEN=="},
    )
    assert out["Attributes"]["DisplayName"] == "from-cli"
    assert out["Attributes"]["TopicArn"] == topic_arn
