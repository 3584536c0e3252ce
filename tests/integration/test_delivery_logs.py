"""Delivery status logs (specs/sns-api.md sec. 6.3) end to end: a real ``pushgate serve``
delivers to the fakes and logs outcomes per the application's feedback attributes; the
records are read back through ``GET /v1/logs``, ``pushgate logs`` and the server's stdout.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pushgate.fakes.runner import FakeProviders
from pushgate.logs import mask
from tests.conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Server, running_server
from tests.integration.delivery_helpers import (
    FAST_ENGINE,
    apns_app,
    apns_token,
    endpoint,
    settled,
    wait_until,
)

ROLE = "arn:aws:iam::123456789012:role/SNSFeedback"


@pytest.fixture(scope="module")
def server(
    database_url: str, fakes: FakeProviders, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = fakes.env() | FAST_ENGINE | {"PUSHGATE_DELIVERY_LOG_STDOUT": "true"}
    with running_server(database_url, tmp_path_factory.mktemp("data"), env) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_fakes(fakes: FakeProviders) -> None:
    fakes.reset()


def _logging_app(sns: Any, fakes: FakeProviders, **attributes: str) -> str:
    app = apns_app(sns, fakes)
    if attributes:
        sns.set_platform_application_attributes(PlatformApplicationArn=app, Attributes=attributes)
    return app


def _logs(server: Server, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/logs",
        params=params,
        auth=(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        timeout=10,
    )


def _items(server: Server, **params: Any) -> list[dict[str, Any]]:
    response = _logs(server, **params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _publish(sns: Any, target: str, message: str) -> str:
    return str(sns.publish(TargetArn=target, Message=message)["MessageId"])


def _success_and_failure(
    server: Server, sns: Any, fakes: FakeProviders, app: str
) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """Publish to a live token and to a dead one; ((message id, endpoint, token) each)."""
    live, dead = apns_token(), apns_token()
    live_arn, dead_arn = endpoint(sns, app, live), endpoint(sns, app, dead)
    fakes.apns.set_token_state(dead, "unregistered", timestamp_ms=int(time.time() * 1000) + 1000)
    ok = _publish(sns, live_arn, "hello")
    bad = _publish(sns, dead_arn, "hello")
    settled(server, ok)
    settled(server, bad)
    return (ok, live_arn, live), (bad, dead_arn, dead)


def test_an_application_with_both_roles_logs_successes_and_failures_in_sns_shape(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = _logging_app(
        sns,
        fakes,
        SuccessFeedbackRoleArn=ROLE,
        FailureFeedbackRoleArn=ROLE,
        SuccessFeedbackSampleRate="100",
    )
    (ok, live_arn, live), (bad, dead_arn, dead) = _success_and_failure(server, sns, fakes, app)

    items = wait_until(lambda: (i := _items(server, application=app)) and len(i) == 2 and i)
    by_status = {item["status"]: item for item in items}
    success, failure = by_status["SUCCESS"], by_status["FAILURE"]

    assert set(success) == {
        "id",
        "status",
        "notification",
        "delivery",
        "application",
        "platform",
        "reason",
        "loggedAt",
    }
    assert set(success["notification"]) == {"messageId", "timestamp"}
    assert success["notification"]["messageId"] == ok
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", success["notification"]["timestamp"]
    )
    delivery = success["delivery"]
    assert set(delivery) == {
        "statusCode",
        "dwellTimeMs",
        "token",
        "attempts",
        "providerResponse",
        "destination",
    }
    assert (delivery["statusCode"], delivery["token"], delivery["attempts"]) == (200, live, 1)
    assert delivery["destination"] == live_arn
    assert isinstance(delivery["dwellTimeMs"], int) and delivery["dwellTimeMs"] >= 0
    assert (success["application"], success["platform"], success["reason"]) == (app, "APNS", None)

    assert failure["notification"]["messageId"] == bad
    assert failure["delivery"]["statusCode"] == 410
    assert failure["delivery"]["token"] == dead
    assert failure["delivery"]["destination"] == dead_arn
    assert json.loads(failure["delivery"]["providerResponse"])["reason"] == "Unregistered"
    assert failure["reason"] == "Unregistered"

    # PUSHGATE_DELIVERY_LOG_STDOUT: the same records on stdout, tokens masked.
    def printed() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in server.log().splitlines() if x.startswith('{"status"')]
        return [x for x in lines if x["application"] == app]

    lines = wait_until(lambda: len(printed()) == 2 and printed())
    assert {x["delivery"]["token"] for x in lines} == {mask(live), mask(dead)}
    assert live not in server.log()


def test_a_sample_rate_of_zero_logs_failures_only(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = _logging_app(
        sns,
        fakes,
        SuccessFeedbackRoleArn=ROLE,
        FailureFeedbackRoleArn=ROLE,
        SuccessFeedbackSampleRate="0",
    )
    _, (bad, _, _) = _success_and_failure(server, sns, fakes, app)
    (item,) = wait_until(lambda: _items(server, application=app))
    assert (item["status"], item["notification"]["messageId"]) == ("FAILURE", bad)


def test_an_application_without_feedback_roles_logs_nothing(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = _logging_app(sns, fakes)
    (ok, _, _), (bad, _, _) = _success_and_failure(server, sns, fakes, app)
    # The outcomes are recorded in the same transaction as their logs would be.
    assert _items(server, application=app) == []
    assert _items(server, message=ok) == [] and _items(server, message=bad) == []


def test_the_rest_filters_and_pages(server: Server, sns: Any, fakes: FakeProviders) -> None:
    app = _logging_app(sns, fakes, SuccessFeedbackRoleArn=ROLE, FailureFeedbackRoleArn=ROLE)
    (ok, live_arn, _), (bad, dead_arn, _) = _success_and_failure(server, sns, fakes, app)
    wait_until(lambda: len(_items(server, application=app)) == 2)

    assert [
        i["notification"]["messageId"] for i in _items(server, application=app, status="SUCCESS")
    ] == [ok]
    assert [
        i["notification"]["messageId"] for i in _items(server, application=app, status="FAILURE")
    ] == [bad]
    assert [i["delivery"]["destination"] for i in _items(server, endpoint=dead_arn)] == [dead_arn]
    assert [i["delivery"]["destination"] for i in _items(server, message=ok)] == [live_arn]
    assert _items(server, application=app, since="2999-01-01T00:00:00Z") == []
    assert len(_items(server, application=app, since="2000-01-01T00:00:00")) == 2
    assert len(_items(server, application=app, since=str(time.time() - 3600))) == 2

    first = _logs(server, application=app, limit=1).json()
    assert len(first["items"]) == 1 and first["next"] == first["items"][0]["id"]
    second = _logs(server, application=app, limit=1, after=first["next"]).json()
    assert len(second["items"]) == 1 and int(second["items"][0]["id"]) > int(
        first["items"][0]["id"]
    )
    third = _logs(server, application=app, limit=1, after=second["next"]).json()
    assert third == {"items": [], "next": None}


@pytest.mark.parametrize(
    "params",
    [{"status": "MAYBE"}, {"since": "yesterday"}, {"limit": "0"}, {"after": "-1"}],
)
def test_bad_filters_are_problems(server: Server, params: dict[str, str]) -> None:
    response = _logs(server, **params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400


def test_logs_need_an_access_key(server: Server) -> None:
    response = httpx.get(f"{server.url}/v1/logs", timeout=10)
    assert response.status_code == 401


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushgate.cli", "logs", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_prints_json_lines_with_masked_tokens(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = _logging_app(sns, fakes, SuccessFeedbackRoleArn=ROLE, FailureFeedbackRoleArn=ROLE)
    (ok, _, live), (bad, _, dead) = _success_and_failure(server, sns, fakes, app)
    wait_until(lambda: len(_items(server, application=app)) == 2)

    done = _cli(server, "--app", app, "--json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["notification"]["messageId"] for r in records} == {ok, bad}
    assert {r["delivery"]["token"] for r in records} == {mask(live), mask(dead)}

    failures = _cli(server, "--app", app, "--status", "failure", "--json", "--show-tokens")
    (record,) = [json.loads(line) for line in failures.stdout.splitlines()]
    assert (record["status"], record["delivery"]["token"]) == ("FAILURE", dead)

    text = _cli(server, "--app", app)
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 2
    assert "reason=Unregistered" in text.stdout and dead not in text.stdout

    assert _cli(server, "--status", "maybe").returncode != 0


def test_the_cli_follows_new_records_until_interrupted(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    app = _logging_app(sns, fakes, SuccessFeedbackRoleArn=ROLE)
    target = endpoint(sns, app, apns_token())
    follower = subprocess.Popen(
        [sys.executable, "-m", "pushgate.cli", "logs", "--app", app, "--json", "--follow"],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, follower.kill)  # readline must not hang the suite
    watchdog.start()
    try:
        message_id = _publish(sns, target, "followed")
        assert follower.stdout is not None
        line = follower.stdout.readline()  # blocks until the record is printed
        assert json.loads(line)["notification"]["messageId"] == message_id
    finally:
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=30)
        watchdog.cancel()
    assert follower.returncode == 0, stderr
