"""Nothing published is lost when the server dies: SIGKILL mid-fan-out, and SIGTERM.

A topic of a few thousand devices is published to; the server is killed while the fan-out
and the sends are under way and started again on the same database. Every device must
receive the notification (at least once), and the fan-out must not have duplicated any
delivery.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pushgate.fakes.runner import FakeProviders
from tests.conftest import new_database, start_server, unique
from tests.integration.delivery_helpers import (
    FAST_ENGINE,
    apns_app,
    apns_token,
    many_endpoints,
    settled,
    wait_until,
)

DEVICES = 3000


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with new_database(request.param, tmp_path / "crash.db") as url:
        yield url


def _delivered_tokens(fakes: FakeProviders) -> set[str]:
    return {p.token for p in fakes.apns.delivered}


def test_sigkill_mid_fan_out_loses_nothing(
    database_url: str, fakes: FakeProviders, tmp_path: Path
) -> None:
    fakes.apns.reset()
    env = fakes.env() | FAST_ENGINE | {"PUSHGATE_DELIVERY_FANOUT_CHUNK": "50"}
    first = start_server(database_url, tmp_path / "data", env)
    try:
        sns = first.client()
        app = apns_app(sns, fakes)
        topic = sns.create_topic(Name=unique("crash"))["TopicArn"]
        tokens = [apns_token() for _ in range(DEVICES)]
        many_endpoints(first, app, tokens, topic)
        # Slow answers keep sends in flight when the kill comes.
        fakes.apns.script(status=None, delay=0.05, times=10 * DEVICES)
        message_id = sns.publish(TopicArn=topic, Message="survives a crash")["MessageId"]
        wait_until(lambda: len(fakes.apns.delivered) >= 100, what="the first deliveries")
    finally:
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
    assert len(_delivered_tokens(fakes)) < DEVICES, "the kill came too late to test anything"

    second = start_server(database_url, tmp_path / "data", env)
    try:
        wait_until(
            lambda: _delivered_tokens(fakes) == set(tokens),
            timeout=90,
            interval=0.2,
            what="every device to receive the notification",
        )
        result = settled(second, message_id, timeout=30)
        assert result["deliveries"] == DEVICES  # the fan-out duplicated no chunk
        assert result["counts"]["sent"] == DEVICES
    finally:
        second.stop()


def test_sigterm_finishes_or_puts_back_what_is_in_flight(
    database_url: str, fakes: FakeProviders, tmp_path: Path
) -> None:
    fakes.apns.reset()
    # A lease far longer than the test: only a clean release lets the restart send at once.
    env = fakes.env() | FAST_ENGINE | {"PUSHGATE_DELIVERY_LEASE_SECONDS": "3600"}
    first = start_server(database_url, tmp_path / "data", env)
    sns = first.client()
    app = apns_app(sns, fakes)
    topic = sns.create_topic(Name=unique("term"))["TopicArn"]
    tokens = [apns_token() for _ in range(300)]
    many_endpoints(first, app, tokens, topic)
    fakes.apns.script(status=None, delay=0.2, times=10_000)
    message_id = sns.publish(TopicArn=topic, Message="clean stop")["MessageId"]
    wait_until(lambda: len(fakes.apns.delivered) >= 10, what="the first deliveries")
    started = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down cleanly, then re-raises the signal it caught.
    assert first.process.wait(30) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 20
    assert "Application shutdown complete" in first.log()

    second = start_server(database_url, tmp_path / "data", env)
    try:
        wait_until(
            lambda: _delivered_tokens(fakes) == set(tokens),
            timeout=30,
            interval=0.2,
            what="every device to receive the notification",
        )
        assert settled(second, message_id)["counts"]["sent"] == len(tokens)
    finally:
        second.stop()
