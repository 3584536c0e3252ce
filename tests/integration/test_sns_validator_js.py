"""A subscriber written for Amazon SNS works unchanged against pushgate: AWS's own message
validator for Node.js (npm ``sns-validator``) checks every message a real ``pushgate
serve`` sends, and its subscriber confirms through the SubscribeURL.

That validator only trusts a ``SigningCertURL`` served over HTTPS from a host matching its
pattern (by default ``sns.<region>.amazonaws.com``; here ``127.0.0.1``, the one option a
deployment sets), so the server here serves TLS with the fake providers' test CA, which
Node trusts through ``NODE_EXTRA_CA_CERTS``.

It needs ``node`` and ``npm`` (the package is installed once into a cache directory from
the npm registry); without them the test is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pushgate.fakes.runner import FakeProviders
from tests.conftest import Server, running_server, unique

VALIDATOR = "sns-validator@0.3.5"
SCRIPT = Path(__file__).parent.parent / "js" / "sns_subscriber.js"


def _validator_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run AWS's sns-validator")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    prefix = cache / "pushgate-tests" / VALIDATOR.replace("@", "-")
    modules = prefix / "node_modules"
    if not (modules / "sns-validator" / "index.js").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                VALIDATOR,
            ],
            capture_output=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"npm install {VALIDATOR} failed: {done.stderr.decode()[-300:]}")
    return modules


class NodeSubscriber:
    def __init__(self, modules: Path, ca_file: Path) -> None:
        env = os.environ | {"NODE_PATH": str(modules), "NODE_EXTRA_CA_CERTS": str(ca_file)}
        self.process = subprocess.Popen(
            ["node", str(SCRIPT), r"^127\.0\.0\.1:\d+$"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        first = json.loads(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{first['port']}"
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"ok": False, "error": line})

    def wait_for(self, kind: str, path: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.get("type") == kind and line.get("path") == path:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no {kind} at {path}; the subscriber said {self.lines}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def node_subscriber(fakes: FakeProviders) -> Iterator[NodeSubscriber]:
    subscriber = NodeSubscriber(_validator_modules(), fakes.ca.ca_file)
    try:
        yield subscriber
    finally:
        subscriber.stop()


@pytest.fixture(scope="module")
def tls_server(
    fakes: FakeProviders, node_subscriber: NodeSubscriber, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("data")
    env = fakes.env() | {
        "PUSHGATE_TLS_CERT_FILE": str(fakes.ca.server_cert_file),
        "PUSHGATE_TLS_KEY_FILE": str(fakes.ca.server_key_file),
        "PUSHGATE_SUBSCRIPTION_ALLOWED_HOSTS": "127.0.0.1",
        "PUSHGATE_ACCESS_LOG": "false",
    }
    with running_server(f"sqlite:///{data / 'pushgate.db'}", data, env) as srv:
        yield srv


@pytest.mark.parametrize("version", ["1", "2"])
def test_aws_sns_validator_accepts_what_pushgate_sends(
    tls_server: Server, node_subscriber: NodeSubscriber, fakes: FakeProviders, version: str
) -> None:
    sns = tls_server.client(verify=str(fakes.ca.ca_file))
    topic = sns.create_topic(Name=unique("validated"))["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="SignatureVersion", AttributeValue=version
    )
    path = f"/v{version}"
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=node_subscriber.url + path)

    confirmed = node_subscriber.wait_for("SubscriptionConfirmation", path)
    assert confirmed["ok"] and confirmed["confirmed"] == 200, node_subscriber.lines
    assert confirmed["signatureVersion"] == version
    deadline = time.monotonic() + 10
    while (
        sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
        == "PendingConfirmation"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    published = sns.publish(TopicArn=topic, Message="validated by AWS's code", Subject="Hi")
    note = node_subscriber.wait_for("Notification", path)
    assert note["ok"], node_subscriber.lines
    assert note["messageId"] == published["MessageId"]
    assert note["message"] == "validated by AWS's code"
    assert not [line for line in node_subscriber.lines if not line.get("ok", True)]
